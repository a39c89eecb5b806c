"""The local dispatcher in its own process: a `Publisher` that queues and wakes it.

Plugin code, the run history and the timer engine all share one interpreter lock when
they live in one process; at thousands of fires per second the engine and the workers
then spend more time handing that lock back and forth than doing work. With
`DispatcherProcess` the engine's process only appends fires to the durable queue table
(`SqliteFireQueue`, one transaction per batch) and sets a wake-up event; a child
process runs the `LocalDispatcher` (workers, plugins, runs, ledger) over the same
SQLite file and loads the new rows as soon as it is woken.

Nothing is lost on either side: a fire is accepted once its row is committed, the
child deletes a row only in the transaction that records its run, and a child that dies
(even `kill -9`) is started again by the parent, which then runs every unfinished row.

The child builds its dispatcher with `factory(settings)`: a module-level callable (it is
pickled by name into a freshly spawned interpreter, so plugin objects cannot be passed;
plugins come from the installed entry points, or from what the factory registers).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..events import JobFired
from ..ports import RenderedFire
from ..settings import Settings
from ..sqlite import db_path_for
from .dispatcher import LocalDispatcher
from .sqlite import SqliteFireQueue

log = logging.getLogger(__name__)

DispatcherFactory = Callable[[Settings], LocalDispatcher]


def _child_main(
    settings_json: str,
    factory: DispatcherFactory,
    wake: Any,
    stop: Any,
    drain: Any,
    ready: Any,
    log_level: int,
) -> None:
    """Entry point of the child: run the dispatcher until the parent says stop."""
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s [dispatcher]: %(message)s"
    )
    # Ctrl-C in a terminal reaches the whole process group: the parent decides when the
    # child stops (after the engine has handed over its last fires).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings.model_validate_json(settings_json)
    dispatcher = factory(settings)
    dispatcher.use_wake_event(wake)
    dispatcher.start()
    ready.set()
    try:
        while not stop.wait(1.0):
            if os.getppid() == 1:  # the parent is gone: stop like a stop() without drain
                log.warning("dispatcher: the parent process is gone; stopping")
                break
    finally:
        dispatcher.stop(drain=bool(drain.is_set()), timeout=30.0)


class DispatcherProcess:
    """`Publisher` for local mode that runs a `LocalDispatcher` in a child process.

    Args:
        settings: the system's settings (the child gets a copy).
        factory: module-level callable building the child's dispatcher from settings.
        start_timeout_s: how long `start()` waits for the child to be ready.
        restart_delay_s: pause before starting a child that died again.
    """

    def __init__(
        self,
        settings: Settings,
        factory: DispatcherFactory,
        *,
        start_timeout_s: float = 60.0,
        restart_delay_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.queue = SqliteFireQueue(db_path_for(settings.data_dir))
        self.start_timeout_s = start_timeout_s
        self.restart_delay_s = restart_delay_s
        self._ctx = multiprocessing.get_context("spawn")
        self._wake = self._ctx.Event()
        self._stop = self._ctx.Event()
        self._drain = self._ctx.Event()
        self._process: Any = None
        self._lock = threading.Lock()
        self._running = False
        self._watchdog: threading.Thread | None = None
        self.restarts = 0

    # -- Publisher -----------------------------------------------------------------------
    def publish(self, fired: JobFired) -> None:
        """Persist one fire and wake the child (returns once the fire is durable)."""
        self.publish_many([fired])

    def publish_many(self, fires: Iterable[JobFired]) -> None:
        """Persist a batch of fires in one transaction, then wake the child."""
        if self.queue.add_many(fires):
            self._wake.set()

    def publish_payloads(self, fires: Sequence[RenderedFire]) -> None:
        """`PayloadPublisher`: persist fires rendered by the timer engine, then wake."""
        if self.queue.add_payloads(fires):
            self._wake.set()

    # -- life cycle ----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        process = self._process
        return int(process.pid) if process is not None and process.pid is not None else None

    def start(self) -> None:
        """Start the child and wait until its dispatcher runs (it resumes queued fires)."""
        with self._lock:
            if self._running:
                return
            self._spawn()
            self._running = True
        self._watchdog = threading.Thread(
            target=self._watch, name="dispatcher-watchdog", daemon=True
        )
        self._watchdog.start()

    def _spawn(self) -> None:
        self._stop.clear()
        self._drain.clear()
        ready = self._ctx.Event()
        process = self._ctx.Process(
            target=_child_main,
            args=(
                self.settings.model_dump_json(),
                self.factory,
                self._wake,
                self._stop,
                self._drain,
                ready,
                logging.getLogger().getEffectiveLevel(),
            ),
            name="serverless-scheduler-dispatcher",
            daemon=True,
        )
        process.start()
        self._process = process
        deadline = time.monotonic() + self.start_timeout_s
        while not ready.wait(0.05):
            if not process.is_alive():
                raise RuntimeError(
                    f"the dispatcher process exited during start-up (code {process.exitcode})"
                )
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("the dispatcher process did not start in time")
        log.info("dispatcher process %d started", process.pid)

    def _watch(self) -> None:
        """Start the child again when it dies while it should run."""
        while True:
            process = self._process
            if process is None:
                return
            process.join(0.5)
            with self._lock:
                if not self._running:
                    return
                if process.is_alive() or process is not self._process:
                    continue
                log.error(
                    "dispatcher process %d exited (code %s); starting it again",
                    process.pid,
                    process.exitcode,
                )
                time.sleep(self.restart_delay_s)
                try:
                    self._spawn()
                    self.restarts += 1
                except RuntimeError:
                    log.exception("could not start the dispatcher process again")

    def stop(self, drain: bool = True, timeout: float | None = 30.0) -> None:
        """Stop the child; with `drain` it first finishes every fire due now.

        Fires not handled stay in the queue table and run after the next `start()`.
        """
        with self._lock:
            if not self._running:
                return
            self._running = False
            process = self._process
        if drain:
            self._drain.set()
        self._stop.set()
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                log.warning("dispatcher process %d did not stop; killing it", process.pid)
                process.kill()
                process.join(5.0)
        if self._watchdog is not None:
            self._watchdog.join(2.0)
            self._watchdog = None

    def wait_idle(self, timeout: float | None = None, *, include_delayed: bool = True) -> bool:
        """Block until no queued fire is left (by default also none waiting for a retry)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            due_by = None if include_delayed else time.time()
            if self.queue.count(due_by=due_by) == 0:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def backlog(self) -> int:
        """Fires accepted and not yet handled (rows in the queue table)."""
        return self.queue.count()
