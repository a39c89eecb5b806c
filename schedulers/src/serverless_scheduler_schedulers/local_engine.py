"""Local mode's scheduler: schedules in SQLite, a timer engine thread, a change-feed pump.

* `LocalScheduleBackend` implements the `ScheduleBackend` port on a `schedules` table in
  the local-mode SQLite file (WAL). A deleted schedule leaves a tombstone carrying its
  version, so a stale change delivered after the delete cannot resurrect it.
* `TimerEngine` keeps a heap of next fire times, publishes due fires through the
  `Publisher` port (in batches through `publish_many` when the publisher has it) and
  records last-fired times in batched writes. Missed fires (process stopped or paused)
  follow the job's catch-up window: the newest missed fire runs once if it is inside the
  window, otherwise it is skipped and recorded; never a burst of every missed tick.
* `ChangeFeedPump` drains a `ChangeFeed` (the items outbox) through the sync core.

Every time source is injectable (`clock`), so tests drive the engine in virtual time
through `TimerEngine.run_due(now)`.
"""

from __future__ import annotations

import builtins
import heapq
import itertools
import json
import logging
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import TypeAdapter, ValidationError

from serverless_scheduler_common.coldstart import collector_paused
from serverless_scheduler_common.events import JobChange, JobFired, build_unchecked
from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.policy import JobPolicy
from serverless_scheduler_common.ports import (
    ChangeFeed,
    Clock,
    Publisher,
    RenderedFire,
    ScheduleState,
    fire_shard,
)
from serverless_scheduler_common.registry import JobTypeRegistry
from serverless_scheduler_common.schedule import AtSchedule, CronSchedule, RateSchedule, Schedule
from serverless_scheduler_common.sqlite import connect, insert_rows

from .sync import apply_changes
from .timing import AnySchedule, jitter_offset_s, newest_at_or_before, rate_next_after

log = logging.getLogger(__name__)

#: Jobs per transaction in `upsert_many` (bounds memory and lock hold time).
_CHUNK = 5000

#: A fire the running engine reaches this late is on time whatever the job's catch-up
#: window (timer wake-ups and busy moments make every fire a little late; a window of 0
#: means no catch-up after a stop, not that every fire is skipped).
ON_TIME_S = 5.0

_SCHEDULE_ADAPTER: TypeAdapter[AnySchedule] = TypeAdapter(Schedule)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    owner_id       TEXT    NOT NULL,
    job_id         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    enabled        INTEGER NOT NULL,
    deleted        INTEGER NOT NULL DEFAULT 0,
    job            TEXT    NOT NULL,
    period_s       REAL,
    armed_at       REAL    NOT NULL,
    done           INTEGER NOT NULL DEFAULT 0,
    missed         INTEGER NOT NULL DEFAULT 0,
    last_missed_at REAL,
    PRIMARY KEY (owner_id, job_id)
);
-- Last fire per schedule, apart from the wide rows so batched writes touch few pages.
CREATE TABLE IF NOT EXISTS schedule_fires (
    id           INTEGER PRIMARY KEY,
    last_fire_at REAL    NOT NULL
);
"""

_RECORD_FIRE = "INSERT INTO schedule_fires (id, last_fire_at)"
_RECORD_FIRE_TAIL = (
    " ON CONFLICT (id) DO UPDATE SET last_fire_at = max(last_fire_at, excluded.last_fire_at)"
)

# A newer version re-arms the schedule (no catch-up of time before the edit) and clears
# `done`; the same version (a reconciler repair) keeps both. Tombstones only yield to a
# newer version.
_UPSERT = """
INSERT INTO schedules (owner_id, job_id, version, enabled, deleted, job, period_s, armed_at)
VALUES (?, ?, ?, ?, 0, ?, ?, ?)
ON CONFLICT (owner_id, job_id) DO UPDATE SET
    armed_at = CASE WHEN excluded.version > schedules.version OR schedules.deleted = 1
               THEN excluded.armed_at ELSE schedules.armed_at END,
    done = CASE WHEN excluded.version > schedules.version THEN 0 ELSE schedules.done END,
    version = excluded.version,
    enabled = excluded.enabled,
    deleted = 0,
    job = excluded.job,
    period_s = excluded.period_s
WHERE schedules.deleted = 0 OR excluded.version > schedules.version
RETURNING rowid, armed_at, done
"""


class SystemClock:
    """The real clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(slots=True)
class ScheduleRow:
    """One live schedule as the engine needs it (no pydantic job object kept)."""

    rowid: int
    owner_id: str
    job_id: str
    version: int
    enabled: bool
    snapshot: dict[str, Any]  # job_type and created_at (see `job_json` for the job)
    schedule: AnySchedule
    policy: JobPolicy
    period_s: float | None
    armed_at: float
    last_fire_at: float | None
    done: bool
    #: The job snapshot as compact JSON text (as stored).
    job_json: str = ""


ScheduleEvent = tuple[Literal["upsert", "delete"], tuple[str, str], ScheduleRow | None]


def _row_from_snapshot(
    rowid: int,
    snapshot: dict[str, Any],
    period_s: float | None,
    armed_at: float,
    last_fire_at: float | None,
    done: bool,
    *,
    schedule: AnySchedule | None = None,
    policy: JobPolicy | None = None,
    job_json: str = "",
) -> ScheduleRow:
    # Memory: a row waits in the engine's change queue until armed; it keeps the JSON
    # text (what the engine fires) and only the two snapshot fields the engine reads.
    return ScheduleRow(
        rowid=rowid,
        owner_id=snapshot["owner_id"],
        job_id=snapshot["job_id"],
        version=int(snapshot.get("version", 0)),
        enabled=bool(snapshot.get("enabled", True)),
        snapshot={k: snapshot[k] for k in ("job_type", "created_at") if k in snapshot},
        schedule=schedule or _SCHEDULE_ADAPTER.validate_python(snapshot["schedule"]),
        policy=policy or JobPolicy.model_validate(snapshot.get("policy") or {}),
        period_s=period_s,
        armed_at=armed_at,
        last_fire_at=last_fire_at,
        done=done,
        job_json=job_json or json.dumps(snapshot, separators=(",", ":")),
    )


class LocalScheduleBackend:
    """`ScheduleBackend` on the SQLite `schedules` table; notifies subscribers of changes.

    `db_path` is the local-mode database (`<data_dir>/scheduler.db`). `clock` stamps
    when a schedule version was armed. Thread-safe: one connection behind a lock.
    """

    def __init__(self, db_path: str | Path, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._conn = connect(db_path)
        with self._lock:
            self._conn.executescript(_SCHEMA)
        self._listeners: list[Callable[[ScheduleEvent], None]] = []

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def subscribe(self, listener: Callable[[ScheduleEvent], None]) -> None:
        """Call `listener` after every committed upsert or delete (the engine uses it)."""
        self._listeners.append(listener)

    def _emit(self, events: Sequence[ScheduleEvent]) -> None:
        for listener in self._listeners:
            for event in events:
                listener(event)

    # -- ScheduleBackend -----------------------------------------------------------------
    def upsert(self, job: ScheduledJob) -> None:
        self.upsert_many([job])

    def upsert_many(self, jobs: Iterable[ScheduledJob], *, period_s: float | None = None) -> int:
        """Create or replace many schedules in one transaction; returns how many applied.

        `period_s` overrides the period of rate schedules (sub-minute periods for load
        tests; the public `Schedule` keeps EventBridge's one-minute floor).
        """
        now = self._clock.now().timestamp()
        applied = 0
        chunk: list[ScheduledJob] = []
        for job in jobs:
            chunk.append(job)
            if len(chunk) >= _CHUNK:
                applied += self._upsert_chunk(chunk, period_s, now)
                chunk = []
        if chunk:
            applied += self._upsert_chunk(chunk, period_s, now)
        return applied

    def _upsert_chunk(self, jobs: list[ScheduledJob], period_s: float | None, now: float) -> int:
        """One transaction; subscribers hear of it after the commit."""
        events: list[ScheduleEvent] = []
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                for job in jobs:
                    snap = job.snapshot()
                    period = period_s if isinstance(job.schedule, RateSchedule) else None
                    text = json.dumps(snap, separators=(",", ":"))
                    cur.execute(
                        _UPSERT,
                        (
                            job.owner_id,
                            job.job_id,
                            job.version,
                            int(job.enabled),
                            text,
                            period,
                            now,
                        ),
                    )
                    got = cur.fetchone()
                    if got is None:
                        log.info(
                            "upsert of %s/%s v%d ignored: deleted at a newer version",
                            job.owner_id,
                            job.job_id,
                            job.version,
                        )
                        continue
                    rowid, armed_at, done = got
                    fire = cur.execute(
                        "SELECT last_fire_at FROM schedule_fires WHERE id = ?", (rowid,)
                    ).fetchone()
                    last_fire_at = fire[0] if fire else None
                    row = _row_from_snapshot(
                        rowid,
                        snap,
                        period,
                        armed_at,
                        last_fire_at,
                        bool(done),
                        schedule=job.schedule,
                        policy=job.policy,
                        job_json=text,
                    )
                    events.append(("upsert", (job.owner_id, job.job_id), row))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
        self._emit(events)
        return len(events)

    def delete(self, owner_id: str, job_id: str) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE schedules SET deleted = 1, job = '{}' "
                "WHERE owner_id = ? AND job_id = ? AND deleted = 0",
                (owner_id, job_id),
            )
        self._emit([("delete", (owner_id, job_id), None)])

    def delete_at_version(self, owner_id: str, job_id: str, version: int) -> None:
        """Delete and leave a tombstone at `version` (even if nothing was scheduled yet)."""
        now = self._clock.now().timestamp()
        with self._lock:
            self._conn.execute(
                "INSERT INTO schedules (owner_id, job_id, version, enabled, deleted, job, armed_at) "
                "VALUES (?, ?, ?, 0, 1, '{}', ?) "
                "ON CONFLICT (owner_id, job_id) DO UPDATE SET deleted = 1, job = '{}', "
                "version = max(schedules.version, excluded.version)",
                (owner_id, job_id, version, now),
            )
        self._emit([("delete", (owner_id, job_id), None)])

    def get(self, owner_id: str, job_id: str) -> ScheduleState | None:
        with self._lock:
            got = self._conn.execute(
                "SELECT owner_id, job_id, version, enabled, job FROM schedules "
                "WHERE owner_id = ? AND job_id = ? AND deleted = 0",
                (owner_id, job_id),
            ).fetchone()
        return _state(got) if got else None

    def list(self) -> Iterable[ScheduleState]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT owner_id, job_id, version, enabled, job FROM schedules WHERE deleted = 0"
            ).fetchall()
        return [_state(r) for r in rows]

    def definition_for(self, job: ScheduledJob) -> dict[str, Any]:
        """What `get(...).definition` holds once `job` is upserted (for the reconciler)."""
        return dict(json.loads(json.dumps(job.snapshot())))

    @staticmethod
    def job_type_of(state: ScheduleState) -> str | None:
        """The job type of the schedule's job (its snapshot), None when it names none
        (for the reconciler's removal notices)."""
        job_type = state.definition.get("job_type")
        return job_type if isinstance(job_type, str) and job_type else None

    def is_done(self, owner_id: str, job_id: str) -> bool:
        """True once a one-off `at` schedule has fired (or was skipped as too late)."""
        with self._lock:
            got = self._conn.execute(
                "SELECT done FROM schedules WHERE owner_id = ? AND job_id = ?",
                (owner_id, job_id),
            ).fetchone()
        return bool(got and got[0])

    def fire_record(self, owner_id: str, job_id: str) -> dict[str, Any] | None:
        """Bookkeeping of one schedule: last fire, missed fires, done (None: unknown)."""
        with self._lock:
            got = self._conn.execute(
                "SELECT f.last_fire_at, s.missed, s.last_missed_at, s.done, s.deleted "
                "FROM schedules s LEFT JOIN schedule_fires f ON f.id = s.rowid "
                "WHERE s.owner_id = ? AND s.job_id = ?",
                (owner_id, job_id),
            ).fetchone()
        if got is None:
            return None
        return {
            "last_fire_at": got[0],
            "missed": got[1],
            "last_missed_at": got[2],
            "done": bool(got[3]),
            "deleted": bool(got[4]),
        }

    # -- used by the engine ----------------------------------------------------------------
    def load_live(self) -> builtins.list[ScheduleRow]:
        """Every enabled, not deleted, not done schedule."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.rowid, s.job, s.period_s, s.armed_at, f.last_fire_at, s.done "
                "FROM schedules s LEFT JOIN schedule_fires f ON f.id = s.rowid "
                "WHERE s.deleted = 0 AND s.enabled = 1 AND s.done = 0"
            ).fetchall()
        out: list[ScheduleRow] = []
        for rowid, job, period_s, armed_at, last_fire_at, done in rows:
            try:
                out.append(
                    _row_from_snapshot(
                        rowid,
                        json.loads(job),
                        period_s,
                        armed_at,
                        last_fire_at,
                        bool(done),
                        job_json=job,
                    )
                )
            except (ValueError, KeyError, ValidationError) as exc:
                log.error("schedule row %d is unreadable, not armed: %s", rowid, exc)
        return out

    def record_fires(
        self,
        fired: Sequence[tuple[float, int]],
        missed: Sequence[tuple[float, int]] = (),
        done: Sequence[int] = (),
    ) -> None:
        """Batched bookkeeping: (time, rowid) of last fires and missed fires, done rowids."""
        if not (fired or missed or done):
            return
        # Rows are built before the transaction: other writers wait while it is open.
        marks = [[(r, t) for t, r in fired], [(r, t) for t, r in missed]]
        done_rows = [(r,) for r in done]
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN")
            try:
                for rows in marks:
                    insert_rows(self._conn, _RECORD_FIRE, rows, width=2, tail=_RECORD_FIRE_TAIL)
                cur.executemany(
                    "UPDATE schedules SET missed = missed + 1, last_missed_at = ? WHERE rowid = ?",
                    missed,
                )
                cur.executemany("UPDATE schedules SET done = 1 WHERE rowid = ?", done_rows)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise


def _state(row: tuple[Any, ...]) -> ScheduleState:
    owner_id, job_id, version, enabled, job = row
    return ScheduleState(
        owner_id=owner_id,
        job_id=job_id,
        version=int(version),
        enabled=bool(enabled),
        definition=json.loads(job),
    )


_SHARED: dict[tuple[type, Hashable], Any] = {}
_H = TypeVar("_H", int, float, CronSchedule)


def _shared(value: _H) -> _H:
    """One object per distinct period, window, length or cron schedule (memory: 24-28
    bytes per job for a number, about 630 for a cron schedule, and jobs often share
    their expression; the engine holds one entry per armed job)."""
    key = (type(value), value)
    got = _SHARED.get(key)
    if got is None:
        if len(_SHARED) > 10_000:
            _SHARED.clear()
        got = _SHARED[key] = value
    return got


def _second_texts(second: int) -> tuple[str, str]:
    """A UTC second as a fire_id stamp (`...T12:00:00Z`) and as the head of an ISO time
    with a fraction (`...T12:00:00.`)."""
    text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z", text + "."


def _iso_in_second(nominal: float, second: int, head: str) -> str:
    """`datetime.fromtimestamp(nominal, UTC).isoformat()`, from the cached text of its
    second (`head`, see `_second_texts`): a fire's scheduled time is rendered once per
    fire, and `isoformat` costs about four times as much as this.

    The fraction is computed as `fromtimestamp` computes it (the float's exact
    fractional part times 10**6, rounded half to even); a whole second, a fraction
    that rounds up to the next second and times before 1970 take `isoformat` itself.
    """
    micro = round((nominal - second) * 1e6)
    if 0 < micro < 1_000_000 and second >= 0:
        return f"{head}{micro:06d}+00:00"
    return datetime.fromtimestamp(nominal, UTC).isoformat()


class _Entry:
    """One armed schedule inside the engine."""

    __slots__ = (
        "at",
        "end_ts",
        "head",
        "job_end",
        "key",
        "last",
        "offset",
        "period",
        "rowid",
        "schedule",
        "serial",
        "shard",
        "window",
    )

    def __init__(self, row: ScheduleRow) -> None:
        schedule = row.schedule
        self.key = (sys.intern(row.owner_id), row.job_id)
        self.rowid = row.rowid
        self.shard = fire_shard(row.job_id)  # a small int: shared, no memory per job
        # Rate entries need only their period and end (memory: one entry per job).
        self.schedule: AnySchedule | None = schedule
        self.period = 0.0
        if isinstance(schedule, RateSchedule):
            self.schedule = None
            self.period = _shared(float(row.period_s or schedule.period_s))
        elif isinstance(schedule, CronSchedule):
            self.schedule = _shared(schedule)
        self.serial = 0  # given when armed (`TimerEngine._arm`)
        self.at = isinstance(schedule, AtSchedule)
        period_for_window = int(self.period) if self.period else schedule.period_s
        window = row.policy.effective_catchup_window_s(period_for_window)
        self.window = _shared(max(float(window), ON_TIME_S))
        end_at = None if isinstance(schedule, AtSchedule) else schedule.end_at
        self.end_ts = end_at.timestamp() if end_at else None
        jitter = 0 if isinstance(schedule, AtSchedule) else schedule.jitter_s
        self.offset = jitter_offset_s(row.owner_id, row.job_id, jitter)
        self.last = row.last_fire_at
        # Memory: per job one string, the start of every fire's JSON (the snapshot text
        # included); a fire is that string plus its time (see `render`).
        snap = row.snapshot  # job_type and created_at only; the whole job is `job_json`
        job_json = row.job_json
        dumps = json.dumps
        self.head = (
            f'{{"job":{job_json},"job_type":{dumps(snap["job_type"])},'
            f'"job_id":{dumps(row.job_id)},"owner_id":{dumps(row.owner_id)},'
            f'"manual":false,"fire_id":{dumps(row.job_id)[:-1]}@'
        )
        self.job_end = _shared(7 + len(job_json))

    def snapshot(self) -> dict[str, Any]:
        """The job snapshot this entry fires (parsed from its template)."""
        return dict(json.loads(self.head[7 : self.job_end]))

    def render(self, stamp: str, scheduled: str) -> str:
        """The `JobFired` JSON of one fire: `stamp` = UTC second, `scheduled` = ISO time."""
        return f'{self.head}{stamp}","scheduled_time":"{scheduled}"}}'

    def first_due(self, row: ScheduleRow, *, rearmed: bool = False) -> float | None:
        """First nominal fire time after what already happened (None: nothing left);
        `rearmed`: the row replaces an entry that was armed."""
        if self.at:
            at = self.schedule.at.timestamp()  # type: ignore[union-attr]
            # Done once it fired (or was skipped) at this time or later: a one-off job
            # moved to a new time after it fired fires again, at its new time.
            if self.last is not None and self.last >= at:
                return None
            return at
        armed = row.armed_at
        if rearmed:
            # An armed job's new version fires what falls due from the moment it was
            # stored on: a nominal time before that whose jittered fire comes after it
            # (the job edited during that fire's delay) too.
            armed -= self.offset
        after = max(armed, self.last if self.last is not None else float("-inf"))
        if self.period:
            start_at = row.schedule.start_at  # type: ignore[union-attr]
            created = row.snapshot.get("created_at")
            anchor = (
                start_at.timestamp()
                if start_at
                else datetime.fromisoformat(created).timestamp()
                if isinstance(created, str)
                else 0.0
            )
            first = rate_next_after(after, anchor, self.period)
        else:
            nxt = row.schedule.next_fire_after(datetime.fromtimestamp(after, UTC))
            if nxt is None:
                return None
            first = nxt.timestamp()
        if self.end_ts is not None and first > self.end_ts:
            return None
        return first

    def next_after(self, nominal: float) -> float | None:
        if self.at:
            return None
        if self.period:
            nxt = nominal + self.period
        else:
            try:
                got = self.schedule.next_fire_after(  # type: ignore[union-attr]
                    datetime.fromtimestamp(nominal, UTC)
                )
            except ValueError as exc:  # no later date matches the expression
                log.error("schedule of %s/%s has no fire after this one: %s", *self.key, exc)
                got = None
            if got is None:
                return None
            nxt = got.timestamp()
        if self.end_ts is not None and nxt > self.end_ts:
            return None
        return nxt


def _fast_fired(
    key: tuple[str, str], snapshot: dict[str, Any], scheduled: datetime, fire_id: str
) -> JobFired:
    """A `JobFired` from a validated job snapshot, without per-fire validation."""
    return build_unchecked(
        JobFired,
        {
            "job_type": snapshot["job_type"],
            "job_id": key[1],
            "owner_id": key[0],
            "scheduled_time": scheduled,
            "job": snapshot,
            "fire_id": fire_id,
            "manual": False,
        },
    )


@dataclass
class EngineStats:
    """Counters since the engine was created."""

    fired: int = 0
    missed: int = 0
    coalesced: int = 0
    publish_errors: int = 0


class TimerEngine:
    """Fires due schedules of a `LocalScheduleBackend` through a `Publisher`.

    `start()` loads the live schedules and runs the loop in a daemon thread; `stop()`
    ends it and flushes bookkeeping. Tests call `load()` and `run_due(now)` directly in
    virtual time. `on_missed(owner_id, job_id, scheduled_time)` is called for every fire
    skipped because it was older than the job's catch-up window.

    While running threaded, the publishing thread hands fires over once `publish_batch`
    are waiting or the oldest has waited `publish_gather_s` (20 ms): a queue transaction
    costs about as much as writing a few dozen fires, so at 10,000 fires per second one
    commit per 2 ms timer wake-up (about 20 fires) cost twice the CPU per fire of one
    per 200.
    """

    def __init__(
        self,
        backend: LocalScheduleBackend,
        publisher: Publisher,
        *,
        clock: Clock | None = None,
        flush_interval_s: float = 0.25,
        publish_batch: int = 1000,
        publish_gather_s: float = 0.02,
        max_sleep_s: float = 1.0,
        min_sleep_s: float = 0.002,
        max_pending_batches: int = 64,
        max_pending_fires: int = 20_000,
        on_missed: Callable[[str, str, datetime], None] | None = None,
    ) -> None:
        self._backend = backend
        self._publisher = publisher
        self._publish_many: Callable[[Sequence[JobFired]], None] | None = getattr(
            publisher, "publish_many", None
        )
        # Fast path: the publisher takes fires rendered to JSON (see `PayloadPublisher`).
        self._publish_payloads: Callable[[Sequence[RenderedFire]], None] | None = getattr(
            publisher, "publish_payloads", None
        )
        self._clock = clock
        self._flush_interval = flush_interval_s
        self._publish_batch = publish_batch
        self._max_sleep = max_sleep_s
        self._min_sleep = min_sleep_s
        self._on_missed = on_missed
        # (fire time, schedule rowid, nominal time, entry serial); without jitter the fire
        # time is the nominal time's own float object (memory: the heap holds every job).
        # The heap holds numbers only, not the entry: the collector then stops tracking
        # a tuple at its first young pass. A tuple holding the entry stayed tracked, and
        # with every job's tuple replaced once a period they filled the older
        # generations: at 50,000 fires/s a middle-generation pass of 20-60 ms every
        # 3 s and a full one of 74-90 ms about every 35 s, each a stall of every fire.
        self._heap: list[tuple[float, int, float, int]] = []
        self._entries: dict[tuple[str, str], _Entry] = {}
        #: Armed entries by serial (a heap tuple whose serial is gone is stale).
        self._armed: dict[int, _Entry] = {}
        self._serials = itertools.count(1)
        self._changes: deque[ScheduleEvent] = deque()
        self._dirty: dict[int, float] = {}
        self._missed: list[tuple[float, int]] = []
        self._done: list[int] = []
        self._stamps: dict[int, tuple[str, str]] = {}
        self._last_flush = time.monotonic()
        self._loaded = False
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Publishing runs in its own thread while the engine runs threaded, so a slow
        # publisher (SQLite queue writes release the GIL) does not delay the timer; fires
        # are marked as fired only once the publisher has taken them (at least once).
        self._handoff: deque[tuple[list[Any], list[tuple[int, float]]]] = deque()
        self._gather = publish_gather_s
        self._handoff_since = 0.0  # monotonic time the oldest waiting batch was handed over
        self._pub_cond = threading.Condition()
        self._pub_thread: threading.Thread | None = None
        self._pub_stopping = False
        self._max_pending = max_pending_batches
        self._max_pending_fires = max_pending_fires
        self._pending_fires = 0
        self._dirty_lock = threading.Lock()
        self.stats = EngineStats()
        backend.subscribe(self._on_change)

    # -- lifecycle ---------------------------------------------------------------------------
    def now(self) -> float:
        return self._clock.now().timestamp() if self._clock else time.time()

    #: From this many live schedules on, `load` says how far it got every `progress_s`
    #: (100,000 schedules take a few seconds to read and arm, 500,000 about 8 s, and
    #: local mode answers no request before they are armed).
    progress_from = 10_000
    progress_s = 5.0

    def load(self) -> int:
        """Arm every live schedule from the backend; returns how many are armed."""
        started = time.monotonic()
        # What this reads and arms lives on, so the collector's passes over it free
        # nothing: with them, reading and arming 500,000 schedules took 10.6-16.1 s,
        # without them about 8 (the caller freezes it all once set up,
        # `tune_for_throughput`).
        with collector_paused(freeze=False):
            rows = self._backend.load_live()
            total = len(rows)
            report = total >= self.progress_from
            if report:
                log.info("arming %d schedules (read in %.1fs)", total, time.monotonic() - started)
            next_report = time.monotonic() + self.progress_s
            for done, row in enumerate(rows, 1):
                self._arm(row)
                if report and not done & 1023 and time.monotonic() >= next_report:
                    log.info("armed %d of %d schedules", done, total)
                    next_report = time.monotonic() + self.progress_s
        self._loaded = True
        if report:
            log.info("armed %d schedules in %.1fs", len(self._entries), time.monotonic() - started)
        return len(self._entries)

    def start(self) -> None:
        """Arm the live schedules, then run the timer and the publishing threads."""
        if self._thread is not None:
            return
        if not self._loaded:
            self.load()
        self._stopping.clear()
        self._pub_stopping = False
        self._pub_thread = threading.Thread(
            target=self._publish_loop, name="timer-engine-publish", daemon=True
        )
        self._pub_thread.start()
        self._thread = threading.Thread(target=self._loop, name="timer-engine", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop firing, hand over every fire already taken, record them, then return."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._pub_thread is not None:
            with self._pub_cond:
                self._pub_stopping = True
                self._pub_cond.notify_all()
            self._pub_thread.join(timeout)
            self._pub_thread = None
        self.flush()

    def wake(self) -> None:
        self._wake.set()

    @property
    def armed(self) -> int:
        return len(self._entries)

    def next_fire_at(self, owner_id: str, job_id: str) -> datetime | None:
        """When the job fires next (nominal time), None when not armed."""
        entry = self._entries.get((owner_id, job_id))
        if entry is None:
            return None
        serial = entry.serial
        best = min((n for _, _, n, s in self._heap if s == serial), default=None)
        return datetime.fromtimestamp(best, UTC) if best is not None else None

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                nxt = self.run_due()
            except Exception:
                log.exception("timer engine iteration failed")
                nxt = None
            now = self.now()
            if nxt is None:
                wait = self._max_sleep
            elif nxt <= now:
                continue  # still behind: no sleep
            else:
                # Sleep at least `min_sleep_s`: each wake-up then fires a batch instead of
                # paying a wake-up per fire (a few ms of lateness for much less CPU).
                wait = min(max(nxt - now, self._min_sleep), self._max_sleep)
            if not self._changes:
                self._wake.wait(wait)
            self._wake.clear()

    # -- changes -----------------------------------------------------------------------------
    def _on_change(self, event: ScheduleEvent) -> None:
        self._changes.append(event)
        self._wake.set()

    def _apply_changes(self) -> None:
        changes = self._changes
        while changes:
            kind, key, row = changes.popleft()
            old = self._entries.pop(key, None)
            if old is not None:
                self._armed.pop(old.serial, None)
            if kind == "upsert" and row is not None:
                if old is not None and old.last is not None:
                    row.last_fire_at = max(row.last_fire_at or old.last, old.last)
                if row.enabled and not row.done:
                    self._arm(row, rearmed=old is not None)

    def _arm(self, row: ScheduleRow, *, rearmed: bool = False) -> None:
        try:
            entry = _Entry(row)
            first = entry.first_due(row, rearmed=rearmed)
        except ValueError as exc:  # e.g. a cron expression no date matches (31 February)
            log.error(
                "schedule of %s/%s is not armed: no fire time can be computed (%s)",
                row.owner_id,
                row.job_id,
                exc,
            )
            return
        if first is None:
            if entry.at and not row.done:
                with self._dirty_lock:
                    self._done.append(row.rowid)
            return
        self._entries[entry.key] = entry
        entry.serial = serial = next(self._serials)
        self._armed[serial] = entry
        offset = entry.offset
        heapq.heappush(
            self._heap, (first + offset if offset else first, entry.rowid, first, serial)
        )

    # -- the hot loop ------------------------------------------------------------------------
    def run_due(self, now: float | datetime | None = None) -> float | None:
        """Fire everything due at `now`; returns the next fire time (epoch s) or None."""
        if isinstance(now, datetime):
            now = now.timestamp()
        if now is None:
            now = self.now()
        if not self._loaded:
            self.load()
        if self._changes:
            self._apply_changes()
        heap = self._heap
        armed = self._armed
        stamps = self._stamps
        rendered = self._publish_payloads is not None
        batch: list[Any] = []
        marks: list[tuple[int, float]] = []
        heappop, heapreplace = heapq.heappop, heapq.heapreplace
        fromts = datetime.fromtimestamp
        utc = UTC
        fired = 0
        while heap and heap[0][0] <= now:
            _, _, nominal, serial = heap[0]
            entry = armed.get(serial)
            if entry is None:
                heappop(heap)
                continue
            nxt = entry.next_after(nominal)
            if nxt is not None and nxt + entry.offset <= now:
                # Behind (stopped or paused): coalesce into the newest missed fire.
                newest = newest_at_or_before(
                    entry.schedule,
                    nominal,
                    now - entry.offset,
                    period=entry.period,
                    end=entry.end_ts,
                )
                if entry.period:
                    self.stats.coalesced += round((newest - nominal) / entry.period)
                else:
                    self.stats.coalesced += 1
                nominal = newest
                nxt = entry.next_after(nominal)
            if now - (nominal + entry.offset) > entry.window:
                self._record_missed(entry, nominal)
            else:
                second = int(nominal)
                texts = stamps.get(second)
                if texts is None:
                    if len(stamps) > 4096:
                        stamps.clear()
                    texts = stamps[second] = _second_texts(second)
                stamp = texts[0]
                if rendered:
                    batch.append(
                        (
                            f"{entry.key[1]}@{stamp}",
                            nominal,
                            entry.render(stamp, _iso_in_second(nominal, second, texts[1])),
                            entry.shard,
                        )
                    )
                else:
                    batch.append(
                        _fast_fired(
                            entry.key,
                            entry.snapshot(),
                            fromts(nominal, utc),
                            f"{entry.key[1]}@{stamp}",
                        )
                    )
                marks.append((entry.rowid, nominal))
                entry.last = nominal
                fired += 1
            if nxt is None:
                heappop(heap)
                self._entries.pop(entry.key, None)
                del armed[serial]
                if entry.at:
                    with self._dirty_lock:
                        self._done.append(entry.rowid)
            else:
                offset = entry.offset
                heapreplace(heap, (nxt + offset if offset else nxt, entry.rowid, nxt, serial))
            # Only here, with the heap consistent, may `_publish` arm new jobs.
            if len(batch) >= self._publish_batch:
                self._publish(batch, marks)
                batch, marks = [], []
        if batch:
            self._publish(batch, marks)
        self.stats.fired += fired
        # With a publishing thread, that thread writes the bookkeeping (the timer would
        # otherwise stall for the whole transaction once per flush interval).
        if self._pub_thread is None and time.monotonic() - self._last_flush >= self._flush_interval:
            self.flush()
        while heap and heap[0][3] not in armed:
            heappop(heap)
        return heap[0][0] if heap else None

    def _record_missed(self, entry: _Entry, nominal: float) -> None:
        self.stats.missed += 1
        entry.last = nominal
        with self._dirty_lock:
            self._missed.append((nominal, entry.rowid))
        log.info(
            "skipped missed fire of %s/%s at %s: older than the catch-up window (%ds)",
            entry.key[0],
            entry.key[1],
            datetime.fromtimestamp(nominal, UTC).isoformat(),
            entry.window,
        )
        if self._on_missed is not None:
            self._on_missed(entry.key[0], entry.key[1], datetime.fromtimestamp(nominal, UTC))

    def _publish(self, batch: list[Any], marks: list[tuple[int, float]]) -> None:
        pub_thread = self._pub_thread
        if pub_thread is None or threading.current_thread() is not self._thread:
            self._publish_now(batch, marks)
            return
        while True:
            with self._pub_cond:
                # Back-pressure: never let more than `max_pending_batches` (or, in all,
                # `max_pending_fires`) pile up: the timer waits and its lateness shows it.
                if (
                    not (
                        len(self._handoff) >= self._max_pending
                        or self._pending_fires >= self._max_pending_fires
                    )
                    or not pub_thread.is_alive()
                ):
                    if not self._handoff:
                        self._handoff_since = time.monotonic()
                    self._handoff.append((batch, marks))
                    self._pending_fires += len(batch)
                    if self._pending_fires >= self._publish_batch or len(self._handoff) == 1:
                        self._pub_cond.notify_all()
                    return
                self._pub_cond.wait(0.01)
            if self._changes:
                # While waiting, arm the jobs stored meanwhile (they would pile up in
                # memory, e.g. during a bulk import, until the publisher catches up).
                self._apply_changes()

    def _publish_now(self, batch: list[Any], marks: list[tuple[int, float]]) -> None:
        try:
            if self._publish_payloads is not None:
                self._publish_payloads(batch)
            elif self._publish_many is not None:
                self._publish_many(batch)
            else:
                for fired in batch:
                    self._publisher.publish(fired)
        except Exception:
            self.stats.publish_errors += len(batch)
            log.exception("publishing %d fires failed", len(batch))
            return
        with self._dirty_lock:
            dirty = self._dirty
            for rowid, nominal in marks:
                dirty[rowid] = nominal

    def _publish_loop(self) -> None:
        while True:
            batch: list[Any] = []
            marks: list[tuple[int, float]] = []
            with self._pub_cond:
                if not self._handoff and not self._pub_stopping:
                    self._pub_cond.wait(min(0.5, self._flush_interval))
                if not self._handoff and self._pub_stopping:
                    return
                # Gather: wait until enough fires are waiting or the oldest waited long
                # enough (a stop or a full back-pressure window ends the wait at once).
                while (
                    self._handoff
                    and not self._pub_stopping
                    and self._pending_fires < self._publish_batch
                    and len(self._handoff) < self._max_pending
                ):
                    remaining = self._handoff_since + self._gather - time.monotonic()
                    if remaining <= 0:
                        break
                    self._pub_cond.wait(remaining)
                # Whatever piled up while the last publish ran goes out as one batch
                # (one queue transaction instead of one per timer wake-up).
                while self._handoff and len(batch) < self._publish_batch:
                    more, more_marks = self._handoff.popleft()
                    batch = batch + more if batch else more
                    marks = marks + more_marks if marks else more_marks
                self._handoff_since = time.monotonic()  # what is left starts waiting now
                self._pending_fires -= len(batch)
                self._pub_cond.notify_all()
            if batch:
                self._publish_now(batch, marks)
            if time.monotonic() - self._last_flush >= self._flush_interval:
                self.flush()

    def flush(self) -> None:
        """Write pending last-fired, missed and done marks to SQLite in one transaction."""
        self._last_flush = time.monotonic()
        if not (self._dirty or self._missed or self._done):
            return
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, {}
            missed, done = self._missed, self._done
            self._missed, self._done = [], []
        fired = [(t, r) for r, t in dirty.items()]
        try:
            self._backend.record_fires(fired, missed, done)
        except sqlite3.Error:
            log.exception("recording %d fires failed; will retry", len(fired))
            with self._dirty_lock:
                for t, r in fired:
                    self._dirty.setdefault(r, t)
                self._missed.extend(missed)
                self._done.extend(done)


class ChangeFeedPump:
    """Drains a `ChangeFeed` into a schedule backend through the sync core.

    Changes are acknowledged only once applied, so a crash between the store write and
    the sync is repaired on the next start. A change that can never apply (malformed
    snapshot) is logged and acknowledged so it cannot block the feed; the reconciler
    repairs whatever it would have done.

    `on_removed(change)` runs for each applied removal (its `JobChange`, with the last
    image in `old`) before the change is acknowledged (local mode forgets the deleted
    job's runs and plugin state there; a crash in between runs it again). Its errors are
    logged and do not hold the feed up.
    """

    def __init__(
        self,
        feed: ChangeFeed,
        backend: Any,
        *,
        registry: JobTypeRegistry | None = None,
        batch_size: int = 100,
        interval_s: float = 0.2,
        on_removed: Callable[[JobChange], None] | None = None,
    ) -> None:
        self._feed = feed
        self._backend = backend
        self._registry = registry
        self._batch_size = batch_size
        self._interval = interval_s
        self._on_removed = on_removed
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def drain_once(self) -> int:
        """Apply one batch; returns how many changes were acknowledged."""
        polled = list(self._feed.poll(self._batch_size))
        if not polled:
            return 0
        positions = [p for p, _ in polled]
        result = apply_changes([c for _, c in polled], self._backend, self._registry)
        upto = len(polled)
        failure = result.failure
        if failure is not None:
            permanent = isinstance(failure.cause, (ValidationError, ValueError, KeyError))
            upto = failure.index + 1 if permanent else failure.index
            if permanent:
                log.error(
                    "change at position %d dropped: %s", positions[failure.index], failure.cause
                )
        if self._on_removed is not None:
            applied = len(polled) if failure is None else failure.index
            self._forget([c for _, c in polled[:applied]])
        if upto:
            self._feed.ack(positions[:upto])
        return upto

    def _forget(self, changes: Sequence[JobChange]) -> None:
        """Run `on_removed` for the removals among `changes`."""
        assert self._on_removed is not None
        for change in changes:
            if change.kind != "remove":
                continue
            try:
                self._on_removed(change)
            except Exception:
                log.exception("could not forget deleted job %s/%s", change.owner_id, change.job_id)

    def drain(self) -> int:
        """Apply batches until the feed is empty or a change keeps failing."""
        total = 0
        while True:
            got = self.drain_once()
            total += got
            if got == 0:
                return total

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="change-feed-pump", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Drain now (call after a job write to skip the polling delay)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                got = self.drain()
            except Exception:
                log.exception("change-feed pump iteration failed")
                got = 0
            if got == 0:
                self._wake.wait(self._interval)
                self._wake.clear()
