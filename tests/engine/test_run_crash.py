"""Crash safety: `bctui run` killed with SIGKILL at named points and at random times, then run
again, ends with exactly the store and Braze state of one uninterrupted run."""

from __future__ import annotations

import dataclasses
import random
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from run_helpers import (
    Workspace,
    braze_segment_id,
    braze_track,
    braze_users,
    export_goal,
    export_requests,
    import_goal,
    mapping,
    member,
    source,
    wait_for,
)

from bctui.engine.runs.events import RunStarted
from bctui.sandbox import S3Server, Sandbox, SimulatorSettings

pytestmark = pytest.mark.slow

LINKED: dict[str, Any] = {"name": "linked", "match": "all",
                          "rules": [{"property": "ext", "op": "exists"}]}
KILLED = -9


def settings() -> SimulatorSettings:
    """Six export files; /users/track slow enough that an export spans several checkpoints."""
    return SimulatorSettings(export_delay_seconds=0.05, export_file_interval=0.1,
                             export_file_users=10, latency_ms=200.0)


def prepare(root: Path, box: Sandbox) -> Workspace:
    """The same Braze users, profiles and goals for every run compared here."""
    braze_track(box, [{"external_id": f"b{i:03d}", "first_name": f"F{i}", "pts": i,
                       "tags": [f"t{i % 4}", "all"]} for i in range(60)])
    goals = [
        import_goal(braze_segment_id(box, "All Users"), allow_create=True, mappings=[
            mapping("first_name", "first", "set"),
            mapping("custom_attributes.pts", "points", "sum"),
            mapping("custom_attributes.tags", "tags", "add"),
        ]),
        export_goal(segment="linked", allow_create=True, mappings=[
            source("property", "bc_points", "points"),
            source("property", "bc_tags", "tags"),
            source("property", "bc_first", "first"),
            source("permission_level", "bc_permission"),
            source("property", "email", "mail"),
        ]),
    ]
    ws = Workspace.create(root, box, goals, [LINKED])
    ws.load(member(f"p{i:03d}", ext=f"b{i:03d}" if i < 40 else f"s{i:03d}", points=i,
                   tags=["local"], level="DO_NOT_TRACK" if i % 10 == 9 else "PERSONAL")
            for i in range(450))
    # Two profiles Braze rejects (their e-mail addresses are not valid), in batches 1 and 5.
    ws.load([{"_id": "p010", "mail": "not an e-mail"}, {"_id": "p400", "mail": "also@not@valid"}])
    return ws


@dataclass(frozen=True)
class Outcome:
    """Everything a run leaves behind that must not depend on how often it was interrupted."""

    store: dict[Any, dict[str, list[Any]]]
    braze: dict[str, dict[str, Any]]
    watermark_is_max_seq: bool
    failures: dict[str, tuple[str, int]]
    import_jobs: int

    @classmethod
    def of(cls, ws: Workspace) -> Outcome:
        """Read both sides."""
        return cls(ws.properties_by("ext"), braze_users(ws.sandbox),
                   ws.watermark() == ws.max_seq(), ws.failure_attempts(),
                   ws.engine_rows("import_job"))


@dataclass(frozen=True)
class Reference:
    """One uninterrupted run and how long it took."""

    outcome: Outcome
    seconds: float


@pytest.fixture(scope="module")
def reference(moto_server: S3Server,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reference]:
    """The outcome of one uninterrupted run on a fresh sandbox."""
    box = Sandbox(users=0, settings=settings(), s3=moto_server).start()
    try:
        ws = prepare(tmp_path_factory.mktemp("reference"), box)
        result = ws.run(concurrency=1)
        assert result.state == "FINISHED", result.error
        outcome = Outcome.of(ws)
        assert outcome.watermark_is_max_seq
        assert {p: attempts for p, (_, attempts) in outcome.failures.items()} == {
            "p010": 1, "p400": 1}
        assert outcome.store["b005"]["points"] == [10]  # 5 locally + 5 from Braze
        assert outcome.store["b045"] == {"ext": ["b045"], "first": ["F45"], "points": [45],
                                         "tags": ["t1", "all"]}
        yield Reference(outcome, result.summary["seconds"])
    finally:
        box.stop()


@pytest.fixture
def world(tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> Workspace:
    """A fresh sandbox and state directory set up like the reference's."""
    return prepare(tmp_path, make_sandbox(users=0, settings=settings()))


def run_cli(ws: Workspace, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """`bctui run c --json --concurrency 1`, optionally dying at a crash point."""
    env = {"BCTUI_CRASH_AT": crash_at} if crash_at else None
    return ws.cli("run", "c", "--json", "--concurrency", "1", env=env)


def resume_and_compare(ws: Workspace, reference: Reference, killed_run: str) -> dict[str, Any]:
    """Run again; the interrupted run is resumed and ends like the reference."""
    again = run_cli(ws)
    assert again.returncode == 0, again.stderr
    summary: dict[str, Any] = orjson.loads(again.stdout)
    assert summary["id"] == killed_run and summary["state"] == "FINISHED"
    started = [e for e in ws.events(killed_run) if isinstance(e, RunStarted)]
    assert started[-1].resumed and not any(e.resumed for e in started[:-1])
    assert Outcome.of(ws) == reference.outcome
    assert ws.lock_holder() is None
    return summary


@pytest.mark.parametrize("point", [
    "import.answered",           # Braze accepted the export; its answer was never recorded
    "import.requested",          # the export was asked for; no file is applied yet
    "import.before_commit:3",    # file 3 merged but not committed
    "import.file_applied:2",     # two files committed
    "import.completed",          # every file applied, the goal not yet marked done
    "export.batch_settled:2",    # two batches delivered, none checkpointed
    "export.checkpoint:1",       # the first checkpoint committed mid-export
    "export.completed",          # the export's last checkpoint committed
])
def test_killed_at_a_crash_point_then_resumed(point: str, world: Workspace,
                                              reference: Reference) -> None:
    crashed = run_cli(world, crash_at=point)

    assert crashed.returncode == KILLED, crashed.stderr
    assert world.lock_holder() is None  # the kernel let go of the lock with the process
    killed = world.runs()[0]
    assert killed.state == "RUNNING"

    resume_and_compare(world, reference, killed.id)

    # The import was never requested twice: a resumed import continues Braze's export, and a
    # finished one is not repeated (so its sums are applied exactly once). Only an export whose
    # answer was lost must be asked for again, once Braze has finished the lost one.
    assert export_requests(world.sandbox) == (2 if point == "import.answered" else 1)
    log = "\n".join(str(e) for e in world.events(killed.id))
    if point.startswith("export."):
        assert "finished before the interruption; not repeated" in log
    if point == "export.completed":
        assert "resuming the export" not in log


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_at_a_random_time_then_resumed(seed: int, world: Workspace,
                                              reference: Reference) -> None:
    delay = random.Random(seed).uniform(0.05, 0.9 * reference.seconds)
    process = world.start_cli("run", "c", "--json", "--concurrency", "1")
    try:
        wait_for(world.lock_holder, timeout=30, what="the run to take its lock")
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.kill()
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == KILLED, f"the run ended by itself before {delay:.2f} s"
    runs = world.runs()
    if runs and runs[0].state == "RUNNING":
        resume_and_compare(world, reference, runs[0].id)
        return
    if runs:  # killed after the run had recorded its end: nothing to resume
        assert runs[0].state == "FINISHED"
    else:  # killed before the run was recorded: the next run is a first run
        assert run_cli(world).returncode == 0
    assert Outcome.of(world) == reference.outcome


def test_a_different_run_asked_for_after_a_crash_follows_the_resumed_one(
        world: Workspace, reference: Reference) -> None:
    crashed = run_cli(world, crash_at="import.file_applied:1")
    assert crashed.returncode == KILLED, crashed.stderr
    killed = world.runs()[0]
    export_name = next(name for name in killed.goals if name != killed.goals[0])

    asked = world.cli("run", "c", "--goal", export_name, "--json", "--concurrency", "1")

    assert asked.returncode == 0, asked.stderr
    summary = orjson.loads(asked.stdout)
    assert summary["id"] != killed.id and list(summary["goals"]) == [export_name]
    runs = world.runs()
    assert [r.id for r in runs[1:]] == [killed.id] and runs[1].state == "FINISHED"
    outcome = Outcome.of(world)
    # Two runs: the second retried the two profiles Braze rejects, once more each.
    assert {p: a for p, (_, a) in outcome.failures.items()} == {"p010": 2, "p400": 2}
    assert dataclasses.replace(outcome, failures=reference.outcome.failures) == reference.outcome
    log = "\n".join(str(e) for e in world.events(killed.id))
    assert "starts when the interrupted one has finished" in log
