"""The sync core: decisions, version ordering, batches in any order or twice."""

from __future__ import annotations

import random
from typing import Any

import pytest

from serverless_scheduler_common.events import JobChange
from serverless_scheduler_schedulers.sync import (
    SnapshotJob,
    apply_change,
    apply_changes,
    decide,
    job_from_snapshot,
)


def test_decisions(make_job: Any, changes: Any) -> None:
    enabled, disabled = make_job(version=2), make_job(version=3, enabled=False)
    assert decide(changes(enabled, "insert"), None) == "upsert"
    assert decide(changes(disabled), 2) == "pause"
    assert decide(changes(enabled, "remove"), 1) == "delete"
    assert decide(changes(enabled, "remove"), None) == "delete"
    assert decide(changes(enabled), 2) == "stale"
    assert decide(changes(enabled), 5) == "stale"


def test_insert_pause_resume_remove(
    make_job: Any, changes: Any, memory_backend: Any, registry: Any
) -> None:
    apply_change(changes(make_job(version=1), "insert"), memory_backend, registry)
    assert memory_backend.get("alice", "job1").enabled
    apply_change(changes(make_job(version=2, enabled=False)), memory_backend, registry)
    state = memory_backend.get("alice", "job1")
    assert (state.version, state.enabled) == (2, False)
    result = apply_change(changes(make_job(version=1), "insert"), memory_backend, registry)
    assert result.action == "stale"
    assert not memory_backend.get("alice", "job1").enabled
    apply_change(changes(make_job(version=3)), memory_backend, registry)
    assert memory_backend.get("alice", "job1").enabled
    apply_change(changes(make_job(version=4), "remove"), memory_backend, registry)
    assert memory_backend.get("alice", "job1") is None
    # deleting a missing schedule is success
    assert apply_change(changes(make_job(version=4), "remove"), memory_backend).action == "delete"


def test_unknown_job_type_keeps_its_fields(make_job: Any) -> None:
    snap = make_job().snapshot()
    job = job_from_snapshot(snap, registry=None)
    assert isinstance(job, SnapshotJob)
    assert job.snapshot()["url"] == snap["url"]


def test_malformed_snapshot_names_the_field(memory_backend: Any) -> None:
    change = JobChange(
        kind="insert",
        owner_id="alice",
        job_id="j",
        version=1,
        new={"job_id": "j", "owner_id": "alice", "job_type": "x", "name": "n", "schedule": 5},
    )
    batch = apply_changes([change], memory_backend)
    assert batch.failure is not None and batch.failure.index == 0
    assert "schedule" in str(batch.failure.cause)


def _history(make_job: Any, changes: Any, rng: random.Random) -> list[JobChange]:
    """Interleaved histories of several jobs: create, edits, pauses, some removals."""
    out: list[JobChange] = []
    for j in range(8):
        job_id = f"job{j}"
        out.append(changes(make_job(job_id, version=1), "insert"))
        version = 1
        for _ in range(rng.randint(0, 4)):
            version += 1
            job = make_job(
                job_id,
                version=version,
                enabled=rng.random() < 0.7,
                schedule={"kind": "rate", "every": rng.randint(1, 60), "unit": "minutes"},
            )
            out.append(changes(job))
        if rng.random() < 0.4:
            out.append(changes(make_job(job_id, version=version), "remove"))
    rng.shuffle(out)  # interleave jobs, then restore per-job order
    out.sort(key=lambda c: (c.job_id, c.version, c.kind == "remove"))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_batch_twice_or_reversed_ends_like_once_in_order(
    seed: int, make_job: Any, changes: Any, registry: Any
) -> None:
    from serverless_scheduler_schedulers.local_engine import LocalScheduleBackend

    batch = _history(make_job, changes, random.Random(seed))
    in_order, twice, reverse = (
        LocalScheduleBackend(":memory:"),
        LocalScheduleBackend(":memory:"),
        LocalScheduleBackend(":memory:"),
    )
    assert apply_changes(batch, in_order, registry).failure is None
    assert apply_changes(batch, twice, registry).failure is None
    assert apply_changes(batch, twice, registry).failure is None
    assert apply_changes(list(reversed(batch)), reverse, registry).failure is None

    def state(backend: Any) -> list[Any]:
        return sorted((s.job_id, s.version, s.enabled, s.definition) for s in backend.list())

    assert state(in_order)
    assert state(twice) == state(in_order)
    assert state(reverse) == state(in_order)


def test_changes_split_into_batches_in_reverse_stay_correct(
    make_job: Any, changes: Any, registry: Any
) -> None:
    """Across batches the backend's versions (and tombstones) keep the newest state."""
    from serverless_scheduler_schedulers.local_engine import LocalScheduleBackend

    batch = [
        changes(make_job(version=1), "insert"),
        changes(make_job(version=2, enabled=False)),
        changes(make_job(version=3), "remove"),
    ]
    backend = LocalScheduleBackend(":memory:")
    for change in reversed(batch):
        apply_changes([change], backend, registry)
    assert list(backend.list()) == []
