"""Fixtures for the consumer-runtime tests: test plugins and a local runtime on SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import Field

from serverless_scheduler_common import (
    JobFired,
    JobTypeRegistry,
    Run,
    RunContext,
    RunOutcome,
    ScheduledJob,
    Settings,
    VersionConflictError,
    hookimpl,
)
from serverless_scheduler_common.errors import NotFoundError
from serverless_scheduler_common.plugins import build_registry, get_plugin_manager
from serverless_scheduler_common.runtime.core import ConsumerRuntime
from serverless_scheduler_common.runtime.dispatcher import LocalDispatcher
from serverless_scheduler_common.runtime.jobcontrol import RepositoryJobControl
from serverless_scheduler_common.runtime.sqlite import (
    SqliteDeadLetterStore,
    SqliteFireLedger,
    SqliteFireQueue,
    SqliteRunRepository,
)


class AlphaJob(ScheduledJob):
    job_type: Literal["alpha_job"] = "alpha_job"
    fail: bool = False
    notify: list[str] = Field(default_factory=list)


class BetaJob(ScheduledJob):
    job_type: Literal["beta_job"] = "beta_job"


@dataclass(eq=False)
class AlphaPlugin:
    """Records calls; fails while `failing` is set; can block until `release` is set."""

    calls: list[str] = field(default_factory=list)
    seen: list[tuple[ScheduledJob, JobFired]] = field(default_factory=list)
    failing: bool = False
    healed: bool = False  # jobs with fail=True succeed once healed
    block: bool = False
    delay_s: float = 0.0  # each call sleeps this long (a slow consumer)
    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @hookimpl
    def serverless_scheduler_job_types(self, registry: JobTypeRegistry) -> None:
        registry.add(AlphaJob)

    @hookimpl
    def serverless_scheduler_handle_job(
        self, job: ScheduledJob, fired: JobFired, context: RunContext
    ) -> RunOutcome | None:
        assert isinstance(job, AlphaJob)
        with self.lock:
            self.calls.append(fired.fire_id)
            self.seen.append((job, fired))
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.block:
            self.entered.set()
            assert self.release.wait(10)
        if self.failing or (job.fail and not self.healed):
            raise RuntimeError(f"boom on attempt {context.attempt}")
        return RunOutcome(status="changed", summary=f"alpha ran {job.name}")


@dataclass(eq=False)
class BetaPlugin:
    calls: list[str] = field(default_factory=list)

    @hookimpl
    def serverless_scheduler_job_types(self, registry: JobTypeRegistry) -> None:
        registry.add(BetaJob)

    @hookimpl
    def serverless_scheduler_handle_job(
        self, job: ScheduledJob, fired: JobFired, context: RunContext
    ) -> RunOutcome | None:
        self.calls.append(fired.fire_id)
        return None


class MemoryJobRepository:
    """Just enough of the JobRepository Protocol for JobControl: get and update."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, job: ScheduledJob) -> None:
        self.jobs[(job.owner_id, job.job_id)] = job.snapshot()

    def get(self, owner_id: str, job_id: str) -> dict[str, Any]:
        try:
            return dict(self.jobs[(owner_id, job_id)])
        except KeyError:
            raise NotFoundError(job_id) from None

    def update(self, job: ScheduledJob, *, expected_version: int | None = None) -> ScheduledJob:
        current = self.get(job.owner_id, job.job_id)
        if expected_version is not None and current["version"] != expected_version:
            raise VersionConflictError("stale", current["version"])
        stored = job.model_copy(update={"version": current["version"] + 1})
        self.put(stored)
        return stored


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[list[str], str, str]] = []

    def notify(self, urls: Any, *, title: str, body: str, html: str | None = None) -> None:
        self.sent.append((list(urls), title, body))


def make_job(name: str = "j", **kwargs: Any) -> AlphaJob:
    return AlphaJob(
        name=name,
        owner_id="alice",
        schedule={"kind": "rate", "every": 1, "unit": "minutes"},
        **kwargs,
    )


def run_at(job_id: str, minute: int) -> Run:
    """An ok run of `job_id` started `minute` minutes after 2026-03-01 (summary `run <minute>`)."""
    when = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minute)
    return Run(
        job_id=job_id,
        fire_id=f"{job_id}@{minute}",
        scheduled_time=when,
        started_at=when,
        finished_at=when + timedelta(seconds=1),
        status="ok",
        summary=f"run {minute}",
    )


def fire_of(job: ScheduledJob, minute: int = 0) -> JobFired:
    when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
    return JobFired(
        job_type=job.job_type,
        job_id=job.job_id,
        owner_id=job.owner_id,
        scheduled_time=when,
        job=job.snapshot(),
    )


@dataclass
class LocalRig:
    settings: Settings
    db: Path
    alpha: AlphaPlugin
    beta: BetaPlugin
    runtime: ConsumerRuntime
    dispatcher: LocalDispatcher
    runs: SqliteRunRepository
    dead: SqliteDeadLetterStore
    jobs: MemoryJobRepository
    notifier: RecordingNotifier

    def runs_of(self, job: ScheduledJob) -> list[Any]:
        return self.runs.list(job.owner_id, job.job_id, limit=1000).items


def build_rig(tmp_path: Path, *, history: str | None = None, **settings: Any) -> LocalRig:
    """A dispatcher over `scheduler.db` in `tmp_path`; `history`: the name of the file
    that holds its runs and ledger instead (as a dispatch partition's history file)."""
    values: dict[str, Any] = {"max_attempts": 3, "retry_base_s": 0.01, "retry_max_s": 0.05}
    values.update(settings)
    cfg = Settings(data_dir=tmp_path, **values)
    db = tmp_path / "scheduler.db"
    alpha, beta = AlphaPlugin(), BetaPlugin()
    pm = get_plugin_manager(settings=cfg, plugins=[alpha, beta], load_entrypoints=False)
    registry = build_registry(pm)
    jobs = MemoryJobRepository()
    notifier = RecordingNotifier()
    history_db = tmp_path / history if history else db
    runs = SqliteRunRepository(history_db, retention=cfg.runs_retention)
    runtime = ConsumerRuntime(
        settings=cfg,
        pm=pm,
        registry=registry,
        runs=runs,
        # As `create_local_dispatcher` wires it: the only writer of the file's marks.
        ledger=SqliteFireLedger(history_db, sole_marker=True),
        job_control=RepositoryJobControl(jobs, registry),
        notifier=notifier,
    )
    dead = SqliteDeadLetterStore(db)
    dispatcher = LocalDispatcher(
        runtime, SqliteFireQueue(db), dead, workers=4, defer_s=0.02, poll_s=0.05
    )
    return LocalRig(cfg, db, alpha, beta, runtime, dispatcher, runs, dead, jobs, notifier)


@pytest.fixture
def rig_factory(tmp_path: Path) -> Iterator[Callable[..., LocalRig]]:
    rigs: list[LocalRig] = []

    def make(**settings: Any) -> LocalRig:
        rig = build_rig(tmp_path, **settings)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.alpha.release.set()
        rig.dispatcher.stop(drain=False, timeout=5)


@pytest.fixture
def rig(rig_factory: Callable[..., LocalRig]) -> LocalRig:
    rig = rig_factory()
    rig.dispatcher.start()
    return rig


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@pytest.fixture(name="make_job")
def _make_job_fixture() -> Callable[..., AlphaJob]:
    return make_job


@pytest.fixture(name="make_beta")
def _make_beta_fixture() -> Callable[..., BetaJob]:
    def make(name: str = "b") -> BetaJob:
        return BetaJob(
            name=name, owner_id="bob", schedule={"kind": "rate", "every": 1, "unit": "hours"}
        )

    return make


@pytest.fixture(name="fire_of")
def _fire_of_fixture() -> Callable[..., JobFired]:
    return fire_of


@pytest.fixture(name="wait_for")
def _wait_for_fixture() -> Callable[..., None]:
    return wait_for
