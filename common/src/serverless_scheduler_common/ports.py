"""Ports: the typed interfaces between the core and its adapters.

AWS adapters (DynamoDB, EventBridge Scheduler, SNS, S3) and local adapters (SQLite,
the timer engine, the in-process dispatcher) implement these. One contract test per
port runs against every adapter so they cannot drift.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .events import JobChange, JobFired
from .job import ScheduledJob
from .runs import Run


@dataclass(frozen=True)
class Page:
    """One page of a list, with an opaque cursor to the next (None at the end)."""

    items: list[Any]
    next_cursor: str | None


@runtime_checkable
class JobRepository(Protocol):
    """CRUD of jobs, always scoped to one owner.

    Guarantees: `create` never overwrites (AlreadyExistsError); every write bumps
    `version` by one; `update`/`delete` with `expected_version` fail with
    VersionConflictError when the stored version differs; another owner's job is
    NotFoundError, indistinguishable from a missing one. Each committed write produces
    exactly one `JobChange` on the store's change feed.
    """

    def create(self, job: ScheduledJob) -> ScheduledJob: ...

    def get(self, owner_id: str, job_id: str) -> dict[str, Any]: ...

    def list(self, owner_id: str, *, limit: int = 50, cursor: str | None = None) -> Page: ...

    def update(self, job: ScheduledJob, *, expected_version: int | None = None) -> ScheduledJob: ...

    def delete(
        self, owner_id: str, job_id: str, *, expected_version: int | None = None
    ) -> None: ...

    def list_all(self) -> Iterable[dict[str, Any]]:
        """Every job of every owner (the reconciler's view)."""
        ...


@runtime_checkable
class ChangeFeed(Protocol):
    """Job changes in commit order per job, delivered at least once until acknowledged."""

    def poll(self, limit: int = 100) -> Sequence[tuple[int, JobChange]]:
        """Up to `limit` unacknowledged changes as (position, change), oldest first."""
        ...

    def ack(self, positions: Sequence[int]) -> None:
        """Mark changes as applied; they are not delivered again."""
        ...


@dataclass(frozen=True)
class ScheduleState:
    """What a schedule backend knows about one job's schedule."""

    owner_id: str
    job_id: str
    version: int
    enabled: bool
    definition: dict[str, Any]


@runtime_checkable
class ScheduleBackend(Protocol):
    """Keeps at most one schedule per (owner, job).

    `upsert` creates or fully replaces; `delete` of a missing schedule succeeds;
    `get` returns None for a missing one. The stored `version` is the job version the
    schedule was built from, which makes sync idempotent and ordered.
    """

    def upsert(self, job: ScheduledJob) -> None: ...

    def delete(self, owner_id: str, job_id: str) -> None: ...

    def get(self, owner_id: str, job_id: str) -> ScheduleState | None: ...

    def list(self) -> Iterable[ScheduleState]: ...


@runtime_checkable
class Publisher(Protocol):
    """Hands a fire to the distribution layer (SNS, or the in-process dispatcher)."""

    def publish(self, fired: JobFired) -> None: ...


#: One fire already rendered: (fire_id, scheduled time as epoch seconds, `JobFired` JSON,
#: `fire_shard(job_id)`).
RenderedFire = tuple[str, float, str, int]

#: Shards a fire can fall into (`fire_shard`); local mode runs up to this many dispatchers.
FIRE_SHARDS = 256


def fire_shard(job_id: str) -> int:
    """The shard of a job's fires, 0 to `FIRE_SHARDS - 1`, stable across processes and
    versions. Local mode's dispatcher processes split the queue by it (process i of K
    takes the fires with `shard % K == i`), so every fire of a job, and with them its
    overlap policy, buffer slot and failure count, stays in one process."""
    return zlib.crc32(job_id.encode()) % FIRE_SHARDS


def render_fire(fired: JobFired) -> RenderedFire:
    """`fired` as a `RenderedFire` (what the timer engine builds from its templates)."""
    return (
        fired.fire_id,
        fired.scheduled_time.timestamp(),
        fired.model_dump_json(),
        fire_shard(fired.job_id),
    )


@runtime_checkable
class PayloadPublisher(Protocol):
    """Optional fast path of a `Publisher`: fires rendered to JSON by the producer.

    The local timer engine uses it when its publisher has it: each fire is then one
    string built from a per-job template instead of a `JobFired` object serialised
    again by the queue. Every payload parses with `JobFired.model_validate_json`.
    """

    def publish_payloads(self, fires: Sequence[RenderedFire]) -> None: ...


@runtime_checkable
class RunRepository(Protocol):
    """Run history per job: newest first, bounded by retention."""

    def record(self, owner_id: str, run: Run) -> None:
        """Insert or replace the run with this `run_id` (a run is updated when it ends)."""
        ...

    def list(
        self, owner_id: str, job_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """Runs of one job, newest first; `Page.items` holds `Run` objects."""
        ...

    def forget_job(self, owner_id: str, job_id: str) -> int:
        """Delete every run of a deleted job; returns how many."""
        ...


@runtime_checkable
class JobControl(Protocol):
    """Lets the runtime act on a job it runs (pause after repeated failures)."""

    def pause(self, owner_id: str, job_id: str, reason: str) -> bool:
        """Disable the job (`enabled=False`, version + 1); False when it no longer exists."""
        ...


@runtime_checkable
class StateStore(Protocol):
    """Plugin state: snapshots by key, bounded histories, and once-only claims."""

    def get(self, namespace: str, key: str) -> dict[str, Any] | None: ...

    def put(self, namespace: str, key: str, value: dict[str, Any]) -> None: ...

    def append_history(self, namespace: str, key: str, entry: dict[str, Any], *, keep: int) -> None:
        """Append an entry, keeping only the newest `keep`."""
        ...

    def history(self, namespace: str, key: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Entries newest first."""
        ...

    def claim(self, namespace: str, key: str, *, ttl_s: int | None = None) -> bool:
        """True exactly once per (namespace, key) (again once `ttl_s` has passed): for
        effects that must happen at most once. Not for notifications, which must not be
        lost: a claim taken before a send that fails makes the retry skip it (record the
        send after it succeeded instead, docs/plugins.md). The claim stays until
        `forget(namespace, key)`, so key it with the job's key, never per fire."""
        ...

    def forget(self, namespace: str, key: str) -> None:
        """Drop the snapshot, the history and the claim stored under exactly `key`
        (nothing when there are none, nothing under other keys): a plugin forgetting a
        deleted job."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """Sends a notification to apprise URLs (email, Slack, webhooks, SES...)."""

    def notify(
        self,
        urls: Sequence[str],
        *,
        title: str,
        body: str,
        html: str | None = None,
        positions: Sequence[int] | None = None,
    ) -> None:
        """Raise when a URL did not accept the message, so the runtime retries.

        `positions` are the URLs' places in the job's `notify` list when `urls` is part
        of it (a retry to the URLs that have not had the message): errors name those.

        `AppriseNotifier` raises `NotificationError`, whose `delivered` names the URLs
        that accepted it, when some did: a consumer that keeps state can retry the
        others only.
        """
        ...


class Clock(Protocol):
    """Injectable time source (tests run in virtual time)."""

    def now(self) -> datetime: ...
