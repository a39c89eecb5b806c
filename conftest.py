"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from serverless_scheduler_common.plugins import default_registry


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never inherit operator settings from the environment."""
    import os

    for name in list(os.environ):
        if name.startswith("SCHEDULER_"):
            monkeypatch.delenv(name)
    yield
    default_registry.cache_clear()


@pytest.fixture(scope="session")
def second_loopback_server() -> Iterator[HTTPServer]:
    """A local server on 127.0.0.2: a loopback address like any other to the kernel,
    which SSRF tests point clients at to see them refused (each test sets its
    handlers; clear it first). 127.0.0.1 is pytest-httpserver's `httpserver`."""
    server = HTTPServer(host="127.0.0.2", port=0)
    server.start()
    yield server
    server.stop()
