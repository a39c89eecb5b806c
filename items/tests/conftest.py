"""Fixtures of the items tests: a test job type, both repositories, fakes, an API client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from fastapi.testclient import TestClient
from pydantic import Field

from serverless_scheduler_common import JobFired, JobTypeRegistry, Run, ScheduledJob, Settings
from serverless_scheduler_common.ports import JobRepository, Page
from serverless_scheduler_items.app import create_app
from serverless_scheduler_items.auth import SqliteTokenStore
from serverless_scheduler_items.pagination import decode_cursor, encode_cursor
from serverless_scheduler_items.sqlite_repository import SqliteJobRepository


class ProbeJob(ScheduledJob):
    """A job type with every kind of secret field and a float, for the items tests."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"headers", "notify", "token"})

    job_type: Literal["probe_job"] = "probe_job"
    url: str = Field(default="https://example.com/", max_length=200)
    threshold: float = 0.5
    count: int = 0
    headers: dict[str, str] = Field(default_factory=dict)
    notify: list[str] = Field(default_factory=list)
    token: str | None = None


def probe(owner: str = "alice", **fields: Any) -> ProbeJob:
    fields.setdefault("name", "probe")
    fields.setdefault("schedule", {"kind": "rate", "every": 5, "unit": "minutes"})
    return ProbeJob(owner_id=owner, **fields)


@pytest.fixture
def make_job() -> Any:
    """Factory of ProbeJob instances: `make_job(owner="alice", **fields)`."""
    return probe


@pytest.fixture
def job_cls() -> type[ProbeJob]:
    return ProbeJob


@pytest.fixture
def registry() -> JobTypeRegistry:
    registry = JobTypeRegistry()
    registry.add(ProbeJob, plugin="items-tests")
    return registry


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Moto with fake credentials; nothing reaches AWS."""
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


@pytest.fixture
def dynamodb_client(aws: None) -> Any:
    import boto3

    from serverless_scheduler_items.dynamodb_repository import jobs_table_definition

    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(**jobs_table_definition("jobs"))
    return client


@pytest.fixture(params=["sqlite", "dynamodb"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> JobRepository:
    """Each contract test runs once per adapter."""
    if request.param == "sqlite":
        return SqliteJobRepository(tmp_path / "scheduler.db")
    from serverless_scheduler_items.dynamodb_repository import DynamoDBJobRepository

    return DynamoDBJobRepository(request.getfixturevalue("dynamodb_client"), "jobs")


class FakePublisher:
    """Publisher that records what it was handed."""

    def __init__(self) -> None:
        self.fired: list[JobFired] = []

    def publish(self, fired: JobFired) -> None:
        self.fired.append(fired)


class FakeRunRepository:
    """RunRepository in memory: newest first, cursor = last run_id of the page."""

    def __init__(self) -> None:
        self.runs: dict[tuple[str, str], list[Run]] = {}

    def record(self, owner_id: str, run: Run) -> None:
        runs = self.runs.setdefault((owner_id, run.job_id), [])
        runs[:] = [r for r in runs if r.run_id != run.run_id] + [run]
        runs.sort(key=lambda r: r.started_at, reverse=True)

    def list(
        self, owner_id: str, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        runs = self.runs.get((owner_id, job_id), [])
        start = 0
        if cursor:
            after = decode_cursor(cursor)
            start = next(i for i, r in enumerate(runs) if r.run_id == after) + 1
        page = runs[start : start + limit]
        more = start + limit < len(runs)
        return Page(items=page, next_cursor=encode_cursor(page[-1].run_id) if more else None)

    def forget_job(self, owner_id: str, job_id: str) -> int:
        return len(self.runs.pop((owner_id, job_id), []))


@dataclass
class Api:
    """A TestClient over the SQLite-backed app, with two users' tokens."""

    client: TestClient
    tokens: SqliteTokenStore
    repo: SqliteJobRepository
    publisher: FakePublisher
    runs: FakeRunRepository
    users: dict[str, str] = field(default_factory=dict)

    def auth(self, user: str) -> dict[str, str]:
        if user not in self.users:
            self.users[user] = self.tokens.create(user)
        return {"Authorization": f"Bearer {self.users[user]}"}

    def create(self, user: str = "alice", **fields: Any) -> dict[str, Any]:
        body = {
            "job_type": "probe_job",
            "name": "probe",
            "schedule": {"kind": "rate", "every": 5, "unit": "minutes"},
            **fields,
        }
        response = self.client.post("/api/v1/jobs", json=body, headers=self.auth(user))
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


def make_api(tmp_path: Path, registry: JobTypeRegistry, **settings: Any) -> Api:
    db = tmp_path / "scheduler.db"
    repo = SqliteJobRepository(db)
    tokens = SqliteTokenStore(db)
    publisher = FakePublisher()
    runs = FakeRunRepository()
    app = create_app(
        settings=Settings(data_dir=tmp_path, **settings),
        repo=repo,
        runs=runs,
        publisher=publisher,
        authenticator=tokens,
        registry=registry,
        static_dir=tmp_path / "no-ui",
    )
    return Api(TestClient(app), tokens, repo, publisher, runs)


@pytest.fixture
def api(tmp_path: Path, registry: JobTypeRegistry) -> Api:
    return make_api(tmp_path, registry)


@pytest.fixture
def api_factory(tmp_path: Path, registry: JobTypeRegistry) -> Any:
    """`api_factory(**settings)`: an Api with extra Settings fields."""
    return lambda **settings: make_api(tmp_path, registry, **settings)
