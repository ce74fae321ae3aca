"""Snapshots of the segments screen, the segment editor and a found profile, at 80×24 and 160×48."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from textual.pilot import Pilot
from textual.widgets import Input
from tui_helpers import FIXED_NOW, TuiWorkspace, until

from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.screens.profiles import ProfilesScreen
from bctui.tui.screens.segment_editor import SegmentEditorScreen
from bctui.tui.screens.segments import SegmentsScreen

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])

CONFIG = """\
[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "vip"
rules = [
  { property = "lifetime_value", op = "gte", value = 1000 },
  { property = "country", op = "in", value = ["NL", "DE"] },
]

[[segment]]
name = "travellers"
match = "any"
rules = [
  { property = "interests", op = "eq", value = "travel" },
  { property = "trips", op = "gt", value = 2 },
]

[[segment]]
name = "newsletter"
rules = [
  { property = "email", op = "exists" },
  { property = "unsubscribed", op = "ne", value = "true" },
]

[[connection]]
name = "Braze main"
braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "secret:braze-main" }

[[connection.goal]]
type = "export"
name = "VIPs to Braze"
segment = "vip"
identifiers = [[{ property = "braze_external_id", braze = "external_id" }]]

[[connection.goal]]
type = "export"
name = "Newsletter"
segment = "newsletter"
identifiers = [[{ property = "email", braze = "email" }]]
"""

COUNTRIES = ("NL", "DE", "BE", "FR")


def _fill(workspace: TuiWorkspace) -> None:
    """40 profiles with fixed ids and fixed times, so every screen is the same each run."""
    workspace.write_config(CONFIG)
    workspace.paths.ensure_state_dir()
    writes = [
        ProfileWrite(f"0190a000-0000-7000-8000-{i:012d}", [
            ("email", "set", f"customer.{i}@example.com"),
            ("braze_external_id", "set", f"C{i:05d}"),
            ("lifetime_value", "set", i * 97),
            ("country", "set", COUNTRIES[i % 4]),
            ("interests", "set", ["travel", "food"] if i % 3 == 0 else ["news"]),
            ("trips", "set", i % 5),
        ], permission_level="PERSONAL" if i % 2 else "ANONYMOUS",
           interactions_viewed=["spring-sale"] if i % 4 == 1 else ())
        for i in range(1, 41)
    ]  # fmt: skip
    created = datetime.fromtimestamp(FIXED_NOW - 3 * 86400, UTC).isoformat()
    updated = datetime.fromtimestamp(FIXED_NOW - 7200, UTC).isoformat()
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store, \
            store.transaction() as tx:  # fmt: skip
        tx.apply_many(writes)
        tx.execute("UPDATE profile SET created_at = ?, updated_at = ?", (created, updated))


@SIZES
def test_segments_screen(snap_compare, snapshot_workspace: TuiWorkspace, size) -> None:  # type: ignore[no-untyped-def]
    _fill(snapshot_workspace)

    async def counted(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(SegmentsScreen())
        screen = pilot.app.screen
        assert isinstance(screen, SegmentsScreen)
        await until(pilot, lambda: len(screen._counts) == 3 and screen._total is not None)

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=counted)


@SIZES
def test_segment_editor(snap_compare, snapshot_workspace: TuiWorkspace, size) -> None:  # type: ignore[no-untyped-def]
    _fill(snapshot_workspace)

    async def editing(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(SegmentEditorScreen("travellers"))
        screen = pilot.app.screen
        assert isinstance(screen, SegmentEditorScreen)
        await until(pilot, lambda: screen.shown_count is not None and screen._names)
        screen.rows[0].query_one(".rule-value", Input).focus()
        await pilot.press("end", "ctrl+u")
        await pilot.press("ctrl+s")  # "equals" needs a value: the message under the rule
        await until(pilot, lambda: screen.rows[0].has_class("-error"))
        await until(pilot, lambda: "needs a value" in str(screen.query_one("#seg-count").render()))
        pilot.app.clear_notifications()
        await pilot.pause()

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=editing)


@SIZES
def test_profile_found(snap_compare, snapshot_workspace: TuiWorkspace, size) -> None:  # type: ignore[no-untyped-def]
    _fill(snapshot_workspace)

    async def found(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(ProfilesScreen())
        screen = pilot.app.screen
        assert isinstance(screen, ProfilesScreen)
        await pilot.press(*"travel", "enter")  # several: the list
        await until(pilot, lambda: screen.search is not None)
        await pilot.press("down", "enter")
        await until(pilot, lambda: screen.shown is not None)

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=found)
