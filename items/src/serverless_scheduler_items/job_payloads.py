"""Turning request bodies into jobs and jobs into response bodies.

Secret fields (`ScheduledJob.secret_fields`) are masked on the way out; on the way in
a masked value sent back means "keep the stored secret", so a client can PUT back what
it read without ever learning the secret.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError

from serverless_scheduler_common.job import SERVER_FIELDS, ScheduledJob
from serverless_scheduler_common.registry import JobTypeRegistry

#: What a secret value looks like in a response.
MASK = "********"


class PayloadError(ValueError):
    """A body that fails validation; `errors` are FastAPI-style `{loc, msg, type}` dicts."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def field_error(loc: tuple[str | int, ...], msg: str, kind: str = "value_error") -> PayloadError:
    return PayloadError([{"loc": ["body", *loc], "msg": msg, "type": kind}])


def validation_errors(exc: ValidationError, prefix: tuple[str, ...] = ("body",)) -> PayloadError:
    """A pydantic error as PayloadError, without echoing input (it may hold secrets)."""
    errors = [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    return PayloadError(errors)


def job_class(registry: JobTypeRegistry, job_type: object) -> type[ScheduledJob] | None:
    return registry.CLASS_MAPPING.get(job_type) if isinstance(job_type, str) else None


def _mask_value(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: MASK for k in value}
    if isinstance(value, list):
        return [MASK for _ in value]
    if isinstance(value, str):
        return MASK if value else value
    return MASK


def mask_secrets(snapshot: dict[str, Any], registry: JobTypeRegistry) -> dict[str, Any]:
    """A copy of the job snapshot with every secret value replaced by MASK.

    Dict keys and list lengths stay visible (a header's name is not a secret, and the
    UI needs the shape to edit it); only values are hidden.
    """
    cls = job_class(registry, snapshot.get("job_type"))
    out = dict(snapshot)
    for name in cls.secret_fields if cls else ():
        if name in out:
            out[name] = _mask_value(out[name])
    return out


def _restore(name: str, sent: Any, stored: Any) -> Any:
    if sent == MASK:
        if stored is None or isinstance(stored, dict | list):
            raise field_error((name,), "masked value sent but no stored secret to keep")
        return stored
    if isinstance(sent, dict):
        out = {}
        for key, value in sent.items():
            if value == MASK:
                if not isinstance(stored, dict) or key not in stored:
                    raise field_error((name, key), "masked value sent but no stored secret to keep")
                out[key] = stored[key]
            else:
                out[key] = value
        return out
    if isinstance(sent, list):
        out_list = []
        for i, value in enumerate(sent):
            if value == MASK:
                if not isinstance(stored, list) or i >= len(stored):
                    raise field_error((name, i), "masked value sent but no stored secret to keep")
                out_list.append(stored[i])
            else:
                out_list.append(value)
        return out_list
    return sent


def restore_secrets(
    data: dict[str, Any], stored: dict[str, Any] | None, cls: type[ScheduledJob]
) -> dict[str, Any]:
    """Replace masked values in `data` by the stored secrets they stand for."""
    out = dict(data)
    for name in cls.secret_fields:
        if name in out:
            out[name] = _restore(name, out[name], (stored or {}).get(name))
    return out


def client_fields(body: Any) -> dict[str, Any]:
    """The fields a client may set: the body minus the server-owned ones."""
    if not isinstance(body, dict):
        raise field_error((), "body must be a JSON object", "dict_type")
    return {k: copy.deepcopy(v) for k, v in body.items() if k not in SERVER_FIELDS}


def parse_job(registry: JobTypeRegistry, data: dict[str, Any]) -> ScheduledJob:
    try:
        return registry.parse_job(data, write=True)
    except ValidationError as exc:
        raise validation_errors(exc) from None


def input_schema(cls: type[ScheduledJob]) -> dict[str, Any]:
    """The JSON schema of what a client sends for this job type (no server fields)."""
    schema = strip_server_fields(cls.model_json_schema(mode="validation"))
    schema["required"] = sorted({*schema.get("required", []), "job_type"})
    require_discriminators(schema.get("$defs", {}), root=schema)
    return schema


def strip_server_fields(schema: dict[str, Any]) -> dict[str, Any]:
    schema = dict(schema)
    schema["properties"] = {
        k: v for k, v in schema.get("properties", {}).items() if k not in SERVER_FIELDS
    }
    if "required" in schema:
        schema["required"] = [r for r in schema["required"] if r not in SERVER_FIELDS]
    return schema


#: DynamoDB's number range; local mode enforces it too so a job behaves the same on AWS.
_MAX_MAGNITUDE = 9.9999999999999999999999999999999999999e125
_MIN_MAGNITUDE = 1e-130
_MAX_INT_DIGITS = 38


def unstorable_numbers(value: Any, loc: tuple[str | int, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of numbers in `value` that DynamoDB cannot store exactly."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, float):
        magnitude = abs(value)
        if magnitude != 0 and not _MIN_MAGNITUDE <= magnitude <= _MAX_MAGNITUDE:
            return [loc]
        return []
    if isinstance(value, int):
        return [loc] if len(str(abs(value))) > _MAX_INT_DIGITS else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in unstorable_numbers(v, (*loc, k))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in unstorable_numbers(v, (*loc, i))]
    return []


def check_storable(snapshot: dict[str, Any]) -> None:
    """PayloadError naming each number outside the range every job store accepts."""
    bad = unstorable_numbers(snapshot)
    if bad:
        raise PayloadError(
            [
                {
                    "loc": ["body", *path],
                    "msg": "number out of range: magnitude must be 0 or between 1e-130 "
                    "and 1e125, and integers at most 38 digits",
                    "type": "number_range",
                }
                for path in bad
            ]
        )


def require_discriminators(components: dict[str, Any], root: Any = None) -> None:
    """A discriminator property must be sent even when the model gives it a default.

    (`Schedule.kind` defaults per class, so pydantic leaves it optional; the union
    cannot be resolved without it.)
    """

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            discriminator = node.get("discriminator")
            if isinstance(discriminator, dict) and "propertyName" in discriminator:
                for ref in discriminator.get("mapping", {}).values():
                    target = components.get(str(ref).rsplit("/", 1)[1])
                    if isinstance(target, dict):
                        required = set(target.get("required", []))
                        target["required"] = sorted({*required, discriminator["propertyName"]})
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(components if root is None else root)
