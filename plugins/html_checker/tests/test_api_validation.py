"""The items API over `html_monitor_job`: bad selectors and past one-off times are a 422
at create/update, naming the field, while jobs already stored keep loading."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from serverless_scheduler_common import JobTypeRegistry, Settings
from serverless_scheduler_common.testing import run_fire
from serverless_scheduler_html_checker import plugin
from serverless_scheduler_html_checker.plugin import HTMLMonitorJob
from serverless_scheduler_items.app import create_app
from serverless_scheduler_items.auth import SqliteTokenStore
from serverless_scheduler_items.sqlite_repository import SqliteJobRepository

JOBS = "/api/v1/jobs"
RATE = {"kind": "rate", "every": 5, "unit": "minutes"}


@dataclass
class Api:
    client: TestClient
    repo: SqliteJobRepository
    auth: dict[str, str]

    def post(self, **fields: Any) -> Any:
        body = {"job_type": "html_monitor_job", "name": "w", "schedule": RATE, **fields}
        body.setdefault("url", "https://example.com/")
        return self.client.post(JOBS, json=body, headers=self.auth)

    def put(self, job_id: str, **fields: Any) -> Any:
        body = {"job_type": "html_monitor_job", "name": "w", "schedule": RATE, **fields}
        body.setdefault("url", "https://example.com/")
        return self.client.put(f"{JOBS}/{job_id}", json=body, headers=self.auth)

    def store(self, **fields: Any) -> str:
        """A job written straight to the store, as an earlier version accepted it."""
        fields.setdefault("schedule", RATE)
        job = HTMLMonitorJob(owner_id="alice", name="w", url="https://example.com/", **fields)
        return self.repo.create(job).job_id


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    registry = JobTypeRegistry()
    registry.add(HTMLMonitorJob, plugin="html-checker-tests")
    db = tmp_path / "scheduler.db"
    repo = SqliteJobRepository(db)
    tokens = SqliteTokenStore(db)
    app = create_app(
        settings=Settings(data_dir=tmp_path),
        repo=repo,
        authenticator=tokens,
        registry=registry,
        static_dir=tmp_path / "no-ui",
    )
    with TestClient(app) as client:
        yield Api(client, repo, {"Authorization": f"Bearer {tokens.create('alice')}"})


def _only_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert isinstance(error, dict)
    return error


def _iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


# -- selectors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value", "text"),
    [
        ("css_selector", "##[[", "css_selector '##[[' is not a valid CSS selector"),
        ("xpath", "//[[", "xpath '//[[' is not a valid XPath expression"),
    ],
)
def test_create_and_update_refuse_a_bad_selector(
    api: Api, field: str, value: str, text: str
) -> None:
    error = _only_error(api.post(**{field: value}))
    assert error["loc"] == ["body", field]
    assert text in error["msg"]
    assert api.client.get(JOBS, headers=api.auth).json()["items"] == []

    created = api.post(css_selector="#plans", xpath="//h1")
    assert created.status_code == 201, created.text
    error = _only_error(api.put(created.json()["job_id"], **{field: value}))
    assert error["loc"] == ["body", field]
    assert text in error["msg"]


def test_a_long_bad_selector_is_not_echoed_whole(api: Api) -> None:
    selector = "##" + "y" * 450
    error = _only_error(api.post(css_selector=selector))
    assert len(error["msg"]) < 200
    assert "y" * 81 not in api.post(css_selector=selector).text


def test_a_stored_job_with_a_bad_selector_still_loads(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as earlier_version:
        earlier_version.setattr(plugin, "css_selector_problem", lambda selector: None)
        job_id = api.store(css_selector="##[[")
    fetched = api.client.get(f"{JOBS}/{job_id}", headers=api.auth)
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["css_selector"] == "##[["
    listed = api.client.get(JOBS, headers=api.auth).json()["items"]
    assert [j["job_id"] for j in listed] == [job_id]
    # Saving it again needs a valid selector; fixing it works.
    assert _only_error(api.put(job_id, css_selector="##[["))["loc"] == ["body", "css_selector"]
    assert api.put(job_id, css_selector="#plans").status_code == 200


def test_a_fire_of_a_stored_bad_selector_is_an_invalid_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime validates each fire's job with the same class: such a fire ends as an
    error run and its message is dead-lettered, as any snapshot that no longer validates."""
    with monkeypatch.context() as earlier_version:
        earlier_version.setattr(plugin, "css_selector_problem", lambda selector: None)
        job = HTMLMonitorJob(
            name="w", schedule=RATE, url="https://example.com/", css_selector="##[["
        )
    run = run_fire(job, tmp_path)
    assert run.status == "error"
    assert "invalid job snapshot" in run.summary
    assert "css_selector '##[[' is not a valid CSS selector" in run.summary


# -- one-off times ---------------------------------------------------------------------------
def test_create_refuses_an_at_time_in_the_past(api: Api) -> None:
    error = _only_error(api.post(schedule={"kind": "at", "at": "2020-12-01T09:00:00+01:00"}))
    assert error["loc"] == ["body", "schedule", "at", "at"]
    assert "schedule.at" in error["msg"]
    assert "is in the past" in error["msg"]
    assert api.client.get(JOBS, headers=api.auth).json()["items"] == []


@pytest.mark.parametrize("delta", [timedelta(hours=1), timedelta(seconds=-30)])
def test_create_accepts_a_future_at_time_or_one_within_clock_skew(
    api: Api, delta: timedelta
) -> None:
    response = api.post(schedule={"kind": "at", "at": _iso(delta)})
    assert response.status_code == 201, response.text


def test_an_update_keeping_a_past_at_time_works(api: Api) -> None:
    """A one-off job that already fired can still be renamed, paused, edited."""
    past = {"kind": "at", "at": "2020-12-01T09:00:00+01:00"}
    job_id = api.store(schedule=past)
    renamed = api.put(job_id, name="renamed", schedule=past, enabled=False)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "renamed"
    # The same instant written with another offset is no change either.
    same = {"kind": "at", "at": "2020-12-01T08:00:00Z"}
    assert api.put(job_id, schedule=same).status_code == 200


def test_an_update_setting_a_past_at_time_is_refused(api: Api) -> None:
    stored_at = api.store(schedule={"kind": "at", "at": "2020-12-01T09:00:00+01:00"})
    stored_rate = api.store()
    for job_id in (stored_at, stored_rate):
        error = _only_error(
            api.put(job_id, schedule={"kind": "at", "at": "2021-01-01T09:00:00+01:00"})
        )
        assert error["loc"] == ["body", "schedule", "at", "at"]
        assert "is in the past" in error["msg"]
    moved = api.put(stored_at, schedule={"kind": "at", "at": _iso(timedelta(days=1))})
    assert moved.status_code == 200, moved.text
