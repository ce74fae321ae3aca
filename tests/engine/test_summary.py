"""Summaries of connections and goals, and run events described as text."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import pytest

from bctui.engine.config import load_config
from bctui.engine.models import (
    Audience,
    BrazeSettings,
    Connection,
    ExportGoal,
    ExportMapping,
    IdentifierPair,
    ImportGoal,
    ImportMapping,
    Remaining,
    Schedule,
)
from bctui.engine.runs import events as ev
from bctui.engine.runs.describe import describe, short_counts
from bctui.engine.summary import (
    connection_line,
    connection_summary,
    goal_counts,
    goal_summary,
    run_budget_line,
)

ROOT = Path(__file__).resolve().parents[2]
IDS = ((IdentifierPair("external_id", "ext"),),)
BRAZE = BrazeSettings("https://rest.iad-01.braze.com", "secret:braze")
NOW = datetime.fromisoformat("2026-12-01T12:00+00:00")  # a Tuesday


def import_goal(**changes: object) -> ImportGoal:
    goal = ImportGoal(
        "in",
        Audience("seg-1", "All Users"),
        IDS,
        mappings=(
            ImportMapping("first_name", "first_name", "set"),
            ImportMapping("email", "email", "set"),
            ImportMapping("custom_attributes.tags", "tags", "add"),
            ImportMapping("country", "country", "set"),
            ImportMapping("custom_attributes.vip", "vip", "add"),
        ),
        allow_create=True,
    )
    return dataclasses.replace(goal, **changes)  # type: ignore[arg-type]


def export_goal(**changes: object) -> ExportGoal:
    mappings = tuple(ExportMapping("property", f"attr{i}", f"p{i}") for i in range(8))
    goal = ExportGoal("out", "vip", IDS, mappings=mappings)
    return dataclasses.replace(goal, **changes)  # type: ignore[arg-type]


def test_goal_summaries() -> None:
    assert goal_summary(import_goal()) == (
        'Braze segment "All Users" → 5 fields (set, add), creates profiles'
    )
    narrowed = import_goal(
        audience=Audience("seg-1", "", ("c1", "c2")),
        allow_create=False,
        remaining=Remaining(True, "braze_", "set_if_empty"),
        mappings=(ImportMapping("email", "email", "set"),),
    )
    assert goal_summary(narrowed) == (
        'Braze segment "seg-1" (2 campaigns\' receivers) → 1 field (set), '
        "other fields as braze_* (set_if_empty), existing profiles only"
    )
    assert goal_summary(export_goal()) == (
        'segment "vip" → 8 attributes, update only, changed attributes'
    )
    everything = export_goal(allow_create=True, all_attributes=True, mappings=())
    assert goal_summary(everything) == 'segment "vip" → 0 attributes, creates users, all attributes'


def test_connection_line_and_goal_counts() -> None:
    conn = Connection(
        "c",
        BRAZE,
        goals=(import_goal(), export_goal()),
        schedule=Schedule(kind="times_per_day", times=4),
    )
    assert connection_line(conn) == "1 import, 1 export · 4× a day · https://rest.iad-01.braze.com"
    many = dataclasses.replace(conn, goals=(import_goal(), import_goal(), export_goal()))
    assert goal_counts(many) == "2 imports, 1 export"
    assert goal_counts(Connection("c", BRAZE)) == "no goals"


def test_connection_summary_of_the_example_with_its_next_run() -> None:
    (conn,) = load_config(ROOT / "connections.toml").connections
    summary = connection_summary(conn, now=NOW)
    assert summary["name"] == "Braze main" and summary["schedule"] == "mon, fri at 01:30"
    assert [g["type"] for g in summary["goals"]] == ["import", "export"]
    assert "api_key" not in str(summary) and "secret:" not in str(summary)
    next_run = datetime.fromisoformat(summary["next_run"])
    assert next_run > NOW and next_run.strftime("%a %H:%M") == "Fri 01:30"
    off = connection_summary(dataclasses.replace(conn, enabled=False), now=NOW)
    assert off["next_run"] is None
    manual = connection_summary(dataclasses.replace(conn, schedule=Schedule()), now=NOW)
    assert manual["next_run"] is None


def test_connection_summary_in_a_fixed_zone() -> None:
    conn = Connection(
        "c",
        BRAZE,
        enabled=True,
        schedule=Schedule(kind="day_of_month", day=31, at="06:00", timezone="Europe/Amsterdam"),
    )
    summary = connection_summary(conn, now=datetime.fromisoformat("2027-02-01T00:00+00:00"))
    assert summary["next_run"] == "2027-02-28T06:00:00+01:00"


EVENTS: list[tuple[ev.Event, str | None]] = [
    (
        ev.RunStarted(run_id="r1", connection="Main", goals=["in"], pid=42),
        'run r1 of "Main" started by the CLI, PID 42',
    ),
    (
        ev.RunStarted(run_id="r1", connection="Main", goals=["in"], pid=42, dry_run=True),
        'run r1 of "Main" started by the CLI (dry run), PID 42',
    ),
    (
        ev.RunStarted(run_id="r1", connection="Main", goals=[], pid=42, full=True, resumed=True),
        'run r1 of "Main" resumed (started by the CLI) (full resync), PID 42',
    ),
    (ev.PhaseChanged(goal="in", phase="waiting"), "[in] waiting"),
    (ev.PhaseChanged(goal="in", phase="merging", detail="3 files"), "[in] merging: 3 files"),
    (ev.Progress(goal="in", done=5, total=10), None),
    (ev.BatchSent(goal="out", number=1, size=75), None),
    (
        ev.RateLimitWait(goal="out", seconds=1.25, reason="429"),
        "[out] waiting 1.2 s for Braze's rate limit (429)",
    ),
    (ev.RateLimitWait(goal="out", seconds=2.0), "[out] waiting 2.0 s for Braze's rate limit"),
    (ev.LogLine(level="info", message="hello"), "hello"),
    (ev.LogLine(level="warning", message="careful", goal="in"), "[in] warning: careful"),
    (
        ev.GoalFinished(
            goal="out",
            goal_type="export",
            state="FINISHED",
            counts={"checked": 1200, "updated": 3},
            data_points=1500,
            seconds=2.04,
        ),
        "[out] FINISHED in 2.0 s — 1,200 checked, 3 updated, 1,500 data points",
    ),
    (
        ev.GoalFinished(
            goal="in",
            goal_type="import",
            state="FAILED",
            counts={},
            data_points=0,
            seconds=0.5,
            error="no bucket",
        ),
        "[in] FAILED in 0.5 s — 0 data points — no bucket",
    ),
    (ev.RunFinished(run_id="r1", state="FINISHED"), "run r1 FINISHED"),
    (ev.RunFinished(run_id="r1", state="FAILED", error="boom"), "run r1 FAILED: boom"),
]


@pytest.mark.parametrize(("event", "text"), EVENTS)
def test_describe_every_event_kind(event: ev.Event, text: str | None) -> None:
    if isinstance(event, ev.RunStarted) and not hasattr(event, "started_by"):
        text = (text or "").replace(" by the CLI", "").replace(" (started)", "")
    assert describe(event) == text


def test_every_event_kind_is_covered() -> None:
    assert {type(e) for e, _ in EVENTS} == set(ev.EVENT_TYPES.values())


def test_describe_names_who_started_the_run() -> None:
    fields = {f.name for f in dataclasses.fields(ev.RunStarted)}
    if "started_by" not in fields:
        pytest.skip("RunStarted has no started_by yet")
    ui = ev.RunStarted(run_id="r2", connection="Main", goals=[], pid=7, started_by="ui")
    assert describe(ui) == 'run r2 of "Main" started by the UI, PID 7'
    scheduled = dataclasses.replace(ui, started_by="scheduler", resumed=True)
    assert describe(scheduled) == 'run r2 of "Main" resumed (started by the scheduler), PID 7'


def test_short_counts() -> None:
    assert (
        short_counts({"checked": 9, "created": 2, "failed": 1}, 30)
        == "2 created · 1 failed · 30 dp"
    )
    assert short_counts({"unchanged": 1_000}, 0) == "1,000 unchanged"
    assert short_counts({}, 0) == ""


def test_render_still_exports_describe() -> None:
    from bctui.commands.render import describe as from_render

    assert from_render is describe


def test_budgets_in_goal_summaries_and_run_summaries() -> None:
    goal = export_goal(max_data_points=500000, on_budget="partial")
    assert goal_summary(goal).endswith(", at most 500,000 data points a run (the rest next run)")
    assert goal_summary(export_goal(max_data_points=9)).endswith("(refused when more)")
    budget = {"limit": 250, "estimate": 342, "set_on": 'export goal "out"', "outcome": "partial"}
    assert run_budget_line("out", {"data_points": 250, "budget": budget}) == (
        'out: ~342 data points against a budget of 250 (export goal "out"): partial, 250 sent; '
        "the rest goes next run")
    refused = {**budget, "outcome": "refused"}
    assert run_budget_line("out", {"data_points": 0, "budget": refused}).endswith(
        "refused, nothing sent")
    assert run_budget_line("out", {"budget": {**budget, "outcome": "within"}}) is None
    assert run_budget_line("out", {"data_points": 3}) is None
