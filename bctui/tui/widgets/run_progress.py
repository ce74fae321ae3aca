"""What the run panel and the run strip share: following a run's log in a thread (its events
reduced by the engine's RunView and posted as coalescing messages), and the widget that draws one
goal's progress."""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.message_pump import MessagePump
from textual.widgets import Label, ProgressBar, Sparkline

from bctui.engine.paths import Paths
from bctui.engine.runs import history
from bctui.engine.runs.describe import describe
from bctui.engine.runs.events import (
    Event,
    GoalFinished,
    LogLine,
    RateLimitWait,
    RunFinished,
)
from bctui.engine.runs.progress import GoalProgress, RunProgress, RunView
from bctui.errors import BctuiError
from bctui.tui.format import clock, duration

POST_SECONDS: Final = 0.2  # at most 5 pictures a second reach the screen
MAX_LOG_LINES: Final = 5000
LINES_PER_MESSAGE: Final = 500  # a long log arrives in pieces, so the screen paints in between
WAIT_LINE_SECONDS: Final = 5.0  # rate-limit waits come in swarms: one log line per goal per 5 s


# -- messages ------------------------------------------------------------------------------------


@dataclass
class RunViewUpdated(Message):
    """A new picture of the followed run (a newer one replaces it while it waits in the queue)."""

    token: int
    progress: RunProgress

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunViewUpdated) and message.token == self.token


@dataclass
class RunLogged(Message):
    """Log lines of the followed run: (text, level) with level '', warning, error or success."""

    token: int
    lines: list[tuple[str, str]]


@dataclass
class RunFollowEnded(Message):
    """Following stopped: the run finished, its process went, or the log could not be read."""

    token: int
    progress: RunProgress
    error: str = ""


# -- following -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowRequest:
    """Which run to follow, and how."""

    paths: Paths
    connection: str
    run_id: str
    pid: int | None = None
    live: bool = True  # False: the run is over; read its log once
    goal_types: Mapping[str, str] | None = None
    with_log: bool = True
    interval: float = POST_SECONDS
    summary: Mapping[str, object] | None = None  # the run record's, for a log cut short


class _End:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def follow(
    target: MessagePump, token: int, request: FollowRequest, stop: threading.Event
) -> RunProgress:
    """Follow a run until it ends or `stop` is set, posting RunViewUpdated (at most every
    `request.interval` seconds, and once more when the events pause), RunLogged batches and a
    final RunFollowEnded to `target`. Runs in a worker thread; returns the last picture."""
    view = RunView(request.goal_types)
    events: queue.SimpleQueue[Event | _End] = queue.SimpleQueue()

    def source() -> Iterator[Event]:
        if request.live:
            return history.follow_run(
                request.paths, request.connection, request.run_id, pid=request.pid, stop=stop
            )
        return history.run_events(request.paths, request.run_id)

    def pump() -> None:
        # A thread of its own, so that a pause in the events (a run waiting for Braze) can
        # flush the last picture without waiting for the next event.
        try:
            for event in source():
                events.put(event)
                if stop.is_set():
                    break
        except Exception as exc:  # reported to the screen with RunFollowEnded
            events.put(_End(exc))
        else:
            events.put(_End())

    threading.Thread(target=pump, name=f"follow {request.run_id}", daemon=True).start()
    lines: deque[tuple[str, str]] = deque(maxlen=MAX_LOG_LINES)
    waits = _WaitLines()
    dirty, last_post = False, 0.0
    end = _End()

    def flush() -> None:
        nonlocal dirty, last_post
        if dirty:
            target.post_message(RunViewUpdated(token, view.snapshot()))
        while lines:
            chunk = [lines.popleft() for _ in range(min(LINES_PER_MESSAGE, len(lines)))]
            target.post_message(RunLogged(token, chunk))
        dirty, last_post = False, time.monotonic()

    while True:
        timeout = max(0.0, last_post + request.interval - time.monotonic()) if dirty else 0.5
        try:
            item = events.get(timeout=timeout)
        except queue.Empty:
            if stop.is_set():
                return view.snapshot()
            flush()
            continue
        if isinstance(item, _End):
            end = item
            break
        view.apply(item)
        dirty = True
        if request.with_log:
            line = waits.line(item)
            if line is not None:
                lines.append((f"{clock(item.ts)} {line}", _level(item)))
        if time.monotonic() - last_post >= request.interval:
            flush()
    if stop.is_set():
        return view.snapshot()
    if not view.state and request.summary:
        view.apply_summary(request.summary)
    if view.events:
        view.mark_interrupted()  # no-op when the run has a final state
    dirty = True
    flush()
    progress = view.snapshot()
    error = ""
    if end.error is not None:
        error = end.error.render() if isinstance(end.error, BctuiError) else str(end.error)
    elif not view.events:
        error = f"the log of run {request.run_id} is missing or empty"
    target.post_message(RunFollowEnded(token, progress, error))
    return progress


class _WaitLines:
    """describe() of each event, but one rate-limit line per goal every WAIT_LINE_SECONDS."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.skipped: dict[str, int] = {}

    def line(self, event: Event) -> str | None:
        if not isinstance(event, RateLimitWait):
            return describe(event)
        if event.ts - self.last.get(event.goal, 0.0) < WAIT_LINE_SECONDS:
            self.skipped[event.goal] = self.skipped.get(event.goal, 0) + 1
            return None
        self.last[event.goal] = event.ts
        text = describe(event)
        more = self.skipped.pop(event.goal, 0)
        if text and more:
            text += f" (and {more:,} more waits before)"
        return text


def _level(event: Event) -> str:
    if isinstance(event, LogLine):
        return event.level if event.level in ("warning", "error") else ""
    if isinstance(event, GoalFinished | RunFinished):
        return {"FINISHED": "success", "FAILED": "error", "CANCELLED": "warning"}.get(
            event.state, ""
        )
    return ""


# -- words -------------------------------------------------------------------------------------


def title(goal: GoalProgress) -> str:
    """'export "VIPs to Braze"'."""
    return f'{goal.type or "goal"} "{goal.name}"'


def amount(goal: GoalProgress) -> str:
    """How far: '35%  2,071/5,879' (known total), '6/6 files' (a finished import)."""
    if goal.type == "import" or goal.unit == "users":
        if goal.state == "FINISHED":
            return f"{goal.files}/{goal.files} files" if goal.files else f"{goal.done:,} users"
        if goal.files:
            return f"{goal.files} file{'s' if goal.files != 1 else ''} · {goal.done:,} users"
        return ""
    if goal.total:
        share = min(1.0, goal.done / goal.total)
        return f"{share:.0%}  {goal.done:,}/{goal.total:,}"
    if goal.state == "FINISHED":
        return "nothing to send" if not goal.count("checked") else f"{goal.done:,}"
    return ""


def counters(goal: GoalProgress) -> str:
    """'20,415 checked · 1,204 created · … · 0 failed'."""
    names = ("checked", "created", "updated", "unchanged", "skipped", "failed")
    # checked and failed always; the others when they happened (80 columns hold ~5 of them)
    shown = [n for n in names if n in ("checked", "failed") or goal.count(n)]
    return " · ".join(f"{goal.count(name):,} {name}" for name in shown)


def throughput(goal: GoalProgress) -> str:
    """'11,420 profiles/s' (or '' before the first sample)."""
    if not goal.rates and not (goal.state and goal.seconds and goal.done):
        return ""
    return f"{goal.rate:,.0f} {goal.unit or 'profiles'}/s"


def rate_limit(goal: GoalProgress) -> str:
    """'waiting 0.8 s (429)', 'rate limit ok', or how much was waited in all."""
    wait = goal.last_wait
    if goal.waiting and wait is not None:
        return f"waiting {wait.seconds:.1f} s" + (f" ({wait.reason})" if wait.reason else "")
    if goal.waits:
        waits = "1 wait" if goal.waits == 1 else f"{goal.waits:,} waits"
        return f"rate limit: {waits}, {duration(goal.wait_seconds)}"
    return "rate limit ok" if goal.type == "export" and goal.started else ""


def phase(goal: GoalProgress) -> str:
    """The phase word shown ('pending' before the goal started)."""
    if goal.state and goal.state != "FINISHED":
        return goal.state.lower()
    return goal.phase or ("done" if goal.state else "pending")


STATE_CLASSES: Final = {
    "FINISHED": "-finished",
    "FAILED": "-failed",
    "CANCELLED": "-cancelled",
}


# -- the widgets ---------------------------------------------------------------------------------


class StillProgressBar(ProgressBar):
    """A ProgressBar that repaints only when its progress changes: without an ETA shown, its
    once-a-second tick has nothing to draw (and a tick on a covered screen would make the screen
    on top repaint whole)."""

    def update(self, **changes: Any) -> None:
        if changes:
            super().update(**changes)


class GoalProgressView(Vertical):
    """One goal: title, phase, bar and amount; counters; throughput sparkline, data points and
    rate limit. The class -compact (the strip on a small screen) leaves out the counters."""

    DEFAULT_CSS = """
    GoalProgressView {
        height: auto;
        width: 1fr;
        & > .goal-line { height: 1; width: 1fr; }
        & .goal-title { width: 28; text-style: bold; }
        & .goal-phase { width: 10; color: $text-muted; }
        & ProgressBar { width: auto; margin-right: 1; }
        & ProgressBar Bar { width: 18; }
        & .goal-amount { width: 1fr; }
        & .goal-counts { width: 1fr; height: 1; color: $text-muted; padding-left: 2; }
        & .goal-rate { width: auto; padding: 0 1 0 2; }
        & Sparkline { width: 12; margin-right: 2; }
        & .goal-extra { width: 1fr; color: $text-muted; }
        &.-waiting .goal-extra { color: $warning; }
        &.-finished .goal-phase { color: $success; }
        &.-failed .goal-phase { color: $error; }
        &.-failed .goal-error { color: $error; }
        &.-cancelled .goal-phase { color: $warning; }
        & .goal-error { padding-left: 2; height: auto; }
        &.-pending .goal-title { color: $text-muted; text-style: none; }
        &.-compact .goal-counts { display: none; }
        & Label.-empty { display: none; }
    }
    """

    def __init__(self, goal: GoalProgress, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, classes="-compact" if compact else "")
        self.goal = goal
        self._texts: dict[str, str] = {}
        self._rates: tuple[float, ...] | None = None
        self._bar: tuple[float, float] | None = None
        self._ready = False

    def compose(self) -> ComposeResult:
        with Horizontal(classes="goal-line"):
            # Goal names and errors are data: every label is plain text, never markup.
            yield Label(classes="goal-title", markup=False)
            yield Label(classes="goal-phase", markup=False)
            yield StillProgressBar(total=1, show_percentage=False, show_eta=False)
            yield Label(classes="goal-amount", markup=False)
        yield Label(classes="goal-counts", markup=False)
        with Horizontal(classes="goal-line goal-throughput"):
            yield Label(classes="goal-rate", markup=False)
            yield Sparkline([], summary_function=max)
            yield Label(classes="goal-extra", markup=False)
        yield Label(classes="goal-error", markup=False)

    def on_mount(self) -> None:
        self._ready = True
        self.show(self.goal, force=True)

    def _text(self, selector: str, text: str) -> None:
        """Update a label only when its text changed (an unchanged update still repaints)."""
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            label = self.query_one(selector, Label)
            label.update(text)
            label.set_class(not text and selector not in (".goal-title", ".goal-phase"), "-empty")

    def show(self, goal: GoalProgress, *, force: bool = False) -> None:
        """Draw `goal`; only what changed since the last call is touched."""
        if (goal == self.goal and not force) or not self._ready:
            self.goal = goal  # drawn by on_mount when not mounted yet
            return
        self.goal = goal
        self._text(".goal-title", title(goal))
        self._text(".goal-phase", phase(goal))
        self._text(".goal-amount", amount(goal))
        bar = self.query_one(ProgressBar)
        fraction = goal.fraction
        shape = (1.0, fraction) if fraction is not None else (0.0, 0.0)
        if shape != self._bar:
            self._bar = shape
            # An unknown total would animate an indeterminate bar 60 times a second: hide it.
            bar.display = fraction is not None
            bar.update(total=1.0, progress=fraction or 0.0)
        self._text(".goal-counts", counters(goal) if goal.started else "")
        extra = []
        if goal.data_points or goal.type == "export":
            extra.append(f"data points {goal.data_points:,}")
        limit = rate_limit(goal)
        if limit:
            extra.append(limit)
        if self.has_class("-compact") and goal.count("failed"):
            extra.append(f"{goal.count('failed'):,} failed")
        rate = throughput(goal)
        self._text(".goal-rate", rate)
        self._text(".goal-extra", "  ".join(extra) if goal.started else "")
        spark = self.query_one(Sparkline)
        rates = goal.rates
        if rates != self._rates:
            self._rates = rates
            spark.data = list(rates)
            spark.display = bool(rates)
        self.query_one(".goal-throughput").display = bool(goal.started and (rate or extra))
        self._text(".goal-error", goal.error)
        for state, css in STATE_CLASSES.items():
            self.set_class(goal.state == state, css)
        self.set_class(goal.waiting, "-waiting")
        self.set_class(not goal.started, "-pending")


def state_words(progress: RunProgress) -> tuple[str, str]:
    """The run's state as a word and its CSS class: ('running', '-running'), ('✓ finished', …)."""
    if progress.interrupted:
        return "⚠ interrupted", "-interrupted"
    match progress.state:
        case "FINISHED":
            return "✓ finished", "-finished"
        case "FAILED":
            return "✗ failed", "-failed"
        case "CANCELLED":
            return "⊘ cancelled", "-cancelled"
    return "⟳ running", "-running"
