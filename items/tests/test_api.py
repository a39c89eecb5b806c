"""The REST API over the SQLite repository: status codes, bodies, headers, secrets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from serverless_scheduler_common import JobTypeRegistry, Run
from serverless_scheduler_items.job_payloads import MASK
from serverless_scheduler_items.middleware import CONTENT_SECURITY_POLICY

JOBS = "/api/v1/jobs"


def test_health_needs_no_credentials(api: Any) -> None:
    response = api.client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_requests_without_or_with_a_wrong_token_are_401(api: Any) -> None:
    good = api.auth("alice")["Authorization"]
    wrong = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    for headers in [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": wrong},
        {"Authorization": good.replace("Bearer", "Basic")},
    ]:
        for method, path in [("GET", JOBS), ("GET", "/api/v1/job_types"), ("POST", JOBS)]:
            response = api.client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "detail" in response.json()


def test_create_returns_201_location_etag_and_masks_secrets(api: Any) -> None:
    response = api.client.post(
        JOBS,
        json={
            "job_type": "probe_job",
            "name": "watch",
            "schedule": {"kind": "cron", "expression": "0 9 * * 1-5", "timezone": "Europe/Warsaw"},
            "headers": {"Authorization": "Bearer upstream-secret"},
            "notify": ["mailto://me:pw@example.com"],
            "token": "t0k3n",
            "threshold": 0.25,
        },
        headers=api.auth("alice"),
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert response.headers["Location"] == f"{JOBS}/{job['job_id']}"
    assert response.headers["ETag"] == '"1"'
    assert job["owner_id"] == "alice"
    assert job["version"] == 1
    assert job["headers"] == {"Authorization": MASK}
    assert job["notify"] == [MASK]
    assert job["token"] == MASK
    assert job["threshold"] == 0.25
    assert "upstream-secret" not in response.text
    fetched = api.client.get(response.headers["Location"], headers=api.auth("alice"))
    assert fetched.status_code == 200
    assert fetched.json() == job
    assert fetched.headers["ETag"] == '"1"'
    # The store keeps the real secrets (the plugins need them).
    stored = api.repo.get("alice", job["job_id"])
    assert stored["headers"] == {"Authorization": "Bearer upstream-secret"}
    assert stored["token"] == "t0k3n"


def test_server_fields_in_a_create_body_are_ignored(api: Any) -> None:
    job = api.create(
        job_id="chosen", owner_id="mallory", version=99, created_at="2000-01-01T00:00:00Z"
    )
    assert job["job_id"] != "chosen"
    assert job["owner_id"] == "alice"
    assert job["version"] == 1
    assert not job["created_at"].startswith("2000")


def _error_locs(response: Any) -> list[list[Any]]:
    return [e["loc"] for e in response.json()["detail"]]


def test_invalid_bodies_are_422_naming_the_field(api: Any) -> None:
    auth = api.auth("alice")
    base = {"job_type": "probe_job", "name": "x", "schedule": {"kind": "rate", "every": 5}}
    cases = [
        ({**base, "name": ""}, ["body", "name"]),
        ({k: v for k, v in base.items() if k != "schedule"}, ["body", "schedule"]),
        ({**base, "schedule": {"kind": "rate", "every": 0}}, ["body", "schedule", "rate", "every"]),
        (
            {**base, "schedule": {"kind": "cron", "expression": "0 9 1 * 1"}},
            ["body", "schedule", "cron", "expression"],
        ),
        ({**base, "threshold": "high"}, ["body", "threshold"]),
        ({**base, "surprise": 1}, ["body", "surprise"]),
        ({**base, "threshold": 1e300}, ["body", "threshold"]),
        ({**base, "token": MASK}, ["body", "token"]),
        ([1, 2], ["body"]),
    ]
    for body, loc in cases:
        response = api.client.post(JOBS, json=body, headers=auth)
        assert response.status_code == 422, (body, response.text)
        assert loc in _error_locs(response), (body, response.json())


def test_unknown_job_type_lists_the_known_ones(api: Any) -> None:
    response = api.client.post(
        JOBS,
        json={"job_type": "nope", "name": "x", "schedule": {"kind": "rate", "every": 1}},
        headers=api.auth("alice"),
    )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "job_type"]
    assert "probe_job" in error["msg"]

    missing = {"name": "x", "schedule": {"kind": "rate", "every": 1}}
    response = api.client.post(JOBS, json=missing, headers=api.auth("alice"))
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "job_type"], "missing")
    assert error["msg"].startswith("Field required") and "probe_job" in error["msg"]


def test_malformed_json_is_400(api: Any) -> None:
    for raw in [b"{", b"", b'{"threshold": NaN}', b"\xff\xfe"]:
        response = api.client.post(
            JOBS, content=raw, headers={**api.auth("alice"), "Content-Type": "application/json"}
        )
        assert response.status_code == 400, raw
        assert "JSON" in response.json()["detail"]


def test_a_deeply_nested_body_is_400_not_a_crash(api: Any) -> None:
    """A few KB of brackets reach the JSON decoder's recursion limit; somewhat fewer
    would reach it later, in validation: both are refused up front."""
    base = {"job_type": "probe_job", "name": "x", "schedule": {"kind": "rate", "every": 1}}
    for depth in (40, 500, 5000):
        raw = json.dumps({**base, "headers": "@"}).replace('"@"', "[" * depth + "]" * depth)
        response = api.client.post(
            JOBS,
            content=raw.encode(),
            headers={**api.auth("alice"), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (depth, response.text)
        assert "deeper than 32 levels" in response.json()["detail"]
    nested = {**base, "headers": {"X-A": "1"}}  # what real jobs nest stays accepted
    response = api.client.post(JOBS, json=nested, headers=api.auth("alice"))
    assert response.status_code != 400, response.text


def test_a_cron_range_running_backwards_is_422_with_the_ranges_to_write(api: Any) -> None:
    auth = api.auth("alice")
    body = {
        "job_type": "probe_job",
        "name": "night shift",
        "schedule": {"kind": "cron", "expression": "0 22-6 * * *"},
    }
    response = api.client.post(JOBS, json=body, headers=auth)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "schedule", "cron", "expression"]
    assert error["msg"] == "hour range 22-6 runs backwards; write it as two ranges, e.g. 22-23,0-6"
    body["schedule"]["expression"] = "0 22-23,0-6 * * *"
    job = api.client.post(JOBS, json=body, headers=auth).json()
    body["schedule"]["expression"] = "0 22-6 * * *"
    response = api.client.put(f"{JOBS}/{job['job_id']}", json=body, headers=auth)
    assert response.status_code == 422, response.text


def test_schedules_that_would_never_fire_are_422_naming_the_field(api: Any) -> None:
    auth = api.auth("alice")
    base = {"job_type": "probe_job", "name": "never"}
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    cases = [
        (
            {"kind": "cron", "expression": "0 0 31 2 *"},
            ["body", "schedule", "cron", "expression"],
            "no date matches '0 0 31 2 *' (a day no month has): it would never fire",
        ),
        (
            {"kind": "rate", "every": 5, "end_at": past},
            ["body", "schedule", "rate", "end_at"],
            "schedule.end_at is in the past; the job would never fire",
        ),
    ]
    for schedule, loc, msg in cases:
        response = api.client.post(JOBS, json={**base, "schedule": schedule}, headers=auth)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [{"loc": loc, "msg": msg, "type": "value_error"}]


def test_an_end_before_the_start_is_422_naming_end_at(api: Any) -> None:
    start = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    end = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    schedule = {"kind": "rate", "every": 5, "start_at": start, "end_at": end}
    body = {"job_type": "probe_job", "name": "window", "schedule": schedule}
    response = api.client.post(JOBS, json=body, headers=api.auth("alice"))
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "schedule", "rate", "end_at"]
    assert "end_at must be later than start_at" in error["msg"]


def test_a_stored_backwards_cron_range_can_be_kept_by_an_update(
    api: Any, registry: JobTypeRegistry
) -> None:
    """A job stored before the rule keeps working: an edit that keeps its expression
    (here a rename) is accepted."""
    schedule = {"kind": "cron", "expression": "0 22-6 * * *"}
    probe = registry.CLASS_MAPPING["probe_job"]
    stored = api.repo.create(probe(owner_id="alice", name="night", schedule=schedule))
    body = {"job_type": "probe_job", "name": "renamed", "schedule": schedule}
    response = api.client.put(f"{JOBS}/{stored.job_id}", json=body, headers=api.auth("alice"))
    assert response.status_code == 200, response.text
    assert response.json()["schedule"]["expression"] == "0 22-6 * * *"


def test_put_replaces_editable_fields_and_keeps_identity(api: Any) -> None:
    job = api.create(headers={"X-Key": "k1", "X-Other": "o1"}, notify=["a://1", "b://2"], token="t")
    auth = api.auth("alice")
    sent = {**job, "name": "renamed", "enabled": False, "threshold": 0.75}
    sent["headers"] = {**job["headers"], "X-New": "n1"}  # masked values sent back + one new
    sent["notify"] = [MASK, "c://3"]
    sent["token"] = "rotated"
    sent["created_at"] = "1999-01-01T00:00:00Z"
    response = api.client.put(f"{JOBS}/{job['job_id']}", json=sent, headers=auth)
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["job_id"] == job["job_id"]
    assert out["owner_id"] == "alice"
    assert out["created_at"] == job["created_at"]
    assert out["version"] == 2
    assert response.headers["ETag"] == '"2"'
    assert out["enabled"] is False
    assert out["name"] == "renamed"
    assert out["headers"] == {"X-Key": MASK, "X-Other": MASK, "X-New": MASK}
    stored = api.repo.get("alice", job["job_id"])
    assert stored["headers"] == {"X-Key": "k1", "X-Other": "o1", "X-New": "n1"}
    assert stored["notify"] == ["a://1", "c://3"]
    assert stored["token"] == "rotated"
    assert datetime.fromisoformat(stored["updated_at"]) >= datetime.fromisoformat(job["updated_at"])
    # Fields left out take their defaults: PUT replaces, it does not merge.
    minimal = {"name": "bare", "schedule": {"kind": "rate", "every": 1, "unit": "hours"}}
    response = api.client.put(f"{JOBS}/{job['job_id']}", json=minimal, headers=auth)
    assert response.status_code == 200, response.text
    assert api.repo.get("alice", job["job_id"])["headers"] == {}
    assert response.json()["enabled"] is True


def test_pause_and_resume_through_enabled(api: Any) -> None:
    job = api.create()
    auth = api.auth("alice")
    for enabled in (False, True):
        body = {**job, "enabled": enabled, "version": None}
        response = api.client.put(f"{JOBS}/{job['job_id']}", json=body, headers=auth)
        assert response.status_code == 200, response.text
        assert api.repo.get("alice", job["job_id"])["enabled"] is enabled


def test_version_conflicts_are_412_with_if_match_and_409_with_a_body_version(api: Any) -> None:
    job = api.create()
    auth = api.auth("alice")
    url = f"{JOBS}/{job['job_id']}"
    first = api.client.put(url, json={**job, "name": "one"}, headers={**auth, "If-Match": '"1"'})
    assert first.status_code == 200
    stale = api.client.put(url, json={**job, "name": "two"}, headers={**auth, "If-Match": '"1"'})
    assert stale.status_code == 412
    stale_body = api.client.put(url, json={**job, "name": "two"}, headers=auth)  # version 1
    assert stale_body.status_code == 409
    assert api.repo.get("alice", job["job_id"])["name"] == "one"
    bad_etag = api.client.put(url, json=job, headers={**auth, "If-Match": "yesterday"})
    assert bad_etag.status_code == 400
    assert api.client.delete(url, headers={**auth, "If-Match": '"1"'}).status_code == 412
    assert api.client.delete(url, headers={**auth, "If-Match": '"2"'}).status_code == 204


def test_put_cannot_change_the_job_type(api: Any) -> None:
    job = api.create()
    response = api.client.put(
        f"{JOBS}/{job['job_id']}", json={**job, "job_type": "other"}, headers=api.auth("alice")
    )
    assert response.status_code == 422
    assert ["body", "job_type"] in _error_locs(response)


def test_delete_then_get_is_404(api: Any) -> None:
    job = api.create()
    auth = api.auth("alice")
    assert api.client.delete(f"{JOBS}/{job['job_id']}", headers=auth).status_code == 204
    assert api.client.get(f"{JOBS}/{job['job_id']}", headers=auth).status_code == 404
    assert api.client.delete(f"{JOBS}/{job['job_id']}", headers=auth).status_code == 404
    assert api.client.get(f"{JOBS}/bad!id", headers=auth).status_code in (404, 422)


def test_list_paginates_with_an_opaque_cursor(api: Any) -> None:
    made = {api.create(name=f"job {i}")["job_id"] for i in range(5)}
    auth = api.auth("alice")
    seen: list[str] = []
    url = f"{JOBS}?limit=2"
    while True:
        page = api.client.get(url, headers=auth).json()
        assert len(page["items"]) <= 2
        seen += [j["job_id"] for j in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"{JOBS}?limit=2&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert api.client.get(f"{JOBS}?cursor=garbage", headers=auth).status_code == 400
    assert api.client.get(f"{JOBS}?limit=0", headers=auth).status_code == 422


def test_run_now_publishes_a_manual_fire_with_the_real_job(api: Any) -> None:
    job = api.create(token="real-secret")
    response = api.client.post(f"{JOBS}/{job['job_id']}/run", headers=api.auth("alice"))
    assert response.status_code == 202, response.text
    (fired,) = api.publisher.fired
    assert response.json()["fire_id"] == fired.fire_id
    assert fired.manual is True
    assert fired.job_id == job["job_id"] and fired.owner_id == "alice"
    assert fired.job_type == "probe_job"
    assert fired.job["token"] == "real-secret"
    assert abs(fired.scheduled_time - datetime.now(UTC)) < timedelta(seconds=30)
    missing = api.client.post(f"{JOBS}/nope/run", headers=api.auth("alice"))
    assert missing.status_code == 404


def test_runs_are_listed_newest_first_with_pagination(api: Any) -> None:
    job = api.create()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(3):
        api.runs.record(
            "alice",
            Run(
                job_id=job["job_id"],
                fire_id=f"f{i}",
                scheduled_time=start + timedelta(minutes=i),
                started_at=start + timedelta(minutes=i),
                status="ok",
                summary=f"run {i}",
            ),
        )
    auth = api.auth("alice")
    first = api.client.get(f"{JOBS}/{job['job_id']}/runs?limit=2", headers=auth).json()
    assert [r["summary"] for r in first["items"]] == ["run 2", "run 1"]
    rest = api.client.get(
        f"{JOBS}/{job['job_id']}/runs?limit=2&cursor={first['next_cursor']}", headers=auth
    ).json()
    assert [r["summary"] for r in rest["items"]] == ["run 0"]
    assert rest["next_cursor"] is None
    assert api.client.get(f"{JOBS}/nope/runs", headers=auth).status_code == 404
    for url in (f"{JOBS}/{job['job_id']}/runs?cursor=garbage", f"{JOBS}?cursor=garbage"):
        response = api.client.get(url, headers=auth)
        assert response.status_code == 400
        assert response.json()["detail"].count("cursor:") == 1, response.text


def test_run_and_runs_without_their_adapters_are_503(
    tmp_path: Path, registry: JobTypeRegistry
) -> None:
    from serverless_scheduler_common import Settings
    from serverless_scheduler_items.app import create_app
    from serverless_scheduler_items.auth import SqliteTokenStore
    from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

    db = tmp_path / "scheduler.db"
    tokens = SqliteTokenStore(db)
    client = TestClient(
        create_app(
            settings=Settings(),
            repo=SqliteJobRepository(db),
            authenticator=tokens,
            registry=registry,
            static_dir=tmp_path / "none",
        )
    )
    auth = {"Authorization": f"Bearer {tokens.create('alice')}"}
    body = {"job_type": "probe_job", "name": "x", "schedule": {"kind": "rate", "every": 1}}
    job = client.post(JOBS, json=body, headers=auth).json()
    assert client.post(f"{JOBS}/{job['job_id']}/run", headers=auth).status_code == 503
    assert client.get(f"{JOBS}/{job['job_id']}/runs", headers=auth).status_code == 503


def test_bodies_over_the_limit_are_413(api: Any) -> None:
    auth = api.auth("alice")
    big = {
        "job_type": "probe_job",
        "name": "x",
        "schedule": {"kind": "rate", "every": 1},
        "notify": ["x" * 1000] * 80,
    }
    response = api.client.post(JOBS, json=big, headers=auth)
    assert response.status_code == 413
    assert "detail" in response.json()

    def chunks() -> Any:
        for _ in range(80):
            yield b" " * 1024

    chunked = api.client.post(
        JOBS, content=chunks(), headers={**auth, "Content-Type": "application/json"}
    )
    assert chunked.status_code == 413
    assert api.repo.list("alice").items == []


def test_cors_allows_only_configured_origins(api_factory: Any) -> None:
    api = api_factory(cors_origins=["https://ui.example.com"])
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization",
    }
    ok = api.client.options(JOBS, headers={"Origin": "https://ui.example.com", **preflight})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://ui.example.com"
    evil = api.client.options(JOBS, headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in evil.headers
    get = api.client.get("/api/v1/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in get.headers


def test_job_types_returns_schemas_and_secret_fields(api: Any) -> None:
    response = api.client.get("/api/v1/job_types", headers=api.auth("alice"))
    assert response.status_code == 200
    (item,) = response.json()["items"]
    assert item["job_type"] == "probe_job"
    assert item["secret_fields"] == ["headers", "notify", "token"]
    assert "job_id" not in item["schema"]["properties"]
    assert "threshold" in item["schema"]["properties"]
    assert "job_type" in item["schema"]["required"]


def test_openapi_describes_every_route_body_and_error(api: Any) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    assert set(paths) >= {
        "/api/v1/health",
        "/api/v1/job_types",
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/run",
        "/api/v1/jobs/{job_id}/runs",
    }
    create = paths["/api/v1/jobs"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobInput"
    }
    assert {"201", "401", "409", "413", "422"} <= set(create["responses"])
    assert {"409", "412"} <= set(paths["/api/v1/jobs/{job_id}"]["put"]["responses"])
    schemas = spec["components"]["schemas"]
    assert "threshold" in schemas["JobInput_probe_job"]["properties"]
    assert "job_id" not in schemas["JobInput_probe_job"]["properties"]
    json.dumps(spec)


def test_static_ui_is_served_with_a_content_security_policy(
    tmp_path: Path, registry: JobTypeRegistry
) -> None:
    from serverless_scheduler_common import Settings
    from serverless_scheduler_items.app import create_app
    from serverless_scheduler_items.auth import SqliteTokenStore
    from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

    ui = tmp_path / "ui"
    ui.mkdir()
    (ui / "index.html").write_text("<!doctype html><title>ui</title>")
    db = tmp_path / "scheduler.db"
    client = TestClient(
        create_app(
            settings=Settings(),
            repo=SqliteJobRepository(db),
            authenticator=SqliteTokenStore(db),
            registry=registry,
            static_dir=ui,
        )
    )
    page = client.get("/")
    assert page.status_code == 200
    assert "<title>ui</title>" in page.text
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    api = client.get("/api/v1/health")
    assert api.json() == {"status": "ok"}
    assert "Content-Security-Policy" not in api.headers
    assert client.get("/api/v1/jobs").status_code == 401
    for path in ("/", "/api/v1/health", "/api/v1/docs"):  # never framed (clickjacking)
        assert client.get(path).headers["X-Frame-Options"] == "DENY", path


def test_the_docs_page_serves_swagger_from_the_app_when_given_its_files(
    tmp_path: Path, registry: JobTypeRegistry
) -> None:
    """Local mode hands Swagger UI's files to the app: the docs page works offline."""
    from serverless_scheduler_common import Settings
    from serverless_scheduler_items.app import create_app
    from serverless_scheduler_items.auth import SqliteTokenStore
    from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

    assets = tmp_path / "assets"
    assets.mkdir()
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"):
        (assets / name).write_text(f"/* {name} */")
    db = tmp_path / "scheduler.db"
    common = {
        "settings": Settings(data_dir=tmp_path),
        "repo": SqliteJobRepository(db),
        "authenticator": SqliteTokenStore(db),
        "registry": registry,
    }
    offline = TestClient(create_app(**common, docs_assets=assets))
    page = offline.get("/api/v1/docs")
    assert page.status_code == 200
    assert "/api/v1/docs-assets/swagger-ui-bundle.js" in page.text
    assert "cdn." not in page.text
    script = offline.get("/api/v1/docs-assets/swagger-ui-bundle.js")
    assert (script.status_code, script.text) == (200, "/* swagger-ui-bundle.js */")
    assert offline.get("/api/v1/openapi.json").status_code == 200

    online = TestClient(create_app(**common)).get("/api/v1/docs")
    assert online.status_code == 200 and "cdn." in online.text
