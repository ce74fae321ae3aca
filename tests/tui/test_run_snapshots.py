"""Snapshots of the run panel (a finished run, from a fixed recorded log) and of the run strip under
the connections table (a last result, and a run going live), at 80×24 and 160×48."""

from __future__ import annotations

import asyncio

import pytest
from run_records import CONNECTION, RUN_ID, recorded_config, recorded_events, write_run
from textual.pilot import Pilot
from textual.widgets import Label
from tui_helpers import FIXED_NOW, TuiWorkspace

from bctui.engine.runs.lock import RunLock
from bctui.tui.app import BctuiApp
from bctui.tui.screens.run import RunScreen
from bctui.tui.widgets.run_progress import GoalProgressView
from bctui.tui.widgets.run_strip import RunStrip

SIZES = pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])


async def until(pilot: Pilot[None], condition: object, what: str) -> None:
    """Pause until `condition()` holds (10 s at most)."""
    assert callable(condition)
    deadline = asyncio.get_running_loop().time() + 10
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


@SIZES
def test_run_panel_of_a_finished_run(  # type: ignore[no-untyped-def]
    snap_compare, snapshot_workspace: TuiWorkspace, size
) -> None:
    snapshot_workspace.write_config(recorded_config())
    write_run(snapshot_workspace.paths, recorded_events(FIXED_NOW - 7200))

    async def open_panel(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, BctuiApp)
        await until(pilot, lambda: CONNECTION in app.runs.latest, "the first poll of runs")
        await pilot.press("v")
        screen = pilot.app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: screen.ended, "the run's log")
        await settled_log(pilot)

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=open_panel)


async def settled_log(pilot: Pilot[None]) -> None:
    """Wait until the log has all its lines: they arrive in batches after the run's end."""
    log = pilot.app.screen.query_one("#run-log")
    seen, steady = -1, 0
    # Steady for a while and scrolled to its end (the scroll happens after a refresh, which a
    # loaded machine may delay).
    while steady < 10:
        await pilot.pause(0.02)
        count = len(log.lines)  # type: ignore[attr-defined]
        at_end = log.scroll_y >= log.max_scroll_y
        steady = steady + 1 if count == seen and at_end else 0
        seen = count


@SIZES
def test_run_strip_with_the_last_result(  # type: ignore[no-untyped-def]
    snap_compare, snapshot_workspace: TuiWorkspace, size
) -> None:
    snapshot_workspace.write_config(recorded_config())
    write_run(snapshot_workspace.paths, recorded_events(FIXED_NOW - 7200))

    async def settle(pilot: Pilot[None]) -> None:
        strip = pilot.app.screen.query_one(RunStrip)
        label = strip.query_one("#strip-result", Label)
        await until(pilot, lambda: "finished" in str(label.render()), "the last result")
        await pilot.pause()

    assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=settle)


@SIZES
def test_run_strip_following_a_run(  # type: ignore[no-untyped-def]
    snap_compare, snapshot_workspace: TuiWorkspace, size
) -> None:
    paths = snapshot_workspace.paths
    snapshot_workspace.write_config(recorded_config())
    write_run(paths, recorded_events(FIXED_NOW - 62, finish=False), state="RUNNING")
    lock = RunLock(paths.locks_dir, CONNECTION)
    lock.acquire(RUN_ID)  # this process plays the run's: the strip follows the log live

    async def settle(pilot: Pilot[None]) -> None:
        strip = pilot.app.screen.query_one(RunStrip)
        view = strip.query_one(GoalProgressView)

        def exporting() -> bool:
            return view.display and view.goal.name == "VIPs to Braze" and view.goal.waiting

        await until(pilot, exporting, "the export live")
        await pilot.pause()

    try:
        assert snap_compare(snapshot_workspace.app(), terminal_size=size, run_before=settle)
    finally:
        lock.release()
