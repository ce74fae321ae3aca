"""The dry-run preview of one goal: the same run as `bctui run NAME --goal G --dry-run`, launched as
its own process and followed live — what it would create, update, skip, and the data points."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, ProgressBar, RichLog

from bctui.engine.runs import history
from bctui.engine.runs.describe import describe, short_counts
from bctui.engine.runs.events import Event, GoalFinished, RunFinished, RunStarted
from bctui.engine.runs.launch import RunHandle, launch_run
from bctui.engine.runs.progress import GoalProgress, RunProgress, RunView
from bctui.engine.runs.runner import RunOptions
from bctui.errors import BctuiError
from bctui.tui.app import BctuiApp
from bctui.tui.widgets.run_progress import POST_SECONDS, RunViewUpdated

ROWS = (("created", "would create"), ("updated", "would update"),
        ("unchanged", "unchanged"), ("skipped", "would skip"), ("failed", "would fail"),
        ("checked", "checked"))  # fmt: skip
LOG_LINES = 2000
TOKEN = 0  # one run per screen: its pictures replace each other in the queue


class DryRunScreen(Screen[None]):
    """Launch a dry run of one goal and show what it would change, as it goes."""

    CSS_PATH = "dry_run.tcss"
    HELP_TITLE = "Dry run"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Close", id="dry-run-close",
                tooltip="Close the preview (a dry run still going finishes by itself)"),
    ]  # fmt: skip

    @dataclass
    class Launched(Message):
        """The run process started."""

        handle: RunHandle

    @dataclass
    class Logged(Message):
        """Log lines of the run, in order (never replaced: each batch is new lines)."""

        lines: list[str]

    @dataclass
    class Summarised(Message):
        """The run's summary (per goal by name), from its last event."""

        summary: dict[str, Any]

    @dataclass
    class Ended(Message):
        """Following stopped; `error` says why when the run never reported its end."""

        error: str = ""

    def __init__(self, connection: str, goal: str, *, run_id: str | None = None) -> None:
        super().__init__()
        self.connection_name = connection
        self.goal_name = goal
        self.asked_run_id = run_id
        """The id the run gets (default: a new one); given, e.g., to follow it elsewhere."""
        self.run_id = ""
        self.progress: RunProgress | None = None
        self.updates = 0
        """Pictures of the run shown (coalesced: far fewer than the run's events)."""
        self._stop = threading.Event()

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Label(
            Text(f' Dry run of "{self.goal_name}" ─ {self.connection_name} ─ nothing is written'),
            id="dry-header",
        )
        with Horizontal(id="dry-top"):
            yield Label("starting the run…", id="dry-status")
            yield ProgressBar(id="dry-progress", show_eta=False)
        yield Label("", id="dry-error")
        yield Label("", id="dry-budget")
        table: DataTable[str | Text] = DataTable(id="dry-counts", cursor_type="none",
                                                  show_cursor=False)  # fmt: skip
        yield table
        yield RichLog(id="dry-log", max_lines=LOG_LINES, wrap=True, markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#dry-counts", DataTable)
        table.add_column("", key="what", width=14)
        table.add_column("", key="count", width=12)
        for key, label in ROWS:
            table.add_row(label, Text("—", justify="right"), key=key)
        table.add_row("data points", Text("—", justify="right"), key="data_points")
        table.show_header = False
        self.query_one("#dry-error", Label).display = False
        self.query_one("#dry-budget", Label).display = False
        self._run()

    def on_unmount(self) -> None:
        self._stop.set()

    # -- the worker ----------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="dry-run")
    def _run(self) -> None:
        paths = self.bctui.paths
        options = RunOptions(goal=self.goal_name, dry_run=True, run_id=self.asked_run_id)
        try:
            handle = launch_run(paths, self.connection_name, options, started_by="ui")
        except BctuiError as exc:
            self.post_message(self.Ended(exc.render()))
            return
        self.post_message(self.Launched(handle))
        events = history.follow_run(
            paths, self.connection_name, handle.run_id, pid=handle.pid, stop=self._stop
        )
        try:
            view = coalesce(self, events, self._stop)
        except Exception as exc:  # the log could not be read: say so in place of the counts
            self.post_message(self.Ended(exc.render() if isinstance(exc, BctuiError) else str(exc)))
            return
        finished = view.run_id == handle.run_id and bool(view.state)
        if finished or self._stop.is_set():
            self.post_message(self.Ended())
            return
        self.post_message(self.Ended(_why_not_finished(handle)))

    # -- showing it ----------------------------------------------------------------------

    @on(Launched)
    def _launched(self, message: Launched) -> None:
        self.run_id = message.handle.run_id
        self.query_one("#dry-status", Label).update(Text(f"run {self.run_id} started…"))

    @on(Logged)
    def _logged(self, message: Logged) -> None:
        log = self.query_one("#dry-log", RichLog)
        for line in message.lines:
            log.write(Text(line))

    @on(RunViewUpdated)
    def _update(self, message: RunViewUpdated) -> None:
        message.stop()
        if message.token != TOKEN:
            return
        self.updates += 1
        progress = message.progress
        self.progress = progress
        goal = progress.goal(self.goal_name)
        if goal is None:
            return
        self._show_goal(progress, goal)

    def _show_goal(self, run: RunProgress, goal: GoalProgress) -> None:
        table = self.query_one("#dry-counts", DataTable)
        for key, _ in ROWS:
            table.update_cell(key, "count", Text(f"{goal.count(key):,}", justify="right"))
        table.update_cell("data_points", "count", Text(f"{goal.data_points:,}", justify="right"))
        bar = self.query_one("#dry-progress", ProgressBar)
        if goal.state == "FINISHED":
            bar.update(total=1, progress=1)
        elif goal.total:
            bar.update(total=goal.total, progress=goal.done)
        status = self.query_one("#dry-status", Label)
        if goal.state:
            status.update(Text(f"dry run {goal.state.lower()} — run {run.run_id}"))
        else:
            phase = goal.phase or "starting"
            detail = f": {goal.detail}" if goal.detail else ""
            done = f" · {goal.done:,}/{goal.total:,} {goal.unit}" if goal.total else ""
            status.update(Text(f"{phase}{detail}{done}"))  # the detail may quote names
        error = goal.error or (run.error if run.state and run.state != "FINISHED" else "")
        if error:
            self._show_error(error)

    @on(Summarised)
    def _summarised(self, message: Summarised) -> None:
        goal = message.summary.get("goals", {}).get(self.goal_name, {})
        text = budget_line(goal.get("budget"), goal.get("data_points", 0))
        label = self.query_one("#dry-budget", Label)
        label.update(Text(text))
        label.display = bool(text)

    @on(Ended)
    def _ended(self, message: Ended) -> None:
        if message.error:
            self._show_error(message.error)
            self.query_one("#dry-status", Label).update("the dry run did not finish")
        self.set_class(True, "-over")

    def _show_error(self, text: str) -> None:
        label = self.query_one("#dry-error", Label)
        label.update(Text(text))
        label.display = True

    def action_close(self) -> None:
        """Close the preview; a run still going goes on by itself."""
        self.dismiss()


def coalesce(target: MessagePump, events: Iterable[Event], stop: threading.Event) -> RunView:
    """Apply `events` to a RunView, posting its picture (RunViewUpdated, which replaces a
    waiting one) at most every POST_SECONDS and once more when the events pause, with the log
    lines in batches before it — as the run panel's follower does. Runs in a worker thread."""
    view = RunView()
    items: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
    failed: list[Exception] = []

    def pump() -> None:
        # A thread of its own, so that a pause in the events (a run waiting for Braze) can
        # flush the last picture without waiting for the next event.
        try:
            for event in events:
                items.put(event)
        except Exception as exc:  # raised again below, in the worker
            failed.append(exc)
        finally:
            items.put(None)

    threading.Thread(target=pump, name="dry run follower", daemon=True).start()
    lines: list[str] = []
    dirty, last_post = False, 0.0

    def flush() -> None:
        nonlocal dirty, last_post
        if lines:
            target.post_message(DryRunScreen.Logged(lines.copy()))
            lines.clear()
        if dirty:
            target.post_message(RunViewUpdated(TOKEN, view.snapshot()))
        dirty, last_post = False, time.monotonic()

    while True:
        timeout = max(0.0, last_post + POST_SECONDS - time.monotonic()) if dirty else 0.5
        try:
            item = items.get(timeout=timeout)
        except queue.Empty:
            if stop.is_set():
                break
            flush()
            continue
        if item is None:
            break
        view.apply(item)
        if isinstance(item, RunFinished):
            target.post_message(DryRunScreen.Summarised(item.summary))
        dirty = True
        line = _line(item)
        if line:
            lines.append(line)
        if time.monotonic() - last_post >= POST_SECONDS:
            flush()
    flush()
    if failed:
        raise failed[0]
    return view


def budget_line(budget: object, data_points: int) -> str:
    """The dry run against the goal's data-point budget ('' without one, and when refused: the
    error says that)."""
    if not isinstance(budget, dict) or budget.get("outcome") == "refused":
        return ""
    estimate, limit = budget.get("estimate", 0), budget.get("limit", 0)
    where = f" ({budget['set_on']})" if budget.get("set_on") else ""
    if budget.get("outcome") == "partial":
        return (f"over budget: ~{estimate:,} data points against {limit:,}{where} — would send "
                f"{data_points:,} now, the rest next run")
    return f"within budget: ~{estimate:,} of {limit:,} data points{where}"


def _line(event: Event) -> str | None:
    """The log line for an event; the run's start without its PID (the header says enough)."""
    if isinstance(event, RunStarted):
        return f"run {event.run_id} started (dry run)"
    if isinstance(event, GoalFinished):
        counts = short_counts(event.counts, event.data_points) or "nothing to do"
        text = f"[{event.goal}] {event.state.lower()}: {counts}"
        return text + (f" — {event.error}" if event.error else "")
    return describe(event)


def _why_not_finished(handle: RunHandle) -> str:
    """What the run process said before it went, when it never wrote its end."""
    try:
        text = handle.stderr_path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        text = ""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        return "the run stopped: " + " ".join(lines[-3:])
    return "the run process ended without reporting a result (see `bctui runs`)"
