"""The run panel: any run of a connection — started here, by `bctui run` elsewhere, by cron or the
scheduler — followed live from its event log, or its result once it is over. Leaving the panel or
quitting the UI never stops the run."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, RichLog

from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.progress import RunProgress
from bctui.errors import BctuiError
from bctui.tui.app import BctuiApp
from bctui.tui.format import clock, duration
from bctui.tui.screens.confirm import ConfirmModal
from bctui.tui.widgets.run_progress import (
    MAX_LOG_LINES,
    FollowRequest,
    GoalProgressView,
    RunFollowEnded,
    RunLogged,
    RunViewUpdated,
    follow,
    state_words,
)

INTERRUPTED = "interrupted — the next run resumes it (r on the connections screen)"
LEVEL_STYLES = {"warning": "warning", "error": "error", "success": "success"}


class RunScreen(Screen[None]):
    """A run's live progress per goal, its counters and a streaming, bounded log."""

    CSS_PATH = "run.tcss"
    HELP_TITLE = "Run"
    AUTO_FOCUS = "#run-log"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "cancel_run", "Cancel run", id="run-cancel",
                tooltip="Stop the run at its next safe point (what it committed is kept)"),
        Binding("l", "toggle_follow", "Follow log", id="run-follow-log",
                tooltip="Keep the log scrolled to its newest line, or stop doing so"),
        Binding("escape", "back", "Back (the run goes on)", id="run-back",
                tooltip="Back to the previous screen; the run keeps going"),
    ]  # fmt: skip

    def __init__(self, connection: str, run_id: str | None = None, *, pid: int | None = None):
        super().__init__()
        self.connection = connection
        self.run_id = run_id
        self.pid = pid
        self.progress = RunProgress(run_id=run_id or "", connection=connection)
        self.ended = False
        self.follow_error = ""
        self._token = 0
        self._stop = threading.Event()
        self._goal_views: dict[str, GoalProgressView] = {}
        self._shown_run = ""
        self._texts: dict[str, str] = {}

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        with Horizontal(id="run-header"):
            yield Label("", id="run-title", markup=False)
            yield Label("", id="run-state", markup=False)
        yield VerticalScroll(id="run-goals", can_focus=False)
        yield Label("", id="run-result", markup=False)  # quotes errors and names
        log = RichLog(id="run-log", max_lines=MAX_LOG_LINES, wrap=True, markup=False, min_width=20)
        log.border_title = "Log"
        log.border_subtitle = "following (l stops)"
        yield log
        yield Footer()

    def on_mount(self) -> None:
        runs = self.bctui.runs
        holder = runs.running.get(self.connection)
        if self.run_id is None:
            if holder is not None:
                self.run_id, self.pid = holder.run_id, holder.pid
            elif (record := runs.latest.get(self.connection)) is not None:
                self.run_id = record.id
        elif self.pid is None and holder is not None and holder.run_id == self.run_id:
            self.pid = holder.pid
        self._show_header()
        if not self.run_id:
            self.ended = True
            self._set("#run-result", f'"{self.connection}" never ran — r on the connections '
                      "screen runs it")  # fmt: skip
            return
        self._token += 1
        self._follow(self._token, self.run_id, self.pid)

    def on_resize(self) -> None:
        self._show_header()

    def on_unmount(self) -> None:
        self._stop.set()  # the follower ends; the run does not

    # -- following -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="run-follow")
    def _follow(self, token: int, run_id: str, pid: int | None) -> None:
        workspace = self.bctui.workspace
        assert workspace is not None
        with workspace.store() as store:
            st.migrate(store)
            record = st.get_run(store, run_id)
        live = record is None or record.state == st.RUNNING
        conn = workspace.config.connection(self.connection)
        types = {g.name: g.type for g in conn.goals} if conn is not None else {}
        request = FollowRequest(
            self.bctui.paths, self.connection, run_id, pid=pid, live=live, goal_types=types,
            summary=record.summary if record is not None else None,
        )  # fmt: skip
        follow(self, token, request, self._stop)

    @on(RunViewUpdated)
    def _updated(self, message: RunViewUpdated) -> None:
        message.stop()
        if message.token == self._token:
            self._show(message.progress)

    @on(RunLogged)
    def _logged(self, message: RunLogged) -> None:
        message.stop()
        if message.token == self._token:
            self._write(message.lines)

    @on(RunFollowEnded)
    def _ended(self, message: RunFollowEnded) -> None:
        message.stop()
        if message.token != self._token:
            return
        self.ended = True
        self.follow_error = message.error
        self._show(message.progress)
        self.refresh_bindings()
        log = self.query_one("#run-log", RichLog)
        if log.auto_scroll:
            self.call_after_refresh(log.scroll_end, animate=False)

    # -- drawing ---------------------------------------------------------------------------

    def _set(self, selector: str, text: str) -> None:
        if self._texts.get(selector) != text:
            self._texts[selector] = text
            self.query_one(selector, Label).update(text)

    def _show_header(self) -> None:
        p = self.progress
        run = p.run_id or self.run_id or "—"
        started = ""
        if p.started_at:
            who = p.started_by or ""
            started = f" ─ started {clock(p.started_at)}" + (f" by {who}" if who else "")
            if p.resumed:
                started += " (resumed)"
        mode = " ─ dry run" if p.dry_run else (" ─ full resync" if p.full else "")
        self._set("#run-title", f" Run {run} ─ {self.connection}{started}{mode}")
        words, css = state_words(p) if (p.events or self.ended) else ("waiting for its log…", "")
        if not self.run_id:
            words, css = "", ""
        self._set("#run-state", words + " ")
        state = self.query_one("#run-state", Label)
        # On a narrow screen the state word gives way to the title (the result line says it).
        title = self._texts["#run-title"]
        state.display = len(title) + len(words) + 2 <= self.size.width or not self.size.width
        for name in ("-running", "-finished", "-failed", "-cancelled", "-interrupted"):
            state.set_class(name == css, name)

    def _show(self, progress: RunProgress) -> None:
        was_over = self.progress.over
        self.progress = progress
        self._show_header()
        box = self.query_one("#run-goals", VerticalScroll)
        if progress.run_id != self._shown_run:
            # Another run (the process resumed an interrupted one first): new goal rows.
            self._shown_run = progress.run_id
            self._goal_views = {}
            box.remove_children()
        new = [g for g in progress.goals if g.name not in self._goal_views]
        for goal in progress.goals:
            view = self._goal_views.get(goal.name)
            if view is not None:
                view.show(goal)
        if new:
            views = [GoalProgressView(goal) for goal in new]
            self._goal_views.update({g.name: v for g, v in zip(new, views, strict=True)})
            box.mount_all(views)
        self._set("#run-result", self._result(progress))
        result = self.query_one("#run-result", Label)
        result.display = bool(self._texts["#run-result"])
        _, css = state_words(progress)
        for name in ("-finished", "-failed", "-cancelled", "-interrupted"):
            result.set_class(progress.over and name == css, name)
        if progress.over != was_over:
            self.refresh_bindings()

    def _result(self, p: RunProgress) -> str:
        if self.follow_error and not p.events:
            return f"✗ {self.follow_error}"
        if not p.over:
            return ""
        if p.interrupted:
            return f"⚠ {INTERRUPTED}"
        words, _ = state_words(p)
        checked = sum(g.count("checked") for g in p.goals)
        failed = sum(g.count("failed") for g in p.goals)
        text = f"{words} in {duration(p.seconds)} · {checked:,} checked"
        text += f" · {p.data_points:,} data points"
        if failed:
            text += f" · {failed:,} failed"
        if p.error:
            text += f"\n{p.error}"
        return text

    def _write(self, lines: Iterable[tuple[str, str]]) -> None:
        log = self.query_one("#run-log", RichLog)
        theme = self.app.theme_variables
        for text, level in lines:
            style = theme.get(LEVEL_STYLES.get(level, ""), "") if level else ""
            log.write(Text(text, style=style), scroll_end=log.auto_scroll)

    # -- actions ---------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":
            return bool(self.run_id) and not self.progress.over and not self.ended
        return True

    @work
    async def action_cancel_run(self) -> None:
        """Cancel the run after a confirmation."""
        run_id = self.progress.run_id or self.run_id
        if not run_id or self.progress.over:
            return
        sure = await self.app.push_screen_wait(
            ConfirmModal(
                f'Cancel run {run_id} of "{self.connection}"?',
                "It stops at its next safe point. What it has committed is kept; the next run "
                "carries on from there.",
                yes="Cancel run",
            )
        )
        if not sure:
            return
        try:
            history.cancel_run(self.bctui.paths, self.connection, run_id)
        except BctuiError as exc:
            self.notify(exc.render(), severity="error")
            return
        self.notify(f"cancelling run {run_id}…")

    def action_toggle_follow(self) -> None:
        """Keep the log at its end, or let it stay where it is scrolled to."""
        log = self.query_one("#run-log", RichLog)
        log.auto_scroll = not log.auto_scroll
        log.border_subtitle = "following (l stops)" if log.auto_scroll else "paused (l follows)"
        if log.auto_scroll:
            log.scroll_end(animate=False)

    def action_back(self) -> None:
        """Back; the run goes on."""
        if not self.progress.over and self.run_id and not self.ended:
            self.notify("the run goes on — the connections screen shows it", timeout=3)
        self.dismiss()
