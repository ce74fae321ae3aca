"""Snapshots of each tab of the connection screen at 80×24 and 160×48, on a fixed config with a
run in its history."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_helpers import FIXED_NOW, TuiWorkspace, until

from bctui.engine.runs import state as st
from bctui.store import ProfileStore
from bctui.tui.screens.connection import ConnectionScreen

CONFIG = """\
[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "vip"
match = "all"
rules = [{ property = "lifetime_value", op = "gte", value = 1000 }]

[[connection]]
name = "Braze main"
enabled = true
labels = ["prod", "eu"]
description = "Loyalty in, VIPs out"
notify = { emails = ["ops@example.com"], when = "failure" }
schedule = { kind = "days_of_week", days = ["mon", "fri"], at = "01:30" }

[connection.braze]
endpoint = "https://rest.fra-01.braze.eu"
api_key = "secret:braze-main-braze"

[connection.s3]
access_key_id = "AKIAIOSFODNN7EXAMPLE"
secret_access_key = "secret:braze-main-s3"
bucket = "my-braze-exports"
root = "bctui"
region = "eu-central-1"

[[connection.goal]]
type = "export"
name = "VIPs to Braze"
segment = "vip"
identifiers = [[{ property = "braze_external_id", braze = "external_id" }]]
mappings = [{ source = "property", value = "email", braze = "email" }]

[[connection.goal]]
type = "import"
name = "Braze test users"
enabled = false
audience = { segment_id = "seg-1", name = "BlueConic Test Users" }
identifiers = [[{ braze = "external_id", property = "braze_external_id" }]]
mappings = [{ braze = "first_name", property = "first_name", strategy = "set" }]
"""


def _history(workspace: TuiWorkspace) -> None:
    workspace.paths.ensure_state_dir()
    workspace.set_secret("braze-main-braze", "k" * 36)
    workspace.set_secret("braze-main-s3", "s" * 40)
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store:
        st.migrate(store)
        run_id = "20261201-100000-aaaaaa"
        with store.transaction() as tx:
            record = st.RunRecord(run_id, "Braze main", FIXED_NOW - 7200, st.RUNNING,
                                  started_by="scheduler")  # fmt: skip
            st.insert_run(tx, record, [("VIPs to Braze", "export")])
            st.finish_run(tx, run_id, st.FINISHED, "", {})
            counts = {"updated": 120, "created": 3}
            goal = st.GoalState("VIPs to Braze", "export", st.FINISHED, counts, 1230, 4.0)
            st.save_goal(tx, run_id, goal)
            tx.execute("UPDATE run SET ended_at = started_at + 65")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("tab", ["details", "setup", "goals", "schedule", "history"])
def test_connection_tab(snap_compare, snapshot_workspace: TuiWorkspace, tab: str, size) -> None:  # type: ignore[no-untyped-def]
    snapshot_workspace.write_config(CONFIG)
    _history(snapshot_workspace)

    async def open_tab(pilot: Pilot[None]) -> None:
        app = pilot.app
        app.push_screen(ConnectionScreen("Braze main", tab=tab))
        await until(pilot, lambda: isinstance(app.screen, ConnectionScreen) and app.screen.ready)
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=open_tab)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_run_detail(snap_compare, snapshot_workspace: TuiWorkspace, size) -> None:  # type: ignore[no-untyped-def]
    snapshot_workspace.write_config(CONFIG)
    _history(snapshot_workspace)
    store = ProfileStore(snapshot_workspace.paths.state_dir / "profiles.db")
    with store, store.transaction() as tx:
        failures = [("p-1", "invalid email"), ("p-2", "unknown country")]
        st.record_failures(
            tx, st.goal_key("Braze main", "VIPs to Braze"), "20261201-100000-aaaaaa", failures
        )

    async def open_run(pilot: Pilot[None]) -> None:
        from bctui.tui.screens.run_detail import RunDetailScreen

        app = pilot.app
        app.push_screen(RunDetailScreen("20261201-100000-aaaaaa"))
        await until(
            pilot,
            lambda: (
                isinstance(app.screen, RunDetailScreen)
                and any(
                    t.row_count == 1
                    for t in app.screen.query("#run-detail-goals").results(DataTable)
                )
            ),
        )
        await app.workers.wait_for_complete()
        # The log is written once the screen has its size: wait until it holds steady.
        # So is the goals table's layout (its columns size to the rows once they are drawn).
        log = app.screen.query_one("#run-detail-log")
        goals = app.screen.query_one("#run-detail-goals", DataTable)
        seen: object = None
        steady = 0
        while steady < 10:  # a loaded machine may hold a refresh back for a while
            await pilot.pause(0.03)
            lines = len(log.lines)  # type: ignore[attr-defined]
            now = (lines, tuple(c.get_render_width(goals) for c in goals.columns.values()),
                   goals.virtual_size)
            steady = steady + 1 if now == seen and lines else 0
            seen = now
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=open_run)
