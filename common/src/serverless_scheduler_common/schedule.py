"""Schedule expressions: rate, cron (with timezone) and one-off `at`.

Every kind validates itself, computes its next fire times (DST-correct for cron) and
renders the equivalent EventBridge Scheduler expression. Anything EventBridge cannot
express is rejected at validation time, so a job behaves the same in local mode and on AWS.
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from . import cron

#: EventBridge's FlexibleTimeWindow accepts 1..1440 minutes.
MAX_JITTER_S = 1440 * 60
#: Clock skew allowed between a client and the server when a request sets an `at` time.
PAST_AT_GRACE_S = 60

_UNIT_SECONDS = {"minutes": 60, "hours": 3600, "days": 86400}
_DOW_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class EventBridgeExpression(NamedTuple):
    """A `ScheduleExpression` and its `ScheduleExpressionTimezone`."""

    expression: str
    timezone: str


class UnsupportedExpressionError(ValueError):
    """The schedule is valid cron but EventBridge Scheduler cannot express it."""


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


class _ScheduleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _RecurringBase(_ScheduleBase):
    start_at: AwareDatetime | None = Field(
        default=None, description="No fire happens before this instant."
    )
    end_at: AwareDatetime | None = Field(
        default=None, description="No fire happens after this instant."
    )
    jitter_s: int = Field(
        default=0,
        ge=0,
        le=MAX_JITTER_S,
        description="Spread each fire by up to this many seconds to smooth load.",
    )

    @field_validator("end_at")
    @classmethod
    def _window_is_ordered(cls, end_at: datetime | None, info: ValidationInfo) -> datetime | None:
        # A field check (not a model one), so the error names `end_at`; `start_at` is
        # declared first and is in `info.data` once it validated.
        start_at = info.data.get("start_at")
        if start_at is not None and end_at is not None and end_at <= start_at:
            raise ValueError("end_at must be later than start_at")
        return end_at

    def _in_window(self, when: datetime) -> bool:
        return self.end_at is None or when <= self.end_at

    def flexible_window_minutes(self) -> int:
        """EventBridge FlexibleTimeWindow size for `jitter_s` (0 means OFF)."""
        return math.ceil(self.jitter_s / 60) if self.jitter_s else 0


class RateSchedule(_RecurringBase):
    """Fire every N minutes, hours or days."""

    kind: Literal["rate"] = "rate"
    every: int = Field(ge=1, le=1_000_000, description="How many units between fires.")
    unit: Literal["minutes", "hours", "days"] = "minutes"

    @property
    def period_s(self) -> int:
        return self.every * _UNIT_SECONDS[self.unit]

    def next_fire_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        """First fire strictly after `after`; fires sit on the grid anchor + k * period.

        The anchor is `start_at`, else the given anchor (e.g. the job's creation time),
        else the Unix epoch.
        """
        base = self.start_at or anchor or datetime(1970, 1, 1, tzinfo=UTC)
        base, after = _utc(base), _utc(after)
        if after < base:
            candidate = base
        else:
            steps = int((after - base).total_seconds() // self.period_s) + 1
            candidate = base + timedelta(seconds=steps * self.period_s)
        return candidate if self._in_window(candidate) else None

    def eventbridge(self) -> EventBridgeExpression:
        unit = self.unit[:-1] if self.every == 1 else self.unit
        return EventBridgeExpression(f"rate({self.every} {unit})", "UTC")


def _dow_to_eventbridge(field: str) -> str:
    """Translate a cron day-of-week field (0-7, names) into EventBridge names."""

    def one(token: str) -> str:
        token = token.upper()
        if token in _DOW_NAMES:
            return token
        if token.isdigit() and 0 <= int(token) <= 7:
            return _DOW_NAMES[int(token) % 7]
        raise UnsupportedExpressionError(f"day-of-week value {token!r} is not understood")

    parts = []
    for item in field.split(","):
        if "/" in item:
            raise UnsupportedExpressionError(
                "EventBridge does not support steps ('/') in the day-of-week field"
            )
        if item == "*":
            parts.append("*")
        elif "-" in item:
            lo, hi = (one(x) for x in item.split("-", 1))
            if lo == "SUN" and hi == "SUN" and item != "0-0":
                parts.append("*")  # 0-7: the whole week
            elif hi == "SUN" and lo != "SUN":
                # cron counts Sunday as 7 here; EventBridge starts the week at SUN=1.
                parts.append(f"{lo}-SAT,SUN")
            else:
                parts.append(f"{lo}-{hi}")
        else:
            parts.append(one(item))
    return ",".join(parts)


class CronSchedule(_RecurringBase):
    """Fire by a 5-field cron expression, interpreted in an IANA timezone."""

    kind: Literal["cron"] = "cron"
    expression: str = Field(
        description="Five fields: minute hour day-of-month month day-of-week.",
        examples=["0 9 * * 1-5"],
    )
    timezone: str = Field(default="UTC", description="IANA timezone, e.g. Europe/Warsaw.")

    @field_validator("expression")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        value = " ".join(value.split())
        value = _MACROS.get(value.lower(), value)
        fields = value.split(" ")
        if len(fields) != 5:
            raise ValueError(
                f"cron expression needs 5 fields (minute hour day-of-month month "
                f"day-of-week), got {len(fields)}"
            )
        problem = _cron_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        """An IANA name; one written in another case (`utc`, `europe/warsaw`) is taken
        as the name it stands for."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            canonical = _zone_names().get(value.lower())
            if canonical is None:
                raise ValueError(f"unknown IANA timezone {value!r}") from exc
            return canonical
        return value

    def next_fire_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        """First fire strictly after `after`, computed in the schedule's timezone."""
        if self.start_at and self.start_at > after:
            after = self.start_at - timedelta(microseconds=1)
        candidate = cron.next_after(self.expression, self.timezone, after)
        return candidate if self._in_window(candidate) else None

    @property
    def period_s(self) -> int:
        """Shortest gap between two consecutive fires over the next few (for defaults)."""
        return cron.shortest_gap_s(self.expression, self.timezone, datetime.now(UTC))

    def eventbridge(self) -> EventBridgeExpression:
        return EventBridgeExpression(_cron_to_eventbridge(self.expression), self.timezone)


@functools.lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    """Every IANA timezone name by its lower-case form (read once, on first need)."""
    import zoneinfo

    return {name.lower(): name for name in zoneinfo.available_timezones()}


@functools.lru_cache(maxsize=cron.CACHE_SIZE)
def _cron_problem(expression: str) -> str | None:
    """Why a normalised 5-field `expression` is refused (None when it is accepted).

    Cached: croniter's check costs about 0.25 ms, and every validated snapshot of a cron
    job (each fire the dispatcher reads, each job the API lists) checks its expression.
    """
    from croniter import croniter  # imported on use: it costs cold-start time

    if not croniter.is_valid(expression):
        return f"{expression!r} is not a valid cron expression"
    try:
        _cron_to_eventbridge(expression)
    except UnsupportedExpressionError as exc:
        return f"EventBridge Scheduler cannot express this: {exc}"
    return None


_CRON_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
_MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
#: Each field's last and first value, as numbers and as names.
_FIELD_ENDS = (("59", "0"), ("23", "0"), ("31", "1"), ("12", "1"), ("6", "0"))
_NAMED_ENDS = {3: ("DEC", "JAN"), 4: ("SAT", "SUN")}


def _backwards_range(expression: str) -> str | None:
    """Why a range of a valid `expression` is refused: one that runs backwards (`9-5`).

    The message names the two ranges to write instead. A day-of-week range may end on
    Sunday as 0 or SUN (`FRI-SUN`): cron counts Sunday as 7 there too.
    """

    def number(index: int, token: str) -> int | None:
        upper = token.upper()
        if index == 3 and upper in _MONTH_NAMES:
            return _MONTH_NAMES.index(upper) + 1
        if index == 4 and upper in _DOW_NAMES:
            return _DOW_NAMES.index(upper)
        return int(token) if token.isdigit() else None

    for index, field in enumerate(expression.split(" ")):
        for item in field.split(","):
            ends = item.split("/", 1)[0].split("-")
            if len(ends) != 2:
                continue
            lo, hi = number(index, ends[0]), number(index, ends[1])
            if index == 4 and hi == 0:
                hi = 7
            if lo is None or hi is None or lo <= hi:
                continue
            last, first = _NAMED_ENDS[index] if ends[0].isalpha() else _FIELD_ENDS[index]
            high_part = ends[0] if ends[0] == last else f"{ends[0]}-{last}"
            low_part = ends[1] if ends[1] == first else f"{first}-{ends[1]}"
            return (
                f"{_CRON_FIELD_NAMES[index]} range {item} runs backwards; write it as two "
                f"ranges, e.g. {high_part},{low_part}"
            )
    return None


def _cron_to_eventbridge(expression: str) -> str:
    minute, hour, dom, month, dow = expression.split(" ")
    if dom not in ("*", "?") and dow not in ("*", "?"):
        raise UnsupportedExpressionError(
            "EventBridge cannot restrict both day-of-month and day-of-week; use '*' in one"
        )
    if dow in ("*", "?"):
        eb_dom, eb_dow = dom if dom != "?" else "*", "?"
    else:
        eb_dom, eb_dow = "?", _dow_to_eventbridge(dow)
    return f"cron({minute} {hour} {eb_dom} {month.upper()} {eb_dow} *)"


class AtSchedule(_ScheduleBase):
    """Fire once at a timezone-aware instant."""

    kind: Literal["at"] = "at"
    at: AwareDatetime = Field(description="When to fire, with a UTC offset.")

    def next_fire_after(self, after: datetime, anchor: datetime | None = None) -> datetime | None:
        at = _utc(self.at).replace(microsecond=0)
        return at if at > after else None

    def eventbridge(self) -> EventBridgeExpression:
        at = _utc(self.at)
        return EventBridgeExpression(f"at({at:%Y-%m-%dT%H:%M:%S})", "UTC")

    @property
    def period_s(self) -> int:
        return 0


Schedule = Annotated[RateSchedule | CronSchedule | AtSchedule, Field(discriminator="kind")]


def sets_past_at(
    schedule: RateSchedule | CronSchedule | AtSchedule,
    stored: Any,
    now: datetime,
    grace_s: float = PAST_AT_GRACE_S,
) -> bool:
    """Whether a write of `schedule` over `stored` (the stored schedule's JSON, None on
    create) sets a one-off time more than `grace_s` before `now`.

    Not a model validator: stored jobs, the job snapshots fires carry and edits of a
    one-off job that already fired all hold a past `at` legitimately. So the API asks
    this only of a request, and keeping the stored instant (in any UTC offset) is no
    change: renaming a one-off job that has fired still works.
    """
    if not isinstance(schedule, AtSchedule) or schedule.at >= now - timedelta(seconds=grace_s):
        return False
    return not _keeps(schedule, stored, "at")


def _keeps(schedule: Any, stored: Any, field: str) -> bool:
    """Whether a write of `schedule` keeps the stored schedule's `field` as it is (the
    same kind, the same value): a rule for new values does not apply to it."""
    try:
        return bool(
            getattr(type(schedule).model_validate(stored), field) == getattr(schedule, field)
        )
    except ValidationError:  # none stored, or another kind
        return False


def sets_past_end_at(
    schedule: RateSchedule | CronSchedule | AtSchedule,
    stored: Any,
    now: datetime,
    grace_s: float = PAST_AT_GRACE_S,
) -> bool:
    """Whether a write of a recurring `schedule` over `stored` (the stored schedule's
    JSON, None on create) sets an `end_at` more than `grace_s` before `now`: a schedule
    that would never fire again. Keeping the stored `end_at` is no change (a finished
    job can still be renamed or paused)."""
    if isinstance(schedule, AtSchedule) or schedule.end_at is None:
        return False
    if schedule.end_at >= now - timedelta(seconds=grace_s):
        return False
    return not _keeps(schedule, stored, "end_at")


def cron_write_problem(
    schedule: RateSchedule | CronSchedule | AtSchedule, stored: Any
) -> str | None:
    """Why a write of `schedule` over `stored` (the stored schedule's JSON, None on
    create) is refused for its cron expression, or None:

    - a range that runs backwards (`9-5`): croniter wraps it round (9-23 and 0-5), the
      web UI's preview refuses it and EventBridge does not document its reading;
    - an expression no date matches (`0 0 31 2 *`): it would never fire, and computing
      its next fire fails.

    Not a model validator: jobs stored before these rules keep loading (locally a
    backwards range fires as croniter reads it; a never-firing schedule is not armed),
    and a write that keeps the stored expression is no change.
    """
    if not isinstance(schedule, CronSchedule):
        return None
    problem = _backwards_range(schedule.expression)
    if problem is None and _never_fires(schedule.expression):
        problem = (
            f"no date matches {schedule.expression!r} (a day no month has): it would never fire"
        )
    if problem is None or _keeps(schedule, stored, "expression"):
        return None
    return problem


@functools.lru_cache(maxsize=cron.CACHE_SIZE)
def _never_fires(expression: str) -> bool:
    """Whether no date matches a valid `expression` (croniter gives up looking)."""
    try:
        cron.next_after(expression, "UTC", datetime(2000, 1, 1, tzinfo=UTC))
    except ValueError:  # croniter's CroniterBadDateError
        return True
    return False


def next_fires(
    schedule: RateSchedule | CronSchedule | AtSchedule,
    after: datetime,
    count: int,
    anchor: datetime | None = None,
) -> list[datetime]:
    """The next `count` fire times strictly after `after` (fewer if the schedule ends)."""
    out: list[datetime] = []
    cursor = after
    while len(out) < count:
        nxt = schedule.next_fire_after(cursor, anchor)
        if nxt is None:
            break
        out.append(nxt)
        cursor = nxt
    return out
