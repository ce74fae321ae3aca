"""The Setup tab of a connection: the Braze instance and API key (with a permission test), and the
S3 bucket Braze writes segment exports to (bucket picked from a live listing)."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, OptionList, Select, Static, Switch
from textual.widgets.option_list import Option

from bctui.braze.instances import INSTANCES, instance_for, validate_endpoint
from bctui.engine.models import BrazeSettings, Connection, S3Settings
from bctui.engine.secrets import SecretsFile, resolve, secret_name_for
from bctui.errors import BctuiError
from bctui.secret import Secret
from bctui.tui.widgets.details_form import ConnectionForm, Problems

if TYPE_CHECKING:  # bctui.braze pulls in httpx: kept out of the UI's start-up
    from bctui.braze import PermissionReport

CUSTOM = "custom"
MASK = "••••••••"
BRAZE_HINT = "Add missing permissions to the key in Braze: Settings › APIs and Identifiers."
AWS_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1",
    "eu-south-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ap-east-1", "me-south-1", "af-south-1",
)  # fmt: skip
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


@dataclass
class KeyChecked(Message):
    """The answer of a key test (a PermissionReport, or why it could not run)."""

    request: int
    report: PermissionReport | None
    error: str = ""


@dataclass
class BucketsListed(Message):
    """The buckets the S3 credentials see, or the error S3 gave."""

    request: int
    buckets: list[str]
    error: str = ""


@dataclass
class BucketChecked(Message):
    """Whether the chosen bucket can be listed."""

    request: int
    ok: bool
    message: str


class SetupForm(ConnectionForm):
    """Braze endpoint and API key; S3 credentials, bucket, root, region and endpoint URL."""

    FIELDS = (
        "endpoint",
        "api-key",
        "s3-used",
        "s3-key-id",
        "s3-secret",
        "bucket",
        "root",
        "region",
        "s3-endpoint",
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+t", "test", "Test key", id="setup-test",
                tooltip="Check the API key's six permissions (and the S3 bucket) — "
                "with the key typed here, else the saved one"),
        Binding("ctrl+b", "list_buckets", "Buckets", id="setup-buckets",
                tooltip="List the buckets the S3 credentials can see, to pick one"),
    ]  # fmt: skip

    def __init__(self, connection: str, *, id: str | None = None) -> None:
        super().__init__(connection, id=id)
        self.saved: Connection | None = None
        self.needed: set[str] = set()
        self._key_request = 0
        self._bucket_request = 0
        self._check_request = 0

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
        yield Label("Amazon S3", classes="form-section")
        yield from self.row(
            "S3 used",
            Switch(value=True, id="setup-s3-used"),
            Static("import goals need it; exports do not", classes="form-note"),
            field="s3-used",
        )
        with Vertical(id="setup-s3"):
            yield from self.row(
                "Access key",
                Input(
                    compact=True,
                    placeholder="AKIA… or env:VAR or secret:NAME",
                    id="setup-s3-key-id",
                ),
                field="s3-key-id",
            )
            yield from self.row(
                "Secret",
                Input(
                    compact=True,
                    password=True,
                    placeholder="paste a new secret access key",
                    id="setup-s3-secret",
                ),
                field="s3-secret",
            )
            yield Static("", id="setup-s3-secret-status", classes="form-note secret-status")
            yield from self.row(
                "Region",
                Input(
                    compact=True,
                    placeholder="us-east-1",
                    id="setup-region",
                    suggester=SuggestFromList(AWS_REGIONS, case_sensitive=False),
                ),
                field="region",
            )
            yield from self.row(
                "Bucket",
                Input(compact=True, placeholder="my-braze-exports", id="setup-bucket"),
                Button("List buckets", id="setup-list-buckets", compact=True),
                field="bucket",
            )
            yield Static("", id="setup-bucket-status", classes="form-note")
            yield OptionList(id="setup-buckets")
            yield from self.row(
                "Root path",
                Input(
                    compact=True,
                    placeholder="optional folder, as in Braze's S3 settings",
                    id="setup-root",
                ),
                field="root",
            )
            yield from self.row(
                "Endpoint URL",
                Input(
                    compact=True,
                    placeholder="optional, for S3-compatible stores",
                    id="setup-s3-endpoint",
                ),
                field="s3-endpoint",
            )

    def on_mount(self) -> None:
        self.query_one("#setup-buckets", OptionList).display = False
        self.query_one("#setup-permissions", Static).display = False
        self.query_one("#setup-bucket-status", Static).display = False

    def _say(self, selector: str, content: object) -> None:
        """Update a status line, shown only while it has something to say."""
        widget = self.query_one(selector, Static)
        widget.update(content)  # type: ignore[arg-type]
        widget.display = bool(content)

    @property
    def secrets(self) -> SecretsFile:
        """The workspace's secrets file."""
        workspace = getattr(self.app, "workspace", None)
        assert workspace is not None
        secrets: SecretsFile = workspace.secrets
        return secrets

    # -- load / apply ----------------------------------------------------------------------

    def load(self, conn: Connection) -> None:
        self.connection = conn.name
        self.saved = conn
        known = instance_for(conn.braze.endpoint)
        self.query_one("#setup-instance", Select).value = known.rest_endpoint if known else CUSTOM
        self.query_one("#setup-endpoint", Input).value = "" if known else conn.braze.endpoint
        self.query_one("#setup-api-key", Input).value = ""
        s3 = conn.s3
        self.query_one("#setup-s3-used", Switch).value = s3 is not None
        self.query_one("#setup-s3-key-id", Input).value = s3.access_key_id if s3 else ""
        self.query_one("#setup-s3-secret", Input).value = ""
        self.query_one("#setup-bucket", Input).value = s3.bucket if s3 else ""
        self.query_one("#setup-root", Input).value = s3.root if s3 else ""
        self.query_one("#setup-region", Input).value = s3.region if s3 else "us-east-1"
        self.query_one("#setup-s3-endpoint", Input).value = s3.endpoint_url if s3 else ""
        self._show_state()
        self.refresh_status()

    def refresh_status(self) -> None:
        """Say whether the saved secrets are set."""
        conn = self.saved
        if conn is None:
            return
        typed = self.query_one("#setup-api-key", Input).value
        status = (
            f"a new key is typed — saved as secret:{secret_name_for(conn.name, 'braze')} "
            "with ctrl+s"
            if typed
            else secret_status(conn.braze.api_key, self.secrets)
        )
        self.query_one("#setup-api-key-status", Static).update(status)
        typed_s3 = self.query_one("#setup-s3-secret", Input).value
        if typed_s3:
            s3_status = (
                f"a new secret is typed — saved as secret:{secret_name_for(conn.name, 's3')} "
                "with ctrl+s"
            )
        elif conn.s3 is not None:
            s3_status = secret_status(conn.s3.secret_access_key, self.secrets)
        else:
            s3_status = "not set — type the secret access key"
        self.query_one("#setup-s3-secret-status", Static).update(s3_status)

    def endpoint(self) -> str:
        """The endpoint as chosen (not yet validated)."""
        chosen = self.query_one("#setup-instance", Select).value
        if chosen == CUSTOM:
            return self.query_one("#setup-endpoint", Input).value.strip()
        return str(chosen)

    def pending_secrets(self) -> dict[str, Secret]:
        """Secrets typed here, by the name they are saved under."""
        out: dict[str, Secret] = {}
        key = self.query_one("#setup-api-key", Input).value.strip()
        if key:
            out[secret_name_for(self.connection, "braze")] = Secret(key)
        if self.s3_used():
            s3_secret = self.query_one("#setup-s3-secret", Input).value.strip()
            if s3_secret:
                out[secret_name_for(self.connection, "s3")] = Secret(s3_secret)
        return out

    def s3_used(self) -> bool:
        """Whether the S3 switch is on."""
        return self.query_one("#setup-s3-used", Switch).value

    def apply(self, conn: Connection) -> tuple[Connection, Problems]:
        problems: Problems = {}
        endpoint = self.endpoint()
        try:
            endpoint = validate_endpoint(endpoint)
        except BctuiError as exc:
            problems["endpoint"] = f"{exc.message} — {exc.fix}" if exc.fix else exc.message
        api_key = conn.braze.api_key
        if self.query_one("#setup-api-key", Input).value.strip():
            api_key = f"secret:{secret_name_for(conn.name, 'braze')}"
        braze = BrazeSettings(endpoint, api_key)
        if braze == conn.braze:
            braze = conn.braze
        s3: S3Settings | None = None
        if self.s3_used():
            old = conn.s3
            secret_ref = old.secret_access_key if old else ""
            if self.query_one("#setup-s3-secret", Input).value.strip():
                secret_ref = f"secret:{secret_name_for(conn.name, 's3')}"
            elif not secret_ref:
                problems["s3-secret"] = "type the secret access key (it is stored as a secret)"
                secret_ref = f"secret:{secret_name_for(conn.name, 's3')}"
            s3 = S3Settings(
                access_key_id=self.query_one("#setup-s3-key-id", Input).value.strip(),
                secret_access_key=secret_ref,
                bucket=self.query_one("#setup-bucket", Input).value.strip(),
                root=self.query_one("#setup-root", Input).value.strip().strip("/"),
                region=self.query_one("#setup-region", Input).value.strip() or "us-east-1",
                endpoint_url=self.query_one("#setup-s3-endpoint", Input).value.strip(),
            )
            if not s3.access_key_id:
                problems["s3-key-id"] = "type the access key id (or env:VAR / secret:NAME)"
            if s3 == old:
                s3 = old
        return dataclasses.replace(conn, braze=braze, s3=s3), problems

    def field_for(self, path: tuple[str | int, ...]) -> str | None:
        match path:
            case ("braze", "api_key", *_):
                return "api-key"
            case ("braze", *_):
                return "endpoint"
            case ("s3", "access_key_id", *_):
                return "s3-key-id"
            case ("s3", "secret_access_key", *_):
                return "s3-secret"
            case ("s3", "bucket", *_):
                return "bucket"
            case ("s3", "root", *_):
                return "root"
            case ("s3", "region", *_):
                return "region"
            case ("s3", "endpoint_url", *_):
                return "s3-endpoint"
            case ("s3", *_):
                return "bucket"
            case ("goal", _) | ("goal", _, "s3", *_):
                return "s3-used"
        return None

    def show_problems(self, problems: Mapping[str, str]) -> None:
        super().show_problems(problems)
        # The endpoint's message sits under the custom URL row: show it even for a listed one.
        row = self.query_one("#setup-endpoint", Input).parent
        if problems.get("endpoint") and row is not None:
            row.display = True

    # -- reacting to edits -----------------------------------------------------------------

    def _show_state(self) -> None:
        custom = self.query_one("#setup-instance", Select).value == CUSTOM
        row = self.query_one("#setup-endpoint", Input).parent
        assert row is not None
        row.display = custom
        self.query_one("#setup-s3", Vertical).display = self.s3_used()

    @on(Select.Changed, "#setup-instance")
    def _instance_changed(self, event: Select.Changed) -> None:
        self._show_state()
        custom = self.query_one("#setup-endpoint", Input)
        if event.value == CUSTOM and self.saved is not None and not custom.value:
            custom.value = self.saved.braze.endpoint
        self.edited()

    @on(Switch.Changed, "#setup-s3-used")
    def _s3_switched(self, event: Switch.Changed) -> None:
        self._show_state()
        self.edited()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("setup-api-key", "setup-s3-secret"):
            self.refresh_status()
        self.edited()

    # -- test the key ----------------------------------------------------------------------

    @on(Button.Pressed, "#setup-test")
    def action_test(self) -> None:
        """Check the key's six permissions (and the bucket, when S3 is used)."""
        grid = self.query_one("#setup-permissions", Static)
        try:
            endpoint = validate_endpoint(self.endpoint())
        except BctuiError as exc:
            self._say("#setup-permissions", Text(f"✗ {exc.message}", style=self._color("error")))
            return
        typed = self.query_one("#setup-api-key", Input).value.strip()
        if typed:
            key = Secret(typed)
        else:
            try:
                assert self.saved is not None
                key = resolve(self.saved.braze.api_key, self.secrets, where="API key")
            except BctuiError as exc:
                self._say(
                    "#setup-permissions",
                    Text(f"✗ {exc.message} — type the key above", style=self._color("error")),
                )
                return
        self._key_request = next(_requests)
        grid.display = True
        grid.loading = True
        self._check_key(self._key_request, endpoint, key)
        if self.s3_used() and self.query_one("#setup-bucket", Input).value.strip():
            self._start_bucket_check()

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
            self._say("#setup-permissions", Text(f"✗ {message.error}", style=self._color("error")))
            return
        self._say("#setup-permissions", self.render_report(message.report))

    def _color(self, name: str) -> str:
        return self.app.theme_variables.get(name, "red" if name == "error" else "green")

    def render_report(self, report: PermissionReport) -> Group | Text:
        """The six permissions as a grid: ✓ present, ✗ missing, ! error; * marks the needed."""
        from bctui.braze import PermissionState

        if report.unreachable:
            return Text(
                f"✗ {report.endpoint} cannot be reached: {report.message}",
                style=self._color("error"),
            )
        if report.key_invalid:
            return Text(
                f"✗ the API key is invalid for {report.endpoint}: {report.message}",
                style=self._color("error"),
            )
        grid = Table.grid(padding=(0, 2))
        grid.add_column()
        grid.add_column()
        cells: list[Text] = []
        for check in report.checks:
            mark = " *" if check.permission in self.needed else ""
            if check.state is PermissionState.OK:
                cells.append(Text(f"✓ {check.permission}{mark}", style=self._color("success")))
            elif check.state is PermissionState.MISSING:
                cells.append(
                    Text(f"✗ {check.permission}{mark} missing", style=self._color("error"))
                )
            else:
                text = f"! {check.permission}{mark} error"
                cells.append(
                    Text(
                        text + (f": {check.message}" if check.message else ""),
                        style=self._color("warning"),
                    )
                )
        for left, right in itertools.zip_longest(cells[0::2], cells[1::2], fillvalue=Text()):
            grid.add_row(left, right)
        lacking = [m for m in report.missing if m in self.needed]
        notes = []
        if self.needed:
            notes.append("* needed by this connection's goals")
        if report.ok:
            head = Text("The key has all six permissions.", style=self._color("success"))
        elif lacking:
            head = Text(
                f"The goals need {', '.join(lacking)}, which the key lacks.",
                style=self._color("error"),
            )
        else:
            head = Text("The key lacks permissions this connection's goals do not use.")
        if report.missing:
            notes.append(BRAZE_HINT)
        return Group(head, grid, Text(" · ".join(notes), style="dim"))

    # -- buckets ---------------------------------------------------------------------------

    def _s3_credentials(self) -> tuple[str, Secret]:
        """The access key id and secret as typed, else as saved (SecretError when unresolvable)."""
        key_id_text = self.query_one("#setup-s3-key-id", Input).value.strip()
        if not key_id_text:
            raise BctuiError("no access key id", fix="type the access key id first")
        key_id = resolve(key_id_text, self.secrets, where="access key id").reveal()
        typed = self.query_one("#setup-s3-secret", Input).value.strip()
        if typed:
            return key_id, Secret(typed)
        if self.saved is None or self.saved.s3 is None:
            raise BctuiError("no secret access key", fix="type the secret access key first")
        return key_id, resolve(self.saved.s3.secret_access_key, self.secrets, where="S3 secret")

    def _region_endpoint(self) -> tuple[str, str]:
        region = self.query_one("#setup-region", Input).value.strip() or "us-east-1"
        return region, self.query_one("#setup-s3-endpoint", Input).value.strip()

    @on(Button.Pressed, "#setup-list-buckets")
    def action_list_buckets(self) -> None:
        """List the buckets the credentials can see."""
        if not self.s3_used():
            self.notify("S3 is switched off for this connection", severity="warning")
            return
        try:
            key_id, secret = self._s3_credentials()
        except BctuiError as exc:
            self._say("#setup-bucket-status", Text(f"✗ {exc.render()}", style=self._color("error")))
            return
        region, endpoint_url = self._region_endpoint()
        options = self.query_one("#setup-buckets", OptionList)
        options.clear_options()
        options.display = True
        options.loading = True
        self._say("#setup-bucket-status", "listing buckets…")
        self._bucket_request = next(_requests)
        self._list_buckets(self._bucket_request, key_id, secret, region, endpoint_url)

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-buckets")
    def _list_buckets(
        self, request: int, key_id: str, secret: Secret, region: str, endpoint_url: str
    ) -> None:
        from bctui.engine.check import list_buckets

        try:
            buckets = list_buckets(key_id, secret, region=region, endpoint_url=endpoint_url)
        except BctuiError as exc:
            self.post_message(BucketsListed(request, [], exc.render()))
            return
        self.post_message(BucketsListed(request, buckets))

    @on(BucketsListed)
    def _buckets_listed(self, message: BucketsListed) -> None:
        if message.request != self._bucket_request:
            return
        options = self.query_one("#setup-buckets", OptionList)
        options.loading = False
        if message.error:
            options.display = False
            self._say(
                "#setup-bucket-status", Text(f"✗ {message.error}", style=self._color("error"))
            )
            return
        if not message.buckets:
            options.display = False
            self._say(
                "#setup-bucket-status", "these credentials see no buckets — type the bucket's name"
            )
            return
        self._say("#setup-bucket-status", f"{len(message.buckets)} bucket(s) — enter picks one")
        options.add_options([Option(name, id=name) for name in message.buckets])
        current = self.query_one("#setup-bucket", Input).value.strip()
        if current in message.buckets:
            options.highlighted = message.buckets.index(current)
        options.focus()

    @on(OptionList.OptionSelected, "#setup-buckets")
    def _bucket_picked(self, event: OptionList.OptionSelected) -> None:
        bucket = self.query_one("#setup-bucket", Input)
        bucket.value = str(event.option.id)
        event.option_list.display = False
        self._say("#setup-bucket-status", f"bucket {bucket.value} chosen")
        bucket.focus()

    def _start_bucket_check(self) -> None:
        try:
            key_id, secret = self._s3_credentials()
        except BctuiError as exc:
            self._say("#setup-bucket-status", Text(f"✗ {exc.render()}", style=self._color("error")))
            return
        region, endpoint_url = self._region_endpoint()
        bucket = self.query_one("#setup-bucket", Input).value.strip()
        self._check_request = next(_requests)
        self._say("#setup-bucket-status", f"checking bucket {bucket}…")
        self._check_bucket(self._check_request, key_id, secret, region, endpoint_url, bucket)

    @work(thread=True, exclusive=True, exit_on_error=False, group="setup-bucket-check")
    def _check_bucket(
        self,
        request: int,
        key_id: str,
        secret: Secret,
        region: str,
        endpoint_url: str,
        bucket: str,
    ) -> None:
        from bctui.s3 import S3Access

        try:
            access = S3Access(key_id, secret, region=region, endpoint_url=endpoint_url or None)
            access.check_bucket(bucket)
        except BctuiError as exc:
            self.post_message(BucketChecked(request, False, exc.render()))
            return
        self.post_message(
            BucketChecked(request, True, f"bucket {bucket} is reachable and can be listed")
        )

    @on(BucketChecked)
    def _bucket_checked(self, message: BucketChecked) -> None:
        if message.request != self._check_request:
            return
        style = self._color("success" if message.ok else "error")
        mark = "✓" if message.ok else "✗"
        self._say("#setup-bucket-status", Text(f"{mark} {message.message}", style=style))
