"""Load: 2,000 monitors in compressed time plus API traffic from a second process.

Local mode is wired in this process (`build_local_system`) and served by uvicorn on a
loopback port. The timer engine is rebuilt around a publisher that measures hand-off
lateness before passing each batch to the real dispatcher. Time is compressed through
the engine's own API: once everything runs, the monitors' rate schedules are re-armed
with a 15 s period (`LocalScheduleBackend.upsert_many(period_s=)`) with anchors spread
over one period, and after a 30 s window the engine stops so the dispatcher can finish.
A second process hammers the API over loopback meanwhile. Expected: every API answer is
a success, no fire is missed, the engine keeps up (hand-off lateness stays far below the
period), and every fire becomes an `ok` run of the HTML checker.

Lateness here is a behaviour check, not a speed target: the engine's targets are measured
by `benchmarks/engine.py`. One stall of a shared machine delays a whole second's batch
(about 130 fires, 3 % of the window), so the median carries the tight bound and the
99th percentile only says that no batch waited anywhere near a period.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from serverless_scheduler_common import JobFired, Settings
from serverless_scheduler_common.sqlite import db_path_for

pytestmark = pytest.mark.reliability

MONITORS = 2000
PERIOD_S = 15.0
WINDOW_S = 30.0
#: Hand-off lateness bounds. Here the median is about 10 ms and the p99 under 100 ms; a
#: shared machine's stall can delay one second's batch by most of a second.
LATENESS_P50_BOUND_S = 0.25
LATENESS_P99_BOUND_S = 3.0
#: Time from taking the base to the window's first fire (arming 2,000 schedules takes
#: about 0.2 s here; the base is a whole second, so the lead is 3-4 s).
LEAD_S = 4

TRAFFIC = r"""
import json, sys, threading, time, httpx
base, token, page, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
codes, errors = {}, []
lock = threading.Lock()
deadline = time.monotonic() + seconds

def worker(n):
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer " + token}, timeout=30) as c:
        i = 0
        while time.monotonic() < deadline:
            i += 1
            try:
                kind = i % 5
                if kind == 0:
                    r = c.post("/jobs", json={"job_type": "html_monitor_job", "name": f"t{n}-{i}",
                        "schedule": {"kind": "rate", "every": 1, "unit": "hours"}, "url": page})
                    if r.status_code == 201:
                        jid = r.json()["job_id"]
                        r2 = c.put(f"/jobs/{jid}", json={"job_type": "html_monitor_job",
                            "name": f"t{n}-{i}b", "schedule": {"kind": "rate", "every": 2,
                            "unit": "hours"}, "url": page, "enabled": False})
                        with lock:
                            codes[str(r2.status_code)] = codes.get(str(r2.status_code), 0) + 1
                elif kind == 1:
                    r = c.get("/jobs", params={"limit": 50})
                elif kind == 2:
                    r = c.get("/job_types")
                elif kind == 3:
                    r = c.get("/jobs", params={"limit": 5})
                    items = r.json()["items"]
                    if items:
                        r = c.get(f"/jobs/{items[0]['job_id']}/runs")
                else:
                    r = c.get("/health")
                with lock:
                    codes[str(r.status_code)] = codes.get(str(r.status_code), 0) + 1
            except Exception as exc:
                with lock:
                    errors.append(repr(exc)[:200])

threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"codes": codes, "errors": errors[:5], "n_errors": len(errors)}))
"""


class MeasuringPublisher:
    """Records hand-off lateness of every fire, then forwards the batch."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.lateness: list[float] = []
        self.fire_ids: list[str] = []

    def publish(self, fired: JobFired) -> None:
        self.publish_many([fired])

    def publish_many(self, fires: Sequence[JobFired]) -> None:
        now = time.time()
        for fired in fires:
            self.lateness.append(now - fired.scheduled_time.timestamp())
            self.fire_ids.append(fired.fire_id)
        self._inner.publish_many(fires)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_2000_monitors_compressed_time_with_api_traffic(
    tmp_path: Path, ls: ModuleType, pages: HTTPServer
) -> None:
    import uvicorn

    from serverless_scheduler.local import build_local_system
    from serverless_scheduler_schedulers.local_engine import TimerEngine

    pages.expect_request("/watched").respond_with_data(
        "<html><body><p>steady content</p></body></html>", content_type="text/html"
    )
    page_url = pages.url_for("/watched")
    settings = Settings(
        data_dir=tmp_path / "data", allow_private_networks=True, log_level="WARNING"
    )
    system = build_local_system(settings)
    token = system.admin_token
    assert token

    # 2,000 monitors through the repository (the API's store), hourly for now.
    jobs = []
    for i in range(MONITORS):
        job = system.registry.parse_job(
            {
                "job_type": "html_monitor_job",
                "owner_id": "admin",
                "name": f"load {i}",
                "url": page_url,
                "schedule": {"kind": "rate", "every": 1, "unit": "hours"},
            }
        )
        jobs.append(system.repo.create(job))
    assert system.pump.drain() >= MONITORS
    measuring = MeasuringPublisher(system.dispatcher)
    system.engine = TimerEngine(system.backend, measuring)

    port = ls.free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            system.app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    system.start()
    thread.start()
    try:
        ls.wait_for(lambda: server.started, timeout=30, interval=0.05, what="uvicorn")
        traffic = subprocess.Popen(
            [
                sys.executable,
                "-c",
                TRAFFIC,
                f"http://127.0.0.1:{port}/api/v1",
                token,
                page_url,
                str(WINDOW_S),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ls.child_env(),
        )
        # Compressed time, once everything runs (a slow start-up cannot make the first
        # fires late): the schedules re-armed with a 15 s period, anchors spread over one
        # period from a base a few seconds ahead; the running engine hears of the upsert.
        base = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_S)
        rearmed = [
            job.model_copy(
                update={
                    "schedule": job.schedule.model_copy(
                        update={"start_at": base + timedelta(seconds=i % int(PERIOD_S))}
                    )
                }
            )
            for i, job in enumerate(jobs)
        ]
        assert system.backend.upsert_many(rearmed, period_s=PERIOD_S) == MONITORS
        armed_at = time.time()
        window_end = base.timestamp() + WINDOW_S
        time.sleep(max(window_end - time.time(), 0) + 1.5)
        system.engine.stop()  # no fires after the window: the dispatcher can finish
        out, err = traffic.communicate(timeout=60)
        assert traffic.returncode == 0, err
        report = json.loads(out)
        assert system.dispatcher.wait_idle(timeout=90), "the dispatcher did not catch up"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        system.stop()
    assert armed_at < base.timestamp(), ("arming overran the lead", armed_at - base.timestamp())

    # API: only successes, and plenty of them.
    assert report["n_errors"] == 0, report
    codes = {int(k): v for k, v in report["codes"].items()}
    assert all(200 <= code < 300 for code in codes), codes
    assert sum(codes.values()) >= 200, codes

    # Engine: every fire of the window handed over, none missed, lateness within target.
    in_window = [
        lat
        for lat, fid in zip(measuring.lateness, measuring.fire_ids, strict=True)
        if lat >= 0
        and datetime.strptime(fid.rsplit("@", 1)[1], "%Y-%m-%dT%H:%M:%SZ")
        .replace(tzinfo=UTC)
        .timestamp()
        < window_end
    ]
    expected = MONITORS * int(WINDOW_S / PERIOD_S)
    assert len(in_window) == expected, (len(in_window), expected)
    assert system.engine.stats.missed == 0
    p50, p99 = _pct(in_window, 0.5), _pct(in_window, 0.99)
    assert p50 <= LATENESS_P50_BOUND_S and p99 <= LATENESS_P99_BOUND_S, (p50, p99)

    # Dispatcher + checker: every handed-over fire is an ok run (baseline, then unchanged).
    conn = sqlite3.connect(db_path_for(settings.data_dir), timeout=30)
    try:
        rows = conn.execute("SELECT data FROM runs").fetchall()
    finally:
        conn.close()
    statuses: dict[str, int] = {}
    fires = set()
    for (data,) in rows:
        run = json.loads(data)
        statuses[run["status"]] = statuses.get(run["status"], 0) + 1
        fires.add(run["fire_id"])
    assert set(measuring.fire_ids) <= fires
    assert statuses.get("error", 0) == 0 and statuses.get("skipped", 0) == 0, statuses
