"""`connect`: new files get the larger page size; a file created before keeps its own."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from serverless_scheduler_common.sqlite import PAGE_SIZE, connect


def _page_size(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("PRAGMA page_size").fetchone()[0])
    finally:
        conn.close()


def test_a_new_file_gets_the_page_size_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "new.db"
    conn = connect(db)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.execute("INSERT INTO t VALUES ('a')")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert PAGE_SIZE == 16384
    assert _page_size(db) == PAGE_SIZE


def test_a_file_created_before_keeps_its_page_size_and_rows(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    old = sqlite3.connect(db)
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE t (x TEXT)")
    old.executemany("INSERT INTO t VALUES (?)", [(str(i),) for i in range(1000)])
    old.commit()
    old.close()
    assert _page_size(db) == 4096
    conn = connect(db)
    conn.execute("INSERT INTO t VALUES ('more')")
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 1001
    conn.close()
    assert _page_size(db) == 4096
