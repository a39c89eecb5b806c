"""Serverless Scheduler's shared core: schemas, ports, settings and the plugin system."""

from __future__ import annotations

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
