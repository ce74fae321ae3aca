"""Make `screenshots/`: an SVG (and a PNG, when rsvg-convert is installed) of every screen, taken
from the real app on the demo workspace against a live sandbox.

    python scripts/screenshots.py [--out screenshots] [--size 120x36]

It starts a sandbox, prepares the demo (config, secrets, profiles), runs the connection once so
that there is history, then opens the app once per screen and drives it there with keys.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from textual.pilot import Pilot

from bctui import demo
from bctui.engine.paths import Paths
from bctui.engine.runs.runner import RunOptions, run_connection
from bctui.sandbox import Sandbox
from bctui.tui.app import BctuiApp


@dataclass(frozen=True)
class Shot:
    """One screenshot: a name, the keys that reach the screen, and what to wait for."""

    name: str
    keys: Sequence[str] = ()
    settle: float = 0.6  # seconds for live lookups (segments, buckets, counts) to arrive
    before_first_run: bool = False  # a dry run is worth seeing while everything is still new


SHOTS = (
    Shot("connections"),
    Shot("connections-help", ("question_mark",)),
    Shot("command-palette", ("ctrl+p",)),
    Shot("connection-details", ("enter",)),
    Shot("connection-setup", ("enter", "f3")),
    Shot("connection-setup-tested", ("enter", "f3", "ctrl+t"), settle=2.0),
    Shot("connection-setup-buckets", ("enter", "f3", "ctrl+b"), settle=2.0),
    Shot("connection-goals", ("enter", "f4")),
    Shot("connection-schedule", ("enter", "f5")),
    Shot("connection-history", ("enter", "f6")),
    Shot("run-detail", ("enter", "f6", "enter"), settle=1.0),
    Shot("import-goal", ("enter", "f4", "enter"), settle=2.0),
    Shot("export-goal", ("enter", "f4", "down", "enter"), settle=1.5),
    Shot("dry-run", ("enter", "f4", "down", "enter", "ctrl+d"), settle=6.0, before_first_run=True),
    Shot("run-panel-live", ("r", "v"), settle=3.0, before_first_run=True),
    Shot("run-panel", ("v",), settle=1.0),
    Shot("run-options", ("R",)),
    Shot("segments", ("s",), settle=1.0),
    Shot("segment-editor", ("s", "enter"), settle=1.0),
    Shot("profiles", ("p", *"demo.1@example.com", "enter"), settle=1.0),
)


async def take(paths: Paths, shot: Shot, size: tuple[int, int], out: Path) -> Path:
    """Open the app, press the keys, wait, save the SVG."""
    app = BctuiApp(paths)
    async with app.run_test(size=size) as pilot:
        await _settle(pilot, 0.8)
        for key in shot.keys:
            await pilot.press(key)
            await _settle(pilot, 0.15)
        await _settle(pilot, shot.settle)
        path = out / f"{shot.name}.svg"
        app.save_screenshot(filename=path.name, path=str(out))
    return path


async def _settle(pilot: Pilot[None], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        await pilot.pause(0.05)


def main() -> None:
    """Make every screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--size", default="120x36", help="terminal size, COLUMNSxROWS")
    parser.add_argument("--only", nargs="*", help="names of the shots to take")
    args = parser.parse_args()
    width, height = (int(part) for part in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    # A fixed directory, so the paths on screen stay the same from one regeneration to the next.
    directory = Path(tempfile.gettempdir()) / "bctui-demo"
    shutil.rmtree(directory, ignore_errors=True)
    try:
        with Sandbox(users=3000, settings=demo.demo_settings()) as sandbox:
            prepared = demo.prepare(directory, sandbox, profiles=2000)
            wanted = [s for s in SHOTS if not args.only or s.name in args.only]
            for shot in [s for s in wanted if s.before_first_run]:
                _save(asyncio.run(take(prepared.paths, shot, (width, height), args.out)))
            _wait_for_runs(prepared.paths)  # the live shot's run, started from the UI
            run_connection(prepared.config, prepared.paths, demo.CONNECTION, RunOptions())
            for shot in [s for s in wanted if not s.before_first_run]:
                _save(asyncio.run(take(prepared.paths, shot, (width, height), args.out)))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _save(svg: Path) -> None:
    print(svg)
    if shutil.which("rsvg-convert"):
        subprocess.run(["rsvg-convert", "-o", str(svg.with_suffix(".png")), str(svg)], check=True)


def _wait_for_runs(paths: Paths) -> None:
    from bctui.engine.runs import history

    deadline = time.monotonic() + 120
    while history.running(paths, [demo.CONNECTION]) and time.monotonic() < deadline:
        time.sleep(0.2)


if __name__ == "__main__":
    main()
