"""Runs launched as detached processes (what the TUI's "Run now" does): they record who started
them, outlive the process that launched them, can be followed to their end (through the
interrupted run they resume first) and cancelled; their live status comes from the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from run_helpers import (
    REPO,
    Workspace,
    braze_segment_id,
    braze_track,
    child_env,
    export_goal,
    fast_settings,
    import_goal,
    mapping,
    member,
    source,
    wait_for,
)

from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.events import Event, RunFinished, RunStarted
from bctui.engine.runs.history import RunStatus
from bctui.engine.runs.launch import RunHandle, launch_run
from bctui.engine.runs.runner import RunOptions, log_path
from bctui.errors import BctuiError, NotFoundError
from bctui.sandbox import Sandbox, SimulatorSettings

pytestmark = pytest.mark.slow

LINKED: dict[str, Any] = {
    "name": "linked",
    "match": "all",
    "rules": [{"property": "ext", "op": "exists"}],
}
FAST = RunOptions(concurrency=4)


def workspace(root: Path, box: Sandbox) -> Workspace:
    """An import of every Braze user (three), then an export of the profiles with an id."""
    braze_track(box, [{"external_id": f"u{i}", "pts": i + 1} for i in range(3)])
    ws = Workspace.create(
        root,
        box,
        [
            import_goal(
                braze_segment_id(box, "All Users"),
                mappings=[mapping("custom_attributes.pts", "points", "sum")],
            ),
            export_goal(segment="linked", mappings=[source("property", "bc_points", "points")]),
        ],
        [LINKED],
    )
    ws.load([member("p0", ext="u0", points=10)])
    return ws


def record(ws: Workspace, run_id: str) -> st.RunRecord | None:
    """The run's history row, once there is one."""
    with ws.store() as store:
        return st.get_run(store, run_id)


def final_state(ws: Workspace, run_id: str, timeout: float = 30) -> str:
    """Wait for the run to record a final state; that state."""
    done = wait_for(
        lambda: (r := record(ws, run_id)) is not None and r.state in st.TERMINAL and r,
        timeout=timeout,
        what=f"run {run_id} to end",
    )
    return done.state


def status(ws: Workspace, run_id: str) -> RunStatus | None:
    """run_status of the run, once it is in the history."""
    found = record(ws, run_id)
    return None if found is None else history.run_status(ws.paths, found)


def kill_run(handle: RunHandle) -> None:
    """Clean-up: stop a launched run that is still going."""
    if history.pid_alive(handle.pid):
        os.kill(handle.pid, signal.SIGKILL)


def test_a_launched_run_finishes_and_says_the_ui_started_it(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))

    handle = launch_run(ws.paths, "c", FAST)

    try:
        assert handle.connection == "c" and handle.log_path == log_path(ws.paths, handle.run_id)
        assert handle.stderr_path.exists()
        events = list(history.follow_run(ws.paths, "c", handle.run_id, pid=handle.pid))
    finally:
        kill_run(handle)
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert events[0].started_by == "ui" and events[0].run_id == handle.run_id
    assert events[-1].state == "FINISHED", handle.stderr_path.read_text()
    assert {e.kind for e in events} >= {"phase", "goal_finished", "batch"}
    (run,) = ws.runs()
    assert (run.id, run.state, run.started_by) == (handle.run_id, "FINISHED", "ui")
    assert history.run_status(ws.paths, run) == RunStatus.FINISHED
    wait_for(lambda: not history.pid_alive(handle.pid), what="the run's process to be reaped")


LAUNCHER = """
import sys
from pathlib import Path
from bctui.engine.paths import Paths
from bctui.engine.runs.launch import launch_run
from bctui.engine.runs.runner import RunOptions
handle = launch_run(Paths(Path(sys.argv[1]), Path(sys.argv[2])), "c", RunOptions(concurrency=4))
print(handle.pid, handle.run_id, flush=True)
sys.stdin.read()  # stay up until killed
"""


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGKILL], ids=["SIGHUP", "SIGKILL"])
def test_a_launched_run_outlives_its_killed_launcher(
    sig: signal.Signals, tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    # Braze takes a second to write the export: the run is still waiting when the launcher dies.
    box = make_sandbox(
        users=0, settings=SimulatorSettings(export_delay_seconds=1.0, export_file_interval=0.05)
    )
    ws = workspace(tmp_path, box)
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(ws.paths.config), str(ws.paths.state_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=REPO,
        start_new_session=True,
    )  # a group of its own, to kill as a terminal's hang-up would
    run_pid = 0
    try:
        assert launcher.stdout is not None
        pid_text, run_id = launcher.stdout.readline().split()
        run_pid = int(pid_text)
        holder = wait_for(ws.lock_holder, timeout=30, what="the run's lock")
        assert holder.pid == run_pid
        assert os.getsid(run_pid) == run_pid != os.getsid(launcher.pid)

        launcher.send_signal(sig)
        os.killpg(launcher.pid, sig)
        launcher.wait(timeout=10)

        assert history.pid_alive(run_pid)
        assert final_state(ws, run_id) == "FINISHED"
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        if run_pid and history.pid_alive(run_pid):
            os.kill(run_pid, signal.SIGKILL)
    assert launcher.returncode == -sig
    (run,) = ws.runs()
    assert (run.id, run.started_by) == (run_id, "ui")


def test_following_a_launched_run_that_resumes_an_interrupted_one_first(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))
    crashed = ws.cli("run", "c", env={"BCTUI_CRASH_AT": "import.requested"})
    assert crashed.returncode == -9, crashed.stderr
    (killed,) = ws.runs()
    assert history.run_status(ws.paths, killed) == RunStatus.INTERRUPTED

    handle = launch_run(ws.paths, "c", RunOptions(goal="export", concurrency=4))
    try:
        events = list(history.follow_run(ws.paths, "c", handle.run_id, pid=handle.pid))
    finally:
        kill_run(handle)

    finished = [(e.run_id, e.state) for e in events if isinstance(e, RunFinished)]
    assert finished == [(killed.id, "FINISHED"), (handle.run_id, "FINISHED")]
    assert events[-1].kind == "run_finished"
    started = [(e.run_id, e.resumed, e.started_by) for e in events if isinstance(e, RunStarted)]
    # The killed run's first start (from its log), its resumption, then the run asked for; the
    # resumed run keeps what started it.
    assert started == [
        (killed.id, False, "cli"),
        (killed.id, True, "cli"),
        (handle.run_id, False, "ui"),
    ]
    runs = {r.id: r for r in ws.runs()}
    assert (runs[killed.id].started_by, runs[handle.run_id].started_by) == ("cli", "ui")
    assert runs[handle.run_id].goals == ["export"]


def test_status_running_then_cancelled_and_cancelling_what_does_not_run(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    # Braze takes a minute to write the export: the run waits until it is cancelled.
    ws = workspace(
        tmp_path, make_sandbox(users=0, settings=SimulatorSettings(export_delay_seconds=60))
    )
    with pytest.raises(BctuiError, match='connection "c" is not running'):
        history.cancel_run(ws.paths, "c")

    handle = launch_run(ws.paths, "c", FAST)
    try:
        wait_for(
            lambda: status(ws, handle.run_id) == RunStatus.RUNNING,
            timeout=30,
            what="the run to be running",
        )
        assert set(history.running(ws.paths, ["c", "other"])) == {"c"}
        with ws.store() as store:
            assert history.latest_runs(store)["c"].id == handle.run_id
        with pytest.raises(BctuiError, match="is not running"):
            history.cancel_run(ws.paths, "c", "20200101-000000-abcdef")

        # A follower that the UI leaves: it stops at once when told, though the run goes on.
        stop = threading.Event()
        seen: list[Event] = []
        follower = threading.Thread(
            target=lambda: seen.extend(
                history.follow_run(ws.paths, "c", handle.run_id, pid=handle.pid, stop=stop)
            )
        )
        follower.start()
        wait_for(lambda: seen, what="the follower to see the run start")
        stop.set()
        follower.join(timeout=2)
        assert not follower.is_alive()
        assert status(ws, handle.run_id) == RunStatus.RUNNING

        assert history.cancel_run(ws.paths, "c", handle.run_id) == handle.pid
        assert final_state(ws, handle.run_id) == "CANCELLED"
    finally:
        kill_run(handle)
    assert status(ws, handle.run_id) == RunStatus.CANCELLED
    wait_for(lambda: not history.running(ws.paths, ["c"]), what="the lock to be let go")
    with pytest.raises(BctuiError, match="not running") as refused:
        history.cancel_run(ws.paths, "c", handle.run_id)
    assert refused.value.fix


def test_find_run_by_id_prefix_or_connection_and_the_log(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))
    with ws.store() as store, pytest.raises(NotFoundError, match='"c" has not run yet'):
        history.find_run(ws.paths, store, ws.config, "c")
    result = ws.run()

    with ws.store() as store:
        assert history.find_run(ws.paths, store, ws.config, result.run_id[:14]).id == result.run_id
        assert history.find_run(ws.paths, store, ws.config, "C").id == result.run_id
        # Without a config, a connection is still found by its name in the history.
        assert history.find_run(ws.paths, store, None, "c").id == result.run_id
        with pytest.raises(NotFoundError, match='no run or connection "nope"'):
            history.find_run(ws.paths, store, ws.config, "nope")
        found = history.find_run(ws.paths, store, ws.config, "c")
    assert history.wait_for_log(ws.paths, found) == result.log_path
    with pytest.raises(NotFoundError, match="log of run 20200101-000000-abcdef is missing"):
        history.wait_for_log(ws.paths, "20200101-000000-abcdef", timeout=0.1)


def test_run_ids_given_to_a_run_are_checked(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))
    first = ws.cli(
        "run", "c", "--json", "--run-id", "20260101-000000-abcdef", "--started-by", "scheduler"
    )
    assert first.returncode == 0, first.stderr
    assert orjson.loads(first.stdout)["id"] == "20260101-000000-abcdef"
    assert ws.runs()[0].started_by == "scheduler"

    again = ws.cli("run", "c", "--run-id", "20260101-000000-abcdef")
    bad = ws.cli("run", "c", "--run-id", "my-run")
    who = ws.cli("run", "c", "--started-by", "cron")

    assert again.returncode == 2 and "already in the run history" in again.stderr
    assert bad.returncode == 2 and '"my-run" is not a run id' in bad.stderr
    assert who.returncode == 2 and "invalid choice: 'cron'" in who.stderr
    assert len(ws.runs()) == 1
    with pytest.raises(BctuiError, match="is not what starts a run"):
        launch_run(ws.paths, "c", started_by="cron")
