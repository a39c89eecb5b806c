"""The engine's per-fire shortcut builds the same `JobFired` as validation would."""

from __future__ import annotations

from datetime import UTC, datetime

from serverless_scheduler_common.events import JobFired
from serverless_scheduler_schedulers.local_engine import _fast_fired


def test_fast_fired_equals_a_validated_fire() -> None:
    snapshot = {"job_id": "j1", "owner_id": "alice", "job_type": "webhook_job", "name": "x"}
    when = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    fast = _fast_fired(("alice", "j1"), snapshot, when, "j1@2026-03-01T12:00:00Z")
    slow = JobFired.model_validate(
        {
            "job_type": "webhook_job",
            "job_id": "j1",
            "owner_id": "alice",
            "scheduled_time": when,
            "job": snapshot,
            "fire_id": "j1@2026-03-01T12:00:00Z",
        }
    )
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()
    assert JobFired.model_validate_json(fast.model_dump_json()) == fast
