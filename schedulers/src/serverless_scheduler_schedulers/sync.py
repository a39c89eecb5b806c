"""The sync core: turn one `JobChange` into at most one schedule operation.

Pure Python over the `ScheduleBackend` port, shared by the DynamoDB stream Lambda and
the local change-feed pump. Decisions:

* insert/modify of an enabled job -> upsert (create or fully replace);
* insert/modify of a disabled job -> upsert in the DISABLED state ("pause"). The
  schedule is kept rather than removed because it carries the job version: a stale,
  re-delivered "enabled" change that arrives after the pause is then recognised as stale
  and cannot resurrect the schedule, and resuming is a plain state flip;
* remove -> delete (deleting a missing schedule is success);
* any change whose `version` is not newer than the version the schedule carries is a
  no-op, so duplicate, stale and out-of-order deliveries are harmless.

Within one batch `apply_changes` lets the newest change per job supersede older ones,
so a batch gives the same end state in any order and when delivered twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict

from serverless_scheduler_common.events import JobChange
from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.ports import ScheduleBackend
from serverless_scheduler_common.registry import JobTypeRegistry

log = logging.getLogger(__name__)

Action = Literal["upsert", "pause", "delete", "stale"]


class SnapshotJob(ScheduledJob):
    """A job whose plugin is not installed here: base fields validated, the rest kept.

    The schedulers do not need a plugin's classes (they are not in the schedulers
    Lambda); type-specific fields ride along untouched into the fire payload.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)


def job_from_snapshot(
    data: Mapping[str, Any], registry: JobTypeRegistry | None = None
) -> ScheduledJob:
    """Parse a job snapshot with its plugin class when known, else as a `SnapshotJob`.

    Raises pydantic's ValidationError (naming the field) for a malformed snapshot.
    """
    job_type = data.get("job_type")
    if registry is not None and isinstance(job_type, str) and job_type in registry:
        return registry.parse_job(data)
    return SnapshotJob.model_validate(dict(data))


@dataclass(frozen=True)
class SyncResult:
    """What `apply_change` did for one change."""

    owner_id: str
    job_id: str
    version: int
    action: Action


class ChangeError(Exception):
    """One change could not be applied; `index` is its position in the batch."""

    def __init__(self, index: int, change: JobChange | None, cause: BaseException) -> None:
        super().__init__(f"change #{index} failed: {cause}")
        self.index = index
        self.change = change
        self.cause = cause


def decide(change: JobChange, current_version: int | None) -> Action:
    """The operation for `change` given the version the schedule carries (None: none)."""
    if change.kind == "remove":
        # A remove carries the version the job had when deleted: it beats an upsert of
        # that same version, and only a newer schedule makes it stale.
        if current_version is not None and change.version < current_version:
            return "stale"
        return "delete"
    if current_version is not None and change.version <= current_version:
        return "stale"
    assert change.new is not None  # guaranteed by JobChange's validator
    return "upsert" if change.new.get("enabled", True) else "pause"


def apply_change(
    change: JobChange,
    backend: ScheduleBackend,
    registry: JobTypeRegistry | None = None,
) -> SyncResult:
    """Apply one change to `backend` if it is newer than the schedule; idempotent."""
    state = backend.get(change.owner_id, change.job_id)
    action = decide(change, state.version if state is not None else None)
    if action == "delete":
        tombstone = getattr(backend, "delete_at_version", None)
        if tombstone is not None:  # backends that can remember deletes stay ordered
            tombstone(change.owner_id, change.job_id, change.version)
        else:
            backend.delete(change.owner_id, change.job_id)
    elif action in ("upsert", "pause"):
        assert change.new is not None
        job = job_from_snapshot(change.new, registry)
        if job.owner_id != change.owner_id or job.job_id != change.job_id:
            raise ValueError(
                f"new image names {job.owner_id}/{job.job_id}, "
                f"but the change is for {change.owner_id}/{change.job_id}"
            )
        backend.upsert(job)
    log.debug("sync %s/%s v%d: %s", change.owner_id, change.job_id, change.version, action)
    return SyncResult(change.owner_id, change.job_id, change.version, action)


def _rank(change: JobChange) -> tuple[int, bool]:
    """Order of changes of one job: by version, a remove after an upsert of its version."""
    return (change.version, change.kind == "remove")


def superseded(changes: Sequence[JobChange]) -> list[bool]:
    """For each change, whether a newer change of the same job sits in the batch."""
    newest: dict[tuple[str, str], tuple[int, bool]] = {}
    for change in changes:
        key = (change.owner_id, change.job_id)
        rank = _rank(change)
        if key not in newest or rank > newest[key]:
            newest[key] = rank
    out: list[bool] = []
    seen_newest: set[tuple[str, str]] = set()
    for change in changes:
        key = (change.owner_id, change.job_id)
        if _rank(change) < newest[key] or key in seen_newest:
            out.append(True)
        else:
            out.append(False)
            seen_newest.add(key)
    return out


@dataclass
class BatchResult:
    """Outcome of a batch: results of the applied changes and the first failure."""

    results: list[SyncResult] = field(default_factory=list)
    failure: ChangeError | None = None

    @property
    def applied(self) -> int:
        return len(self.results)


def apply_changes(
    changes: Iterable[JobChange],
    backend: ScheduleBackend,
    registry: JobTypeRegistry | None = None,
    *,
    stop_on_error: bool = True,
) -> BatchResult:
    """Apply a batch in order; a change superseded by a newer one in the batch is skipped.

    With `stop_on_error` the batch stops at the first failure (callers that must keep
    per-job order, like a stream shard, resume from `failure.index`).
    """
    batch = list(changes)
    skip = superseded(batch)
    out = BatchResult()
    for index, (change, is_old) in enumerate(zip(batch, skip, strict=True)):
        if is_old:
            out.results.append(SyncResult(change.owner_id, change.job_id, change.version, "stale"))
            continue
        try:
            out.results.append(apply_change(change, backend, registry))
        except Exception as exc:  # one bad change must not hide the others
            log.warning(
                "sync of %s/%s v%d failed: %s", change.owner_id, change.job_id, change.version, exc
            )
            if out.failure is None:
                out.failure = ChangeError(index, change, exc)
            if stop_on_error:
                break
    return out
