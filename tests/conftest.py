"""Fixtures shared by the end-to-end and reliability tests.

`ls` is `tests/e2e/local_server.py` (loaded by path: test folders are not packages),
`pages` a threaded page server on 127.0.0.1, `serve` a factory of local-mode processes.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pytest_httpserver import HTTPServer


def load_local_server() -> ModuleType:
    """`tests/e2e/local_server.py` as a module (test folders are not packages)."""
    name = "serverless_scheduler_tests_local_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).parent / "e2e" / "local_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ls() -> ModuleType:
    return load_local_server()


@pytest.fixture
def pages() -> Iterator[HTTPServer]:
    """A threaded page server on 127.0.0.1 (the checker fetches many pages at once)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


@pytest.fixture
def serve(tmp_path: Path, ls: ModuleType) -> Iterator[Callable[..., Any]]:
    """Factory of `LocalServer`s over a tmp data dir; every process is killed at the end."""
    started: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("data_dir", tmp_path / "data")
        server = ls.LocalServer(**kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.kill()
