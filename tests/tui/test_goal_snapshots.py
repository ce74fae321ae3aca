"""Snapshots of the import and export goal editors and the dry-run preview at 80×24 and 160×48.

The import editor's segment list comes from a live sandbox (its port is not on that screen); the
export editor counts its segment's members in a real store; the preview follows a real dry run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList
from tui_helpers import TuiWorkspace, sandbox_config, until

from bctui.sandbox import Sandbox
from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.app import BctuiApp
from bctui.tui.screens.dry_run import DryRunScreen
from bctui.tui.screens.export_goal import ExportGoalScreen
from bctui.tui.screens.import_goal import ImportGoalScreen
from bctui.tui.widgets.audience_picker import AudiencePicker


def first_option(app: BctuiApp) -> str:
    """The first entry of the segment list ('' before it shows)."""
    found = app.screen.query("#segment-list")
    return str(found.first(OptionList).get_option_at_index(0).prompt) if found else ""


SIZES = [(80, 24), (160, 48)]
VIP = {"name": "vip", "match": "all", "rules": [{"property": "points", "op": "gte", "value": 10}]}
RUN_ID = "20261201-120000-d0d0d0"


def _import_goal(box: Sandbox) -> dict[str, Any]:
    segment = next(s for s in box.sim.catalog.segments if s.name == "High Value Customers")
    return {
        "type": "import", "name": "Braze test users", "allow_create": True,
        "audience": {"segment_id": segment.id, "name": segment.name},
        "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}],
                        [{"braze": "email", "property": "email"}]],
        "mappings": [
            {"braze": "first_name", "property": "first_name", "strategy": "set"},
            {"braze": "custom_attributes.lifetime_value", "property": "ltv", "strategy": "sum"},
            {"braze": "custom_attributes.tier", "property": "tier", "strategy": "set_if_empty"},
        ],
        "remaining": {"enabled": True, "prefix": "braze_", "strategy": "set_if_empty"},
    }  # fmt: skip


def _export_goal() -> dict[str, Any]:
    return {
        "type": "export", "name": "VIPs to Braze", "segment": "vip", "allow_create": True,
        "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}]],
        "mappings": [{"source": "property", "value": "email", "braze": "email"},
                     {"source": "profile_id", "braze": "bc_profile_id"},
                     {"source": "static", "value": "bctui", "braze": "source"}],
    }  # fmt: skip


def _workspace(ws: TuiWorkspace, box: Sandbox) -> TuiWorkspace:
    ws.set_secret("braze", box.api_key)
    ws.set_secret("s3", box.aws_secret_access_key)
    config = sandbox_config(box, goal=[_import_goal(box), _export_goal()])
    config["segment"] = [VIP]
    ws.write_config(config)
    with ProfileStore(ws.paths.state_dir / "profiles.db") as store, store.transaction() as tx:
        for i in range(30):
            tx.apply(ProfileWrite(profile_id=f"00000000-0000-0000-0000-{i:012d}", updates=[
                ("braze_external_id", "set", f"ext-{i}"), ("email", "set", f"u{i}@example.com"),
                ("points", "set", i)]))  # fmt: skip
    return ws


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_import_goal_editor(
    snap_compare: Callable[..., bool],
    snapshot_workspace: TuiWorkspace,
    sandbox: Sandbox,
    size: tuple[int, int],
) -> None:
    app = _workspace(snapshot_workspace, sandbox).app()

    async def run_before(pilot: Pilot[None]) -> None:
        app.push_screen(ImportGoalScreen("Braze main", "Braze test users"))
        await until(pilot, lambda: bool(app.screen.query(AudiencePicker))
                    and bool(app.screen.query_one(AudiencePicker).segments))  # fmt: skip
        picker = app.screen.query_one(AudiencePicker)
        await until(pilot, lambda: "created" in picker.details_text)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_export_goal_editor(
    snap_compare: Callable[..., bool],
    snapshot_workspace: TuiWorkspace,
    sandbox: Sandbox,
    size: tuple[int, int],
) -> None:
    app = _workspace(snapshot_workspace, sandbox).app()

    async def run_before(pilot: Pilot[None]) -> None:
        app.push_screen(ExportGoalScreen("Braze main", "VIPs to Braze"))
        await until(pilot, lambda: "members" in first_option(app))

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dry_run_preview(
    snap_compare: Callable[..., bool],
    snapshot_workspace: TuiWorkspace,
    sandbox: Sandbox,
    size: tuple[int, int],
) -> None:
    app = _workspace(snapshot_workspace, sandbox).app()

    async def run_before(pilot: Pilot[None]) -> None:
        app.push_screen(DryRunScreen("Braze main", "VIPs to Braze", run_id=RUN_ID))
        await until(pilot, lambda: app.screen.has_class("-over"), timeout=30)

    assert snap_compare(app, terminal_size=size, run_before=run_before)
