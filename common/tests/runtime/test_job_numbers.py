"""Job numbers: given in the order jobs are first written, never reused, and cached
only once the transaction that gave them has committed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from serverless_scheduler_common.runtime.sqlite import JobNumbers, SqliteFireLedger


def _numbers(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {str(j): int(n) for j, n in conn.execute("SELECT job_id, job_no FROM job_numbers")}
    finally:
        conn.close()


def test_numbers_follow_the_order_jobs_are_first_marked(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    ledger = SqliteFireLedger(db)
    ledger.mark_done_many(["zz@2026-01-01T00:00:00Z", "aa@2026-01-01T00:00:00Z"])
    ledger.mark_done_many(["mm@2026-01-01T00:00:00Z", "aa@2026-01-01T00:01:00Z"])
    assert _numbers(db) == {"zz": 1, "aa": 2, "mm": 3}


def test_new_jobs_are_numbered_in_firing_order_without_reading_the_numbers_back(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.db"
    ledger = SqliteFireLedger(db)
    ledger.mark_done("first@2026-01-01T00:00:00Z")
    statements: list[str] = []
    ledger._conn.set_trace_callback(statements.append)
    jobs = [f"j{i:03d}" for i in reversed(range(300))]  # fired in descending id order
    ledger.mark_done_many([f"{job}@2026-01-01T00:00:00Z" for job in jobs])
    assert _numbers(db) == {"first": 1} | {job: 2 + index for index, job in enumerate(jobs)}
    numbered = [sql.split()[0] for sql in statements if "job_numbers" in sql]
    inserts = numbered.index("INSERT")
    assert "SELECT" not in numbered[inserts:]  # given, not read back
    assert numbered[inserts:] == ["INSERT"] * (len(numbered) - inserts)


def test_a_number_given_in_a_rolled_back_transaction_is_not_kept(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    mine, theirs = JobNumbers(), JobNumbers()
    ledger = SqliteFireLedger(db, numbers=mine)
    other = SqliteFireLedger(db, numbers=theirs)  # another process's adapter
    with pytest.raises(RuntimeError), ledger._tx() as conn:
        ledger.write_done(conn, ["lost@2026-01-01T00:00:00Z"])
        raise RuntimeError("the commit never happens")
    assert _numbers(db) == {}
    other.mark_done("kept@2026-01-01T00:00:00Z")  # takes the number the rollback freed
    ledger.mark_done("lost@2026-01-01T00:01:00Z")
    assert _numbers(db) == {"kept": 1, "lost": 2}
    assert ledger.done_among(["lost@2026-01-01T00:01:00Z", "kept@2026-01-01T00:00:00Z"]) == {
        "lost@2026-01-01T00:01:00Z",
        "kept@2026-01-01T00:00:00Z",
    }
    assert not other.is_done("lost@2026-01-01T00:00:00Z")


def test_done_marks_are_looked_up_within_an_older_sqlite_bound_value_limit(
    tmp_path: Path,
) -> None:
    ledger = SqliteFireLedger(tmp_path / "history.db")
    fires = [f"j{i}@2026-01-01T00:00:00Z" for i in range(1200)]
    ledger.mark_done_many(fires[:700])
    ledger._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
    assert ledger.done_among(fires) == set(fires[:700])


def test_a_dispatchers_cache_looks_no_number_up_after_reading_the_table(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    early = SqliteFireLedger(db)
    early.mark_done("early@2026-01-01T00:00:00Z")  # before the dispatcher starts
    numbers = JobNumbers(preload=True)
    ledger = SqliteFireLedger(db, numbers=numbers)
    other = SqliteFireLedger(db)  # another writer of the file (the engine's runs)
    statements: list[str] = []
    ledger._conn.set_trace_callback(statements.append)
    assert ledger.done_among(["early@2026-01-01T00:00:00Z", "new@2026-01-01T00:00:00Z"]) == {
        "early@2026-01-01T00:00:00Z"
    }
    assert sum("job_numbers" in sql for sql in statements) == 1  # the whole table, once
    with other._tx() as conn:  # a number given elsewhere after that read
        other.numbers.remember(other.numbers.assign(conn, ["elsewhere"]))
    statements.clear()
    assert (
        ledger.done_among(["new@2026-01-01T00:01:00Z", "elsewhere@2026-01-01T00:00:00Z"]) == set()
    )
    assert not any("job_numbers" in sql for sql in statements)  # not looked up again
    # Giving numbers keeps the one given elsewhere and reads it back: counted on from
    # the highest, inserted, then read (the insert of "elsewhere" was ignored), with no
    # look-up by id before the insert.
    ledger.mark_done_many(["elsewhere@2026-01-01T00:01:00Z", "new@2026-01-01T00:02:00Z"])
    given = _numbers(db)
    assert given["early"] == 1 and given["elsewhere"] == 2 and given["new"] > 2
    numbered = [sql.split()[0] for sql in statements if "job_numbers" in sql]
    assert numbered == ["SELECT", "INSERT", "INSERT", "SELECT"]
    assert ledger.done_among(
        ["elsewhere@2026-01-01T00:01:00Z", "new@2026-01-01T00:02:00Z", "new@2026-01-01T00:03:00Z"]
    ) == {"elsewhere@2026-01-01T00:01:00Z", "new@2026-01-01T00:02:00Z"}
    assert numbers.known(ledger._conn, ["elsewhere", "new"]) == given


def test_a_dispatcher_starting_again_reads_marks_copied_in_while_it_was_stopped(
    tmp_path: Path,
) -> None:
    from serverless_scheduler_common.runtime.local import create_local_dispatcher
    from serverless_scheduler_common.settings import Settings

    dispatcher = create_local_dispatcher(Settings(data_dir=tmp_path), workers=1)
    ledger = dispatcher.runtime.ledger
    assert isinstance(ledger, SqliteFireLedger)
    dispatcher.start()
    try:
        assert ledger.done_among(["seen@2026-01-01T00:00:00Z"]) == set()  # the table is read
    finally:
        dispatcher.stop()
    # While it is stopped, another layout's marks are copied into its file (`arrange`).
    SqliteFireLedger(tmp_path / "scheduler.db").mark_done("copied@2026-01-01T00:00:00Z")
    assert ledger.done_among(["copied@2026-01-01T00:00:00Z"]) == set()  # not read yet
    dispatcher.start()
    try:
        assert ledger.done_among(["copied@2026-01-01T00:00:00Z"]) == {"copied@2026-01-01T00:00:00Z"}
    finally:
        dispatcher.stop()
