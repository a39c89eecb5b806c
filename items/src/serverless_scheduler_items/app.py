"""The FastAPI application (served by uvicorn locally and by Mangum on Lambda).

`create_app` takes every collaborator as a keyword argument (repository, run history,
publisher, authenticator, registry), so local mode, Lambda and tests wire the same app
with different adapters. Job bodies are validated against the job-type registry by
hand rather than by FastAPI, because job types come from plugins at start-up; the
OpenAPI document is completed with their schemas the same way.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import pluggy
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException

from serverless_scheduler_common.errors import (
    AlreadyExistsError,
    NotFoundError,
    VersionConflictError,
)
from serverless_scheduler_common.events import JobFired
from serverless_scheduler_common.ids import new_id
from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.ports import (
    JobRepository,
    Publisher,
    RunRepository,
    StateStore,
)
from serverless_scheduler_common.registry import JobTypeRegistry
from serverless_scheduler_common.runs import Run
from serverless_scheduler_common.schedule import (
    cron_write_problem,
    sets_past_at,
    sets_past_end_at,
)
from serverless_scheduler_common.settings import Settings

from .auth import Authenticator, Identity
from .job_payloads import (
    PayloadError,
    check_storable,
    client_fields,
    field_error,
    input_schema,
    job_class,
    mask_secrets,
    parse_job,
    require_discriminators,
    restore_secrets,
    strip_server_fields,
)
from .middleware import BodySizeLimitMiddleware, SecurityHeadersMiddleware

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
#: The web UI's files; served at `/` when the directory exists.
STATIC_DIR = Path(__file__).parent / "static"
JOB_ID_PATTERN = r"^[0-9A-Za-z_-]{1,64}$"
_ETAG_RE = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')
PAST_AT_MESSAGE = "schedule.at is in the past; a one-off job needs a future time"
PAST_END_AT_MESSAGE = "schedule.end_at is in the past; the job would never fire"


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: any string a client stored can be sent back."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


# -- documented shapes ---------------------------------------------------------------------
class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every error: a message, or for 422 the list of invalid fields."""

    detail: str | list[ErrorItem]


class Health(BaseModel):
    status: Literal["ok"]


class JobTypeInfo(BaseModel):
    job_type: str
    title: str
    description: str
    json_schema: dict[str, Any] = Field(alias="schema")
    secret_fields: list[str]
    ui_hints: dict[str, Any]


class JobTypeList(BaseModel):
    items: list[JobTypeInfo]


class FireAccepted(BaseModel):
    fire_id: str
    job_id: str
    scheduled_time: datetime
    manual: bool


class RunPage(BaseModel):
    items: list[Run]
    next_cursor: str | None


class Change(BaseModel):
    """One change a plugin recorded for a job (only these fields leave the API)."""

    at: datetime = Field(description="When the change was detected.")
    fire_id: str | None = Field(default=None, description="The fire that detected it.")
    summary: str = ""
    added: int = Field(default=0, description="Lines added.")
    removed: int = Field(default=0, description="Lines removed.")
    diff: str = Field(default="", description="Unified diff of the change.")


class ChangePage(BaseModel):
    items: list[Change]
    supported: bool = Field(
        description="False when the job's type keeps no change history (items is empty)."
    )


def _check_schedule_write(job: ScheduledJob, stored: Any) -> None:
    """Refuse a create (`stored` None) or update over the stored schedule's JSON that
    sets a schedule which would never fire as meant: a past one-off time, a past
    end_at, a cron range that runs backwards or an expression no date matches. The
    error names the field as pydantic does (`schedule.<kind>.<field>`)."""
    schedule, now = job.schedule, datetime.now(UTC)
    problem: tuple[str, str] | None = None
    if sets_past_at(schedule, stored, now):
        problem = ("at", PAST_AT_MESSAGE)
    elif sets_past_end_at(schedule, stored, now):
        problem = ("end_at", PAST_END_AT_MESSAGE)
    else:
        refused = cron_write_problem(schedule, stored)
        if refused is not None:
            problem = ("expression", refused)
    if problem is not None:
        raise field_error(("schedule", schedule.kind, problem[0]), problem[1])


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    text = {
        400: "Malformed request (bad JSON, cursor or If-Match).",
        401: "Missing or invalid credentials.",
        404: "No such job for this user.",
        409: "Version conflict (the body's `version` is not the stored one).",
        412: "If-Match does not match the stored version.",
        413: "Request body too large.",
        422: "Invalid field(s); `detail` names each one.",
        503: "This deployment has no run history, change history or publisher configured.",
    }
    return {c: {"model": ErrorResponse, "description": text[c]} for c in codes}


def _job_content(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG_RE.fullmatch(value.strip())
    if match is None:
        raise HTTPException(400, 'If-Match must be the ETag of a version, e.g. "3"')
    return int(match.group(1))


def _aws_error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def _etag(version: int) -> str:
    return f'"{version}"'


#: How deep a request body may nest arrays and objects (a job nests a few levels).
MAX_BODY_DEPTH = 32


def _json_body(raw: bytes) -> Any:
    def _reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"body is not valid JSON: {exc}") from None
    except RecursionError:  # the decoder's own limit, far below the body size limit
        pass
    else:
        if _depth_within(body, MAX_BODY_DEPTH):
            return body
    raise HTTPException(400, f"body nests arrays or objects deeper than {MAX_BODY_DEPTH} levels")


def _depth_within(value: Any, limit: int) -> bool:
    """True when `value` nests lists and dicts at most `limit` deep (no recursion:
    validating or echoing a deeper body could exhaust the interpreter's stack)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        if depth >= limit:
            return False
        stack.extend((child, depth + 1) for child in item)
    return True


async def _raw_body(request: Request) -> Any:
    return _json_body(await request.body())


def _serve_docs_offline(app: FastAPI, assets_dir: Path) -> None:
    """The API docs page with Swagger UI's files served by the app (no CDN)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.responses import HTMLResponse
    from starlette.staticfiles import StaticFiles

    assets = f"{API_PREFIX}/docs-assets"
    app.mount(assets, StaticFiles(directory=assets_dir), name="docs-assets")

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=f"{API_PREFIX}/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url=f"{assets}/swagger-ui-bundle.js",
            swagger_css_url=f"{assets}/swagger-ui.css",
            swagger_favicon_url=f"{assets}/favicon.png",
        )


def current_identity(request: Request) -> Identity:
    """The caller, from the app's authenticator; 401 when it gives none."""
    authenticator: Authenticator = request.app.state.authenticator
    identity = authenticator.authenticate(request)
    if identity is None:
        raise HTTPException(
            401, "missing or invalid credentials", headers={"WWW-Authenticate": "Bearer"}
        )
    return identity


Caller = Annotated[Identity, Depends(current_identity)]
Body = Annotated[Any, Depends(_raw_body)]
JobId = Annotated[str, PathParam(pattern=JOB_ID_PATTERN, max_length=64)]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='ETag of the version to replace, e.g. "3".'),
]


def _job_components(registry: JobTypeRegistry) -> dict[str, Any]:
    """OpenAPI components for the installed job types: inputs, outputs and unions."""
    classes = [registry.get(jt) for jt in registry.known()]
    if not classes:
        return {
            "Job": {"type": "object"},
            "JobInput": {"type": "object", "required": ["job_type"]},
            "JobPage": _page_schema("Job"),
        }
    keys: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (cls, mode) for cls in classes for mode in ("validation", "serialization")
    ]
    refs, top = models_json_schema(keys, ref_template="#/components/schemas/{model}")
    components: dict[str, Any] = dict(top.get("$defs", {}))
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    for cls in classes:
        job_type = str(cls.model_fields["job_type"].default)
        in_name = refs[(cls, "validation")]["$ref"].rsplit("/", 1)[1]
        schema = strip_server_fields(components[in_name])
        schema["required"] = sorted({*schema.get("required", []), "job_type"})
        components[f"JobInput_{job_type}"] = schema
        inputs[job_type] = f"#/components/schemas/JobInput_{job_type}"
        outputs[job_type] = refs[(cls, "serialization")]["$ref"]
    components["JobInput"] = {
        "oneOf": [{"$ref": r} for r in inputs.values()],
        "discriminator": {"propertyName": "job_type", "mapping": inputs},
    }
    components["Job"] = {
        "oneOf": [{"$ref": r} for r in outputs.values()],
        "discriminator": {"propertyName": "job_type", "mapping": outputs},
    }
    components["JobPage"] = _page_schema("Job")
    require_discriminators(components)
    return components


def _page_schema(item_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item_ref}"}},
            "next_cursor": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
    }


def _ui_hints(pm: pluggy.PluginManager | None, job_type: str) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    if pm is None:
        return hints
    for answer in pm.hook.serverless_scheduler_ui_hints(job_type=job_type):
        if isinstance(answer, dict):
            hints.update(answer)
    return hints


def create_app(
    *,
    settings: Settings,
    repo: JobRepository,
    runs: RunRepository | None = None,
    publisher: Publisher | None = None,
    state: StateStore | None = None,
    authenticator: Authenticator,
    registry: JobTypeRegistry | None = None,
    plugin_manager: pluggy.PluginManager | None = None,
    static_dir: Path | None = None,
    docs_assets: Path | None = None,
) -> FastAPI:
    """Build the items app.

    `registry` defaults to every installed plugin's job types (and then UI hints and
    change histories come from the installed plugins too); pass `plugin_manager` to take
    them from it. `state` is the plugins' `StateStore`, read for change histories;
    without it `GET /jobs/{id}/changes` answers 503.
    `static_dir` (default: the package's `static/`) is served at `/` when it exists.
    `docs_assets`, a directory with `swagger-ui-bundle.js`, `swagger-ui.css` and
    `favicon.png`, serves the API docs page's scripts from the app itself (local mode:
    the page works offline); without it the page loads them from a CDN.
    """
    if registry is None:
        from serverless_scheduler_common.plugins import default_registry, get_plugin_manager

        registry = default_registry()
        plugin_manager = plugin_manager or get_plugin_manager(settings=settings)
    types: JobTypeRegistry = registry

    app = FastAPI(
        title="Serverless Scheduler",
        version="1",
        description="Create, read, update, delete and run scheduled jobs.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None if docs_assets else f"{API_PREFIX}/docs",
        redoc_url=None,
        default_response_class=AsciiJSONResponse,
    )
    app.state.authenticator = authenticator
    if docs_assets:
        _serve_docs_offline(app, docs_assets)
    api = APIRouter(prefix=API_PREFIX)

    @cache
    def job_type_items() -> list[dict[str, Any]]:
        # Built once, on the first GET /job_types rather than at start-up: JSON schemas
        # are costly to generate, and a Lambda cold start serving another route skips them.
        return [
            {
                "job_type": jt,
                "title": types.get(jt).__name__,
                "description": (types.get(jt).__doc__ or "").strip().split("\n\n")[0],
                "schema": input_schema(types.get(jt)),
                "secret_fields": sorted(types.get(jt).secret_fields),
                "ui_hints": _ui_hints(plugin_manager, jt),
            }
            for jt in types.known()
        ]

    def present(snapshot: dict[str, Any]) -> dict[str, Any]:
        return mask_secrets(snapshot, types)

    def load(owner_id: str, job_id: str) -> dict[str, Any]:
        try:
            return repo.get(owner_id, job_id)
        except NotFoundError:
            raise HTTPException(404, f"job {job_id!r} not found") from None

    # -- routes ----------------------------------------------------------------------------
    @api.get("/health", response_model=Health, tags=["meta"], openapi_extra={"security": []})
    def health() -> dict[str, str]:
        """Liveness probe; needs no credentials."""
        return {"status": "ok"}

    @api.get("/job_types", response_model=JobTypeList, responses=_errors(401), tags=["meta"])
    def job_types(caller: Caller) -> dict[str, Any]:
        """Every installed job type with the JSON schema of its fields and UI hints."""
        return {"items": job_type_items()}

    @api.get(
        "/jobs",
        responses={200: {"content": _job_content("JobPage")}, **_errors(400, 401, 422)},
        tags=["jobs"],
    )
    def list_jobs(
        caller: Caller,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Response:
        """The caller's jobs, one page at a time (pass `next_cursor` back as `cursor`)."""
        try:
            page = repo.list(caller.owner_id, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return AsciiJSONResponse(
            {"items": [present(s) for s in page.items], "next_cursor": page.next_cursor}
        )

    @api.post(
        "/jobs",
        status_code=201,
        responses={
            201: {
                "description": "Created",
                "content": _job_content("Job"),
                "headers": {
                    "Location": {"schema": {"type": "string"}},
                    "ETag": {"schema": {"type": "string"}},
                },
            },
            **_errors(400, 401, 409, 413, 422),
        },
        openapi_extra={
            "requestBody": {"required": True, "content": _job_content("JobInput")},
        },
        tags=["jobs"],
    )
    def create_job(caller: Caller, body: Body) -> Response:
        """Create a job; the server assigns `job_id`, timestamps and `version`."""
        data = client_fields(body)
        data["owner_id"] = caller.owner_id
        cls = job_class(types, data.get("job_type"))
        if cls is not None:
            data = restore_secrets(data, None, cls)
        job = parse_job(types, data)
        _check_schedule_write(job, None)
        check_storable(job.snapshot())
        try:
            stored = repo.create(job)
        except AlreadyExistsError as exc:
            raise HTTPException(409, str(exc)) from None
        return AsciiJSONResponse(
            present(stored.snapshot()),
            status_code=201,
            headers={
                "Location": f"{API_PREFIX}/jobs/{stored.job_id}",
                "ETag": _etag(stored.version),
            },
        )

    @api.get(
        "/jobs/{job_id}",
        responses={
            200: {
                "content": _job_content("Job"),
                "headers": {"ETag": {"schema": {"type": "string"}}},
            },
            **_errors(401, 404, 422),
        },
        tags=["jobs"],
    )
    def get_job(caller: Caller, job_id: JobId) -> Response:
        """One job (secret fields masked)."""
        snapshot = load(caller.owner_id, job_id)
        return AsciiJSONResponse(present(snapshot), headers={"ETag": _etag(snapshot["version"])})

    @api.put(
        "/jobs/{job_id}",
        responses={
            200: {
                "content": _job_content("Job"),
                "headers": {"ETag": {"schema": {"type": "string"}}},
            },
            **_errors(400, 401, 404, 409, 412, 413, 422),
        },
        openapi_extra={
            "requestBody": {"required": True, "content": _job_content("JobInput")},
        },
        tags=["jobs"],
    )
    def replace_job(
        caller: Caller, job_id: JobId, body: Body, if_match: IfMatch = None
    ) -> Response:
        """Replace the job's editable fields (pause/resume with `enabled`).

        `job_id`, `owner_id` and `created_at` are kept. A masked secret sent back keeps
        the stored value. Send `If-Match` (412 on mismatch) or the `version` you read
        (409 on mismatch) to avoid overwriting someone else's change.
        """
        expected = _parse_if_match(if_match)
        stored = load(caller.owner_id, job_id)
        if expected is not None and stored["version"] != expected:
            raise HTTPException(
                412, f"job is at version {stored['version']}, If-Match names {expected}"
            )
        body_version = body.get("version") if isinstance(body, dict) else None
        if (
            isinstance(body_version, int)
            and not isinstance(body_version, bool)
            and body_version != stored["version"]
        ):
            raise HTTPException(
                409, f"job is at version {stored['version']}, body names {body_version}"
            )
        data = client_fields(body)
        data.setdefault("job_type", stored["job_type"])
        if data["job_type"] != stored["job_type"]:
            raise field_error(
                ("job_type",),
                f"job_type cannot change (stored: {stored['job_type']}); create a new job",
            )
        cls = job_class(types, stored["job_type"])
        if cls is not None:
            data = restore_secrets(data, stored, cls)
        data.update(
            job_id=job_id,
            owner_id=caller.owner_id,
            created_at=stored["created_at"],
            updated_at=datetime.now(UTC),
            version=stored["version"],
        )
        job = parse_job(types, data)
        _check_schedule_write(job, stored.get("schedule"))
        check_storable(job.snapshot())
        try:
            updated = repo.update(job, expected_version=stored["version"])
        except NotFoundError:
            raise HTTPException(404, f"job {job_id!r} not found") from None
        except VersionConflictError as exc:
            raise HTTPException(412 if expected is not None else 409, str(exc)) from None
        return AsciiJSONResponse(
            present(updated.snapshot()), headers={"ETag": _etag(updated.version)}
        )

    @api.delete(
        "/jobs/{job_id}",
        status_code=204,
        responses={204: {"description": "Deleted"}, **_errors(400, 401, 404, 412, 422)},
        tags=["jobs"],
    )
    def delete_job(caller: Caller, job_id: JobId, if_match: IfMatch = None) -> Response:
        """Delete a job (and, through the change feed, its schedule)."""
        expected = _parse_if_match(if_match)
        try:
            repo.delete(caller.owner_id, job_id, expected_version=expected)
        except NotFoundError:
            raise HTTPException(404, f"job {job_id!r} not found") from None
        except VersionConflictError as exc:
            raise HTTPException(412, str(exc)) from None
        return Response(status_code=204)

    @api.post(
        "/jobs/{job_id}/run",
        status_code=202,
        response_model=FireAccepted,
        responses=_errors(401, 404, 422, 503),
        tags=["jobs"],
    )
    def run_job(caller: Caller, job_id: JobId) -> Response:
        """Fire the job now (a manual fire, whatever its schedule or `enabled`)."""
        snapshot = load(caller.owner_id, job_id)
        if publisher is None:
            raise HTTPException(503, "no publisher is configured for manual runs")
        fired = JobFired(
            job_type=snapshot["job_type"],
            job_id=job_id,
            owner_id=caller.owner_id,
            scheduled_time=datetime.now(UTC),
            job=snapshot,
            manual=True,
            # Each "run now" is its own fire: two clicks in one second must run twice.
            fire_id=f"{job_id}@manual-{new_id()}",
        )
        publisher.publish(fired)
        log.info("manual fire %s of job %s", fired.fire_id, job_id)
        return AsciiJSONResponse(
            FireAccepted(
                fire_id=fired.fire_id,
                job_id=job_id,
                scheduled_time=fired.scheduled_time,
                manual=True,
            ).model_dump(mode="json"),
            status_code=202,
        )

    @api.get(
        "/jobs/{job_id}/runs",
        response_model=RunPage,
        responses=_errors(400, 401, 404, 422, 503),
        tags=["jobs"],
    )
    def list_runs(
        caller: Caller,
        job_id: JobId,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> Response:
        """The job's run history, newest first."""
        load(caller.owner_id, job_id)
        if runs is None:
            raise HTTPException(503, "no run history is configured")
        try:
            page = runs.list(caller.owner_id, job_id, limit=limit, cursor=cursor)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        except Exception as exc:
            # DynamoDB refuses a start key that does not belong to the query's job.
            if cursor and _aws_error_code(exc) == "ValidationException":
                raise HTTPException(400, "cursor: not a cursor returned by this API") from None
            raise
        items = [r.model_dump(mode="json") if isinstance(r, Run) else r for r in page.items]
        return AsciiJSONResponse({"items": items, "next_cursor": page.next_cursor})

    @api.get(
        "/jobs/{job_id}/changes",
        response_model=ChangePage,
        responses=_errors(401, 404, 422, 503),
        tags=["jobs"],
    )
    def list_changes(
        caller: Caller,
        job_id: JobId,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Response:
        """The changes the job's plugin recorded, newest first (its own retention).

        Kept apart from the run history, so a change stays visible after its run aged
        out, and also when its run ended in an error (its notification failed).
        """
        snapshot = load(caller.owner_id, job_id)
        if state is None:
            raise HTTPException(503, "no plugin state store is configured")
        answer = None
        if plugin_manager is not None:
            answer = plugin_manager.hook.serverless_scheduler_change_history(
                owner_id=caller.owner_id,
                job_id=job_id,
                job_type=snapshot["job_type"],
                state=state,
                limit=limit,
            )
        # Only the documented fields leave: whatever else a plugin stored stays behind,
        # and an entry that does not read as a change is left out (not a 500).
        items = []
        for entry in (answer or [])[:limit]:
            try:
                items.append(Change.model_validate(entry).model_dump(mode="json"))
            except ValidationError:
                log.warning("job %s: a change history entry is unreadable; left out", job_id)
        return AsciiJSONResponse({"items": items, "supported": answer is not None})

    app.include_router(api)

    # -- errors ----------------------------------------------------------------------------
    @app.exception_handler(PayloadError)
    async def _payload_error(request: Request, exc: PayloadError) -> Response:
        return AsciiJSONResponse({"detail": exc.errors}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _request_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return AsciiJSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 204 or exc.status_code == 304:
            return Response(status_code=exc.status_code, headers=exc.headers)
        return AsciiJSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    # -- OpenAPI with the job types' schemas -----------------------------------------------
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {}).update(
                _job_components(types)
            )
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    # -- web UI ----------------------------------------------------------------------------
    ui_dir = static_dir if static_dir is not None else STATIC_DIR
    if ui_dir.is_dir():
        from starlette.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=ui_dir, html=True), name="ui")

    # Outermost last: CORS wraps everything, so even 401/413 answers carry its headers.
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match"],
            expose_headers=["ETag", "Location"],
            max_age=600,
        )
    return app
