"""Several hosts on one PostgreSQL store (two state directories stand for two hosts): one run
per connection at a time across them, a vanished host's lease taken over, concurrent imports
of different connections losing no `sum`, and a run followed live from the other host."""

from __future__ import annotations

import subprocess
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w
from run_helpers import (
    Workspace,
    braze_segment_id,
    braze_track,
    finish,
    import_goal,
    mapping,
    wait_for,
)

from bctui.engine.runs import shared
from bctui.engine.runs.lock import LockedError, run_lock
from bctui.sandbox import Sandbox, SimulatorSettings

LOCKED = 5
KILLED = -9


def slow_import(box: Sandbox, users: int = 60) -> list[dict[str, Any]]:
    """Braze users with points, and an import goal summing them (several files, spaced out)."""
    braze_track(box, [{"external_id": f"b{i:03d}", "pts": i + 1} for i in range(users)])
    return [import_goal(braze_segment_id(box, "All Users"), allow_create=True, mappings=[
        mapping("custom_attributes.pts", "points", "sum"),
    ])]


def two_hosts(tmp_path: Path, box: Sandbox) -> tuple[Workspace, Workspace]:
    """Two state directories on one PostgreSQL store, with the same config."""
    goals = slow_import(box)
    first = Workspace.create(tmp_path / "host-a", box, goals)
    second = Workspace.create(tmp_path / "host-b", box, goals, store_url=first.shared_store)
    assert first.postgres
    return first, second


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """Exports of ten files, one every 0.3 s: a run lasts a few seconds."""
    return make_sandbox(users=0, settings=SimulatorSettings(
        export_delay_seconds=0.05, export_file_interval=0.3, export_file_users=6))


def holder_run(ws: Workspace) -> str | None:
    """The run id the store's lease names for connection c, if any."""
    holder = ws.lock_holder()
    return holder.run_id if holder is not None and holder.run_id else None


def test_one_run_across_two_hosts_the_other_exits_locked(tmp_path: Path, box: Sandbox) -> None:
    a, b = two_hosts(tmp_path, box)
    running = a.start_cli("run", "c", "--json", env={shared.HOST_ENV: "host-a"})
    run_id = wait_for(lambda: holder_run(b), what="host-a's run to take the lease")
    refused = b.cli("run", "c", "--json", env={shared.HOST_ENV: "host-b"})
    code, out, err = finish(running)
    assert refused.returncode == LOCKED, refused.stderr
    assert f"host host-a, PID {running.pid}, run {run_id}" in refused.stderr
    assert code == 0, err
    assert orjson.loads(out)["id"] == run_id
    points = sorted(p["points"][0] for p in a.properties_by("points").values())
    assert points == list(range(1, 61))  # applied once, by the one run
    assert holder_run(a) is None


def test_the_lease_of_a_killed_host_is_taken_over_once_it_expires(
    tmp_path: Path, box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two_hosts(tmp_path, box)
    lease = {shared.LEASE_ENV: "3"}
    crashed = a.cli("run", "c", "--json", env={
        **lease, shared.HOST_ENV: "host-a", "BCTUI_CRASH_AT": "import.file_applied:2"})
    assert crashed.returncode == KILLED, crashed.stderr
    # host-b sees a live lease (it cannot look at host-a's processes): refused, for now.
    monkeypatch.setenv(shared.HOST_ENV, "host-b")
    with b.store() as store, pytest.raises(LockedError) as refused:
        run_lock(b.paths.locks_dir, "c", store).acquire("probe")
    assert refused.value.holder is not None and refused.value.holder.host == "host-a"
    killed_run = refused.value.holder.run_id
    started = time.monotonic()

    def taken_over() -> subprocess.CompletedProcess[str] | None:
        done = b.cli("run", "c", "--json", env={**lease, shared.HOST_ENV: "host-b"})
        return None if done.returncode == LOCKED else done

    again = wait_for(taken_over, timeout=30, what="the expired lease taken over")
    assert again.returncode == 0, again.stderr
    assert time.monotonic() - started < 15  # a lease of 3 s: not when TCP would give up
    assert orjson.loads(again.stdout)["id"] == killed_run  # resumed, not started afresh
    assert "cleared a stale lock left by host host-a" in " ".join(
        str(getattr(e, "message", "")) for e in b.store_events(killed_run))
    points = sorted(p["points"][0] for p in b.properties_by("points").values())
    assert points == list(range(1, 61))  # every file applied exactly once across both hosts


def test_two_connections_summing_into_the_same_profiles_lose_no_update(
    tmp_path: Path, box: Sandbox
) -> None:
    a, _ = two_hosts(tmp_path, box)
    document = tomllib.loads(a.paths.config.read_text())
    other = dict(document["connection"][0], name="c2")
    document["connection"].append(other)
    a.paths.config.write_text(tomli_w.dumps(document))
    first = a.start_cli("run", "c", "--json")
    second = a.start_cli("run", "c2", "--json")
    for process in (first, second):
        code, _, err = finish(process)
        assert code == 0, err
    points = sorted(p["points"][0] for p in a.properties_by("points").values())
    assert points == [2 * (i + 1) for i in range(60)]


def test_a_run_on_one_host_is_followed_live_from_the_other(tmp_path: Path, box: Sandbox) -> None:
    a, b = two_hosts(tmp_path, box)
    running = a.start_cli("run", "c", "--json", env={shared.HOST_ENV: "host-a"})
    run_id = wait_for(lambda: holder_run(b), what="host-a's run to take the lease")
    watch = b.start_cli("watch", run_id, env={shared.HOST_ENV: "host-b"})
    code, _, err = finish(running)
    assert code == 0, err
    watched, _, shown = finish(watch)
    assert watched == 0, shown
    assert "merging" in shown or "applied" in shown, shown
    assert not (b.paths.runs_dir / f"{run_id}.jsonl").exists()  # it came from the database
    listed = b.cli("runs", "--json")
    assert orjson.loads(listed.stdout.splitlines()[0])["state"] == "FINISHED"


def test_runs_shows_another_hosts_live_run_as_running(tmp_path: Path, box: Sandbox) -> None:
    a, b = two_hosts(tmp_path, box)
    running = a.start_cli("run", "c", "--json", env={shared.HOST_ENV: "host-a"})
    try:
        run_id = wait_for(lambda: holder_run(b), what="host-a's run to take the lease")
        listed = b.cli("runs", "--json", env={shared.HOST_ENV: "host-b"})
        row = orjson.loads(listed.stdout.splitlines()[0])
        assert (row["id"], row["state"]) == (run_id, "RUNNING")
        shown = b.cli("runs", "show", run_id, "--json")
        assert shown.returncode == 0 and "run_started" in shown.stdout
    finally:
        code, _, err = finish(running)
    assert code == 0, err


