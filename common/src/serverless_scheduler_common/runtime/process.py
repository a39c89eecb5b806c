"""The local dispatcher in its own process: a `Publisher` that queues and wakes it.

Plugin code, the run history and the timer engine all share one interpreter lock when
they live in one process; at thousands of fires per second the engine and the workers
then spend more time handing that lock back and forth than doing work. With
`DispatcherProcess` the engine's process only appends fires to the durable queue table
(`SqliteFireQueue`, one transaction per batch) and writes one byte to a pipe; a child
process runs the `LocalDispatcher` (workers, plugins, runs, ledger) over the same
SQLite file (with several children, each over its partition's file) and reads the new
rows when that byte arrives (and every second anyway).
No lock is shared between the processes, so killing either never blocks the other.

Nothing is lost on either side: a fire is accepted once its row is committed, the
child deletes a row only in the transaction that records its run, and a child that dies
(even `kill -9`) is started again by the parent, which then runs every unfinished row.

The child builds its dispatcher with `factory(settings, (index, count))`, for its
dispatch partition (`partitions.py`): a module-level callable (it is pickled by name
into a freshly spawned interpreter, so plugin objects cannot be passed; plugins come
from the installed entry points, or from what the factory registers).

With `processes=K` (`settings.dispatcher_processes`) K children split the queue by
job (`fire_shard(job_id) % K`): one core runs about 20,000 no-op fires per second, and
a job's fires, with its overlap policy, buffer slot and failure count, stay in one
child. Each child holds an exclusive lock on its own file (`dispatcher.lock`,
`dispatcher-1.lock`, ...), and `start()` first waits until every child of an earlier
parent (whatever its K) has released its lock, so two children never take the same
fire.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ..coldstart import tune_for_throughput
from ..events import JobFired
from ..ports import RenderedFire
from ..settings import Settings
from ..sqlite import db_path_for
from .dispatcher import LocalDispatcher
from .partitions import PartitionQueue, arrange
from .sqlite import ALL_SHARDS

log = logging.getLogger(__name__)

#: Builds the dispatcher of partition (index, count) in the child (`partitions.py`).
DispatcherFactory = Callable[[Settings, tuple[int, int]], LocalDispatcher]

# One-byte messages on the parent -> child pipe (raw bytes: no framing, so a write that
# fails half way cannot garble the stream, and a full pipe never blocks the parent).
WAKE, STOP, STOP_DRAIN = b"w", b"s", b"d"

#: Fires the child holds in memory at most (its dispatcher's `max_backlog`): about 1 KB
#: each. Behind its queue, a worker reads the next slice once nothing is ready; with
#: room for only two batches (2,000) a fire drained that way cost 28-30 us, with eight
#: (8,192) 24 (`benchmarks/dispatch.py --warm`, docs/runtime.md "Twenty-first round").
CHILD_MAX_BACKLOG = 8_192


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's per-thread malloc arenas (a no-op elsewhere).

    Each of the dispatcher's worker threads would otherwise get its own arena, and the
    memory one thread frees stays in its arena: about 15 MB more resident memory for the
    same work. Must run before the threads start.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    mallopt(-8, arenas)  # M_ARENA_MAX


def lock_path_for(data_dir: str | Path, index: int = 0) -> Path:
    """The lock file dispatcher child `index` holds while it runs."""
    name = "dispatcher.lock" if index == 0 else f"dispatcher-{index}.lock"
    return db_path_for(data_dir).with_name(name)


def wait_for_leftover_dispatchers(data_dir: str | Path, deadline: float) -> None:
    """Wait until no process holds a dispatcher lock of `data_dir` (children of an
    earlier parent finish their batch and exit once their parent is gone); raises
    RuntimeError past `deadline` (`time.monotonic()`)."""
    for path in sorted(lock_path_for(data_dir).parent.glob("dispatcher*.lock")):
        with open(path, "a+b") as lock_file:
            while True:
                try:
                    fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"another dispatcher holds {path.name}: is local mode "
                            "already running on this data directory?"
                        ) from None
                    time.sleep(0.05)
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _child_main(
    settings_json: str,
    factory: DispatcherFactory,
    inbox: Any,
    outbox: Any,
    log_level: int,
    shard: tuple[int, int] = ALL_SHARDS,
) -> None:
    """Entry point of the child: run the dispatcher until the parent says stop."""
    _limit_malloc_arenas()
    index, count = shard
    name = "dispatcher" if count == 1 else f"dispatcher {index + 1}/{count}"
    logging.basicConfig(
        level=log_level, format=f"%(asctime)s %(levelname)s %(name)s [{name}]: %(message)s"
    )
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when the
    # child stops (after the engine has handed over its last fires).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    settings = Settings.model_validate_json(settings_json)
    # One dispatcher per database and shard: a child left over from a parent that was
    # killed finishes its current batch and exits (it watches its parent) before this
    # one runs.
    with open(lock_path_for(settings.data_dir, index), "a+b") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        if os.getppid() != parent:
            return
        dispatcher = factory(settings, shard)
        dispatcher.shard = shard
        # The queue table is the buffer: the child reads (and holds) a little at a time.
        dispatcher.max_backlog = min(dispatcher.max_backlog, CHILD_MAX_BACKLOG)
        tune_for_throughput()
        dispatcher.start()
        os.write(outbox.fileno(), b"r")
        drain = _read_until_stop(inbox.fileno(), dispatcher, parent)
        _stop_child(dispatcher, drain)


#: How long a stopping child waits for its workers (`LocalDispatcher.stop`).
CHILD_STOP_TIMEOUT_S = 30.0


def _stop_child(dispatcher: LocalDispatcher, drain: bool) -> None:
    """Stop the child's dispatcher, still holding its lock (`_child_main`).

    A worker still inside a consumer call after `CHILD_STOP_TIMEOUT_S` could commit
    its batch after the lock is released, when another dispatcher may already have
    read the same rows: the process ends here instead, lock held (its fires stay
    queued and run again, as after a crash).
    """
    if drain:
        dispatcher.load_queued()  # what the parent queued just before it said stop
    if not dispatcher.stop(drain=drain, timeout=CHILD_STOP_TIMEOUT_S):
        log.warning(
            "dispatcher: a consumer call still running after %.0f s; ending without it "
            "(its fire stays queued)",
            CHILD_STOP_TIMEOUT_S,
        )
        _end_process()


def _end_process() -> None:
    """End this process at once (its logs flushed), whatever its threads are doing."""
    logging.shutdown()
    os._exit(0)


def _read_until_stop(fd: int, dispatcher: LocalDispatcher, parent: int) -> bool:
    """Forward wake-ups to the dispatcher until STOP (returns False) or STOP_DRAIN (True).

    Batching happens upstream: the timer engine commits its fires every 20 ms at most
    (`publish_gather_s`), so each wake-up brings a batch; waiting here as well only added
    latency (consumer-start p99 50 -> 26-31 ms without it, no more CPU).

    The parent going away (its end closed, or a new parent process id) stops without
    draining: the queue keeps what is left for the next start.
    """
    while True:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if os.getppid() != parent:
            log.warning("dispatcher: the parent process is gone; stopping")
            return False
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            log.warning("dispatcher: the parent closed its pipe; stopping")
            return False
        if STOP_DRAIN in data:
            return True
        if STOP in data:
            return False
        dispatcher.notify_queued()


class _Child:
    """One dispatcher child (its shard index is its position in the parent's list): its
    process and the parent's end of its pipe."""

    __slots__ = ("process", "send_fd")

    def __init__(self, process: Any, send_fd: int) -> None:
        self.process = process
        self.send_fd = send_fd


class DispatcherProcess:
    """`Publisher` for local mode that runs `LocalDispatcher`s in child processes.

    Args:
        settings: the system's settings (each child gets a copy).
        factory: module-level callable building a child's dispatcher from settings.
        processes: how many children split the queue (default
            `settings.dispatcher_processes`).
        start_timeout_s: how long `start()` waits for the children to be ready (and,
            before that, for the children of an earlier parent to exit).
        restart_delay_s: pause before starting a child that died again.
        max_queued: back-pressure: while this many fires are queued, publishing waits
            (the timer engine falls behind and its lateness shows the overload)...
        publish_wait_s: ...for at most this long, then accepts the fires anyway (they
            are durable in the table; only the wait for room is given up).
        depth_check_s: how often the queue's depth is read (each partition's counter
            row); in between, the last reading plus what was published since, which
            is read again before publishing waits.
    """

    def __init__(
        self,
        settings: Settings,
        factory: DispatcherFactory,
        *,
        processes: int | None = None,
        start_timeout_s: float = 60.0,
        restart_delay_s: float = 1.0,
        max_queued: int = 100_000,
        publish_wait_s: float = 5.0,
        depth_check_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.processes = processes or settings.dispatcher_processes
        if self.processes < 1:
            raise ValueError("processes must be at least 1")
        self.queue = PartitionQueue(settings.data_dir, 0, self.processes)
        self.start_timeout_s = start_timeout_s
        self.restart_delay_s = restart_delay_s
        self._ctx = multiprocessing.get_context("spawn")
        self._children: list[_Child] = []
        # Pipe ends of children that were replaced: closed in `stop`, not at once, so a
        # publisher still holding one never writes into a descriptor number reused since.
        self._retired_fds: list[int] = []
        self._lock = threading.Lock()
        self._running = False
        self._watchdog: threading.Thread | None = None
        self.restarts = 0
        self.max_queued = max_queued
        self.publish_wait_s = publish_wait_s
        self.depth_check_s = depth_check_s
        self._depth = 0
        self._depth_at = float("-inf")
        self._warned_full = float("-inf")
        self._room_lock = threading.Lock()
        self._room_wait_s = 0.0  # finished waits for room, summed over publishing threads
        self._room_waits: dict[int, float] = {}  # thread id -> when its wait began

    # -- Publisher -----------------------------------------------------------------------
    def publish(self, fired: JobFired) -> None:
        """Persist one fire and wake the children (returns once the fire is durable)."""
        self.publish_many([fired])

    def publish_many(self, fires: Iterable[JobFired]) -> None:
        """Persist a batch of fires in one transaction, then wake the children."""
        self._wait_for_room()
        batch = list(fires)
        added = len(self.queue.add_many(batch))
        if self.processes > 1:
            added = len(batch)  # partition 0's new rows came back; the others' were added too
        if added:
            self._depth += added  # counted again at the next check
            self._signal(WAKE)

    def publish_payloads(self, fires: Sequence[RenderedFire]) -> None:
        """`PayloadPublisher`: persist fires rendered by the timer engine, then wake.

        With several children each child's fires go to its partition's file, in the
        order they were fired (one transaction per partition).
        """
        self._wait_for_room()
        added = self.queue.add_payloads(fires)
        if added:
            self._depth += added
            self._signal(WAKE)

    def _queued(self, *, fresh: bool = False) -> int:
        """Fires in the queue tables: counted at most every `depth_check_s` (or now, when
        `fresh`); in between, the last count plus what was published since."""
        now = time.monotonic()
        if fresh or now - self._depth_at >= self.depth_check_s:
            self._depth = self.queue.count_all()
            self._depth_at = now
        return self._depth

    def _wait_for_room(self) -> None:
        # Between counts the estimate only grows (what the children took since is not in
        # it): at 50,000 fires/s half a second of publishing crossed the limit while the
        # children were far below it, and publishing then waited up to the next count
        # (hand-off p99 up to 0.8 s in slower phases; docs/runtime.md, "Twenty-second
        # round"). So over the limit, count before waiting, and
        # count at every look while waiting (reading a counter row per partition).
        if self._queued() < self.max_queued or self._queued(fresh=True) < self.max_queued:
            return
        started = time.monotonic()
        deadline = started + self.publish_wait_s
        me = threading.get_ident()
        with self._room_lock:
            self._room_waits[me] = started
        try:
            while self._running and self._queued(fresh=True) >= self.max_queued:
                now = time.monotonic()
                if now >= deadline:
                    if now - self._warned_full > 60:
                        self._warned_full = now
                        log.warning(
                            "dispatcher: %d fires queued for %.1fs; accepting more anyway",
                            self._depth,
                            self.publish_wait_s,
                        )
                    return
                # 20 ms: the engine gathers its fires that long anyway.
                time.sleep(max(0.001, min(0.02, self.depth_check_s)))
        finally:
            with self._room_lock:
                del self._room_waits[me]
                self._room_wait_s += time.monotonic() - started

    def room_waited_s(self) -> float:
        """Seconds publishing has waited for room (back-pressure at work), summed over
        the publishing threads, the waits still going on included."""
        now = time.monotonic()
        with self._room_lock:
            return self._room_wait_s + sum(now - since for since in self._room_waits.values())

    # -- life cycle ----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The (first) child's process id while it runs."""
        pids = self.pids
        return pids[0] if pids else None

    @property
    def pids(self) -> list[int]:
        """The children's process ids, in shard order."""
        return [int(child.process.pid) for child in self._children if child.process.pid is not None]

    def start(self) -> None:
        """Start the children and wait until their dispatchers run (they resume queued
        fires)."""
        with self._lock:
            if self._running:
                return
            wait_for_leftover_dispatchers(
                self.settings.data_dir, time.monotonic() + self.start_timeout_s
            )
            # Moving queued fires may take a while after a change of K: the children's
            # start-up gets its own time.
            arrange(self.settings.data_dir, self.processes)
            deadline = time.monotonic() + self.start_timeout_s
            children: list[_Child] = []
            try:
                for index in range(self.processes):
                    children.append(self._spawn(index, deadline))
            except BaseException:
                for child in children:
                    _close_quietly(child.send_fd)
                    child.process.kill()
                raise
            self._children = children
            self._running = True
        self._signal(WAKE)  # fires queued while no child ran
        self._watchdog = threading.Thread(
            target=self._watch, name="dispatcher-watchdog", daemon=True
        )
        self._watchdog.start()

    def _spawn(self, index: int, deadline: float) -> _Child:
        inbox, to_child = self._ctx.Pipe(duplex=False)
        from_child, outbox = self._ctx.Pipe(duplex=False)
        process = self._ctx.Process(
            target=_child_main,
            args=(
                self.settings.model_dump_json(),
                self.factory,
                inbox,
                outbox,
                logging.getLogger().getEffectiveLevel(),
                (index, self.processes),
            ),
            name=f"serverless-scheduler-dispatcher-{index}",
            daemon=True,
        )
        process.start()
        inbox.close()
        outbox.close()
        try:
            while not from_child.poll(0.05):
                if not process.is_alive():
                    raise RuntimeError(
                        f"the dispatcher process exited during start-up (code {process.exitcode})"
                    )
                if time.monotonic() > deadline:
                    process.kill()
                    raise RuntimeError("the dispatcher process did not start in time")
        except BaseException:
            to_child.close()
            raise
        finally:
            from_child.close()
        send_fd = os.dup(to_child.fileno())
        to_child.close()
        os.set_blocking(send_fd, False)
        if self.processes == 1:
            log.info("dispatcher process %d started", process.pid)
        else:
            log.info(
                "dispatcher process %d started (%d of %d)", process.pid, index + 1, self.processes
            )
        return _Child(process, send_fd)

    def _signal(self, message: bytes) -> None:
        """Send one byte to every child (a full pipe or a gone child is skipped)."""
        for child in self._children:
            _send(child.send_fd, message)

    def _watch(self) -> None:
        """Start a child again when it dies while it should run.

        Only waits for the children's sentinels: reaping a process here as well as in
        `stop` let the two race for its exit status, and `stop` then took a child that
        had just exited for one still running.
        """
        while True:
            sentinels = [child.process.sentinel for child in self._children]
            multiprocessing.connection.wait(sentinels, 0.5)
            with self._lock:
                if not self._running:
                    return
                for position, child in enumerate(self._children):
                    process = child.process
                    if process.is_alive():
                        continue
                    log.error(
                        "dispatcher process %d exited (code %s); starting it again",
                        process.pid,
                        process.exitcode,
                    )
                    time.sleep(self.restart_delay_s)
                    try:
                        fresh = self._spawn(position, time.monotonic() + self.start_timeout_s)
                    except RuntimeError:
                        log.exception("could not start the dispatcher process again")
                        continue
                    self._children[position] = fresh
                    self._retired_fds.append(child.send_fd)
                    self.restarts += 1
                    _send(fresh.send_fd, WAKE)  # fires queued while it was down

    def stop(self, drain: bool = True, timeout: float | None = 30.0) -> None:
        """Stop the children; with `drain` they first finish every fire due now.

        Fires not handled stay in the queue table and run after the next `start()`.
        """
        with self._lock:
            if not self._running:
                return
            self._running = False
            children = list(self._children)
        if self._watchdog is not None:
            self._watchdog.join(2.0)
            self._watchdog = None
        message = STOP_DRAIN if drain else STOP
        for child in children:
            deadline = time.monotonic() + 5.0
            while not _send(child.send_fd, message) and child.process.is_alive():
                if time.monotonic() > deadline:  # the child reads no more: end it
                    child.process.terminate()
                    break
                time.sleep(0.01)
        end = None if timeout is None else time.monotonic() + timeout
        for child in children:
            process = child.process
            process.join(None if end is None else max(0.0, end - time.monotonic()))
            if process.is_alive():
                log.warning("dispatcher process %d did not stop; killing it", process.pid)
                process.kill()
                process.join(5.0)
        self._children = []
        for fd in [child.send_fd for child in children] + self._retired_fds:
            _close_quietly(fd)
        self._retired_fds = []

    def wait_idle(self, timeout: float | None = None, *, include_delayed: bool = True) -> bool:
        """Block until no queued fire is left (by default also none waiting for a retry)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            due_by = None if include_delayed else time.time()
            if self.queue.count_all(due_by=due_by) == 0:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def backlog(self) -> int:
        """Fires accepted and not yet handled (rows in the queue tables)."""
        return self.queue.count_all()


def _send(fd: int, message: bytes) -> bool:
    """Write one byte to a child's pipe; False when the pipe is full or the child gone."""
    try:
        return os.write(fd, message) == 1
    except OSError:  # BlockingIOError (full), BrokenPipeError (gone), a closed fd
        return False


def _close_quietly(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
