"""`JobControl` over any `JobRepository` (local mode: the SQLite jobs store)."""

from __future__ import annotations

import logging

from ..errors import NotFoundError, VersionConflictError
from ..job import utcnow
from ..ports import JobRepository
from ..registry import JobTypeRegistry

log = logging.getLogger(__name__)


class RepositoryJobControl:
    """Pauses a job with `get` + `update(enabled=False)` and an expected version.

    The update goes through the repository, so it bumps `version` and reaches the
    change feed: the schedule is disabled like after any user edit.
    """

    def __init__(self, jobs: JobRepository, registry: JobTypeRegistry) -> None:
        self._jobs = jobs
        self._registry = registry

    def pause(self, owner_id: str, job_id: str, reason: str) -> bool:
        for _ in range(3):
            try:
                data = self._jobs.get(owner_id, job_id)
            except NotFoundError:
                return False
            job = self._registry.parse_job(data)
            if not job.enabled:
                return True
            paused = job.model_copy(update={"enabled": False, "updated_at": utcnow()})
            try:
                self._jobs.update(paused, expected_version=job.version)
            except VersionConflictError:
                continue  # edited meanwhile: read again
            except NotFoundError:
                return False
            log.warning("paused job %s/%s: %s", owner_id, job_id, reason)
            return True
        return False
