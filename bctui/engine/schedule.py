"""When a connection's schedule runs next: one module for the CLI, the UI and the scheduler.

The rules (the README quotes them):

- Times are wall-clock times in the schedule's `timezone` (an IANA name such as
  "Europe/Amsterdam"), or else in the server's local time zone (`$TZ`, else `/etc/localtime`).
- `manual` never runs by itself.
- `times_per_day {times}`: that many runs a day, evenly spaced from 00:00 and rounded down to the
  minute: 4 → 00:00, 06:00, 12:00, 18:00; 5 → 00:00, 04:48, 09:36, 14:24, 19:12.
- `days_of_week {days, at}`: at `at` on each listed weekday.
- `day_of_month {day, at}`: at `at` on that day of every month; a day past the month's end (31 in
  April, 29-31 in February) runs on the month's last day.
- `weekday_of_month {week, day, at}`: the 1st, 2nd, 3rd or 4th such weekday of the month (every
  month has four), or with `week = "last"` the month's last such weekday.
- `cron {expr}`: a five-field cron expression (minute hour day-of-month month day-of-week; names
  such as `mon` and `jan` allowed), evaluated by the `cronsim` library the way Debian's cron does:
  when both day fields are restricted, a day matching either one runs.
- Daylight saving time: a local time that does not exist (the spring-forward gap, e.g. 02:30 when
  clocks jump from 02:00 to 03:00) runs at the first instant after the gap (03:00); a local time
  that happens twice (fall back) runs once, at its first occurrence. Cron expressions with a fixed
  minute and hour follow the same two rules; those whose minute or hour field starts with `*`
  (e.g. `*/15 * * * *`) run on elapsed time and keep their rhythm through the change.
"""

from __future__ import annotations

import calendar
import os
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bctui.engine.models import WEEKDAYS, Schedule

_ORDINALS: Final[dict[int | str, str]] = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", "last": "last"}
_zone_cache: dict[str, tzinfo] = {}


def describe_schedule(schedule: Schedule) -> str:
    """A short human form: 'mon, fri at 01:30', '4× a day', 'manual'."""
    zone = f" {schedule.timezone}" if schedule.timezone else ""
    match schedule.kind:
        case "times_per_day":
            return f"{schedule.times}× a day{zone}"
        case "days_of_week":
            return f"{', '.join(schedule.days)} at {schedule.at}{zone}"
        case "day_of_month":
            return f"day {schedule.day} of the month at {schedule.at}{zone}"
        case "weekday_of_month":
            nth = _ORDINALS.get(schedule.week, str(schedule.week))
            return f"{nth} {schedule.day} of the month at {schedule.at}{zone}"
        case "cron":
            return f"cron {schedule.expr}{zone}"
    return "manual"


def local_zone() -> tzinfo:
    """The server's local time zone: `$TZ`, else `/etc/localtime`, else the current UTC offset."""
    name = os.environ.get("TZ", "").lstrip(":")
    cached = _zone_cache.get(name)
    if cached is not None:
        return cached
    zone = _find_local_zone(name)
    _zone_cache[name] = zone
    return zone


def _find_local_zone(name: str) -> tzinfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # a POSIX rule such as "CET-1CEST" rather than an IANA name
    target = os.path.realpath("/etc/localtime")
    if "zoneinfo/" in target:
        try:
            return ZoneInfo(target.split("zoneinfo/", 1)[1])
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        with open("/etc/localtime", "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        pass
    return datetime.now().astimezone().tzinfo or UTC


def schedule_zone(schedule: Schedule) -> tzinfo:
    """The zone a schedule's times are read in: its `timezone`, else the server's local zone."""
    if schedule.timezone:
        try:
            return ZoneInfo(schedule.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass  # validation refuses unknown zones; a hand-built Schedule falls back
    return local_zone()


def next_runs(schedule: Schedule, after: datetime, count: int = 3) -> list[datetime]:
    """The next `count` run times strictly after `after`, in the schedule's zone ([] for manual).

    A naive `after` is read as the server's local time.
    """
    if count <= 0 or schedule.kind == "manual":
        return []
    if after.tzinfo is None:
        after = after.astimezone()
    zone = schedule_zone(schedule)
    if schedule.kind == "cron":
        return _cron_runs(schedule.expr, after, zone, count)
    day = after.astimezone(zone).date() - timedelta(days=1)
    found: list[datetime] = []
    # Every kind but an empty days_of_week runs at least once a month.
    for _ in range(7 + 31 * (count + 1)):
        for moment in _times_on(schedule, day):
            when = _aware(datetime.combine(day, moment), zone)
            if when > after and (not found or when > found[-1]):
                found.append(when)
                if len(found) == count:
                    return found
        day += timedelta(days=1)
    return found


def next_run(schedule: Schedule, after: datetime) -> datetime | None:
    """The next run time strictly after `after`, or None when the schedule never runs."""
    runs = next_runs(schedule, after, 1)
    return runs[0] if runs else None


def short_time(when: datetime, now: datetime | None = None) -> str:
    """A run time for a table, in the server's local zone: 'Fri 01:30' within the coming week,
    else '2026-12-04 01:30'."""
    zone = local_zone()
    local = when.astimezone(zone)
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    if today <= local.date() < today + timedelta(days=7):
        return local.strftime("%a %H:%M")
    return local.strftime("%Y-%m-%d %H:%M")


def _times_on(schedule: Schedule, day: date) -> list[time]:
    """The local wall-clock times the schedule runs on `day`, in order."""
    if schedule.kind == "times_per_day":
        times = min(max(0, schedule.times), 1440)  # validation allows 24; never past one a minute
        minutes = [i * 1440 // times for i in range(times)]
        return [time(m // 60, m % 60) for m in minutes]
    at = _parse_at(schedule.at)
    if at is None:
        return []
    weekday = WEEKDAYS[day.weekday()]
    last = calendar.monthrange(day.year, day.month)[1]
    if schedule.kind == "days_of_week":
        return [at] if weekday in schedule.days else []
    if schedule.kind == "day_of_month":
        if not isinstance(schedule.day, int) or schedule.day < 1:
            return []
        return [at] if day.day == min(schedule.day, last) else []
    if schedule.kind == "weekday_of_month":
        if weekday != schedule.day:
            return []
        if schedule.week == "last":
            return [at] if day.day + 7 > last else []
        return [at] if (day.day - 1) // 7 + 1 == schedule.week else []
    return []


def _parse_at(text: str) -> time | None:
    hours, sep, minutes = text.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit()):
        return None
    try:
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def _exists(local: datetime, zone: tzinfo) -> bool:
    aware = local.replace(tzinfo=zone, fold=0)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local


def _aware(local: datetime, zone: tzinfo) -> datetime:
    """A local wall-clock time as an instant: the first occurrence of a repeated time, the first
    instant after the gap for a time that does not exist."""
    probe = local
    # Gaps are whole minutes (at most a few hours); a day bounds the walk whatever the zone data.
    for _ in range(1440):
        if _exists(probe, zone):
            return probe.replace(tzinfo=zone, fold=0)
        probe += timedelta(minutes=1)
    return local.replace(tzinfo=zone, fold=0)


def _cron_runs(expr: str, after: datetime, zone: tzinfo, count: int) -> list[datetime]:
    from cronsim import CronSim, CronSimError

    try:
        times = CronSim(expr, after.astimezone(zone))
        found: list[datetime] = []
        for when in times:
            if when > after and (not found or when > found[-1]):
                found.append(when)
                if len(found) == count:
                    break
        return found
    except CronSimError:
        return []  # validation refuses such expressions; a hand-built Schedule never runs
