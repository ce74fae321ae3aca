"""The S3 half of the Setup tab: whether S3 is used, the credentials, the bucket (picked from a live
listing, or typed and checked), the root path, region and endpoint URL."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, OptionList, Static, Switch
from textual.widgets.option_list import Option

from bctui.engine.models import Connection, S3Settings
from bctui.engine.secrets import resolve
from bctui.errors import BctuiError
from bctui.secret import Secret
from bctui.tui.widgets.details_form import Problems
from bctui.tui.widgets.setup_section import SetupSection, secret_status

AWS_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1",
    "eu-south-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ap-east-1", "me-south-1", "af-south-1",
)  # fmt: skip
_requests = itertools.count(1)


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


class S3Setup(SetupSection):
    """The S3 switch and, while it is on, credentials, bucket (with its picker) and location."""

    def __init__(self) -> None:
        super().__init__()
        self._bucket_request = 0
        self._check_request = 0

    def compose(self) -> ComposeResult:
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
        self.query_one("#setup-bucket-status", Static).display = False

    # -- load / apply ----------------------------------------------------------------------

    def load(self, conn: Connection) -> None:
        """Show `conn`'s S3 settings; the secret field starts empty (the saved secret stays)."""
        self.saved = conn
        s3 = conn.s3
        self.query_one("#setup-s3-used", Switch).value = s3 is not None
        self.query_one("#setup-s3-key-id", Input).value = s3.access_key_id if s3 else ""
        self.query_one("#setup-s3-secret", Input).value = ""
        self.query_one("#setup-bucket", Input).value = s3.bucket if s3 else ""
        self.query_one("#setup-root", Input).value = s3.root if s3 else ""
        self.query_one("#setup-region", Input).value = s3.region if s3 else "us-east-1"
        self.query_one("#setup-s3-endpoint", Input).value = s3.endpoint_url if s3 else ""
        self._show_used()
        self.refresh_status()

    def refresh_status(self) -> None:
        """Say whether the saved secret is set, or that a typed one will be saved."""
        conn = self.saved
        if conn is None:
            return
        typed_s3 = self.query_one("#setup-s3-secret", Input).value
        if typed_s3:
            s3_status = (
                f"a new secret is typed — saved as secret:{self.secret_name(conn, 's3')} "
                "with ctrl+s"
            )
        elif conn.s3 is not None:
            s3_status = secret_status(conn.s3.secret_access_key, self.secrets)
        else:
            s3_status = "not set — type the secret access key"
        self.query_one("#setup-s3-secret-status", Static).update(Content(s3_status))

    def used(self) -> bool:
        """Whether the S3 switch is on."""
        return self.query_one("#setup-s3-used", Switch).value

    def typed_secret(self) -> str:
        """The secret access key typed here ('' when none)."""
        return self.query_one("#setup-s3-secret", Input).value.strip()

    def pending_secrets(self, connection: str) -> dict[str, Secret]:
        """The secret typed here (while S3 is used), by the name it is saved under."""
        secret = self.typed_secret() if self.used() else ""
        if not secret or self.saved is None:
            return {}
        return {self.secret_name(self.saved, "s3"): Secret(secret)}

    def apply(self, conn: Connection) -> tuple[S3Settings | None, Problems]:
        """`conn`'s S3 settings with this section's values (None: S3 off), and what is missing."""
        problems: Problems = {}
        if not self.used():
            return None, problems
        old = conn.s3
        secret_ref = old.secret_access_key if old else ""
        if self.typed_secret():
            secret_ref = f"secret:{self.secret_name(conn, 's3')}"
        elif not secret_ref:
            problems["s3-secret"] = "type the secret access key (it is stored as a secret)"
            secret_ref = f"secret:{self.secret_name(conn, 's3')}"
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
        return (old if s3 == old else s3), problems

    def _show_used(self) -> None:
        self.query_one("#setup-s3", Vertical).display = self.used()

    @on(Switch.Changed, "#setup-s3-used")
    def _s3_switched(self, event: Switch.Changed) -> None:
        self._show_used()

    # -- buckets ---------------------------------------------------------------------------

    def _credentials(self) -> tuple[str, Secret]:
        """The access key id and secret as typed, else as saved (SecretError when unresolvable)."""
        key_id_text = self.query_one("#setup-s3-key-id", Input).value.strip()
        if not key_id_text:
            raise BctuiError("no access key id", fix="type the access key id first")
        key_id = resolve(key_id_text, self.secrets, where="access key id").reveal()
        typed = self.typed_secret()
        if typed:
            return key_id, Secret(typed)
        if self.saved is None or self.saved.s3 is None:
            raise BctuiError("no secret access key", fix="type the secret access key first")
        return key_id, resolve(self.saved.s3.secret_access_key, self.secrets, where="S3 secret")

    def _region_endpoint(self) -> tuple[str, str]:
        region = self.query_one("#setup-region", Input).value.strip() or "us-east-1"
        return region, self.query_one("#setup-s3-endpoint", Input).value.strip()

    def list_buckets(self) -> None:
        """List the buckets the credentials can see, to pick one."""
        if not self.used():
            self.notify("S3 is switched off for this connection", severity="warning")
            return
        try:
            key_id, secret = self._credentials()
        except BctuiError as exc:
            self.say("#setup-bucket-status", Text(f"✗ {exc.render()}", style=self.color("error")))
            return
        region, endpoint_url = self._region_endpoint()
        options = self.query_one("#setup-buckets", OptionList)
        options.clear_options()
        options.display = True
        options.loading = True
        self.say("#setup-bucket-status", "listing buckets…")
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
            self.say("#setup-bucket-status", Text(f"✗ {message.error}", style=self.color("error")))
            return
        if not message.buckets:
            options.display = False
            self.say(
                "#setup-bucket-status", "these credentials see no buckets — type the bucket's name"
            )
            return
        self.say("#setup-bucket-status", f"{len(message.buckets)} bucket(s) — enter picks one")
        options.add_options([Option(Text(name), id=name) for name in message.buckets])
        current = self.query_one("#setup-bucket", Input).value.strip()
        if current in message.buckets:
            options.highlighted = message.buckets.index(current)
        options.focus()

    @on(OptionList.OptionSelected, "#setup-buckets")
    def _bucket_picked(self, event: OptionList.OptionSelected) -> None:
        bucket = self.query_one("#setup-bucket", Input)
        bucket.value = str(event.option.id)
        event.option_list.display = False
        self.say("#setup-bucket-status", f"bucket {bucket.value} chosen")
        bucket.focus()

    def check_bucket(self) -> None:
        """Check that the typed bucket can be listed (when S3 is used and a bucket is typed)."""
        bucket = self.query_one("#setup-bucket", Input).value.strip()
        if not self.used() or not bucket:
            return
        try:
            key_id, secret = self._credentials()
        except BctuiError as exc:
            self.say("#setup-bucket-status", Text(f"✗ {exc.render()}", style=self.color("error")))
            return
        region, endpoint_url = self._region_endpoint()
        self._check_request = next(_requests)
        self.say("#setup-bucket-status", f"checking bucket {bucket}…")
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
        style = self.color("success" if message.ok else "error")
        mark = "✓" if message.ok else "✗"
        self.say("#setup-bucket-status", Text(f"{mark} {message.message}", style=style))
