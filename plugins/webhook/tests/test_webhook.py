"""Webhook plugin against a local HTTP server: method, headers, body, status, timeout,
and a secret header that never shows up in API responses, run history or logs."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from serverless_scheduler_common import JobTypeRegistry, Settings
from serverless_scheduler_webhook.plugin import WebhookJob

SECRET = "s3cr3t-token-value-9f8e7d"
RATE = {"kind": "rate", "every": 5, "unit": "minutes"}


def webhook(url: str, **fields: Any) -> WebhookJob:
    return WebhookJob(name="hook", owner_id="alice", schedule=RATE, url=url, **fields)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, allow_private_networks=True, max_attempts=2)


def test_sends_method_headers_and_body(
    fire_job: Any, httpserver: HTTPServer, settings: Settings
) -> None:
    httpserver.expect_request(
        "/hook",
        method="PUT",
        headers={"X-Api-Key": SECRET, "Content-Type": "application/json"},
        data='{"release": true}',
    ).respond_with_data("accepted", status=202)
    job = webhook(
        httpserver.url_for("/hook"),
        method="PUT",
        headers={"X-Api-Key": SECRET, "Content-Type": "application/json"},
        body='{"release": true}',
    )
    run = fire_job(job, settings=settings)
    httpserver.check_assertions()
    assert run.status == "ok"
    assert run.summary.startswith("PUT http://localhost:")
    assert "-> 202" in run.summary
    assert run.detail == "accepted"


def test_unexpected_status_is_an_error_run(
    fire_job: Any, httpserver: HTTPServer, settings: Settings
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("nope", status=500)
    run = fire_job(webhook(httpserver.url_for("/hook"), expected_status=[200]), settings=settings)
    assert run.status == "error"
    assert "answered 500; expected one of 200" in run.summary


def test_expected_status_list_accepts_other_codes(
    fire_job: Any, httpserver: HTTPServer, settings: Settings
) -> None:
    httpserver.expect_request("/gone", method="DELETE").respond_with_data("", status=410)
    job = webhook(httpserver.url_for("/gone"), method="DELETE", expected_status=[404, 410])
    assert fire_job(job, settings=settings).status == "ok"


def test_timeout_is_an_error_run(fire_job: Any, httpserver: HTTPServer, settings: Settings) -> None:
    def slow(request: Request) -> Response:
        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    started = time.monotonic()
    run = fire_job(
        webhook(httpserver.url_for("/slow"), method="GET", timeout_s=0.3), settings=settings
    )
    assert time.monotonic() - started < 1.4
    assert run.status == "error"
    assert "failed" in run.summary


def test_private_address_is_blocked_without_the_operator_switch(
    fire_job: Any, httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/hook").respond_with_data("should not be called")
    run = fire_job(webhook(httpserver.url_for("/hook")), settings=Settings(data_dir=tmp_path))
    assert run.status == "error"
    assert httpserver.log == []


def test_field_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="expected_status"):
        webhook("https://example.com/", expected_status=[99])
    with pytest.raises(ValidationError, match="headers"):
        webhook("https://example.com/", headers={"X-Bad": "a\r\nInjected: 1"})
    # A write through the API: a name lenient servers read as a second Host header,
    # the message framing, names that are not tokens.
    registry = JobTypeRegistry()
    registry.add(WebhookJob, plugin="webhook")
    base = {"job_type": "webhook_job", "name": "hook", "owner_id": "alice", "schedule": RATE}
    for name in ("Host\x0b", "Host", "X\x00", "Content-Length", "Transfer-Encoding", "X Y"):
        data = {**base, "url": "https://example.com/", "headers": {name: "internal.example"}}
        with pytest.raises(ValidationError, match="headers"):
            registry.parse_job(data, write=True)
    # A job stored before those rules still loads (its fires validate it): the facility
    # leaves reserved headers out when it sends.
    for name in ("Host", "Connection", "X\x0b"):
        data = {**base, "url": "https://example.com/", "headers": {name: "close"}}
        assert registry.parse_job(data).headers == {name: "close"}
    with pytest.raises(ValidationError, match="headers"):  # what could split a request
        webhook("https://example.com/", headers={"X Y": "a"})
    with pytest.raises(ValidationError, match="url"):
        webhook("ftp://example.com/")


def test_secret_header_never_in_api_responses_runs_or_logs(
    tmp_path: Path, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end in local mode: create through the API, run now, read job and runs."""
    from fastapi.testclient import TestClient

    from serverless_scheduler_common.runtime.local import create_local_dispatcher
    from serverless_scheduler_items.app import create_app
    from serverless_scheduler_items.auth import SqliteTokenStore
    from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

    caplog.set_level(logging.DEBUG)
    # the endpoint echoes the header back: the run's detail must still not show it
    httpserver.expect_request(
        "/hook", headers={"Authorization": f"Bearer {SECRET}"}
    ).respond_with_handler(
        lambda request: Response(f"hello {request.headers.get('Authorization')}")
    )
    settings = Settings(data_dir=tmp_path, allow_private_networks=True)
    db = tmp_path / "scheduler.db"
    jobs = SqliteJobRepository(db)
    dispatcher = create_local_dispatcher(settings, jobs=jobs, workers=2)
    dispatcher.start()
    tokens = SqliteTokenStore(db)
    app = create_app(
        settings=settings,
        repo=jobs,
        runs=dispatcher.runtime.runs,
        publisher=dispatcher,
        authenticator=tokens,
        static_dir=tmp_path / "no-ui",
    )
    auth = {"Authorization": f"Bearer {tokens.create('alice')}"}
    try:
        with TestClient(app) as client:
            created = client.post(
                "/api/v1/jobs",
                headers=auth,
                json={
                    "job_type": "webhook_job",
                    "name": "release",
                    "schedule": RATE,
                    "url": httpserver.url_for("/hook"),
                    "method": "GET",
                    "headers": {"Authorization": f"Bearer {SECRET}"},
                },
            )
            assert created.status_code == 201, created.text
            job_id = created.json()["job_id"]
            ran = client.post(f"/api/v1/jobs/{job_id}/run", headers=auth)
            assert ran.status_code in (200, 201, 202), ran.text
            assert dispatcher.wait_idle(timeout=10)
            responses = [
                created,
                ran,
                client.get(f"/api/v1/jobs/{job_id}", headers=auth),
                client.get("/api/v1/jobs", headers=auth),
                client.get(f"/api/v1/jobs/{job_id}/runs", headers=auth),
            ]
    finally:
        dispatcher.stop(drain=False, timeout=5)
    httpserver.check_assertions()  # the real header was sent
    runs = responses[-1].json()["items"]
    assert [r["status"] for r in runs] == ["ok"]
    assert "[redacted]" in runs[0]["detail"]
    for response in responses:
        assert SECRET not in response.text
    assert SECRET not in caplog.text
