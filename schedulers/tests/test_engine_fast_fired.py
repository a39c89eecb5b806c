"""The engine's per-fire shortcut builds the same `JobFired` as validation would."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from serverless_scheduler_common.events import JobFired
from serverless_scheduler_schedulers.local_engine import _fast_fired, _iso_in_second, _second_texts


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


def test_rendered_scheduled_time_equals_isoformat() -> None:
    """The engine writes a fire's scheduled time from its second's cached text; it must
    read back as exactly the instant `datetime.fromtimestamp` gives."""
    rng = random.Random(7)
    nominals = [rng.uniform(0, 4_102_444_800) for _ in range(20_000)]
    nominals += [
        rng.randrange(0, 4_102_444_800) + rng.randrange(0, 10**6) / 1e6 for _ in range(20_000)
    ]
    edges = [0.0, 1.0, 1.5, 59.9999995, 59.9999996, 1_764_700_646.0, 1_764_700_646.9999999]
    edges += [1_764_700_646.0000005, 1_764_700_646.0000004, -0.5, -1.25, -86_400.000001]
    for nominal in nominals + edges:
        second = int(nominal)
        stamp, head = _second_texts(second)
        expected = datetime.fromtimestamp(nominal, UTC).isoformat()
        assert _iso_in_second(nominal, second, head) == expected, nominal
        if nominal >= 0:
            assert stamp == f"{datetime.fromtimestamp(second, UTC):%Y-%m-%dT%H:%M:%S}Z"
