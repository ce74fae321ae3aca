"""The Schedule tab of a connection: the kind, the fields of that kind only, a time zone, and the
next three run times computed live as the fields change."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import cache

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, Input, Label, Select, Static

from bctui.engine.models import SCHEDULE_KINDS, WEEKDAYS, Connection, Schedule
from bctui.engine.schedule import describe_schedule, local_zone, next_runs
from bctui.tui.widgets.details_form import ConnectionForm, Problems

KIND_LABELS = {
    "manual": "manual — only when started",
    "times_per_day": "times a day",
    "days_of_week": "days of the week",
    "day_of_month": "a day of the month",
    "weekday_of_month": "a weekday of the month",
    "cron": "cron expression",
}
# Which field rows each kind shows (the rows' ids are schedule-<field>-row).
KIND_FIELDS = {
    "manual": (),
    "times_per_day": ("times",),
    "days_of_week": ("days", "at"),
    "day_of_month": ("day", "at"),
    "weekday_of_month": ("week", "weekday", "at"),
    "cron": ("expr",),
}
MAX_TIMES = 1440
"""More runs a day than minutes in it is never meant; refused before the preview computes them."""
WEEKS: tuple[tuple[str, int | str], ...] = (
    ("1st", 1), ("2nd", 2), ("3rd", 3), ("4th", 4), ("last", "last"),
)  # fmt: skip


@cache
def _zone_names() -> list[str]:
    from zoneinfo import available_timezones

    return sorted(available_timezones())


def known_zone(name: str) -> bool:
    """Whether `name` is an IANA time zone (a folder such as "Europe" is not)."""
    return name in _zone_names()


def whole_number(text: str) -> int | None:
    """An int from a field, or None when it is not a whole number."""
    try:
        return int(text.strip())
    except ValueError:
        return None


class ScheduleForm(ConnectionForm):
    """When a connection runs by itself."""

    FIELDS = ("kind", "times", "days", "day", "week", "weekday", "at", "expr", "timezone")

    def __init__(self, connection: str, *, id: str | None = None) -> None:
        super().__init__(connection, id=id)
        self.problems: Problems = {}
        self.clock: Callable[[], float] | None = None

    def compose(self) -> ComposeResult:
        yield from self.row(
            "Runs",
            Select(
                [(KIND_LABELS[k], k) for k in SCHEDULE_KINDS],
                allow_blank=False,
                compact=True,
                value="manual",
                id="schedule-kind",
            ),
            field="kind",
        )
        with Vertical(id="schedule-times-row", classes="kind-row"):
            yield from self.row(
                "Runs a day",
                Input(compact=True, placeholder="1-24, evenly from 00:00", id="schedule-times"),
                field="times",
            )
        with Vertical(id="schedule-days-row", classes="kind-row"):
            with Horizontal(classes="form-row"):
                yield Label("Days", classes="form-label")
                with Horizontal(id="schedule-days"):
                    for day in WEEKDAYS:
                        yield Checkbox(day, id=f"schedule-day-{day}", compact=True)
            yield Label("", id="days-error", classes="field-error -empty")
        with Vertical(id="schedule-day-row", classes="kind-row"):
            yield from self.row(
                "Day", Input(compact=True, placeholder="1-31", id="schedule-day"), field="day"
            )
        with Vertical(id="schedule-week-row", classes="kind-row"):
            yield from self.row(
                "Week",
                Select(WEEKS, allow_blank=False, compact=True, value=1, id="schedule-week"),
                field="week",
            )
        with Vertical(id="schedule-weekday-row", classes="kind-row"):
            yield from self.row(
                "Weekday",
                Select(
                    [(d, d) for d in WEEKDAYS],
                    allow_blank=False,
                    compact=True,
                    value="mon",
                    id="schedule-weekday",
                ),
                field="weekday",
            )
        with Vertical(id="schedule-at-row", classes="kind-row"):
            yield from self.row(
                "At",
                Input(compact=True, placeholder="HH:MM, 24-hour", id="schedule-at"),
                field="at",
            )
        with Vertical(id="schedule-expr-row", classes="kind-row"):
            yield from self.row(
                "Cron",
                Input(
                    compact=True,
                    placeholder="minute hour day month weekday, e.g. 30 1 * * mon,fri",
                    id="schedule-expr",
                ),
                field="expr",
            )
        yield from self.row(
            "Time zone",
            Input(
                compact=True,
                placeholder=f"empty: the server's ({local_zone()})",
                id="schedule-timezone",
                suggester=SuggestFromList(_zone_names(), case_sensitive=False),
            ),
            field="timezone",
        )
        yield Label("Next runs", classes="form-section")
        yield Static("", id="schedule-next")

    def kind(self) -> str:
        """The chosen kind."""
        value = self.query_one("#schedule-kind", Select).value
        return value if isinstance(value, str) else "manual"

    def load(self, conn: Connection) -> None:
        self.connection = conn.name
        sched = conn.schedule
        self.query_one("#schedule-kind", Select).value = sched.kind
        self.query_one("#schedule-times", Input).value = str(sched.times) if sched.times else ""
        for day in WEEKDAYS:
            self.query_one(f"#schedule-day-{day}", Checkbox).value = day in sched.days
        day_number = sched.day if sched.kind == "day_of_month" and sched.day else ""
        self.query_one("#schedule-day", Input).value = str(day_number)
        if sched.kind == "weekday_of_month":
            self.query_one("#schedule-week", Select).value = sched.week or 1
            self.query_one("#schedule-weekday", Select).value = sched.day or "mon"
        self.query_one("#schedule-at", Input).value = sched.at
        self.query_one("#schedule-expr", Input).value = sched.expr
        self.query_one("#schedule-timezone", Input).value = sched.timezone
        self._show_kind()
        self.problems = {}
        self.update_next(conn.schedule)

    def candidate(self) -> tuple[Schedule, Problems]:
        """The schedule the fields describe, and what the model cannot hold."""
        kind = self.kind()
        problems: Problems = {}
        values: dict[str, object] = {
            "kind": kind,
            "timezone": self.query_one("#schedule-timezone", Input).value.strip(),
        }
        zone = str(values["timezone"])
        if zone and not known_zone(zone):
            problems["timezone"] = (
                f'unknown time zone "{zone}" — use an IANA name such as "Europe/Amsterdam" or "UTC"'
            )
            values["timezone"] = ""  # previewed in the server's zone meanwhile
        fields = KIND_FIELDS[kind]
        if "at" in fields:
            values["at"] = self.query_one("#schedule-at", Input).value.strip()
        if kind == "times_per_day":
            text = self.query_one("#schedule-times", Input).value
            times = whole_number(text)
            if times is None:
                problems["times"] = f'"{text.strip()}" is not a whole number — use 1 to 24'
            elif not 1 <= times <= MAX_TIMES:
                # The preview would compute that many runs: refused here, before it does.
                problems["times"] = (
                    f"{times} runs a day is out of range — use a number from 1 to 24"
                )
            values["times"] = times or 0
        elif kind == "days_of_week":
            days = tuple(
                d for d in WEEKDAYS if self.query_one(f"#schedule-day-{d}", Checkbox).value
            )
            if not days:
                problems["days"] = "no days chosen — tick at least one"
            values["days"] = days
        elif kind == "day_of_month":
            text = self.query_one("#schedule-day", Input).value
            day = whole_number(text)
            if day is None:
                problems["day"] = f'"{text.strip()}" is not a whole number — use 1 to 31'
            values["day"] = day or 0
        elif kind == "weekday_of_month":
            week = self.query_one("#schedule-week", Select).value
            weekday = self.query_one("#schedule-weekday", Select).value
            values["week"] = week if isinstance(week, int | str) else 1
            values["day"] = weekday if isinstance(weekday, str) else "mon"
        elif kind == "cron":
            values["expr"] = self.query_one("#schedule-expr", Input).value.strip()
        return Schedule(**values), problems  # type: ignore[arg-type]

    def apply(self, conn: Connection) -> tuple[Connection, Problems]:
        schedule, problems = self.candidate()
        if schedule == conn.schedule:
            schedule = conn.schedule
        return dataclasses.replace(conn, schedule=schedule), problems

    def field_for(self, path: tuple[str | int, ...]) -> str | None:
        match path:
            case ("schedule", "day", *_) if self.kind() == "weekday_of_month":
                return "weekday"
            case ("schedule", str(key), *_) if key in self.FIELDS:
                return key
            case ("schedule", *_):
                return "kind"
        return None

    def show_problems(self, problems: Mapping[str, str]) -> None:
        super().show_problems(problems)
        self.problems = dict(problems)
        self.update_next(self.candidate()[0])

    def update_next(self, schedule: Schedule) -> None:
        """Show the next three run times (or why they cannot be computed)."""
        out = self.query_one("#schedule-next", Static)
        if self.problems:
            first = next(iter(self.problems.values()))
            out.update(Content(f"fix the schedule to see its next runs: {first}"))
            return
        if schedule.kind == "manual":
            out.update("runs only when started (r on the connections list, or `bctui run`)")
            return
        if schedule.kind == "times_per_day" and not 1 <= schedule.times <= MAX_TIMES:
            out.update(Content(f"{schedule.times} runs a day is out of range — use 1 to 24"))
            return
        now_ts = self.clock() if self.clock else datetime.now().timestamp()
        now = datetime.fromtimestamp(now_ts).astimezone(local_zone())
        runs = next_runs(schedule, now, 3)
        if not runs:
            out.update("this schedule never runs")
            return
        lines = [describe_schedule(schedule)]
        for when in runs:
            local = when.astimezone(local_zone())
            text = local.strftime("%a %Y-%m-%d %H:%M %Z")
            if schedule.timezone:
                text = f"{when.strftime('%a %Y-%m-%d %H:%M')} {schedule.timezone}  ({text} here)"
            lines.append(f"  {text}")
        out.update(Content("\n".join(lines)))  # a cron expression or zone is not markup

    def _show_kind(self) -> None:
        shown = KIND_FIELDS[self.kind()]
        for row in self.query(".kind-row"):
            row.display = (row.id or "").removeprefix("schedule-").removesuffix("-row") in shown

    def edited(self) -> None:
        # The preview follows every keystroke; the validator's words follow shortly after.
        schedule, self.problems = self.candidate()
        self.update_next(schedule)
        super().edited()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "schedule-kind":
            self._show_kind()
        self.edited()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.edited()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self.edited()
