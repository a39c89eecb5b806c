"""`serverless-scheduler reconcile` on a local data directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serverless_scheduler.cli import main
from serverless_scheduler_example.plugin import ExampleJob
from serverless_scheduler_items.sqlite_repository import SqliteJobRepository
from serverless_scheduler_schedulers.local_engine import LocalScheduleBackend


def test_reconcile_command_repairs_local_drift(tmp_path: Path, capsys: Any) -> None:
    db = tmp_path / "scheduler.db"
    repo = SqliteJobRepository(db)
    job = repo.create(
        ExampleJob(owner_id="alice", name="hello", schedule={"kind": "rate", "every": 5})
    )
    LocalScheduleBackend(db).upsert_many(
        [job.model_copy(update={"job_id": "orphan0000000000000000000"})]
    )
    assert main(["reconcile", "--data-dir", str(tmp_path), "--dry-run"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert (dry["created"], dry["deleted"]) == (1, 1)
    assert main(["reconcile", "--data-dir", str(tmp_path)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["created"], first["deleted"]) == (1, 1)
    assert main(["reconcile", "--data-dir", str(tmp_path)]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["repaired"], second["unchanged"]) == (0, 1)
    state = LocalScheduleBackend(db).get("alice", job.job_id)
    assert state is not None and state.version == job.version


def test_reconcile_refuses_to_repair_while_local_mode_runs(tmp_path: Path, capsys: Any) -> None:
    from serverless_scheduler.datadir import hold_lock

    db = tmp_path / "scheduler.db"
    repo = SqliteJobRepository(db)
    job = repo.create(
        ExampleJob(owner_id="alice", name="hello", schedule={"kind": "rate", "every": 5})
    )
    held = hold_lock(tmp_path)  # what a running `serve` holds
    try:
        assert main(["reconcile", "--data-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "already running" in err and "--dry-run" in err
        assert LocalScheduleBackend(db).get("alice", job.job_id) is None  # nothing repaired
        assert main(["reconcile", "--data-dir", str(tmp_path), "--dry-run"]) == 0
        assert json.loads(capsys.readouterr().out)["created"] == 1
    finally:
        held.close()
    assert main(["reconcile", "--data-dir", str(tmp_path)]) == 0  # stopped: repairs go ahead
    assert json.loads(capsys.readouterr().out)["created"] == 1
    assert LocalScheduleBackend(db).get("alice", job.job_id) is not None
