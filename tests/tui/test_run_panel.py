"""The run panel and the run strip: runs started by `bctui run` in another process followed live,
finished runs shown from their logs, cancel from the panel, interrupted runs; the strip follows
the highlighted connection's run and restarts its follower only when that run changes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from run_records import (
    CONNECTION,
    RUN_ID,
    recorded_config,
    recorded_events,
    write_run,
)
from textual.pilot import Pilot
from textual.widgets import Label, RichLog
from tui_helpers import FIXED_NOW, TuiWorkspace

from bctui.engine.runs.events import Event
from bctui.engine.runs.lock import RunLock
from bctui.engine.runs.runner import log_path
from bctui.sandbox import Sandbox
from bctui.tui.app import BctuiApp
from bctui.tui.screens.run import RunScreen
from bctui.tui.widgets.run_progress import GoalProgressView
from bctui.tui.widgets.run_strip import RunStrip

REPO = Path(__file__).resolve().parents[2]
FAST_WAIT = {"poll_seconds": 0.1, "quiet_seconds": 0.5, "timeout_minutes": 1}


def import_goal(sandbox: Sandbox, name: str = "everyone in") -> dict[str, Any]:
    """An import of the sandbox's "All Users" segment that creates a profile per user."""
    segment = next(s.id for s in sandbox.sim.catalog.segments if s.name == "All Users")
    return {
        "type": "import", "name": name,
        "audience": {"segment_id": segment, "name": "All Users"},
        "allow_create": True,
        "identifiers": [[{"braze": "external_id", "property": "ext"}]],
        "mappings": [{"braze": "first_name", "property": "first_name", "strategy": "set"}],
        "wait": FAST_WAIT,
    }  # fmt: skip


def start_run(workspace: TuiWorkspace) -> subprocess.Popen[str]:
    """`python -m bctui … run "Braze main"` in another process, as a user in a terminal would."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCTUI_")}
    paths = workspace.paths
    command = [sys.executable, "-m", "bctui", "--config", str(paths.config),
               "--state-dir", str(paths.state_dir), "run", CONNECTION]  # fmt: skip
    return subprocess.Popen(command, cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Wait for the child run; its exit code and stderr (killed if it overstays)."""
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return process.returncode, err


async def until(
    pilot: Pilot[None],
    condition: Callable[[], object],
    what: str,
    timeout: float = 20.0,
    step: Callable[[], object] | None = None,
) -> None:
    """Pause the pilot until `condition()` holds (calling `step` each time); fail naming `what`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if step is not None:
            step()
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await pilot.pause(0.05)


def run_screen(app: BctuiApp) -> RunScreen:
    """The screen on top, which must be the run panel."""
    assert isinstance(app.screen, RunScreen), app.screen
    return app.screen


def log_text(screen: RunScreen) -> str:
    """Every line the panel's log holds."""
    return "\n".join(line.text for line in screen.query_one("#run-log", RichLog).lines)


def scenario(
    app: BctuiApp, body: Callable[[Pilot[None]], Awaitable[None]], size: tuple[int, int] = (100, 30)
) -> None:
    """Run `body` against the app in a headless terminal."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await body(pilot)

    asyncio.run(main())


def test_a_run_started_in_another_process_shows_live_then_finished_with_counts(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    sandbox.sim.configure(export_delay_seconds=1.0, export_file_interval=0.05)
    workspace = live_workspace(goal=[import_goal(sandbox)])
    app = workspace.app(poll_seconds=0.2)
    seen_live: list[bool] = []

    async def body(pilot: Pilot[None]) -> None:
        process = start_run(workspace)
        try:
            await until(pilot, lambda: CONNECTION in app.runs.running, "the run's lock")
            await pilot.press("v")  # the connections screen opens the run panel
            screen = run_screen(app)

            def watch() -> None:
                p = screen.progress
                if p.events and not p.over:
                    seen_live.append(True)

            await until(pilot, lambda: screen.ended, "the run's end", timeout=40, step=watch)
        finally:
            code, err = finish(process)
        assert code == 0, err
        assert seen_live, "the panel never showed the run while it was going"
        progress = screen.progress
        assert progress.state == "FINISHED" and progress.started_by == "cli"
        goal = progress.goals[0]
        assert (goal.name, goal.type, goal.state) == ("everyone in", "import", "FINISHED")
        created = goal.count("created")
        assert goal.count("checked") == 200 and created > 100  # users without an external_id
        assert created + goal.count("skipped") == 200  # are skipped
        assert "✓ finished" in str(screen.query_one("#run-result", Label).render())
        text = log_text(screen)
        assert "merging: file 1" in text and "FINISHED" in text
        view = screen.query_one(GoalProgressView)
        assert "200 checked" in str(view.query_one(".goal-counts", Label).render())
        assert not screen.check_action("cancel_run", ())  # nothing left to cancel

        # Opened again afterwards, the finished run shows its result from the log.
        await pilot.press("escape")
        await until(pilot, lambda: CONNECTION in app.runs.latest, "the run in history")
        await pilot.press("v")
        again = run_screen(app)
        await until(pilot, lambda: again.ended, "the finished run's log")
        assert again.progress.state == "FINISHED" and again.progress.run_id == progress.run_id
        assert again.progress.goals[0].count("created") == created
        assert "FINISHED" in log_text(again)

    scenario(app, body)


def test_cancel_from_the_panel_ends_the_run_cancelled(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    # Braze takes a minute to write the export: the run sits waiting until cancelled.
    sandbox.sim.configure(export_delay_seconds=60.0)
    workspace = live_workspace(goal=[import_goal(sandbox)])
    app = workspace.app(poll_seconds=0.2)

    async def body(pilot: Pilot[None]) -> None:
        process = start_run(workspace)
        try:
            await until(pilot, lambda: CONNECTION in app.runs.running, "the run's lock")
            app.push_screen(RunScreen(CONNECTION))
            screen = run_screen(app)
            await until(pilot, lambda: screen.progress.goals and screen.progress.goals[0].phase,
                        "the goal's first phase")  # fmt: skip
            assert screen.check_action("cancel_run", ())
            await pilot.press("c")
            await until(pilot, lambda: app.screen is not screen, "the confirmation")
            await pilot.press("y")
            await until(pilot, lambda: screen.ended, "the cancelled run's end", timeout=30)
        finally:
            code, err = finish(process)
        assert screen.progress.state == "CANCELLED", err
        assert code != 0
        assert "⊘ cancelled" in str(screen.query_one("#run-result", Label).render())
        assert screen.progress.goals[0].state == "CANCELLED"

    scenario(app, body)


def test_an_interrupted_run_says_the_next_run_resumes_it(workspace: TuiWorkspace) -> None:
    workspace.write_config(recorded_config())
    # Recorded as running, its log cut mid-export, and no process holds the lock.
    write_run(workspace.paths, recorded_events(FIXED_NOW - 600, finish=False), state="RUNNING")
    app = workspace.app()

    async def body(pilot: Pilot[None]) -> None:
        app.push_screen(RunScreen(CONNECTION, RUN_ID))
        screen = run_screen(app)
        await until(pilot, lambda: screen.ended, "the end of the log")
        assert screen.progress.interrupted and not screen.progress.state
        result = str(screen.query_one("#run-result", Label).render())
        assert "interrupted — the next run resumes it (r on the connections screen)" in result
        export = screen.progress.goals[1]
        assert export.phase == "sending" and export.done == 2460
        assert not screen.check_action("cancel_run", ())

    scenario(app, body)


def append(path: Path, events: list[Event]) -> None:
    """Write more events to a run log, as the run's process does."""
    with open(path, "ab") as handle:
        for event in events:
            handle.write(event.to_json() + b"\n")


def test_the_strip_follows_the_running_run_and_then_shows_its_result(
    workspace: TuiWorkspace,
) -> None:
    workspace.write_config(recorded_config())
    paths = workspace.paths
    events = recorded_events(FIXED_NOW - 120)
    cut = next(i for i, e in enumerate(events) if e.kind == "goal_finished")
    write_run(paths, events[:cut], state="RUNNING")
    lock = RunLock(paths.locks_dir, CONNECTION)
    lock.acquire(RUN_ID)  # this process plays the run's
    app = workspace.app(poll_seconds=0.2)

    def strip() -> RunStrip:
        return app.screen.query_one(RunStrip)

    def strip_goal() -> str:
        view = strip().query_one(GoalProgressView)
        return view.goal.name if view.display else ""

    def followers() -> int:
        return sum(1 for w in app.workers if w.group == "run-strip")

    async def body(pilot: Pilot[None]) -> None:
        try:
            await until(pilot, lambda: strip_goal() == "Braze test users", "the import live")
            assert strip().border_title == f"{CONNECTION} ─ running · goal 1 of 2"
            for _ in range(5):  # the app's poll and highlight changes call show() often
                strip().show(CONNECTION)
            assert followers() == 1
            append(log_path(paths, RUN_ID), events[cut:-1])
            await until(pilot, lambda: strip_goal() == "VIPs to Braze", "the export live")
            assert followers() == 1
        finally:
            append(log_path(paths, RUN_ID), events[-1:])
            with workspace_store(app) as store:
                from bctui.engine.runs import state as st

                with store.transaction() as tx:
                    st.finish_run(tx, RUN_ID, "FINISHED", "", {
                        "state": "FINISHED", "data_points": 41139, "seconds": 71.5,
                        "goals": {"x": {"checked": 26294, "failed": 2}}})  # fmt: skip
            lock.release()

        def result() -> str:
            label = strip().query_one("#strip-result", Label)
            return str(label.render()) if label.display else ""

        await until(pilot, lambda: result().startswith("✓ finished"), "the run's result")
        assert "26,294 checked · 41,139 data points · 2 failed" in result()
        assert strip().border_title == CONNECTION

    scenario(app, body)


def workspace_store(app: BctuiApp) -> Any:
    """The app's store, for changing run history the way the run's process would."""
    assert app.workspace is not None
    return app.workspace.store()
