"""`WriteGate`: one write transaction at a time per database file, across processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from serverless_scheduler_common.sqlite import connect, write_gate

_HOLD = """
import sys, time
from serverless_scheduler_common.sqlite import write_gate
with write_gate(sys.argv[1]):
    print("in", flush=True)
    time.sleep(0.5)
"""


def test_a_writer_in_another_process_waits_until_the_gate_is_free(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    other = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "in\n"
        started = time.monotonic()
        with write_gate(db):
            waited = time.monotonic() - started
        assert waited >= 0.3  # it held the gate for 0.5 s from before we asked
    finally:
        assert other.wait(10) == 0


def test_the_gate_is_one_per_file_reentrant_and_orders_threads(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    gate = write_gate(db)
    assert write_gate(tmp_path / "." / "scheduler.db") is gate
    order: list[str] = []

    def write() -> None:
        with gate:
            order.append("second")

    with gate:
        with gate:  # the same thread again: no deadlock
            order.append("outer")
        second = threading.Thread(target=write)
        second.start()
        time.sleep(0.2)
        order.append("still outer")  # the other thread waits for the outermost exit
    second.join(5)
    assert order == ["outer", "still outer", "second"]


def test_an_in_memory_database_gets_no_lock_file(tmp_path: Path) -> None:
    before = set(os.listdir(Path.cwd()))
    with write_gate(":memory:"):
        pass
    assert set(os.listdir(Path.cwd())) == before


class _Recording:
    """A connection that records the statements it runs."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        self.statements.append(sql)
        return self.conn.execute(sql, *args)


def test_a_checkpoint_runs_once_its_interval_passed(tmp_path: Path) -> None:
    db = tmp_path / "scheduler.db"
    conn = connect(db, autocheckpoint=False)
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 2000)
    recording = _Recording(conn)
    gate = write_gate(db)
    gate.checkpoint_interval_s = 3600.0
    gate._checkpoint_at = time.monotonic()
    gate.checkpoint_after(recording)  # type: ignore[arg-type]
    assert recording.statements == []  # too soon
    gate.checkpoint_interval_s = 0.0
    gate.checkpoint_after(recording)  # type: ignore[arg-type]
    assert recording.statements == ["PRAGMA wal_checkpoint(PASSIVE)"]
    busy, logged, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert busy == 0 and logged > 500 and copied == logged  # the log was copied
