"""A dispatcher's ledger (`sole_marker=True`) keeps each job's newest done mark in
memory (`NewestMarks`) and looks up only the fires that are not later than it."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from serverless_scheduler_common.runtime.sqlite import (
    JobNumbers,
    NewestMarks,
    SqliteFireLedger,
    SqliteRunRepository,
)


def at(second: int) -> str:
    """A timed fire's time part."""
    return f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}Z"


def sole(db: Path) -> SqliteFireLedger:
    """A ledger as a dispatcher wires it."""
    return SqliteFireLedger(db, numbers=JobNumbers(preload=True), sole_marker=True)


def lookups(ledger: SqliteFireLedger, fire_ids: list[str]) -> tuple[set[str], list[str]]:
    """`done_among(fire_ids)` and the statements that read `done_recent` for it."""
    seen: list[str] = []
    ledger._conn.set_trace_callback(seen.append)
    try:
        done = ledger.done_among(fire_ids)
    finally:
        ledger._conn.set_trace_callback(None)
    return done, [sql for sql in seen if "done_recent" in sql]


def test_it_answers_as_a_ledger_that_looks_every_fire_up(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    ledger = sole(db)
    plain = SqliteFireLedger(db)  # reads the same file, every fire looked up
    rng = random.Random(7)
    jobs = [f"job{i}" for i in range(12)]
    clock = 0
    for _ in range(300):
        clock += rng.randint(0, 3)
        if rng.random() < 0.5:
            # Mostly each job's next fire, some late ones, a manual fire now and then.
            marks = [f"{job}@{at(max(0, clock - rng.choice([0, 0, 0, 5, 11])))}" for job in jobs]
            marks = rng.sample(marks, rng.randint(1, len(marks)))
            if rng.random() < 0.1:
                marks.append(f"{rng.choice(jobs)}@manual-{clock}")
            ledger.mark_done_many(marks)
        else:
            asked = [f"{rng.choice(jobs)}@{at(max(0, clock + rng.randint(-15, 6)))}"]
            asked += [f"{job}@{at(clock + 1)}" for job in rng.sample(jobs, 4)]
            asked += [f"{rng.choice(jobs)}@manual-{rng.randint(0, clock + 1)}", "no-job"]
            assert ledger.done_among(asked) == plain.done_among(asked)


def test_a_later_fire_of_a_job_it_knows_is_not_looked_up(tmp_path: Path) -> None:
    ledger = sole(tmp_path / "history.db")
    jobs = [f"j{i}" for i in range(5)]
    ledger.mark_done_many([f"{job}@{at(0)}" for job in jobs])
    done, read = lookups(ledger, [f"{job}@{at(10)}" for job in jobs])
    assert done == set() and read  # not known yet: looked up, and learnt
    ledger.mark_done_many([f"{job}@{at(10)}" for job in jobs])  # the batch commits

    done, read = lookups(ledger, [f"{job}@{at(20)}" for job in jobs])
    assert done == set() and read == []  # the next period reads no marks

    # A copy of a completed fire is not later than its job's newest mark: looked up.
    done, read = lookups(ledger, [f"j1@{at(10)}", f"j2@{at(0)}", f"j3@{at(20)}"])
    assert done == {f"j1@{at(10)}", f"j2@{at(0)}"} and read
    # A job without a mark is known to have none once looked up.
    ledger.mark_done("fresh@manual-1")  # numbered, no timed mark
    assert lookups(ledger, [f"fresh@{at(0)}"])[0] == set()
    assert lookups(ledger, [f"fresh@{at(1)}"]) == (set(), [])


def test_a_write_that_rolled_back_hides_no_mark(tmp_path: Path) -> None:
    ledger = sole(tmp_path / "history.db")
    ledger.mark_done(f"j@{at(0)}")
    assert ledger.done_among([f"j@{at(5)}"]) == set()  # j is known: newest at(0)
    with pytest.raises(RuntimeError), ledger._tx() as conn:
        ledger.write_done(conn, [f"j@{at(9)}"])
        raise RuntimeError("the transaction fails")
    ledger.mark_done(f"other@{at(9)}")  # the next commit merges what was left
    assert ledger.done_among([f"j@{at(9)}"]) == set()  # looked up: not there
    ledger.mark_done(f"j@{at(7)}")
    assert ledger.done_among([f"j@{at(7)}", f"j@{at(8)}"]) == {f"j@{at(7)}"}
    ledger.mark_done(f"j@{at(12)}")
    assert lookups(ledger, [f"j@{at(13)}"]) == (set(), [])


def test_a_look_up_inside_a_write_that_commits_later_is_not_trusted(tmp_path: Path) -> None:
    """As in a batch's commit: the marks are written on another adapter's connection,
    and a look-up on the ledger's own one does not see them until they commit."""
    db = tmp_path / "history.db"
    ledger = sole(db)
    runs = SqliteRunRepository(db, numbers=ledger.numbers)
    ledger.mark_done(f"j@{at(0)}")
    assert ledger.done_among([f"j@{at(10)}"]) == set()  # j known: newest at(0)
    with runs._tx() as conn:
        ledger.write_done(conn, [f"j@{at(10)}"])
        # Another worker looks j up meanwhile: it reads the file before the commit.
        assert ledger.done_among([f"j@{at(10)}"]) == set()
    ledger.confirm_done()
    assert ledger.done_among([f"j@{at(10)}"]) == {f"j@{at(10)}"}
    assert lookups(ledger, [f"j@{at(20)}"]) == (set(), [])


def test_the_newest_mark_is_the_greatest_part_of_a_row(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    SqliteFireLedger(db).mark_done(f"j@{at(0)}")
    conn = sqlite3.connect(db)
    with conn:  # a row whose parts are not in order
        conn.execute("UPDATE done_recent SET times = ?", (at(10) + at(20) + at(15),))
    conn.close()
    ledger = sole(db)
    assert ledger.done_among([f"j@{at(16)}"]) == set()
    assert ledger.done_among([f"j@{at(20)}"]) == {f"j@{at(20)}"}


def test_a_mark_of_a_job_not_looked_up_does_not_make_it_known(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    SqliteFireLedger(db).mark_done_many([f"j@{at(20)}", f"k@{at(20)}"])  # before it opened
    ledger = sole(db)
    assert ledger.done_among([f"k@{at(30)}"]) == set()  # k, numbered after j, is known
    ledger.mark_done(f"j@{at(5)}")  # a late completion: the file's newest stays at(20)
    assert ledger.done_among([f"j@{at(20)}", f"j@{at(21)}"]) == {f"j@{at(20)}"}


def test_a_look_up_that_began_before_a_write_was_confirmed_records_nothing() -> None:
    marks = NewestMarks()
    began = marks.epoch
    # Another thread commits a mark of job 3 after the look-up's snapshot was taken.
    marks.written([(3, at(5), 0.0)])
    marks.confirm()
    marks.learn(began, {3: at(0)}, [3])  # what the snapshot held: not recorded
    assert marks.newest[3:] in ([], [None])
    marks.learn(marks.epoch, {3: at(0) + at(5)}, [3, 4])
    assert marks.newest[3:] == [at(5), ""]
    marks.written([(3, at(15), 0.0), (4, at(15), 0.0), (9, at(15), 0.0)])
    marks.confirm()
    assert marks.newest[3:] == [at(15), at(15)]  # job 9 was not known: still not
    marks.clear()
    assert marks.newest == []


def test_a_dispatcher_starting_again_reads_marks_of_jobs_it_knew(tmp_path: Path) -> None:
    from serverless_scheduler_common.runtime.local import create_local_dispatcher
    from serverless_scheduler_common.settings import Settings

    db = tmp_path / "scheduler.db"
    SqliteFireLedger(db).mark_done(f"seen@{at(0)}")
    dispatcher = create_local_dispatcher(Settings(data_dir=tmp_path), workers=1)
    ledger = dispatcher.runtime.ledger
    assert isinstance(ledger, SqliteFireLedger) and ledger.newest is not None
    dispatcher.start()
    try:
        assert ledger.done_among([f"seen@{at(10)}"]) == set()  # newest known: at(0)
    finally:
        dispatcher.stop()
    # While it is stopped, marks are copied into its file (`arrange`).
    SqliteFireLedger(db).mark_done(f"seen@{at(10)}")
    dispatcher.start()
    try:
        assert ledger.done_among([f"seen@{at(10)}"]) == {f"seen@{at(10)}"}
    finally:
        dispatcher.stop()
