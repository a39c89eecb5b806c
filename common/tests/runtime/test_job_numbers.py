"""Job numbers: given in the order jobs are first written, never reused, and cached
only once the transaction that gave them has committed."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest

from serverless_scheduler_common.runtime.sqlite import (
    JobNumbers,
    SqliteFireLedger,
    SqliteRunRepository,
)


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
    # Giving numbers first reads on from the highest cached one inside the write
    # transaction (finding "elsewhere"), then gives the next number to "new" alone.
    ledger.mark_done_many(["elsewhere@2026-01-01T00:01:00Z", "new@2026-01-01T00:02:00Z"])
    given = _numbers(db)
    assert given == {"early": 1, "elsewhere": 2, "new": 3}
    numbered = [sql.split()[0] for sql in statements if "job_numbers" in sql]
    assert numbered == ["SELECT", "INSERT"]
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


def test_the_numbers_have_no_index_by_job_id_and_go_to_the_tables_end(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    ledger = SqliteFireLedger(db)
    ledger.mark_done("first@2026-01-01T00:00:00Z")
    statements: list[str] = []
    ledger._conn.set_trace_callback(statements.append)
    ledger.mark_done_many([f"j{i:03d}@2026-01-01T00:00:00Z" for i in reversed(range(20))])
    inserts = [sql for sql in statements if sql.startswith("INSERT INTO job_numbers")]
    assert len(inserts) == 2  # 20 rows: a statement of 16, one of 4
    given = [int(number) for sql in inserts for number in re.findall(r"\((\d+),", sql)]
    assert given == list(range(2, 22))  # in number order: each row at the table's end
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA index_list(job_numbers)").fetchall() == []
    finally:
        conn.close()


def test_a_file_of_the_earlier_layout_loses_its_index_and_keeps_its_numbers(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.db"
    conn = sqlite3.connect(db)
    conn.executescript(
        """CREATE TABLE job_numbers (job_no INTEGER PRIMARY KEY, job_id TEXT NOT NULL UNIQUE);
           INSERT INTO job_numbers VALUES (3, 'c'), (7, 'g');"""
    )
    conn.close()
    ledger = SqliteFireLedger(db)
    ledger.mark_done_many(["g@2026-01-01T00:00:00Z", "new@2026-01-01T00:00:00Z"])
    assert _numbers(db) == {"c": 3, "g": 7, "new": 8}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA index_list(job_numbers)").fetchall() == []
    finally:
        conn.close()
    assert ledger.done_among(["g@2026-01-01T00:00:00Z"]) == {"g@2026-01-01T00:00:00Z"}


def test_writers_with_caches_of_their_own_never_number_a_job_twice(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    first, second = SqliteFireLedger(db), SqliteFireLedger(db)  # two processes' adapters
    first.mark_done("a@2026-01-01T00:00:00Z")
    assert second.done_among(["a@2026-01-01T00:00:00Z"]) == {"a@2026-01-01T00:00:00Z"}
    first.mark_done_many(["b@2026-01-01T00:00:00Z", "c@2026-01-01T00:00:00Z"])
    # `second` has read up to "a" only: it reads on before giving numbers.
    second.mark_done_many(["c@2026-01-01T00:01:00Z", "b@2026-01-01T00:01:00Z", "d@t"])
    assert _numbers(db) == {"a": 1, "b": 2, "c": 3, "d": 4}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM job_numbers").fetchone() == (4,)
    finally:
        conn.close()


def test_writers_in_threads_give_overlapping_jobs_one_number_each(tmp_path: Path) -> None:
    db = tmp_path / "history.db"
    ledgers = [SqliteFireLedger(db) for _ in range(4)]  # a cache and a connection each
    errors: list[BaseException] = []

    def mark(index: int) -> None:
        try:
            for step in range(30):
                jobs = [f"j{(index * 7 + step * 3 + k) % 90}" for k in range(5)]
                ledgers[index].mark_done_many(
                    [f"{job}@2026-01-01T00:{step:02d}:00Z" for job in jobs]
                )
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=mark, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT job_id, job_no FROM job_numbers ORDER BY job_no").fetchall()
    finally:
        conn.close()
    assert len({job for job, _ in rows}) == len(rows)  # one number a job
    assert [number for _, number in rows] == list(range(1, len(rows) + 1))  # no gap


def test_runs_of_a_job_numbered_after_a_reader_read_the_table_are_found(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from serverless_scheduler_common.runs import Run

    db = tmp_path / "history.db"
    dispatcher_side = SqliteRunRepository(db, numbers=JobNumbers(preload=True))
    reader = SqliteRunRepository(db)  # e.g. the API's adapter of the file
    engine_side = SqliteRunRepository(db)  # e.g. the timer engine's skipped runs

    def run(job_id: str, minute: int) -> Run:
        started = datetime(2026, 1, 1, 0, minute, tzinfo=UTC)
        return Run(
            run_id=f"r-{job_id}-{minute}",
            job_id=job_id,
            fire_id=f"{job_id}@{started.isoformat()}",
            scheduled_time=started,
            started_at=started,
            finished_at=started,
            status="ok",
        )

    dispatcher_side.record("alice", run("early", 0))
    assert len(reader.list("alice", "early").items) == 1  # the reader has read the table
    assert dispatcher_side.list("alice", "early").items
    engine_side.record("alice", run("late", 1))  # numbered after both read
    assert [r.run_id for r in reader.list("alice", "late").items] == ["r-late-1"]
    assert dispatcher_side.forget_job("alice", "late") == 1  # found though not cached
    assert reader.list("alice", "late").items == []


def test_numbers_are_given_after_the_tables_highest_even_when_the_cache_lags(
    tmp_path: Path,
) -> None:
    db = tmp_path / "history.db"
    numbers = JobNumbers()
    ledger = SqliteFireLedger(db, numbers=numbers)
    ledger.mark_done_many(["a@2026-01-01T00:00:00Z", "b@2026-01-01T00:00:00Z"])
    assert numbers.known(ledger._conn, ["a", "b"]) == {"a": 1, "b": 2}
    # Another thread's older reading stored last: every row is cached, `_upto` lags.
    numbers._upto = 1
    ledger.mark_done("c@2026-01-01T00:00:00Z")
    assert _numbers(db) == {"a": 1, "b": 2, "c": 3}
    assert numbers._upto == 3


def test_queued_rows_read_with_their_done_marks(tmp_path: Path) -> None:
    from serverless_scheduler_common.runtime.sqlite import SqliteFireQueue

    db = tmp_path / "scheduler.db"
    ledger = SqliteFireLedger(db)
    ledger.mark_done_many(["a@2026-01-01T00:00:00Z", "no-job-prefix"])
    queue = SqliteFireQueue(db)
    fire_ids = ["a@2026-01-01T00:00:00Z", "a@2026-01-01T00:01:00Z", "b@t", "no-job-prefix"]
    queue.add_payloads([(fire_id, 0.0, "{}", 0) for fire_id in fire_ids])
    for numbers in (JobNumbers(), ledger.numbers):  # a cache of its own, the ledger's
        items, _ = queue.pending_window(with_done=numbers)
        assert {item.fire_id: item.done for item in items} == {
            "a@2026-01-01T00:00:00Z": True,
            "a@2026-01-01T00:01:00Z": False,
            "b@t": False,
            "no-job-prefix": True,
        }
    items, _ = queue.pending_window()
    assert not any(item.done for item in items)
