"""Test helpers for plugin authors: fire a job through the real runtime in one line.

In a plugin's tests (or its conftest.py)::

    from serverless_scheduler_common.testing import fire_job  # noqa: F401  (the fixture)

    def test_my_job(fire_job):
        run = fire_job(MyJob(name="x", schedule={"kind": "rate", "every": 5}))
        assert run.status == "ok"

`fire_job` builds the plugin manager from the installed plugins (plus any passed in
`plugins=`), runs the fire through `ConsumerRuntime` (the code the local dispatcher and
the Lambda consumer use) with SQLite stores in a temporary directory, and returns the
recorded `Run`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from .events import JobFired
from .job import ScheduledJob
from .plugins import build_registry, get_plugin_manager
from .ports import Notifier, StateStore
from .runs import Run
from .runtime.core import ConsumerRuntime
from .runtime.sqlite import SqliteFireLedger, SqliteRunRepository
from .settings import Settings
from .sqlite import db_path_for

FireJob = Callable[..., Run]


class RecordingNotifier:
    """A `Notifier` that keeps what it was asked to send; set `fail_next` to N to make
    the next N sends raise (a notification service that is down)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_next = 0

    def notify(
        self,
        urls: Sequence[str],
        *,
        title: str,
        body: str,
        html: str | None = None,
        positions: Sequence[int] | None = None,
    ) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("notification service down")
        self.sent.append({"urls": list(urls), "title": title, "body": body, "html": html})


def make_fire(
    job: ScheduledJob, scheduled_time: datetime | None = None, *, manual: bool = False
) -> JobFired:
    """The `JobFired` the scheduler would publish for `job` at `scheduled_time` (now)."""
    when = scheduled_time or datetime.now(UTC).replace(microsecond=0)
    return JobFired(
        job_type=job.job_type,
        job_id=job.job_id,
        owner_id=job.owner_id,
        scheduled_time=when,
        job=job.snapshot(),
        manual=manual,
    )


def run_fire(
    job: ScheduledJob,
    data_dir: Path,
    *,
    scheduled_time: datetime | None = None,
    plugins: Sequence[object] = (),
    settings: Settings | None = None,
    state: StateStore | None = None,
    notifier: Notifier | None = None,
    attempt: int = 1,
) -> Run:
    """Run one fire of `job` through the real runtime; returns the recorded run."""
    settings = settings or Settings(data_dir=data_dir)
    pm = get_plugin_manager(settings=settings)
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    db = db_path_for(data_dir)
    runtime = ConsumerRuntime(
        settings=settings,
        pm=pm,
        registry=build_registry(pm),
        runs=SqliteRunRepository(db),
        ledger=SqliteFireLedger(db),
        state=state,
        notifier=notifier,
    )
    fired = make_fire(job, scheduled_time)
    result = runtime.handle(fired, attempt=attempt)
    if result.run is None:
        raise AssertionError(f"fire {fired.fire_id} produced no run ({result.disposition})")
    return result.run


@pytest.fixture
def fire_job(tmp_path: Path) -> FireJob:
    """`fire_job(job, **options) -> Run`: one fire through the real runtime (see `run_fire`)."""

    def fire(job: ScheduledJob, **options: Any) -> Run:
        return run_fire(job, tmp_path / "scheduler-data", **options)

    return fire
