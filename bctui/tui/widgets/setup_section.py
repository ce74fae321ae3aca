"""What the two halves of the Setup tab (Braze, S3) share: rows in their form's style, status
lines that show only while they have something to say, and how a saved secret reads on screen."""

from __future__ import annotations

import os

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Static

from bctui.engine.models import Connection
from bctui.engine.secrets import SecretsFile
from bctui.errors import BctuiError
from bctui.tui.widgets.details_form import ConnectionForm

MASK = "••••••••"


def secret_status(reference: str, secrets: SecretsFile) -> str:
    """How a secret reference reads on screen: whether it is set, never its value."""
    kind, _, name = reference.partition(":")
    if kind == "env":
        state = "set" if name in os.environ else "not set in this environment"
        return f"read from env:{name} ({state}) — type a new value to store it as a secret"
    if kind != "secret" or not name:
        return "not set — type the value"
    try:
        found = secrets.get(name) is not None
    except BctuiError as exc:
        return exc.message
    if found:
        return f"{MASK} set — stored as secret:{name}"
    return f"not set — no secret {name} yet; type the value"


class SetupSection(Vertical):
    """One half of the Setup form; its fields' messages are shown by the form it sits in."""

    DEFAULT_CSS = """
    SetupSection {
        height: auto;
    }
    """

    def __init__(self) -> None:
        super().__init__()
        self.saved: Connection | None = None
        """The connection as last loaded (its saved secrets back what is not typed)."""

    def row(self, label: str, *widgets: Widget, field: str = "") -> ComposeResult:
        """A labelled row built by the enclosing form, so every tab's rows look alike."""
        return self.query_ancestor(ConnectionForm).row(label, *widgets, field=field)

    def say(self, selector: str, content: object) -> None:
        """Update a status line, shown only while it has something to say."""
        widget = self.query_one(selector, Static)
        widget.update(content)  # type: ignore[arg-type]
        widget.display = bool(content)

    def color(self, name: str) -> str:
        """A theme colour by variable name (error, success, warning)."""
        return self.app.theme_variables.get(name, "red" if name == "error" else "green")

    @property
    def secrets(self) -> SecretsFile:
        """The workspace's secrets file."""
        workspace = getattr(self.app, "workspace", None)
        assert workspace is not None
        secrets: SecretsFile = workspace.secrets
        return secrets
