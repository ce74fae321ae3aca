"""One past (or running) run: its summary, per-goal counts, its log, and the profiles Braze
rejected for each export goal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, RichLog, Static

from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.describe import STARTERS
from bctui.engine.runs.events import read_events
from bctui.engine.runs.runner import log_path
from bctui.tui.app import BctuiApp
from bctui.tui.format import clock, duration, stamp

MAX_LOG_LINES = 5000
FAILURES_PER_GOAL = 50
COUNTS = ("checked", "created", "updated", "unchanged", "skipped", "failed")


@dataclass
class RunDetails(Message):
    """What the worker read about the run."""

    run_id: str
    record: st.RunRecord | None
    status: history.RunStatus | None = None
    goals: list[st.GoalState] = field(default_factory=list)
    log: list[tuple[float, str]] = field(default_factory=list)
    log_missing: bool = False
    failures: list[tuple[str, str, str, int]] = field(default_factory=list)


class RunDetailScreen(Screen[None]):
    """A run's summary, counts, log and rejected profiles."""

    CSS_PATH = "run_detail.tcss"
    HELP_TITLE = "Run details"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", id="run-detail-back"),
        Binding("ctrl+r", "reload", "Reload", id="run-detail-reload",
                tooltip="Read the run's history and log again"),
    ]  # fmt: skip

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Label(f" Run {self.run_id}", id="run-detail-header")
        yield Static("", id="run-detail-summary")
        yield DataTable(id="run-detail-goals", cursor_type="row", show_cursor=False)
        with Horizontal(id="run-detail-body"):
            with Vertical(id="run-detail-log-box") as box:
                box.border_title = "Log"
                yield RichLog(id="run-detail-log", max_lines=MAX_LOG_LINES, wrap=True)
            with Vertical(id="run-detail-failures-box") as box:
                box.border_title = "Rejected by Braze"
                yield DataTable(id="run-detail-failures", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        goals = self.query_one("#run-detail-goals", DataTable)
        goals.add_columns("Goal", "Type", "State", *COUNTS, "Data points", "Took")
        failures = self.query_one("#run-detail-failures", DataTable)
        failures.add_columns("Goal", "Profile", "Braze's reason", "Tries")
        self.query_one("#run-detail-failures-box").display = False
        self.action_reload()

    def action_reload(self) -> None:
        """Read the run again."""
        self._load(self.run_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="run-detail")
    def _load(self, run_id: str) -> None:
        from bctui.engine.runs.describe import describe

        workspace = self.bctui.workspace
        assert workspace is not None
        paths = workspace.paths
        with workspace.store() as store:
            record = st.get_run(store, run_id)
            if record is None:
                self.post_message(RunDetails(run_id, None))
                return
            goals = st.goal_states(store, record.id)
            failures = [
                (g.goal, pid, reason, attempts)
                for g in goals
                if g.type == "export"
                for pid, reason, attempts in st.failure_reasons(
                    store, st.goal_key(record.connection, g.goal), FAILURES_PER_GOAL
                )
            ]
        status = history.run_status(paths, record)
        path = log_path(paths, record.id)
        lines: list[tuple[float, str]] = []
        missing = not path.exists()
        if not missing:
            for event in read_events(path):
                text = describe(event)
                if text is not None:
                    lines.append((event.ts, text))
            lines = lines[-MAX_LOG_LINES:]
        self.post_message(RunDetails(run_id, record, status, goals, lines, missing, failures))

    @on(RunDetails)
    def _show(self, message: RunDetails) -> None:
        if message.run_id != self.run_id:
            return
        summary = self.query_one("#run-detail-summary", Static)
        record = message.record
        if record is None:
            summary.update(f"There is no run {self.run_id} in the history.")
            return
        theme = self.app.theme_variables
        status = message.status or history.RunStatus.FAILED
        color = {
            history.RunStatus.FINISHED: "success",
            history.RunStatus.FAILED: "error",
            history.RunStatus.RUNNING: "accent",
        }.get(status, "warning")
        self.query_one("#run-detail-header", Label).update(
            f" Run {record.id} ─ {record.connection} ─ esc back"
        )
        now = self.bctui.clock()
        end = record.ended_at or (now if status is history.RunStatus.RUNNING else None)
        mode = "dry run" if record.dry_run else ("full resync" if record.full else "delta")
        who = STARTERS.get(record.started_by, record.started_by)
        line = Text.assemble(
            (status.value, f"bold {theme.get(color, '')}"),
            f"  started {stamp(record.started_at)} by {who}",
            f" · took {duration(end - record.started_at)}" if end else "",
            f" · {mode}",
        )
        if record.error:
            line.append(f"\n{record.error}", style=theme.get("error", "red"))
        summary.update(line)
        table = self.query_one("#run-detail-goals", DataTable)
        table.clear()
        for goal in message.goals:
            table.add_row(
                goal.goal,
                goal.type,
                goal.state.lower(),
                *(f"{goal.counts.get(k, 0):,}" for k in COUNTS),
                f"{goal.data_points:,}",
                duration(goal.seconds) if goal.seconds else "—",
            )
        log = self.query_one("#run-detail-log", RichLog)
        log.clear()
        if message.log_missing:
            log.write(Text("This run's log file is gone (the state directory was cleaned?).",
                           style="dim"))  # fmt: skip
        for ts, text in message.log:
            log.write(Text.assemble((clock(ts), "dim"), " ", text))
        failures = self.query_one("#run-detail-failures", DataTable)
        failures.clear()
        for goal_name, pid, reason, attempts in message.failures:
            failures.add_row(goal_name, pid, reason, str(attempts))
        self.query_one("#run-detail-failures-box").display = bool(message.failures)
