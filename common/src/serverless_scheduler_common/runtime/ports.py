"""Ports of the consumer runtime: the fire ledger and the dead-letter store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..events import JobFired


@dataclass(frozen=True, slots=True)
class FireLookup:
    """What the ledger holds for one fire and its job (`FireLedger.lookup`)."""

    done: bool
    removed: bool
    failures: int = 0


@runtime_checkable
class FireLedger(Protocol):
    """Idempotency and overlap bookkeeping shared by every worker of a deployment.

    Keys are opaque strings chosen by the runtime (a job key `owner_id/job_id` or a
    `fire_id`). Locks carry an expiry so a crashed run never blocks a job forever.
    """

    def is_done(self, fire_id: str) -> bool:
        """True when this fire already completed (a later delivery is a duplicate)."""
        ...

    def mark_done(self, fire_id: str) -> None: ...

    def acquire(self, key: str, holder: str, *, ttl_s: int) -> bool:
        """Take the in-progress marker `key` for `holder` unless another unexpired holder has it."""
        ...

    def release(self, key: str, holder: str) -> None:
        """Drop the marker if `holder` still owns it."""
        ...

    def claim_buffer(self, job_key: str, fire_id: str, *, ttl_s: int) -> bool:
        """Reserve the job's single buffered slot (True if free, expired or already ours)."""
        ...

    def release_buffer(self, job_key: str, fire_id: str) -> None: ...

    def add_failure(self, job_key: str) -> int:
        """Count one more consecutive failed fire of the job; returns the new count."""
        ...

    def reset_failures(self, job_key: str) -> None: ...

    def forget_job(self, owner_id: str, job_id: str) -> None:
        """The job was deleted: drop its failure count (and its done marks where they
        can be found without a scan) and remember that it is gone, so `is_removed`
        holds for its key while fires of it may still arrive (queued, retried,
        redriven)."""
        ...

    def is_removed(self, job_key: str) -> bool:
        """True when the job was deleted (`forget_job`): its fires are dropped."""
        ...

    def lookup(self, fire_id: str, job_key: str, *, failures: bool = False) -> FireLookup:
        """`is_done(fire_id)` and `is_removed(job_key)`, and with `failures` the job's
        consecutive failure count, read together (one request where the store is
        remote: a fire handled one at a time asks before and after taking its marker)."""
        ...


@dataclass(frozen=True)
class DeadLetter:
    """A fire that exhausted its retries (or could never run)."""

    fire_id: str
    job_type: str
    job_id: str
    owner_id: str
    payload: str
    error: str
    attempts: int
    dead_at: datetime

    @classmethod
    def of(
        cls,
        fired: JobFired,
        *,
        error: str,
        attempts: int,
        dead_at: datetime | None = None,
        payload: str | None = None,
    ) -> DeadLetter:
        """The dead letter of one fire (`payload` defaults to the fire's JSON)."""
        return cls(
            fire_id=fired.fire_id,
            job_type=fired.job_type,
            job_id=fired.job_id,
            owner_id=fired.owner_id,
            payload=payload or fired.model_dump_json(),
            error=error,
            attempts=attempts,
            dead_at=dead_at or datetime.now(UTC),
        )


@runtime_checkable
class DeadLetterStore(Protocol):
    """Where fires go after the retry cap; `redrive` hands them back to a publisher."""

    def add(self, letter: DeadLetter) -> None: ...

    def list(self, *, limit: int = 100) -> list[DeadLetter]:
        """Oldest first."""
        ...

    def remove(self, fire_id: str) -> None: ...

    def forget_job(self, owner_id: str, job_id: str) -> int:
        """Drop the letters of a deleted job where the store can find them; returns how
        many (a redrive would drop them anyway: the runtime skips deleted jobs)."""
        ...
