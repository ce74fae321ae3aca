"""The Setup tab against a live sandbox (Braze simulator + moto S3): typing secrets and saving them
as references, testing keys, listing buckets, and the errors of bad keys, bad endpoints and bad
S3 credentials (moto with IAM auth in a child process)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select, Static
from tui_helpers import TuiWorkspace, drive, until

from bctui.engine.config import load_config
from bctui.engine.secrets import SecretsFile
from bctui.sandbox import Sandbox
from bctui.tui.app import BctuiApp
from bctui.tui.screens.connection import ConnectionScreen
from bctui.tui.widgets.setup_form import CUSTOM, SetupForm

sys.path.insert(0, str(Path(__file__).parents[1] / "s3"))
from s3_standin import MotoWithAuth

NEW_KEY = "new-braze-key-0123456789abcdef"
NEW_S3_SECRET = "new-s3-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def moto_auth() -> Iterator[MotoWithAuth]:
    """moto enforcing IAM credentials: buckets `allowed` (readable) and `forbidden`."""
    server = MotoWithAuth()
    try:
        yield server
    finally:
        server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def form(app: BctuiApp) -> SetupForm:
    return app.screen.query_one(SetupForm)


def plain(app: BctuiApp, content: object) -> str:
    with app.console.capture() as capture:
        app.console.print(content)
    return capture.get()


def status_text(app: BctuiApp, selector: str) -> str:
    widget = app.screen.query_one(selector, Static)
    return plain(app, widget.content) if widget.display else ""


async def open_setup(pilot: Pilot[None], name: str = "Braze main") -> None:
    pilot.app.push_screen(ConnectionScreen(name, tab="setup"))
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, ConnectionScreen) and app.screen.ready)


async def type_into(pilot: Pilot[None], selector: str, text: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = ""
    await pilot.pause()
    await pilot.press(*text)


async def press_test(pilot: Pilot[None]) -> None:
    app = pilot.app
    grid = app.screen.query_one("#setup-permissions", Static)
    form(app).query_one("#setup-api-key", Input).focus()
    await pilot.press("ctrl+t")
    await until(pilot, lambda: grid.display and not grid.loading)
    await pilot.pause()


def rendered(app: BctuiApp) -> str:
    return status_text(app, "#setup-permissions")


def test_new_secrets_and_a_live_bucket_are_saved_as_references(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    ws = live_workspace()
    app = ws.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        await type_into(pilot, "#setup-api-key", NEW_KEY)
        await type_into(pilot, "#setup-s3-secret", NEW_S3_SECRET)
        # The session's moto takes any secret: the listing works with the typed one.
        await type_into(pilot, "#setup-bucket", "")
        await pilot.press("ctrl+b")
        options = app.screen.query_one("#setup-buckets", OptionList)
        await until(pilot, lambda: options.option_count > 0 and not options.loading)
        names = [str(options.get_option_at_index(i).id) for i in range(options.option_count)]
        assert sandbox.bucket in names
        options.highlighted = names.index(sandbox.bucket)
        await pilot.press("enter")
        await until(
            pilot, lambda: form(app).query_one("#setup-bucket", Input).value == sandbox.bucket
        )
        header = str(app.screen.query_one("#connection-header").render())
        assert "unsaved" in header
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not app.screen.dirty)  # type: ignore[attr-defined]
        # The connection's own secrets (secret:braze, secret:s3) take the new values.
        assert "set — stored as secret:braze" in status_text(
            app, "#setup-api-key-status"
        )
        assert form(app).query_one("#setup-api-key", Input).value == ""

    drive(app, scenario)
    text = ws.paths.config.read_text(encoding="utf-8")
    assert NEW_KEY not in text and NEW_S3_SECRET not in text
    conn = load_config(ws.paths.config).connections[0]
    assert conn.braze.api_key == "secret:braze"
    assert conn.s3 is not None
    assert conn.s3.secret_access_key == "secret:s3"
    assert conn.s3.bucket == sandbox.bucket
    secrets = SecretsFile(ws.paths.secrets)
    assert secrets.get("braze").reveal() == NEW_KEY  # type: ignore[union-attr]
    assert secrets.get("s3").reveal() == NEW_S3_SECRET  # type: ignore[union-attr]


def test_the_full_key_has_all_six_permissions(
    live_workspace: Callable[..., TuiWorkspace],
) -> None:
    ws = live_workspace()
    app = ws.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        await press_test(pilot)
        text = rendered(app)
        assert "all six permissions" in text
        assert text.count("✓") == 6
        assert "✗" not in text

    drive(app, scenario, size=(120, 40))


def test_a_key_with_fewer_permissions_shows_the_missing_ones(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    ws = live_workspace(
        goal=[
            {
                "type": "import",
                "name": "Braze users",
                "audience": {"segment_id": "x", "name": "All"},
                "identifiers": [[{"braze": "external_id", "property": "id"}]],
            }
        ]
    )
    app = ws.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        await type_into(pilot, "#setup-api-key", sandbox.key_with("users.track"))
        await press_test(pilot)
        text = rendered(app)
        assert "✓ users.track" in text
        for missing in ("users.export.segment", "segments.list", "segments.details"):
            assert f"✗ {missing} * missing" in text  # needed by the import goal
        assert "✗ campaigns.list missing" in text
        assert "Settings › APIs and Identifiers" in text

    drive(app, scenario, size=(140, 40))


def test_a_bad_key_is_one_invalid_line(live_workspace: Callable[..., TuiWorkspace]) -> None:
    ws = live_workspace()
    app = ws.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        await type_into(pilot, "#setup-api-key", "not-a-real-key-000000000000")
        await press_test(pilot)
        text = rendered(app)
        assert "invalid" in text
        assert "not-a-real-key" not in text
        assert "✓" not in text

    drive(app, scenario, size=(120, 40))


def test_an_unreachable_endpoint_is_one_clear_line(
    live_workspace: Callable[..., TuiWorkspace],
) -> None:
    ws = live_workspace()
    app = ws.app()
    port = closed_port()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        setup = form(app)
        setup.query_one("#setup-instance", Select).value = CUSTOM
        await type_into(pilot, "#setup-endpoint", f"http://127.0.0.1:{port}")
        await press_test(pilot)
        text = rendered(app)
        assert "cannot be reached" in text
        assert isinstance(app.screen, ConnectionScreen)

    drive(app, scenario, size=(120, 40))


def test_a_wrong_s3_secret_and_denied_access_show_under_the_bucket(
    live_workspace: Callable[..., TuiWorkspace], moto_auth: MotoWithAuth
) -> None:
    ws = live_workspace()
    app = ws.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        await type_into(pilot, "#setup-s3-endpoint", moto_auth.url)
        await type_into(pilot, "#setup-s3-key-id", moto_auth.key_id)
        await type_into(pilot, "#setup-s3-secret", "Wrong/Secret/Key/That/Is/Long/Enough0000")
        await pilot.press("ctrl+b")
        await until(pilot, lambda: "✗" in status_text(app, "#setup-bucket-status"))
        wrong = status_text(app, "#setup-bucket-status")
        assert "secret access key" in wrong or "credentials" in wrong.lower()
        assert "Wrong/Secret" not in wrong
        # The right secret, but a key that may not list buckets: access denied.
        await type_into(pilot, "#setup-s3-secret", moto_auth.secret)
        await pilot.press("ctrl+b")
        await until(pilot, lambda: "denied" in status_text(app, "#setup-bucket-status").lower())
        # A bucket typed by hand that this key may not read: the test says so.
        await type_into(pilot, "#setup-bucket", "forbidden")
        await press_test(pilot)
        await until(pilot, lambda: "forbidden" in status_text(app, "#setup-bucket-status"))
        await until(pilot, lambda: "✗" in status_text(app, "#setup-bucket-status"))
        await type_into(pilot, "#setup-bucket", "allowed")
        await press_test(pilot)
        await until(pilot, lambda: "✓ bucket allowed" in status_text(app, "#setup-bucket-status"))

    drive(app, scenario, size=(120, 40))
    # Nothing was saved.
    conn = load_config(ws.paths.config).connections[0]
    assert conn.s3 is not None and conn.s3.secret_access_key == "secret:s3"


def test_a_bad_endpoint_url_is_refused_under_its_field(
    live_workspace: Callable[..., TuiWorkspace],
) -> None:
    ws = live_workspace()
    before = ws.paths.config.read_bytes()
    app = ws.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        form(app).query_one("#setup-instance", Select).value = CUSTOM
        await type_into(pilot, "#setup-endpoint", "http://braze.example.com")
        await pilot.press("ctrl+s")
        await pilot.pause()
        error = app.screen.query_one("#endpoint-error", Static)
        assert "plain http is only allowed on loopback" in plain(app, error.content)

    drive(app, scenario)
    assert ws.paths.config.read_bytes() == before


def test_s3_can_be_switched_off_for_an_export_only_connection(
    live_workspace: Callable[..., TuiWorkspace],
) -> None:
    ws = live_workspace()
    app = ws.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_setup(pilot)
        form(app).query_one("#setup-s3-used").value = False  # type: ignore[attr-defined]
        await pilot.pause()
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].s3 is None)

    drive(app, scenario)
    assert load_config(ws.paths.config).connections[0].s3 is None
