"""Local mode's distribution layer: a durable queue, a bounded memory queue, a worker pool.

`publish_many` persists a batch of fires in one SQLite transaction and only then returns
(a `kill -9` afterwards loses none of them). The fires it accepted wait in a bounded
in-memory queue; when that is full, `publish_many` first waits for room (back-pressure:
the timer engine slows down and its lateness shows it) and, past `publish_wait_s`,
accepts the fires into the table only; they are loaded from there as room frees up.

Workers take fires in batches and run each through `ConsumerRuntime` with a
`FireBatch`; a batch's runs, done marks and dequeues are then written in one
transaction. Because plugin code shares one interpreter lock, more threads only help
while consumers wait (network, sleep): normally one worker takes everything, and another
joins only when the oldest ready fire has waited `spread_after_s`, or takes over the not
yet started fires of a worker whose current consumer call has run that long (so one
slow consumer never holds up the fires behind it). Failures are retried with
exponential backoff and a cap, then moved to the dead-letter store. A fire leaves the
queue table only once handled, so after a crash `start()` runs every unfinished fire
again; completed fire_ids are deduplicated by the runtime's ledger, and a fire_id queued
twice while one copy is held in memory is dequeued without running the second copy.
"""

from __future__ import annotations

import heapq
import logging
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from ..events import JobFired, JobRemoved
from ..ports import Publisher, RenderedFire, fire_shard
from .core import ConsumerRuntime, FireBatch, HandleResult
from .ports import DeadLetter, DeadLetterStore
from .sqlite import (
    ALL_SHARDS,
    QueuedFire,
    SqliteFireLedger,
    SqliteFireQueue,
    SqliteRunRepository,
    check_shard,
)

log = logging.getLogger(__name__)

#: The fire_id column of a removal notice in the queue (`removal_row`). A job_id has no
#: ':', so no fire's id starts like this.
REMOVED_PREFIX = "removed:"


def removal_row(removed: JobRemoved) -> RenderedFire:
    """A deleted job's removal notice as a queue row (`publish_payloads`).

    It takes the job's shard, so the dispatcher that runs the job's fires forgets the
    job (`ConsumerRuntime.forget`): fires queued before it run first, and any of them
    still arriving afterwards (a retry, a redriven dead letter) is dropped.
    """
    fire_id = f"{REMOVED_PREFIX}{removed.owner_id}/{removed.job_id}@{removed.version}"
    return (fire_id, time.time(), removed.model_dump_json(), fire_shard(removed.job_id))


class _Slot:
    """One worker's claimed fires (another worker may take over those not started)."""

    __slots__ = ("cond", "pending", "started", "taken")

    def __init__(self, lock: threading.Lock | None = None) -> None:
        # The worker waits on its own condition (over the dispatcher's state lock), so
        # the dispatcher can wake the worker that was busy last (see `_wake_one`).
        self.cond = threading.Condition(lock or threading.Lock())
        self.pending: deque[QueuedFire] = deque()
        self.taken: list[QueuedFire] = []
        self.started = 0.0  # monotonic start of the current consumer call; 0 when idle


class _Outcomes:
    """What a batch's fires came to, until it is committed (`LocalDispatcher._finish`)."""

    __slots__ = ("batch", "dead", "finished", "moved", "released", "retry_later")

    def __init__(self, batch: FireBatch) -> None:
        self.batch = batch
        self.finished: list[int] = []  # seqs to dequeue
        self.moved: list[tuple[int, int, float]] = []  # (seq, attempt, not_before)
        self.dead: list[tuple[QueuedFire, JobFired, HandleResult]] = []
        self.retry_later: list[QueuedFire] = []  # held in memory until not_before
        self.released: list[str] = []  # fire_ids that leave memory with the commit


def backoff_delay(attempt: int, *, base_s: float, max_s: float, jitter: float = 0.1) -> float:
    """Delay before attempt `attempt + 1`: base * 2^(attempt-1), capped, with a little jitter."""
    delay = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    return delay * (1 - jitter * random.random())


class LocalDispatcher:
    """`Publisher` for local mode: routes each fire to its plugin on a worker pool.

    Args:
        runtime: the `ConsumerRuntime` (plugin manager, registry, runs, ledger, job control).
        queue: durable queue of accepted fires (`SqliteFireQueue(db_path)`).
        dead_letters: where fires go past `runtime.settings.max_attempts`.
        workers: worker threads (default `settings.dispatcher_workers`).
        defer_s: how soon a fire buffered behind a running one (`buffer_one`) looks again.
        poll_s: how often to look for fires other processes queued (`dlq redrive`).
        max_backlog: fires held in memory at most (queued, waiting for a retry or running).
        publish_wait_s: how long `publish_many` waits for room before it accepts fires
            into the table only.
        batch_size: most fires one worker takes at once. Their runs, done marks and
            dequeues are committed together when the batch ends, or earlier, for the
            fires finished so far, once the batch has run `commit_after_s`.
        commit_after_s: longest time a batch keeps its finished fires uncommitted (slow
            consumers: their runs show up, and a crash repeats, at most this much work).
        switch_interval_s: while running, lower the interpreter's thread switch interval
            to this (`sys.setswitchinterval`; default 5 ms): a worker returning from a
            SQLite call then waits less for the interpreter lock, which otherwise
            dominates the latency of every fire. None leaves it alone.
        spread_after_s: how long a consumer call (or, with slow consumers, the oldest
            ready fire) may wait before another worker joins in.
        slow_call_s: mean consumer call time from which waiting fires bring in more
            workers.
        shard: `(i, k)`: this is dispatcher i of k over the same queue table and takes
            only the fires with `fire_shard(job_id) % k == i` (every fire of a job goes
            to one dispatcher); `(0, 1)`, the default, takes every fire.
    """

    def __init__(
        self,
        runtime: ConsumerRuntime,
        queue: SqliteFireQueue,
        dead_letters: DeadLetterStore,
        *,
        workers: int | None = None,
        defer_s: float = 0.2,
        poll_s: float = 1.0,
        max_backlog: int = 10_000,
        publish_wait_s: float = 5.0,
        batch_size: int = 1024,
        commit_after_s: float = 0.5,
        spread_after_s: float = 0.02,
        slow_call_s: float = 0.001,
        switch_interval_s: float | None = 0.001,
        shard: tuple[int, int] = ALL_SHARDS,
    ) -> None:
        if max_backlog < 1 or batch_size < 1:
            raise ValueError("max_backlog and batch_size must be at least 1")
        self.shard = check_shard(shard)
        self.runtime = runtime
        self.queue = queue
        self.dead_letters = dead_letters
        self.workers = workers or runtime.settings.dispatcher_workers
        self.defer_s = defer_s
        self.poll_s = poll_s
        self.max_backlog = max_backlog
        self.publish_wait_s = publish_wait_s
        self.batch_size = batch_size
        self.commit_after_s = commit_after_s
        self.spread_after_s = spread_after_s
        self.slow_call_s = slow_call_s
        self.switch_interval_s = switch_interval_s
        self._saved_switch_interval: float | None = None
        self._call_s = 0.0
        # One state lock: `_cond` is held to read or change the state; each idle worker
        # waits on its own slot's condition, publishers waiting for room and
        # `wait_idle` on `_room`, so finishing a batch wakes them without waking every
        # idle worker (each wake-up costs a thread switch and the interpreter lock).
        self._state_lock = threading.Lock()
        self._cond = threading.Condition(self._state_lock)
        self._room = threading.Condition(self._state_lock)
        self._idle: list[_Slot] = []  # waiting workers, the one that waited last on top
        # (monotonic time it became ready, fire)
        self._ready: deque[tuple[float, QueuedFire]] = deque()
        self._slots: list[_Slot] = []
        self._watcher: _Slot | None = None
        self._delayed: list[tuple[float, int, QueuedFire]] = []
        self._in_flight = 0
        self._active = 0
        # Every queued row with seq <= _loaded_upto has been taken into memory; rows above
        # it are taken directly by `publish_many` (when they follow on) or by the loader.
        self._loaded_upto = 0
        self._spilled = False
        self._admit_lock = threading.Lock()  # orders inserts with what the loader reads
        # fire_ids of the fires held in memory (changed only under `_admit_lock`): a second
        # copy taken in meanwhile is a duplicate. One leaves once its batch is committed,
        # so a copy read from the table after that sees the fire's done mark.
        self._held_ids: set[str] = set()
        self._load_wake = threading.Event()
        self._queued_elsewhere = False  # another process queued fires: a worker loads them
        self._running = False
        self._threads: list[threading.Thread] = []
        self._worker_idents: set[int] = set()
        self._warned_full = 0.0
        runs, ledger = runtime.runs, runtime.ledger
        # A batch's runs, done marks and dequeue are written together when the run
        # history and the ledger share a file: in one transaction when that is the
        # queue's file too, else in that file's and then the queue's (`complete`).
        history = (
            isinstance(runs, SqliteRunRepository)
            and isinstance(ledger, SqliteFireLedger)
            and runs.file == ledger.file
        )
        self._runs_here = runs if history and isinstance(runs, SqliteRunRepository) else None
        self._ledger_here = ledger if history and isinstance(ledger, SqliteFireLedger) else None
        # Queued rows can be read with their done marks (`pending_window(with_done)`):
        # the ledger's job numbers when its file is the queue's.
        self._done_with_rows = (
            self._ledger_here.numbers
            if self._ledger_here is not None and queue.file == self._ledger_here.file
            else None
        )

    # -- Publisher -----------------------------------------------------------------------
    def publish(self, fired: JobFired) -> None:
        """Persist one fire, then hand it to the pool (returns once it is durable)."""
        self.publish_many([fired])

    def publish_many(self, fires: Iterable[JobFired]) -> None:
        """Persist a batch of fires in one transaction, then hand them to the pool.

        Waits (up to `publish_wait_s`) while the memory queue is full, so a producer
        faster than the consumers is slowed down instead of filling memory.
        """
        batch = list(fires)
        if not batch:
            return
        self._wait_for_room()
        with self._admit_lock:
            added = self.queue.add_many(batch)
            if not added:
                return
            with self._cond:
                follows_on = (
                    not self._spilled
                    and self.shard[1] == 1  # else some are another dispatcher's
                    and added[0].seq == self._loaded_upto + 1
                    and added[-1].seq - added[0].seq + 1 == len(added)
                )
                if follows_on and self._held() < self.max_backlog:
                    for item in added:
                        self._admit(item)
                    self._loaded_upto = added[-1].seq
                    self._wake_one()
                    return
                self._spilled = True  # a worker reads them from the table, as room frees
        self.notify_queued()

    def publish_payloads(self, fires: Sequence[RenderedFire]) -> None:
        """`PayloadPublisher`: persist fires the timer engine rendered to JSON and take
        them into memory from the table; a worker parses each once (no `JobFired` is
        built, serialised and parsed again on the way).

        Waits for room like `publish_many`; what does not fit waits in the table (the
        loader takes it as room frees up, and `wait_idle` counts it as busy).
        """
        if not fires:
            return
        self._wait_for_room()
        with self._admit_lock:
            added = self.queue.add_payloads(fires)
        if added:
            self._load_new()

    # -- life cycle ----------------------------------------------------------------------
    def notify_queued(self) -> None:
        """Another process queued fires: the next idle worker reads them from the table.

        The worker that runs them also reads them (a loader thread reading rows while a
        worker runs would hand the interpreter lock back and forth for every row), and
        so do the workers of a dispatcher behind its queue (`_spilled`): each reads the
        next slice that fits once it has finished a batch and nothing is ready.
        """
        with self._cond:
            self._queued_elsewhere = True
            self._wake_one()

    def start(self) -> None:
        """Load unfinished fires from the queue table and start the workers."""
        if self._running:
            return
        release = getattr(self.runtime.ledger, "release_all_locks", None)
        if callable(release):
            release()  # the runs that held them belong to a process that is gone
        if isinstance(self.runtime.ledger, SqliteFireLedger):
            # Marks may have been copied into its file while stopped (`arrange`).
            self.runtime.ledger.reload()
        self._load_new()
        if self.switch_interval_s is not None:
            self._saved_switch_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(self._saved_switch_interval, self.switch_interval_s))
        self._running = True
        self._slots = [_Slot(self._state_lock) for _ in range(self.workers)]
        for i, slot in enumerate(self._slots):
            thread = threading.Thread(
                target=self._work, args=(slot,), name=f"dispatcher-{i}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        loader = threading.Thread(target=self._poll, name="dispatcher-load", daemon=True)
        loader.start()
        self._threads.append(loader)
        log.info("dispatcher started with %d workers, %d queued", self.workers, self.backlog())

    def stop(self, drain: bool = True, timeout: float | None = 30.0) -> bool:
        """Stop the workers; with `drain`, first finish every fire that is due now.

        Fires not handled stay in the queue table and run after the next `start()`.
        Returns False when a thread was still running after `timeout` (a consumer call
        that did not return): it may yet commit its batch.
        """
        if drain and self._running:
            self.wait_idle(timeout=timeout, include_delayed=False)
        with self._cond:
            self._running = False
            self._wake_all()
            self._room.notify_all()
        self._load_wake.set()
        for thread in self._threads:
            thread.join(timeout=timeout)
        stopped = not any(thread.is_alive() for thread in self._threads)
        self._threads.clear()
        self._worker_idents.clear()
        if self._saved_switch_interval is not None:
            sys.setswitchinterval(self._saved_switch_interval)
            self._saved_switch_interval = None
        return stopped

    def wait_idle(self, timeout: float | None = None, *, include_delayed: bool = True) -> bool:
        """Block until nothing is running or due (and, by default, nothing is waiting)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                busy = bool(self._in_flight or self._ready or self._spilled)
                if include_delayed:
                    busy = busy or bool(self._delayed)
                else:
                    busy = busy or bool(self._delayed and self._delayed[0][0] <= time.time())
                if not busy:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._room.wait(timeout=0.05 if remaining is None else min(0.05, remaining))

    def backlog(self) -> int:
        """Fires accepted and not yet handled that are held in memory."""
        with self._cond:
            return self._held()

    # -- admission -------------------------------------------------------------------------
    def _held(self) -> int:
        return len(self._ready) + len(self._delayed) + self._in_flight

    def _admit(self, item: QueuedFire) -> None:
        """Add a persisted fire to the in-memory schedule (caller holds the condition and
        `_admit_lock`); a copy of a fire already held is marked a duplicate."""
        fire_id = item.fire_id or self._fire_id(item)
        if fire_id in self._held_ids:
            item = replace(item, duplicate=True)
        elif fire_id:
            self._held_ids.add(fire_id)
        if item.not_before > time.time():
            heapq.heappush(self._delayed, (item.not_before, item.seq, item))
        else:
            self._ready.append((time.monotonic(), item))

    def _wait_for_room(self) -> None:
        if threading.get_ident() in self._worker_idents:
            return  # a consumer publishing must not wait for its own worker
        deadline = time.monotonic() + self.publish_wait_s
        with self._cond:
            while self._running and self._held() >= self.max_backlog:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    now = time.monotonic()
                    if now - self._warned_full > 60:
                        self._warned_full = now
                        log.warning(
                            "dispatcher: %d fires in memory for %.1fs; queueing in the table",
                            self._held(),
                            self.publish_wait_s,
                        )
                    return
                self._room.wait(timeout=min(remaining, 0.05))

    def load_queued(self) -> None:
        """Take the fires other processes queued into memory now (not at the next poll)."""
        self._load_new()

    def _load_new(self) -> None:
        """Take queued fires the memory queue has not seen (spilled, other processes)."""
        with self._admit_lock:
            with self._cond:
                after = self._loaded_upto
                room = self.max_backlog - self._held()
            if room <= 0:
                return
            items, high = self.queue.pending_window(
                after_seq=after,
                limit=room,
                with_done=self._done_with_rows,
                shard=self.shard,
            )
            with self._cond:
                for item in items:
                    self._admit(item)
                if len(items) < room:
                    self._loaded_upto = max(after, high)
                    self._spilled = False
                else:
                    self._loaded_upto = items[-1].seq
                    self._spilled = True
                if items:
                    self._wake_one()  # a worker that claims a part wakes the next

    def _poll(self) -> None:
        while True:
            self._load_wake.wait(timeout=self.poll_s)
            self._load_wake.clear()
            with self._cond:
                if not self._running:
                    return
            try:
                self._load_new()
            except Exception:
                log.exception("dispatcher: could not read the queue table")

    # -- workers ---------------------------------------------------------------------------
    def _claim(self, me: _Slot) -> bool:
        """Fill `me.pending` with fires to run; False once stopped.

        A second worker only helps while consumers wait (the interpreter lock serialises
        Python work), so an idle worker joins when another one's current consumer call
        has run `spread_after_s` (taking over that worker's unstarted fires first), or
        when the oldest ready fire has waited that long and consumer calls are slow on
        average (`slow_call_s`, e.g. network checks).
        """
        spread = self.spread_after_s
        with self._cond:
            while self._running:
                now_wall = time.time()
                now = time.monotonic()
                while self._delayed and self._delayed[0][0] <= now_wall:
                    self._ready.append((now, heapq.heappop(self._delayed)[2]))
                wait = min(self._delayed[0][0] - now_wall, 1.0) if self._delayed else 1.0
                stuck = False
                for other in self._slots:
                    if other is me or not (other.started or other.pending):
                        continue
                    running_for = now - other.started if other.started else 0.0
                    if running_for < spread:
                        if other.pending:
                            wait = min(wait, spread - running_for)
                        continue
                    stuck = True
                    if other.pending:
                        me.pending.extend(other.pending)
                        other.pending.clear()
                        self._active += 1
                        self._stop_watching(me)
                        if len(me.pending) > 1:
                            self._wake_one()  # someone watches what is left waiting
                        return True
                ready = self._ready
                if self._queued_elsewhere and not ready:
                    self._queued_elsewhere = False
                    self._cond.release()  # lock order: _admit_lock, then the state lock
                    try:
                        self._load_new()
                    except Exception:  # the loader thread looks again within poll_s
                        log.exception("dispatcher: could not read the queue table")
                    finally:
                        self._cond.acquire()
                    continue
                if ready:
                    waited = now - ready[0][0]
                    slow = waited >= spread and self._call_s >= self.slow_call_s
                    if self._active == 0 or stuck or slow:
                        n = min(self.batch_size, len(ready))
                        me.pending.extend(ready.popleft()[1] for _ in range(n))
                        self._in_flight += n
                        self._active += 1
                        self._stop_watching(me)
                        if n > 1 or ready:
                            self._wake_one()
                        return True
                    wait = min(wait, max(spread - waited, spread / 2))
                # One idle worker watches with short waits; the others sleep until woken.
                if self._watcher is None or self._watcher is me:
                    self._watcher = me
                else:
                    wait = min(1.0, self._delayed[0][0] - now_wall) if self._delayed else 1.0
                self._idle.append(me)
                me.cond.wait(timeout=max(0.001, wait))
                if self._idle and self._idle[-1] is me:
                    self._idle.pop()
                elif me in self._idle:
                    self._idle.remove(me)
            if self._watcher is me:
                self._watcher = None
            return False

    def _wake_one(self) -> None:
        """Wake the worker that went idle last (caller holds the state lock).

        Its memory and the interpreter's caches are warm, and the other workers keep
        sleeping: waking them in turn (a condition's order) cost a thread switch per
        batch.
        """
        if self._idle:
            self._idle.pop().cond.notify()

    def _wake_all(self) -> None:
        for slot in self._slots:
            slot.cond.notify_all()

    def _stop_watching(self, me: _Slot) -> None:
        if self._watcher is me:
            self._watcher = None

    def _work(self, me: _Slot) -> None:
        self._worker_idents.add(threading.get_ident())
        while self._claim(me):
            try:
                self._process(me)
            except Exception:
                # Only the bookkeeping around the runtime can land here; keep the fires
                # queued and look at them again later rather than lose them.
                log.exception("dispatcher: a batch of fires could not be processed")
                later = time.time() + self.runtime.settings.retry_max_s
                with self._cond:
                    for item in [*me.taken, *me.pending]:
                        again = replace(item, not_before=later)
                        heapq.heappush(self._delayed, (later, item.seq, again))
                    self._in_flight -= len(me.pending)  # they are waiting again now
                    me.pending.clear()
            with self._cond:
                self._in_flight -= len(me.taken)
                me.started = 0.0
                me.taken = []
                self._active -= 1
                if self._spilled:
                    # Room was made: this worker reads the next slice once nothing is
                    # ready, between batches. Read by the loader thread while a worker
                    # ran, each row handed the interpreter lock back and forth: a fire
                    # drained behind its queue cost about 12 % more.
                    self._queued_elsewhere = True
                self._room.notify_all()  # the worker itself claims what is ready next

    def _process(self, me: _Slot) -> None:
        """Run the fires in `me.pending` (moving them to `me.taken`), then commit them.

        A batch that has run `commit_after_s` commits the fires it has finished before
        it starts the next one.
        """
        runtime = self.runtime
        settings = runtime.settings
        # The condition's own lock: the same exclusion, without the Python-level
        # `Condition.__enter__`/`__exit__` calls, twice per fire.
        state = self._state_lock
        with state:
            claimed = list(me.pending)
        known_done = self._known_done(claimed)
        out = _Outcomes(FireBatch(known_done=known_done))
        batch, finished, moved, released = out.batch, out.finished, out.moved, out.released
        taken, pending = me.taken, me.pending
        parse, handle, monotonic = runtime.parse_fire, runtime.handle, time.monotonic
        commit_at = monotonic() + self.commit_after_s
        while True:
            with state:
                if not pending:
                    me.started = 0.0
                    break
                item = pending.popleft()
                taken.append(item)
                me.started = now = monotonic()
            notice = item.fire_id.startswith(REMOVED_PREFIX)
            if len(taken) > 1 and (notice or now >= commit_at):
                # Commit what is finished (every taken fire but this one) first: a long
                # batch shows its runs, and what ran before a removal notice is stored
                # before the notice forgets it.
                self._finish(out, me, len(taken) - 1)
                out = _Outcomes(FireBatch(known_done=known_done))
                batch, finished, moved, released = out.batch, out.finished, out.moved, out.released
                commit_at = now + self.commit_after_s
            if item.duplicate:
                log.info("fire %s queued twice; the copy seq %d is dropped", item.fire_id, item.seq)
                finished.append(item.seq)
                continue
            if notice:
                self._forget(item, out)
                continue
            try:
                fired = item.fired if item.fired is not None else parse(item.payload)
            except ValueError:
                log.exception("dispatcher: queued fire seq %d is unreadable", item.seq)
                later = time.time() + settings.retry_max_s
                moved.append((item.seq, item.attempt, later))
                out.retry_later.append(replace(item, not_before=later))
                continue
            result = handle(fired, attempt=item.attempt, batch=batch)
            # Mean consumer call time (a racy float update is fine for a heuristic).
            self._call_s += (monotonic() - me.started - self._call_s) * 0.05
            if result.disposition == "done":
                finished.append(item.seq)
                released.append(item.fire_id or fired.fire_id)
            elif result.disposition == "defer":
                later = time.time() + self.defer_s
                moved.append((item.seq, item.attempt, later))
                out.retry_later.append(replace(item, not_before=later))
            elif result.disposition == "retry" and item.attempt < settings.max_attempts:
                delay = backoff_delay(
                    item.attempt, base_s=settings.retry_base_s, max_s=settings.retry_max_s
                )
                log.info("fire %s: retry %d in %.2fs", fired.fire_id, item.attempt + 1, delay)
                later = time.time() + delay
                moved.append((item.seq, item.attempt + 1, later))
                out.retry_later.append(replace(item, attempt=item.attempt + 1, not_before=later))
            else:
                out.dead.append((item, fired, result))
                finished.append(item.seq)
                released.append(item.fire_id or fired.fire_id)
        self._finish(out, me, len(taken))

    def _forget(self, item: QueuedFire, out: _Outcomes) -> None:
        """Handle a removal notice (`removal_row`); one that fails is tried again with
        backoff, without a cap (a dead letter would leave the job's data behind)."""
        try:
            removed = JobRemoved.model_validate_json(item.payload)
            self.runtime.forget(removed)
            self.dead_letters.forget_job(removed.owner_id, removed.job_id)
        except Exception:
            log.exception("could not forget deleted job (notice %s); trying again", item.fire_id)
            settings = self.runtime.settings
            delay = backoff_delay(
                item.attempt, base_s=settings.retry_base_s, max_s=settings.retry_max_s
            )
            later = time.time() + delay
            out.moved.append((item.seq, item.attempt + 1, later))
            out.retry_later.append(replace(item, attempt=item.attempt + 1, not_before=later))
            return
        out.finished.append(item.seq)
        out.released.append(item.fire_id)

    def _finish(self, out: _Outcomes, me: _Slot, count: int) -> None:
        """Store the outcomes of the first `count` fires of `me.taken` and let them go
        (out of `me.taken` and the in-flight count, their fire_ids out of memory)."""
        for item, fired, result in out.dead:
            self._dead_letter(item, fired, result)
        self._commit(out.batch, out.finished, out.moved)
        if out.released:
            # Under `_admit_lock`: a copy the loader read before this commit (without
            # the done marks) is taken in before this, while the fire is still held.
            with self._admit_lock:
                self._held_ids.difference_update(out.released)
        goes_on = count < len(me.taken)  # the batch goes on: these leave it now
        if out.retry_later or goes_on:
            with self._state_lock:
                for item in out.retry_later:
                    heapq.heappush(self._delayed, (item.not_before, item.seq, item))
                if goes_on:
                    del me.taken[:count]
                    self._in_flight -= count
                    self._room.notify_all()

    def _known_done(self, claimed: Sequence[QueuedFire]) -> set[str] | None:
        """The claimed fires that had completed (None: the runtime asks its ledger).

        A row loaded from the table with its done mark says so itself (`with_done`,
        when the ledger is in the queue's file): only this dispatcher marks fires done,
        and it holds one copy of a fire_id in memory at a time (later copies are
        duplicates; a fire leaves memory only after its commit, under the lock the
        loader reads under), so no other copy of the fire can complete between that
        read and this batch. The others (fires handed over in memory by `publish_many`
        here, and every fire when the ledger has a file of its own) are looked up, in
        one query per 500.
        """
        ledger = self._ledger_here
        if ledger is None:
            return None
        if self._done_with_rows is None:
            return ledger.done_among([self._fire_id(item) for item in claimed])
        done = {item.fire_id for item in claimed if item.done}
        handed = [self._fire_id(item) for item in claimed if item.fired is not None]
        if handed:
            done |= ledger.done_among(handed)
        return done

    @staticmethod
    def _fire_id(item: QueuedFire) -> str:
        if item.fired is not None:
            return item.fired.fire_id
        if item.fire_id:
            return item.fire_id
        try:
            return item.parsed().fire_id
        except ValueError:
            return ""

    def _commit(
        self, batch: FireBatch, finished: Sequence[int], moved: Sequence[tuple[int, int, float]]
    ) -> None:
        """Store the batch's runs, done marks and queue changes (runs first)."""
        if self._runs_here is not None and self._ledger_here is not None:
            self.queue.complete(
                delete=finished,
                reschedule=moved,
                runs=batch.runs,
                run_repository=self._runs_here,
                done=batch.done,
                ledger=self._ledger_here,
            )
            return
        runs, ledger = self.runtime.runs, self.runtime.ledger
        for owner_id, run in batch.runs:
            try:
                runs.record(owner_id, run)
            except Exception:
                log.exception("could not record run %s of fire %s", run.run_id, run.fire_id)
        for fire_id in batch.done:
            ledger.mark_done(fire_id)
        self.queue.complete(delete=finished, reschedule=moved)

    def _dead_letter(self, item: QueuedFire, fired: JobFired, result: HandleResult) -> None:
        log.error(
            "fire %s dead-lettered after %d attempts: %s", fired.fire_id, item.attempt, result.error
        )
        self.dead_letters.add(
            DeadLetter.of(
                fired, error=result.error, attempts=item.attempt, payload=item.payload or None
            )
        )


#: The job as stored now (its snapshot dict), or None when it was deleted.
CurrentJob = Callable[[str, str], dict[str, Any] | None]


def letter_event(letter: DeadLetter) -> JobFired | JobRemoved | None:
    """What a dead letter holds: a fire, a removal notice (its plugin kept failing to
    forget the deleted job), or None for a payload that is neither."""
    from .sqs import event_from_body

    try:
        return event_from_body(letter.payload)
    except (ValueError, TypeError):
        return None


def redrive(
    dead_letters: DeadLetterStore,
    publisher: Publisher,
    *,
    fire_ids: Iterable[str] | None = None,
    limit: int = 1000,
    current: CurrentJob | None = None,
    dropped: list[str] | None = None,
    notices: list[str] | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> list[str]:
    """Publish dead-lettered fires again (all, or those named) and drop them from the store.

    `publisher` is any `Publisher` (locally a `SqliteFireQueue`, which a running
    dispatcher picks up; on AWS the `SnsPublisher`). A letter is removed only once
    published. With `current(owner_id, job_id)`, each fire carries the job as it is
    stored now instead of the snapshot it failed with (an operator fixes the job's
    cause, e.g. its URL, then redrives), and the letters of deleted jobs are removed
    without running (their fire_ids are appended to `dropped`).

    A removal notice is published again (`publish_removed`) unless the publisher cannot
    take one or `current` still has the job; its id goes to `notices`. A letter that is
    neither stays, with why, in `skipped` (for `dlq purge` once looked at). Returns the
    fires' ids.
    """
    done: list[str] = []
    for letter in _chosen(dead_letters, fire_ids, limit):
        event = letter_event(letter)
        if event is None:
            if skipped is not None:
                skipped.append((letter.fire_id, "unreadable"))
            continue
        if isinstance(event, JobRemoved):
            publish_removed: Callable[[JobRemoved], None] | None = getattr(
                publisher, "publish_removed", None
            )
            why = None
            if publish_removed is None:
                why = "a removal notice, which this queue cannot take"
            elif current is not None and current(event.owner_id, event.job_id) is not None:
                why = "a removal notice of a job that exists"
            if publish_removed is None or why is not None:
                if skipped is not None:
                    skipped.append((letter.fire_id, why or ""))
                continue
            publish_removed(event)
            dead_letters.remove(letter.fire_id)
            if notices is not None:
                notices.append(letter.fire_id)
            continue
        fired = event
        if current is not None:
            job = current(fired.owner_id, fired.job_id)
            if job is None:
                dead_letters.remove(letter.fire_id)
                if dropped is not None:
                    dropped.append(letter.fire_id)
                continue
            fired = fired.model_copy(update={"job": job})
        publisher.publish(fired)
        dead_letters.remove(letter.fire_id)
        done.append(letter.fire_id)
    return done


def purge(
    dead_letters: DeadLetterStore, *, fire_ids: Iterable[str] | None = None, limit: int = 1000
) -> list[str]:
    """Drop dead-lettered fires (all among the oldest `limit`, or those named) without
    running them; returns their fire_ids."""
    done: list[str] = []
    for letter in _chosen(dead_letters, fire_ids, limit):
        dead_letters.remove(letter.fire_id)
        done.append(letter.fire_id)
    return done


def _chosen(
    dead_letters: DeadLetterStore, fire_ids: Iterable[str] | None, limit: int
) -> Iterator[DeadLetter]:
    """The letters among the oldest `limit` that `fire_ids` names (all when None)."""
    wanted = set(fire_ids) if fire_ids is not None else None
    for letter in dead_letters.list(limit=limit):
        if wanted is None or letter.fire_id in wanted:
            yield letter
