"""Schemathesis over the app's own OpenAPI: no 5xx, every response matches the schema.

Runs against the local app (SQLite, installed plugins' job types) with a valid token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from serverless_scheduler_common import Settings
from serverless_scheduler_common.plugins import default_registry, get_plugin_manager
from serverless_scheduler_common.state import SqliteStateStore
from serverless_scheduler_items.app import create_app
from serverless_scheduler_items.auth import SqliteTokenStore
from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


class _Fuzz:
    token = ""


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    db: Path = tmp_path_factory.mktemp("fuzz") / "scheduler.db"
    tokens = SqliteTokenStore(db)
    _Fuzz.token = tokens.create("fuzzer")
    repo = SqliteJobRepository(db)
    registry = default_registry()
    # Short ids are what the generator tries first, so GET/PUT/DELETE/run also hit jobs
    # that exist, not only 404s.
    for job_id in ["0", "00", "A", "a", "_", "-", "0A"]:
        repo.create(
            registry.parse_job(
                {
                    "job_type": "webhook_job",
                    "job_id": job_id,
                    "owner_id": "fuzzer",
                    "name": f"seed {job_id}",
                    "schedule": {"kind": "rate", "every": 5},
                    "url": "https://example.com/hook",
                    "headers": {"X-Token": "secret"},
                }
            )
        )
    app = create_app(
        settings=Settings(),
        repo=repo,
        runs=_EmptyRuns(),
        publisher=_NullPublisher(),
        state=SqliteStateStore(db),
        authenticator=tokens,
        registry=registry,
        plugin_manager=get_plugin_manager(),
        static_dir=db.parent / "no-ui",
    )
    return schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


class _NullPublisher:
    def publish(self, fired: Any) -> None:
        return None


class _EmptyRuns:
    def record(self, owner_id: str, run: Any) -> None:
        return None

    def list(
        self, owner_id: str, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Any:
        from serverless_scheduler_common.ports import Page

        return Page(items=[], next_cursor=None)

    def forget_job(self, owner_id: str, job_id: str) -> int:
        return 0


OPERATIONS = [
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/job_types"),
    ("GET", "/api/v1/jobs"),
    ("POST", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{job_id}"),
    ("PUT", "/api/v1/jobs/{job_id}"),
    ("DELETE", "/api/v1/jobs/{job_id}"),
    ("POST", "/api/v1/jobs/{job_id}/run"),
    ("GET", "/api/v1/jobs/{job_id}/runs"),
    ("GET", "/api/v1/jobs/{job_id}/changes"),
]


def test_every_operation_is_fuzzed(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_api_never_answers_5xx_or_off_schema(api_schema: Any, method: str, path: str) -> None:
    strategy = api_schema[path][method].as_strategy()

    @given(case=strategy)
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def check(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {_Fuzz.token}"}, checks=CHECKS)

    check()
