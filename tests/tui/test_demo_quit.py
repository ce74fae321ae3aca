"""Quitting the demo's UI while a run goes against its sandbox (which stops with the UI) asks
first: keep the UI open, or cancel the run and quit."""

from __future__ import annotations

import subprocess
import sys
import time

from textual.pilot import Pilot
from tui_helpers import TuiWorkspace, drive, until

from bctui.engine.runs import history
from bctui.tui.screens.confirm import ConfirmModal

CONFIG = """\
[[connection]]
name = "Demo workspace"
braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "secret:demo-braze" }
"""

# A stand-in for a run: holds the connection's lock until SIGTERM, as `bctui run` does.
HOLDER = """
import signal, sys, time
from pathlib import Path
from bctui.engine.runs.lock import RunLock
lock = RunLock(Path(sys.argv[1]), "Demo workspace")
lock.acquire("20261130-120000-abcdef")
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
print("holding", flush=True)
while True:
    time.sleep(0.1)
"""


def test_quitting_the_demo_asks_about_a_running_run(workspace: TuiWorkspace) -> None:
    workspace.write_config(CONFIG)
    workspace.paths.ensure_state_dir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(workspace.paths.locks_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        app = workspace.app(demo=True, poll_seconds=0.1)

        async def scenario(pilot: Pilot[None]) -> None:
            await until(pilot, lambda: "Demo workspace" in app.runs.running)
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.press("n")  # keep the UI open: the run goes on
            await until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
            assert app.is_running and holder.poll() is None
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            await pilot.press("y")  # cancel it and quit
            await until(pilot, lambda: not app.is_running, timeout=15)

        drive(app, scenario)
        assert holder.wait(timeout=10) == 0  # it got SIGTERM, as a run's cancel is
        deadline = time.monotonic() + 5
        while history.running(workspace.paths, ["Demo workspace"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait()


def test_quitting_the_ui_outside_the_demo_never_asks(workspace: TuiWorkspace) -> None:
    workspace.write_config(CONFIG)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)

    drive(app, scenario)
