"""The reconciler: compare every job with every schedule and repair drift both ways.

missing schedule -> create; orphan schedule (no job) -> delete; stale schedule (version,
state or definition differ, e.g. edited behind the system's back) -> update. One-off
`at` jobs whose time has passed are done, not missing (EventBridge deletes them after
firing). Works with any `ScheduleBackend`; backends may offer `matches(job, state)` to
compare full definitions, `is_past_at(job)` to recognise finished one-offs and
`job_type_of(state)` to name the job type a schedule fires.

An orphan schedule is what is left of a job whose deletion never synced (the change
went to the sync failures queue, say), so its removal notice was never sent either:
the reconciler announces it (`JobRemoved`, through `announce_removed`) before deleting
the schedule, and the job's plugin forgets its run history and state as after any
deletion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from serverless_scheduler_common.events import JobRemoved
from serverless_scheduler_common.job import ScheduledJob
from serverless_scheduler_common.ports import ScheduleBackend, ScheduleState
from serverless_scheduler_common.registry import JobTypeRegistry

from .sync import job_from_snapshot

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    """Counts of what the reconciler found and repaired (and the errors it met)."""

    jobs: int = 0
    schedules: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    done: int = 0
    #: Removal notices sent for the orphans deleted (`announce_removed`).
    announced: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> int:
        return self.created + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["repaired"] = self.repaired
        return out


def _matches(backend: Any, job: ScheduledJob, state: ScheduleState) -> bool:
    if state.version != job.version or state.enabled != job.enabled:
        return False
    matches = getattr(backend, "matches", None)
    if matches is not None:
        return bool(matches(job, state))
    definition_for = getattr(backend, "definition_for", None)
    if definition_for is not None:
        return bool(definition_for(job) == state.definition)
    return True


#: Repairs of one kind logged one by one; the rest are counted and summed up at the end
#: (a restored backup without its schedules is one repair per job).
DETAILED_REPAIRS = 20
#: How often a long reconcile logs how far it got.
PROGRESS_S = 5.0
#: Schedules written per `upsert_many` call, where the backend has one (local mode).
UPSERT_CHUNK = 1000


class _Repairs:
    """Logs repairs (the first `DETAILED_REPAIRS` of each kind in full) and progress, and
    applies upserts in chunks through the backend's `upsert_many` when it has one."""

    def __init__(self, backend: Any, report: ReconcileReport, dry_run: bool) -> None:
        self.backend = backend
        self.report = report
        self.dry_run = dry_run
        self.counts: dict[str, int] = {}
        self.pending: list[tuple[tuple[str, str], ScheduledJob, bool]] = []
        self.compared = 0
        self.next_progress = time.monotonic() + PROGRESS_S

    def note(self, kind: str, message: str, *args: Any) -> None:
        count = self.counts[kind] = self.counts.get(kind, 0) + 1
        if count <= DETAILED_REPAIRS:
            log.warning(message, *args)

    def upsert(self, key: tuple[str, str], job: ScheduledJob, *, created: bool) -> None:
        """Create (`created`) or update `job`'s schedule; counted once it is written."""
        if self.dry_run:
            self._count(created)
            return
        self.pending.append((key, job, created))
        if len(self.pending) >= UPSERT_CHUNK:
            self.flush()

    def _count(self, created: bool) -> None:
        if created:
            self.report.created += 1
        else:
            self.report.updated += 1

    def flush(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        upsert_many = getattr(self.backend, "upsert_many", None)
        if upsert_many is not None:
            try:
                upsert_many([job for _, job, _ in pending])
            except Exception:
                log.exception("a batch of %d repairs failed; repairing one by one", len(pending))
            else:
                for _, _, created in pending:
                    self._count(created)
                return
        for key, job, created in pending:
            try:
                self.backend.upsert(job)
            except Exception as exc:
                self.report.errors.append(f"repairing {key[0]}/{key[1]} failed: {exc}")
            else:
                self._count(created)

    def tick(self, total: int) -> None:
        self.compared += 1
        if not self.compared & 255 and time.monotonic() >= self.next_progress:
            self.next_progress = time.monotonic() + PROGRESS_S
            log.info(
                "reconcile: %d of %d jobs compared, %d repairs so far",
                self.compared,
                total,
                self.report.repaired + len(self.pending),
            )

    def summary(self) -> None:
        for kind, count in self.counts.items():
            if count > DETAILED_REPAIRS:
                log.warning("... and %d more schedules %s", count - DETAILED_REPAIRS, kind)


def removal_notice(backend: Any, state: ScheduleState) -> JobRemoved:
    """The removal notice of the job an orphan schedule belongs to.

    The schedule names the owner, the job and the version it was built from; the job
    type comes from what it fires (`job_type_of`, else a `job_type` in its definition,
    which is the job snapshot locally). A schedule that names none gets an empty job
    type: locally the notice still forgets the job's runs, but no plugin recognises it
    (and on AWS no plugin queue's filter lets it through).
    """
    job_type: Any = None
    job_type_of = getattr(backend, "job_type_of", None)
    if job_type_of is not None:
        job_type = job_type_of(state)
    if not job_type:
        job_type = state.definition.get("job_type")
    return JobRemoved(
        job_type=job_type if isinstance(job_type, str) else "",
        job_id=state.job_id,
        owner_id=state.owner_id,
        version=max(0, state.version),
    )


def reconcile(
    jobs: Iterable[Mapping[str, Any]],
    backend: ScheduleBackend,
    registry: JobTypeRegistry | None = None,
    *,
    dry_run: bool = False,
    announce_removed: Callable[[JobRemoved], None] | None = None,
) -> ReconcileReport:
    """Make `backend` hold exactly one matching schedule per job in `jobs` (snapshots).

    `announce_removed(notice)` is called for each orphan schedule (one that names a job
    not in `jobs`) before it is deleted, with the job's `JobRemoved` notice: publish it
    as the sync does for a deletion (locally the dispatcher's queue, on AWS the
    distribution topic). When it raises, the schedule is kept and the error reported,
    so the next run announces it again. A dry run announces nothing.
    """
    report = ReconcileReport()
    # The schedules are listed before the jobs are read: a job created meanwhile then
    # shows up as a job whose schedule is missing (created again, the same schedule),
    # never as a schedule without a job, whose removal notice would have the runtime
    # drop the new job's fires.
    actual: dict[tuple[str, str], ScheduleState] = {}
    foreign: list[ScheduleState] = []
    for listed in backend.list():
        report.schedules += 1
        if listed.job_id:
            actual[(listed.owner_id, listed.job_id)] = listed
        else:
            foreign.append(listed)

    wanted: dict[tuple[str, str], ScheduledJob | None] = {}
    for data in jobs:
        report.jobs += 1
        key = (str(data.get("owner_id", "")), str(data.get("job_id", "")))
        try:
            wanted[key] = job_from_snapshot(data, registry)
        except Exception as exc:  # an unreadable job keeps its schedule; report it
            wanted[key] = None
            report.errors.append(f"job {key[0]}/{key[1]} is invalid: {exc}")

    repairs = _Repairs(backend, report, dry_run)
    is_past_at = getattr(backend, "is_past_at", None)
    for key, job in wanted.items():
        repairs.tick(len(wanted))
        state = actual.pop(key, None)
        if job is None:
            continue
        try:
            if state is None:
                if is_past_at is not None and is_past_at(job):
                    report.done += 1
                    continue
                repairs.note("missing: created", "schedule of %s/%s is missing: creating it", *key)
                repairs.upsert(key, job, created=True)
            elif _matches(backend, job, state):
                report.unchanged += 1
            else:
                repairs.note(
                    "stale: updated", "schedule of %s/%s differs from the job: updating it", *key
                )
                repairs.upsert(key, job, created=False)
        except Exception as exc:
            report.errors.append(f"repairing {key[0]}/{key[1]} failed: {exc}")
    repairs.flush()

    for (owner_id, job_id), orphan in actual.items():
        try:
            repairs.note(
                "without a job: deleted",
                "schedule of %s/%s has no job: deleting it",
                owner_id,
                job_id,
            )
            if not dry_run:
                if announce_removed is not None:
                    # Announced first: if the delete then fails, the next run finds the
                    # orphan and announces again (forgetting twice is harmless); the
                    # other way round a failed notice would be lost with the schedule.
                    try:
                        announce_removed(removal_notice(backend, orphan))
                    except Exception as exc:
                        report.errors.append(
                            f"announcing the removal of {owner_id}/{job_id} failed "
                            f"(its schedule is kept): {exc}"
                        )
                        continue
                    report.announced += 1
                backend.delete(owner_id, job_id)
            report.deleted += 1
        except Exception as exc:
            report.errors.append(f"deleting {owner_id}/{job_id} failed: {exc}")
    delete_by_name = getattr(backend, "delete_by_name", None)
    for state in foreign:
        name = state.definition.get("Name")
        if not name or delete_by_name is None:
            report.errors.append(f"schedule {name or state!r} is not ours and cannot be mapped")
            continue
        try:
            repairs.note(
                "of no job: deleted", "schedule %s does not belong to any job: deleting it", name
            )
            if not dry_run:
                delete_by_name(name)
            report.deleted += 1
        except Exception as exc:
            report.errors.append(f"deleting schedule {name} failed: {exc}")
    repairs.summary()
    log.debug("reconcile: %s", report.as_dict())  # callers print or log the report
    return report
