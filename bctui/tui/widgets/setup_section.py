"""What the two halves of the Setup tab (Braze, S3) share: rows in their form's style, status
lines that show only while they have something to say, and how a saved secret reads on screen."""

from __future__ import annotations

import os

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from bctui.engine.models import Config, Connection
from bctui.engine.secrets import SecretsFile, secret_name_for
from bctui.errors import BctuiError
from bctui.tui.widgets.details_form import ConnectionForm

MASK = "••••••••"
SECRET_FIELDS = ("braze", "s3-key-id", "s3")
"""The secret references of a connection: Braze API key, S3 access key id, S3 secret."""


def _reference(conn: Connection, what: str) -> str:
    if what == "braze":
        return conn.braze.api_key
    if conn.s3 is None:
        return ""
    return conn.s3.access_key_id if what == "s3-key-id" else conn.s3.secret_access_key


def referenced_secrets(config: Config, *, besides: tuple[str, str] | None = None) -> set[str]:
    """The secret names `config` references, but for one (connection, field) when `besides`."""
    refs = []
    for conn in config.connections:
        for what in SECRET_FIELDS:
            if besides is not None and (conn.name.casefold(), what) == (
                besides[0].casefold(),
                besides[1],
            ):
                continue
            refs.append(_reference(conn, what))
    if config.smtp is not None:
        refs.append(config.smtp.password)
    return {ref.removeprefix("secret:") for ref in refs if ref.startswith("secret:")}


def secret_name(config: Config, stored: list[str], conn: Connection, what: str) -> str:
    """The secret a value typed for `conn`'s `what` ("braze" | "s3") is stored under.

    The secret the connection references already, when no one else reads it; else a new name
    that neither another connection's reference nor a secret left in the file takes.
    """
    others = referenced_secrets(config, besides=(conn.name, what))
    kind, _, name = _reference(conn, what).partition(":")
    if kind == "secret" and name and name not in others:
        return name
    taken = others | (set(stored) - referenced_secrets(config))
    return secret_name_for(conn.name, what, taken)


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
        # Bucket names and S3's messages are not markup.
        widget.update(Content(content) if isinstance(content, str) else content)  # type: ignore[arg-type]
        widget.display = bool(content)

    def color(self, name: str) -> str:
        """A theme colour by variable name (error, success, warning)."""
        return self.app.theme_variables.get(name, "red" if name == "error" else "green")

    def secret_name(self, conn: Connection, what: str) -> str:
        """The secret name a value typed here for `conn` is stored under (see `secret_name`)."""
        try:
            stored = self.secrets.names()
        except BctuiError:  # an unreadable file: its names cannot be taken, and saving says why
            stored = []
        config: Config = getattr(self.app, "config", Config())
        return secret_name(config, stored, conn, what)

    @property
    def secrets(self) -> SecretsFile:
        """The workspace's secrets file."""
        workspace = getattr(self.app, "workspace", None)
        assert workspace is not None
        secrets: SecretsFile = workspace.secrets
        return secrets
