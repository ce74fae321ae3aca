"""Next run times of every schedule kind, through DST changes, short months and cron."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bctui.engine.config import ConfigError, cron_problem, parse_config
from bctui.engine.config import describe_schedule as config_describe
from bctui.engine.models import WEEKDAYS, Schedule
from bctui.engine.schedule import describe_schedule, next_run, next_runs, short_time

AMS = "Europe/Amsterdam"
NY = "America/New_York"


def iso(runs: list[datetime]) -> list[str]:
    return [r.isoformat() for r in runs]


def at(text: str) -> datetime:
    """An aware datetime from ISO text with an offset."""
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None
    return value


def test_manual_never_runs() -> None:
    assert next_runs(Schedule(), at("2026-01-01T00:00+00:00")) == []
    assert next_run(Schedule(kind="manual"), at("2026-01-01T00:00+00:00")) is None


def test_times_per_day_are_evenly_spaced_from_midnight() -> None:
    four = Schedule(kind="times_per_day", times=4, timezone="UTC")
    assert iso(next_runs(four, at("2026-05-01T05:00+00:00"), 4)) == [
        "2026-05-01T06:00:00+00:00",
        "2026-05-01T12:00:00+00:00",
        "2026-05-01T18:00:00+00:00",
        "2026-05-02T00:00:00+00:00",
    ]
    five = Schedule(kind="times_per_day", times=5, timezone="UTC")
    runs = next_runs(five, at("2026-04-30T23:00+00:00"), 5)
    assert [r.strftime("%H:%M") for r in runs] == ["00:00", "04:48", "09:36", "14:24", "19:12"]
    assert {r.date().isoformat() for r in runs} == {"2026-05-01"}


def test_runs_are_strictly_after_the_given_time() -> None:
    daily = Schedule(kind="times_per_day", times=1, timezone="UTC")
    assert iso(next_runs(daily, at("2026-05-01T00:00+00:00"), 1)) == ["2026-05-02T00:00:00+00:00"]
    assert next_run(daily, at("2026-04-30T23:59:59.999+00:00")) == at("2026-05-01T00:00+00:00")
    # `after` in another zone than the schedule's is the same instant.
    assert next_run(daily, at("2026-05-01T01:30+02:00")) == at("2026-05-01T00:00+00:00")


def test_days_of_week_in_the_schedules_zone() -> None:
    mon_fri = Schedule(kind="days_of_week", days=("mon", "fri"), at="01:30", timezone=AMS)
    runs = next_runs(mon_fri, at("2026-12-01T12:00+00:00"), 3)  # a Tuesday
    assert iso(runs) == [
        "2026-12-04T01:30:00+01:00",
        "2026-12-07T01:30:00+01:00",
        "2026-12-11T01:30:00+01:00",
    ]
    assert str(runs[0].tzinfo) == AMS


def test_a_time_in_the_spring_gap_runs_when_the_gap_ends() -> None:
    # Amsterdam: on 2026-03-29 clocks jump from 02:00 CET to 03:00 CEST.
    sunday = Schedule(kind="days_of_week", days=("sun",), at="02:30", timezone=AMS)
    assert iso(next_runs(sunday, at("2026-03-28T12:00+01:00"), 2)) == [
        "2026-03-29T03:00:00+02:00",
        "2026-04-05T02:30:00+02:00",
    ]
    # New York: on 2026-03-08 clocks jump from 02:00 EST to 03:00 EDT.
    daily = Schedule(kind="days_of_week", days=WEEKDAYS, at="02:30", timezone=NY)
    assert iso(next_runs(daily, at("2026-03-07T12:00-05:00"), 3)) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
        "2026-03-10T02:30:00-04:00",
    ]


def test_a_repeated_time_runs_once_at_its_first_occurrence() -> None:
    # Amsterdam: on 2026-10-25 clocks go back from 03:00 CEST to 02:00 CET.
    sunday = Schedule(kind="days_of_week", days=("sun",), at="02:30", timezone=AMS)
    assert iso(next_runs(sunday, at("2026-10-24T12:00+02:00"), 2)) == [
        "2026-10-25T02:30:00+02:00",
        "2026-11-01T02:30:00+01:00",
    ]
    # Asked during the second 02:30-03:00, the first occurrence has passed: next week.
    assert next_run(sunday, at("2026-10-25T02:40+01:00")) == at("2026-11-01T02:30+01:00")
    # New York: on 2026-11-01 clocks go back from 02:00 EDT to 01:00 EST.
    daily = Schedule(kind="days_of_week", days=WEEKDAYS, at="01:30", timezone=NY)
    assert iso(next_runs(daily, at("2026-10-31T12:00-04:00"), 2)) == [
        "2026-11-01T01:30:00-04:00",
        "2026-11-02T01:30:00-05:00",
    ]


def test_hourly_runs_through_both_changes_have_no_duplicates() -> None:
    hourly = Schedule(kind="times_per_day", times=24, timezone=NY)
    spring = next_runs(hourly, at("2026-03-08T00:30-05:00"), 3)
    assert iso(spring) == [
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:00 does not exist: the gap ends at 03:00, once
        "2026-03-08T04:00:00-04:00",
    ]
    autumn = next_runs(hourly, at("2026-11-01T00:30-04:00"), 3)
    assert iso(autumn) == [
        "2026-11-01T01:00:00-04:00",  # the second 01:00 (EST) does not run again
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T03:00:00-05:00",
    ]


def test_day_of_month_past_the_months_end_runs_on_its_last_day() -> None:
    day31 = Schedule(kind="day_of_month", day=31, at="06:00", timezone="UTC")
    assert [r.date().isoformat() for r in next_runs(day31, at("2026-01-31T12:00+00:00"), 4)] == [
        "2026-02-28",
        "2026-03-31",
        "2026-04-30",
        "2026-05-31",
    ]
    day29 = Schedule(kind="day_of_month", day=29, at="06:00", timezone="UTC")
    leap = next_runs(day29, at("2028-02-01T00:00+00:00"), 2)
    assert [r.date().isoformat() for r in leap] == ["2028-02-29", "2028-03-29"]
    common = next_runs(day29, at("2027-02-01T00:00+00:00"), 2)
    assert [r.date().isoformat() for r in common] == ["2027-02-28", "2027-03-29"]
    day1 = Schedule(kind="day_of_month", day=1, at="00:00", timezone="UTC")
    assert next_run(day1, at("2026-12-15T00:00+00:00")) == at("2027-01-01T00:00+00:00")


def test_weekday_of_month_nth_and_last() -> None:
    second_tue = Schedule(kind="weekday_of_month", week=2, day="tue", at="09:00", timezone="UTC")
    runs = next_runs(second_tue, at("2026-01-01T00:00+00:00"), 3)
    assert [r.date().isoformat() for r in runs] == ["2026-01-13", "2026-02-10", "2026-03-10"]
    # January 2026 has five Fridays: week 4 is the 23rd, "last" the 30th.
    fourth_fri = Schedule(kind="weekday_of_month", week=4, day="fri", at="09:00", timezone="UTC")
    last_fri = Schedule(kind="weekday_of_month", week="last", day="fri", at="09:00", timezone="UTC")
    start = at("2026-01-01T00:00+00:00")
    assert [r.date().isoformat() for r in next_runs(fourth_fri, start, 2)] == [
        "2026-01-23",
        "2026-02-27",
    ]
    assert [r.date().isoformat() for r in next_runs(last_fri, start, 2)] == [
        "2026-01-30",
        "2026-02-27",  # February 2026 has four Fridays: the 4th is the last
    ]


def test_cron_expressions_through_cronsim() -> None:
    cron = Schedule(kind="cron", expr="30 1 * * mon,fri", timezone=AMS)
    assert iso(next_runs(cron, at("2026-12-01T12:00+00:00"), 2)) == [
        "2026-12-04T01:30:00+01:00",
        "2026-12-07T01:30:00+01:00",
    ]
    # A fixed time in the spring gap runs when the gap ends, and a repeated one runs once.
    gap = Schedule(kind="cron", expr="30 2 * * *", timezone=AMS)
    assert iso(next_runs(gap, at("2026-03-28T12:00+01:00"), 2)) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]
    assert iso(next_runs(gap, at("2026-10-24T12:00+02:00"), 2)) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    # A wildcard hour keeps its rhythm in elapsed time across the jump.
    quarter = Schedule(kind="cron", expr="*/15 * * * *", timezone=AMS)
    runs = next_runs(quarter, at("2026-03-29T01:40+01:00"), 3)
    assert iso(runs) == [
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:15:00+02:00",
    ]
    assert runs[1].timestamp() - runs[0].timestamp() == timedelta(minutes=15).total_seconds()
    # Day-of-month 31 in cron means only months that have one.
    assert [r.month for r in next_runs(Schedule(kind="cron", expr="0 0 31 * *",
            timezone="UTC"), at("2026-01-31T12:00+00:00"), 2)] == [3, 5]  # fmt: skip
    assert next_runs(Schedule(kind="cron", expr="not cron"), at("2026-01-01T00:00+00:00")) == []


def test_without_a_zone_the_servers_local_zone_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", NY)
    local = Schedule(kind="days_of_week", days=("fri",), at="01:30")
    assert iso(next_runs(local, at("2026-12-01T12:00+00:00"), 1)) == ["2026-12-04T01:30:00-05:00"]
    # A naive `after` is local time too.
    assert next_run(local, datetime(2026, 12, 4, 1, 29)) == at("2026-12-04T01:30-05:00")
    monkeypatch.setenv("TZ", AMS)
    assert iso(next_runs(local, at("2026-12-01T12:00+00:00"), 1)) == ["2026-12-04T01:30:00+01:00"]


def test_short_time_is_a_weekday_this_week_else_a_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    now = at("2026-12-01T12:00+00:00")
    assert short_time(at("2026-12-04T01:30+00:00"), now) == "Fri 01:30"
    assert short_time(at("2026-12-04T01:30+01:00"), now) == "Fri 00:30"  # shown in local time
    assert short_time(at("2026-12-11T01:30+00:00"), now) == "2026-12-11 01:30"


def test_describe_schedule_lives_here_and_in_config() -> None:
    assert config_describe is describe_schedule
    assert describe_schedule(Schedule()) == "manual"
    assert describe_schedule(Schedule(kind="times_per_day", times=4)) == "4× a day"
    week = Schedule(kind="weekday_of_month", week="last", day="tue", at="06:00", timezone=AMS)
    assert describe_schedule(week) == f"last tue of the month at 06:00 {AMS}"


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("0 0 * * 5-1", 'the range "5-1" in the day of week field runs backwards'),
        ("0 0 * * fri-mon", "runs backwards"),
        ("61 * * * *", '"61" is not a valid minute'),
        ("0 0 31 2 *", "never comes"),
        ("* * *", "5 fields"),
        ("0 0 * * mon#6", "day of week"),
    ],
)
def test_cron_validation_uses_cronsim_with_friendly_words(expr: str, words: str) -> None:
    assert words in cron_problem(expr)
    text = f"""
[[connection]]
name = "Main"
schedule = {{ kind = "cron", expr = "{expr}" }}
[connection.braze]
endpoint = "https://rest.iad-01.braze.com"
api_key = "secret:braze-main"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert "connection[0].schedule.expr" in caught.value.render()


def test_cron_extensions_cronsim_knows_are_accepted() -> None:
    for expr in ("0 0 L * *", "0 9 * * mon#2", "*/15 8-18 * * mon-fri", "0 0 * * 7"):
        assert cron_problem(expr) == "", expr
