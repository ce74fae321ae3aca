"""`bctui scheduler` and `bctui tick` as real processes against the sandbox, with a clock the test
moves (`BCTUI_FAKE_NOW_FILE`) so every-minute schedules come due at once: due runs of switched-on
connections start, an overlapping one is skipped, a switched-off connection stops starting, a
failed run does not stop the scheduler, SIGTERM stops it while its runs go on; and `bctui runs
prune`."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w

# The run tests' helpers (config builder, workspace, polling) live beside them in tests/engine.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from run_helpers import (
    BRAZE_SECRET,
    EVERYONE,
    S3_SECRET,
    Workspace,
    braze_segment_id,
    braze_track,
    export_goal,
    finish,
    import_goal,
    kill,
    mapping,
    member,
    source,
    wait_for,
)

from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.scheduler import heartbeat_path, scheduler_status
from bctui.errors import BctuiError
from bctui.sandbox import Sandbox, SimulatorSettings

pytestmark = pytest.mark.slow

EVERY_MINUTE = {"kind": "cron", "expr": "* * * * *", "timezone": "UTC"}


class Scheduled:
    """A workspace with several connections on one sandbox and a clock file the test moves."""

    def __init__(self, root: Path, box: Sandbox) -> None:
        self.box = box
        self.ws = Workspace.create(root, box, [])
        self.now_file = root / "now"
        # Half past a minute, so each move of a minute passes exactly one every-minute slot.
        self.now = (time.time() // 60) * 60 + 30
        self.set_now(self.now)
        self.env = {"BCTUI_FAKE_NOW_FILE": str(self.now_file)}

    def set_now(self, now: float) -> None:
        self.now = now
        self.now_file.write_text(repr(now))

    def advance(self, seconds: float = 60) -> None:
        self.set_now(self.now + seconds)

    def write(self, connections: Sequence[Mapping[str, Any]]) -> None:
        box = self.box
        document = {
            "store": {"url": "sqlite:///profiles.db"},
            "segment": [EVERYONE],
            "connection": [
                {
                    "name": c["name"],
                    "enabled": c.get("enabled", True),
                    "schedule": c.get("schedule", EVERY_MINUTE),
                    "braze": {"endpoint": box.braze_url, "api_key": f"secret:{BRAZE_SECRET}"},
                    "s3": {
                        "access_key_id": box.aws_access_key_id,
                        "secret_access_key": f"secret:{S3_SECRET}",
                        "bucket": box.bucket,
                        "root": box.root,
                        "region": box.region,
                        "endpoint_url": box.s3_endpoint,
                    },
                    "goal": [c["goal"]],
                }
                for c in connections
            ],
        }
        self.ws.paths.config.write_text(tomli_w.dumps(document), encoding="utf-8")

    def runs(self, name: str) -> list[st.RunRecord]:
        with self.ws.store() as store:
            return st.list_runs(store, name)

    def states(self, name: str) -> list[str]:
        return [history.run_status(self.ws.paths, r) for r in reversed(self.runs(name))]

    def ended(self, name: str) -> bool:
        """Whether the processes of every run of `name` are gone (not only their records)."""
        return not any(history.pid_alive(r.pid) for r in self.runs(name))

    def log(self) -> str:
        path = self.ws.paths.state_dir / "scheduler.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""


def quick(name: str, **extra: Any) -> dict[str, Any]:
    """A connection whose run is an export of the store's few profiles: done in a second."""
    return {"name": name, "goal": export_goal(mappings=[source("property", "bc_n", "n")]), **extra}


@pytest.fixture
def scheduled(tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> Iterator[Scheduled]:
    # Braze takes a minute to write a segment export: an import run goes on that long.
    box = make_sandbox(users=0, settings=SimulatorSettings(export_delay_seconds=60))
    braze_track(box, [{"external_id": "u1"}])
    setup = Scheduled(tmp_path, box)
    setup.ws.load(member(f"p{i}", ext=f"e{i}", n=i) for i in range(3))
    yield setup
    # Runs are detached from the scheduler: stop any still going.
    with setup.ws.store() as store:
        names = {r[0] for r in store.query("SELECT DISTINCT connection FROM run").fetchall()}
    for name, holder in history.running(setup.ws.paths, names).items():
        with contextlib.suppress(BctuiError):  # it may have ended meanwhile
            history.cancel_run(setup.ws.paths, name, holder.run_id)
        wait_for(lambda h=holder: not history.pid_alive(h.pid), what=f"run of {name} to stop")


def test_the_scheduler_starts_due_runs_skips_overlaps_and_survives_failures(
    scheduled: Scheduled,
) -> None:
    s = scheduled
    slow = import_goal(braze_segment_id(s.box, "All Users"), mappings=[mapping("email", "mail")])
    broken = import_goal("no-such-segment", mappings=[mapping("email", "mail")])
    connections = [
        quick("quick"),
        {"name": "slow", "goal": slow},
        {"name": "broken", "goal": broken},
        quick("off", enabled=False),
        quick("manual", schedule={"kind": "manual"}),
    ]
    s.write(connections)
    daemon = s.ws.start_cli("scheduler", "--poll-seconds", "0.1", env=s.env)
    try:
        wait_for(lambda: s.log().count("first seen") == 5, what="every connection to be seen")
        assert scheduler_status(s.ws.paths) is not None
        listed = s.ws.cli("list")
        assert "scheduler running on" in listed.stderr and f"PID {daemon.pid}" in listed.stderr
        as_json = [orjson.loads(line) for line in s.ws.cli("list", "--json").stdout.splitlines()]
        assert len(as_json) == 5 and all(item["scheduler_running"] for item in as_json)
        assert s.runs("quick") == []  # the slots before it was first seen do not run

        # First slot: each switched-on scheduled connection starts one run.
        s.advance()
        wait_for(lambda: s.states("quick") == ["FINISHED"], what="quick's first run")
        wait_for(lambda: s.states("broken") == ["FAILED"], what="broken's run to fail")
        wait_for(lambda: s.ended("quick") and s.ended("broken"), what="their processes to end")
        wait_for(lambda: s.states("slow") == ["RUNNING"], what="slow's run to be going")
        assert s.runs("off") == [] and s.runs("manual") == []
        assert {r.started_by for n in ("quick", "slow", "broken") for r in s.runs(n)} == {
            "scheduler"
        }
        slow_run = s.runs("slow")[0]

        # Second slot: slow is still going (skipped); broken failed last time and runs again.
        s.advance()
        wait_for(lambda: s.states("quick") == ["FINISHED"] * 2, what="quick's second run")
        wait_for(lambda: s.states("broken") == ["FAILED"] * 2, what="broken's second run")
        wait_for(lambda: s.ended("quick") and s.ended("broken"), what="their processes to end")
        wait_for(
            lambda: '"slow": slot' in s.log() and "still going" in s.log(),
            what="the overlapping slot to be skipped",
        )
        assert [r.id for r in s.runs("slow")] == [slow_run.id]

        # Switched off in the file: its next slot starts nothing.
        connections[0] = quick("quick", enabled=False)
        s.write(connections)
        wait_for(lambda: "reloaded" in s.log(), what="the edit to be noticed")
        s.advance()
        wait_for(
            lambda: '"quick": slot' in s.log() and "switched off" in s.log(),
            what="quick's slot to be passed over",
        )
        wait_for(lambda: s.states("broken") == ["FAILED"] * 3, what="broken's third run")
        wait_for(lambda: s.ended("broken"), what="its process to end")
        assert len(s.runs("quick")) == 2

        # An invalid edit is reported and the last valid config kept.
        s.ws.paths.config.write_text("[[connection]]\nname = 1\n", encoding="utf-8")
        wait_for(lambda: "keeping the last valid config" in s.log(), what="the bad edit's report")
        assert daemon.poll() is None

        kill(daemon, signal.SIGTERM)
        code, _, err = finish(daemon, timeout=10)
    finally:
        kill(daemon)
    assert code == 0, err
    assert "scheduler stopped; 1 run(s) it started go on" in err
    # The run in progress survives the scheduler.
    assert history.run_status(s.ws.paths, s.runs("slow")[0]) == "RUNNING"
    assert history.pid_alive(slow_run.pid)
    assert not heartbeat_path(s.ws.paths).exists()
    s.write(connections)
    assert "no scheduler is running" in s.ws.cli("list").stderr


def test_tick_starts_exactly_the_due_runs(scheduled: Scheduled) -> None:
    s = scheduled
    s.write(
        [
            quick("a"),
            quick("b"),
            quick("off", enabled=False),
            quick("manual", schedule={"kind": "manual"}),
        ]
    )

    first = s.ws.cli("tick", env=s.env)
    assert first.returncode == 0, first.stderr
    assert "nothing due" in first.stderr  # everyone is new: the past does not run

    s.advance()
    second = s.ws.cli("tick", env=s.env)
    assert second.returncode == 0, second.stderr
    assert second.stderr.count("started run") == 2
    wait_for(
        lambda: s.states("a") == ["FINISHED"] and s.states("b") == ["FINISHED"],
        what="both runs to finish",
    )
    assert s.runs("off") == [] and s.runs("manual") == []

    again = s.ws.cli("tick", env=s.env)  # the same minute: its slot was handled
    assert "nothing due" in again.stderr
    assert len(s.runs("a")) == len(s.runs("b")) == 1
    assert "`bctui tick` last ran on" in s.ws.cli("list").stderr  # cron keeps the schedules


def test_runs_prune_applies_the_retention(scheduled: Scheduled) -> None:
    s = scheduled
    s.write([quick("a")])
    text = s.ws.paths.config.read_text(encoding="utf-8")
    s.ws.paths.config.write_text("[retention]\ndays = 30\nruns = 1\n\n" + text, encoding="utf-8")
    for _ in range(2):
        assert s.ws.cli("run", "a").returncode == 0
    older, newer = s.runs("a")[1], s.runs("a")[0]
    logs = s.ws.paths.runs_dir

    dry = s.ws.cli("runs", "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would prune 1 run" in dry.stdout and older.id in dry.stdout
    assert len(s.runs("a")) == 2

    done = s.ws.cli("runs", "prune")
    assert done.returncode == 0, done.stderr
    assert "pruned 1 run" in done.stdout
    assert [r.id for r in s.runs("a")] == [newer.id]
    assert not (logs / f"{older.id}.jsonl").exists()
    assert (logs / f"{newer.id}.jsonl").exists()
