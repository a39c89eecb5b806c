"""Dispatch partitions: SQLite files of their own for each dispatcher process
(`runtime/partitions.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from serverless_scheduler_common.events import JobFired
from serverless_scheduler_common.ports import fire_shard, render_fire
from serverless_scheduler_common.runs import Run
from serverless_scheduler_common.runtime.partitions import (
    HISTORY_TABLES,
    PartitionQueue,
    arrange,
    data_files,
    existing_partitions,
    file_partition,
    history_files,
    history_path,
    partition_path,
    stored_count,
    table_names,
)
from serverless_scheduler_common.runtime.sqlite import (
    SqliteFireLedger,
    SqliteFireQueue,
    SqliteRunRepository,
)
from serverless_scheduler_common.sqlite import db_path_for

from .conftest import run_at

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _fire(job_id: str, minute: int = 0) -> JobFired:
    return JobFired(
        job_type="example_job",
        job_id=job_id,
        owner_id="alice",
        scheduled_time=T0 + timedelta(minutes=minute),
        job={"job_id": job_id, "message": job_id},
    )


def _jobs_in(partition: int, count: int, n: int) -> list[str]:
    """`n` job ids whose fires belong to `partition` of `count`."""
    out = [f"job{i}" for i in range(500) if fire_shard(f"job{i}") % count == partition]
    return out[:n]


def _queued(path: Path) -> list[tuple[str, int, float]]:
    return [
        (str(f), int(str(a)), float(str(n)))
        for f, a, n in SqliteFireQueue(path)._query(
            "SELECT fire_id, attempt, not_before FROM dispatch_queue ORDER BY seq"
        )
    ]


def test_files_one_partition_is_the_main_file_several_have_their_own(tmp_path: Path) -> None:
    assert partition_path(tmp_path, 0, 1) == db_path_for(tmp_path)
    assert [partition_path(tmp_path, i, 3).name for i in range(3)] == [
        "dispatch-0.db",
        "dispatch-1.db",
        "dispatch-2.db",
    ]
    with pytest.raises(ValueError, match="partition"):
        partition_path(tmp_path, 2, 2)
    assert file_partition(db_path_for(tmp_path), 1) == 0
    assert file_partition(db_path_for(tmp_path), 2) is None
    assert file_partition(tmp_path / "dispatch-1.db", 2) == 1
    assert file_partition(tmp_path / "dispatch-2.db", 2) is None
    assert file_partition(tmp_path / "dispatch-0.db", 1) is None
    for name in ("dispatch-10.db", "dispatch-2.db", "dispatch-x.db", "dispatch-01.db"):
        (tmp_path / name).touch()
    assert [p.name for p in existing_partitions(tmp_path)] == [
        "scheduler.db",
        "dispatch-2.db",
        "dispatch-10.db",
    ]
    # Each partition's history has a file of its own; with one partition it is the main one.
    assert history_path(tmp_path, 0, 1) == db_path_for(tmp_path)
    assert [history_path(tmp_path, i, 2).name for i in range(2)] == [
        "history-0.db",
        "history-1.db",
    ]
    with pytest.raises(ValueError, match="partition"):
        history_path(tmp_path, 2, 2)
    for name in ("history-3.db", "history-1.db", "history-y.db"):
        (tmp_path / name).touch()
    assert [p.name for p in history_files(tmp_path)] == [
        "scheduler.db",
        "history-1.db",
        "history-3.db",
    ]
    assert [p.name for p in data_files(tmp_path)] == [
        "scheduler.db",
        "dispatch-2.db",
        "dispatch-10.db",
        "history-1.db",
        "history-3.db",
    ]


def test_a_partition_queue_keeps_its_jobs_fires_and_files_the_others(tmp_path: Path) -> None:
    mine, theirs = _jobs_in(1, 2, 3), _jobs_in(0, 2, 2)
    queue = PartitionQueue(tmp_path, 1, 2)
    added = queue.add_many([_fire(j) for j in mine + theirs])
    assert [item.fired.job_id for item in added if item.fired] == mine  # its own rows
    assert queue.count() == 3 and queue.count_all() == 5
    rendered = [render_fire(_fire(j, 1)) for j in theirs + mine]
    assert queue.add_payloads(rendered) == 5
    assert [f for f, _, _ in _queued(partition_path(tmp_path, 0, 2))] == [
        f"{j}@2026-01-01T12:0{m}:00Z" for m in (0, 1) for j in theirs
    ]
    assert queue.count_all() == 10
    assert not db_path_for(tmp_path).exists() or _queued(db_path_for(tmp_path)) == []


def test_arrange_moves_queued_fires_and_copies_marks_when_the_count_changes(
    tmp_path: Path,
) -> None:
    main = db_path_for(tmp_path)
    one = SqliteFireQueue(main)
    jobs = [f"job{i}" for i in range(12)]
    one.add_many([_fire(j) for j in jobs])
    seq = int(str(one._query("SELECT min(seq) FROM dispatch_queue")[0][0]))
    one.complete(reschedule=[(seq, 3, 1234.5)])  # a fire waiting for its retry
    ledger = SqliteFireLedger(main)
    ledger.mark_done_many([_fire("job0", 9).fire_id])
    ledger.add_failure("alice/job1")
    ledger.forget_job("alice", "gone")

    assert stored_count(tmp_path) == 1
    assert arrange(tmp_path, 2) == 12
    assert stored_count(tmp_path) == 2
    assert _queued(main) == []
    moved = {}
    for index in (0, 1):
        rows = _queued(partition_path(tmp_path, index, 2))
        assert {fire_shard(f.split("@")[0]) % 2 for f, _, _ in rows} <= {index}
        moved.update({f: (a, n) for f, a, n in rows})
    assert moved[_fire("job0").fire_id] == (3, 1234.5)  # attempt and retry time kept
    assert len(moved) == 12
    home = fire_shard("job1") % 2
    for index in (0, 1):  # every partition can tell what ran and what was deleted
        assert not table_names(partition_path(tmp_path, index, 2)) & set(HISTORY_TABLES)
        copy = SqliteFireLedger(history_path(tmp_path, index, 2))
        assert copy.is_done(_fire("job0", 9).fire_id)
        assert copy.is_removed("alice/gone")
        # A failure count goes to its job's partition only.
        expected = 1 if index == home else 0
        assert copy.lookup("x", "alice/job1", failures=True).failures == expected

    # job1 recovers while two processes run: back on one, its old count stays gone.
    SqliteFireLedger(history_path(tmp_path, home, 2)).reset_failures("alice/job1")
    assert arrange(tmp_path, 2) == 0  # nothing to move the second time
    assert arrange(tmp_path, 1) == 12  # and back into the main file
    assert len(_queued(main)) == 12 and stored_count(tmp_path) == 1
    assert all(_queued(partition_path(tmp_path, i, 2)) == [] for i in (0, 1))
    assert SqliteFireLedger(main).lookup("x", "alice/job1", failures=True).failures == 0
    assert SqliteFireLedger(main).is_done(_fire("job0", 9).fire_id)


@pytest.mark.parametrize("back_to", [1, 4])
def test_marks_made_after_a_change_of_count_outlive_the_stale_copies_of_the_next(
    tmp_path: Path, back_to: int
) -> None:
    """Every partition got a copy of every mark at the first change; at the next, each
    job's newest marks (made in its partition since) are kept over those copies,
    whichever file is merged last."""
    jobs = ["job1", "job4"]
    assert {fire_shard(job) % 2 for job in jobs} == {0, 1}  # one in each partition
    SqliteFireLedger(db_path_for(tmp_path)).mark_done_many(
        [_fire(job, minute).fire_id for job in jobs for minute in range(4)]
    )
    arrange(tmp_path, 2)
    newer = {job: [_fire(job, minute).fire_id for minute in range(10, 14)] for job in jobs}
    for job in jobs:
        SqliteFireLedger(history_path(tmp_path, fire_shard(job) % 2, 2)).mark_done_many(newer[job])

    arrange(tmp_path, back_to)
    for job in jobs:
        target = history_path(tmp_path, fire_shard(job) % back_to, back_to)
        assert SqliteFireLedger(target).done_among(newer[job]) == set(newer[job])


def test_arrange_sends_rows_without_a_shard_to_their_jobs_partition(tmp_path: Path) -> None:
    """Rows queued before the shard column count as shard 0: the payload names the job."""
    main = db_path_for(tmp_path)
    queue = SqliteFireQueue(main)
    jobs = _jobs_in(1, 2, 3) + _jobs_in(0, 2, 2)
    queue.add_rows([(f.fire_id, f.model_dump_json(), 1, 0.0, 0) for f in map(_fire, jobs)])
    assert arrange(tmp_path, 2) == 5
    for index in (0, 1):
        rows = SqliteFireQueue(partition_path(tmp_path, index, 2))._query(
            "SELECT fire_id, shard FROM dispatch_queue ORDER BY seq"
        )
        assert [str(f).split("@")[0] for f, _ in rows] == _jobs_in(index, 2, 5)[: len(rows)]
        assert [int(str(shard)) for _, shard in rows] == [
            fire_shard(str(f).split("@")[0]) for f, _ in rows
        ]
    # With one partition a row without a shard stays, and gets its shard.
    queue.add_rows([(_fire("job7").fire_id, _fire("job7").model_dump_json(), 1, 0.0, 0)])
    assert arrange(tmp_path, 1) == 5
    shards = dict(queue._query("SELECT fire_id, shard FROM dispatch_queue"))
    assert shards[_fire("job7").fire_id] == fire_shard("job7")


def test_runs_are_listed_and_forgotten_across_partition_files(tmp_path: Path) -> None:
    def run(minute: int) -> Run:
        return run_at("job1", minute)

    old = SqliteRunRepository(db_path_for(tmp_path), retention=4)
    new = SqliteRunRepository(history_path(tmp_path, 1, 2), retention=4)
    old.record_many([("alice", run(m)) for m in (0, 2, 4)])  # before the change
    new.record_many([("alice", run(m)) for m in (1, 3, 5)])  # after it
    reader = SqliteRunRepository(
        db_path_for(tmp_path), retention=4, others=lambda: history_files(tmp_path)
    )
    page = reader.list("alice", "job1", limit=3)
    assert [r.summary for r in page.items] == ["run 5", "run 4", "run 3"]
    rest = reader.list("alice", "job1", limit=3, cursor=page.next_cursor)
    # The retention counts the job's runs in every file: 4 newest, not 4 per file.
    assert [r.summary for r in rest.items] == ["run 2"] and rest.next_cursor is None
    assert old.list("alice", "job1").items[0].summary == "run 4"  # one file alone

    assert reader.forget_job("alice", "job1") == 6
    assert new.list("alice", "job1").items == [] and old.list("alice", "job1").items == []


def test_arrange_moves_the_history_of_the_earlier_layout_out_of_the_queue_files(
    tmp_path: Path,
) -> None:
    """Before the history files, partition i kept its runs and ledger in its queue file:
    the first start moves them to `history-<i>.db` (nothing lost, nothing doubled)."""
    arrange(tmp_path, 2)
    home = fire_shard("job1") % 2
    legacy = partition_path(tmp_path, home, 2)
    runs = [("alice", run_at("job1", m)) for m in (1, 2)]
    SqliteRunRepository(legacy).record_many(runs)
    ledger = SqliteFireLedger(legacy)
    ledger.mark_done_many([_fire("job1", 2).fire_id])
    ledger.add_failure("alice/job1")
    ledger.forget_job("alice", "gone")
    ledger.close()
    SqliteFireQueue(legacy).add_many([_fire("job1", 3)])
    target = history_path(tmp_path, home, 2)

    assert arrange(tmp_path, 2) == 0
    assert table_names(legacy) & set(HISTORY_TABLES) == set()
    assert len(_queued(legacy)) == 1  # the queue stays
    moved = SqliteFireLedger(target)
    assert moved.is_done(_fire("job1", 2).fire_id) and moved.is_removed("alice/gone")
    assert moved.lookup("x", "alice/job1", failures=True).failures == 1
    reader = SqliteRunRepository(db_path_for(tmp_path), others=lambda: history_files(tmp_path))
    assert [r.summary for r in reader.list("alice", "job1").items] == ["run 2", "run 1"]

    # A crash after the copy and before the drop copies again: the rows are kept once.
    SqliteRunRepository(legacy).record_many(runs[:1])
    arrange(tmp_path, 2)
    assert [r.summary for r in reader.list("alice", "job1").items] == ["run 2", "run 1"]
    # The moved runs are linked: the next run recorded there goes on their job's chain.
    SqliteRunRepository(target).record("alice", run_at("job1", 4))
    assert [r.summary for r in reader.list("alice", "job1").items] == ["run 4", "run 2", "run 1"]


def test_a_change_of_k_interrupted_midway_hands_out_the_same_failure_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after some history files were rewritten for the new K: the next start
    gives every job its count, in its new partition, as an uninterrupted change would."""
    from serverless_scheduler_common.runtime import partitions

    arrange(tmp_path, 2)
    jobs = [f"job{i}" for i in range(40)]
    counts = {job: 1 + i % 3 for i, job in enumerate(jobs)}
    for job, n in counts.items():
        ledger = SqliteFireLedger(history_path(tmp_path, fire_shard(job) % 2, 2))
        for _ in range(n):
            ledger.add_failure(f"alice/{job}")
        ledger.close()
    # Some job whose count is in history-0 now and belongs to another partition with K=3.
    assert any(fire_shard(j) % 2 == 0 and fire_shard(j) % 3 != 0 for j in jobs)

    real = partitions._copy_marks
    calls = []

    def crash_after_the_first(*args: object) -> None:
        if calls:
            raise RuntimeError("killed while rewriting the history files")
        calls.append(args)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(partitions, "_copy_marks", crash_after_the_first)
    with pytest.raises(RuntimeError, match="killed"):
        arrange(tmp_path, 3)
    monkeypatch.undo()
    assert stored_count(tmp_path) == 2  # the change was not recorded
    arrange(tmp_path, 3)
    assert stored_count(tmp_path) == 3
    for job, n in counts.items():
        home = fire_shard(job) % 3
        for index in range(3):
            ledger = SqliteFireLedger(history_path(tmp_path, index, 3))
            found = ledger.lookup("x", f"alice/{job}", failures=True).failures
            assert found == (n if index == home else 0), (job, index)
            ledger.close()


def test_arrange_gives_history_files_of_an_earlier_version_their_job_numbers(
    tmp_path: Path,
) -> None:
    import sqlite3

    arrange(tmp_path, 2)
    old = history_path(tmp_path, 1, 2)
    for path in tmp_path.glob(f"{old.name}*"):
        path.unlink()  # in its place, a file an earlier version wrote
    conn = sqlite3.connect(old)
    with conn:
        conn.executescript(
            """CREATE TABLE runs (owner_id TEXT NOT NULL, job_id TEXT NOT NULL,
                   run_id TEXT NOT NULL, started_at TEXT NOT NULL, data TEXT NOT NULL);
               CREATE UNIQUE INDEX runs_by_job ON runs (owner_id, job_id, started_at, run_id);
               CREATE TABLE fires_done (fire_id TEXT PRIMARY KEY, done_at REAL NOT NULL)
                   WITHOUT ROWID;"""
        )
        run = run_at("job1", 3)
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
            ("alice", "job1", run.run_id, "2026-01-01T12:03:00.000000Z", run.model_dump_json()),
        )
        conn.execute("INSERT INTO fires_done VALUES (?, 0)", (_fire("job1", 3).fire_id,))
    conn.close()
    arrange(tmp_path, 2)  # the next start: K unchanged, the upgrade still runs here
    conn = sqlite3.connect(old)
    try:
        runs_columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
        done_columns = {row[1] for row in conn.execute("PRAGMA table_info(fires_done)")}
    finally:
        conn.close()
    assert "job_no" in runs_columns and "job_no" in done_columns
    assert SqliteFireLedger(old).is_done(_fire("job1", 3).fire_id)
    assert [r.run_id for r in SqliteRunRepository(old).list("alice", "job1").items] == [run.run_id]
