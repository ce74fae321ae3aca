"""Shown instead of the connections when connections.toml cannot be used: every problem, and how to
go on once the file is fixed."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Static

from bctui.engine.config import ConfigError


class ConfigProblemScreen(Screen[None]):
    """The validator's findings for an invalid connections.toml."""

    HELP_TITLE = "connections.toml has problems"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "retry", "Reload", id="problem-reload", tooltip="Read the fixed file again"),
        Binding("q", "app.quit", "Quit", id="problem-quit"),
    ]

    def __init__(self, error: ConfigError) -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        count = len(self.error.issues)
        yield Label(
            f"{self.error.file} has {count} problem{'s' if count != 1 else ''}; bctui changes "
            "nothing until it is fixed",
            id="problem-title",
            markup=False,
        )
        with VerticalScroll(id="problem-list"):
            for issue in self.error.issues:
                # The issues quote the user's keys and values: never read as markup.
                yield Static(issue.render(self.error.file), classes="problem", markup=False)
        yield Static(
            "Fix the file in an editor (or run `bctui validate`), then press r.", id="problem-hint"
        )
        yield Footer()

    def action_retry(self) -> None:
        """Open the workspace again; show the connections when the file is now valid."""
        from bctui.engine.workspace import Workspace
        from bctui.tui.app import BctuiApp

        app = self.app
        assert isinstance(app, BctuiApp)
        try:
            workspace = Workspace.open(app.paths)
        except ConfigError as exc:
            self.error = exc
            self.app.notify("connections.toml is still invalid", severity="error")
            self.refresh(recompose=True)
            return
        self.dismiss()
        app.workspace_opened(workspace)
