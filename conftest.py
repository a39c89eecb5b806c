"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
