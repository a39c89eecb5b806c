"""Security of the live local API: authentication, tenant isolation, SSRF refusal.

One `serve` process with the outbound guard ON (the default): every API operation
except health answers 401 without a valid token; another user's job is 404 everywhere;
monitors created through the API that point at loopback, private, link-local or
metadata addresses are refused at fetch time and recorded as `error` runs, and the
local page server never sees a request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from pytest_httpserver import HTTPServer

pytestmark = pytest.mark.reliability

SSRF_URLS = [
    "http://127.0.0.1:{port}/secret",
    "http://localhost:{port}/secret",
    "http://[::1]:{port}/secret",
    "http://2130706433:{port}/secret",  # 127.0.0.1 as one decimal number
    "http://0x7f.0.0.1:{port}/secret",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/",
    "http://192.168.1.1/",
    "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://0.0.0.0:{port}/secret",
]


def test_auth_tenancy_and_ssrf(
    serve: Callable[..., Any],
    ls: ModuleType,
    pages: HTTPServer,
    token_for: Callable[[Any, str], str],
) -> None:
    pages.expect_request("/secret").respond_with_data("internal only")
    server = serve().start()
    bob_token = token_for(server.data_dir, "bob")
    alice = server.client()
    bob = server.client(bob_token)
    anonymous = server.client()
    anonymous.headers.pop("Authorization")

    reply = alice.post("/jobs", json=ls.monitor_body("https://example.com/", name="alice's"))
    assert reply.status_code == 201, reply.text
    job_id = reply.json()["job_id"]
    update = ls.monitor_body("https://example.com/", name="renamed")

    # 1. Every operation but health: 401 without a token and with a forged one.
    spec = httpx.get(f"{server.base}/api/v1/openapi.json").json()
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    ]
    assert ("GET", "/api/v1/health") in operations and len(operations) >= 9
    forged = server.client("sst_0123456789abcdef_" + "A" * 43)
    for method, path in operations:
        url = path.removeprefix("/api/v1").replace("{job_id}", job_id)
        body = update if method in {"POST", "PUT"} and "{job_id}" in path else None
        if method == "POST" and path.endswith("/jobs"):
            body = update
        for client in (anonymous, forged):
            reply = client.request(method, url, json=body)
            if path == "/api/v1/health":
                assert reply.status_code == 200
            else:
                assert reply.status_code == 401, (method, path, reply.status_code, reply.text)
                assert "detail" in reply.json()
    assert alice.get(f"/jobs/{job_id}").json()["name"] == "alice's"  # nothing changed

    # 2. Cross-tenant: bob cannot see, change, run or delete alice's job.
    assert [j["job_id"] for j in ls.list_all(bob, "/jobs")] == []
    for method, url, body in [
        ("GET", f"/jobs/{job_id}", None),
        ("PUT", f"/jobs/{job_id}", update),
        ("DELETE", f"/jobs/{job_id}", None),
        ("POST", f"/jobs/{job_id}/run", None),
        ("GET", f"/jobs/{job_id}/runs", None),
    ]:
        reply = bob.request(method, url, json=body)
        assert reply.status_code == 404, (method, url, reply.text)
    got = alice.get(f"/jobs/{job_id}")
    assert got.status_code == 200 and got.json()["name"] == "alice's"
    assert alice.get(f"/jobs/{job_id}/runs").json()["items"] == []

    # 3. SSRF through API-created monitors, guard ON: refused, recorded as error runs.
    ids: dict[str, str] = {}
    for template in SSRF_URLS:
        url = template.format(port=pages.port)
        reply = alice.post("/jobs", json=ls.monitor_body(url, name=f"ssrf {url}"))
        if reply.status_code == 422:  # refused at the door is refused too
            continue
        assert reply.status_code == 201, (url, reply.text)
        ids[url] = reply.json()["job_id"]
        assert alice.post(f"/jobs/{ids[url]}/run").status_code == 202
    assert len(ids) >= 8, ids

    def error_runs() -> dict[str, dict[str, Any]] | None:
        found = {}
        for url, jid in ids.items():
            runs = alice.get(f"/jobs/{jid}/runs").json()["items"]
            if not runs:
                return None
            found[url] = runs[0]
        return found

    runs = ls.wait_for(error_runs, timeout=60, interval=0.3, what="the SSRF runs")
    for url, run in runs.items():
        assert run["status"] == "error", (url, run)
        assert run["summary"].startswith("error:"), (url, run)
        assert "not allowed" in run["summary"] or "host " in run["summary"], (url, run)
    time.sleep(0.5)
    assert pages.log == [], "a blocked destination was fetched"
    assert server.interrupt() in (0, 130), server.logs()
