"""The Setup tab of a connection: the Braze instance and API key (with a permission test), and the
S3 bucket Braze writes segment exports to (bucket picked from a live listing).

The two halves are widgets of their own (`BrazeSetup`, `S3Setup`); this form puts them together,
loads and applies them as one, and owns the tab's keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Button, Input, Select, Switch

from bctui.engine.models import Connection
from bctui.secret import Secret
from bctui.tui.widgets.braze_setup import (
    BRAZE_HINT,
    CUSTOM,
    BrazeSetup,
    KeyChecked,
    instance_options,
)
from bctui.tui.widgets.details_form import ConnectionForm, Problems
from bctui.tui.widgets.s3_setup import AWS_REGIONS, BucketChecked, BucketsListed, S3Setup
from bctui.tui.widgets.setup_section import MASK, secret_status

__all__ = [
    "AWS_REGIONS",
    "BRAZE_HINT",
    "CUSTOM",
    "MASK",
    "BucketChecked",
    "BucketsListed",
    "KeyChecked",
    "SetupForm",
    "instance_options",
    "secret_status",
]


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
        self.braze = BrazeSetup()
        self.s3 = S3Setup()

    def compose(self) -> ComposeResult:
        yield self.braze
        yield self.s3

    @property
    def needed(self) -> set[str]:
        """The permissions this connection's goals need (marked * in the key test)."""
        return self.braze.needed

    @needed.setter
    def needed(self, value: set[str]) -> None:
        self.braze.needed = value

    # -- load / apply ----------------------------------------------------------------------

    def load(self, conn: Connection) -> None:
        self.connection = conn.name
        self.saved = conn
        self.braze.load(conn)
        self.s3.load(conn)

    def refresh_status(self) -> None:
        """Say whether the saved secrets are set."""
        self.braze.refresh_status()
        self.s3.refresh_status()

    def pending_secrets(self) -> dict[str, Secret]:
        """Secrets typed here, by the name they are saved under."""
        return self.braze.pending_secrets(self.connection) | self.s3.pending_secrets(
            self.connection
        )

    def apply(self, conn: Connection) -> tuple[Connection, Problems]:
        braze, problems = self.braze.apply(conn)
        s3, s3_problems = self.s3.apply(conn)
        return dataclasses.replace(conn, braze=braze, s3=s3), problems | s3_problems

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
        if problems.get("endpoint"):
            self.braze.show_custom_url(True)

    # -- reacting to edits (after the section concerned has had its say) -------------------

    @on(Select.Changed, "#setup-instance")
    @on(Switch.Changed, "#setup-s3-used")
    def _switched(self, event: Message) -> None:
        self.edited()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id in ("setup-api-key", "setup-s3-secret"):
            self.refresh_status()
        self.edited()

    # -- the tab's commands ----------------------------------------------------------------

    @on(Button.Pressed, "#setup-test")
    def action_test(self) -> None:
        """Check the key's six permissions (and the bucket, when S3 is used)."""
        if self.braze.test():
            self.s3.check_bucket()

    @on(Button.Pressed, "#setup-list-buckets")
    def action_list_buckets(self) -> None:
        """List the buckets the credentials can see."""
        self.s3.list_buckets()
