"""The code samples of docs/plugins.md, run as written.

Each test takes a fenced ```python block from the guide (found by the name it defines)
and runs it, so the guide and these tests cannot drift apart: the testing sample against
a plugin that is also installed through an entry point, the notification sample against
a failing notifier, and the forget hook against what the samples stored, on both
StateStore adapters (SQLite, and DynamoDB under moto).
"""

from __future__ import annotations

import importlib
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import pytest

from serverless_scheduler_common import (
    JobFired,
    JobTypeRegistry,
    RunContext,
    RunOutcome,
    ScheduledJob,
    Settings,
    hookimpl,
)
from serverless_scheduler_common.plugins import get_plugin_manager
from serverless_scheduler_common.ports import StateStore
from serverless_scheduler_common.state import DynamoDBStateStore, SqliteStateStore
from serverless_scheduler_common.testing import RecordingNotifier, make_fire, run_fire

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
_PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)

SCHEDULE = {"kind": "rate", "every": 5, "unit": "minutes"}
WHEN = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
URLS = ["mailto://alice@example.com"]


def sample(name: str) -> dict[str, Any]:
    """Run the one python block of the guide that defines `name`; the names it defines."""
    text = DOC.read_text(encoding="utf-8")
    defines = re.compile(rf"^(?:def|class) {name}\b|^{name} =", re.MULTILINE)
    blocks = [block for block in _PYTHON_BLOCK.findall(text) if defines.search(block)]
    assert len(blocks) == 1, f"docs/plugins.md has {len(blocks)} python blocks defining {name}"
    names: dict[str, Any] = {"__name__": f"plugins_md_{name}"}
    code = compile(blocks[0], f"docs/plugins.md ({name})", "exec", dont_inherit=True)
    exec(code, names)
    return names


def inline_sample(prefix: str) -> str:
    """The one inline code span of the guide that starts with `prefix`."""
    spans: list[str] = re.findall(r"`([^`\n]+)`", DOC.read_text(encoding="utf-8"))
    found = [s for s in spans if s.startswith(prefix)]
    assert len(found) == 1, f"docs/plugins.md has {len(found)} inline samples {prefix}..."
    return found[0]


# -- the testing sample, with the plugin installed through an entry point ------------------
MY_PLUGIN = '''"""A plugin as the guide's testing section assumes it: job type `my_job`."""

from typing import Literal

from serverless_scheduler_common import JobTypeRegistry, ScheduledJob, hookimpl


class MyJob(ScheduledJob):
    job_type: Literal["my_job"] = "my_job"


@hookimpl
def serverless_scheduler_job_types(registry: JobTypeRegistry) -> None:
    registry.add(MyJob)
'''


def _write_my_plugin(site: Path, *, installed: bool) -> None:
    package = site / "my_plugin"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "plugin.py").write_text(MY_PLUGIN, encoding="utf-8")
    if installed:  # what `pip install` leaves: metadata with the entry point
        dist = site / "my_plugin-0.1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: my-plugin\nVersion: 0.1.0\n", encoding="utf-8"
        )
        (dist / "entry_points.txt").write_text(
            "[serverless_scheduler]\nmy_plugin = my_plugin.plugin\n", encoding="utf-8"
        )


@dataclass
class MyPlugin:
    module: ModuleType
    installed: bool


@pytest.fixture(params=[True, False], ids=["installed", "importable only"])
def my_plugin(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[MyPlugin]:
    """`my_plugin.plugin`, importable, and (`installed`) registered as an entry point."""
    site = tmp_path / "site-packages"
    _write_my_plugin(site, installed=request.param)
    monkeypatch.syspath_prepend(str(site))
    try:
        yield MyPlugin(importlib.import_module("my_plugin.plugin"), installed=request.param)
    finally:
        for module in [m for m in sys.modules if m.split(".")[0] == "my_plugin"]:
            del sys.modules[module]


def test_the_entry_point_loads_the_installed_plugin(my_plugin: MyPlugin) -> None:
    loaded = get_plugin_manager().get_plugin("my_plugin")
    assert (loaded is my_plugin.module) is my_plugin.installed
    if my_plugin.installed:
        # What the guide's former sample, `get_plugin_manager(plugins=[my_plugin_module])`,
        # ran into once the plugin was installed.
        with pytest.raises(ValueError, match="already registered under a different name"):
            get_plugin_manager(plugins=[my_plugin.module])


def test_the_guides_testing_sample_passes_whether_or_not_the_plugin_is_installed(
    my_plugin: MyPlugin,
) -> None:
    names = sample("test_my_type_is_registered")
    assert names["my_plugin_module"] is my_plugin.module
    names["test_my_type_is_registered"]()
    if my_plugin.installed:
        names["test_my_plugin_is_installed"]()
    else:
        with pytest.raises(AssertionError):  # it says so when the plugin is not installed
            names["test_my_plugin_is_installed"]()


# -- the notification and forget samples, on both adapters --------------------------------
@dataclass
class Backend:
    store: StateStore
    #: Everything the store holds, as (kind, namespace-and-key) pairs.
    contents: Callable[[], list[tuple[str, str]]]


@pytest.fixture(params=["sqlite", "dynamodb"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    if request.param == "sqlite":
        db = tmp_path / "scheduler.db"

        def rows() -> list[tuple[str, str]]:
            with sqlite3.connect(db) as conn:
                return [
                    (table, f"{namespace}/{key}")
                    for table in ("plugin_state", "plugin_history", "plugin_claims")
                    for namespace, key in conn.execute(f"SELECT namespace, key FROM {table}")
                ]

        yield Backend(SqliteStateStore(db), rows)
        return
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        DynamoDBStateStore.create_table(client, "state")

        def items() -> list[tuple[str, str]]:
            found = client.scan(TableName="state", ConsistentRead=True)["Items"]
            return [(item["sk"]["S"], item["pk"]["S"].replace("\x1f", "/")) for item in found]

        yield Backend(DynamoDBStateStore(client, "state"), items)


class FlakyNotifier:
    """A `Notifier` whose first `failures` sends raise (a mail server that is down); the
    sends that go through are kept by a `RecordingNotifier`."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts = 0
        self.recording = RecordingNotifier()

    def notify(
        self, urls: Sequence[str], *, title: str, body: str, html: str | None = None
    ) -> None:
        self.attempts += 1
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("mail server unavailable")
        self.recording.notify(urls, title=title, body=body, html=html)

    @property
    def bodies(self) -> list[str]:
        return [message["body"] for message in self.recording.sent]


def _example_job(job_id: str) -> ScheduledJob:
    job: ScheduledJob = sample("ExampleJob")["ExampleJob"](
        name=job_id, schedule=SCHEDULE, owner_id="alice", job_id=job_id
    )
    return job


def _context(store: StateStore, notifier: FlakyNotifier, attempt: int = 1) -> RunContext:
    return RunContext(settings=Settings(), state=store, notifier=notifier, attempt=attempt)


def test_the_notify_sample_retries_a_failed_send_and_never_loses_it(backend: Backend) -> None:
    notify_once = sample("notify_once")["notify_once"]
    notifier = FlakyNotifier(failures=2)
    job = _example_job("job1")
    fired = make_fire(job, WHEN)

    def deliver(fire: JobFired, attempt: int) -> None:
        context = _context(backend.store, notifier, attempt)
        notify_once(job, fire, context, URLS, title="Ping", body=fire.fire_id)

    for attempt in (1, 2):  # the send fails: the fire is retried, nothing is recorded
        with pytest.raises(ConnectionError):
            deliver(fired, attempt)
    assert notifier.bodies == []
    deliver(fired, 3)  # the retry sends it
    assert notifier.bodies == [fired.fire_id]
    deliver(fired, 4)  # a retry after a later step of the consumer failed: not again
    assert notifier.bodies == [fired.fire_id]
    following = make_fire(job, WHEN + timedelta(minutes=5))
    deliver(following, 1)  # the next fire notifies again
    assert notifier.bodies == [fired.fire_id, following.fire_id]
    assert notifier.attempts == 4  # two failures, then one send per fire


def test_the_forget_sample_leaves_nothing_of_a_deleted_job(backend: Backend) -> None:
    names = sample("notify_once")
    notify_once, namespace = names["notify_once"], names["NAMESPACE"]
    forget_job = sample("serverless_scheduler_forget_job")["serverless_scheduler_forget_job"]
    claim = inline_sample("state.claim(")
    notifier = FlakyNotifier(failures=0)
    store = backend.store
    jobs = [_example_job("job1"), _example_job("job2")]
    for job in jobs:
        for minutes in range(0, 60, 5):  # many fires...
            fired = make_fire(job, WHEN + timedelta(minutes=minutes))
            notify_once(job, fired, _context(store, notifier), URLS, title="Ping", body="x")
        # ...and a claim keyed as the guide says.
        assert eval(claim, {"state": store, "NAMESPACE": namespace, "job": job}) is True
    assert len(notifier.bodies) == 24
    # One record and one claim per job, however many fires it had.
    assert len(backend.contents()) == 4

    for _ in range(2):  # called again after a crash: idempotent
        forget_job(owner_id="alice", job_id="job1", job_type=jobs[0].job_type, state=store)
    forget_job(owner_id="alice", job_id="job2", job_type="other_job", state=store)

    left = backend.contents()
    assert len(left) == 2 and all(key == f"{namespace}/alice/job2" for _, key in left), left
    forget_job(owner_id="alice", job_id="job2", job_type=jobs[1].job_type, state=store)
    assert backend.contents() == []


# -- the notification sample inside the real runtime ---------------------------------------
class DocsNotifyJob(ScheduledJob):
    job_type: Literal["docs_notify_job"] = "docs_notify_job"


class NotifyingPlugin:
    """A consumer built on the guide's `notify_once` that can fail after sending."""

    def __init__(self, *, fail_after_send: int = 0) -> None:
        self.notify_once = sample("notify_once")["notify_once"]
        self.fail_after_send = fail_after_send

    @hookimpl
    def serverless_scheduler_job_types(self, registry: JobTypeRegistry) -> None:
        registry.add(DocsNotifyJob)

    @hookimpl
    def serverless_scheduler_handle_job(
        self, job: ScheduledJob, fired: JobFired, context: RunContext
    ) -> RunOutcome | None:
        if not isinstance(job, DocsNotifyJob):
            return None
        self.notify_once(job, fired, context, URLS, title="Ping", body=fired.fire_id)
        if self.fail_after_send:
            self.fail_after_send -= 1
            raise RuntimeError("a later step failed")
        return RunOutcome(status="ok", summary="notified")


@pytest.mark.parametrize(
    ("send_failures", "fail_after_send"), [(1, 0), (0, 1)], ids=["send fails", "later step fails"]
)
def test_runtime_retries_of_the_notify_sample_send_exactly_once(
    tmp_path: Path, send_failures: int, fail_after_send: int
) -> None:
    notifier = FlakyNotifier(failures=send_failures)
    plugin = NotifyingPlugin(fail_after_send=fail_after_send)
    store = SqliteStateStore(tmp_path / "state.db")
    job = DocsNotifyJob(name="ping", schedule=SCHEDULE, owner_id="alice")
    statuses = []
    for attempt in (1, 2):
        run = run_fire(
            job,
            tmp_path / "data",
            scheduled_time=WHEN,
            plugins=[plugin],
            state=store,
            notifier=notifier,
            attempt=attempt,
        )
        statuses.append(run.status)
    assert statuses == ["error", "ok"]
    assert notifier.bodies == [make_fire(job, WHEN).fire_id]
