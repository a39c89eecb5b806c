"""Schedule kinds: validation errors, next fire times across DST, EventBridge rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from serverless_scheduler_common.schedule import (
    AtSchedule,
    CronSchedule,
    RateSchedule,
    Schedule,
    cron_write_problem,
    next_fires,
    sets_past_at,
    sets_past_end_at,
)

SCHEDULE = TypeAdapter(Schedule)


def _error_locs(exc: ValidationError) -> list[tuple[object, ...]]:
    return [tuple(err["loc"]) for err in exc.errors()]


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "loc", "text"),
    [
        (
            {"kind": "rate", "every": 0, "unit": "minutes"},
            ("rate", "every"),
            "greater than or equal to 1",
        ),
        ({"kind": "rate", "every": 5, "unit": "weeks"}, ("rate", "unit"), "minutes"),
        ({"kind": "rate", "every": "x"}, ("rate", "every"), "integer"),
        (
            {"kind": "rate", "every": 5, "jitter_s": -1},
            ("rate", "jitter_s"),
            "greater than or equal",
        ),
        (
            {"kind": "rate", "every": 5, "jitter_s": 100_000},
            ("rate", "jitter_s"),
            "less than or equal",
        ),
        (
            {"kind": "rate", "every": 5, "start_at": "2026-01-01T00:00:00"},
            ("rate", "start_at"),
            "timezone",
        ),
        ({"kind": "cron", "expression": "61 * * * *"}, ("cron", "expression"), "not a valid cron"),
        ({"kind": "cron", "expression": "0 9 * *"}, ("cron", "expression"), "5 fields"),
        (
            {"kind": "cron", "expression": "0 9 * * *", "timezone": "Mars/Base"},
            ("cron", "timezone"),
            "unknown IANA timezone",
        ),
        (
            {"kind": "cron", "expression": "0 9 1 * 1"},
            ("cron", "expression"),
            "both day-of-month and day-of-week",
        ),
        ({"kind": "cron", "expression": "0 9 * * */2"}, ("cron", "expression"), "steps"),
        ({"kind": "at", "at": "2026-12-01T09:00:00"}, ("at", "at"), "timezone"),
        ({"kind": "at"}, ("at", "at"), "Field required"),
        ({"kind": "daily"}, (), "does not match any of the expected tags"),
        ({"kind": "rate", "every": 1, "surprise": 1}, ("rate", "surprise"), "Extra inputs"),
    ],
)
def test_invalid_schedules_name_the_field(
    payload: dict[str, object], loc: tuple[str, ...], text: str
) -> None:
    with pytest.raises(ValidationError) as info:
        SCHEDULE.validate_python(payload)
    if loc:
        assert loc in _error_locs(info.value)
    assert text in str(info.value)


def test_end_before_start_is_rejected_naming_end_at() -> None:
    with pytest.raises(ValidationError, match="end_at must be later than start_at") as info:
        RateSchedule(
            every=5,
            start_at=datetime(2026, 1, 2, tzinfo=UTC),
            end_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
    assert [error["loc"] for error in info.value.errors()] == [("end_at",)]
    payload = {"kind": "cron", "expression": "0 9 * * *", "start_at": "2026-01-02T00:00:00Z"}
    with pytest.raises(ValidationError) as info:
        SCHEDULE.validate_python({**payload, "end_at": "2026-01-02T00:00:00Z"})
    assert ("cron", "end_at") in _error_locs(info.value)
    # Without a valid start_at there is nothing to compare with: only start_at is named.
    with pytest.raises(ValidationError) as info:
        SCHEDULE.validate_python({**payload, "start_at": "soon", "end_at": "2026-01-01T00:00Z"})
    assert _error_locs(info.value) == [("cron", "start_at")]


def test_cron_macros_and_whitespace_are_normalised() -> None:
    assert CronSchedule(expression="@daily").expression == "0 0 * * *"
    assert CronSchedule(expression="  0   9 * *  1-5 ").expression == "0 9 * * 1-5"


# -- next fire times ---------------------------------------------------------------------------


def test_rate_fires_on_its_grid_from_the_anchor() -> None:
    anchor = datetime(2026, 3, 1, 10, 0, 7, tzinfo=UTC)
    sched = RateSchedule(every=5, unit="minutes")
    fires = next_fires(sched, anchor + timedelta(minutes=7), 3, anchor=anchor)
    assert fires == [anchor + timedelta(minutes=m) for m in (10, 15, 20)]


def test_rate_respects_start_and_end() -> None:
    start = datetime(2026, 3, 1, 10, tzinfo=UTC)
    sched = RateSchedule(every=1, unit="hours", start_at=start, end_at=start + timedelta(hours=2))
    assert next_fires(sched, start - timedelta(days=1), 10) == [
        start,
        start + timedelta(hours=1),
        start + timedelta(hours=2),
    ]


def test_rate_hours_keep_absolute_spacing_across_dst() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    start = datetime(2026, 3, 29, 0, 0, tzinfo=warsaw)
    fires = next_fires(RateSchedule(every=1, unit="hours", start_at=start), start, 3)
    assert [(b - a) for a, b in zip([start, *fires], fires, strict=False)] == [
        timedelta(hours=1)
    ] * 3


def test_cron_spring_forward_in_warsaw_skips_the_missing_hour() -> None:
    # 2026-03-29 02:00 Europe/Warsaw jumps to 03:00: a 02:30 daily job does not fire that
    # day (EventBridge Scheduler skips a wall time that does not exist), then again at
    # 02:30. 03:00 jobs are not affected.
    warsaw = ZoneInfo("Europe/Warsaw")
    sched = CronSchedule(expression="30 2 * * *", timezone="Europe/Warsaw")
    fires = next_fires(sched, datetime(2026, 3, 28, 12, tzinfo=warsaw), 3)
    local = [f.astimezone(warsaw) for f in fires]
    assert [(d.day, d.hour, d.minute) for d in local] == [(30, 2, 30), (31, 2, 30), (1, 2, 30)]
    three = CronSchedule(expression="0 3 * * *", timezone="Europe/Warsaw")
    fires = next_fires(three, datetime(2026, 3, 28, 12, tzinfo=warsaw), 2)
    assert [(f.astimezone(warsaw).day, f.astimezone(warsaw).hour) for f in fires] == [
        (29, 3),
        (30, 3),
    ]
    assert all(f.tzinfo is not None and f.utcoffset() == timedelta(0) for f in fires)


def test_cron_fall_back_in_warsaw_keeps_local_wall_time() -> None:
    warsaw = ZoneInfo("Europe/Warsaw")
    sched = CronSchedule(expression="0 9 * * 1-5", timezone="Europe/Warsaw")
    fires = next_fires(sched, datetime(2026, 10, 23, 12, tzinfo=warsaw), 3)
    assert [f.astimezone(warsaw).hour for f in fires] == [9, 9, 9]
    # Friday 23 Oct is CEST (UTC+2): the following Monday is CET (UTC+1).
    assert [f.hour for f in fires] == [8, 8, 8]
    assert [f.astimezone(warsaw).weekday() for f in fires] == [0, 1, 2]


def test_cron_across_new_york_dst_changes() -> None:
    ny = ZoneInfo("America/New_York")
    sched = CronSchedule(expression="0 9 * * *", timezone="America/New_York")
    spring = next_fires(sched, datetime(2026, 3, 6, 12, tzinfo=ny), 2)
    assert [f.hour for f in spring] == [14, 13]  # EST (UTC-5) then EDT (UTC-4)
    fall = next_fires(sched, datetime(2026, 10, 30, 12, tzinfo=ny), 2)
    assert [f.hour for f in fall] == [13, 14]  # EDT then EST
    assert all(f.astimezone(ny).hour == 9 for f in spring + fall)


def test_cron_start_at_is_inclusive() -> None:
    start = datetime(2026, 5, 4, 9, tzinfo=UTC)
    sched = CronSchedule(expression="0 9 * * *", start_at=start)
    assert next_fires(sched, datetime(2026, 1, 1, tzinfo=UTC), 1) == [start]


def test_at_fires_once() -> None:
    when = datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Europe/Warsaw"))
    sched = AtSchedule(at=when)
    assert next_fires(sched, datetime(2026, 11, 1, tzinfo=UTC), 5) == [when]
    assert next_fires(sched, when, 5) == []


# -- one-off times in the past -------------------------------------------------------------------
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


def test_a_past_at_still_validates_for_stored_jobs_and_fire_snapshots() -> None:
    # A fired one-off job's snapshot holds a past `at` by definition.
    sched = SCHEDULE.validate_python({"kind": "at", "at": "2020-12-01T09:00:00+01:00"})
    assert isinstance(sched, AtSchedule)
    assert next_fires(sched, NOW, 1) == []


@pytest.mark.parametrize(
    ("at", "stored", "refused"),
    [
        (NOW - timedelta(days=2), None, True),  # create
        (NOW - timedelta(seconds=61), None, True),
        (NOW - timedelta(seconds=59), None, False),  # within the clock-skew grace
        (NOW + timedelta(hours=1), None, False),
        (NOW - timedelta(days=2), {"kind": "rate", "every": 5}, True),  # switched to `at`
        (NOW - timedelta(days=2), {"kind": "at", "at": "2026-11-30T12:00:00Z"}, True),
        (NOW - timedelta(days=2), {"kind": "at", "at": "2026-12-01T12:00:00Z"}, False),  # kept
        (NOW - timedelta(days=2), {"kind": "at", "at": "2026-12-01T13:00:00+01:00"}, False),
        (NOW - timedelta(days=2), "not a schedule", True),
    ],
)
def test_sets_past_at_only_when_a_write_sets_a_past_time(
    at: datetime, stored: object, refused: bool
) -> None:
    assert sets_past_at(AtSchedule(at=at), stored, NOW) is refused


def test_sets_past_end_at_only_when_a_write_sets_a_past_end() -> None:
    past, future = NOW - timedelta(days=2), NOW + timedelta(days=2)
    ended = RateSchedule(every=5, end_at=past)
    assert sets_past_end_at(ended, None, NOW)
    assert sets_past_end_at(CronSchedule(expression="0 9 * * *", end_at=past), None, NOW)
    assert sets_past_end_at(ended, {"kind": "rate", "every": 5, "end_at": future.isoformat()}, NOW)
    # kept as stored (a rename of a finished job), in the future, within the grace, or none
    assert not sets_past_end_at(ended, ended.model_dump(mode="json"), NOW)
    assert not sets_past_end_at(RateSchedule(every=5, end_at=future), None, NOW)
    assert not sets_past_end_at(
        RateSchedule(every=5, end_at=NOW - timedelta(seconds=30)), None, NOW
    )
    assert not sets_past_end_at(RateSchedule(every=5), None, NOW)
    assert not sets_past_end_at(AtSchedule(at=past), None, NOW)


def test_sets_past_at_ignores_recurring_schedules() -> None:
    past = NOW - timedelta(days=30)
    assert not sets_past_at(RateSchedule(every=5, start_at=past), None, NOW)
    assert not sets_past_at(CronSchedule(expression="0 9 * * *", end_at=past), None, NOW)


@pytest.mark.parametrize(
    ("written", "name"), [("utc", "UTC"), ("europe/warsaw", "Europe/Warsaw"), ("UTC", "UTC")]
)
def test_a_timezone_in_another_case_is_taken_as_its_iana_name(written: str, name: str) -> None:
    assert CronSchedule(expression="0 9 * * *", timezone=written).timezone == name


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 9-5 * * *", "hour range 9-5 runs backwards; write it as two ranges, e.g. 9-23,0-5"),
        (
            "50-10 * * * *",
            "minute range 50-10 runs backwards; write it as two ranges, e.g. 50-59,0-10",
        ),
        (
            "0 0 5-1 * *",
            "day-of-month range 5-1 runs backwards; write it as two ranges, e.g. 5-31,1",
        ),
        (
            "0 0 * NOV-FEB *",
            "month range NOV-FEB runs backwards; write it as two ranges, e.g. NOV-DEC,JAN-FEB",
        ),
        ("0 0 * 11-2 *", "month range 11-2 runs backwards; write it as two ranges, e.g. 11-12,1-2"),
        (
            "0 0 * * FRI-MON",
            "day-of-week range FRI-MON runs backwards; write it as two ranges, e.g. FRI-SAT,SUN-MON",
        ),
        (
            "0 0 * * 5-1",
            "day-of-week range 5-1 runs backwards; write it as two ranges, e.g. 5-6,0-1",
        ),
        (
            "0 22-2/2 * * *",
            "hour range 22-2/2 runs backwards; write it as two ranges, e.g. 22-23,0-2",
        ),
        (
            "0 9-17,20-3 * * *",
            "hour range 20-3 runs backwards; write it as two ranges, e.g. 20-23,0-3",
        ),
        # Forward ranges, and day-of-week ranges ending on Sunday as 0 or 7.
        ("0 9-17 * * 1-5", None),
        ("0 0 * * FRI-SUN", None),
        ("0 0 * * 5-0", None),
        ("0 0 * * 0-7", None),
        ("0 0 * DEC *", None),
    ],
)
def test_a_new_cron_range_may_not_run_backwards(expression: str, problem: str | None) -> None:
    assert cron_write_problem(CronSchedule(expression=expression), None) == problem


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_new_cron_expression_no_date_matches_is_refused(expression: str) -> None:
    problem = cron_write_problem(CronSchedule(expression=expression), None)
    assert problem == f"no date matches {expression!r} (a day no month has): it would never fire"
    assert cron_write_problem(CronSchedule(expression="0 0 29 2 *"), None) is None  # leap days


def test_a_stored_backwards_range_may_be_kept() -> None:
    """Jobs stored before the rule keep working: their model still validates, and a
    write that keeps the expression (a rename) is accepted; changing it is not."""
    schedule = CronSchedule(expression="0 9-5 * * *", timezone="Europe/Warsaw")
    stored = schedule.model_dump(mode="json")
    assert cron_write_problem(schedule, stored) is None
    assert cron_write_problem(CronSchedule(expression="0 9-4 * * *"), stored) is not None
    assert cron_write_problem(schedule, {"kind": "rate", "every": 5}) is not None
    assert cron_write_problem(RateSchedule(every=5), stored) is None


# -- EventBridge rendering ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "expression", "timezone"),
    [
        (RateSchedule(every=1, unit="minutes"), "rate(1 minute)", "UTC"),
        (RateSchedule(every=5, unit="minutes"), "rate(5 minutes)", "UTC"),
        (RateSchedule(every=2, unit="hours"), "rate(2 hours)", "UTC"),
        (RateSchedule(every=1, unit="days"), "rate(1 day)", "UTC"),
        (
            CronSchedule(expression="0 9 * * 1-5", timezone="Europe/Warsaw"),
            "cron(0 9 ? * MON-FRI *)",
            "Europe/Warsaw",
        ),
        (CronSchedule(expression="*/15 * * * *"), "cron(*/15 * * * ? *)", "UTC"),
        (CronSchedule(expression="0 0 1,15 * *"), "cron(0 0 1,15 * ? *)", "UTC"),
        (CronSchedule(expression="0 12 * jan,jul 0"), "cron(0 12 ? JAN,JUL SUN *)", "UTC"),
        (CronSchedule(expression="0 12 * * 5-7"), "cron(0 12 ? * FRI-SAT,SUN *)", "UTC"),
        (CronSchedule(expression="0 12 * * sat,sun"), "cron(0 12 ? * SAT,SUN *)", "UTC"),
        (
            AtSchedule(at=datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("Europe/Warsaw"))),
            "at(2026-12-01T08:00:00)",
            "UTC",
        ),
    ],
)
def test_eventbridge_expressions(
    schedule: RateSchedule | CronSchedule | AtSchedule, expression: str, timezone: str
) -> None:
    assert schedule.eventbridge() == (expression, timezone)


def test_jitter_maps_to_a_flexible_window_in_minutes() -> None:
    assert RateSchedule(every=5).flexible_window_minutes() == 0
    assert RateSchedule(every=5, jitter_s=30).flexible_window_minutes() == 1
    assert RateSchedule(every=5, jitter_s=600).flexible_window_minutes() == 10
