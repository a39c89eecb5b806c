"""Local-mode adapters of the runtime, all in the one `<data_dir>/scheduler.db` file.

Each adapter opens its own connection (WAL mode, `synchronous=NORMAL`: a committed row
survives the process being killed) and creates its own tables. Connections are shared
by the dispatcher's worker threads behind a lock per adapter.

The dispatcher's hot path writes in batches: `SqliteFireQueue.complete` records the runs,
marks the fires done and dequeues them in one transaction, so a crash either keeps a
whole batch queued (it runs again) or none of it.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from ..events import JobFired
from ..policy import MAX_CATCHUP_WINDOW_S
from ..ports import Page, RenderedFire, fire_shard
from ..runs import Run
from ..sqlite import SqliteStore, changed_since, insert_rows
from .core import job_key
from .ports import DeadLetter, FireLookup

log = logging.getLogger(__name__)


def _ts(value: datetime) -> str:
    """UTC timestamp text that sorts like the instant it names (`...T12:00:00.000000Z`)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # isoformat is several times cheaper than strftime (this runs once per fire).
    return value.isoformat(timespec="microseconds")[:26] + "Z"


# -- job numbers ---------------------------------------------------------------------------
#: Job numbers: given in increasing order, never changed or deleted. There is no index
#: by job_id: a job's number is looked up in a cache that reads the table on from the
#: highest number it holds (`JobNumbers`). With one, each new job's entry went into that
#: index at a place of its own (ids are in no particular order): the first period of
#: 250,000 new jobs in a file rewrote most of the index's pages with every batch.
_NUMBERS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS job_numbers (job_no INTEGER PRIMARY KEY, job_id TEXT NOT NULL)"
)

#: The number of the done marks whose fire_id names no job (no `<job_id>@` prefix).
NO_JOB = 0


def create_numbers(conn: sqlite3.Connection) -> None:
    """Create `job_numbers` inside the caller's transaction, or drop the unique index on
    job_id a table of an earlier layout has (rebuilt with the same numbers)."""
    conn.execute(_NUMBERS_SCHEMA)
    if any(row[3] == "u" for row in conn.execute("PRAGMA index_list(job_numbers)").fetchall()):
        conn.execute("ALTER TABLE job_numbers RENAME TO job_numbers_before")
        conn.execute(_NUMBERS_SCHEMA)
        conn.execute(
            "INSERT INTO job_numbers (job_no, job_id) "
            "SELECT job_no, job_id FROM job_numbers_before ORDER BY job_no"
        )
        conn.execute("DROP TABLE job_numbers_before")


def fire_jobs(fire_ids: Iterable[str]) -> list[str | None]:
    """The job_id each fire_id starts with (`<job_id>@...`), None where it names none."""
    return [fire_id[:at] if (at := fire_id.find("@")) > 0 else None for fire_id in fire_ids]


def _fire_job_sql(column: str) -> str:
    """SQL for `fire_jobs` of one fire_id column: its `<job_id>` prefix, NULL for none."""
    at = f"instr({column}, '@')"
    return f"CASE WHEN {at} > 1 THEN substr({column}, 1, {at} - 1) END"


def number_new_jobs(target: str, job_ids: str) -> str:
    """A statement giving the next numbers in `<target>.job_numbers` to the distinct
    job ids the query `job_ids` selects (a column named job_id) that have none."""
    return (
        f"INSERT INTO {target}.job_numbers (job_id) SELECT DISTINCT job_id FROM ({job_ids}) "
        f"WHERE job_id IS NOT NULL AND job_id NOT IN (SELECT job_id FROM {target}.job_numbers)"
    )


#: Length of the time part of a timed fire's id (`<job_id>@2026-01-01T00:00:00Z`).
TIME_PART_CHARS = 20

#: Done marks kept per job: those of its newest timed fires. A second delivery is one of
#: a job's last fires before a stop (the engine's marks lag by a fraction of a second,
#: and a job fires at most once a minute), so older marks only grow the table: at
#: 10,000 fires/s the TTL alone kept some 7 billion of them.
DONE_KEEP_PER_JOB = 4


def time_part(fire_id: str, job: str | None) -> str | None:
    """The time part of a timed fire's id (`fire_key`): what follows `<job>@`, when it
    is `TIME_PART_CHARS` long and its only `Z` is its last character (None for a manual
    fire, a fire id of no job, any other form). Done marks of such fires are kept in
    `done_recent`, where these two properties let fixed-width slices and a substring
    search stand for a list (`_time_part_sql` is the same test in SQL; `done_marks` and
    `write_done` repeat it inline, once per fire)."""
    if job is None:
        return None
    part = fire_id[len(job) + 1 :]
    return part if len(part) == TIME_PART_CHARS and part.find("Z") == TIME_PART_CHARS - 1 else None


def _time_part_sql(column: str) -> str:
    """SQL for `time_part` of one fire_id column: NULL where it has none."""
    part = f"substr({column}, instr({column}, '@') + 1)"
    return (
        f"CASE WHEN instr({column}, '@') > 1 AND length({part}) = {TIME_PART_CHARS} "
        f"AND instr({part}, 'Z') = {TIME_PART_CHARS} THEN {part} END"
    )


def recent_upsert(keep: int) -> str:
    """The conflict clause that adds one time part (`excluded.times`) to a job's row of
    `done_recent`, whose parts are in order, keeping the newest `keep` (and adding none
    twice). A part after the row's last (a job's next fire: nearly always) is appended
    in SQL; any other (a fire completed late, a copy from another file) goes through
    `newest_parts` (registered on every connection by `connect`)."""
    chars = keep * TIME_PART_CHARS
    return (
        " ON CONFLICT (job_no) DO UPDATE SET times = CASE"
        " WHEN instr(times, excluded.times) > 0 THEN times"
        f" WHEN excluded.times > substr(times, -{TIME_PART_CHARS})"
        f" THEN substr(times || excluded.times, -{chars})"
        f" ELSE newest_parts(times, excluded.times, {TIME_PART_CHARS}, {keep}) END,"
        " done_at = max(done_at, excluded.done_at)"
    )


#: Time parts one row of `done_recent` holds at most, as far as a copy reads them.
_RECENT_READ_MAX = 64


def fold_done_marks(target: str, keep: int) -> tuple[str, str]:
    """Statements moving the timed marks of `<target>.fires_done` (copied in, or kept by
    an earlier version) into `<target>.done_recent` (a job keeps its newest `keep`),
    then dropping them there."""
    timed = _time_part_sql("fire_id")
    return (
        f"INSERT INTO {target}.done_recent (job_no, times, done_at) "
        f"SELECT job_no, t, done_at FROM (SELECT job_no, {timed} AS t, done_at, "
        "row_number() OVER (PARTITION BY job_no ORDER BY fire_id DESC) AS k "
        f"FROM {target}.fires_done WHERE job_no != {NO_JOB} AND {timed} IS NOT NULL) "
        f"WHERE k <= {keep} ORDER BY job_no, t" + recent_upsert(keep),
        f"DELETE FROM {target}.fires_done WHERE job_no != {NO_JOB} AND {timed} IS NOT NULL",
    )


def copy_done_marks(target: str, source: str, keep: int = DONE_KEEP_PER_JOB) -> tuple[str, ...]:
    """Statements copying the done marks of the table `source` (any layout: read by
    fire_id) into `<target>`, numbered with `<target>.job_numbers` (a bulk copy: the
    join builds its own index by job_id): timed marks to `done_recent` (a job keeps
    its newest `keep`), the others to `fires_done`."""
    return (
        number_new_jobs(target, f"SELECT {_fire_job_sql('fire_id')} AS job_id FROM {source}"),
        f"INSERT OR IGNORE INTO {target}.fires_done (job_no, fire_id, done_at) "
        f"SELECT coalesce(n.job_no, {NO_JOB}), s.fire_id, s.done_at FROM {source} s "
        f"LEFT JOIN {target}.job_numbers n ON n.job_id = {_fire_job_sql('s.fire_id')}",
        *fold_done_marks(target, keep),
    )


def copy_recent_marks(target: str, source: str, keep: int = DONE_KEEP_PER_JOB) -> tuple[str, str]:
    """Statements merging `<source>.done_recent` (numbered by `<source>.job_numbers`)
    into `<target>.done_recent`, one time part at a time (a job keeps its newest `keep`
    of both files: a file's copy of another's marks may be older than its own)."""
    slots = ", ".join(f"({i})" for i in range(_RECENT_READ_MAX))
    return (
        number_new_jobs(
            target,
            f"SELECT n.job_id FROM {source}.done_recent d "
            f"JOIN {source}.job_numbers n ON n.job_no = d.job_no",
        ),
        f"INSERT INTO {target}.done_recent (job_no, times, done_at) "
        f"SELECT m.job_no, substr(d.times, 1 + {TIME_PART_CHARS} * k.column1, "
        f"{TIME_PART_CHARS}) AS t, d.done_at FROM {source}.done_recent d "
        f"JOIN {source}.job_numbers n ON n.job_no = d.job_no "
        f"JOIN {target}.job_numbers m ON m.job_id = n.job_id "
        f"JOIN (VALUES {slots}) k ON {TIME_PART_CHARS} * k.column1 < length(d.times) "
        "WHERE true ORDER BY m.job_no, t" + recent_upsert(keep),
    )


class JobNumbers:
    """Small integers standing for job ids in one file's history tables (`job_numbers`).

    The run index and the done marks lead with a job's number instead of its id, and a
    number is given when a job is first written to the file: in the order jobs fire.
    Each period a job adds one run and one mark, so a batch of fires then writes
    neighbouring index entries (a few pages) instead of one entry on a page of its own
    per fire, whatever the ids look like: with ids in no particular order (the server
    assigns them when a job is created) the run index and the marks sent about one
    page per fire to the write-ahead log, and a fire cost about 1.8 times as much at
    10,000 fires/s (`benchmarks/engine.py --ids shuffled`, docs/runtime.md). The
    entries are smaller too (an integer instead of the owner and job ids).

    Numbers are given in increasing order (one writer at a time holds the file) and
    never changed or deleted, so the cache is the table up to the highest number it has
    read (`_upto`): a miss reads only the rows given since, by the table's key. The
    numbers a transaction gives are cached once it has committed (`remember`: it may
    roll back). The table has no index by job_id (see `_NUMBERS_SCHEMA`): a job gets a
    second number only if a writer gives one without reading the table on first,
    which `assign` does inside its write transaction.
    Job ids are unique in a deployment (the server assigns them); runs of two owners
    under one job_id would share one retention count. One object may serve several
    adapters of one file (`create_local_dispatcher` shares it: one cache per process).
    """

    def __init__(self, *, preload: bool = False) -> None:
        """`preload`: the cache of the file's dispatcher. Once it has read the table,
        `known` takes a job it does not hold for one without a number and reads nothing
        (`assign` still reads on inside its write transaction). A dispatcher sees every
        job of its partition each period; a query per batch of jobs not yet cached cost
        about 3 us per fire for the first period after a start.

        That is right because the dispatcher is the only writer of its file's done
        marks (the one reader of `known`) and caches what it gives once committed:
        a number it does not hold was given elsewhere (the timer engine's `skipped`
        runs), and has no marks."""
        self._cache: dict[str, int] = {}
        self._preload = preload
        #: Every number up to this one is cached (raised only, under `_guard`: threads
        #: of one process share the cache, each adapter on a connection of its own).
        self._upto = NO_JOB
        self._guard = threading.Lock()
        #: `known` reads no more (`preload`, once the table was read).
        self._complete = False

    def reload(self) -> None:
        """Read on at the next miss (a `preload` cache that has read the table): for a
        dispatcher starting again, whose file may have been given marks and numbers
        while it was stopped (`arrange` copies them when K changes)."""
        self._complete = False

    def _read_on(self, conn: sqlite3.Connection) -> int:
        """Cache the committed numbers given since the highest one cached; returns the
        highest number the table holds in `conn`'s view (a `preload` cache has then
        read the table)."""
        upto = self._upto
        rows = conn.execute(
            "SELECT job_no, job_id FROM job_numbers WHERE job_no > ? ORDER BY job_no", (upto,)
        ).fetchall()
        top = int(rows[-1][0]) if rows else upto
        if rows:
            self._cache_rows({str(job_id): int(number) for number, job_id in rows}, top)
        self._complete = self._preload  # once what it read is cached
        return top

    def _cache_rows(self, numbers: dict[str, int], top: int) -> None:
        """Cache `numbers`, the table's rows up to `top` not cached before."""
        with self._guard:
            self._cache.update(numbers)
            if top > self._upto:
                self._upto = top

    def number_of(self, conn: sqlite3.Connection, job_id: str) -> int | None:
        """The committed number of one job (None: it has none), read on at a miss
        whatever the kind of cache (a job with runs the timer engine recorded)."""
        number = self._cache.get(job_id)
        if number is None:
            self._read_on(conn)
            number = self._cache.get(job_id)
        return number

    def assign(self, conn: sqlite3.Connection, job_ids: Iterable[str]) -> dict[str, int]:
        """A mapping with the numbers of `job_ids` (and maybe others), giving the
        missing ones the next numbers in the order given. Call it inside a write
        transaction, before anything else in it writes `job_numbers`, and pass what it
        returns to `remember` once the transaction has committed."""
        cache = self._cache
        missing = [job_id for job_id in job_ids if job_id not in cache]
        if not missing:
            return cache  # the common case: every job has fired here before
        # Inside the write transaction, what it reads is all there is: another adapter
        # of the file may have given numbers since the cache last read.
        top = self._read_on(conn)
        new = [job_id for job_id in dict.fromkeys(missing) if job_id not in cache]
        if not new:
            return cache
        first = top + 1
        given = {job_id: first + offset for offset, job_id in enumerate(new)}
        # In number order: each row goes to the table's end.
        rows = [(number, job_id) for job_id, number in given.items()]
        insert_rows(conn, "INSERT INTO job_numbers (job_no, job_id)", rows, width=2)
        return _Assigned(cache, given)

    def remember(self, numbers: dict[str, int]) -> None:
        """Cache the numbers `assign` gave, once their transaction has committed."""
        if isinstance(numbers, _Assigned) and numbers.given:
            self._cache_rows(numbers.given, max(numbers.given.values()))

    def known(self, conn: sqlite3.Connection, job_ids: Iterable[str]) -> dict[str, int]:
        """A mapping with the numbers of those of `job_ids` that have one (and maybe
        others). A read outside a write transaction: what it reads is committed, and
        cached."""
        cache = self._cache
        missing = [job_id for job_id in job_ids if job_id not in cache]
        if missing and not self._complete:  # a `preload` cache that has read the table
            self._read_on(conn)
        return cache


class _Assigned(dict[str, int]):
    """Numbers `JobNumbers.assign` gave in a transaction not yet committed (`given`),
    over the cached ones."""

    def __init__(self, cache: dict[str, int], given: dict[str, int]) -> None:
        super().__init__(given)
        self.cache = cache
        self.given = given

    def __missing__(self, job_id: str) -> int:
        return self.cache[job_id]


# -- run history -------------------------------------------------------------------------
#: Each job's chain of runs (`SqliteRunRepository`): the rowid of its latest recorded
#: run (NULL once its runs were forgotten), the latest start among its runs, and how
#: many runs it has recorded (`seq`: the latest run's place in the chain).
_HEADS_SCHEMA = """CREATE TABLE IF NOT EXISTS run_heads (
    job_no INTEGER PRIMARY KEY,
    newest INTEGER,
    started_at TEXT NOT NULL,
    seq INTEGER NOT NULL
)"""

_RUNS_TABLE = """CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    data TEXT NOT NULL,
    job_no INTEGER,
    prev INTEGER,
    seq INTEGER
)"""

#: Links every run of the file to its job's run started before it (start time, then
#: run id), numbers them in that order and makes the heads again: for a file of an
#: earlier layout, and after runs were copied in (`partitions._move_history`).
RELINK_RUNS = (
    """UPDATE runs SET prev = l.prev, seq = l.seq FROM (
           SELECT rowid AS id,
                  lag(rowid) OVER (PARTITION BY job_no ORDER BY started_at, run_id) AS prev,
                  row_number() OVER (PARTITION BY job_no ORDER BY started_at, run_id) AS seq
           FROM runs WHERE job_no IS NOT NULL) AS l
       WHERE runs.rowid = l.id AND (runs.prev IS NOT l.prev OR runs.seq IS NOT l.seq)""",
    # The heads of forgotten jobs stay: their runs not yet swept stay out of the chains.
    "DELETE FROM run_heads WHERE newest IS NOT NULL",
    """INSERT OR IGNORE INTO run_heads (job_no, newest, started_at, seq)
       SELECT job_no, id, started_at, n FROM (
           SELECT job_no, rowid AS id, started_at,
                  row_number() OVER (
                      PARTITION BY job_no ORDER BY started_at DESC, run_id DESC) AS k,
                  count(*) OVER (PARTITION BY job_no) AS n
           FROM runs WHERE job_no IS NOT NULL)
       WHERE k = 1""",
)

#: Gives a runs table of an earlier layout (keyed by job, or indexed by job id or by
#: job number: every earlier one has these five columns) its job numbers and chains:
#: the rows are copied into a new table, then linked.
_UPGRADE_RUNS = (
    "ALTER TABLE runs RENAME TO runs_before",
    _RUNS_TABLE,
    number_new_jobs("main", "SELECT job_id FROM runs_before"),
    """INSERT INTO runs (owner_id, job_id, run_id, started_at, data, job_no)
       SELECT r.owner_id, r.job_id, r.run_id, r.started_at, r.data, n.job_no
       FROM runs_before r JOIN job_numbers n ON n.job_id = r.job_id
       ORDER BY r.started_at, r.run_id""",
    "DROP TABLE runs_before",
    *RELINK_RUNS,
)

#: The most links a walk along a chain follows (a guard: links only go to runs of the
#: same job, recorded before).
_WALK_LIMIT = 1_000_000

#: The rowids along the chain of the job ?1 (a number) from the rowid ?2, newest first,
#: while the runs are among its newest ?3 recorded (?4: its head's `seq`).
_CHAIN = f"""WITH RECURSIVE chain(id, n) AS (
    SELECT ?2, 1
    UNION ALL
    SELECT r.prev, chain.n + 1 FROM chain JOIN runs r ON r.rowid = chain.id
    WHERE r.job_no = ?1 AND r.prev IS NOT NULL AND ?4 - r.seq < ?3 - 1
        AND chain.n < {_WALK_LIMIT})"""

#: A job's head by its number: (job_no, newest, seq).
_HEAD_OF = "SELECT job_no, newest, seq FROM run_heads WHERE job_no = ?1"

#: (started_at, run_id, rowid) of the retained runs along a chain (`_CHAIN`'s
#: parameters) whose owner is ?5.
_RETAINED_RUNS = f"""{_CHAIN} SELECT r.started_at, r.run_id, r.rowid FROM chain
JOIN runs r ON r.rowid = chain.id WHERE r.job_no = ?1 AND r.owner_id = ?5 AND ?4 - r.seq < ?3"""

#: Rows of the runs table the sweep (`_sweep`) looks at per run recorded.
SWEEP_VISITS_PER_RUN = 2

#: How often (seconds) the sweep checks whether any run may be due, until one may.
SWEEP_CHECK_S = 30.0

#: Deletes the runs between two rowids (?1 < rowid <= ?2) that are no longer among the
#: newest ?3 of their job, or whose job's runs were forgotten.
_SWEEP = """DELETE FROM runs WHERE rowid IN (
    SELECT r.rowid FROM runs r LEFT JOIN run_heads h ON h.job_no = r.job_no
    WHERE r.rowid > ?1 AND r.rowid <= ?2
        AND (h.job_no IS NULL OR h.newest IS NULL OR h.seq - r.seq >= ?3))"""


@dataclass
class RunSweep:
    """A file's sweep of old runs (`_sweep`): the rowid it goes on from (0: the
    table's start), and whether a job may hold more runs than the retention. Kept in
    memory: after a restart the sweep starts again from the start."""

    after: int = 0
    #: Some job has recorded more runs than the retention, or has been forgotten: a
    #: row may be due for deletion. Until then the sweep looks at the heads (the
    #: highest `seq`) every `SWEEP_CHECK_S` instead of at the rows.
    needed: bool = False
    checked_at: float = -math.inf


class SqliteRunRepository(SqliteStore):
    """`RunRepository` over SQLite: newest first, the last `retention` runs per job.

    Runs are appended to a rowid table (each insert lands on the table's last page).
    Each run holds the rowid of its job's run recorded before it (`prev`) and its place
    in its job's chain (`seq`); `run_heads` holds each job's latest and count (by its
    number, `JobNumbers`). A fire writes its run at the table's end and rewrites its
    job's head, a row of a few dozen bytes next to those of the jobs that fire with
    it: the same work however many runs the job keeps. Runs that are no longer among
    their job's newest `retention` are deleted by a sweep along the table from its
    oldest rows (`_sweep`), a few rows per run recorded: with jobs firing at similar
    rates the oldest rows are the ones to go, so it deletes whole pages in order.

    The layouts before kept an index of every run by job (number or id), start time
    and run id, and trimmed a job by stepping along its entries. Each period added an
    entry among each job's entries, so a batch of fires rewrote every page holding its
    jobs' entries: a drained fire cost about 0.25 us more per run its job kept (26.6
    us with 4 kept, 43.4 with 100; the default retention let a job keep up to 125). A
    file of an earlier layout is given its chains when first opened (one transaction).

    A run recorded again with the same `run_id` (and start time: runs never change
    theirs) replaces the stored one in place. A run that started after every run its
    job holds is new; any other is looked for along its job's chain first (concurrent
    runs of one job recorded in another order than they started).
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        retention: int = 100,
        others: Callable[[], Sequence[Path]] | None = None,
        numbers: JobNumbers | None = None,
    ) -> None:
        """`others`: the other files that may hold runs (dispatch partitions, looked up
        on each read): `list` merges them in and `forget_job` deletes there too; runs
        are recorded in `db_path` only. `numbers`: the file's job numbers, when another
        adapter of the file shares them."""
        if retention < 1:
            raise ValueError("retention must be at least 1")
        self.numbers = numbers if numbers is not None else JobNumbers()
        super().__init__(db_path)
        self.retention = retention
        self._others = others
        self.sweep = RunSweep()
        self._other_stores: dict[Path, SqliteRunRepository] = {}
        self._stores_lock = threading.Lock()

    def _stores(self) -> list[SqliteRunRepository]:
        """This file's adapter and one per other file holding runs (opened once)."""
        if self._others is None:
            return [self]
        stores: list[SqliteRunRepository] = [self]
        mine = self.file
        for path in self._others():
            key = path.resolve()
            if key == mine or not path.exists():
                continue
            with self._stores_lock:  # API and worker threads: one connection per file
                store = self._other_stores.get(key)
                if store is None:
                    store = self._other_stores[key] = SqliteRunRepository(
                        path, retention=self.retention
                    )
            stores.append(store)
        return stores

    def close(self) -> None:
        with self._stores_lock:
            others, self._other_stores = list(self._other_stores.values()), {}
        for store in others:
            store.close()
        super().close()

    def _create_schema(self) -> None:
        """Create the job numbers, the runs and their heads, or give a runs table of an
        earlier layout its job numbers and chains (one transaction: a crash redoes all
        of it)."""
        with self._tx() as conn:
            create_numbers(conn)
            conn.execute(_HEADS_SCHEMA)
            columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(runs)")}
            if not columns:
                conn.execute(_RUNS_TABLE)
            elif "id" not in columns:
                log.info("run history of %s: linking runs per job (once)...", self.db_path.name)
                for statement in _UPGRADE_RUNS:
                    conn.execute(statement)
                log.info("run history of %s: runs linked", self.db_path.name)

    def record(self, owner_id: str, run: Run) -> None:
        self.record_many([(owner_id, run)])

    def record_many(self, runs: Sequence[tuple[str, Run]]) -> None:
        """Insert or replace several runs in one transaction."""
        if runs:
            prepared = prepare_runs(runs, self.retention, self.sweep)
            with self._tx() as conn:
                assigned = self.numbers.assign(conn, prepared.job_ids())
                write_runs(conn, prepared, assigned)
            self.numbers.remember(assigned)

    def forget_job(self, owner_id: str, job_id: str) -> int:
        """Delete every run of a deleted job (its summaries and diffs go with it), in
        every file that holds runs; returns how many. The API shows no runs of a job
        that is gone."""
        deleted = 0
        for store in self._stores():
            with store._tx() as conn:
                deleted += _forget_runs(conn, store.numbers, owner_id, job_id)
            store.sweep.needed = True  # what the chain no longer reaches
        return deleted

    def _keys(self, owner_id: str, job_id: str) -> list[tuple[str, str, int]]:
        """(started_at, run_id, rowid) of the owner's runs of a job in this file."""
        with self._lock:
            number = self.numbers.number_of(self._conn, job_id)
        if number is None:
            return []
        heads = self._query(_HEAD_OF, (number,))
        if not heads or heads[0][1] is None:
            return []
        job_no, newest, seq = heads[0]
        rows = self._query(_RETAINED_RUNS, (job_no, newest, self.retention, seq, owner_id))
        return [(str(row[0]), str(row[1]), int(str(row[2]))) for row in rows]

    def _data(self, rowids: Sequence[int]) -> list[tuple[int, str]]:
        out: list[tuple[int, str]] = []
        for start in range(0, len(rowids), 500):
            chunk = rowids[start : start + 500]
            rows = self._query(
                f"SELECT rowid, data FROM runs WHERE rowid IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            out += [(int(str(row[0])), str(row[1])) for row in rows]
        return out

    def list(
        self, owner_id: str, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        limit = max(1, min(int(limit), 1000))
        after = _decode_cursor(cursor) if cursor else None
        # Each file shows a job's newest `retention` recorded, and the newest
        # `retention` of those are shown (after a change of dispatch partitions a
        # job's runs are in two files).
        stores = self._stores()
        keys = sorted(
            (
                (started, run_id, rowid, index)
                for index, store in enumerate(stores)
                for started, run_id, rowid in store._keys(owner_id, job_id)
            ),
            reverse=True,
        )[: self.retention]
        if after is not None:
            keys = [key for key in keys if (key[0], key[1]) < after]
        page = keys[: limit + 1]
        data: dict[tuple[int, int], str] = {}
        for index, store in enumerate(stores):
            rowids = [key[2] for key in page[:limit] if key[3] == index]
            data.update(((index, rowid), text) for rowid, text in store._data(rowids))
        items = [
            Run.model_validate_json(data[key[3], key[2]])
            for key in page[:limit]
            if (key[3], key[2]) in data
        ]
        next_cursor = None
        if len(page) > limit:
            last = page[limit - 1]
            next_cursor = _encode_cursor(last[0], last[1])
        return Page(items=items, next_cursor=next_cursor)


@dataclass
class PreparedRuns:
    """Runs as rows (`prepare_runs`), ready for `write_runs`."""

    rows: list[tuple[str, str, str, str, str]]
    retention: int
    sweep: RunSweep

    def job_ids(self) -> list[str]:
        """The jobs of the rows, in order (`JobNumbers.assign`)."""
        return [row[1] for row in self.rows]


def prepare_runs(runs: Sequence[tuple[str, Run]], retention: int, sweep: RunSweep) -> PreparedRuns:
    """The rows of `runs`, built before the transaction that writes them (other
    writers wait while one is open); `retention` and `sweep`: the repository's."""
    # The model's serializer called directly: `model_dump_json` is a Python wrapper that
    # passes a dozen options, about a quarter of the cost of writing a run's JSON.
    rows = []
    for owner_id, run in runs:
        data = run.__pydantic_serializer__.to_json(run).decode()
        rows.append((owner_id, run.job_id, run.run_id, _started_text(run, data), data))
    return PreparedRuns(rows, retention, sweep)


def write_runs(conn: sqlite3.Connection, prepared: PreparedRuns, numbers: dict[str, int]) -> None:
    """Record runs inside the caller's transaction; `numbers` has the job number of
    each (`JobNumbers.assign`).

    Each new run goes to the table's end with the rowid after its last, linked to its
    job's latest run, and becomes its job's head. A run already stored (same `run_id`)
    is rewritten in place (`_recorded_before`). Then the sweep goes on (`_sweep`).
    """
    # A run given twice in one batch: its last copy.
    last = {row[2]: index for index, row in enumerate(prepared.rows)}
    rows = (
        prepared.rows
        if len(last) == len(prepared.rows)
        else [row for index, row in enumerate(prepared.rows) if last[row[2]] == index]
    )
    if not rows:
        return
    job_nos = [numbers[row[1]] for row in rows]
    heads = _read_heads(conn, job_nos)
    again = _recorded_before(conn, rows, job_nos, heads, prepared.retention)
    # The highest rowid ever given (AUTOINCREMENT's): a rowid never names two runs, so
    # a link to a deleted run never leads to another one.
    top = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
    rowid = int(top[0]) if top is not None else 0
    inserts = []
    for index, row in enumerate(rows):
        if index in again:
            continue
        rowid += 1
        job_no = job_nos[index]
        head = heads.get(job_no)
        if head is None:
            head = heads[job_no] = [None, row[3], 0]
        head[2] += 1
        inserts.append((rowid, *row, job_no, head[0], head[2]))
        head[0] = rowid
        if row[3] > head[1]:
            head[1] = row[3]
    if inserts:
        insert_rows(
            conn,
            "INSERT INTO runs "
            "(rowid, owner_id, job_id, run_id, started_at, data, job_no, prev, seq)",
            inserts,
            width=9,
        )
        insert_rows(
            conn,
            "INSERT INTO run_heads (job_no, newest, started_at, seq)",
            [(job_no, *heads[job_no]) for job_no in dict.fromkeys(row[6] for row in inserts)],
            width=4,
            tail=" ON CONFLICT (job_no) DO UPDATE SET newest = excluded.newest, "
            "started_at = excluded.started_at, seq = excluded.seq",
        )
    if again:
        conn.executemany(
            "UPDATE runs SET owner_id = ?, started_at = ?, data = ? WHERE rowid = ?",
            [(rows[index][0], rows[index][3], rows[index][4], at) for index, at in again.items()],
        )
    _sweep(
        conn,
        prepared.sweep,
        SWEEP_VISITS_PER_RUN * len(rows),
        prepared.retention,
        (row[8] for row in inserts),
    )


def _read_heads(conn: sqlite3.Connection, job_nos: Sequence[int]) -> dict[int, list[Any]]:
    """[newest, started_at, seq] of the heads of these jobs that have one.

    A batch's jobs mostly have neighbouring numbers (they are given in firing order):
    one range read then costs about a third of a look-up per job."""
    wanted = list(dict.fromkeys(job_nos))
    low, high = min(wanted), max(wanted)
    if high - low < 2 * len(wanted):
        rows = conn.execute(
            "SELECT job_no, newest, started_at, seq FROM run_heads WHERE job_no BETWEEN ? AND ?",
            (low, high),
        ).fetchall()
        return {row[0]: [row[1], row[2], row[3]] for row in rows}
    heads: dict[int, list[Any]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = conn.execute(
            "SELECT job_no, newest, started_at, seq FROM run_heads "
            f"WHERE job_no IN ({','.join('?' * len(chunk))})",
            chunk,
        ).fetchall()
        heads.update((row[0], [row[1], row[2], row[3]]) for row in rows)
    return heads


def _recorded_before(
    conn: sqlite3.Connection,
    rows: Sequence[tuple[str, str, str, str, str]],
    job_nos: Sequence[int],
    heads: dict[int, list[Any]],
    retention: int,
) -> dict[int, int]:
    """{index in `rows`: rowid} of the runs already stored. A run that started after
    every run of its job is new (the usual case: one look at its head); any other is
    looked for along its job's chain."""
    found: dict[int, int] = {}
    for index, row in enumerate(rows):
        head = heads.get(job_nos[index])
        if head is None or head[0] is None or row[3] > head[1]:
            continue
        hit = conn.execute(
            f"""{_CHAIN} SELECT r.rowid FROM chain JOIN runs r ON r.rowid = chain.id
                WHERE r.job_no = ?1 AND r.run_id = ?5 LIMIT 1""",
            (job_nos[index], head[0], retention, head[2], row[2]),
        ).fetchone()
        if hit is not None:
            found[index] = int(hit[0])
    return found


def _sweep(
    conn: sqlite3.Connection,
    sweep: RunSweep,
    visits: int,
    retention: int,
    seqs: Iterable[int] = (),
) -> None:
    """Look at the next `visits` rows of the runs table after `sweep.after` (from the
    start again after its end) and delete those no longer retained (`_SWEEP`).

    Deleting per job (the layouts before: a job's oldest runs when it passed its
    retention) meant finding them first, and each sat on a page of its own. The table
    is in the order runs were recorded, so with jobs firing at similar rates its oldest
    rows are the ones no longer retained: the sweep reads and deletes whole pages in
    order. It looks at twice the rows recorded, so it goes round the table faster than
    the table grows and runs past their retention stay at most about as many as the
    retained ones (rows of jobs that fire less often are looked at again each round).

    While no job has recorded more than `retention` runs (`seqs`: the counts this
    batch wrote; `RunSweep.needed`), no row can be due and the sweep only looks at
    the heads' highest count now and then (another writer of the file may have passed
    it) instead of visiting rows that all stay.
    """
    if not sweep.needed:
        if max(seqs, default=0) > retention:
            sweep.needed = True
        elif time.monotonic() - sweep.checked_at >= SWEEP_CHECK_S:
            sweep.checked_at = time.monotonic()
            top, forgotten = conn.execute(
                "SELECT max(seq), max(newest IS NULL) FROM run_heads"
            ).fetchone()
            sweep.needed = int(top or 0) > retention or bool(forgotten)
        if not sweep.needed:
            return
    row = conn.execute(
        "SELECT rowid FROM runs WHERE rowid > ? ORDER BY rowid LIMIT 1 OFFSET ?",
        (sweep.after, max(0, visits - 1)),
    ).fetchone()
    end = int(row[0]) if row is not None else _LAST_ROWID
    conn.execute(_SWEEP, (sweep.after, end, retention))
    sweep.after = end if row is not None else 0


def _forget_runs(conn: sqlite3.Connection, numbers: JobNumbers, owner_id: str, job_id: str) -> int:
    """Delete the owner's runs of a job in the caller's transaction (`numbers`: the
    file's); returns how many.

    The runs of another owner under the same job_id (job ids are unique in a
    deployment: not expected) keep a chain of their own. A job left with no runs keeps
    its head, with no newest run and its count moved on by `_FORGOTTEN`: runs older
    than the chain's retained ones (left for the sweep) stay out of a job recreated
    under the same id."""
    number = numbers.number_of(conn, job_id)
    head = None if number is None else conn.execute(_HEAD_OF, (number,)).fetchone()
    if head is None or head[1] is None:
        return 0
    job_no = int(head[0])
    chain = conn.execute(
        f"""{_CHAIN} SELECT r.rowid, r.owner_id, r.started_at FROM chain
            JOIN runs r ON r.rowid = chain.id WHERE r.job_no = ?1 ORDER BY chain.n""",
        (job_no, head[1], _WALK_LIMIT, head[2]),
    ).fetchall()
    mine = [int(row[0]) for row in chain if row[1] == owner_id]
    for start in range(0, len(mine), 500):
        chunk = mine[start : start + 500]
        conn.execute(f"DELETE FROM runs WHERE rowid IN ({','.join('?' * len(chunk))})", chunk)
    others = [row for row in chain if row[1] != owner_id]
    if not others:
        conn.execute(
            "UPDATE run_heads SET newest = NULL, seq = seq + ? WHERE job_no = ?",
            (_FORGOTTEN, job_no),
        )
    elif mine:
        links = [(int(older[0]), int(newer[0])) for newer, older in itertools.pairwise(others)]
        conn.executemany("UPDATE runs SET prev = ? WHERE rowid = ?", links)
        conn.execute("UPDATE runs SET prev = NULL WHERE rowid = ?", (others[-1][0],))
        conn.execute(
            "UPDATE run_heads SET newest = ?, started_at = ? WHERE job_no = ?",
            (others[0][0], max(str(row[2]) for row in others), job_no),
        )
    return len(mine)


#: The highest rowid (the sweep's end of the table).
_LAST_ROWID = (1 << 63) - 1

#: How far a forgotten job's count moves on (more than any retention).
_FORGOTTEN = 1 << 40


def _started_text(run: Run, data: str) -> str:
    """The `started_at` column (`_ts(run.started_at)`), cut from the run's JSON `data`.

    The serializer writes a UTC time with microseconds in the same form; taking it from
    there saves a datetime formatting per run (it cost about 5 % of a fire). Any other
    form (an offset other than UTC, no fraction) takes `_ts`. The first
    `"started_at":"` in the JSON is the key: a quote inside a value is escaped.
    """
    at = data.find('"started_at":"') + 14
    if at >= 14:
        text = data[at : at + 27]
        if text[19:20] == "." and text[26:27] == "Z":
            return text
    return _ts(run.started_at)


def _encode_cursor(started: str, run_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([started, run_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        started, run_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return str(started), str(run_id)
    except (ValueError, TypeError) as exc:
        raise ValueError("cursor: not a cursor returned by this API") from exc


# -- idempotency, in-progress markers, failure counts ---------------------------------------
#: How long a local done mark is kept at most: the timer engine hands a fire over again
#: only after a stop between publishing it and recording it, and never once it is older
#: than the longest catch-up window, so a day more than that covers every second
#: delivery. (The marks of 10,000 fires/s for 30 days, the earlier setting, were 26
#: billion rows.) Marks of a job that keeps firing go much sooner (`DONE_KEEP_PER_JOB`).
DONE_TTL_S = MAX_CATCHUP_WINDOW_S + 86_400


class NewestMarks:
    """Per job number, the newest time part among the job's done marks in one file, as
    far as the file's only writer of marks knows (a dispatcher's ledger): a timed fire
    whose time part is later than that has no mark, and is not looked up. A job fires
    later each period, so once every job of a partition has been looked up (its first
    period after a start) a batch reads no marks at all: 0.5 us per fire instead of
    0.9 for the look-up, in steady state.

    Kept right by three rules. A look-up records what it read only if no write of marks
    was confirmed since before it began (`epoch`): otherwise a mark committed after its
    snapshot could be missed. A write is merged once its transaction has committed
    (`written` inside it, `confirm` after; what a rolled-back write left is merged at
    the next confirm, which only makes an entry later than the file's: one more look-up,
    never a mark missed), and only into a job already known. Marks that go (a deleted
    job's, the sweep's) leave entries later than the file's too. A job not known is
    looked up: after a start (`clear`) every job is.
    """

    #: Distinct time parts shared at most (a period's fires share a few dozen).
    _PARTS_MAX = 4096

    def __init__(self) -> None:
        #: Indexed by job number: the newest part ("" for none), None where not known.
        self.newest: list[str | None] = []
        self.epoch = 0
        self._guard = threading.Lock()
        self._parts: dict[str, str] = {}
        self._pending = threading.local()

    def clear(self) -> None:
        """Forget every entry (marks may have been copied into the file meanwhile)."""
        with self._guard:
            self.newest = []
            self.epoch += 1

    def _share(self, part: str) -> str:
        """One string object per distinct part (an entry per job costs a pointer)."""
        parts = self._parts
        if len(parts) >= self._PARTS_MAX:
            parts.clear()
        return parts.setdefault(part, part)

    def learn(self, epoch: int, times: dict[int, str], asked: Sequence[int]) -> None:
        """Record a look-up that began at `epoch` and read `times` (the rows found) for
        the jobs `asked`, unless a write was confirmed since."""
        with self._guard:
            if epoch != self.epoch or not asked:
                return
            newest = self.newest
            top = max(asked)
            if top >= len(newest):
                newest.extend([None] * (top + 1 - len(newest)))
            for number in asked:
                row = times.get(number, "")
                # The greatest part, not merely the last: the row's order is not relied on.
                parts = (row[i : i + TIME_PART_CHARS] for i in range(0, len(row), TIME_PART_CHARS))
                newest[number] = self._share(max(parts, default=""))

    def written(self, marks: Sequence[tuple[int, str, float]]) -> None:
        """Note timed marks (number, part, time) written in this thread's transaction."""
        pending: list[tuple[int, str, float]] | None = getattr(self._pending, "marks", None)
        if pending is None:
            self._pending.marks = list(marks)
        else:
            pending += marks

    def confirm(self) -> None:
        """Merge what this thread's committed transaction wrote (`written`)."""
        pending: list[tuple[int, str, float]] | None = getattr(self._pending, "marks", None)
        if not pending:
            return
        self._pending.marks = None
        with self._guard:
            self.epoch += 1
            newest = self.newest
            size = len(newest)
            for number, part, _ in pending:
                if number < size and (known := newest[number]) is not None and part > known:
                    newest[number] = self._share(part)


def done_marks(
    conn: sqlite3.Connection,
    numbers: JobNumbers,
    fire_ids: Sequence[str],
    known: NewestMarks | None = None,
) -> set[str]:
    """The fire_ids among these that have a done mark in `conn`'s file (`numbers`: its
    job numbers), read in one query per 500 timed fires and one per 500 others (in the
    caller's snapshot, if any). `known`: the newest marks the file's only writer of
    marks knows; timed fires later than those are not looked up."""
    jobs = fire_jobs(fire_ids)
    get = numbers.known(conn, [job for job in jobs if job is not None]).get
    timed: list[object] = []
    other: list[object] = []
    width, last = TIME_PART_CHARS, TIME_PART_CHARS - 1
    newest = known.newest if known is not None else []
    size = len(newest)
    for job, fire_id in zip(jobs, fire_ids, strict=True):
        if job is None:
            other += (NO_JOB, fire_id)
            continue
        number = get(job)
        if number is None:  # a job without a number has no marks
            continue
        part = fire_id[len(job) + 1 :]  # `time_part`, inline: once per fire
        if len(part) == width and part.find("Z") == last:
            if number < size and (mark := newest[number]) is not None and part > mark:
                continue  # later than every mark of its job
            timed += (number, part)
        else:
            other += (number, fire_id)
    if known is None:
        # Each a key lookup (CROSS JOIN: the values first). A time part found in a row is
        # one of its parts: a part's only `Z` is its last character, so a match starts at
        # one.
        hits = _lookup(
            conn,
            timed,
            2,
            "SELECT v.column1, v.column2 FROM (VALUES {rows}) v CROSS JOIN done_recent d "
            "ON d.job_no = v.column1 AND instr(d.times, v.column2) > 0",
        )
    else:
        # The rows themselves, to learn each job's newest mark (`instr` in Python).
        epoch = known.epoch
        asked_of = cast(list[int], timed[::2])
        asked = list(dict.fromkeys(asked_of))
        rows = {
            int(number): str(times)
            for number, times in _lookup(
                conn,
                asked,
                1,
                "SELECT d.job_no, d.times FROM (VALUES {rows}) v CROSS JOIN done_recent d "
                "ON d.job_no = v.column1",
            )
        }
        known.learn(epoch, rows, asked)
        hits = [
            (number, part)
            for number, part in zip(asked_of, timed[1::2], strict=True)
            if str(part) in rows.get(number, "")
        ]
    found = {
        str(row[0])
        for row in _lookup(
            conn,
            other,
            2,
            "SELECT d.fire_id FROM (VALUES {rows}) v CROSS JOIN fires_done d "
            "ON d.job_no = v.column1 AND d.fire_id = v.column2",
        )
    }
    if hits:  # seldom (a fire delivered again): their fire_ids from the ones asked
        marked = {(int(number), str(part)) for number, part in hits}
        found.update(
            fire_id
            for job, fire_id in zip(jobs, fire_ids, strict=True)
            if job is not None and (get(job), time_part(fire_id, job)) in marked
        )
    return found


def _lookup(conn: sqlite3.Connection, values: Sequence[object], width: int, sql: str) -> list[Any]:
    """The rows of `sql` run over `values`, `width` to a row of its `{rows}`, within the
    connection's limit of bound values (999 before SQLite 3.32)."""
    per = min(500, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width)
    row = "(" + ", ".join("?" * width) + ")"
    out: list[Any] = []
    for start in range(0, len(values), per * width):
        chunk = values[start : start + per * width]
        out += conn.execute(sql.format(rows=",".join([row] * (len(chunk) // width))), chunk)
    return out


class SqliteFireLedger(SqliteStore):
    """`FireLedger` for local mode: completed fire_ids, found by their job's number.

    A job's timed fires (`time_part`) are marked in one row per job (`done_recent`):
    the time parts of its newest `keep_per_job` fires, in order, side by side. Marking
    a fire rewrites that row in place (its size stays the same once full), so a batch
    of fires of jobs numbered together rewrites a few neighbouring pages. A row per
    mark, trimmed to a job's newest marks as new ones came, split and deleted more:
    look-up, write and commit took 3.5 us per fire against 2.3. Other marks (manual fires, fire
    ids of no job) are rows of `fires_done`. No mark outlives `done_ttl_s` (a sweep of
    both tables, for jobs that stopped firing, and manual fires).

    Local mode runs one dispatcher per database, so the in-progress markers (with their
    expiry) and the buffer slots live in memory: a restarted process starts with none,
    which is what a crash must give anyway. Consecutive-failure counts are stored and
    cached (a success resets a count without touching the file unless one is set).
    """

    _schema = """
    CREATE TABLE IF NOT EXISTS fires_done (
        job_no INTEGER NOT NULL, fire_id TEXT NOT NULL, done_at REAL NOT NULL,
        PRIMARY KEY (job_no, fire_id)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS done_recent (
        job_no INTEGER PRIMARY KEY, times TEXT NOT NULL, done_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS job_failures (job_key TEXT PRIMARY KEY, failures INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS jobs_removed (
        job_key TEXT PRIMARY KEY, removed_at REAL NOT NULL
    ) WITHOUT ROWID;
    """

    #: How often (seconds) a write of done marks also sweeps a slice of the tables for
    #: marks older than `done_ttl_s`.
    prune_interval_s = 1.0
    #: Fewest keys one sweep step looks at; a step looks at twice as many as were marked
    #: since the last one, so the sweep outruns the inserts.
    prune_min_slice = 1000
    #: Timed marks kept per job (`DONE_KEEP_PER_JOB`).
    keep_per_job = DONE_KEEP_PER_JOB
    #: How often (seconds) marking a job deleted also drops the marks past `done_ttl_s`.
    removed_prune_interval_s = 3600.0

    def __init__(
        self,
        db_path: str | Path,
        *,
        done_ttl_s: int = DONE_TTL_S,
        numbers: JobNumbers | None = None,
        sole_marker: bool = False,
    ) -> None:
        """`numbers`: the file's job numbers, when another adapter of the file shares
        them (`JobNumbers`). `sole_marker`: this adapter writes every done mark the file
        gets while it is open (a dispatcher's ledger; call `reload` when it starts
        again): it then keeps each job's newest mark in memory (`NewestMarks`) and looks
        up only fires not later than that."""
        self.numbers = numbers if numbers is not None else JobNumbers()
        self.newest = NewestMarks() if sole_marker else None
        super().__init__(db_path)
        self.done_ttl_s = done_ttl_s
        self._last_prune = time.monotonic()
        self._marked_since_prune = 0
        #: Each table's sweep position in key order (None: the start).
        self._sweep_after: dict[str, tuple[object, ...] | None] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._locks_guard = threading.Lock()
        self._failures = {
            str(key): int(str(count))
            for key, count in self._query("SELECT job_key, failures FROM job_failures")
        }
        self._removed: set[str] = set()
        self._removed_pruned = 0.0
        self._prune_removed()

    def _prune_removed(self) -> None:
        """Drop the deleted-job marks older than `done_ttl_s` (no fire of a job outlives
        that in the queue) and read the rest; at start, then at most once an interval."""
        cutoff = time.time() - self.done_ttl_s
        with self._tx() as conn:
            conn.execute("DELETE FROM jobs_removed WHERE removed_at < ?", (cutoff,))
            rows = conn.execute("SELECT job_key FROM jobs_removed").fetchall()
        self._removed = {str(key) for (key,) in rows}
        self._removed_pruned = time.monotonic()

    def _create_schema(self) -> None:
        """Create the tables, or bring done marks of an earlier version here: marks keyed
        by fire_id alone get their job numbers, and timed marks kept a row each move to
        their job's row of `done_recent` (one transaction: a crash redoes all of it)."""
        with self._tx() as conn:
            create_numbers(conn)
            columns = {str(row[1]) for row in conn.execute("PRAGMA table_info(fires_done)")}
            recent = bool(conn.execute("PRAGMA table_info(done_recent)").fetchall())
            unnumbered = bool(columns) and "job_no" not in columns
            if unnumbered:
                conn.execute("ALTER TABLE fires_done RENAME TO fires_done_before")
            for statement in self._schema.split(";"):
                if statement.strip():
                    conn.execute(statement)
            if unnumbered:
                for statement in copy_done_marks("main", "fires_done_before", self.keep_per_job):
                    conn.execute(statement)
                conn.execute("DROP TABLE fires_done_before")
                log.info("done marks of %s: job numbers added", self.db_path.name)
            elif columns and not recent:
                for statement in fold_done_marks("main", self.keep_per_job):
                    conn.execute(statement)
                log.info("done marks of %s: one row per job", self.db_path.name)

    # -- completed fires -------------------------------------------------------------------
    def is_done(self, fire_id: str) -> bool:
        return fire_id in self.done_among([fire_id])

    def done_among(self, fire_ids: Sequence[str]) -> set[str]:
        """The fire_ids among these that already completed (one query per 500)."""
        with self._lock:
            return done_marks(self._conn, self.numbers, fire_ids, self.newest)

    def reload(self) -> None:
        """Read the file's numbers on, and its marks again, from the next look-up: for
        a dispatcher starting again (`arrange` may have copied marks in meanwhile)."""
        self.numbers.reload()
        if self.newest is not None:
            self.newest.clear()

    def confirm_done(self) -> None:
        """After the commit of a transaction that called `write_done` in this thread."""
        if self.newest is not None:
            self.newest.confirm()

    def mark_done(self, fire_id: str) -> None:
        self.mark_done_many([fire_id])

    def mark_done_many(self, fire_ids: Sequence[str]) -> None:
        if fire_ids:
            with self._tx() as conn:
                assigned = self.write_done(conn, fire_ids)
            self.numbers.remember(assigned)
            self.confirm_done()

    def write_done(
        self,
        conn: sqlite3.Connection,
        fire_ids: Sequence[str],
        numbers: dict[str, int] | None = None,
        jobs: Sequence[str | None] | None = None,
    ) -> dict[str, int]:
        """Mark fires done inside the caller's transaction (on any connection to the
        file); returns the job numbers used (`JobNumbers.remember` them once it has
        committed, and call `confirm_done`). `numbers`: the job numbers of the fires'
        jobs, when the caller has assigned them in this transaction
        (`JobNumbers.assign`), and `jobs` the fires' jobs (`fire_jobs`)."""
        now = time.time()
        if jobs is None:
            jobs = fire_jobs(fire_ids)
        if numbers is None:
            numbers = self.numbers.assign(conn, [job for job in jobs if job is not None])
        timed: list[tuple[int, str, float]] = []
        other: list[tuple[int, str, float]] = []
        width, last = TIME_PART_CHARS, TIME_PART_CHARS - 1
        for job, fire_id in zip(jobs, fire_ids, strict=True):
            if job is None:
                other.append((NO_JOB, fire_id, now))
                continue
            part = fire_id[len(job) + 1 :]  # `time_part`, inline: once per fire
            if len(part) == width and part.find("Z") == last:
                timed.append((numbers[job], part, now))
            else:
                other.append((numbers[job], fire_id, now))
        if timed:
            tail = recent_upsert(self.keep_per_job)
            insert_rows(conn, "INSERT INTO done_recent", timed, width=3, tail=tail)
            if self.newest is not None:
                self.newest.written(timed)
        if other:
            insert_rows(conn, "INSERT OR IGNORE INTO fires_done", other, width=3)
        self._marked_since_prune += len(fire_ids)
        if time.monotonic() - self._last_prune >= self.prune_interval_s:
            self.prune_step(conn, now - self.done_ttl_s)
        return numbers

    def prune_step(self, conn: sqlite3.Connection, cutoff: float) -> int:
        """Drop marks older than `cutoff` from the next slice of each table (key order,
        wrapping round at the end); returns how many rows were dropped.

        Finding old marks means reading rows: a delete over a whole table at once held
        the write lock for a time that grows with the table (seconds at tens of
        millions of marks). A slice of at least twice the marks written since the last
        step keeps every step short and still visits each row at least once every
        `done_ttl_s / 2` or so, so marks live at most about one and a half times their
        TTL (a job's row: its last mark's).
        """
        self._last_prune = time.monotonic()
        size = max(self.prune_min_slice, 2 * self._marked_since_prune)
        self._marked_since_prune = 0
        dropped = self._sweep(conn, "done_recent", ("job_no",), size, cutoff)
        return dropped + self._sweep(conn, "fires_done", ("job_no", "fire_id"), size, cutoff)

    def _sweep(
        self,
        conn: sqlite3.Connection,
        table: str,
        key: tuple[str, ...],
        size: int,
        cutoff: float,
    ) -> int:
        """One `prune_step` slice of `table` (its primary key: the columns `key`)."""
        columns = ", ".join(key)
        marks = ", ".join("?" * len(key))
        start = self._sweep_after.get(table) or (NO_JOB - 1, "")[: len(key)]
        row = conn.execute(
            f"SELECT {columns} FROM {table} WHERE ({columns}) > ({marks}) "
            f"ORDER BY {columns} LIMIT 1 OFFSET ?",
            (*start, size - 1),
        ).fetchone()
        before = conn.total_changes
        if row is None:  # the rest of the table: the next step starts again at the front
            conn.execute(
                f"DELETE FROM {table} WHERE ({columns}) > ({marks}) AND done_at < ?",
                (*start, cutoff),
            )
            self._sweep_after[table] = None
        else:
            end = tuple(row)
            conn.execute(
                f"DELETE FROM {table} WHERE ({columns}) > ({marks}) "
                f"AND ({columns}) <= ({marks}) AND done_at < ?",
                (*start, *end, cutoff),
            )
            self._sweep_after[table] = end
        return changed_since(conn, before)

    # -- in-progress markers (process-local) ---------------------------------------------
    def acquire(self, key: str, holder: str, *, ttl_s: int) -> bool:
        now = time.time()
        with self._locks_guard:
            current = self._locks.get(key)
            if current is not None and current[1] > now:
                return False
            self._locks[key] = (holder, now + ttl_s)
            return True

    def release(self, key: str, holder: str) -> None:
        with self._locks_guard:
            current = self._locks.get(key)
            if current is not None and current[0] == holder:
                del self._locks[key]

    def claim_buffer(self, job_key: str, fire_id: str, *, ttl_s: int) -> bool:
        now = time.time()
        key = f"buffer:{job_key}"
        with self._locks_guard:
            current = self._locks.get(key)
            if current is not None and current[0] != fire_id and current[1] > now:
                return False
            self._locks[key] = (fire_id, now + ttl_s)
            return True

    def release_buffer(self, job_key: str, fire_id: str) -> None:
        self.release(f"buffer:{job_key}", fire_id)

    def release_all_locks(self) -> None:
        """Forget every in-progress marker (the runs that held them are gone)."""
        with self._locks_guard:
            self._locks.clear()

    def forget_job(self, owner_id: str, job_id: str) -> None:
        """Drop a deleted job's done marks (those under its number) and failure
        count, and remember that it is gone (`is_removed`, kept `done_ttl_s`)."""
        key = job_key(owner_id, job_id)
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO jobs_removed VALUES (?, ?)", (key, time.time()))
            number = self.numbers.number_of(conn, job_id)
            if number is not None:
                conn.execute("DELETE FROM fires_done WHERE job_no = ?", (number,))
                conn.execute("DELETE FROM done_recent WHERE job_no = ?", (number,))
            conn.execute("DELETE FROM job_failures WHERE job_key = ?", (key,))
        self._removed.add(key)
        self._failures.pop(key, None)
        if time.monotonic() - self._removed_pruned >= self.removed_prune_interval_s:
            self._prune_removed()

    def without_removed(self, prepared: PreparedRuns) -> PreparedRuns:
        """`prepared` without the runs of deleted jobs (called inside the transaction
        that writes them: `forget_job` marks a job in memory before its runs are
        deleted, so a run is either left out here or deleted after its commit)."""
        removed = self._removed
        if not removed:
            return prepared
        rows = [r for r in prepared.rows if job_key(r[0], r[1]) not in removed]
        if len(rows) == len(prepared.rows):
            return prepared
        return replace(prepared, rows=rows)

    def is_removed(self, job_key: str) -> bool:
        """Deleted jobs are held in memory: the dispatcher that handles a job's fires is
        the one that handles its removal notice (the notice takes the job's shard), and
        a restarted process reads them back."""
        return job_key in self._removed

    def lookup(self, fire_id: str, job_key: str, *, failures: bool = False) -> FireLookup:
        """Deleted jobs and failure counts are held in memory: one query, for the
        done mark."""
        return FireLookup(
            self.is_done(fire_id),
            job_key in self._removed,
            self._failures.get(job_key, 0) if failures else 0,
        )

    # -- consecutive failures ---------------------------------------------------------------
    def add_failure(self, job_key: str) -> int:
        with self._tx() as conn:
            conn.execute(
                """INSERT INTO job_failures VALUES (?, 1)
                   ON CONFLICT(job_key) DO UPDATE SET failures = failures + 1""",
                (job_key,),
            )
            row = conn.execute(
                "SELECT failures FROM job_failures WHERE job_key = ?", (job_key,)
            ).fetchone()
            count = int(row[0])
            self._failures[job_key] = count
            return count

    def reset_failures(self, job_key: str) -> None:
        if job_key not in self._failures:
            return  # the common case: nothing counted, nothing to write
        with self._tx() as conn:
            conn.execute("DELETE FROM job_failures WHERE job_key = ?", (job_key,))
            self._failures.pop(job_key, None)


# -- dead letters ---------------------------------------------------------------------------
#: How long a local dead letter is kept: 14 days, as the deployment's SQS dead-letter
#: queues keep their messages. A job that keeps failing leaves a letter per fire.
DEAD_LETTER_RETENTION_S = 14 * 86_400


class SqliteDeadLetterStore(SqliteStore):
    """`DeadLetterStore` over SQLite: one row per fire, oldest first.

    Letters older than `retention_s` (None: kept until redriven or purged) are dropped
    whenever the store is opened or a letter is added: a job failing every minute would
    otherwise add 1,440 letters a day for as long as it runs.
    """

    _schema = """
    CREATE TABLE IF NOT EXISTS dead_letters (
        fire_id TEXT PRIMARY KEY,
        job_type TEXT NOT NULL,
        job_id TEXT NOT NULL,
        owner_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        error TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        dead_at TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS dead_letters_by_time ON dead_letters (dead_at, fire_id);
    """

    def __init__(
        self, db_path: str | Path, *, retention_s: float | None = DEAD_LETTER_RETENTION_S
    ) -> None:
        if retention_s is not None and retention_s <= 0:
            raise ValueError("retention_s must be positive (None keeps every letter)")
        self.retention_s = retention_s
        super().__init__(db_path)
        with self._tx() as conn:
            self._expire(conn)

    def _expire(self, conn: sqlite3.Connection) -> None:
        """Drop the letters past the retention (in the caller's transaction)."""
        if self.retention_s is not None:
            cutoff = datetime.fromtimestamp(time.time() - self.retention_s, UTC)
            conn.execute("DELETE FROM dead_letters WHERE dead_at < ?", (_ts(cutoff),))

    def add(self, letter: DeadLetter) -> None:
        with self._tx() as conn:
            self._expire(conn)
            conn.execute(
                "INSERT OR REPLACE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    letter.fire_id,
                    letter.job_type,
                    letter.job_id,
                    letter.owner_id,
                    letter.payload,
                    letter.error,
                    letter.attempts,
                    _ts(letter.dead_at),
                ),
            )

    def list(self, *, limit: int = 100) -> list[DeadLetter]:
        rows = self._query(
            "SELECT * FROM dead_letters ORDER BY dead_at, fire_id LIMIT ?", (max(1, limit),)
        )
        return [
            DeadLetter(
                fire_id=str(r[0]),
                job_type=str(r[1]),
                job_id=str(r[2]),
                owner_id=str(r[3]),
                payload=str(r[4]),
                error=str(r[5]),
                attempts=int(str(r[6])),
                dead_at=datetime.strptime(str(r[7]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
            )
            for r in rows
        ]

    def forget_job(self, owner_id: str, job_id: str) -> int:
        with self._tx() as conn:
            before = conn.total_changes
            conn.execute(
                "DELETE FROM dead_letters WHERE owner_id = ? AND job_id = ?", (owner_id, job_id)
            )
            return changed_since(conn, before)

    def remove(self, fire_id: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM dead_letters WHERE fire_id = ?", (fire_id,))


# -- the local dispatcher's durable queue ---------------------------------------------------
@dataclass(slots=True)
class QueuedFire:
    """A persisted, not yet completed fire.

    A fire published by this process keeps `fired` and an empty `payload` (memory: the
    row holds the text); one loaded from the table has only its `payload`. Treated as
    immutable (`dataclasses.replace` makes changed copies); not frozen because a frozen
    dataclass's constructor costs several times more, and one is built per fire.
    """

    seq: int
    payload: str
    attempt: int
    not_before: float
    fired: JobFired | None = field(default=None, compare=False, repr=False)
    fire_id: str = ""
    #: Read with the row (`pending_window(with_done=True)`): the fire had completed.
    done: bool = False
    #: Another copy of the same fire_id was already held in memory when this one was
    #: taken in (set by the dispatcher): it is dequeued without running.
    duplicate: bool = False

    def parsed(self) -> JobFired:
        """The fire itself (parsed from the payload when it was loaded from the table)."""
        # pydantic-core reads the JSON and validates in one pass (cheaper than json.loads).
        return self.fired if self.fired is not None else JobFired.model_validate_json(self.payload)


#: `OR IGNORE`: a table created by an earlier version keeps its unique `fire_id` (a copy
#: already queued is then not added again); the current layout has no such index.
_QUEUE_INSERT = "INSERT OR IGNORE INTO dispatch_queue (fire_id, payload, shard)"

_DEPTH_ADD = "UPDATE dispatch_queue_depth SET queued = queued + ? WHERE id = 1"
_DEPTH_READ = "SELECT queued FROM dispatch_queue_depth WHERE id = 1"

#: Every queued fire, in one dispatcher process (`shard=(0, 1)`).
ALL_SHARDS = (0, 1)


def check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """`shard` as (index, count) with 0 <= index < count, or ValueError."""
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard: {shard!r} is not (index, count) with 0 <= index < count")
    return index, count


class SqliteFireQueue(SqliteStore):
    """Accepted fires, written before `publish` returns and deleted once handled.

    Another process (`dlq redrive`) may add rows; the dispatcher picks them up with
    `pending(after_seq=...)`. Within one `add_many` the new rows get consecutive `seq`s.

    `fire_id` is not a unique key: the rows are appended in `seq` order, and a unique
    index on fire ids (which sort by job, not by time) cost every fire an insert and a
    delete on a random page of that index, in two processes (about 0.6 page writes per
    fire in the engine's process at 10,000 fires/s). A fire queued twice (an engine
    re-firing after a crash, a redrive repeated) is run once by the dispatcher: a copy
    whose fire_id is already held in memory is dequeued without running, and a copy
    read after the fire completed is done by the ledger's marks.

    Each row carries its job's `fire_shard`: with several dispatcher processes, process
    i of K reads the rows with `shard % K == i` (`pending_window(shard=(i, K))`), so the
    fires of one job always go to the same process. A table from an earlier version gets
    the column (its rows count as shard 0).

    The number of rows is kept in `dispatch_queue_depth` by every insert and delete
    here (and counted afresh whenever a queue adapter opens the file): `count()`, which
    back-pressure asks at least twice a second, then reads one row instead of every page
    of a deep queue (100,000 queued fires were some 14,000 pages read per count).
    """

    _schema = """
    CREATE TABLE IF NOT EXISTS dispatch_queue (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        fire_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 1,
        not_before REAL NOT NULL DEFAULT 0,
        shard INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE IF NOT EXISTS dispatch_queue_depth (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        queued INTEGER NOT NULL
    );
    """

    def _create_schema(self) -> None:
        super()._create_schema()
        with self._tx() as conn:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(dispatch_queue)")}
            if "shard" not in columns:
                conn.execute(
                    "ALTER TABLE dispatch_queue ADD COLUMN shard INTEGER NOT NULL DEFAULT 0"
                )
            conn.execute(
                "INSERT OR REPLACE INTO dispatch_queue_depth (id, queued) "
                "VALUES (1, (SELECT count(*) FROM dispatch_queue))"
            )

    def add_many(self, fires: Iterable[JobFired]) -> list[QueuedFire]:
        """Persist fires in one transaction (each fire_id once per call)."""
        fresh: dict[str, JobFired] = {}
        for fired in fires:
            fresh.setdefault(fired.fire_id, fired)
        if not fresh:
            return []
        rows = [
            (fire_id, fired.model_dump_json(), fire_shard(fired.job_id))
            for fire_id, fired in fresh.items()
        ]
        with self._tx() as conn:
            before = conn.total_changes
            insert_rows(conn, _QUEUE_INSERT, rows, width=3)
            inserted = changed_since(conn, before)
            last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
            if inserted == 0:
                return []
            conn.execute(_DEPTH_ADD, (inserted,))
            if inserted != len(rows):
                # Some were queued already (a table of an earlier layout, with its unique
                # fire_id): the new rows are the last `inserted`.
                seqs = dict(
                    conn.execute(
                        "SELECT fire_id, seq FROM dispatch_queue WHERE seq > ? AND seq <= ?",
                        (last - inserted, last),
                    ).fetchall()
                )
        if inserted == len(rows):
            # One writer at a time and no deletes in between: the rows got consecutive seqs.
            first = last - len(rows) + 1
            return [
                QueuedFire(first + i, "", 1, 0.0, fired, fire_id)
                for i, (fire_id, fired) in enumerate(fresh.items())
            ]
        return [
            QueuedFire(int(seqs[fire_id]), "", 1, 0.0, fresh[fire_id], fire_id)
            for fire_id, _, _ in rows
            if fire_id in seqs
        ]

    def add_payloads(self, fires: Sequence[RenderedFire]) -> int:
        """Persist fires already rendered to JSON in one transaction; returns how many
        rows were added."""
        if not fires:
            return 0
        rows = [(fire_id, payload, shard) for fire_id, _, payload, shard in fires]
        with self._tx() as conn:
            before = conn.total_changes
            insert_rows(conn, _QUEUE_INSERT, rows, width=3)
            inserted = changed_since(conn, before)
            if inserted:
                conn.execute(_DEPTH_ADD, (inserted,))
            return inserted

    def add_rows(self, rows: Sequence[tuple[object, ...]]) -> int:
        """Queue rows moved from another queue as they were: (fire_id, payload, attempt,
        not_before, shard) each, in one transaction; returns how many were added."""
        if not rows:
            return 0
        with self._tx() as conn:
            before = conn.total_changes
            insert_rows(
                conn,
                "INSERT OR IGNORE INTO dispatch_queue (fire_id, payload, attempt, not_before, shard)",
                rows,
                width=5,
            )
            inserted = changed_since(conn, before)
            if inserted:
                conn.execute(_DEPTH_ADD, (inserted,))
            return inserted

    def publish(self, fired: JobFired) -> None:
        """`Publisher`: queue one fire for whichever dispatcher owns this database."""
        self.add_many([fired])

    def pending(self, *, after_seq: int = 0, limit: int | None = None) -> list[QueuedFire]:
        """Queued fires with `seq > after_seq` in order (at most `limit`)."""
        return self.pending_window(after_seq=after_seq, limit=limit)[0]

    def pending_window(
        self,
        *,
        after_seq: int = 0,
        limit: int | None = None,
        with_done: JobNumbers | None = None,
        shard: tuple[int, int] = ALL_SHARDS,
    ) -> tuple[list[QueuedFire], int]:
        """`pending(...)` plus the highest seq ever assigned, read in one snapshot.

        When fewer than `limit` fires come back, every fire up to that seq (of the
        shard) was seen. `with_done`, the ledger's job numbers: also read whether each
        fire already completed (`QueuedFire.done`, from the done marks of the ledger,
        which must be in this file). `shard=(i, k)` reads only the rows with
        `shard % k == i`.
        """
        index, count = check_shard(shard)
        where = "seq > ?" if count == 1 else "seq > ? AND shard % ? = ?"
        sql = (
            "SELECT seq, payload, attempt, not_before, fire_id "
            f"FROM dispatch_queue WHERE {where} ORDER BY seq LIMIT ?"
        )
        params: tuple[int, ...] = (after_seq,) if count == 1 else (after_seq, count, index)
        done: set[str] = set()
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                rows = self._conn.execute(
                    sql, (*params, -1 if limit is None else max(0, limit))
                ).fetchall()
                high = self._conn.execute(
                    "SELECT seq FROM sqlite_sequence WHERE name = 'dispatch_queue'"
                ).fetchone()
                if with_done is not None and rows:
                    fire_ids = [str(r[4]) for r in rows if r[4]]
                    done = done_marks(self._conn, with_done, fire_ids)
            finally:
                self._conn.execute("COMMIT")
        items = [QueuedFire(r[0], r[1], r[2], float(r[3]), None, r[4], r[4] in done) for r in rows]
        return items, int(high[0]) if high is not None else 0

    def reschedule(self, seq: int, *, attempt: int, not_before: float) -> None:
        self.complete(reschedule=[(seq, attempt, not_before)])

    def delete(self, seqs: Sequence[int]) -> None:
        self.complete(delete=seqs)

    def complete(
        self,
        *,
        delete: Sequence[int] = (),
        reschedule: Sequence[tuple[int, int, float]] = (),
        runs: Sequence[tuple[str, Run]] = (),
        run_repository: SqliteRunRepository | None = None,
        done: Sequence[str] = (),
        ledger: SqliteFireLedger | None = None,
    ) -> None:
        """Record `runs`, mark `done`, dequeue `delete`, move `reschedule`.

        `runs` need `run_repository` and `done` needs `ledger` (adapters over one file,
        which own those tables and their retention rules). When that file is this
        queue's, everything is one transaction. When it is another (a dispatch
        partition's history file), the runs and done marks are committed there first,
        then the queue changes here: a crash in between leaves the fires queued with
        their done marks, so they are dequeued without running again.
        """
        if runs and run_repository is None:
            raise ValueError("runs: a run_repository is required")
        if done and ledger is None:
            raise ValueError("done: a ledger is required")
        history: SqliteStore | None = run_repository if runs else ledger if done else None
        if (
            runs
            and done
            and run_repository is not None
            and ledger is not None
            and ledger.file != run_repository.file
        ):
            raise ValueError("runs and done: the run_repository and ledger must share a file")
        if not (delete or reschedule or runs or done):
            return
        # Everything Python builds is built first: other writers wait while one is open.
        prepared = (
            prepare_runs(runs, run_repository.retention, run_repository.sweep)
            if runs and run_repository is not None
            else None
        )
        moves = [(attempt, not_before, seq) for seq, attempt, not_before in reschedule]
        numbers = (
            run_repository.numbers
            if runs and run_repository is not None
            else ledger.numbers
            if ledger is not None
            else None
        )
        if history is not None and history.file != self.file:
            with history._tx() as conn:
                assigned = _write_history(conn, prepared, done, ledger, numbers)
            if assigned is not None and numbers is not None:
                numbers.remember(assigned)
            if done and ledger is not None:
                ledger.confirm_done()
            prepared, done = None, ()
        with self._tx() as conn:
            assigned = _write_history(conn, prepared, done, ledger, numbers)
            if moves:
                conn.executemany(
                    "UPDATE dispatch_queue SET attempt = ?, not_before = ? WHERE seq = ?", moves
                )
            if delete:
                before = conn.total_changes
                _dequeue(conn, delete)
                dequeued = changed_since(conn, before)
                if dequeued:
                    conn.execute(_DEPTH_ADD, (-dequeued,))
        if assigned is not None and numbers is not None:
            numbers.remember(assigned)
        if done and ledger is not None:
            ledger.confirm_done()

    def count(self, *, due_by: float | None = None) -> int:
        """Queued fires (only those due by `due_by`, epoch seconds, when given)."""
        if due_by is None:
            return int(str(self._query(_DEPTH_READ)[0][0]))
        rows = self._query("SELECT count(*) FROM dispatch_queue WHERE not_before <= ?", (due_by,))
        return int(str(rows[0][0]))


def _write_history(
    conn: sqlite3.Connection,
    prepared: PreparedRuns | None,
    done: Sequence[str],
    ledger: SqliteFireLedger | None,
    numbers: JobNumbers | None,
) -> dict[str, int] | None:
    """Write a batch's runs and done marks inside the caller's transaction (`numbers`:
    the job numbers of their file, None when there is nothing to write); returns the
    numbers used (`JobNumbers.remember` them once the transaction has committed)."""
    if prepared is not None and ledger is not None:
        # A job deleted after its fire's last check and before this commit: its
        # removal ran (or runs after this transaction, and deletes what it finds), so
        # its runs are left out here.
        prepared = ledger.without_removed(prepared)
    done_jobs = fire_jobs(done) if done and ledger is not None else []
    if numbers is None or (prepared is None and not done_jobs):
        return None
    jobs = prepared.job_ids() if prepared is not None else []
    jobs += [job for job in done_jobs if job is not None]
    assigned = numbers.assign(conn, jobs)  # once: before anything writes the numbers
    if prepared is not None:
        write_runs(conn, prepared, assigned)
    if done_jobs and ledger is not None:
        ledger.write_done(conn, done, assigned, done_jobs)
    return assigned


_DEQUEUE_CHUNK = 64
_DEQUEUE_IN = f"DELETE FROM dispatch_queue WHERE seq IN ({', '.join('?' * _DEQUEUE_CHUNK)})"


def _dequeue(conn: sqlite3.Connection, seqs: Sequence[int]) -> None:
    """Delete the rows `seqs`: one statement per range of consecutive seqs (one
    dispatcher's batch is mostly one range), or per 64 seqs when the ranges are short
    (several dispatcher processes take interleaved rows). The last list is padded with
    -1, which no row has, so one statement text serves every list."""
    ranges = _ranges(seqs)
    if len(ranges) * 4 <= len(seqs):
        conn.executemany("DELETE FROM dispatch_queue WHERE seq BETWEEN ? AND ?", ranges)
        return
    for start in range(0, len(seqs), _DEQUEUE_CHUNK):
        chunk = list(seqs[start : start + _DEQUEUE_CHUNK])
        chunk += [-1] * (_DEQUEUE_CHUNK - len(chunk))
        conn.execute(_DEQUEUE_IN, chunk)


def _ranges(seqs: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive runs of seqs as (first, last): a batch is mostly one range."""
    out: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out
