"""Serverless Scheduler's shared core: schemas, ports, settings and the plugin system.

Names are imported lazily on first use (PEP 562), so a Lambda handler that needs one
model does not pay for importing every module of the package at cold start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import RunContext
    from .errors import (
        AlreadyExistsError,
        DuplicateJobTypeError,
        NotFoundError,
        PluginError,
        VersionConflictError,
    )
    from .events import JobChange, JobFired, fire_key
    from .hookspecs import hookimpl
    from .job import ScheduledJob
    from .plugins import (
        build_registry,
        default_registry,
        get_plugin_manager,
        job_types_from_export,
    )
    from .policy import JobPolicy
    from .registry import JobTypeRegistry
    from .runs import Run, RunOutcome, RunStatus
    from .schedule import AtSchedule, CronSchedule, RateSchedule, Schedule, next_fires
    from .settings import Settings

_WHERE = {
    "RunContext": "context",
    "AlreadyExistsError": "errors",
    "DuplicateJobTypeError": "errors",
    "NotFoundError": "errors",
    "PluginError": "errors",
    "VersionConflictError": "errors",
    "JobChange": "events",
    "JobFired": "events",
    "fire_key": "events",
    "hookimpl": "hookspecs",
    "ScheduledJob": "job",
    "build_registry": "plugins",
    "default_registry": "plugins",
    "get_plugin_manager": "plugins",
    "job_types_from_export": "plugins",
    "JobPolicy": "policy",
    "JobTypeRegistry": "registry",
    "Run": "runs",
    "RunOutcome": "runs",
    "RunStatus": "runs",
    "AtSchedule": "schedule",
    "CronSchedule": "schedule",
    "RateSchedule": "schedule",
    "Schedule": "schedule",
    "next_fires": "schedule",
    "Settings": "settings",
}

__all__ = [
    "AlreadyExistsError",
    "AtSchedule",
    "CronSchedule",
    "DuplicateJobTypeError",
    "JobChange",
    "JobFired",
    "JobPolicy",
    "JobTypeRegistry",
    "NotFoundError",
    "PluginError",
    "RateSchedule",
    "Run",
    "RunContext",
    "RunOutcome",
    "RunStatus",
    "Schedule",
    "ScheduledJob",
    "Settings",
    "VersionConflictError",
    "build_registry",
    "default_registry",
    "fire_key",
    "get_plugin_manager",
    "hookimpl",
    "job_types_from_export",
    "next_fires",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
