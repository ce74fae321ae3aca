"""One past (or running) run: its summary, per-goal counts, its log, and the profiles Braze
rejected for each export goal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, RichLog, Static

from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.describe import STARTERS, short_counts
from bctui.engine.runs.runner import log_path
from bctui.tui.app import BctuiApp
from bctui.tui.format import clock, duration, stamp

MAX_LOG_LINES = 5000
FAILURES_PER_GOAL = 50
COUNTS = ("checked", "created", "updated", "unchanged", "skipped", "failed")
WIDE = 120
"""From this width on every count has a column and the rejected profiles sit beside the log."""


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
        self._wide: bool | None = None
        self._details: RunDetails | None = None

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Label(Content(f" Run {self.run_id}"), id="run-detail-header")
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
        self._columns()
        self.query_one("#run-detail-failures-box").display = False
        self.action_reload()

    def on_resize(self, event: events.Resize) -> None:
        if self._columns() and self._details is not None:
            self._show(self._details)

    def _columns(self) -> bool:
        """Lay the tables out for the width; True when that changed them."""
        wide = (self.size.width or 80) >= WIDE
        if wide == self._wide:
            return False
        self._wide = wide
        self.set_class(not wide, "-narrow")
        self._goal_columns(self.query_one("#run-detail-goals", DataTable))
        failures = self.query_one("#run-detail-failures", DataTable)
        failures.clear(columns=True)
        failures.add_columns("Goal", "Profile", "Braze's reason", "Tries")
        return True

    def _goal_columns(
        self, goals: DataTable[object], *, echoes: bool = False, rows: Sequence[Sequence[Text]] = ()
    ) -> None:
        """The goals table's columns afresh, each as wide as its label and `rows`' cells.

        Widths are given, not measured by the table as rows arrive: a header drawn between the
        columns and the rows would otherwise keep its first, narrower widths.
        """
        goals.clear(columns=True)
        if self._wide:
            # Only two-way imports have echoes: their column only when a goal has some.
            extra = ("echoes suppressed",) if echoes else ()
            labels = ("Goal", "Type", "State", *COUNTS, *extra, "Data points", "Took")
        else:  # the counts that are not zero, in one column
            labels = ("Goal", "State", "Counts", "Took")
        for index, label in enumerate(labels):
            width = max([cell_len(label), *(row[index].cell_len for row in rows)])
            goals.add_column(label, width=width)

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
            goals = st.reported_goal_states(store, record)
            failures = [
                (g.goal, pid, reason, attempts)
                for g in goals
                if g.type == "export"
                for pid, reason, attempts in st.failure_reasons(
                    store, st.goal_key(record.connection, g.goal), FAILURES_PER_GOAL
                )
            ]
            status = history.run_status(paths, record, store)
        path = log_path(paths, record.id)
        lines: list[tuple[float, str]] = []
        # The log file, or (a PostgreSQL store, a run of another host) its events in the database.
        try:
            events = list(history.run_events(paths, record.id))
        except FileNotFoundError:
            events = []
        missing = not events and not path.exists()
        for event in events:
            text = describe(event)
            if text is not None:
                lines.append((event.ts, text))
        lines = lines[-MAX_LOG_LINES:]
        self.post_message(RunDetails(run_id, record, status, goals, lines, missing, failures))

    @on(RunDetails)
    def _show(self, message: RunDetails) -> None:
        if message.run_id != self.run_id:
            return
        self._details = message
        summary = self.query_one("#run-detail-summary", Static)
        record = message.record
        if record is None:
            summary.update(Content(f"There is no run {self.run_id} in the history."))
            return
        theme = self.app.theme_variables
        status = message.status or history.RunStatus.FAILED
        color = {
            history.RunStatus.FINISHED: "success",
            history.RunStatus.FAILED: "error",
            history.RunStatus.RUNNING: "accent",
        }.get(status, "warning")
        self.query_one("#run-detail-header", Label).update(
            Content(f" Run {record.id} ─ {record.connection} ─ esc back")
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
        for goal in message.goals:
            # The run's error names its first failed goal; the others' reasons are theirs alone
            # (e.g. an export refused for its data-point budget after another goal failed).
            if goal.error and goal.error not in record.error:
                line.append(f'\ngoal "{goal.goal}": {goal.error}', style=theme.get("error", "red"))
        summary.update(line)
        table = self.query_one("#run-detail-goals", DataTable)
        # Columns afresh: widths then follow these rows only, whatever was shown before.
        echoes = any(g.counts.get("echo_suppressed") for g in message.goals)
        rows: list[list[Text]] = []
        for goal in message.goals:
            # Names, profile ids and Braze's reasons are data: plain Text cells, never markup.
            took = Text(duration(goal.seconds) if goal.seconds else "—")
            if self._wide:
                rows.append([
                    Text(goal.goal),
                    Text(goal.type),
                    Text(goal.state.lower()),
                    *(Text(f"{goal.counts.get(k, 0):,}", justify="right")
                      for k in (*COUNTS, *(("echo_suppressed",) if echoes else ()))),
                    Text(f"{goal.data_points:,}", justify="right"),
                    took,
                ])
            else:
                counts = short_counts(goal.counts, goal.data_points) or "—"
                rows.append([Text(goal.goal), Text(goal.state.lower()), Text(counts), took])
        self._goal_columns(table, echoes=echoes, rows=rows)
        for row in rows:
            table.add_row(*row)
        log = self.query_one("#run-detail-log", RichLog)
        log.clear()
        if message.log_missing:
            log.write(Text("This run's log file is gone (the state directory was cleaned?).",
                           style="dim"))  # fmt: skip
        for ts, text in message.log:
            log.write(Text.assemble((clock(ts), "dim"), " ", text))
        failures = self.query_one("#run-detail-failures", DataTable)
        failures.clear(columns=True)
        failures.add_columns("Goal", "Profile", "Braze's reason", "Tries")
        for goal_name, pid, reason, attempts in message.failures:
            failures.add_row(Text(goal_name), Text(pid), Text(reason), Text(str(attempts)))
        self.query_one("#run-detail-failures-box").display = bool(message.failures)
