"""The strip under the connections table: the highlighted connection's current run, live, or the
result of its last run in a line or two."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Label

from bctui.engine.runs import state as st
from bctui.engine.runs.describe import STARTERS
from bctui.engine.runs.progress import GoalProgress, RunProgress
from bctui.tui.format import ago, duration
from bctui.tui.widgets.run_progress import (
    FollowRequest,
    GoalProgressView,
    RunFollowEnded,
    RunViewUpdated,
    follow,
)

STRIP_POST_SECONDS = 0.25


class RunStrip(Vertical):
    """The highlighted connection's run: live progress while it runs, else its last result."""

    DEFAULT_CSS = """
    RunStrip {
        height: auto;
        border: round $border-blurred;
        border-title-color: $text;
        padding: 0 1;
        & > #strip-result { width: 1fr; height: auto; color: $text-muted; }
        & > #strip-result.-finished { color: $success; }
        & > #strip-result.-failed { color: $error; }
        & > #strip-result.-cancelled, & > #strip-result.-interrupted { color: $warning; }
        &.-running { border: round $accent; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._key: tuple[str | None, str | None] = (None, None)
        self._token = 0
        self._stop = threading.Event()
        self._progress: RunProgress | None = None
        self._shown: tuple[object, ...] = ()

    def compose(self) -> ComposeResult:
        yield GoalProgressView(GoalProgress(name=""), compact=True)
        yield Label("", id="strip-result", markup=False)

    def on_mount(self) -> None:
        self.query_one(GoalProgressView).display = False
        self._draw()

    def on_resize(self) -> None:
        # Wide screens have room for the counters line too.
        self.query_one(GoalProgressView).set_class(self.size.width < 120, "-compact")

    def on_unmount(self) -> None:
        self._stop.set()

    def show(self, connection: str | None) -> None:
        """Show `connection`'s run (None: nothing highlighted). Called on every highlight change
        and every poll: it restarts the follower only when the connection or its run changes."""
        from bctui.tui.app import BctuiApp

        app = self.app
        assert isinstance(app, BctuiApp)
        if not self.screen.is_active:
            self._pause()
            return
        holder = app.runs.running.get(connection) if connection else None
        key = (connection, holder.run_id if holder is not None else None)
        if key != self._key:
            self._key = key
            self._stop.set()
            self._stop = threading.Event()
            self._token += 1
            self._progress = None
            if connection is not None and holder is not None and app.workspace is not None:
                conn = app.config.connection(connection)
                types = {g.name: g.type for g in conn.goals} if conn is not None else {}
                request = FollowRequest(
                    app.paths, connection, holder.run_id, pid=holder.pid, goal_types=types,
                    with_log=False, interval=STRIP_POST_SECONDS,
                )  # fmt: skip
                self._follow(self._token, request, self._stop)
        self._draw()

    @work(thread=True, exclusive=True, exit_on_error=False, group="run-strip")
    def _follow(self, token: int, request: FollowRequest, stop: threading.Event) -> None:
        follow(self, token, request, stop)

    @on(RunViewUpdated)
    @on(RunFollowEnded)
    def _updated(self, message: RunViewUpdated | RunFollowEnded) -> None:
        message.stop()
        if message.token != self._token:
            return
        if not self.screen.is_active:
            self._pause()
            return
        self._progress = message.progress
        self._draw()

    def _pause(self) -> None:
        """Stop following while covered: changes under another screen make that screen repaint
        all of itself. The next show() (the app polls every second) follows again."""
        self._stop.set()
        self._token += 1
        self._key = (None, None)

    # -- drawing ---------------------------------------------------------------------------

    def _draw(self) -> None:
        from bctui.tui.app import BctuiApp

        app = self.app
        assert isinstance(app, BctuiApp)
        connection, run_id = self._key
        live = run_id is not None
        progress = self._progress
        goal = progress.current if progress is not None else None
        if live and goal is not None and progress is not None:
            index = [g.name for g in progress.goals].index(goal.name) + 1
            of = f" · goal {index} of {len(progress.goals)}" if len(progress.goals) > 1 else ""
            head = f"{connection} ─ running{of}"
            result, css = "", ""
        elif live:
            head, result, css = f"{connection} ─ running", f"run {run_id} starting…", ""
        else:
            record = app.runs.latest.get(connection) if connection else None
            head = connection or ""
            result, css = _result(record, app.clock()) if connection else ("", "")
            goal = None
        shown = (head, result, css, goal, live)
        if shown == self._shown:
            return
        self._shown = shown
        self.display = connection is not None  # no connection highlighted: no empty box
        self.border_title = Content(head)  # a connection name, not markup
        self.set_class(live, "-running")
        view = self.query_one(GoalProgressView)
        view.display = goal is not None
        if goal is not None:
            view.show(goal)
        label = self.query_one("#strip-result", Label)
        label.display = bool(result)
        label.update(result)
        for name in ("-finished", "-failed", "-cancelled", "-interrupted"):
            label.set_class(name == css, name)


def _result(record: st.RunRecord | None, now: float) -> tuple[str, str]:
    """The last run in two lines, and its CSS class."""
    if record is None:
        return "never ran — r runs it", ""
    when = ago(record.ended_at or record.started_at, now)
    summary: Mapping[str, Any] = record.summary or {}
    goals = summary.get("goals") if isinstance(summary.get("goals"), Mapping) else {}
    assert isinstance(goals, Mapping)
    checked = sum(int(g.get("checked", 0) or 0) for g in goals.values())
    failed = sum(int(g.get("failed", 0) or 0) for g in goals.values())
    points = int(summary.get("data_points", 0) or 0)
    figures = f" · {checked:,} checked · {points:,} data points" if goals else ""
    figures += f" · {failed:,} failed" if failed else ""
    dry = " (dry run)" if record.dry_run else ""
    who = STARTERS.get(record.started_by, record.started_by)
    seconds = summary.get("seconds")
    took = f", took {duration(float(seconds))}" if seconds else ""
    second = f"run {record.id} by {who}{took} · v opens it"
    match record.state:
        case st.FINISHED:
            return f"✓ finished {when}{dry}{figures}\n{second}", "-finished"
        case st.FAILED:
            error = record.error or "see its log"
            return f"✗ failed {when}{dry}: {error}\n{second}", "-failed"
        case st.CANCELLED:
            return f"⊘ cancelled {when}{dry}{figures}\n{second}", "-cancelled"
        case st.RUNNING:
            return (
                f"⚠ interrupted {when} — the next run resumes it (r)\n{second}",
                "-interrupted",
            )
    return f"{record.state} {when}\n{second}", ""
