"""Fixtures of the browser tests: local mode served by uvicorn, Chromium via Playwright.

The system under test is local mode (SQLite stores, dispatcher, plugins) behind the real
FastAPI app on 127.0.0.1 and a free port; the pages the monitors watch are served by
pytest-httpserver, which is why `allow_private_networks` is on.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from serverless_scheduler_common import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the tests save screenshots: a temporary folder, so a test run leaves the
    checkout as it was; `UPDATE_SCREENSHOTS=1` writes the ones the docs show instead."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        return DOCS_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveSystem:
    """A running local-mode system: where it listens and how to call its API."""

    base_url: str
    admin_token: str
    other_token: str  # another user's ("mallory")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        return httpx.request(
            method, f"{self.base_url}/api/v1{path}", headers=headers, timeout=10, **kwargs
        )

    def wait_for_runs(self, job_id: str, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            runs = self.api("GET", f"/jobs/{job_id}/runs").json()["items"]
            finished = [r for r in runs if r.get("finished_at")]
            if len(finished) >= count:
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} has {len(finished)} runs, wanted {count}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def live_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    import uvicorn

    from serverless_scheduler.local import build_local_system

    data_dir = tmp_path_factory.mktemp("ui-data")
    settings = Settings(
        data_dir=data_dir,
        allow_private_networks=True,
        max_attempts=1,
        dispatcher_workers=2,
    )
    system = build_local_system(settings)
    assert system.admin_token, "a fresh data directory gets an admin token"
    system.start()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(system.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield LiveSystem(
            base_url=f"http://127.0.0.1:{port}",
            admin_token=system.admin_token,
            other_token=system.tokens.create("mallory"),
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        system.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 860}, locale="en-GB", timezone_id="UTC"
    )
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg.dialogs = []  # type: ignore[attr-defined]
    pg.console_errors = []  # type: ignore[attr-defined]

    def on_dialog(dialog: Any) -> None:
        pg.dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()

    pg.on("dialog", on_dialog)

    def on_console(msg: Any) -> None:
        # Chromium logs every 4xx answer (config.json in local mode, a rejected token);
        # those are expected. Script errors are not.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            pg.console_errors.append(msg.text)  # type: ignore[attr-defined]

    pg.on("console", on_console)
    pg.on("pageerror", lambda exc: pg.console_errors.append(str(exc)))  # type: ignore[attr-defined]
    try:
        yield pg
    finally:
        context.close()
