"""Fixtures for the UI tests: workspaces on disk (see tui_helpers), a pinned clock and UTC local
time, no blinking cursors. Snapshot tests use fixed directories, because screens show the paths."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tui_helpers import FIXED_NOW, SNAPSHOT_ROOT, TuiWorkspace, sandbox_config

from bctui.sandbox import Sandbox

__all__ = ["FIXED_NOW", "TuiWorkspace", "sandbox_config"]


@pytest.fixture(autouse=True)
def _no_cursor_blink(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blinking cursor makes snapshots differ run to run."""
    from textual.widgets import Input

    monkeypatch.setattr(Input, "cursor_blink", False, raising=False)


@pytest.fixture(autouse=True)
def _local_time_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times on screen are local: make local time UTC for every UI test."""
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def workspace(tmp_path: Any) -> TuiWorkspace:
    """An empty workspace under tmp_path (no config file yet)."""
    return TuiWorkspace(tmp_path)


@pytest.fixture
def snapshot_workspace(request: pytest.FixtureRequest) -> Iterator[TuiWorkspace]:
    """An empty workspace at a fixed path, so that paths on screen are the same every run."""
    # Not per xdist worker: the path is on screen. Each test runs once, so names do not collide.
    root = SNAPSHOT_ROOT / request.node.name.replace("/", "_")[:80]
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    yield TuiWorkspace(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def live_workspace(workspace: TuiWorkspace, sandbox: Sandbox) -> Callable[..., TuiWorkspace]:
    """A factory: the workspace with a connection on the test's sandbox and its secrets set."""

    def factory(**extra: Any) -> TuiWorkspace:
        workspace.set_secret("braze", sandbox.api_key)
        workspace.set_secret("s3", sandbox.aws_secret_access_key)
        workspace.write_config(sandbox_config(sandbox, **extra))
        return workspace

    return factory
