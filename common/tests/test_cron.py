"""Shared cron fire times: the cached answers are croniter's own, DST and odd offsets
included, and a cached check refuses what croniter refuses every time."""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from pydantic import ValidationError

from serverless_scheduler_common import cron
from serverless_scheduler_common.schedule import CronSchedule

EXPRESSIONS = [
    "* * * * *",
    "*/5 9-17 * * 1-5",
    "30 2 * * *",  # inside the spring-forward gap and the fall-back fold in Europe
    "0 2 * * *",
    "15,45 */2 * * *",
    "*/20 1-3 * * *",
]
ZONES = ["UTC", "Europe/Warsaw", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
#: Around this year's clock changes in the zones above, and a plain day.
AROUND = [
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
    datetime(2026, 4, 4, 14, 30, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
    datetime(2026, 7, 15, 12, 0, tzinfo=UTC),
]


def _instants(seed: int) -> list[datetime]:
    """Times near each clock change: random ones, whole minutes and a microsecond off."""
    rng = random.Random(seed)
    out: list[datetime] = []
    for base in AROUND:
        for _ in range(10):
            out.append(base + timedelta(seconds=rng.uniform(-3 * 3600, 3 * 3600)))
        minute = base.replace(second=0, microsecond=0) + timedelta(minutes=rng.randrange(-90, 90))
        out += [minute, minute - timedelta(microseconds=1), minute + timedelta(microseconds=1)]
    return out


def _brute_force(expression: str, zone: str, when: datetime, step: int) -> datetime:
    """EventBridge Scheduler's rule, minute by minute: every real instant whose local wall
    time matches fires, except the second pass of a repeated hour (a wall time fires
    once). Walking UTC minutes never meets a wall time of the skipped hour."""
    tz = ZoneInfo(zone)
    minutes, hours, days, months, weekdays = croniter.expand(expression)[0]

    def matches(values: list[int | str], value: int) -> bool:
        return values[0] == "*" or value in values

    floor = when.replace(second=0, microsecond=0)
    if step > 0:
        t = floor + timedelta(minutes=1)
    else:
        t = floor if floor < when else floor - timedelta(minutes=1)
    for _ in range(5 * 24 * 60):
        local = t.astimezone(tz)
        repeated = local.fold and local.replace(fold=0).utcoffset() != local.utcoffset()
        if (
            not repeated
            and matches(minutes, local.minute)
            and matches(hours, local.hour)
            and matches(days, local.day)
            and matches(months, local.month)
            and matches(weekdays, (local.weekday() + 1) % 7)
        ):
            return t
        t += timedelta(minutes=step)
    raise AssertionError(f"no fire of {expression!r} within 5 days of {when}")


@pytest.mark.parametrize("zone", ZONES)
def test_next_and_previous_fires_follow_eventbridge_across_clock_changes(zone: str) -> None:
    for expression in EXPRESSIONS:
        for when in _instants(zlib.crc32(f"{zone} {expression}".encode())):
            want_next = _brute_force(expression, zone, when, 1)
            want_prev = _brute_force(expression, zone, when, -1)
            assert cron.next_after(expression, zone, when) == want_next, (expression, when)
            # A second time comes from the cache: still the same answer.
            assert cron.next_after(expression, zone, when) == want_next, (expression, when)
            assert cron.prev_before(expression, zone, when) == want_prev, (expression, when)
            assert cron.prev_before(expression, zone, when) == want_prev, (expression, when)


def test_the_skipped_hour_does_not_fire_and_the_repeated_hour_fires_once() -> None:
    spring = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # Warsaw: 02:00 -> 03:00 on the 29th
    autumn = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)  # Warsaw: 03:00 -> 02:00 on the 25th

    def fires(expression: str, after: datetime, count: int) -> list[datetime]:
        out = [after]
        for _ in range(count):
            out.append(cron.next_after(expression, "Europe/Warsaw", out[-1]))
        return out[1:]

    # 02:30 does not exist on the 29th: the next fire is the 30th's (croniter says 03:00).
    assert fires("30 2 * * *", spring, 1) == [datetime(2026, 3, 30, 0, 30, tzinfo=UTC)]
    # 02:30 comes twice on the 25th: once, in summer time (croniter fires at both).
    assert fires("30 2 * * *", autumn, 2) == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]
    # Going back from inside the repeated hour (02:10 CET): the newest fire is 02:40 CEST,
    # later on the wall clock than the start (a search by wall time finds 02:00).
    inside = datetime(2026, 10, 25, 1, 10, tzinfo=UTC)
    assert cron.prev_before("*/20 * * * *", "Europe/Warsaw", inside) == datetime(
        2026, 10, 25, 0, 40, tzinfo=UTC
    )
    # From after it: the repeated 02:00-02:40 are passed over.
    after = datetime(2026, 10, 25, 2, 10, tzinfo=UTC)  # 03:10 CET
    assert cron.prev_before("*/20 1-2 * * *", "Europe/Warsaw", after) == datetime(
        2026, 10, 25, 0, 40, tzinfo=UTC
    )
    # Right after it (03:00 CET; Lord Howe's repeated half hour, 01:30-01:59, likewise):
    # croniter steps back into the second pass first.
    assert cron.prev_before("*/20 1-2 * * *", "Europe/Warsaw", after.replace(minute=0)) == (
        datetime(2026, 10, 25, 0, 40, tzinfo=UTC)
    )
    assert cron.prev_before(
        "*/20 1-3 * * *", "Australia/Lord_Howe", datetime(2026, 4, 4, 15, 30, tzinfo=UTC)
    ) == datetime(2026, 4, 4, 14, 40, tzinfo=UTC)
    # Every 20 minutes: 02:00-02:40 once, then 03:00 an hour and 20 minutes later.
    assert fires("*/20 * * * *", datetime(2026, 10, 24, 23, 50, tzinfo=UTC), 5) == [
        datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 20, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 40, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 2, 20, tzinfo=UTC),
    ]


def test_jobs_sharing_an_expression_share_one_computation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cron, "_next", {})
    monkeypatch.setattr(cron, "_iterators", {})
    minute = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    schedules = [
        CronSchedule(expression="*/5 * * * *", timezone="Europe/Warsaw") for _ in range(100)
    ]
    got = {s.next_fire_after(minute + timedelta(seconds=i)) for i, s in enumerate(schedules)}
    assert got == {datetime(2026, 7, 15, 12, 5, tzinfo=UTC)}
    assert len(cron._next) == 2  # the 100 instants lie in two minutes
    assert list(cron._iterators) == ["*/5 * * * *"]


def test_caches_start_over_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cron, "CACHE_SIZE", 10)
    monkeypatch.setattr(cron, "_next", {})
    start = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)
    for i in range(25):
        when = start + timedelta(minutes=i)
        assert cron.next_after("* * * * *", "UTC", when) == when + timedelta(minutes=1)
        assert len(cron._next) <= 10


def test_shortest_gap_of_a_weekday_schedule() -> None:
    monday = datetime(2026, 7, 13, 6, 0, tzinfo=UTC)
    assert cron.shortest_gap_s("0 9 * * 1-5", "Europe/Warsaw", monday) == 86400
    assert cron.shortest_gap_s("*/5 9-17 * * 1-5", "UTC", monday) == 300


@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("61 * * * *", "is not a valid cron expression"),
        ("0 9 1 * 1", "cannot restrict both day-of-month and day-of-week"),
        ("0 9 * * 1/2", "does not support steps"),
    ],
)
def test_a_refused_expression_is_refused_every_time(expression: str, text: str) -> None:
    for _ in range(3):  # the check is cached: the refusal must be too
        with pytest.raises(ValidationError, match=text) as info:
            CronSchedule(expression=expression)
        assert info.value.errors()[0]["loc"] == ("expression",)


@pytest.mark.parametrize(
    ("expression", "first", "second"),
    [
        ("0 0 * 7-7 *", datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 2, tzinfo=UTC)),
        (
            "5-5 * * * *",
            datetime(2026, 4, 1, 0, 5, tzinfo=UTC),
            datetime(2026, 4, 1, 1, 5, tzinfo=UTC),
        ),
        (
            "0 9 * JUL-jul *",
            datetime(2026, 7, 1, 9, tzinfo=UTC),
            datetime(2026, 7, 2, 9, tzinfo=UTC),
        ),
        (
            "0 9 * * MON-MON",
            datetime(2026, 4, 6, 9, tzinfo=UTC),
            datetime(2026, 4, 13, 9, tzinfo=UTC),
        ),
        (
            "0,30 8-8,20 * * *",
            datetime(2026, 4, 1, 8, tzinfo=UTC),
            datetime(2026, 4, 1, 8, 30, tzinfo=UTC),
        ),
    ],
)
def test_a_range_of_one_value_is_that_value(
    expression: str, first: datetime, second: datetime
) -> None:
    """croniter alone reads `7-7` as every month; cron and EventBridge read July."""
    start = datetime(2026, 4, 1, tzinfo=UTC)
    assert cron.next_after(expression, "UTC", start) == first
    assert cron.next_after(expression, "UTC", first) == second
