"""What the runtime hands a plugin consumer along with each fire."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .ports import Notifier, StateStore
from .settings import Settings


@dataclass
class RunContext:
    """Services a consumer may use; the runtime owns retries and run history."""

    settings: Settings
    state: StateStore | None = None
    notifier: Notifier | None = None
    attempt: int = 1
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("plugin"))
    extras: dict[str, Any] = field(default_factory=dict)
