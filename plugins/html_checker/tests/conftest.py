"""Fixtures for the HTML checker: pages served on 127.0.0.1, a real SQLite state store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from serverless_scheduler_common import JobFired, RunContext, RunOutcome, Settings
from serverless_scheduler_common.state import SqliteStateStore
from serverless_scheduler_common.testing import RecordingNotifier
from serverless_scheduler_html_checker.plugin import (
    HTMLMonitorJob,
    serverless_scheduler_handle_job,
)


@dataclass
class Pages:
    """Mutable pages served by the test HTTP server (path -> (body, content type))."""

    server: HTTPServer
    content: dict[str, tuple[bytes, str, dict[str, str]]] = field(default_factory=dict)

    def set(
        self,
        path: str,
        body: str | bytes,
        content_type: str = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> str:
        data = body.encode("utf-8") if isinstance(body, str) else body
        if path not in self.content:
            self.server.expect_request(path).respond_with_handler(self._handler(path))
        self.content[path] = (data, content_type, headers or {})
        return self.server.url_for(path)

    def _handler(self, path: str) -> Any:
        def handle(request: Request) -> Response:
            data, content_type, headers = self.content[path]
            etag = headers.get("ETag")
            if etag and request.headers.get("If-None-Match") == etag:
                return Response(status=304, headers={"ETag": etag})
            return Response(data, content_type=content_type, headers=headers)

        return handle


@dataclass
class Checker:
    """Calls the plugin's real hook the way the runtime does."""

    context: RunContext
    store: SqliteStateStore
    notifier: RecordingNotifier
    fires: int = 0

    def job(self, url: str, **fields: Any) -> HTMLMonitorJob:
        fields.setdefault("notify", ["json://example.invalid/hook"])
        return HTMLMonitorJob(
            owner_id="alice",
            name="watch",
            schedule={"kind": "rate", "every": 5, "unit": "minutes"},
            url=url,
            **fields,
        )

    def fired(self, job: HTMLMonitorJob, fire_no: int | None = None) -> JobFired:
        if fire_no is None:
            self.fires += 1
            fire_no = self.fires
        return JobFired(
            job_type=job.job_type,
            job_id=job.job_id,
            owner_id=job.owner_id,
            scheduled_time=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=5 * fire_no),
            job=job.snapshot(),
        )

    def run(self, job: HTMLMonitorJob, fired: JobFired | None = None) -> RunOutcome:
        outcome = serverless_scheduler_handle_job(
            job=job, fired=fired or self.fired(job), context=self.context
        )
        assert outcome is not None
        return outcome


@pytest.fixture
def pages(httpserver: HTTPServer) -> Pages:
    return Pages(httpserver)


@pytest.fixture
def settings() -> Settings:
    return Settings(allow_private_networks=True, http_timeout_s=2.0)


@pytest.fixture
def checker(tmp_path: Path, settings: Settings) -> Checker:
    store = SqliteStateStore(tmp_path / "scheduler.db")
    notifier = RecordingNotifier()
    context = RunContext(settings=settings, state=store, notifier=notifier)
    return Checker(context=context, store=store, notifier=notifier)
