"""Local mode forgets a deleted job's run history, done marks, failure count and plugin
state."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from serverless_scheduler.local import LocalSystem, build_local_system
from serverless_scheduler_common import Run, Settings
from serverless_scheduler_common.events import fire_key
from serverless_scheduler_common.runtime.sqlite import SqliteFireLedger, SqliteRunRepository
from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_common.state import SqliteStateStore
from serverless_scheduler_example.plugin import ExampleJob
from serverless_scheduler_html_checker.plugin import NAMESPACE, HTMLMonitorJob


def _run(job_id: str, minute: int) -> Run:
    """A run of a change check, with a diff (what deleting the job must take along)."""
    at = datetime(2026, 1, 1, 9, minute, tzinfo=UTC)
    times = {"scheduled_time": at, "started_at": at, "finished_at": at}
    return Run(
        job_id=job_id,
        fire_id=fire_key(job_id, at),
        status="changed",
        summary="the page changed",
        detail="- old text\n+ new text",
        **times,
    )


def _forget(system: LocalSystem) -> None:
    """Apply the deletion: the change feed queues the removal notice, the dispatcher
    handles it."""
    assert system.pump.drain() == 1
    system.dispatcher.start()
    try:
        assert system.dispatcher.wait_idle(timeout=30)
    finally:
        system.dispatcher.stop()


@pytest.mark.parametrize("child_process", [True, False], ids=["child", "in-process"])
def test_deleting_a_job_forgets_its_runs_marks_and_failures(
    tmp_path: Path, child_process: bool
) -> None:
    system = build_local_system(Settings(data_dir=tmp_path, dispatcher_process=child_process))
    gone = system.repo.create(
        ExampleJob(owner_id="alice", name="gone", schedule={"kind": "rate", "every": 5})
    )
    kept = system.repo.create(
        ExampleJob(owner_id="alice", name="kept", schedule={"kind": "rate", "every": 5})
    )
    db = db_path_for(tmp_path)
    runs, ledger = SqliteRunRepository(db), SqliteFireLedger(db)  # as the dispatcher writes
    for job in (gone, kept):
        runs.record_many([("alice", _run(job.job_id, minute)) for minute in range(3)])
        ledger.mark_done_many([_run(job.job_id, minute).fire_id for minute in range(3)])
        ledger.add_failure(f"alice/{job.job_id}")
    assert system.pump.drain() == 2  # the two inserts

    system.repo.delete("alice", gone.job_id)
    _forget(system)

    assert runs.list("alice", gone.job_id).items == []
    assert len(runs.list("alice", kept.job_id).items) == 3
    all_fires = [_run(j.job_id, m).fire_id for j in (gone, kept) for m in range(3)]
    assert ledger.done_among(all_fires) == set(all_fires[3:])
    fresh = SqliteFireLedger(db)  # counts as stored
    assert fresh.add_failure(f"alice/{gone.job_id}") == 1  # counted afresh
    assert fresh.add_failure(f"alice/{kept.job_id}") == 2
    assert system.backend.get("alice", gone.job_id) is None
    assert system.backend.get("alice", kept.job_id) is not None


@pytest.mark.parametrize("child_process", [True, False], ids=["child", "in-process"])
def test_deleting_a_monitor_forgets_its_page_text_history_and_pending_notice(
    tmp_path: Path, child_process: bool
) -> None:
    system = build_local_system(Settings(data_dir=tmp_path, dispatcher_process=child_process))
    monitors = [
        system.repo.create(
            HTMLMonitorJob(
                owner_id="alice",
                name=name,
                url=f"https://example.com/{name}",
                schedule={"kind": "rate", "every": 5},
            )
        )
        for name in ("gone", "kept")
    ]
    state = SqliteStateStore(db_path_for(tmp_path))  # as the plugin writes it
    for job in monitors:
        key = f"alice/{job.job_id}"
        state.put(NAMESPACE, key, {"text": "the last page text"})
        state.append_history(NAMESPACE, key, {"diff": "- a\n+ b"}, keep=50)
        state.put(NAMESPACE, f"{key}#pending", {"fire_id": "f1"})
    assert system.pump.drain() == 2

    gone, kept = monitors
    system.repo.delete("alice", gone.job_id)
    _forget(system)

    for key in (f"alice/{gone.job_id}", f"alice/{gone.job_id}#pending"):
        assert state.get(NAMESPACE, key) is None
        assert state.history(NAMESPACE, key) == []
    kept_key = f"alice/{kept.job_id}"
    assert state.get(NAMESPACE, kept_key) == {"text": "the last page text"}
    assert state.history(NAMESPACE, kept_key) == [{"diff": "- a\n+ b"}]
    assert state.get(NAMESPACE, f"{kept_key}#pending") == {"fire_id": "f1"}
