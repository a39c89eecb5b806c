"""Fixtures of the reliability suite: `serve` processes, a threaded page server, tokens.

The helpers live in `tests/e2e/local_server.py`, loaded by path (test folders are not
packages).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pytest_httpserver import HTTPServer


def load_local_server() -> ModuleType:
    name = "serverless_scheduler_tests_local_server"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "e2e" / "local_server.py"
    spec = importlib.util.spec_from_file_location(name, path)
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
    """A threaded page server on 127.0.0.1."""
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


def create_token(ls: ModuleType, data_dir: Path, user: str) -> str:
    """`serverless-scheduler token create --user USER` (prints the token once)."""
    out = subprocess.run(
        [ls.cli_path(), "token", "create", "--user", user, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=ls.child_env(),
        timeout=60,
        check=True,
    ).stdout
    match = ls.TOKEN_RE.search(out)
    assert match, out
    return match.group(0)


@pytest.fixture
def token_for(ls: ModuleType) -> Callable[[Path, str], str]:
    return lambda data_dir, user: create_token(ls, data_dir, user)
