"""Errors the ports raise; services map them to HTTP statuses or batch failures."""

from __future__ import annotations


class SchedulerError(Exception):
    """Base of the project's own errors."""


class NotFoundError(SchedulerError):
    """The job (or schedule) does not exist for this owner."""


class AlreadyExistsError(SchedulerError):
    """A create would overwrite an existing item."""


class VersionConflictError(SchedulerError):
    """The stored version is not the one the caller expected."""

    def __init__(self, message: str, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class DuplicateJobTypeError(SchedulerError):
    """Two plugins register the same job_type."""


class PluginError(SchedulerError):
    """A plugin failed to load or is malformed."""
