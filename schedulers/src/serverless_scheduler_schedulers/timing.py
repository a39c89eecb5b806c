"""Fire-time arithmetic shared by the local engine and the reconciler.

Works in float epoch seconds (UTC) so the engine's hot loop never builds datetimes
except for the fire it publishes.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

from serverless_scheduler_common import cron
from serverless_scheduler_common.schedule import AtSchedule, CronSchedule, RateSchedule

AnySchedule = RateSchedule | CronSchedule | AtSchedule


def to_ts(value: datetime) -> float:
    return value.timestamp()


def from_ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def jitter_offset_s(owner_id: str, job_id: str, jitter_s: int) -> float:
    """A per-job delay in [0, jitter_s): stable across restarts, spread across jobs."""
    if jitter_s <= 0:
        return 0.0
    digest = hashlib.sha256(f"{owner_id}\x00{job_id}".encode()).digest()
    millis = int.from_bytes(digest[:8], "big") % (jitter_s * 1000)
    return millis / 1000.0


def rate_next_after(after: float, anchor: float, period: float) -> float:
    """First grid point `anchor + k * period` strictly after `after` (k >= 0)."""
    if after < anchor:
        return anchor
    steps = math.floor((after - anchor) / period) + 1
    candidate = anchor + steps * period
    if candidate <= after:  # float rounding at a grid point
        candidate += period
    return candidate


def newest_at_or_before(
    schedule: AnySchedule | None,
    first_due: float,
    now: float,
    *,
    period: float = 0.0,
    end: float | None = None,
) -> float:
    """The newest fire time in [first_due, now] (first_due itself when it is the only one).

    `first_due` must be a fire time of the schedule with `first_due <= now`; rate
    schedules pass their `period` (and `end`, the end_at timestamp) instead of a schedule.
    """
    limit = min(now, end) if end is not None else now
    if limit <= first_due:
        return first_due
    if period > 0:
        return first_due + math.floor((limit - first_due) / period) * period
    if isinstance(schedule, CronSchedule):
        before = from_ts(limit) + timedelta(microseconds=1)
        prev = cron.prev_before(schedule.expression, schedule.timezone, before).timestamp()
        return max(prev, first_due)
    return first_due
