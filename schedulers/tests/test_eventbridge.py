"""EventBridgeScheduleBackend under moto: rendering, CRUD, names, retries."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from serverless_scheduler_common.events import JobFired
from serverless_scheduler_schedulers.eventbridge import (
    SCHEDULED_TIME_PLACEHOLDER,
    EventBridgeScheduleBackend,
    definitions_match,
    schedule_name,
)


def _backend(aws: dict[str, Any], client: Any = None, **kw: Any) -> EventBridgeScheduleBackend:
    return EventBridgeScheduleBackend(
        client or aws["scheduler"],
        group_name=aws["group_name"],
        topic_arn=aws["topic_arn"],
        role_arn=aws["role_arn"],
        dlq_arn=aws["dlq_arn"],
        **kw,
    )


def _raw(aws: dict[str, Any], job: Any) -> dict[str, Any]:
    name = schedule_name(job.owner_id, job.job_id)
    got: dict[str, Any] = aws["scheduler"].get_schedule(Name=name, GroupName=aws["group_name"])
    return got


def test_create_renders_target_retry_dlq_and_input(aws: dict[str, Any], make_job: Any) -> None:
    backend = _backend(aws)
    job = make_job(version=3, url="https://example.org/x")
    backend.upsert(job)
    got = _raw(aws, job)
    assert got["ScheduleExpression"] == "rate(5 minutes)"
    assert got["State"] == "ENABLED"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = got["Target"]
    assert target["Arn"] == aws["topic_arn"]
    assert target["RoleArn"] == aws["role_arn"]
    assert target["DeadLetterConfig"] == {"Arn": aws["dlq_arn"]}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 10
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 300  # one period
    assert json.loads(got["Description"]) == {"owner_id": "alice", "job_id": "job1", "version": 3}
    # What EventBridge would publish: the placeholder replaced by the scheduled time.
    body = target["Input"].replace(SCHEDULED_TIME_PLACEHOLDER, "2026-05-01T10:05:00Z")
    fired = JobFired.model_validate_json(body)
    assert fired.job_type == "ping_job"
    assert json.loads(body)["job_type"] == "ping_job"  # top level, for the SNS filter
    assert fired.scheduled_time == datetime(2026, 5, 1, 10, 5, tzinfo=UTC)
    assert fired.fire_id == "job1@2026-05-01T10:05:00Z"
    assert fired.job == job.snapshot()
    state = backend.get("alice", "job1")
    assert state is not None and state.version == 3 and state.enabled
    assert definitions_match(backend.definition_for(job), state.definition)


def test_update_sends_whole_definition_pause_and_delete(aws: dict[str, Any], make_job: Any) -> None:
    backend = _backend(aws)
    backend.upsert(
        make_job(schedule={"kind": "rate", "every": 5, "unit": "minutes", "jitter_s": 90})
    )
    assert _raw(aws, make_job())["FlexibleTimeWindow"] == {
        "Mode": "FLEXIBLE",
        "MaximumWindowInMinutes": 2,
    }
    cron = {"kind": "cron", "expression": "0 9 * * 1-5", "timezone": "Europe/Warsaw"}
    backend.upsert(make_job(version=2, schedule=cron, policy={"catchup_window_s": 600}))
    got = _raw(aws, make_job())
    assert got["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert got["ScheduleExpressionTimezone"] == "Europe/Warsaw"
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}  # reset, not left over
    assert got["Target"]["RetryPolicy"]["MaximumEventAgeInSeconds"] == 600
    assert got["Target"]["DeadLetterConfig"] == {"Arn": aws["dlq_arn"]}

    backend.upsert(make_job(version=3, enabled=False))
    assert _raw(aws, make_job())["State"] == "DISABLED"
    state = backend.get("alice", "job1")
    assert state is not None and not state.enabled and state.version == 3

    backend.delete("alice", "job1")
    assert backend.get("alice", "job1") is None
    backend.delete("alice", "job1")  # missing: success


def test_at_schedule_deletes_itself_and_window_dates(aws: dict[str, Any], make_job: Any) -> None:
    now = datetime.now(UTC)
    backend = _backend(aws)
    at = (now + timedelta(days=2)).replace(microsecond=0)
    backend.upsert(make_job("once", schedule={"kind": "at", "at": at.isoformat()}))
    got = _raw(aws, make_job("once"))
    assert got["ScheduleExpression"] == f"at({at:%Y-%m-%dT%H:%M:%S})"
    assert got["ActionAfterCompletion"] == "DELETE"

    start, end = now + timedelta(hours=1), now + timedelta(days=30)
    window = {"kind": "rate", "every": 1, "unit": "hours", "start_at": start.isoformat(),
              "end_at": end.isoformat()}  # fmt: skip
    backend.upsert(make_job("windowed", schedule=window))
    got = _raw(aws, make_job("windowed"))
    assert abs(got["StartDate"] - start) < timedelta(seconds=1)
    assert abs(got["EndDate"] - end) < timedelta(seconds=1)

    past = make_job("late", schedule={"kind": "at", "at": (now - timedelta(hours=1)).isoformat()})
    backend.upsert(past)
    assert backend.get("alice", "late") is None


@pytest.mark.parametrize(
    ("owner", "job_id"),
    [
        ("alice", "01jabc"),
        ("alice@example.com", "01jabc"),
        ("x" * 200, "y" * 64),
        ("a.b", "c"),
        ("", "weird_id-1"),
    ],
)
def test_names_are_deterministic_unique_and_valid(owner: str, job_id: str) -> None:
    name = schedule_name(owner, job_id)
    assert re.fullmatch(r"[0-9A-Za-z_.-]{1,64}", name)
    assert name == schedule_name(owner, job_id)
    assert name != schedule_name(owner + "z", job_id)
    assert name != schedule_name(owner, job_id + "z")


def test_long_owner_round_trips_through_moto(aws: dict[str, Any], make_job: Any) -> None:
    backend = _backend(aws)
    job = make_job("j" * 64, owner_id="user+tag@example.com/" + "o" * 200)
    backend.upsert(job)
    state = backend.get(job.owner_id, job.job_id)
    assert state is not None and (state.owner_id, state.job_id) == (job.owner_id, job.job_id)
    assert [(s.owner_id, s.job_id) for s in backend.list()] == [(job.owner_id, job.job_id)]


def test_throttling_is_retried_with_backoff(
    aws: dict[str, Any], make_job: Any, flaky_client: Any
) -> None:
    sleeps: list[float] = []
    flaky = flaky_client(aws["scheduler"], rate=0.5, seed=1)
    backend = _backend(aws, flaky, sleep=sleeps.append, rng=random.Random(0))
    for i in range(20):
        backend.upsert(make_job(f"j{i}"))
    assert flaky.injected > 0 and len(sleeps) == backend.retries > 0
    assert all(0 <= s <= 5.0 for s in sleeps)
    assert len(list(backend.list())) == 20


class DenyingClient:
    """Every call fails with AccessDenied (not worth a retry)."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls += 1
            error = {"Code": "AccessDeniedException", "Message": "no"}
            raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}, name)

        return call


def test_other_errors_surface_without_retries(aws: dict[str, Any], make_job: Any) -> None:
    client = DenyingClient()
    backend = _backend(aws, client, sleep=lambda s: None)
    with pytest.raises(ClientError, match="AccessDenied"):
        backend.upsert(make_job())
    assert backend.retries == 0 and client.calls == 1
