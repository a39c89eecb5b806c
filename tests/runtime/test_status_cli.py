"""`serverless-scheduler status`: what a local data directory says about keeping up."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from serverless_scheduler.cli import main
from serverless_scheduler.commands.status import collect
from serverless_scheduler.datadir import lock_path
from serverless_scheduler.local import build_local_system
from serverless_scheduler_common import JobFired, Settings
from serverless_scheduler_common.runtime.ports import DeadLetter
from serverless_scheduler_common.runtime.sqlite import SqliteDeadLetterStore, SqliteFireQueue
from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_example.plugin import ExampleJob


def _fire(job: ExampleJob, at: float) -> JobFired:
    return JobFired(
        job_type=job.job_type,
        job_id=job.job_id,
        owner_id=job.owner_id,
        scheduled_time=datetime.fromtimestamp(at, UTC),
        job=job.snapshot(),
    )


def test_status_counts_jobs_schedules_changes_queue_and_dead_letters(tmp_path: Path) -> None:
    system = build_local_system(Settings(data_dir=tmp_path, dispatcher_process=False))
    jobs = [
        system.repo.create(
            ExampleJob(
                owner_id="alice",
                name=name,
                enabled=name != "off",
                schedule={"kind": "rate", "every": 5},
            )
        )
        for name in ("one", "two", "off")
    ]
    # Stored before past end_at was refused: enabled, not done, yet it never fires again.
    system.repo.create(
        ExampleJob(
            owner_id="alice",
            name="ended",
            schedule={"kind": "rate", "every": 5, "end_at": "2026-01-01T12:00:00+01:00"},
        )
    )
    status = collect(tmp_path)
    assert status["jobs"] == {"total": 4, "enabled": 3}
    assert status["changes_pending"] == 4  # the scheduler has not seen them yet
    assert status["schedules"]["armed"] == 0

    assert system.pump.drain() == 4
    now = time.time()
    queue = SqliteFireQueue(db_path_for(tmp_path))
    _ready, retrying = queue.add_many([_fire(jobs[0], now - 30), _fire(jobs[1], now - 5)])
    queue.complete(reschedule=[(retrying.seq, 2, now + 60)])
    SqliteDeadLetterStore(db_path_for(tmp_path)).add(
        DeadLetter.of(_fire(jobs[1], now - 600), error="boom", attempts=3)
    )

    status = collect(tmp_path, now=now)
    assert status["changes_pending"] == 0
    assert status["schedules"] == {
        "armed": 2,
        "ended": 1,
        "paused": 1,
        "done": 0,
        "missed_fires": 0,
    }
    assert status["queue"] == {
        "ready": 1,
        "retrying": 1,
        "removal_notices": 0,
        "oldest_ready_waited_s": pytest.approx(30, abs=0.01),
    }
    assert status["dead_letters"] == 1
    assert (status["running"], status["pid"]) == (False, None)

    system.lock()  # as `serve` holds the data directory
    try:
        assert (collect(tmp_path)["running"], collect(tmp_path)["pid"]) == (True, os.getpid())
    finally:
        system._unlock()
    assert collect(tmp_path)["running"] is False
    # After a kill -9 the file still names a pid, which may belong to another live
    # process by now: only the lock says whether `serve` runs.
    lock_path(tmp_path).write_text(str(os.getpid()))
    assert (collect(tmp_path)["running"], collect(tmp_path)["pid"]) == (False, None)


def test_status_command_prints_text_or_json_and_refuses_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing-here"
    assert main(["status", "--data-dir", str(missing)]) == 1
    assert "no local data" in capsys.readouterr().err
    assert not missing.exists()  # only read, never created

    system = build_local_system(Settings(data_dir=tmp_path, dispatcher_process=False))
    system.repo.create(
        ExampleJob(owner_id="alice", name="one", schedule={"kind": "rate", "every": 5})
    )
    assert main(["status", "--data-dir", str(tmp_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["jobs"] == {"total": 1, "enabled": 1}
    assert printed["queue"]["ready"] == 0

    assert main(["status", "--data-dir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "jobs:           1 (1 enabled)" in text
    assert "1 not yet applied by the scheduler" in text
    assert "local mode:     not running" in text


def test_status_check_exits_3_naming_what_needs_an_operator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    system = build_local_system(Settings(data_dir=tmp_path, dispatcher_process=False))
    job = system.repo.create(
        ExampleJob(owner_id="alice", name="one", schedule={"kind": "rate", "every": 5})
    )
    system.pump.drain()
    check = ["status", "--data-dir", str(tmp_path), "--check"]

    assert main(check) == 3
    assert "problem: local mode is not running" in capsys.readouterr().err

    system.lock()  # running from here on
    try:
        assert main(check) == 0
        assert "problem" not in capsys.readouterr().err

        queue = SqliteFireQueue(db_path_for(tmp_path))
        queue.add_many([_fire(job, time.time() - 30)])  # a ready fire, 30 s late
        assert main([*check, "--max-wait-s", "60"]) == 0
        capsys.readouterr()
        assert main([*check, "--max-wait-s", "10"]) == 3
        assert "does not keep up" in capsys.readouterr().err

        SqliteDeadLetterStore(db_path_for(tmp_path)).add(
            DeadLetter.of(_fire(job, time.time() - 600), error="boom", attempts=3)
        )
        assert main([*check, "--max-wait-s", "60"]) == 3
        assert "1 dead-lettered fires" in capsys.readouterr().err
    finally:
        system._unlock()


def test_status_counts_the_queues_of_every_dispatch_partition(tmp_path: Path) -> None:
    from serverless_scheduler_common.runtime.partitions import PartitionQueue, partition_path

    build_local_system(Settings(data_dir=tmp_path, dispatcher_process=False))
    now = time.time()
    # Ids of both partitions (job0-job3 hash to one, job4-job7 to the other): server-made
    # ids land in one partition in one run of 128.
    jobs = [
        ExampleJob(
            job_id=f"job{i}",
            owner_id="alice",
            name=f"job {i}",
            schedule={"kind": "rate", "every": 5},
        )
        for i in range(8)
    ]
    queue = PartitionQueue(tmp_path, 0, 2)  # as two dispatcher processes run them
    queue.add_many([_fire(job, now - 10 * (8 - i)) for i, job in enumerate(jobs)])
    assert all(queue.partition(i).count() for i in (0, 1))  # both files hold some
    assert SqliteFireQueue(partition_path(tmp_path, 0, 1)).count() == 0
    status = collect(tmp_path, now=now)
    assert status["queue"]["ready"] == 8
    assert status["queue"]["oldest_ready_waited_s"] == pytest.approx(80, abs=0.01)
