"""A `kill -9` of local mode loses no accepted fire: they run after the restart."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from serverless_scheduler_common import Settings
from serverless_scheduler_common.runtime.local import create_local_dispatcher

PLUGIN = '''
"""A slow consumer for the crash test."""
import time
from typing import Literal
from serverless_scheduler_common import RunOutcome, ScheduledJob, hookimpl

class CrashJob(ScheduledJob):
    job_type: Literal["crash_job"] = "crash_job"

@hookimpl
def serverless_scheduler_job_types(registry):
    registry.add(CrashJob)

@hookimpl
def serverless_scheduler_handle_job(job, fired, context):
    if not isinstance(job, CrashJob):
        return None
    time.sleep(0.02)
    return RunOutcome(status="ok", summary="ran")
'''

CHILD = """
import sys, time
from datetime import UTC, datetime, timedelta
from pathlib import Path
sys.path.insert(0, sys.argv[2])
import crashplug
from serverless_scheduler_common import JobFired, Settings
from serverless_scheduler_common.runtime.local import create_local_dispatcher

dispatcher = create_local_dispatcher(Settings(data_dir=Path(sys.argv[1])), plugins=[crashplug], workers=4)
dispatcher.start()
t0 = datetime(2026, 1, 1, tzinfo=UTC)
for i in range(40):
    job = crashplug.CrashJob(job_id=f"job{i}", owner_id="alice", name="c",
                             schedule={"kind": "rate", "every": 1, "unit": "minutes"})
    dispatcher.publish_many([
        JobFired(job_type="crash_job", job_id=job.job_id, owner_id="alice",
                 scheduled_time=t0 + timedelta(minutes=m), job=job.snapshot())
        for m in range(5)
    ])
print("accepted", flush=True)
time.sleep(60)
"""


@pytest.mark.reliability
def test_kill_minus_nine_loses_no_accepted_fire(tmp_path: Path) -> None:
    (tmp_path / "crashplug.py").write_text(textwrap.dedent(PLUGIN))
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "accepted"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)

    spec = importlib.util.spec_from_file_location("crashplug", tmp_path / "crashplug.py")
    assert spec is not None and spec.loader is not None
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    dispatcher = create_local_dispatcher(Settings(data_dir=data), plugins=[plugin], workers=4)
    unfinished = dispatcher.queue.count()
    assert unfinished > 0  # the kill really interrupted the work
    dispatcher.start()
    try:
        assert dispatcher.wait_idle(timeout=60)
    finally:
        dispatcher.stop(drain=True, timeout=10)
    assert dispatcher.queue.count() == 0
    ran: Counter[str] = Counter()
    for i in range(40):
        runs = dispatcher.runtime.runs.list("alice", f"job{i}", limit=100).items
        assert {r.status for r in runs} <= {"ok", "skipped"}
        ran.update(r.fire_id for r in runs)
    assert len(ran) == 200  # every accepted fire has its run
    # at-least-once: only fires in flight at the kill may have run twice
    assert sum(count - 1 for count in ran.values()) <= 4
