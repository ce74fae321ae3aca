"""Helpers for the UI tests: a workspace on disk (config, secrets, store) that the app opens, wired
to a live sandbox when a test needs Braze and S3, and a pinned clock so relative times are stable.

Snapshot tests use fixed directories (not tmp_path), because the screens show the config's path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
from textual.pilot import Pilot

from bctui.engine.paths import Paths
from bctui.engine.secrets import SecretsFile
from bctui.sandbox import Sandbox
from bctui.secret import Secret
from bctui.tui.app import BctuiApp

# 2026-11-30 12:00:00 UTC: what "now" is in every UI test.
FIXED_NOW = 1_796_040_000.0
SNAPSHOT_ROOT = Path("/tmp/bctui-snapshots")


@dataclass
class TuiWorkspace:
    """A config file and a state directory for one test."""

    root: Path

    @property
    def paths(self) -> Paths:
        """Where the app looks."""
        return Paths(self.root / "connections.toml", self.root / "state")

    def write_config(self, doc: dict[str, Any] | str) -> Path:
        """Write connections.toml from a dict (via tomli_w) or from text."""
        text = doc if isinstance(doc, str) else tomli_w.dumps(doc)
        self.paths.config.write_text(text, encoding="utf-8")
        return self.paths.config

    def set_secret(self, name: str, value: str) -> None:
        """Store a secret in the state directory's secrets file."""
        self.paths.ensure_state_dir()
        SecretsFile(self.paths.secrets).set(name, Secret(value))

    def app(self, **kwargs: Any) -> BctuiApp:
        """A new app over this workspace, with the pinned clock."""
        kwargs.setdefault("clock", lambda: FIXED_NOW)
        return BctuiApp(self.paths, **kwargs)


def sandbox_config(box: Sandbox, name: str = "Braze main", **extra: Any) -> dict[str, Any]:
    """A connections.toml (as a dict) whose one connection points at a live sandbox."""
    conn: dict[str, Any] = {
        "name": name,
        "enabled": False,
        "braze": {"endpoint": box.braze_url, "api_key": "secret:braze"},
        "s3": {
            "access_key_id": box.aws_access_key_id,
            "secret_access_key": "secret:s3",
            "bucket": box.bucket,
            "root": box.root,
            "region": box.region,
            "endpoint_url": box.s3_endpoint,
        },
    }
    conn.update(extra)
    return {"store": {"url": "sqlite:///profiles.db"}, "connection": [conn]}


def drive(app: BctuiApp, scenario: Callable[[Pilot[None]], Awaitable[None]],
          size: tuple[int, int] = (80, 24)) -> None:  # fmt: skip
    """Run the app headless at `size` and play `scenario` on it."""

    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await pilot.pause()
            await scenario(pilot)

    asyncio.run(main())


async def until(pilot: Pilot[None], condition: Callable[[], object], timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds (fails at the deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)
