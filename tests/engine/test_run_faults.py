"""An export through injected 429s, 500s and dropped connections still delivers every profile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from run_helpers import Workspace, export_goal, fast_settings, member, source

from bctui.engine.runs.events import Event, RateLimitWait
from bctui.sandbox import Sandbox

PROFILES = 50_000
# On PostgreSQL a tenth: the faults are the sender's to handle, the store only records the result.
PG_PROFILES = 5_000


@pytest.mark.slow
def test_fifty_thousand_profiles_through_ten_percent_of_each_fault(
        tmp_path: Path, make_sandbox: Callable[..., Sandbox], store_backend: str) -> None:
    profiles = PROFILES if store_backend == "sqlite" else PG_PROFILES
    # A one-second rate-limit window keeps each injected 429's pause (until the window resets)
    # short; the faults themselves are Braze's: 10% 429s, 10% 500s, 10% dropped connections.
    box = make_sandbox(users=0, settings=fast_settings(
        fault_429=0.1, fault_500=0.1, fault_drop=0.1, track_rate_limit=(1000, 1.0)))
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=[
        source("property", "bc_n", "n"), source("profile_id", "bc_profile_id")])])
    ws.load(member(f"p{i:05d}", ext=f"e{i:05d}", n=i) for i in range(profiles))
    waits: list[Event] = []

    result = ws.run(concurrency=192, listener=lambda e: waits.append(e)
                    if isinstance(e, RateLimitWait) else None)

    assert result.state == "FINISHED", result.error
    goal = result.summary["goals"]["export"]
    assert (goal["checked"], goal["created"], goal["failed"]) == (profiles, profiles, 0)
    stats = box.sim.stats
    assert all(stats["faults"][kind] > 0 for kind in ("429", "500", "drop")), stats["faults"]
    assert waits, "the faults were retried without a single reported wait"
    assert stats["users"] == profiles
    delivered = {u["external_id"]: u["custom_attributes"] for u in box.sim.users}
    assert all(delivered[f"e{i:05d}"] == {"bc_n": i, "bc_profile_id": f"p{i:05d}"}
               for i in range(profiles))
    # Failed attempts were never processed, so Braze billed exactly what the run reports.
    assert stats["data_points"] == goal["data_points"] == 2 * profiles
    assert ws.watermark() == ws.max_seq()
    assert ws.failures() == {}
