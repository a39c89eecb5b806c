"""Fixtures of the reliability suite (the shared ones are in `tests/conftest.py`)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


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
