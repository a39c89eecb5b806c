"""`serverless-scheduler reconcile` deletes the schedule of a job whose deletion never
synced, and queues the job's removal notice: the next start forgets the job's run
history and plugin state, as after any deletion."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serverless_scheduler.cli import main
from serverless_scheduler.local import build_local_system
from serverless_scheduler_common import Run, Settings
from serverless_scheduler_common.events import fire_key
from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue, SqliteRunRepository
from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_common.state import SqliteStateStore
from serverless_scheduler_html_checker.plugin import NAMESPACE, HTMLMonitorJob


def _run(job_id: str) -> Run:
    at = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    return Run(
        job_id=job_id,
        fire_id=fire_key(job_id, at),
        status="changed",
        summary="the page changed",
        detail="- old text\n+ new text",
        scheduled_time=at,
        started_at=at,
        finished_at=at,
    )


@pytest.mark.parametrize("child_process", [True, False], ids=["child", "in-process"])
def test_reconcile_has_a_deleted_monitor_whose_delete_never_synced_forgotten(
    tmp_path: Path, child_process: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path, dispatcher_process=child_process)
    system = build_local_system(settings)
    gone, kept = (
        system.repo.create(
            HTMLMonitorJob(
                owner_id="alice",
                name=name,
                url=f"https://example.com/{name}",
                schedule={"kind": "rate", "every": 5},
            )
        )
        for name in ("gone", "kept")
    )
    db = db_path_for(tmp_path)
    runs, state = SqliteRunRepository(db), SqliteStateStore(db)
    for job in (gone, kept):
        runs.record("alice", _run(job.job_id))
        state.put(NAMESPACE, f"alice/{job.job_id}", {"text": "the last page text"})
    assert system.pump.drain() == 2
    system.repo.delete("alice", gone.job_id)
    system.feed.ack([position for position, _ in system.feed.poll(10)])  # the change is lost
    assert system.backend.get("alice", gone.job_id) is not None

    assert main(["reconcile", "--data-dir", str(tmp_path), "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["deleted"], dry["announced"]) == (1, 0)
    assert SqliteFireQueue(db).count() == 0  # a dry run queues nothing

    assert main(["reconcile", "--data-dir", str(tmp_path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["deleted"], report["announced"], report["errors"]) == (1, 1, [])
    assert system.backend.get("alice", gone.job_id) is None

    system.dispatcher.start()  # the next start of local mode
    try:
        assert system.dispatcher.wait_idle(timeout=30)
    finally:
        system.dispatcher.stop()
    assert runs.list("alice", gone.job_id).items == []
    assert state.get(NAMESPACE, f"alice/{gone.job_id}") is None
    assert len(runs.list("alice", kept.job_id).items) == 1
    assert state.get(NAMESPACE, f"alice/{kept.job_id}") == {"text": "the last page text"}
