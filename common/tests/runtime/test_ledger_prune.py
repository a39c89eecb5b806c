"""The local ledger stays small: a job keeps the marks of its last fires only, in one
row, and expired marks leave a slice at a time, never all at once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from serverless_scheduler_common.runtime.sqlite import (
    NO_JOB,
    TIME_PART_CHARS,
    SqliteFireLedger,
    _time_part_sql,
    copy_done_marks,
    copy_recent_marks,
    fire_jobs,
    time_part,
)
from serverless_scheduler_common.sqlite import connect


def _insert(db: Path, marks: list[tuple[str, float]]) -> None:
    """Store done marks as they are (numbered by their job, as the ledger does)."""
    conn = connect(db)
    with conn:
        conn.execute("CREATE TEMP TABLE marks (fire_id TEXT, done_at REAL)")
        conn.executemany("INSERT INTO marks VALUES (?, ?)", marks)
        for statement in copy_done_marks("main", "temp.marks"):
            conn.execute(statement)
    conn.close()


def _ids(db: Path) -> set[str]:
    """Every done mark of the file, as fire_ids: the rows of `fires_done` and the time
    parts of each job's row of `done_recent`."""
    conn = sqlite3.connect(db)
    try:
        ids = {str(row[0]) for row in conn.execute("SELECT fire_id FROM fires_done")}
        for job_id, times in conn.execute(
            "SELECT n.job_id, d.times FROM done_recent d JOIN job_numbers n USING (job_no)"
        ):
            parts = [times[i : i + TIME_PART_CHARS] for i in range(0, len(times), TIME_PART_CHARS)]
            ids.update(f"{job_id}@{part}" for part in parts)
        return ids
    finally:
        conn.close()


def _recent(db: Path) -> dict[str, str]:
    """Each job's row of `done_recent`: its time parts as stored, by job_id."""
    conn = sqlite3.connect(db)
    try:
        return dict(
            conn.execute(
                "SELECT n.job_id, d.times FROM done_recent d JOIN job_numbers n USING (job_no)"
            ).fetchall()
        )
    finally:
        conn.close()


def _step(ledger: SqliteFireLedger, cutoff: float) -> int:
    with ledger._tx() as conn:
        return ledger.prune_step(conn, cutoff)


@pytest.mark.parametrize("timed", [False, True], ids=["fires_done", "done_recent"])
def test_sweep_drops_expired_marks_in_bounded_slices_and_wraps(tmp_path: Path, timed: bool) -> None:
    """Rows of `fires_done` (a mark each) and of `done_recent` (a job's timed marks)."""
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db, done_ttl_s=100)
    ledger.prune_min_slice = 10
    now = time.time()
    old_at, new_at = ("2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z") if timed else ("o", "n")
    old = [(f"job{i:03d}@{old_at}", now - 1000) for i in range(95)]
    fresh = [(f"job{i:03d}@{new_at}", now) for i in range(0, 95, 19)]
    _insert(db, old + fresh)
    table = "done_recent" if timed else "fires_done"
    rows = _recent if timed else _ids
    assert len(rows(db)) == (95 if timed else 100)  # timed: one row per job

    dropped: list[int] = []
    while len(rows(db)) > len(fresh):
        dropped.append(_step(ledger, now - 100))
        assert len(dropped) <= 12, "the sweep does not get through the table"
    assert max(dropped) <= 10  # never more than one slice per step
    assert sum(dropped) == (95 - len(fresh) if timed else len(old))
    kept = {fire_id for fire_id, _ in fresh}  # unexpired marks stay
    if timed:  # a job's row goes with its last mark: the fresh jobs keep the earlier one
        kept |= {fire_id.replace(new_at, old_at) for fire_id, _ in fresh}
    assert _ids(db) == kept

    # Once past the end, the sweep starts again at the front.
    while ledger._sweep_after.get(table):
        _step(ledger, now - 100)
    _insert(db, [(f"aaa@{old_at}", now - 1000)])
    assert _step(ledger, now - 100) == 1
    assert f"aaa@{old_at}" not in _ids(db)


def test_writing_marks_sweeps_and_keeps_them(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db, done_ttl_s=60)
    _insert(db, [(f"gone{i}", time.time() - 3600) for i in range(5)])
    ledger.prune_interval_s = 3600.0
    ledger.mark_done_many(["a", "b"])
    assert len(_ids(db)) == 7  # no sweep before the interval has passed
    ledger.prune_interval_s = 0.0
    ledger.mark_done_many(["c"])
    assert _ids(db) == {"a", "b", "c"}
    assert ledger.done_among(["a", "b", "c", "gone1"]) == {"a", "b", "c"}


def test_slice_grows_with_the_marks_written(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db, done_ttl_s=60)
    ledger.prune_min_slice = 5
    ledger.prune_interval_s = 3600.0
    _insert(db, [(f"old{i:03d}", time.time() - 3600) for i in range(100)])
    ledger.mark_done_many([f"zz{i:02d}" for i in range(30)])  # after the old keys
    # 30 marks written since the last step: this step looks at 60 keys, not 5.
    assert _step(ledger, time.time() - 60) == 60


def test_default_marks_outlive_the_longest_catch_up_window(tmp_path: Path) -> None:
    """The engine may hand a fire over again after a stop, up to the longest catch-up
    window after its time: its done mark must still be there; older marks may go."""
    from serverless_scheduler_common.policy import MAX_CATCHUP_WINDOW_S, JobPolicy

    assert JobPolicy(catchup_window_s=MAX_CATCHUP_WINDOW_S).catchup_window_s
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    now = time.time()
    _insert(
        db,
        [
            ("job@in-window", now - MAX_CATCHUP_WINDOW_S - 3600),
            ("job@long-gone", now - ledger.done_ttl_s - 3600),
        ],
    )
    _step(ledger, now - ledger.done_ttl_s)
    assert ledger.is_done("job@in-window")
    assert not ledger.is_done("job@long-gone")
    assert ledger.done_ttl_s < 30 * 86_400  # not a month of marks at high fire rates


def test_a_job_keeps_the_marks_of_its_newest_fires_in_one_row_and_other_jobs_keep_theirs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    keep = ledger.keep_per_job
    # Job ids next to `job1` in key order, a fire id of no job, a manual fire.
    others = [
        "job-1@2026-01-01T00:00:00Z",
        "job1x@2026-01-01T00:00:00Z",
        "job1",
        "job1@manual-01jabc",
    ]
    ledger.mark_done_many(others)
    fires = [f"job1@2026-01-01T00:{minute:02d}:00Z" for minute in range(10)]
    for fire_id in fires:
        ledger.mark_done(fire_id)
    ledger.mark_done(fires[-1])  # marked again: no second copy
    late = "job1@2026-01-01T00:03:00Z"  # an old fire that completed late (retries)
    ledger.mark_done(late)

    assert _ids(db) == set(fires[-keep:]) | set(others)
    assert _recent(db)["job1"] == "".join(fire_id[5:] for fire_id in fires[-keep:])
    # A second delivery of one of the job's last fires is still recognised.
    assert ledger.done_among([*fires, late]) == set(fires[-keep:])
    assert ledger.is_done(fires[-1])
    assert not ledger.is_done(fires[0])
    assert ledger.done_among(others) == set(others)

    # Fires completed late that are among the newest take their places in order.
    ledger.mark_done_many(["job1@2026-01-01T00:08:30Z", "job1@2026-01-01T00:07:30Z"])
    newest = ["07:30", "08:00", "08:30", "09:00"]
    assert _recent(db)["job1"] == "".join(f"2026-01-01T00:{t}Z" for t in newest)
    assert not ledger.is_done("job1@2026-01-01T00:07:00Z")


def test_marks_of_one_batch_keep_each_jobs_last_ones(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    batch = [f"job{j}@2026-01-01T00:{minute:02d}:00Z" for j in range(3) for minute in range(7)]
    with ledger._tx() as conn:
        ledger.write_done(conn, batch)
    ids = _ids(db)
    for j in range(3):
        mine = sorted(fire_id for fire_id in ids if fire_id.startswith(f"job{j}@"))
        assert mine == [f"job{j}@2026-01-01T00:{m:02d}:00Z" for m in range(7 - 4, 7)]


def test_a_job_that_fires_for_long_keeps_one_row_of_the_same_size(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    for minute in range(400):
        ledger.mark_done(f"busy@2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z")
    assert _recent(db) == {
        "busy": "".join(f"2026-01-01T06:{minute}:00Z" for minute in range(36, 40))
    }
    assert ledger.is_done("busy@2026-01-01T06:39:00Z")  # the newest stays
    assert not ledger.is_done("busy@2026-01-01T06:35:00Z")


def test_a_time_part_across_two_kept_parts_is_not_a_mark(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    ledger.mark_done_many(["j@2026-01-01T00:00:00Z", "j@2026-01-01T00:01:00Z"])
    assert _recent(db)["j"] == "2026-01-01T00:00:00Z2026-01-01T00:01:00Z"
    straddling = ["j@0Z2026-01-01T00:01:", "j@:00Z2026-01-01T00:0", "j@01T00:00:00Z2026-0"]
    assert ledger.done_among(straddling) == set()
    # Not time parts (their `Z` is not last, or they are not 20 long): kept as they are.
    ledger.mark_done_many(straddling)
    assert ledger.done_among(straddling) == set(straddling)
    assert _recent(db)["j"] == "2026-01-01T00:00:00Z2026-01-01T00:01:00Z"


@pytest.mark.parametrize(
    "fire_id",
    [
        "job@2026-01-01T00:00:00Z",
        "a@b@2026-01-01T00:00:00Z",
        "job@manual-01jabc",
        "job@manual-0123456789Z",
        "job@Z026-01-01T00:00:00Z",
        "job@2026-01-01T00:00:00ZZ",
        "job@2026-01-01T00:00:0Z",
        "plain-id",
        "@2026-01-01T00:00:00Z",
        "job@20é6-01-01T00:00:00Z",
    ],
)
def test_the_sql_test_of_a_time_part_is_the_python_one(fire_id: str) -> None:
    conn = sqlite3.connect(":memory:")
    try:
        (in_sql,) = conn.execute(f"SELECT {_time_part_sql('?1')}", (fire_id,)).fetchone()
    finally:
        conn.close()
    assert in_sql == time_part(fire_id, fire_jobs([fire_id])[0])


def test_marks_kept_a_row_each_fold_into_their_jobs_row_when_opened(tmp_path: Path) -> None:
    """A file of the previous layout (a row per mark, trimmed as it went) gives each
    job its newest marks in one row; manual fires and fire ids of no job stay rows."""
    db = tmp_path / "scheduler.db"
    now = time.time()
    conn = sqlite3.connect(db)
    with conn:
        conn.executescript(
            """CREATE TABLE job_numbers (job_no INTEGER PRIMARY KEY, job_id TEXT NOT NULL);
               CREATE TABLE fires_done (
                   job_no INTEGER NOT NULL, fire_id TEXT NOT NULL, done_at REAL NOT NULL,
                   PRIMARY KEY (job_no, fire_id)) WITHOUT ROWID;
               INSERT INTO job_numbers VALUES (1, 'old'), (2, 'new');"""
        )
        history = [f"old@2026-01-01T{m // 60:02d}:{m % 60:02d}:00Z" for m in range(300)]
        rows = [(1, fire_id, now) for fire_id in history]
        rows += [(1, "old@manual-x", now), (NO_JOB, "plain-id", now)]
        rows += [(2, "new@2026-01-02T00:00:00Z", now)]
        conn.executemany("INSERT INTO fires_done VALUES (?, ?, ?)", rows)
    conn.close()

    ledger = SqliteFireLedger(db)
    kept = {*history[-4:], "old@manual-x", "plain-id", "new@2026-01-02T00:00:00Z"}
    assert _ids(db) == kept
    assert _recent(db)["old"] == "".join(fire_id[4:] for fire_id in history[-4:])
    assert ledger.done_among([*history, "old@manual-x", "plain-id"]) == kept - {
        "new@2026-01-02T00:00:00Z"
    }
    ledger.mark_done("old@2026-01-02T00:00:00Z")
    SqliteFireLedger(db).close()  # opened again: nothing changes
    assert _ids(db) == (kept - {history[-4]}) | {"old@2026-01-02T00:00:00Z"}


def test_marks_of_an_earlier_version_get_job_numbers(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    now = time.time()
    earlier = ["j1@2026-01-01T00:00:00Z", "j1@manual-x", "plain-id", "j2@2026-01-01T00:00:00Z"]
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(
            "CREATE TABLE fires_done (fire_id TEXT PRIMARY KEY, done_at REAL NOT NULL) WITHOUT ROWID"
        )
        conn.executemany("INSERT INTO fires_done VALUES (?, ?)", [(f, now) for f in earlier])
    conn.close()
    ledger = SqliteFireLedger(db)
    assert ledger.done_among([*earlier, "j1@2026-01-01T00:01:00Z", "j3@x"]) == set(earlier)
    ledger.mark_done("j1@2026-01-01T00:01:00Z")
    SqliteFireLedger(db).close()  # opened again: nothing changes
    assert _ids(db) == {*earlier, "j1@2026-01-01T00:01:00Z"}
    conn = sqlite3.connect(db)
    try:
        tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")}
        numbered = dict(conn.execute("SELECT fire_id, job_no FROM fires_done").fetchall())
    finally:
        conn.close()
    assert "fires_done_before" not in tables
    assert numbered == {"j1@manual-x": _number(db, "j1"), "plain-id": NO_JOB}
    assert set(_recent(db)) == {"j1", "j2"}  # timed marks: a row per job


def _number(db: Path, job_id: str) -> int:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT job_no FROM job_numbers WHERE job_id = ?", (job_id,))
        return int(row.fetchone()[0])
    finally:
        conn.close()


def test_a_copy_merges_each_jobs_row_by_job_id_keeping_the_newest(tmp_path: Path) -> None:
    """Marks copied from another file (`arrange`, when the number of partitions
    changes) find their job by id, whatever its number there, and a job keeps its
    newest marks of both files, whichever file is newer (a file's copy of another's
    marks may be stale)."""
    source, target = tmp_path / "history-0.db", tmp_path / "history-1.db"
    theirs = SqliteFireLedger(source)
    theirs.mark_done_many([f"other{i}@2026-01-01T00:00:00Z" for i in range(5)])
    theirs.mark_done_many([f"x@2026-01-01T00:0{m}:00Z" for m in (5, 1, 3)])
    theirs.mark_done_many([f"y@2026-01-01T00:0{m}:00Z" for m in (1, 2, 3, 4)])
    theirs.close()
    ours = SqliteFireLedger(target)
    ours.mark_done_many([f"x@2026-01-01T00:0{m}:00Z" for m in (2, 4)] + ["z@manual-1"])
    ours.mark_done_many([f"y@2026-01-01T00:0{m}:00Z" for m in (5, 6, 7, 8)])  # newer
    ours.close()

    conn = connect(target)
    conn.execute("ATTACH DATABASE ? AS src", (str(source),))
    with conn:
        for statement in copy_recent_marks("main", "src"):
            conn.execute(statement)
    conn.close()
    assert _number(source, "x") == 6 and _number(target, "x") == 1
    assert _recent(target)["x"] == "".join(f"2026-01-01T00:0{m}:00Z" for m in (2, 3, 4, 5))
    assert _recent(target)["y"] == "".join(f"2026-01-01T00:0{m}:00Z" for m in (5, 6, 7, 8))
    others = {f"other{i}@2026-01-01T00:00:00Z" for i in range(5)}
    assert others | {"z@manual-1"} <= _ids(target)
