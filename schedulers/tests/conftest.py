"""Fixtures for the schedulers tests: a job type, fakes of the ports, moto scheduler."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
from botocore.exceptions import ClientError

from serverless_scheduler_common.events import JobChange, JobFired
from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.ports import ScheduleState
from serverless_scheduler_common.registry import JobTypeRegistry


class PingJob(ScheduledJob):
    """A minimal job type for these tests."""

    job_type: Literal["ping_job"] = "ping_job"
    url: str = "https://example.invalid/"


@pytest.fixture
def registry() -> JobTypeRegistry:
    reg = JobTypeRegistry()
    reg.add(PingJob, plugin="tests")
    return reg


MakeJob = Callable[..., PingJob]


@pytest.fixture
def make_job() -> MakeJob:
    created = datetime(2026, 1, 1, tzinfo=UTC)

    def make(
        job_id: str = "job1",
        *,
        owner_id: str = "alice",
        version: int = 1,
        enabled: bool = True,
        schedule: dict[str, Any] | None = None,
        policy: dict[str, Any] | None = None,
        **extra: Any,
    ) -> PingJob:
        return PingJob.model_validate(
            {
                "job_id": job_id,
                "owner_id": owner_id,
                "name": f"job {job_id}",
                "schedule": schedule or {"kind": "rate", "every": 5, "unit": "minutes"},
                "policy": policy or {},
                "enabled": enabled,
                "version": version,
                "created_at": created,
                "updated_at": created,
                **extra,
            }
        )

    return make


def change_for(job: ScheduledJob, kind: str = "modify") -> JobChange:
    """The JobChange a store emits for `job` (remove: job is the last image)."""
    snap = job.snapshot()
    if kind == "remove":
        return JobChange(
            kind="remove", owner_id=job.owner_id, job_id=job.job_id, version=job.version, old=snap
        )
    return JobChange(
        kind=kind,  # type: ignore[arg-type]
        owner_id=job.owner_id,
        job_id=job.job_id,
        version=job.version,
        new=snap,
    )


@pytest.fixture
def changes() -> Callable[..., JobChange]:
    return change_for


class InMemoryScheduleBackend:
    """`ScheduleBackend` fake: a dict of definitions keyed by (owner, job)."""

    def __init__(self) -> None:
        self.schedules: dict[tuple[str, str], ScheduleState] = {}
        self.calls: list[str] = []

    def upsert(self, job: ScheduledJob) -> None:
        self.calls.append("upsert")
        self.schedules[(job.owner_id, job.job_id)] = ScheduleState(
            job.owner_id, job.job_id, job.version, job.enabled, self.definition_for(job)
        )

    def delete(self, owner_id: str, job_id: str) -> None:
        self.calls.append("delete")
        self.schedules.pop((owner_id, job_id), None)

    def get(self, owner_id: str, job_id: str) -> ScheduleState | None:
        return self.schedules.get((owner_id, job_id))

    def list(self) -> list[ScheduleState]:
        return list(self.schedules.values())

    def definition_for(self, job: ScheduledJob) -> dict[str, Any]:
        return dict(json.loads(json.dumps(job.snapshot())))


@pytest.fixture
def memory_backend() -> InMemoryScheduleBackend:
    return InMemoryScheduleBackend()


class RecordingPublisher:
    """`Publisher` that keeps every fire (with `publish_many`)."""

    def __init__(self) -> None:
        self.fired: list[JobFired] = []

    def publish(self, fired: JobFired) -> None:
        self.fired.append(fired)

    def publish_many(self, fires: Sequence[JobFired]) -> None:
        self.fired.extend(fires)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


class VirtualClock:
    """A settable clock (`Clock` port)."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def set(self, when: datetime) -> None:
        self.current = when


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """moto with a schedule group, an SNS topic, a DLQ and a role ARN."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        scheduler = boto3.client("scheduler", region_name="eu-west-1")
        scheduler.create_schedule_group(Name="sched-test")
        topic = boto3.client("sns", region_name="eu-west-1").create_topic(Name="distribution")
        sqs = boto3.client("sqs", region_name="eu-west-1")
        queue_url = sqs.create_queue(QueueName="scheduler-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        yield {
            "scheduler": scheduler,
            "group_name": "sched-test",
            "topic_arn": topic["TopicArn"],
            "role_arn": "arn:aws:iam::123456789012:role/scheduler",
            "dlq_arn": dlq_arn,
            "dlq_url": queue_url,
        }


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


class FlakyClient:
    """Wraps a scheduler client; a share of calls fail with throttling or a 500."""

    def __init__(self, inner: Any, rate: float, seed: int = 7) -> None:
        self._inner = inner
        self._rate = rate
        self._rng = random.Random(seed)
        self.injected = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(**kwargs: Any) -> Any:
            self.calls += 1
            if self._rng.random() < self._rate:
                self.injected += 1
                if self._rng.random() < 0.8:
                    error = {"Code": "ThrottlingException", "Message": "Rate exceeded"}
                    meta = {"HTTPStatusCode": 400}
                else:
                    error = {"Code": "InternalServerException", "Message": "oops"}
                    meta = {"HTTPStatusCode": 500}
                raise ClientError({"Error": error, "ResponseMetadata": meta}, name)
            return method(**kwargs)

        return call


@pytest.fixture
def flaky_client() -> type[FlakyClient]:
    return FlakyClient
