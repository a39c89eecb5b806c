"""The local ledger stays small: a job keeps its newest done marks only, and expired
marks leave a slice at a time, never all at once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from serverless_scheduler_common.runtime.sqlite import (
    DONE_TRIM_MAX,
    SqliteFireLedger,
    copy_done_marks,
)


def _insert(db: Path, marks: list[tuple[str, float]]) -> None:
    """Store done marks as they are (numbered by their job, as the ledger does)."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TEMP TABLE marks (fire_id TEXT, done_at REAL)")
        conn.executemany("INSERT INTO marks VALUES (?, ?)", marks)
        for statement in copy_done_marks("main", "temp.marks"):
            conn.execute(statement)
    conn.close()


def _ids(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {str(row[0]) for row in conn.execute("SELECT fire_id FROM fires_done")}
    finally:
        conn.close()


def _step(ledger: SqliteFireLedger, cutoff: float) -> int:
    with ledger._tx() as conn:
        return ledger.prune_step(conn, cutoff)


def test_sweep_drops_expired_marks_in_bounded_slices_and_wraps(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db, done_ttl_s=100)
    ledger.prune_min_slice = 10
    now = time.time()
    old = [(f"job{i:03d}@old", now - 1000) for i in range(95)]
    fresh = [(f"job{i:03d}@new", now) for i in range(0, 95, 19)]
    _insert(db, old + fresh)

    dropped: list[int] = []
    while len(_ids(db)) > len(fresh):
        dropped.append(_step(ledger, now - 100))
        assert len(dropped) <= 12, "the sweep does not get through the table"
    assert max(dropped) <= 10  # never more than one slice per step
    assert sum(dropped) == len(old)
    assert _ids(db) == {fire_id for fire_id, _ in fresh}  # unexpired marks stay

    # Once past the end, the sweep starts again at the front.
    while ledger._sweep_after:
        _step(ledger, now - 100)
    _insert(db, [("aaa@old", now - 1000)])
    assert _step(ledger, now - 100) == 1
    assert "aaa@old" not in _ids(db)


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


def test_a_job_keeps_the_marks_of_its_newest_fires_and_other_jobs_keep_theirs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    ledger.trim_chance = 1.0  # trim at every write (amortised in service)
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
    late = "job1@2026-01-01T00:03:00Z"  # an old fire that completed late (retries)
    ledger.mark_done(late)

    kept = set(fires[-keep:])
    assert _ids(db) == kept | set(others)
    # A second delivery of one of the job's last fires is still recognised.
    assert ledger.done_among([*fires, late]) == kept
    assert ledger.is_done(fires[-1])
    assert not ledger.is_done(fires[0])


def test_marks_of_one_batch_are_trimmed_together(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    ledger.trim_chance = 1.0
    batch = [f"job{j}@2026-01-01T00:{minute:02d}:00Z" for j in range(3) for minute in range(7)]
    with ledger._tx() as conn:
        ledger.write_done(conn, batch)
    ids = _ids(db)
    for j in range(3):
        mine = sorted(fire_id for fire_id in ids if fire_id.startswith(f"job{j}@"))
        assert mine == [f"job{j}@2026-01-01T00:{m:02d}:00Z" for m in range(7 - 4, 7)]


def test_a_long_history_from_before_the_trims_goes_a_slice_per_trim(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    ledger.trim_chance = 1.0
    now = time.time()
    history = [(f"old@2026-01-01T{m // 60:02d}:{m % 60:02d}:00Z", now) for m in range(300)]
    _insert(db, history)
    ledger.mark_done("old@2026-01-02T00:00:00Z")
    assert len(_ids(db)) == 301 - DONE_TRIM_MAX  # one bounded slice, the newest kept
    for day in range(3, 9):
        ledger.mark_done(f"old@2026-01-0{day}T00:00:00Z")
    assert len(_ids(db)) == ledger.keep_per_job
    assert ledger.is_done("old@2026-01-08T00:00:00Z")


def test_amortised_trimming_bounds_a_job_that_fires_for_long(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)  # the default chance: one write in keep_per_job trims
    for minute in range(400):
        ledger.mark_done(f"busy@2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00Z")
    left = len(_ids(db))
    assert ledger.keep_per_job <= left < 60  # 400 without trimming
    assert ledger.is_done("busy@2026-01-01T06:39:00Z")  # the newest stays


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
    assert (
        numbered["j1@manual-x"]
        == numbered["j1@2026-01-01T00:01:00Z"]
        != numbered["j2@2026-01-01T00:00:00Z"]
    )
    assert numbered["plain-id"] == 0  # names no job
