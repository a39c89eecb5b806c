"""Local mode's distribution layer: a durable queue and a bounded worker pool.

`publish` only persists the fire (one SQLite transaction; `publish_many` writes a whole
batch in one) and wakes a worker, so the timer engine is never slowed by plugins.
Workers run fires through `ConsumerRuntime`; failures are retried with exponential
backoff and a cap, then moved to the dead-letter store. A fire leaves the queue table
only once handled, so after a crash (even `kill -9`) `start()` runs every unfinished
fire again; completed fire_ids are deduplicated by the runtime's ledger.
"""

from __future__ import annotations

import heapq
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime

from ..events import JobFired
from ..ports import Publisher
from .core import ConsumerRuntime, HandleResult
from .ports import DeadLetter, DeadLetterStore
from .sqlite import QueuedFire, SqliteFireLedger, SqliteFireQueue

log = logging.getLogger(__name__)


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
    ) -> None:
        self.runtime = runtime
        self.queue = queue
        self.dead_letters = dead_letters
        self.workers = workers or runtime.settings.dispatcher_workers
        self.defer_s = defer_s
        self.poll_s = poll_s
        self._cond = threading.Condition()
        self._ready: deque[QueuedFire] = deque()
        self._delayed: list[tuple[float, int, QueuedFire]] = []
        self._known: set[int] = set()
        self._max_seq = 0
        self._in_flight = 0
        self._running = False
        self._threads: list[threading.Thread] = []

    # -- Publisher -----------------------------------------------------------------------
    def publish(self, fired: JobFired) -> None:
        """Persist one fire, then hand it to the pool (returns once it is durable)."""
        self.publish_many([fired])

    def publish_many(self, fires: Iterable[JobFired]) -> None:
        """Persist a batch of fires in one transaction, then hand them to the pool."""
        added = self.queue.add_many(fires)
        if added:
            with self._cond:
                for item in added:
                    self._admit(item)
                self._cond.notify(len(added))

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Load unfinished fires from the queue table and start the workers."""
        if self._running:
            return
        if isinstance(self.runtime.ledger, SqliteFireLedger):
            self.runtime.ledger.release_all_locks()
        self._load_new()
        self._running = True
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"dispatcher-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        poller = threading.Thread(target=self._poll, name="dispatcher-poll", daemon=True)
        poller.start()
        self._threads.append(poller)
        log.info("dispatcher started with %d workers, %d queued", self.workers, self.backlog())

    def stop(self, drain: bool = True, timeout: float | None = 30.0) -> None:
        """Stop the workers; with `drain`, first finish every fire that is due now.

        Fires not handled stay in the queue table and run after the next `start()`.
        """
        if drain and self._running:
            self.wait_idle(timeout=timeout, include_delayed=False)
        with self._cond:
            self._running = False
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=timeout)
        self._threads.clear()

    def wait_idle(self, timeout: float | None = None, *, include_delayed: bool = True) -> bool:
        """Block until nothing is running or due (and, by default, nothing is waiting)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                busy = bool(self._in_flight or self._ready)
                if include_delayed:
                    busy = busy or bool(self._delayed)
                else:
                    busy = busy or bool(self._delayed and self._delayed[0][0] <= time.time())
                if not busy:
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(timeout=0.05 if remaining is None else min(0.05, remaining))

    def backlog(self) -> int:
        with self._cond:
            return len(self._ready) + len(self._delayed) + self._in_flight

    # -- internals -----------------------------------------------------------------------
    def _admit(self, item: QueuedFire) -> None:
        """Add a persisted fire to the in-memory schedule (caller holds the condition)."""
        if item.seq in self._known:
            return
        self._known.add(item.seq)
        self._max_seq = max(self._max_seq, item.seq)
        if item.not_before > time.time():
            heapq.heappush(self._delayed, (item.not_before, item.seq, item))
        else:
            self._ready.append(item)

    def _load_new(self) -> None:
        with self._cond:
            after = self._max_seq
        items = self.queue.pending(after_seq=after)
        if items:
            with self._cond:
                for item in items:
                    self._admit(item)
                self._cond.notify_all()

    def _poll(self) -> None:
        while True:
            with self._cond:
                if not self._running:
                    return
                self._cond.wait(timeout=self.poll_s)
                if not self._running:
                    return
            try:
                self._load_new()
            except Exception:
                log.exception("dispatcher: could not read the queue table")

    def _next(self) -> QueuedFire | None:
        with self._cond:
            while self._running:
                now = time.time()
                while self._delayed and self._delayed[0][0] <= now:
                    self._ready.append(heapq.heappop(self._delayed)[2])
                if self._ready:
                    self._in_flight += 1
                    return self._ready.popleft()
                wait = self._delayed[0][0] - now if self._delayed else 1.0
                self._cond.wait(timeout=max(0.001, min(wait, 1.0)))
            return None

    def _work(self) -> None:
        while True:
            item = self._next()
            if item is None:
                return
            try:
                self._handle(item)
            except Exception:
                # Only the bookkeeping around the runtime can land here; keep the fire
                # queued and look at it again later rather than lose it.
                log.exception("dispatcher: fire seq %d could not be processed", item.seq)
                self._requeue(item, item.attempt, time.time() + self.runtime.settings.retry_max_s)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _handle(self, item: QueuedFire) -> None:
        fired = JobFired.model_validate_json(item.payload)
        result = self.runtime.handle(fired, attempt=item.attempt)
        settings = self.runtime.settings
        if result.disposition == "done":
            self._finish(item)
        elif result.disposition == "defer":
            self._requeue(item, item.attempt, time.time() + self.defer_s)
        elif result.disposition == "retry" and item.attempt < settings.max_attempts:
            delay = backoff_delay(
                item.attempt, base_s=settings.retry_base_s, max_s=settings.retry_max_s
            )
            log.info("fire %s: retry %d in %.2fs", fired.fire_id, item.attempt + 1, delay)
            self._requeue(item, item.attempt + 1, time.time() + delay)
        else:
            self._dead_letter(item, fired, result)

    def _finish(self, item: QueuedFire) -> None:
        self.queue.delete([item.seq])
        with self._cond:
            self._known.discard(item.seq)

    def _requeue(self, item: QueuedFire, attempt: int, not_before: float) -> None:
        self.queue.reschedule(item.seq, attempt=attempt, not_before=not_before)
        again = QueuedFire(item.seq, item.payload, attempt, not_before)
        with self._cond:
            heapq.heappush(self._delayed, (not_before, item.seq, again))
            self._cond.notify()

    def _dead_letter(self, item: QueuedFire, fired: JobFired, result: HandleResult) -> None:
        log.error(
            "fire %s dead-lettered after %d attempts: %s", fired.fire_id, item.attempt, result.error
        )
        self.dead_letters.add(
            DeadLetter(
                fire_id=fired.fire_id,
                job_type=fired.job_type,
                job_id=fired.job_id,
                owner_id=fired.owner_id,
                payload=item.payload,
                error=result.error,
                attempts=item.attempt,
                dead_at=datetime.now(UTC),
            )
        )
        self._finish(item)


def redrive(
    dead_letters: DeadLetterStore,
    publisher: Publisher,
    *,
    fire_ids: Iterable[str] | None = None,
    limit: int = 1000,
) -> list[str]:
    """Publish dead-lettered fires again (all, or those named) and drop them from the store.

    `publisher` is any `Publisher` (locally a `SqliteFireQueue`, which a running
    dispatcher picks up; on AWS the `SnsPublisher`). A letter is removed only once
    published.
    """
    wanted = set(fire_ids) if fire_ids is not None else None
    done: list[str] = []
    for letter in dead_letters.list(limit=limit):
        if wanted is not None and letter.fire_id not in wanted:
            continue
        publisher.publish(JobFired.model_validate_json(letter.payload))
        dead_letters.remove(letter.fire_id)
        done.append(letter.fire_id)
    return done
