"""Benchmark: how cheap the terminal UI is while it follows a big run.

Prints medians of `--repeat` measurements of:

- first screen: process start → the connections table painted, for `python -m bctui` in a real
  pseudo-terminal of 120×40 (target ≤ 0.5 s);
- longest event-loop stall while the run panel follows an export of N profiles (target ≤ 100 ms):
  a headless app (`App.run_test`, which renders every frame like a terminal would) with a
  callback every 10 ms that records how late it runs. **live**: a real `bctui run --full` against
  `bctui sandbox --bench` (as bench/run_throughput.py sets it up); **replay**: the log of that run
  written again, with its original timing, by another process that holds the connection's lock,
  so the run's own CPU is absent;
- bytes per second the UI writes to a 120×40 terminal meanwhile (target ≤ 20 KB/s): the real app
  in a pty, the run panel opened with `v`, bytes counted on the master side.

    python bench/tui.py [--profiles 1000000] [--repeat 3] [--latency-ms 100]
    python bench/tui.py --replay-only LOG   # replay a recorded run log (no sandbox, no run)
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import run_throughput as rt

CONNECTION = "Bench"
COLS, ROWS = 120, 40
TICK = 0.01


# -- a recorded run, written again at its own pace ------------------------------------------------


def replay(source: Path, config: Path, state: Path) -> None:
    """Write `source`'s events as a new run of CONNECTION, with their original spacing in time,
    holding the connection's lock like a run does (this is the `--replay-writer` child)."""
    from bctui.engine.paths import Paths
    from bctui.engine.runs import state as st
    from bctui.engine.runs.events import read_events
    from bctui.engine.runs.lock import RunLock
    from bctui.engine.runs.runner import log_path, new_run_id
    from bctui.store import ProfileStore

    paths = Paths(config, state)
    run_id = new_run_id()
    events = [
        dataclasses.replace(e, run_id=run_id) if hasattr(e, "run_id") else e
        for e in read_events(source)
    ]
    lock = RunLock(paths.locks_dir, CONNECTION)
    lock.acquire(run_id)
    with ProfileStore(state / "profiles.db") as store:
        st.migrate(store)
        with store.transaction() as tx:
            st.insert_run(
                tx,
                st.RunRecord(run_id, CONNECTION, time.time(), st.RUNNING),
                [("export", "export")],
            )
    path = log_path(paths, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    started, base = time.monotonic(), events[0].ts
    with open(path, "ab") as handle:
        for event in events:
            delay = (event.ts - base) - (time.monotonic() - started)
            if delay > 0:
                time.sleep(delay)
            handle.write(event.to_json() + b"\n")
            handle.flush()
    with ProfileStore(state / "profiles.db") as store, store.transaction() as tx:
        st.finish_run(tx, run_id, "FINISHED", "", {})
    lock.release()


def start_replay(source: Path, config: Path, state: Path) -> subprocess.Popen[bytes]:
    """The replay writer as a process of its own."""
    return subprocess.Popen(
        [sys.executable, __file__, "--replay-writer", str(source), str(config), str(state)]
    )


# -- (a) first screen and (c) bytes: the real app in a pty ----------------------------------------


class PtyApp:
    """`python -m bctui` in a pseudo-terminal of COLS×ROWS; reads what it writes."""

    def __init__(self, config: Path, state: Path, env: dict[str, str]) -> None:
        self.started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child: the UI on the pty
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
            argv = [sys.executable, "-m", "bctui", "--config", str(config), "--state-dir",
                    str(state)]  # fmt: skip
            os.execvpe(sys.executable, argv, {**env, "TERM": "xterm-256color"})
        self.pid, self.fd = pid, fd
        self.output = bytearray()
        self.stamps: list[tuple[float, int]] = []  # (time, bytes) per read

    def read(self, seconds: float) -> None:
        """Read for `seconds` (or until the app closes the pty)."""
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk
            self.stamps.append((time.perf_counter(), len(chunk)))

    def wait_for(self, marker: bytes, timeout: float = 30.0) -> float:
        """Seconds from the process start until `marker` was written."""
        deadline = time.perf_counter() + timeout
        while marker not in self.output:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"the UI never wrote {marker!r}")
            self.read(0.01)
        return self.stamps[-1][0] - self.started

    def press(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def close(self) -> None:
        os.kill(self.pid, signal.SIGTERM)
        self.read(0.5)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def first_screen(config: Path, state: Path, env: dict[str, str]) -> float:
    """Seconds from `python -m bctui` to the connections table on the terminal."""
    app = PtyApp(config, state, env)
    try:
        return app.wait_for(b"Last run")
    finally:
        app.close()


def bytes_per_second(
    config: Path, state: Path, env: dict[str, str], start: Callable[[], subprocess.Popen[Any]]
) -> float:
    """Bytes per second the UI writes while its run panel follows the run `start()` begins."""
    from bctui.engine.paths import Paths
    from bctui.engine.runs import history

    paths = Paths(config, state)
    run = start()
    app = PtyApp(config, state, env)
    try:
        app.wait_for(b"Last run")
        deadline = time.monotonic() + 60
        while not history.running(paths, [CONNECTION]) and time.monotonic() < deadline:
            app.read(0.05)
        app.read(1.2)  # the app's poll sees the run
        app.press(b"v")
        app.wait_for(b"Follow log")
        opened = time.perf_counter()
        app.stamps.clear()
        while run.poll() is None:
            app.read(0.2)
        ended = time.perf_counter()
        app.read(0.5)
        total = sum(n for t, n in app.stamps if t <= ended)
        return total / max(0.001, ended - opened)
    finally:
        app.close()
        run.wait()


# -- (b) stalls: a headless app, a 10 ms callback ---------------------------------------------


def longest_stall(
    config: Path, state: Path, start: Callable[[], subprocess.Popen[Any]]
) -> tuple[float, float, float, float]:
    """(longest stall, its 99th percentile, seconds followed) while the run panel follows a run,
    and the longest stall while the panel opened (its first picture not shown yet)."""
    from bctui.engine.paths import Paths
    from bctui.tui.app import BctuiApp
    from bctui.tui.screens.run import RunScreen

    async def scenario() -> tuple[float, float, float, float]:
        app = BctuiApp(Paths(config, state))
        async with app.run_test(size=(COLS, ROWS)) as pilot:
            run = start()
            try:
                deadline = time.monotonic() + 60
                while CONNECTION not in app.runs.running:
                    if time.monotonic() > deadline or run.poll() is not None:
                        raise RuntimeError("the run never showed up as running")
                    await pilot.pause(0.05)
                app.push_screen(RunScreen(CONNECTION))
                screen = app.screen
                assert isinstance(screen, RunScreen)
                loop = asyncio.get_running_loop()
                late: list[tuple[bool, float]] = []  # (panel showing the run yet, lateness)
                expected = loop.time() + TICK
                began_loop = loop.time()

                def tick() -> None:
                    nonlocal expected
                    now = loop.time()
                    late.append((screen.progress.events > 0, max(0.0, now - expected)))
                    if os.environ.get("BENCH_TUI_TRACE") and now - expected > 0.04:
                        print(
                            f"    stall {1000 * (now - expected):.0f} ms at "
                            f"{now - began_loop:.2f} s, ended={screen.ended}",
                            flush=True,
                        )
                    expected = now + TICK
                    handle[0] = loop.call_later(TICK, tick)

                handle = [loop.call_later(TICK, tick)]
                began = time.monotonic()
                while not screen.ended:
                    await pilot.pause(0.1)
                followed = time.monotonic() - began
                handle[0].cancel()
                opening = max((s for shown, s in late if not shown), default=0.0)
                following = sorted(s for shown, s in late if shown)
                p99 = following[int(len(following) * 0.99)] if following else 0.0
                return (following[-1] if following else 0.0), p99, followed, opening
            finally:
                run.wait()

    return asyncio.run(scenario())


# -- the whole benchmark -----------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--replay-only", type=Path, help="replay this run log; no live runs")
    parser.add_argument("--replay-writer", nargs=3, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_writer:
        replay(*args.replay_writer)
        return 0
    results: dict[str, list[float]] = {}

    def note(key: str, value: float, shown: str) -> None:
        results.setdefault(key, []).append(value)
        print(f"  {key}: {shown}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bctui-bench-tui-") as tmp:
        root = Path(tmp)
        config, state = root / "connections.toml", root / "state"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BCTUI_")}
        sandbox = None
        try:
            if args.replay_only:
                write_replay_config(config)
                recorded = args.replay_only
            else:
                sandbox, box = rt.start_sandbox(1000, args.latency_ms)
                rt.write_config(config, box, rt.segment_id(box["braze"], box["key"], "All Users"))
                env |= {"BENCH_BRAZE_KEY": box["key"], "BENCH_S3_SECRET": box["secret"]}
                profiles = root / "profiles.jsonl"
                rt.write_profiles(profiles, args.profiles, "P", 1)
                print(f"loading {args.profiles:,} profiles…", flush=True)
                rt.bctui(state, config, env, "profiles", "load", str(profiles), "--match",
                         "external_id")  # fmt: skip
                recorded = root / "recorded.jsonl"
            for repeat in range(args.repeat):
                print(f"repeat {repeat + 1}:", flush=True)
                seconds = first_screen(config, state, env)
                note("first screen s", seconds, f"{seconds:.3f}")
                if not args.replay_only:

                    def live() -> subprocess.Popen[bytes]:
                        command = [sys.executable, "-m", "bctui", "--config", str(config),
                                   "--state-dir", str(state), "run", CONNECTION, "--goal",
                                   "export", "--full"]  # fmt: skip
                        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)  # fmt: skip

                    stall, p99, followed, opening = longest_stall(config, state, live)
                    note(
                        "live: longest stall ms",
                        stall * 1000,
                        f"{stall * 1000:.1f} (p99 {p99 * 1000:.1f}, {followed:.1f} s followed)",
                    )
                    note("live: opening the panel ms", opening * 1000, f"{opening * 1000:.1f}")
                    keep_last_log(state, recorded)
                    rate = bytes_per_second(config, state, env, live)
                    note("live: bytes/s at 120x40", rate, f"{rate:,.0f}")

                def replayed() -> subprocess.Popen[bytes]:
                    return start_replay(recorded, config, state)

                stall, p99, followed, opening = longest_stall(config, state, replayed)
                note(
                    "replay: longest stall ms",
                    stall * 1000,
                    f"{stall * 1000:.1f} (p99 {p99 * 1000:.1f}, {followed:.1f} s followed)",
                )
                note("replay: opening the panel ms", opening * 1000, f"{opening * 1000:.1f}")
                rate = bytes_per_second(config, state, env, replayed)
                note("replay: bytes/s at 120x40", rate, f"{rate:,.0f}")
        finally:
            if sandbox is not None:
                sandbox.terminate()
                sandbox.wait(timeout=30)
    what = f"replay of {args.replay_only}" if args.replay_only else f"{args.profiles:,} profiles"
    print(f"\nmedians of {args.repeat} runs ({what}); targets: first screen ≤ 0.5 s, "
          "stall ≤ 100 ms, ≤ 20,000 bytes/s")  # fmt: skip
    for key, values in results.items():
        print(f"  {key:<28} {median(values):>12,.3f}")
    return 0


def keep_last_log(state: Path, recorded: Path) -> None:
    """Copy the newest run log (the live run just followed) for the replays."""
    logs = sorted((state / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    recorded.write_bytes(logs[-1].read_bytes())


def write_replay_config(config: Path) -> None:
    """A config with the one connection a replayed log names (it never reaches Braze)."""
    config.write_text(f"""
[[segment]]
name = "everyone"
match = "all"
rules = []

[[connection]]
name = "{CONNECTION}"
[connection.braze]
endpoint = "https://rest.iad-01.braze.com"
api_key = "env:BENCH_BRAZE_KEY"

[[connection.goal]]
type = "export"
name = "export"
segment = "everyone"
identifiers = [[{{ property = "external_id", braze = "external_id" }}]]
mappings = [{{ source = "profile_id", braze = "bc_profile_id" }}]
""")


if __name__ == "__main__":
    raise SystemExit(main())
