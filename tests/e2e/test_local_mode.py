"""Local mode in one command: `serverless-scheduler serve` as a real process.

Health within 30 s; a scripted first monitor (API) records a baseline and then a change
with its diff; Ctrl-C (SIGINT) shuts down cleanly with a run in flight, and a restart
finds the job, its schedule and its runs, and completes the interrupted fire.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from serverless_scheduler_common.sqlite import db_path_for
from serverless_scheduler_schedulers.local_engine import LocalScheduleBackend

CLEAN_EXIT = (0, 130)


def runs_of(client: Any, job_id: str) -> list[dict[str, Any]]:
    reply = client.get(f"/jobs/{job_id}/runs")
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def run_now(client: Any, job_id: str) -> str:
    reply = client.post(f"/jobs/{job_id}/run")
    assert reply.status_code == 202, reply.text
    fire_id: str = reply.json()["fire_id"]
    return fire_id


def test_serve_first_monitor_ctrl_c_and_restart(
    serve: Callable[..., Any], ls: ModuleType, pages: HTTPServer
) -> None:
    page = {"text": "<html><body><h1>Opening hours</h1><p>Mon-Fri 9-17</p></body></html>"}
    release = threading.Event()
    fetching = threading.Event()

    def handler(request: Request) -> Response:
        if page.get("slow"):
            fetching.set()
            release.wait(10)
        return Response(page["text"], content_type="text/html")

    pages.expect_request("/hours").respond_with_handler(handler)
    server = serve(env={"SCHEDULER_ALLOW_PRIVATE_NETWORKS": "true"})

    # Health within 30 s, and the admin token printed on the first start.
    server.start()
    assert server.startup_s < ls.HEALTH_TIMEOUT_S
    assert server.token is not None, server.logs()
    assert f"http://127.0.0.1:{server.port}/" in server.stdout_path().read_text()

    with server.client() as api:
        reply = api.post("/jobs", json=ls.monitor_body(pages.url_for("/hours"), name="Hours"))
        assert reply.status_code == 201, reply.text
        job = reply.json()
        job_id = job["job_id"]

        # Baseline, then a change with a diff.
        first = run_now(api, job_id)
        baseline = ls.wait_for(
            lambda: [r for r in runs_of(api, job_id) if r["fire_id"] == first],
            timeout=20,
            what="the baseline run",
        )
        assert (baseline[0]["status"], baseline[0]["summary"]) == ("ok", "baseline recorded")

        page["text"] = "<html><body><h1>Opening hours</h1><p>Mon-Sat 8-18</p></body></html>"
        time.sleep(1.05)  # manual fires are keyed by the second
        second = run_now(api, job_id)
        changed = ls.wait_for(
            lambda: [r for r in runs_of(api, job_id) if r["fire_id"] == second],
            timeout=20,
            what="the change run",
        )[0]
        assert changed["status"] == "changed", changed
        assert "-Mon-Fri 9-17" in changed["detail"] and "+Mon-Sat 8-18" in changed["detail"]
        assert [r["fire_id"] for r in runs_of(api, job_id)] == [second, first]

        # A run in flight when Ctrl-C arrives.
        page["slow"] = True
        page["text"] = "<html><body><h1>Opening hours</h1><p>Closed</p></body></html>"
        time.sleep(1.05)
        third = run_now(api, job_id)
        assert fetching.wait(20), server.logs()

    threading.Timer(1.0, release.set).start()
    code = server.interrupt()
    assert code in CLEAN_EXIT, server.logs()
    assert "Traceback" not in server.stderr_path().read_text(), server.logs()

    # Nothing lost: the schedule is stored, and the job and its runs come back.
    page["slow"] = False
    backend = LocalScheduleBackend(db_path_for(server.data_dir))
    try:
        state = backend.get(job["owner_id"], job_id)
        assert state is not None and state.enabled and state.version == job["version"]
    finally:
        backend.close()

    server.args = ["--json-logs"]
    server.start()
    assert server.read_token() is None  # the admin token is shown once, on the first start
    with server.client() as api:
        reply = api.get(f"/jobs/{job_id}")
        assert reply.status_code == 200, reply.text
        assert reply.json()["name"] == "Hours"
        done = ls.wait_for(
            lambda: [r for r in runs_of(api, job_id) if r["fire_id"] == third],
            timeout=20,
            what="the interrupted fire's run",
        )
        assert done[0]["status"] == "changed", done
        assert "+Closed" in done[0]["detail"]
        fire_ids = [r["fire_id"] for r in runs_of(api, job_id)]
        assert fire_ids.count(third) == 1 and {first, second} <= set(fire_ids)
    assert server.interrupt() in CLEAN_EXIT, server.logs()
    # --json-logs: every log line is a JSON object.
    lines = [ln for ln in server.stderr_path().read_text().splitlines() if ln.strip()]
    assert lines, server.logs()
    assert all(isinstance(json.loads(ln), dict) for ln in lines), server.logs()
