"""The whole product through its UI, with keys, against the sandbox and moto: create a connection
with credentials, test the key, pick the bucket from the live list, create an import goal on a
Braze segment picked from the live list with three mapped fields, create an export goal on a local
segment, switch the connection on, run it, and watch the run finish in the run panel."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Select, Static
from tui_helpers import TuiWorkspace, drive, until

from bctui.engine.config import load_config
from bctui.engine.models import ExportGoal, ImportGoal, ImportMapping
from bctui.engine.runs import state as st
from bctui.engine.secrets import SecretsFile
from bctui.sandbox import Sandbox
from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.app import BctuiApp
from bctui.tui.screens.connection import ConnectionScreen
from bctui.tui.screens.export_goal import ExportGoalScreen
from bctui.tui.screens.import_goal import ImportGoalScreen
from bctui.tui.screens.run import RunScreen
from bctui.tui.widgets.setup_form import CUSTOM

START = """\
# Written by hand before bctui ever ran; the UI adds the connection below.
[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "known"   # profiles Braze knows by external id
match = "all"
rules = [{ property = "braze_external_id", op = "exists" }]
"""


def _text(app: BctuiApp, selector: str) -> str:
    widget = app.screen.query_one(selector)
    content = widget.content if isinstance(widget, Static) else widget.render()
    with app.console.capture() as capture:
        app.console.print(content)
    return capture.get()


def _options(app: BctuiApp, selector: str) -> str:
    found = app.screen.query(selector)
    if not found:
        return ""
    options = found.first(OptionList)
    return " | ".join(
        str(options.get_option_at_index(i).prompt) for i in range(options.option_count)
    )


async def _type(pilot: Pilot[None], selector: str, text: str) -> None:
    """Move to a field (as tab would) and type into it."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    await pilot.press("home", "ctrl+k", *text)


@pytest.mark.slow
def test_a_connection_from_nothing_to_a_finished_run(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    sandbox.sim.configure(export_delay_seconds=0.05, export_file_interval=0.05)
    workspace.write_config(START)
    workspace.paths.ensure_state_dir()
    known = sorted(u["external_id"] for u in sandbox.sim.users if u.get("external_id"))[:40]
    with (
        ProfileStore(workspace.paths.state_dir / "profiles.db") as store,
        store.transaction() as tx,
    ):
        for i, external_id in enumerate(known):  # users the sandbox has seeded
            tx.apply(ProfileWrite(updates=[
                ("braze_external_id", "set", external_id), ("email", "set", f"p{i}@example.com"),
            ]))  # fmt: skip
    app = workspace.app(poll_seconds=0.2)

    async def scenario(pilot: Pilot[None]) -> None:
        # -- a new connection, then its Braze and S3 credentials --------------------------------
        await pilot.press("n", *"Braze main", "enter")
        await until(pilot, lambda: isinstance(app.screen, ConnectionScreen) and app.screen.ready)
        instance = app.screen.query_one("#setup-instance", Select)
        instance.focus()
        await pilot.press("enter", "end", "enter")  # the last choice: Custom URL…
        await until(pilot, lambda: instance.value == CUSTOM)
        await _type(pilot, "#setup-endpoint", sandbox.braze_url)
        await _type(pilot, "#setup-api-key", sandbox.api_key)
        await pilot.press("ctrl+t")
        await until(pilot, lambda: "all six permissions" in _text(app, "#setup-permissions"))
        s3_used = app.screen.query_one("#setup-s3-used")
        if not s3_used.value:  # type: ignore[attr-defined]
            s3_used.focus()
            await pilot.press("space")
        await _type(pilot, "#setup-s3-key-id", sandbox.aws_access_key_id)
        await _type(pilot, "#setup-s3-secret", sandbox.aws_secret_access_key)
        await _type(pilot, "#setup-s3-endpoint", sandbox.s3_endpoint)
        await _type(pilot, "#setup-bucket", "")
        await pilot.press("ctrl+b")
        buckets = app.screen.query_one("#setup-buckets", OptionList)
        await until(pilot, lambda: buckets.option_count > 0 and not buckets.loading)
        buckets.focus()
        await pilot.press("home", "enter")  # the first (only) bucket the key can see
        bucket = app.screen.query_one("#setup-bucket", Input)
        await until(pilot, lambda: bucket.value == sandbox.bucket)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not app.screen.dirty)  # type: ignore[attr-defined]

        # -- an import goal on a Braze segment picked from the live list --------------------
        await pilot.press("f4")
        app.screen.query_one("#goals-table").focus()
        await pilot.press("i", *"Loyalty in", "enter")
        await until(pilot, lambda: isinstance(app.screen, ImportGoalScreen))
        await until(pilot, lambda: "All Users" in _options(app, "#audience-list"))
        app.screen.query_one("#audience-filter", Input).focus()
        await pilot.press(*"all users", "enter")
        await until(pilot, lambda: "All Users" in _text(app, "#audience-chosen"))
        await pilot.press("ctrl+a", *"first_name", "tab", *"first_name")
        await pilot.press("ctrl+a", *"custom_attributes.loyalty_points", "tab", *"points", "tab")
        await pilot.press("enter", "down", "down", "enter")  # set → add → sum
        await pilot.press("ctrl+a", *"email", "tab", *"email", "tab")
        await pilot.press("enter", "down", "down", "down", "enter")  # set_if_empty
        await pilot.press("ctrl+g", "ctrl+a", *"braze_external_id", "ctrl+s")
        await until(pilot, lambda: "braze_external_id" in _text(app, "#ids-line"))
        await _type(pilot, "#wait-poll_seconds", "0.2")
        await _type(pilot, "#wait-quiet_seconds", "1")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: bool(app.config.connections[0].goals))
        await pilot.press("escape")

        # -- an export goal on a local segment ------------------------------------------------
        await until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
        app.screen.query_one("#goals-table").focus()
        await pilot.press("x", *"Everyone out", "enter")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        await until(pilot, lambda: "40 members" in _options(app, "#segment-list"))
        app.screen.query_one("#segment-list").focus()
        await pilot.press("enter")
        await until(pilot, lambda: "known" in _text(app, "#segment-chosen"))
        await pilot.press("ctrl+g", "ctrl+a", *"braze_external_id", "ctrl+s")
        await until(pilot, lambda: "braze_external_id" in _text(app, "#ids-line"))
        await pilot.press("ctrl+a", *"email", "tab", *"email")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(app.config.connections[0].goals) == 2)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
        await pilot.press("escape")

        # -- switch it on, run it, watch it finish ----------------------------------------------
        await until(pilot, lambda: app.screen.query("#connections"))
        await pilot.press("space")
        await until(pilot, lambda: app.config.connections[0].enabled)
        await pilot.press("r")
        await until(pilot, lambda: "Braze main" in app.runs.latest, timeout=30)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await until(pilot, lambda: "FINISHED" in _text(app, "#run-result").upper(), timeout=90)

    drive(app, scenario, size=(100, 40))

    text = workspace.paths.config.read_text(encoding="utf-8")
    assert text.startswith("# Written by hand before bctui ever ran")
    assert 'name = "known"   # profiles Braze knows by external id' in text
    assert sandbox.api_key not in text and sandbox.aws_secret_access_key not in text
    conn = load_config(workspace.paths.config).connections[0]
    assert conn.name == "Braze main" and conn.enabled
    assert conn.braze.endpoint == sandbox.braze_url
    assert conn.braze.api_key == "secret:braze-main-braze"
    assert conn.s3 is not None and conn.s3.bucket == sandbox.bucket
    assert conn.s3.secret_access_key == "secret:braze-main-s3"
    secrets = SecretsFile(workspace.paths.secrets)
    assert secrets.get("braze-main-braze").reveal() == sandbox.api_key  # type: ignore[union-attr]
    assert (
        secrets.get("braze-main-s3").reveal()  # type: ignore[union-attr]
        == sandbox.aws_secret_access_key
    )
    imported, exported = conn.goals
    assert isinstance(imported, ImportGoal) and isinstance(exported, ExportGoal)
    assert imported.audience.name == "All Users"
    assert imported.mappings == (
        ImportMapping("first_name", "first_name", "set"),
        ImportMapping("custom_attributes.loyalty_points", "points", "sum"),
        ImportMapping("email", "email", "set_if_empty"),
    )
    assert exported.segment == "known"
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store:
        st.migrate(store)
        (run,) = st.list_runs(store, "Braze main")
    assert run.state == st.FINISHED and run.started_by == "ui"
    goals = run.summary["goals"]
    loyalty = goals["Loyalty in"]
    assert loyalty["state"] == "FINISHED", loyalty
    assert loyalty["updated"] + loyalty["unchanged"] == 40, loyalty  # every profile matched
    assert goals["Everyone out"]["state"] == "FINISHED"
    assert goals["Everyone out"]["checked"] == 40
