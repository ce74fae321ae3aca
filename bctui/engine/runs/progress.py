"""Run events reduced to what a front end shows: per goal its phase, how far, counts, data points,
rate-limit waits and throughput. Pure: no Textual, no I/O, no clock (times come from the events).

A front end applies every event of a run (live or read back from its log) to a `RunView` in a
worker thread and hands `snapshot()`s, which are immutable, to its display thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from bctui.engine.runs.events import (
    BatchSent,
    Event,
    GoalFinished,
    LogLine,
    PhaseChanged,
    Progress,
    RateLimitWait,
    RunFinished,
    RunStarted,
)

COUNT_NAMES: Final = ("checked", "created", "updated", "unchanged", "skipped", "failed")
EXTRA_COUNTS: Final = ("echo_suppressed",)  # as state.EXTRA_COUNTS: only some goals have them
# Phases only one kind of goal has: a goal's type is known from its first phase.
IMPORT_PHASES: Final = frozenset({"requesting", "waiting", "merging"})
EXPORT_PHASES: Final = frozenset({"selecting", "estimating", "sending"})
RATE_SAMPLES: Final = 40  # one sample a second: the sparkline shows the last ~40 s
SAMPLE_SECONDS: Final = 1.0
FINAL_STATES: Final = frozenset({"FINISHED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class RateWait:
    """One pause for Braze's rate limit."""

    seconds: float
    reason: str
    ts: float

    def active(self, now: float) -> bool:
        """Whether the pause still runs at `now`."""
        return now < self.ts + self.seconds


@dataclass(frozen=True)
class GoalProgress:
    """An immutable picture of one goal, as of its run's latest event."""

    name: str
    type: str = ""  # import | export | '' (not known yet)
    phase: str = ""
    detail: str = ""
    done: int = 0
    total: int = 0
    unit: str = "profiles"
    counts: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    data_points: int = 0
    state: str = ""  # '' while pending or going, else FINISHED / FAILED / CANCELLED
    error: str = ""
    seconds: float = 0.0
    started_at: float = 0.0
    last_wait: RateWait | None = None
    waits: int = 0
    wait_seconds: float = 0.0
    waiting: bool = False  # the last wait was still running at the run's latest event
    batches: int = 0
    batch_failures: int = 0
    files: int = 0  # export files merged (imports)
    warnings: int = 0
    rates: tuple[float, ...] = ()  # units per second, one per second, oldest first

    @property
    def started(self) -> bool:
        """Whether any event of the goal was seen."""
        return bool(self.phase or self.state or self.done)

    @property
    def fraction(self) -> float | None:
        """0..1 when the total is known."""
        if self.state == "FINISHED":
            return 1.0
        return min(1.0, self.done / self.total) if self.total else None

    @property
    def rate(self) -> float:
        """Units per second: the latest sample while going, the average once finished."""
        if self.state and self.seconds > 0:
            return self.done / self.seconds
        return self.rates[-1] if self.rates else 0.0

    def count(self, name: str) -> int:
        """One of the outcome counters (0 when not reported)."""
        return self.counts.get(name, 0)


@dataclass(frozen=True)
class RunProgress:
    """An immutable picture of a run, as of its latest event; cheap to hand to another thread."""

    run_id: str = ""
    connection: str = ""
    started_at: float = 0.0
    started_by: str = ""
    pid: int = 0
    dry_run: bool = False
    full: bool = False
    resumed: bool = False
    state: str = ""  # '' while going, else FINISHED / FAILED / CANCELLED
    error: str = ""
    interrupted: bool = False  # its process went without finishing it
    goals: tuple[GoalProgress, ...] = ()
    last_ts: float = 0.0
    events: int = 0
    seconds: float = 0.0  # the run's duration so far (its summary's once it finished)

    @property
    def over(self) -> bool:
        """Whether the run ended (finished, failed, cancelled or interrupted)."""
        return bool(self.state) or self.interrupted

    @property
    def data_points(self) -> int:
        """Data points over every goal."""
        return sum(g.data_points for g in self.goals)

    def goal(self, name: str) -> GoalProgress | None:
        """A goal by name."""
        return next((g for g in self.goals if g.name == name), None)

    @property
    def current(self) -> GoalProgress | None:
        """The goal that is going now (else the last one that started, else the first)."""
        going = [g for g in self.goals if g.started and not g.state]
        if going:
            return going[-1]
        started = [g for g in self.goals if g.started]
        if started:
            return started[-1]
        return self.goals[0] if self.goals else None


class GoalView:
    """One goal's picture, updated event by event."""

    def __init__(self, name: str, type_: str = "") -> None:
        self.name = name
        self.type = type_
        self.phase = ""
        self.detail = ""
        self.done = 0
        self.total = 0
        self.unit = "profiles"
        self.counts: dict[str, int] = {}
        self.data_points = 0
        self.state = ""
        self.error = ""
        self.seconds = 0.0
        self.started_at = 0.0
        self.last_ts = 0.0
        self.last_wait: RateWait | None = None
        self.waits = 0
        self.wait_seconds = 0.0
        self.batches = 0
        self.batch_failures = 0
        self.files = 0
        self.warnings = 0
        self.rates: deque[float] = deque(maxlen=RATE_SAMPLES)
        self._anchor: tuple[float, int] | None = None  # (ts, done) of the last rate sample

    def touch(self, ts: float) -> None:
        """An event of this goal happened at `ts`."""
        if not self.started_at:
            self.started_at = ts
        self.last_ts = max(self.last_ts, ts)

    def restart_rate(self, ts: float) -> None:
        """Measure throughput from `ts` on (a new phase: what came before is another kind of
        work)."""
        self._anchor = (ts, self.done)

    def progress(self, event: Progress) -> None:
        """Counts so far, and a throughput sample when a second or more has passed."""
        self.done, self.total, self.unit = event.done, event.total, event.unit
        if event.counts:
            self.counts = dict(event.counts)
        self.data_points = event.data_points
        if self.unit == "users" and not self.type:
            self.type = "import"
        anchor = self._anchor
        if anchor is None or event.done < anchor[1] or event.ts < anchor[0]:
            self._anchor = (event.ts, event.done)  # the first sample, or the count started over
            return
        elapsed = event.ts - anchor[0]
        if elapsed >= SAMPLE_SECONDS:
            rate = (event.done - anchor[1]) / elapsed
            # One sample per whole second passed, so the sparkline's x axis is time.
            self.rates.extend([rate] * min(int(elapsed / SAMPLE_SECONDS), RATE_SAMPLES))
            self._anchor = (event.ts, event.done)

    def finished(self, event: GoalFinished) -> None:
        """The goal's result."""
        self.type = event.goal_type or self.type
        self.state = event.state
        self.counts = dict(event.counts)
        self.data_points = event.data_points
        self.seconds = event.seconds
        self.error = event.error
        if event.state == "FINISHED" and not self.total:
            self.done = max(self.done, event.counts.get("checked", 0))
        self.phase = "done" if event.state == "FINISHED" else event.state.lower()

    def summary(self, goal: Mapping[str, Any]) -> None:
        """The goal's line of a run summary (for a goal whose own result was never seen)."""
        self.type = str(goal.get("type") or self.type)
        self.state = str(goal.get("state") or "")
        self.counts = {k: int(goal.get(k, 0) or 0) for k in COUNT_NAMES}
        self.counts.update({k: int(goal[k] or 0) for k in EXTRA_COUNTS if k in goal})
        self.data_points = int(goal.get("data_points", 0) or 0)
        self.seconds = float(goal.get("seconds", 0.0) or 0.0)
        self.error = str(goal.get("error") or "")
        if self.state == "FINISHED":
            self.done = max(self.done, self.counts["checked"])

    def snapshot(self, now: float) -> GoalProgress:
        """The immutable picture; `now` is the run's latest event time."""
        seconds = self.seconds or (now - self.started_at if self.started_at else 0.0)
        wait = self.last_wait
        return GoalProgress(
            name=self.name,
            type=self.type,
            phase=self.phase,
            detail=self.detail,
            done=self.done,
            total=self.total,
            unit=self.unit,
            counts=MappingProxyType(dict(self.counts)),
            data_points=self.data_points,
            state=self.state,
            error=self.error,
            seconds=max(0.0, seconds),
            started_at=self.started_at,
            last_wait=wait,
            waits=self.waits,
            wait_seconds=self.wait_seconds,
            waiting=wait is not None and not self.state and wait.active(now),
            batches=self.batches,
            batch_failures=self.batch_failures,
            files=self.files,
            warnings=self.warnings,
            rates=tuple(self.rates),
        )


class RunView:
    """A run's picture, built by applying its events in order (`apply`), read with `snapshot`.

    `goal_types` (name -> import | export, e.g. from the config) names the goals' types before
    their first event says. A RunStarted of another run id starts the picture over: following a
    run whose process first resumes an interrupted run yields that run's events first.
    """

    def __init__(self, goal_types: Mapping[str, str] | None = None) -> None:
        self.goal_types = dict(goal_types or {})
        self.run_id = ""
        self.connection = ""
        self.started_at = 0.0
        self.started_by = ""
        self.pid = 0
        self.dry_run = False
        self.full = False
        self.resumed = False
        self.state = ""
        self.error = ""
        self.interrupted = False
        self.summary: dict[str, Any] = {}
        self.goals: dict[str, GoalView] = {}
        self.last_ts = 0.0
        self.events = 0

    def goal(self, name: str) -> GoalView:
        """The goal's view (added at the end when the run did not announce it)."""
        view = self.goals.get(name)
        if view is None:
            view = self.goals[name] = GoalView(name, self.goal_types.get(name, ""))
        return view

    def apply(self, event: Event) -> None:
        """Fold one event into the picture."""
        self.events += 1
        self.last_ts = max(self.last_ts, event.ts)
        match event:
            case RunStarted():
                self._started(event)
            case PhaseChanged():
                goal = self.goal(event.goal)
                goal.touch(event.ts)
                if event.phase != goal.phase:
                    goal.restart_rate(event.ts)
                goal.phase, goal.detail = event.phase, event.detail
                if not goal.type:
                    if event.phase in IMPORT_PHASES:
                        goal.type = "import"
                    elif event.phase in EXPORT_PHASES:
                        goal.type = "export"
                if event.phase == "merging":
                    goal.files += 1
                goal.state = ""  # a resumed run takes an unfinished goal up again
            case Progress():
                goal = self.goal(event.goal)
                goal.touch(event.ts)
                goal.progress(event)
            case BatchSent():
                goal = self.goal(event.goal)
                goal.touch(event.ts)
                goal.batches += event.batches  # a run log coalesces batches
                goal.batch_failures += event.failed
            case RateLimitWait():
                goal = self.goal(event.goal)
                goal.touch(event.ts)
                goal.last_wait = RateWait(event.seconds, event.reason, event.ts)
                goal.waits += 1
                goal.wait_seconds += event.seconds
            case LogLine():
                if event.goal:
                    goal = self.goal(event.goal)
                    goal.touch(event.ts)
                    if event.level in ("warning", "error"):
                        goal.warnings += 1
            case GoalFinished():
                goal = self.goal(event.goal)
                goal.touch(event.ts)
                goal.finished(event)
            case RunFinished():
                self.state, self.error = event.state, event.error
                self.interrupted = False
                self.apply_summary(event.summary)

    def _started(self, event: RunStarted) -> None:
        if event.run_id != self.run_id:
            # Another run: start over (a resumed run keeps its id, and its goals' progress).
            self.summary, self.goals = {}, {}
            self.resumed = False
            self.started_at = event.ts
        self.run_id, self.connection = event.run_id, event.connection
        self.started_by, self.pid = event.started_by, event.pid
        self.dry_run, self.full = event.dry_run, event.full
        self.resumed = self.resumed or event.resumed
        self.state = self.error = ""
        self.interrupted = False
        for name in event.goals:
            self.goal(name)

    def apply_summary(self, summary: Mapping[str, Any]) -> None:
        """Take a run summary's results for the goals whose own result was not seen."""
        if not summary:
            return
        self.summary = dict(summary)
        goals = summary.get("goals")
        if isinstance(goals, Mapping):
            for name, line in goals.items():
                goal = self.goal(str(name))
                if not goal.state and isinstance(line, Mapping):
                    goal.summary(line)
        if not self.state and summary.get("state"):
            self.state = str(summary["state"])
            self.error = str(summary.get("error") or "")

    def mark_interrupted(self) -> None:
        """Its process went without a RunFinished: the next run resumes it."""
        if not self.state:
            self.interrupted = True

    def snapshot(self) -> RunProgress:
        """The immutable picture as of the latest event."""
        now = self.last_ts
        return RunProgress(
            run_id=self.run_id,
            connection=self.connection,
            started_at=self.started_at,
            started_by=self.started_by,
            pid=self.pid,
            dry_run=self.dry_run,
            full=self.full,
            resumed=self.resumed,
            state=self.state,
            error=self.error,
            interrupted=self.interrupted,
            goals=tuple(g.snapshot(now) for g in self.goals.values()),
            last_ts=now,
            events=self.events,
            seconds=float(self.summary.get("seconds") or 0.0)
            or (now - self.started_at if self.started_at else 0.0),
        )
