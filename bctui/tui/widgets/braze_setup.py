"""The Braze half of the Setup tab: the REST instance (or a custom URL), the API key, and a test of
the key's six permissions, shown as a grid."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, Input, Label, Select, Static

from bctui.braze.instances import INSTANCES, instance_for, validate_endpoint
from bctui.engine.models import BrazeSettings, Connection
from bctui.engine.secrets import resolve
from bctui.errors import BctuiError
from bctui.secret import Secret
from bctui.tui.widgets.details_form import Problems
from bctui.tui.widgets.setup_section import SetupSection, secret_status

if TYPE_CHECKING:  # bctui.braze pulls in httpx: kept out of the UI's start-up
    from bctui.braze import PermissionReport

CUSTOM = "custom"
BRAZE_HINT = "Add missing permissions to the key in Braze: Settings › APIs and Identifiers."
_requests = itertools.count(1)


def instance_options() -> list[tuple[str, str]]:
    """The Select options: every documented REST instance, then a custom URL."""
    options = []
    for item in INSTANCES.values():
        mark = "  (unconfirmed)" if not item.confirmed else ""
        host = item.rest_endpoint.removeprefix("https://")
        options.append((f"{item.name:<6} {host}{mark}", item.rest_endpoint))
    options.append(("Custom URL…", CUSTOM))
    return options


@dataclass
class KeyChecked(Message):
    """The answer of a key test (a PermissionReport, or why it could not run)."""

    request: int
    report: PermissionReport | None
    error: str = ""


class BrazeSetup(SetupSection):
    """Instance picker, custom URL, API key (typed keys become secrets) and the permission grid."""

    def __init__(self) -> None:
        super().__init__()
        self.needed: set[str] = set()
        """The permissions this connection's goals need (marked * in the grid)."""
        self._key_request = 0

    def compose(self) -> ComposeResult:
        yield Label("Braze", classes="form-section")
        yield from self.row(
            "Instance",
            Select(instance_options(), allow_blank=False, compact=True, id="setup-instance"),
        )
        yield from self.row(
            "Custom URL",
            Input(compact=True, placeholder="https://rest.….braze.com", id="setup-endpoint"),
            field="endpoint",
        )
        yield from self.row(
            "API key",
            Input(
                compact=True,
                password=True,
                placeholder="paste a new REST API key",
                id="setup-api-key",
            ),
            Button("Test", id="setup-test", compact=True),
            field="api-key",
        )
        yield Static("", id="setup-api-key-status", classes="form-note secret-status")
        yield Static("", id="setup-permissions")

    def on_mount(self) -> None:
        self.query_one("#setup-permissions", Static).display = False

    # -- load / apply ----------------------------------------------------------------------

    def load(self, conn: Connection) -> None:
        """Show `conn`'s endpoint; the key field starts empty (the saved key stays)."""
        self.saved = conn
        known = instance_for(conn.braze.endpoint)
        self.query_one("#setup-instance", Select).value = known.rest_endpoint if known else CUSTOM
        self.query_one("#setup-endpoint", Input).value = "" if known else conn.braze.endpoint
        self.query_one("#setup-api-key", Input).value = ""
        self._show_custom()
        self.refresh_status()

    def refresh_status(self) -> None:
        """Say whether the saved key is set, or that a typed one will be saved."""
        conn = self.saved
        if conn is None:
            return
        typed = self.query_one("#setup-api-key", Input).value
        status = (
            f"a new key is typed — saved as secret:{self.secret_name(conn, 'braze')} with ctrl+s"
            if typed
            else secret_status(conn.braze.api_key, self.secrets)
        )
        self.query_one("#setup-api-key-status", Static).update(Content(status))

    def endpoint(self) -> str:
        """The endpoint as chosen (not yet validated)."""
        chosen = self.query_one("#setup-instance", Select).value
        if chosen == CUSTOM:
            return self.query_one("#setup-endpoint", Input).value.strip()
        return str(chosen)

    def typed_key(self) -> str:
        """The API key typed here ('' when none)."""
        return self.query_one("#setup-api-key", Input).value.strip()

    def pending_secrets(self, connection: str) -> dict[str, Secret]:
        """The key typed here, by the secret name it is saved under."""
        key = self.typed_key()
        if not key or self.saved is None:
            return {}
        return {self.secret_name(self.saved, "braze"): Secret(key)}

    def apply(self, conn: Connection) -> tuple[BrazeSettings, Problems]:
        """`conn`'s Braze settings with this section's values, and a bad endpoint's message."""
        problems: Problems = {}
        endpoint = self.endpoint()
        try:
            endpoint = validate_endpoint(endpoint)
        except BctuiError as exc:
            problems["endpoint"] = f"{exc.message} — {exc.fix}" if exc.fix else exc.message
        api_key = conn.braze.api_key
        if self.typed_key():
            api_key = f"secret:{self.secret_name(conn, 'braze')}"
        braze = BrazeSettings(endpoint, api_key)
        return (conn.braze if braze == conn.braze else braze), problems

    def show_custom_url(self, shown: bool) -> None:
        """Show or hide the custom URL row (it also carries the endpoint's message)."""
        row = self.query_one("#setup-endpoint", Input).parent
        assert row is not None
        row.display = shown

    def _show_custom(self) -> None:
        self.show_custom_url(self.query_one("#setup-instance", Select).value == CUSTOM)

    @on(Select.Changed, "#setup-instance")
    def _instance_changed(self, event: Select.Changed) -> None:
        self._show_custom()
        custom = self.query_one("#setup-endpoint", Input)
        if event.value == CUSTOM and self.saved is not None and not custom.value:
            custom.value = self.saved.braze.endpoint

    # -- test the key ----------------------------------------------------------------------

    def test(self) -> bool:
        """Start checking the key's six permissions; False when it cannot even start (the grid
        then says why)."""
        grid = self.query_one("#setup-permissions", Static)
        try:
            endpoint = validate_endpoint(self.endpoint())
        except BctuiError as exc:
            self.say("#setup-permissions", Text(f"✗ {exc.message}", style=self.color("error")))
            return False
        typed = self.typed_key()
        if typed:
            key = Secret(typed)
        else:
            try:
                assert self.saved is not None
                key = resolve(self.saved.braze.api_key, self.secrets, where="API key")
            except BctuiError as exc:
                self.say(
                    "#setup-permissions",
                    Text(f"✗ {exc.message} — type the key above", style=self.color("error")),
                )
                return False
        self._key_request = next(_requests)
        grid.display = True
        grid.loading = True
        self._check_key(self._key_request, endpoint, key)
        return True

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-key")
    def _check_key(self, request: int, endpoint: str, key: Secret) -> None:
        from bctui.engine.check import check_key

        try:
            report = check_key(endpoint, key)
        except BctuiError as exc:
            self.post_message(KeyChecked(request, None, exc.render()))
            return
        self.post_message(KeyChecked(request, report))

    @on(KeyChecked)
    def _key_checked(self, message: KeyChecked) -> None:
        if message.request != self._key_request:
            return  # a newer test is on its way
        grid = self.query_one("#setup-permissions", Static)
        grid.loading = False
        if message.report is None:
            self.say("#setup-permissions", Text(f"✗ {message.error}", style=self.color("error")))
            return
        self.say("#setup-permissions", self.render_report(message.report))

    def render_report(self, report: PermissionReport) -> Group | Text:
        """The six permissions as a grid: ✓ present, ✗ missing, ! error; * marks the needed."""
        from bctui.braze import PermissionState

        if report.unreachable:
            return Text(
                f"✗ {report.endpoint} cannot be reached: {report.message}",
                style=self.color("error"),
            )
        if report.key_invalid:
            return Text(
                f"✗ the API key is invalid for {report.endpoint}: {report.message}",
                style=self.color("error"),
            )
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column()
        cells: list[Text] = []
        for check in report.checks:
            mark = " *" if check.permission in self.needed else ""
            if check.state is PermissionState.OK:
                cells.append(Text(f"✓ {check.permission}{mark}", style=self.color("success")))
            elif check.state is PermissionState.MISSING:
                cells.append(Text(f"✗ {check.permission}{mark} missing", style=self.color("error")))
            else:
                text = f"! {check.permission}{mark} error"
                cells.append(
                    Text(
                        text + (f": {check.message}" if check.message else ""),
                        style=self.color("warning"),
                    )
                )
        for left, right in itertools.zip_longest(cells[0::2], cells[1::2], fillvalue=Text()):
            grid.add_row(left, right)
        lacking = [m for m in report.missing if m in self.needed]
        notes = []
        if self.needed:
            notes.append("* needed by this connection's goals")
        if report.ok:
            head = Text("The key has all six permissions.", style=self.color("success"))
        elif lacking:
            head = Text(
                f"The goals need {', '.join(lacking)}, which the key lacks.",
                style=self.color("error"),
            )
        else:
            head = Text("The key lacks permissions this connection's goals do not use.")
        if report.missing:
            notes.append(BRAZE_HINT)
        return Group(head, grid, Text(" · ".join(notes), style="dim"))
