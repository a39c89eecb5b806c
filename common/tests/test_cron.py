"""Shared cron fire times: the cached answers are croniter's own, DST and odd offsets
included, and a cached check refuses what croniter refuses every time."""

from __future__ import annotations

import random
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
    "0 1 * * 0",
    "15,45 */2 1 * *",
    "0 0 29 2 *",
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
        for _ in range(25):
            out.append(base + timedelta(seconds=rng.uniform(-3 * 3600, 3 * 3600)))
        minute = base.replace(second=0, microsecond=0) + timedelta(minutes=rng.randrange(-90, 90))
        out += [minute, minute - timedelta(microseconds=1), minute + timedelta(microseconds=1)]
    return out


@pytest.mark.parametrize("zone", ZONES)
def test_next_and_previous_fires_match_croniter(zone: str) -> None:
    tz = ZoneInfo(zone)
    for expression in EXPRESSIONS:
        for when in _instants(hash((zone, expression)) & 0xFFFF):
            local = when.astimezone(tz)
            want_next = croniter(expression, local).get_next(datetime).astimezone(UTC)
            want_prev = croniter(expression, local).get_prev(datetime).astimezone(UTC)
            assert cron.next_after(expression, zone, when) == want_next, (expression, when)
            # A second time comes from the cache: still the same answer.
            assert cron.next_after(expression, zone, when) == want_next, (expression, when)
            assert cron.prev_before(expression, zone, when) == want_prev, (expression, when)


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
