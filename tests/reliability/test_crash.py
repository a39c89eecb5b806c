"""Crash: `kill -9` of local mode in the middle of 200 monitor runs, then a restart.

The monitors watch local pages and notify a local apprise `json://` endpoint. After a
baseline round, every page changes and every monitor is run; the process is SIGKILLed
while those runs are going (and right after more jobs were accepted). After a restart:
no job and no schedule is lost, every fire is completed (or re-run), and no fire that
had completed before the kill notifies a second time. Notifications are at least once:
only a fire in flight at the kill may notify twice (sent, then killed before recording it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from serverless_scheduler_common.runtime.partitions import existing_partitions, history_files
from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_schedulers.local_engine import LocalScheduleBackend

pytestmark = pytest.mark.reliability

MONITORS = 200
LATE_JOBS = 10
WORKERS = 8


def runs_by_fire(db: Path) -> dict[str, list[str]]:
    """fire_id -> statuses of its recorded runs (read straight from the SQLite files:
    `scheduler.db` and, with several dispatcher processes, their history files)."""
    rows: list[tuple[str]] = []
    for path in history_files(db.parent):
        conn = sqlite3.connect(path, timeout=30)
        try:
            rows += conn.execute("SELECT data FROM runs").fetchall()
        except sqlite3.OperationalError:  # a partition that has recorded nothing yet
            pass
        finally:
            conn.close()
    found: dict[str, list[str]] = {}
    for (data,) in rows:
        run = json.loads(data)
        found.setdefault(run["fire_id"], []).append(run["status"])
    return found


@pytest.mark.parametrize("processes", [1, 2], ids=["one-dispatcher", "two-dispatchers"])
def test_sigkill_mid_run_loses_nothing_and_notifies_once(
    serve: Callable[..., Any], ls: ModuleType, pages: HTTPServer, processes: int
) -> None:
    state = {"version": 1, "delay": 0.0}
    inbox = ls.NotificationInbox()
    lock = threading.Lock()

    def page(request: Request) -> Response:
        if state["delay"]:
            time.sleep(state["delay"])
        number = request.path.rsplit("/", 1)[1]
        return Response(
            f"<html><body><p>page {number}</p><p>version {state['version']}</p></body></html>",
            content_type="text/html",
        )

    def notify(request: Request) -> Response:
        with lock:
            return inbox.handle(request)  # type: ignore[no-any-return]

    pages.expect_request("/notify", method="POST").respond_with_handler(notify)
    for i in range(MONITORS):
        pages.expect_request(f"/p/{i}").respond_with_handler(page)
    notify_url = f"json://127.0.0.1:{pages.port}/notify"
    server = serve(
        env={
            "SCHEDULER_ALLOW_PRIVATE_NETWORKS": "true",
            "SCHEDULER_DISPATCHER_WORKERS": str(WORKERS),
            # Two: each keeps its queue and runs in a file of its own.
            "SCHEDULER_DISPATCHER_PROCESSES": str(processes),
            "SCHEDULER_LOG_LEVEL": "WARNING",
        }
    ).start()
    db = db_path_for(server.data_dir)

    with server.client() as api:
        jobs: dict[str, str] = {}  # job_id -> page url
        for i in range(MONITORS):
            url = pages.url_for(f"/p/{i}")
            reply = api.post("/jobs", json=ls.monitor_body(url, name=f"p{i}", notify=[notify_url]))
            assert reply.status_code == 201, reply.text
            jobs[reply.json()["job_id"]] = url

        # Round 1: baselines (no notification).
        first = {jid: api.post(f"/jobs/{jid}/run").json()["fire_id"] for jid in jobs}
        ls.wait_for(
            lambda: all(f in runs_by_fire(db) for f in first.values()),
            timeout=60,
            interval=0.3,
            what="the baseline round",
        )
        assert inbox.received == []

        # Round 2: every page changes; kill -9 while the checks are running.
        state["version"], state["delay"] = 2, 0.05
        time.sleep(1.05)  # manual fires are keyed by the second
        second: dict[str, str] = {}
        for jid in jobs:
            reply = api.post(f"/jobs/{jid}/run")
            assert reply.status_code == 202, reply.text
            second[jid] = reply.json()["fire_id"]
        late: list[str] = []
        for i in range(LATE_JOBS):
            body = ls.monitor_body(f"https://example.com/late/{i}", name=f"late {i}")
            reply = api.post("/jobs", json=body)
            assert reply.status_code == 201, reply.text
            late.append(reply.json()["job_id"])
        ls.wait_for(lambda: len(inbox.received) >= 20, timeout=60, what="round 2 under way")
    server.kill()
    assert [p.name for p in existing_partitions(server.data_dir)][1:] == [
        f"dispatch-{i}.db" for i in range(processes) if processes > 1
    ]
    assert [p.name for p in history_files(server.data_dir)][1:] == [
        f"history-{i}.db" for i in range(processes) if processes > 1
    ]
    completed_before = {f for f, statuses in runs_by_fire(db).items() if "changed" in statuses}
    notified_before = len(inbox.received)
    assert set(second.values()) - completed_before, "the kill came after every run had finished"

    # Restart: the unfinished fires run again, the late jobs get their schedules.
    state["delay"] = 0.0
    server.start()
    ls.wait_for(
        lambda: all("changed" in runs_by_fire(db).get(f, []) for f in second.values()),
        timeout=90,
        interval=0.5,
        what="every fire of round 2 to complete",
    )
    time.sleep(1.0)  # room for any (wrong) duplicate notification to arrive

    with server.client() as api:
        listed = {j["job_id"] for j in ls.list_all(api, "/jobs")}
        assert listed == set(jobs) | set(late), "a job was lost"
        owner = api.get(f"/jobs/{next(iter(jobs))}").json()["owner_id"]
    backend = LocalScheduleBackend(db)
    try:
        schedules = {s.job_id: s for s in backend.list() if s.owner_id == owner}
    finally:
        backend.close()
    assert set(schedules) == set(jobs) | set(late), "a schedule was lost"
    assert all(s.enabled for s in schedules.values())

    runs = runs_by_fire(db)
    for jid, fire in second.items():
        assert "changed" in runs[fire], (jid, runs[fire])
        assert "error" not in runs[fire], (jid, runs[fire])

    # The notification body starts with the page's URL (one changed fire per page here).
    per_page = Counter(str(note["message"]).split("\n", 1)[0] for note in inbox.received)
    assert set(per_page) == set(jobs.values()), "a notification was lost"
    for jid, fire in second.items():
        if fire in completed_before:
            assert per_page[jobs[jid]] == 1, (jid, "completed before the kill")
    # Only a check in flight at the kill (one per worker at most) may notify twice.
    twice = [page for page, n in per_page.items() if n > 1]
    assert max(per_page.values()) <= 2 and len(twice) <= WORKERS * processes, (
        notified_before,
        twice,
    )
    assert server.interrupt() in (0, 130), server.logs()
