"""Local mode composition root: one process runs the whole system on one machine.

SQLite (one WAL file in the data directory) replaces DynamoDB, the outbox replaces the
stream, the timer engine replaces EventBridge Scheduler and the local dispatcher replaces
SNS/SQS. `build_local_system` wires the parts; `serve` runs them with uvicorn. The
dispatcher (plugins, run history) runs in a child process by default
(`SCHEDULER_DISPATCHER_PROCESS`), built there by `child_dispatcher`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

import pluggy
from fastapi import FastAPI

from serverless_scheduler_common import Run, Settings
from serverless_scheduler_common.coldstart import tune_for_throughput
from serverless_scheduler_common.events import JobChange, JobRemoved, fire_key
from serverless_scheduler_common.notify import AppriseNotifier
from serverless_scheduler_common.plugins import build_registry, get_plugin_manager
from serverless_scheduler_common.registry import JobTypeRegistry
from serverless_scheduler_common.runtime.dispatcher import LocalDispatcher, removal_row
from serverless_scheduler_common.runtime.local import create_local_dispatcher
from serverless_scheduler_common.runtime.partitions import arrange, data_files, history_files
from serverless_scheduler_common.runtime.process import (
    DispatcherProcess,
    wait_for_leftover_dispatchers,
)
from serverless_scheduler_common.runtime.sqlite import SqliteRunRepository
from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_common.state import SqliteStateStore
from serverless_scheduler_items.app import create_app
from serverless_scheduler_items.auth import SqliteTokenStore
from serverless_scheduler_items.sqlite_repository import (
    SqliteJobRepository,
    SqliteOutboxChangeFeed,
)
from serverless_scheduler_schedulers.local_engine import (
    ChangeFeedPump,
    LocalScheduleBackend,
    TimerEngine,
)

from .datadir import DataDirBusyError, hold_lock

log = logging.getLogger(__name__)

ADMIN_USER = "admin"


@dataclass
class LocalSystem:
    """Every part of local mode, wired; `start()` and `stop()` run and halt them."""

    settings: Settings
    app: FastAPI
    pm: pluggy.PluginManager
    registry: JobTypeRegistry
    repo: SqliteJobRepository
    feed: SqliteOutboxChangeFeed
    backend: LocalScheduleBackend
    engine: TimerEngine
    pump: ChangeFeedPump
    dispatcher: LocalDispatcher | DispatcherProcess
    tokens: SqliteTokenStore
    admin_token: str | None = None
    _started: bool = field(default=False, repr=False)
    _lock: IO[bytes] | None = field(default=None, repr=False)

    def lock(self) -> None:
        """Take the data directory's lock (`datadir.hold_lock`) if not held yet; raises
        `DataDirBusyError` while another process runs local mode there."""
        if self._lock is None:
            self._lock = hold_lock(self.settings.data_dir)
            # The lock file names its holder while local mode runs (`status` reads it).
            self._lock.truncate(0)
            self._lock.write(str(os.getpid()).encode())
            self._lock.flush()

    def start(self) -> None:
        """Resume from SQLite: queued fires, unapplied changes, then the timers."""
        if self._started:
            return
        held_before = self._lock is not None
        self.lock()
        try:
            if isinstance(self.dispatcher, LocalDispatcher):
                # One dispatcher in this process: every queued fire in scheduler.db (a
                # child process arranges the partitions itself), once the children of a
                # killed earlier server are done with their files.
                wait_for_leftover_dispatchers(self.settings.data_dir, time.monotonic() + 60)
                arrange(self.settings.data_dir, 1)
            self.dispatcher.start()
        except BaseException:
            if not held_before:
                self._unlock()
            raise
        applied = self.pump.drain()
        if applied:
            log.info("applied %d job changes left from the last run", applied)
        self.pump.start()
        self.engine.start()
        self._started = True
        log.info("local mode started: %d job types", len(self.registry))

    def stop(self) -> None:
        """Stop firing, apply what is pending, finish in-flight runs (the rest stays queued)."""
        if not self._started:
            return
        self.engine.stop()
        self.pump.stop()
        self.dispatcher.stop(drain=True)
        self._started = False
        self._checkpoint()
        self._unlock()
        log.info("local mode stopped")

    def _checkpoint(self) -> None:
        """Fold the write-ahead logs into `scheduler.db` (and the dispatch partitions'
        queue and history files) and empty them, so that after a clean stop the main files alone hold
        every commit (a copy of them is a backup). Idle connections of this process do
        not block it; a reader elsewhere (a `status`, an open `sqlite3` shell) may, and
        then the log stays as it is."""
        for db in data_files(self.settings.data_dir):
            try:
                conn = sqlite3.connect(db, timeout=5)
                try:
                    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                log.warning("could not fold the write-ahead log into %s: %s", db, exc)
                continue
            if busy:
                log.warning("the write-ahead log of %s is in use elsewhere: kept as it is", db)

    def _unlock(self) -> None:
        if self._lock is not None:
            self._lock.truncate(0)
            self._lock.close()
            self._lock = None


def child_dispatcher(settings: Settings, partition: tuple[int, int] = (0, 1)) -> LocalDispatcher:
    """The dispatcher of local mode as its child process builds it (installed plugins),
    for dispatch partition (index, count)."""
    configure_logging(settings)  # the same format as the parent's (`log_json`)
    db = db_path_for(settings.data_dir)
    return create_local_dispatcher(
        settings,
        jobs=SqliteJobRepository(db),
        state=SqliteStateStore(db),
        notifier=AppriseNotifier(settings),
        partition=partition,
    )


def build_local_system(settings: Settings, *, plugins: list[object] | None = None) -> LocalSystem:
    """Wire local mode over `<data_dir>/scheduler.db` with the installed plugins.

    With `settings.dispatcher_process` (the default) the dispatcher runs in a child
    process that loads the installed plugins itself; plugin objects passed in
    `plugins` cannot cross into it, so they make the dispatcher run in this process.
    On the first start (no API token yet) an admin token is created and kept in
    `admin_token` so the caller can show it once.
    """
    db = db_path_for(settings.data_dir)
    pm = get_plugin_manager(settings=settings, plugins=plugins)
    registry = build_registry(pm)
    repo = SqliteJobRepository(db)
    feed = SqliteOutboxChangeFeed(db)
    state = SqliteStateStore(db)
    dispatcher: LocalDispatcher | DispatcherProcess
    runs: SqliteRunRepository
    if settings.dispatcher_process and not plugins:
        dispatcher = DispatcherProcess(settings, child_dispatcher)
        runs = SqliteRunRepository(
            db,
            retention=settings.runs_retention,
            others=lambda: history_files(settings.data_dir),
        )
    else:
        dispatcher = create_local_dispatcher(
            settings,
            jobs=repo,
            pm=pm,
            registry=registry,
            state=state,
            notifier=AppriseNotifier(settings),
        )
        # The run adapter `create_local_dispatcher` builds over the same file.
        runs = cast(SqliteRunRepository, dispatcher.runtime.runs)
    backend = LocalScheduleBackend(db)

    def forget_job(change: JobChange) -> None:
        """Queue the deleted job's removal notice for the dispatcher, as on AWS: it
        forgets the job's run history (summaries, diffs), done marks and failure count,
        each plugin forgets its state of the job (an HTML monitor's last page text and
        change history), and fires of the job still queued or retried are dropped."""
        notice = JobRemoved.of(change) or JobRemoved(
            job_type="", job_id=change.job_id, owner_id=change.owner_id, version=change.version
        )
        dispatcher.publish_payloads([removal_row(notice)])

    def record_missed(owner_id: str, job_id: str, scheduled_time: datetime) -> None:
        now = datetime.now(UTC)
        runs.record(
            owner_id,
            Run(
                job_id=job_id,
                fire_id=fire_key(job_id, scheduled_time),
                scheduled_time=scheduled_time,
                started_at=now,
                finished_at=now,
                status="skipped",
                summary="missed: older than the catch-up window",
            ),
        )

    engine = TimerEngine(backend, dispatcher, on_missed=record_missed)
    pump = ChangeFeedPump(feed, backend, registry=registry, on_removed=forget_job)
    tokens = SqliteTokenStore(db)
    admin_token = tokens.create(ADMIN_USER) if tokens.count() == 0 else None
    app = create_app(
        settings=settings,
        repo=repo,
        runs=runs,
        publisher=dispatcher,
        state=state,
        authenticator=tokens,
        registry=registry,
        plugin_manager=pm,
        docs_assets=_docs_assets(),
    )
    return LocalSystem(
        settings=settings,
        app=app,
        pm=pm,
        registry=registry,
        repo=repo,
        feed=feed,
        backend=backend,
        engine=engine,
        pump=pump,
        dispatcher=dispatcher,
        tokens=tokens,
        admin_token=admin_token,
    )


def _docs_assets() -> Path:
    """Swagger UI's files as the `fastapi-offline` package ships them: local mode
    serves the API docs page without a CDN (a machine offline still gets the page)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (for log shippers)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def serve(
    *, host: str | None, port: int | None, data_dir: str | None, log_json: bool = False
) -> int:
    """Run local mode until Ctrl-C; in-flight runs finish, queued fires stay for next time."""
    import uvicorn

    overrides: dict[str, Any] = {}
    if host:
        overrides["host"] = host
    if port:
        overrides["port"] = port
    if data_dir:
        overrides["data_dir"] = Path(data_dir)
    if log_json:
        overrides["log_json"] = True
    settings = Settings(**overrides)
    configure_logging(settings)
    system = build_local_system(settings)
    try:
        system.lock()  # before the server binds its port: a clear refusal, no traceback
    except DataDirBusyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        listener = _listen(settings.host, settings.port)
    except OSError as exc:
        if system.admin_token:  # never shown: the next start creates and shows one
            system.tokens.revoke(system.admin_token)
        system._unlock()
        print(
            f"error: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"
            " (another program may use that port; choose another with --port N or"
            " SCHEDULER_PORT=N)",
            file=sys.stderr,
        )
        return 2
    url = f"http://{settings.host}:{settings.port}/"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # uvicorn re-raises SIGINT/SIGTERM after its shutdown, so the system must stop
        # inside the lifespan, not after `uvicorn.run` returns.
        try:
            system.start()
        except BaseException:
            # Nothing was announced: the admin token it created was never shown, so it
            # goes, and the next start creates and shows one.
            if system.admin_token:
                system.tokens.revoke(system.admin_token)
            system._unlock()
            raise
        # The engine has armed the stored jobs: freeze them and collect less often.
        tune_for_throughput()
        _announce(url, system.admin_token)  # only once it runs (the port was probed)
        try:
            yield
        finally:
            system.stop()

    system.app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        system.app, host=settings.host, port=settings.port, log_config=None, access_log=False
    )
    # uvicorn binds the port again itself, as before the probe: with the probed socket
    # handed over, the crash test's 200 monitors ran differently (every check had
    # finished before its kill -9; not analysed further).
    listener.close()
    server = uvicorn.Server(config)
    # Ctrl-C or SIGTERM is re-raised by uvicorn after its shutdown (as uvicorn.run does).
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 3


def _announce(url: str, admin_token: str | None) -> None:
    if admin_token:
        print(
            f"\nServerless Scheduler is running at {url}\n"
            f"Admin API token (shown once, keep it): {admin_token}\n"
            f"Open the web UI signed in: {url}#token={admin_token}\n"
            f"More tokens: serverless-scheduler token create --user NAME\n",
            flush=True,
        )
    else:
        print(f"\nServerless Scheduler is running at {url}\n", flush=True)


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on the server's address, bound before anything is announced
    (a port in use is a clear error, not a traceback after the banner)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)
