"""`insert_rows`: multi-row inserts that behave like one statement per row."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from serverless_scheduler_common.sqlite import ROW_CHUNKS, changed_since, connect, insert_rows

UPSERT_TAIL = " ON CONFLICT (id) DO UPDATE SET value = max(value, excluded.value)"


def _pair(tmp_path: Path, name: str) -> sqlite3.Connection:
    conn = connect(tmp_path / f"{name}.db")
    conn.execute(
        "CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, value INTEGER)"
    )
    return conn


def _rows(n: int) -> list[tuple[str, int]]:
    # ids repeat (every 7th row reuses an earlier id) so conflicts happen inside a chunk
    return [(f"id{(i if i % 7 else i // 2):05d}", (i * 37) % 101) for i in range(n)]


@pytest.mark.parametrize("n", [0, 1, 3, 17, 255, 256, 257, 700])
def test_or_ignore_matches_one_statement_per_row(tmp_path: Path, n: int) -> None:
    rows = _rows(n)
    many, multi = _pair(tmp_path, "many"), _pair(tmp_path, "multi")
    many.executemany("INSERT OR IGNORE INTO t (id, value) VALUES (?, ?)", rows)
    insert_rows(multi, "INSERT OR IGNORE INTO t (id, value)", rows, width=2)
    query = "SELECT seq, id, value FROM t ORDER BY seq"
    assert multi.execute(query).fetchall() == many.execute(query).fetchall()
    assert multi.total_changes == many.total_changes


@pytest.mark.parametrize("n", [1, 64, 300])
def test_an_upsert_tail_applies_per_row_in_order(tmp_path: Path, n: int) -> None:
    rows = _rows(n)
    many, multi = _pair(tmp_path, "many"), _pair(tmp_path, "multi")
    many.executemany(f"INSERT INTO t (id, value) VALUES (?, ?){UPSERT_TAIL}", rows)
    insert_rows(multi, "INSERT INTO t (id, value)", rows, width=2, tail=UPSERT_TAIL)
    query = "SELECT id, value FROM t ORDER BY id"
    assert multi.execute(query).fetchall() == many.execute(query).fetchall()


def test_a_batch_uses_few_statement_texts(tmp_path: Path) -> None:
    conn = _pair(tmp_path, "t")
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    insert_rows(conn, "INSERT INTO t (id, value)", [(f"x{i}", i) for i in range(597)], width=2)
    conn.set_trace_callback(None)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (597,)
    # 597 = 2 * 256 + 64 + 16 + 4 + 1: one statement per chunk, at most one text per size
    assert len(statements) == 6
    assert len({s.count("(") for s in statements}) <= len(ROW_CHUNKS)


def test_chunks_stay_within_the_limit_on_bound_values(tmp_path: Path) -> None:
    conn = connect(tmp_path / "limited.db")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
    conn.execute("CREATE TABLE w (a, b, c, d, e)")
    rows = [(i, i, i, i, i) for i in range(700)]
    insert_rows(conn, "INSERT INTO w", rows, width=5)  # 256 rows would bind 1280 values
    assert conn.execute("SELECT count(*), sum(a) FROM w").fetchone() == (700, sum(range(700)))


def test_a_row_of_the_wrong_width_is_refused(tmp_path: Path) -> None:
    conn = _pair(tmp_path, "t")
    with pytest.raises(sqlite3.ProgrammingError):
        insert_rows(conn, "INSERT INTO t (id, value)", [("a", 1), ("b",)], width=2)


def test_changes_are_counted_across_the_counter_wrapping_round() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    before = conn.total_changes
    insert_rows(conn, "INSERT INTO t (x)", [(1,), (2,), (3,)], width=1)
    assert changed_since(conn, before) == 3
    # SQLite's count is a C int: 2**31 - 6 plus ten changes reads as -2**31 + 4.
    wrapped = SimpleNamespace(total_changes=-(2**31) + 4)
    assert changed_since(wrapped, 2**31 - 6) == 10  # type: ignore[arg-type]
