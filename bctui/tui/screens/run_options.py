"""`R`: run a connection with options — one goal, a full resync, a dry run."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Select, Static

from bctui.engine.models import Connection
from bctui.engine.runs.runner import RunOptions


class RunOptionsModal(ModalScreen[RunOptions | None]):
    """Choose what a run does before it starts."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="run-options-cancel"),
        Binding("ctrl+r", "start", "Start", id="run-options-start", tooltip="Start the run"),
    ]

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def compose(self) -> ComposeResult:
        # Goal names are the user's: plain Content, never markup.
        goals = [(Content(f"{g.type} · {g.name}" + ("" if g.enabled else " (off)")), g.name)
                 for g in self.conn.goals]  # fmt: skip
        with Vertical(classes="modal-box"):
            yield Label(f'Run "{self.conn.name}"', classes="modal-title", markup=False)
            yield Label("Goal")
            yield Select(goals, prompt="every goal that is on", id="run-goal")
            yield Checkbox("Full resync (every profile, every mapped attribute)", id="run-full")
            yield Checkbox("Dry run (write nothing; count what would change and its cost)",
                           id="run-dry")  # fmt: skip
            yield Static("A run is its own process: quitting bctui leaves it going.",
                         classes="modal-detail")  # fmt: skip
            with Horizontal(classes="modal-buttons"):
                yield Button("Start (ctrl+r)", variant="primary", id="start")
                yield Button("Cancel (esc)", id="cancel")

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        """Start with the chosen options."""
        goal = self.query_one("#run-goal", Select).value
        self.dismiss(
            RunOptions(
                goal=goal if isinstance(goal, str) else None,
                full=self.query_one("#run-full", Checkbox).value,
                dry_run=self.query_one("#run-dry", Checkbox).value,
            )
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        """Start nothing."""
        self.dismiss(None)
