"""`bctui run`, `bctui runs`, `bctui watch` as processes: the JSON summary, the run log, the lock,
cancelling with SIGINT/SIGTERM, and stale locks of killed runs."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

# The run tests' helpers (config builder, workspace, polling) live beside them in tests/engine.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from run_helpers import (
    Workspace,
    braze_segment_id,
    braze_track,
    export_goal,
    fast_settings,
    finish,
    import_goal,
    kill,
    mapping,
    member,
    source,
    wait_for,
)

from bctui.engine.runs.lock import RunLock
from bctui.engine.runs.runner import log_path
from bctui.errors import ExitCode
from bctui.sandbox import Sandbox, SimulatorSettings

pytestmark = pytest.mark.slow

COUNTS = ("checked", "created", "updated", "unchanged", "skipped", "failed", "data_points")
LINKED: dict[str, Any] = {"name": "linked", "match": "all",
                          "rules": [{"property": "ext", "op": "exists"}]}


def two_goals(box: Sandbox) -> list[dict[str, Any]]:
    """An import of every Braze user, then an export of every profile that has an external id."""
    return [
        import_goal(braze_segment_id(box, "All Users"),
                    mappings=[mapping("custom_attributes.pts", "points", "sum")]),
        export_goal(segment="linked", mappings=[source("property", "bc_points", "points")]),
    ]


def workspace(root: Path, box: Sandbox) -> Workspace:
    """Three Braze users, two local profiles, the two goals."""
    braze_track(box, [{"external_id": f"u{i}", "pts": i + 1} for i in range(3)])
    ws = Workspace.create(root, box, two_goals(box), [LINKED])
    ws.load([member("p0", ext="u0", points=10), member("p9", ext="u9", points=9)])
    return ws


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` parsed as one JSON object."""
    return [orjson.loads(line) for line in text.splitlines()]


def test_json_summary_history_and_log(tmp_path: Path,
                                      make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=fast_settings())
    ws = workspace(tmp_path, box)

    proc = ws.cli("run", "c", "--json")

    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    assert summary["state"] == "FINISHED" and summary["id"]
    assert list(summary["goals"]) == ["import", "export"]
    for goal in summary["goals"].values():
        assert goal["state"] == "FINISHED"
        assert all(isinstance(goal[k], int) for k in COUNTS)
    assert {k: summary["goals"]["import"][k] for k in COUNTS} == {
        "checked": 3, "created": 2, "updated": 1, "unchanged": 0, "skipped": 0, "failed": 0,
        "data_points": 0}
    assert {k: summary["goals"]["export"][k] for k in COUNTS} == {
        "checked": 4, "created": 4, "updated": 0, "unchanged": 0, "skipped": 0, "failed": 0,
        "data_points": 4}
    assert summary["data_points"] == 4
    run_id = summary["id"]
    assert f"run {run_id} of \"c\" started" in proc.stderr  # progress goes to stderr

    # The run log: JSON lines from run_started to run_finished, whose summary is the same.
    log = log_path(ws.paths, run_id).read_text()
    events = json_lines(log)
    assert events[0]["type"] == "run_started" and events[-1]["type"] == "run_finished"
    assert events[-1]["summary"] == summary
    assert {e["type"] for e in events} >= {"phase", "log", "goal_finished", "batch"}

    history = ws.cli("runs", "--json")
    assert history.returncode == 0, history.stderr
    (record,) = json_lines(history.stdout)
    assert (record["id"], record["state"], record["summary"]) == (run_id, "FINISHED", summary)
    assert record["started_by"] == "cli"

    table = ws.cli("runs", "c")
    assert run_id in table.stdout and "FINISHED" in table.stdout
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[3] == "BY" and row.split()[3] == "cli"

    shown = ws.cli("runs", "show", run_id[:12])
    assert shown.returncode == 0, shown.stderr
    assert f"run {run_id} FINISHED" in shown.stdout
    assert "[import] export complete" in shown.stdout
    assert "[export] FINISHED in" in shown.stdout  # each goal's result, read back from the log
    raw = ws.cli("runs", "show", run_id, "--json")
    assert raw.stdout == log

    # Watching a run that has ended prints its log and its outcome at once.
    watched = ws.cli("watch", "c")
    assert watched.returncode == 0, watched.stderr
    assert f"run {run_id} FINISHED" in watched.stderr


def test_a_second_run_is_refused_and_sigterm_cancels(tmp_path: Path,
                                                     make_sandbox: Callable[..., Sandbox]) -> None:
    # Braze takes a minute to write the export: the run waits for it.
    box = make_sandbox(users=0, settings=SimulatorSettings(export_delay_seconds=60))
    ws = workspace(tmp_path, box)
    first = ws.start_cli("run", "c", "--json")
    try:
        holder = wait_for(ws.lock_holder, timeout=30, what="the first run's lock")
        wait_for(lambda: ws.log_kinds(holder.run_id).count("phase") >= 2,
                 what="the import to wait for Braze's files")
        watcher = ws.start_cli("watch", holder.run_id)

        second = ws.cli("run", "c")

        assert second.returncode == 5
        assert f"PID {first.pid}, run {holder.run_id}" in second.stderr
        assert f"bctui watch {holder.run_id}" in second.stderr
        live = json_lines(ws.cli("runs", "--json").stdout)
        assert [(r["id"], r["state"]) for r in live] == [(holder.run_id, "RUNNING")]

        kill(first, signal.SIGTERM)
        code, out, err = finish(first)
    finally:
        kill(first)
    assert code == 130, err
    assert orjson.loads(out)["state"] == "CANCELLED"
    assert ws.runs()[0].state == "CANCELLED"
    assert ws.log_kinds(holder.run_id)[-1] == "run_finished"
    assert ws.lock_holder() is None
    # The watcher followed the run to its end and exits with the run's outcome.
    watch_code, _, watch_err = finish(watcher)
    assert watch_code == 130, watch_err
    assert f"run {holder.run_id} CANCELLED" in watch_err


def test_sigint_mid_export_cancels_and_the_next_run_delivers_the_rest(
        tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=fast_settings(latency_ms=150.0))
    ws = Workspace.create(tmp_path, box, [
        export_goal(mappings=[source("property", "bc_n", "n")])])
    ws.load(member(f"p{i:04d}", ext=f"e{i:04d}", n=i) for i in range(1500))
    process = ws.start_cli("run", "c", "--concurrency", "1")
    try:
        holder = wait_for(ws.lock_holder, timeout=30, what="the run's lock")
        wait_for(lambda: ws.log_kinds(holder.run_id).count("batch") >= 2,
                 what="two delivered batches")
        kill(process, signal.SIGINT)
        code, _, err = finish(process)
    finally:
        kill(process)

    assert code == 130, err
    assert ws.runs()[0].state == "CANCELLED"
    delivered = box.sim.stats["users"]
    assert 150 <= delivered < 1500
    assert 0 < ws.watermark() < ws.max_seq()

    again = ws.cli("run", "c", "--json")

    assert again.returncode == 0, again.stderr
    summary = orjson.loads(again.stdout)
    assert summary["id"] != holder.run_id  # a cancelled run is over; this is a new one
    assert box.sim.stats["users"] == 1500
    assert all(box.sim.user(external_id=f"e{i:04d}") for i in range(1500))
    assert ws.watermark() == ws.max_seq()


def test_a_stale_lock_of_a_killed_run_is_cleared(tmp_path: Path,
                                                 make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=fast_settings())
    ws = workspace(tmp_path, box)

    crashed = ws.cli("run", "c", env={"BCTUI_CRASH_AT": "import.requested"})

    assert crashed.returncode == -9
    killed = ws.runs()[0]
    assert ws.lock_holder() is None
    # The lock file still names the killed run: the kernel freed the lock, not the record.
    record = orjson.loads(RunLock(ws.paths.locks_dir, "c").path.read_bytes())
    assert (record["pid"], record["run_id"]) == (killed.pid, killed.id)

    again = ws.cli("run", "c", "--json")

    assert again.returncode == 0, again.stderr
    assert orjson.loads(again.stdout)["id"] == killed.id
    assert f"cleared a stale lock left by PID {killed.pid} (run {killed.id})" in again.stderr


def test_watch_follows_a_run_until_it_ends(tmp_path: Path,
                                           make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(export_delay_seconds=1.0,
                                                           export_file_interval=0.05))
    ws = workspace(tmp_path, box)
    run = ws.start_cli("run", "c")
    try:
        holder = wait_for(ws.lock_holder, timeout=30, what="the run's lock")
        wait_for(lambda: ws.log_kinds(holder.run_id), what="the run's log")
        watcher = ws.start_cli("watch", holder.run_id)
        watch_code, _, watch_err = finish(watcher)
        run_code, _, run_err = finish(run)
    finally:
        kill(run)

    assert run_code == 0, run_err
    assert watch_code == 0, watch_err
    # The watcher saw the run from its start, through both goals, to its end.
    for text in (f'run {holder.run_id} of "c" started', "[import] merging",
                 "[import] FINISHED in", "[export] sending", "[export] FINISHED in",
                 f"run {holder.run_id} FINISHED"):
        assert text in watch_err
    assert watch_err.index("[import] merging") < watch_err.index(f"run {holder.run_id} FINISHED")


def test_a_budget_refusal_exits_7_and_runs_lists_data_points(
        tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=fast_settings())
    goal = export_goal(segment="linked", mappings=[source("property", "bc_points", "points")])
    ws = Workspace.create(tmp_path, box, [{**goal, "max_data_points": 1}], [LINKED])
    ws.load([member("p0", ext="u0", points=1), member("p1", ext="u1", points=2)])

    refused = ws.cli("run", "c", "--json")

    assert refused.returncode == ExitCode.BUDGET == 7, refused.stderr
    summary = orjson.loads(refused.stdout)
    assert summary["state"] == "FAILED" and summary["goals"]["export"]["data_points"] == 0
    assert "~2 data points, over the budget of 1" in summary["error"]
    assert box.sim.user_count == 0
    ws.write_config([{**goal, "max_data_points": 2}], [LINKED])
    assert ws.cli("run", "c").returncode == 0
    listing = ws.cli("runs", "--json")
    assert [orjson.loads(line)["data_points"] for line in listing.stdout.splitlines()] == [2, 0]
    table = ws.cli("runs").stdout.splitlines()
    assert "DATA POINTS" in table[0] and table[1].split()[-1] == "2"
    assert "7    a run refused an export goal" in ws.cli("--help").stdout
