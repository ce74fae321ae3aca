"""Snapshots of the connections screen at 80×24 and 160×48, with runs in its history."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from tui_helpers import FIXED_NOW, TuiWorkspace

from bctui.engine.runs import state as st
from bctui.store import ProfileStore

CONFIG = """\
[store]
url = "sqlite:///profiles.db"

[[connection]]
name = "Braze main"
enabled = true
favorite = true
labels = ["prod"]
description = "Loyalty in, VIPs out"
schedule = { kind = "days_of_week", days = ["mon", "fri"], at = "01:30" }
braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "secret:braze-main" }

[[connection]]
name = "Braze staging"
labels = ["test"]
braze = { endpoint = "https://rest.fra-01.braze.eu", api_key = "secret:braze-staging" }

[[connection]]
name = "Loyalty sync"
enabled = true
labels = ["prod", "loyalty"]
schedule = { kind = "cron", expr = "*/15 * * * *" }
braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "env:LOYALTY_KEY" }
"""


def _history(workspace: TuiWorkspace) -> None:
    workspace.paths.ensure_state_dir()
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store:
        st.migrate(store)
        runs = [
            ("20261201-100000-aaaaaa", "Braze main", FIXED_NOW - 7200, st.FINISHED),
            ("20261130-120000-bbbbbb", "Braze staging", FIXED_NOW - 86400, st.FAILED),
        ]
        with store.transaction() as tx:
            for run_id, conn, started, state in runs:
                st.insert_run(tx, st.RunRecord(run_id, conn, started, st.RUNNING), [])
                st.finish_run(tx, run_id, state, "", {})
            tx.execute("UPDATE run SET ended_at = started_at + 60")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_connections_screen(snap_compare, snapshot_workspace: TuiWorkspace, size) -> None:  # type: ignore[no-untyped-def]
    snapshot_workspace.write_config(CONFIG)
    _history(snapshot_workspace)

    async def settle(pilot: Pilot[None]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_connections_help_and_filter(snap_compare, snapshot_workspace: TuiWorkspace, size) -> None:  # type: ignore[no-untyped-def]
    snapshot_workspace.write_config(CONFIG)

    async def help_keys(pilot: Pilot[None]) -> None:
        await pilot.press("slash", "p", "r", "o", "d", "enter", "question_mark")
        await pilot.pause()

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=help_keys)


def test_empty_first_start(snap_compare, snapshot_workspace: TuiWorkspace) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(snapshot_workspace.app(), terminal_size=(80, 24))
