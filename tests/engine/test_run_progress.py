"""RunView: run events reduced to what a front end shows, from recorded event sequences."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from bctui.engine.runs.events import (
    BatchSent,
    Event,
    EventLog,
    GoalFinished,
    LogLine,
    PhaseChanged,
    Progress,
    RateLimitWait,
    RunFinished,
    RunStarted,
    read_events,
)
from bctui.engine.runs.progress import RunProgress, RunView

T0 = 1_796_040_000.0
RUN = "20261201-120000-abcdef"
COUNTS0 = dict.fromkeys(("checked", "created", "updated", "unchanged", "skipped", "failed"), 0)


def counts(**values: int) -> dict[str, int]:
    """A full counts dict."""
    return {**COUNTS0, **values}


def import_then_export(run_id: str = RUN) -> list[Event]:
    """What a run of an import (3 files) and an export (150 profiles, 2 batches) writes."""
    t = T0
    return [
        RunStarted(
            run_id=run_id,
            connection="Braze main",
            goals=["in", "out"],
            pid=42,
            started_by="scheduler",
            ts=t,
        ),
        PhaseChanged(goal="in", phase="requesting", detail="export of segment x", ts=t + 0.1),
        LogLine(level="info", message="requesting an export", goal="in", ts=t + 0.1),
        PhaseChanged(goal="in", phase="waiting", detail="for files", ts=t + 0.5),
        PhaseChanged(goal="in", phase="merging", detail="file 1: a.gz", ts=t + 2.0),
        Progress(
            goal="in",
            done=5000,
            unit="users",
            counts=counts(checked=5000, created=5000),
            ts=t + 3.0,
        ),
        PhaseChanged(goal="in", phase="merging", detail="file 2: b.gz", ts=t + 3.0),
        Progress(
            goal="in",
            done=10000,
            unit="users",
            counts=counts(checked=10000, created=9000, updated=1000),
            ts=t + 4.0,
        ),
        PhaseChanged(goal="in", phase="merging", detail="file 3: c.gz", ts=t + 4.0),
        Progress(
            goal="in",
            done=12000,
            unit="users",
            counts=counts(checked=12000, created=9000, updated=2990, failed=10),
            ts=t + 5.0,
        ),
        LogLine(level="warning", message="bad line 3 of c.gz", goal="in", ts=t + 5.0),
        GoalFinished(
            goal="in",
            goal_type="import",
            state="FINISHED",
            counts=counts(checked=12000, created=9000, updated=2990, failed=10),
            data_points=0,
            seconds=5.5,
            ts=t + 5.6,
        ),
        PhaseChanged(goal="out", phase="selecting", detail="changes after 0", ts=t + 5.7),
        PhaseChanged(goal="out", phase="sending", detail="batches of up to 75", ts=t + 6.0),
        RateLimitWait(goal="out", seconds=0.8, reason="429", ts=t + 6.2),
        BatchSent(goal="out", number=1, size=75, status=201, ts=t + 6.5),
        Progress(
            goal="out",
            done=75,
            total=150,
            counts=counts(checked=75, created=75),
            data_points=750,
            ts=t + 7.0,
        ),
        BatchSent(goal="out", number=2, size=75, failed=2, status=201, ts=t + 7.5),
        Progress(
            goal="out",
            done=150,
            total=150,
            counts=counts(checked=150, created=148, failed=2),
            data_points=1480,
            ts=t + 8.0,
        ),
        GoalFinished(
            goal="out",
            goal_type="export",
            state="FINISHED",
            counts=counts(checked=150, created=148, failed=2),
            data_points=1480,
            seconds=2.4,
            ts=t + 8.1,
        ),
        RunFinished(run_id=run_id, state="FINISHED", ts=t + 8.2),
    ]


def reduce(events: Iterable[Event], **kwargs: object) -> RunProgress:
    """Every event applied; the final snapshot."""
    view = RunView(**kwargs)  # type: ignore[arg-type]
    for event in events:
        view.apply(event)
    return view.snapshot()


def test_import_then_export_ends_finished_with_each_goals_counts() -> None:
    run = reduce(import_then_export())
    assert (run.run_id, run.connection, run.started_by, run.pid) == (
        RUN,
        "Braze main",
        "scheduler",
        42,
    )
    assert run.started_at == T0 and run.state == "FINISHED" and run.over
    assert [g.name for g in run.goals] == ["in", "out"]
    imp, exp = run.goals
    assert (imp.type, imp.state, imp.phase, imp.files) == ("import", "FINISHED", "done", 3)
    assert (imp.count("checked"), imp.count("updated"), imp.count("failed")) == (12000, 2990, 10)
    assert imp.unit == "users" and imp.warnings == 1 and imp.seconds == 5.5
    assert (exp.type, exp.done, exp.total, exp.fraction) == ("export", 150, 150, 1.0)
    assert (exp.batches, exp.batch_failures, exp.data_points) == (2, 2, 1480)
    assert exp.waits == 1 and exp.last_wait is not None and exp.last_wait.reason == "429"
    assert not exp.waiting
    assert run.data_points == 1480


def test_midway_snapshots_show_the_going_goal_its_phase_and_rate() -> None:
    events = import_then_export()
    view = RunView()
    for event in events[:6]:  # up to the first file's progress
        view.apply(event)
    mid = view.snapshot()
    assert mid.state == "" and not mid.over
    current = mid.current
    assert current is not None and current.name == "in"
    assert (current.phase, current.done, current.fraction) == ("merging", 5000, None)
    assert current.rates == (5000.0,)  # 5,000 users in the second since merging began
    for event in events[6:15]:  # up to the rate-limit wait
        view.apply(event)
    waiting = view.snapshot().current
    assert waiting is not None and waiting.name == "out" and waiting.phase == "sending"
    assert waiting.waiting and waiting.last_wait is not None
    assert waiting.last_wait.seconds == 0.8
    assert view.snapshot().goal("in") is not None
    for event in events[15:17]:  # a batch and progress after the wait
        view.apply(event)
    after = view.snapshot().current
    assert after is not None and not after.waiting and after.fraction == 0.5
    assert after.rates == (75.0,)


def test_snapshots_are_immutable_copies() -> None:
    events = import_then_export()
    view = RunView()
    for event in events[:6]:
        view.apply(event)
    before = view.snapshot()
    for event in events[6:]:
        view.apply(event)
    assert before.goals[0].done == 5000 and before.state == ""
    with pytest.raises(TypeError):
        before.goals[0].counts["checked"] = 1  # type: ignore[index]
    assert view.snapshot().goals[0].done == 12000


def test_a_resumed_run_keeps_the_goals_finished_before_the_interruption(tmp_path: Path) -> None:
    events = import_then_export()
    # Interrupted during the export, then resumed by a new process that appends to the log.
    first = events[:17]
    t = T0 + 100
    resumed: list[Event] = [
        RunStarted(
            run_id=RUN,
            connection="Braze main",
            goals=["in", "out"],
            pid=43,
            resumed=True,
            started_by="scheduler",
            ts=t,
        ),
        LogLine(level="info", message="resuming the export after change 75", goal="out", ts=t),
        PhaseChanged(goal="out", phase="selecting", detail="changes after 75", ts=t + 0.1),
        PhaseChanged(goal="out", phase="sending", detail="batches of up to 75", ts=t + 0.2),
        Progress(
            goal="out",
            done=75,
            total=75,
            counts=counts(checked=75, created=75),
            data_points=750,
            ts=t + 1.5,
        ),
        GoalFinished(
            goal="out",
            goal_type="export",
            state="FINISHED",
            counts=counts(checked=75, created=75),
            data_points=750,
            seconds=1.5,
            ts=t + 1.6,
        ),
        RunFinished(run_id=RUN, state="FINISHED", ts=t + 1.7),
    ]
    view = RunView()
    for event in first:
        view.apply(event)
    view.mark_interrupted()
    assert view.snapshot().interrupted and view.snapshot().over
    # The same through a log file, as the UI reads it.
    log = EventLog(tmp_path / "run.jsonl", progress_interval=0)
    for event in first + resumed:
        log.emit(event)
    log.close()
    run = reduce(read_events(tmp_path / "run.jsonl"))
    assert run.resumed and run.pid == 43 and not run.interrupted and run.state == "FINISHED"
    imp, exp = run.goals
    assert imp.state == "FINISHED" and imp.count("checked") == 12000  # not repeated, still shown
    assert exp.state == "FINISHED" and exp.count("created") == 75
    assert run.started_at == T0  # when the run first started


def test_a_process_that_resumes_another_run_first_shows_each_run_in_turn() -> None:
    other = import_then_export("20261201-110000-000001")
    ours = import_then_export()
    view = RunView()
    for event in other:
        view.apply(event)
    assert view.snapshot().run_id == "20261201-110000-000001"
    view.apply(ours[0])
    fresh = view.snapshot()
    assert fresh.run_id == RUN and fresh.state == ""
    assert all(not g.started and not g.state for g in fresh.goals)


def test_a_failed_goal_fails_the_run_with_its_error() -> None:
    t = T0
    events: list[Event] = [
        RunStarted(run_id=RUN, connection="c", goals=["in", "out"], pid=1, ts=t),
        PhaseChanged(goal="in", phase="requesting", ts=t + 0.1),
        LogLine(level="error", message="Braze said: forbidden", goal="in", ts=t + 0.2),
        GoalFinished(
            goal="in",
            goal_type="import",
            state="FAILED",
            counts=counts(),
            data_points=0,
            seconds=0.3,
            error="the key lacks users.export.segment",
            ts=t + 0.3,
        ),
        RunFinished(
            run_id=RUN,
            state="FAILED",
            error="goal in failed",
            ts=t + 0.4,
            summary={
                "state": "FAILED",
                "goals": {
                    "in": {"type": "import", "state": "FAILED", "error": "x"},
                    "out": {"type": "export", "state": "CANCELLED", "checked": 0},
                },
            },
        ),
    ]
    run = reduce(events, goal_types={"out": "export"})
    assert run.state == "FAILED" and run.error == "goal in failed"
    imp, exp = run.goals
    assert (imp.state, imp.phase, imp.warnings) == ("FAILED", "failed", 1)
    assert imp.error == "the key lacks users.export.segment"  # its own result, not the summary's
    assert (exp.type, exp.state, exp.started) == ("export", "CANCELLED", True)


def test_a_cancelled_run_ends_cancelled_midway() -> None:
    events = import_then_export()[:17]
    t = events[-1].ts
    events += [
        GoalFinished(
            goal="out",
            goal_type="export",
            state="CANCELLED",
            counts=counts(checked=75, created=75),
            data_points=750,
            seconds=1.0,
            ts=t + 0.1,
        ),
        RunFinished(run_id=RUN, state="CANCELLED", error="the run was cancelled", ts=t + 0.2),
    ]
    run = reduce(events)
    assert run.state == "CANCELLED" and run.error == "the run was cancelled"
    exp = run.goal("out")
    assert exp is not None and exp.state == "CANCELLED" and exp.phase == "cancelled"
    assert exp.fraction == 0.5 and exp.rate == 75.0


def test_throughput_samples_are_one_a_second_and_bounded() -> None:
    view = RunView()
    view.apply(RunStarted(run_id=RUN, connection="c", goals=["out"], pid=1, ts=T0))
    view.apply(PhaseChanged(goal="out", phase="sending", ts=T0))
    for second in range(1, 100):
        view.apply(Progress(goal="out", done=second * 1000, total=10**6, ts=T0 + second))
        view.apply(Progress(goal="out", done=second * 1000 + 1, total=10**6, ts=T0 + second + 0.25))
    view.apply(Progress(goal="out", done=200_000, total=10**6, ts=T0 + 103))  # after a 4 s gap
    goal = view.snapshot().goals[0]
    assert len(goal.rates) == 40
    assert goal.rates[-4:] == pytest.approx([101_000 / 4] * 4)  # the gap: 4 equal seconds
    assert goal.rates[0] == pytest.approx(1000, rel=0.01)
