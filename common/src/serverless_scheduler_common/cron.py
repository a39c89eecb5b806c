"""Fire times of cron expressions, with croniter's expensive parts shared.

croniter parses an expression each time an iterator is built (about 0.25 ms) and
finds a next fire time in about 0.06 ms more. The timer engine asks for a job's next
fire after each of its fires, so this is on a hot path: one iterator per expression is
reused (under a lock: an iterator keeps its position), and next fire times are cached
per expression, timezone and minute, so the many jobs that share an expression and
fire in the same minute cost one computation between them. (Checking an expression is
cached in `schedule.py`.)

Fire times of a cron expression are whole local minutes, so the first fire strictly
after any instant of a minute is the first fire strictly after the minute's start:
that start is the cache key.

Clock changes follow EventBridge Scheduler, so a job fires at the same times in local
mode and on AWS: a wall time inside the hour skipped in spring does not fire, and a
wall time of the hour repeated in autumn fires once, the first time (see `_search`).
"""

from __future__ import annotations

import itertools
import re
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from croniter import croniter

#: Entries kept per cache; past it the cache starts over (a full cache means the
#: expressions in use are not shared much, and a computation costs well under a ms).
CACHE_SIZE = 4096

_lock = threading.Lock()
_iterators: dict[str, croniter] = {}
_next: dict[tuple[str, str, float], datetime] = {}
_prev: dict[tuple[str, str, float], datetime] = {}
_gaps: dict[tuple[str, str, int], int] = {}


def _iterator(expression: str) -> croniter:
    """The shared iterator of `expression` (call with `_lock` held)."""
    it = _iterators.get(expression)
    if it is None:
        from croniter import croniter  # imported on use: it costs cold-start time

        it = croniter(_one_value_ranges(expression))
        _remember(_iterators, expression, it)
    return it


#: A range whose ends are the same value (`7-7`, `MON-MON`, `5-5/10`).
_ONE_VALUE_RANGE = re.compile(r"^([0-9a-z]+)-\1(?:/\d+)?$", re.IGNORECASE)


def _one_value_ranges(expression: str) -> str:
    """`expression` with each range of one value written as that value: croniter reads
    `7-7` as the field's whole range (every month), where cron and EventBridge read
    July."""
    fields = []
    for field in expression.split(" "):
        items = field.split(",")
        fields.append(",".join(_ONE_VALUE_RANGE.sub(r"\1", item) for item in items))
    return " ".join(fields)


def _minute_start(when: datetime) -> datetime:
    """The start of `when`'s local minute, as an aware time in the same zone."""
    return when.replace(second=0, microsecond=0)  # keeps `fold` in a repeated hour


def next_after(expression: str, timezone: str, after: datetime) -> datetime:
    """The first fire of `expression` in `timezone` strictly after `after` (UTC)."""
    start = _minute_start(after.astimezone(ZoneInfo(timezone)))
    return _cached(_next, expression, timezone, start, forward=True)


def prev_before(expression: str, timezone: str, before: datetime) -> datetime:
    """The newest fire of `expression` in `timezone` strictly before `before` (UTC).

    Cached per minute like `next_after`: the newest fire before any instant of a minute
    past its start is the newest before the next minute's start (catching up after a
    stop asks this for every job at the same instant).
    """
    tz = ZoneInfo(timezone)
    local = before.astimezone(tz)
    end = _minute_start(local).timestamp()
    if end < local.timestamp():
        end += 60
    return _cached(_prev, expression, timezone, datetime.fromtimestamp(end, tz), forward=False)


def _cached(
    cache: dict[tuple[str, str, float], datetime],
    expression: str,
    timezone: str,
    start: datetime,
    *,
    forward: bool,
) -> datetime:
    """`_search` from `start` (a minute's start, local) in UTC, cached per minute."""
    key = (expression, timezone, start.timestamp())
    found = cache.get(key)
    if found is None:
        with _lock:
            found = _search(_iterator(expression), start, forward=forward).astimezone(UTC)
        _remember(cache, key, found)
    return found


#: Wall times passed over in one search at most: a clock change repeats or skips at
#: most a few hours, 60 candidates an hour for `* * * * *`.
_MAX_STEPS = 1000


def _search(it: croniter, start: datetime, *, forward: bool) -> datetime:
    """The first fire after (or the newest before) `start`, an aware local time, as
    EventBridge Scheduler fires on the nights clocks change. Call with `_lock` held.

    Its documented rules: a wall time that does not exist (the hour skipped in spring)
    does not fire, and a wall time that comes twice (the hour repeated in autumn) fires
    once, the first time. croniter moves a time in the gap to the next one that exists
    (02:30 becomes 03:00), so a candidate whose minute or hour is not one of the
    expression's was moved and is passed over; a candidate in the repeated hour's
    second pass has `fold` set and is passed over too.
    """
    tz = start.tzinfo
    if not forward and _repeated(start):
        # Every fire from the clock change up to `start` repeats a wall time; croniter
        # steps back by wall time and would miss the first pass's later fires.
        start = _before_change(start)
    step = it.get_next if forward else it.get_prev
    candidate = start
    for _ in range(_MAX_STEPS):
        candidate = step(datetime, start_time=candidate).astimezone(tz)  # sets `fold`
        if _repeated(candidate):
            if forward:
                continue
            # Going back through a repeated hour, croniter steps by wall time and would
            # pass over the first pass's later fires: take them going forward from this
            # wall time's first occurrence, which fired.
            return _newest_before(it, candidate.replace(fold=0), start)
        minutes, hours = it.expanded[0], it.expanded[1]
        if (minutes[0] == "*" or candidate.minute in minutes) and (
            hours[0] == "*" or candidate.hour in hours
        ):
            break
    return candidate


def _repeated(local: datetime) -> bool:
    """Whether `local` is the second pass of a wall time (clocks went back)."""
    return bool(local.fold) and local.replace(fold=0).utcoffset() != local.utcoffset()


def _before_change(local: datetime) -> datetime:
    """The last second before the clocks went back, for `local` in the repeated hour's
    second pass (changes fall on whole seconds; fires on whole minutes)."""
    tz, offset = local.tzinfo, local.utcoffset()
    lo, hi = int(local.replace(fold=0).timestamp()), int(local.timestamp())
    while hi - lo > 1:  # lo: before the change; hi: after it
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == offset:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(lo, tz)


def _newest_before(it: croniter, fire: datetime, before: datetime) -> datetime:
    """The newest fire before `before`, from `fire` (an earlier fire) on."""
    limit = before.timestamp()  # instants: comparing times of one zone ignores `fold`
    for _ in range(_MAX_STEPS):
        following = _search(it, fire, forward=True)
        if following.timestamp() >= limit:
            break
        fire = following
    return fire


def shortest_gap_s(expression: str, timezone: str, now: datetime) -> int:
    """The shortest gap between consecutive fires among the next six after `now`
    (cached per hour: it is a default's basis, not a fire time)."""
    key = (expression, timezone, int(now.timestamp() // 3600))
    gap = _gaps.get(key)
    if gap is None:
        times = [now]
        for _ in range(6):
            times.append(next_after(expression, timezone, times[-1]))
        gap = int(min((b - a).total_seconds() for a, b in itertools.pairwise(times[1:])))
        _remember(_gaps, key, gap)
    return gap


def _remember(cache: dict[Any, Any], key: Any, value: Any) -> None:
    """Store `value` under `key`, starting `cache` over when it is full."""
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
