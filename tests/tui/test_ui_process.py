"""The real `bctui` UI process in a pseudo-terminal: a run started from it survives the UI being
killed (SIGHUP, as a dropped SSH session sends, and SIGKILL), and a UI opened afterwards shows how
the run ended. Without a terminal, `bctui` prints its usage instead."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from tui_helpers import TuiWorkspace, drive, until

from bctui.engine.runs import state as st
from bctui.store import ProfileStore, ProfileWrite

SLOW_EXPORT = {
    "type": "export",
    "name": "everyone out",
    "segment": "all",
    "allow_create": True,
    "identifiers": [[{"property": "braze_external_id", "braze": "external_id"}]],
    "mappings": [{"source": "property", "value": "email", "braze": "email"}],
}


def _prepare(live_workspace: Callable[..., TuiWorkspace], profiles: int) -> TuiWorkspace:
    workspace = live_workspace(goal=[SLOW_EXPORT])
    config = workspace.paths.config
    config.write_text(
        config.read_text(encoding="utf-8") + '\n[[segment]]\nname = "all"\nmatch = "all"\n'
        'rules = [{ property = "braze_external_id", op = "exists" }]\n',
        encoding="utf-8",
    )
    workspace.paths.ensure_state_dir()
    with (
        ProfileStore(workspace.paths.state_dir / "profiles.db") as store,
        store.transaction() as tx,
    ):
        for i in range(profiles):
            tx.apply(ProfileWrite(None, updates=[
                ("braze_external_id", "set", f"u{i}"), ("email", "set", f"u{i}@example.com")
            ]))  # fmt: skip
    return workspace


def _runs(workspace: TuiWorkspace) -> list[st.RunRecord]:
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store:
        st.migrate(store)
        return st.list_runs(store, "Braze main")


def _wait(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _open_ui(workspace: TuiWorkspace) -> tuple[int, int]:
    """`python -m bctui` on a new pseudo-terminal of 100×30; returns (pid, master fd)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the UI, as a user starts it
        os.environ["COLUMNS"], os.environ["LINES"] = "100", "30"
        paths = workspace.paths
        argv = ["-m", "bctui", "--config", str(paths.config), "--state-dir", str(paths.state_dir)]
        os.execv(sys.executable, [sys.executable, *argv])
    return pid, fd


def _drain(fd: int, seconds: float) -> bytes:
    """Read what the UI draws for a while (a pty whose output is not read blocks its writer)."""
    import select

    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


def _reap(pid: int, fd: int, timeout: float = 30.0) -> None:
    """Wait for the UI to exit, reading what it draws meanwhile: a UI blocked writing to a full
    terminal could not act on the signal."""
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        assert time.monotonic() < deadline, "the UI did not exit"
        _drain(fd, 0.1)


@pytest.mark.slow
@pytest.mark.parametrize("kill", [signal.SIGHUP, signal.SIGKILL], ids=["SIGHUP", "SIGKILL"])
def test_a_run_started_in_the_ui_outlives_the_ui(
    live_workspace: Callable[..., TuiWorkspace],
    sandbox,
    kill: signal.Signals,  # type: ignore[no-untyped-def]
) -> None:
    sandbox.sim.configure(latency_ms=300.0)  # long enough to kill the UI mid-run
    workspace = _prepare(live_workspace, 3000)
    pid, fd = _open_ui(workspace)
    try:
        screen = _drain(fd, 3.0)
        assert b"Braze main" in screen
        os.write(fd, b"r")
        deadline = time.monotonic() + 20
        while not (_runs(workspace) and _runs(workspace)[0].state == st.RUNNING):
            _drain(fd, 0.1)
            assert time.monotonic() < deadline, "the run did not start"
        # the UI goes away the hard way, its whole process group with it
        os.killpg(os.getpgid(pid), kill)
        _reap(pid, fd)
    finally:
        os.close(fd)
    _wait(lambda: _runs(workspace)[0].state != st.RUNNING, 60, "the run to end")
    run = _runs(workspace)[0]
    assert run.state == st.FINISHED and run.started_by == "ui"
    assert run.summary["goals"]["everyone out"]["created"] == 3000

    # a UI opened afterwards shows the result
    app = workspace.app(clock=time.time)

    async def scenario(pilot) -> None:  # type: ignore[no-untyped-def]
        await until(pilot, lambda: app.runs.status("Braze main") == "FINISHED")
        table = app.screen.query_one("#connections")
        assert "✓" in str(table.get_cell("Braze main", "last"))

    drive(app, scenario)


def test_without_a_terminal_bctui_prints_its_usage(workspace: TuiWorkspace) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bctui", "--config", str(workspace.paths.config),
         "--state-dir", str(workspace.paths.state_dir)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0
    assert "usage: bctui" in proc.stdout
    assert "textual" not in proc.stderr.lower()
