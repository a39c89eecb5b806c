"""Run `serverless-scheduler serve` as a real subprocess, and talk to it over loopback.

Shared by the end-to-end and reliability tests (loaded by path: test folders are not
packages). Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from werkzeug import Request, Response

TOKEN_RE = re.compile(r"sst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
HEALTH_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cli_path() -> str:
    """The `serverless-scheduler` console script of the environment running the tests."""
    script = Path(sys.executable).parent / "serverless-scheduler"
    return str(script) if script.exists() else "serverless-scheduler"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without operator settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
    env.update(extra or {})
    return env


@dataclass
class LocalServer:
    """One `serverless-scheduler serve` process on a free loopback port."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    token: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    startup_s: float = 0.0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.data_dir.parent

    def stdout_path(self) -> Path:
        return self.log_dir / f"serve-{self.starts}.out"

    def stderr_path(self) -> Path:
        return self.log_dir / f"serve-{self.starts}.err"

    def start(self) -> LocalServer:
        """Start the process and wait for /api/v1/health (keeps the first admin token)."""
        self.starts += 1
        began = time.monotonic()
        with self.stdout_path().open("wb") as out, self.stderr_path().open("wb") as err:
            self.proc = subprocess.Popen(
                [
                    cli_path(),
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    *self.args,
                ],
                stdout=out,
                stderr=err,
                env=child_env(self.env),
            )
        deadline = began + HEALTH_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"serve exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise AssertionError(f"no health within {HEALTH_TIMEOUT_S}s:\n{self.logs()}")
            time.sleep(0.1)
        self.startup_s = time.monotonic() - began
        found = self.read_token()
        if self.token is None:
            self.token = found
        return self

    def read_token(self) -> str | None:
        """The admin token printed on this start (only the first start prints one)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            match = TOKEN_RE.search(self.stdout_path().read_text(errors="replace"))
            if match:
                return match.group(0)
            if self.starts > 1:
                return None
            time.sleep(0.05)
        return None

    def logs(self) -> str:
        out = self.stdout_path().read_text(errors="replace")
        err = self.stderr_path().read_text(errors="replace")
        return f"--- stdout\n{out[-3000:]}\n--- stderr\n{err[-6000:]}"

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C: SIGINT, then wait for the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def client(self, token: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {}
        tok = token or self.token
        if tok:
            headers["Authorization"] = f"Bearer {tok}"
        return httpx.Client(base_url=f"{self.base}/api/v1", headers=headers, timeout=timeout)


def list_all(client: httpx.Client, path: str, limit: int = 100) -> list[dict[str, Any]]:
    """Every item of a paginated list (`{"items", "next_cursor"}`)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        reply = client.get(path, params=params)
        assert reply.status_code == 200, reply.text
        page = reply.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            return items


def wait_for(
    predicate: Callable[[], Any], *, timeout: float, interval: float = 0.2, what: str = ""
) -> Any:
    """Poll until `predicate()` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def monitor_body(url: str, *, name: str = "monitor", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "job_type": "html_monitor_job",
        "name": name,
        "schedule": {"kind": "rate", "every": 1, "unit": "hours"},
        "enabled": True,
        "url": url,
        "mode": "text",
    }
    body.update(extra)
    return body


class NotificationInbox:
    """A local apprise `json://` endpoint that counts what it receives (thread-safe)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    def handle(self, request: Request) -> Response:
        self.received.append(json.loads(request.get_data(as_text=True)))
        return Response("ok", status=200)

    def messages(self) -> Iterator[str]:
        for note in list(self.received):
            yield str(note.get("message", ""))
