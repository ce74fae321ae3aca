"""Data-point budgets (`max_data_points`, `on_budget`) of export goals and connections, against
the Braze simulator: refusing sends nothing, partial sends at most the budget and the next run
the rest, a connection's budget is shared in goal order, and a crash mid-way stays exact.

Tests marked with the `passes` fixture run twice: with the batches that fit held by the first
pass (one pass), and with a hold of 1 byte, so that a second pass plans them again to send them
(two passes): the same deliveries, watermarks and counts either way."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
import tomli_w
from run_helpers import (
    Workspace,
    export_goal,
    fast_settings,
    member,
    source,
)

from bctui.engine.runs.budget import HOLD_ENV, refused_only
from bctui.engine.runs.events import Event, LogLine, PhaseChanged
from bctui.sandbox import Sandbox, SimulatorSettings

TWO = [source("property", "bc_a", "a"), source("property", "bc_b", "b")]  # 2 data points each


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An empty simulated workspace."""
    return make_sandbox(users=0, settings=fast_settings())


TWO_PASSES = "planning it again to send it"  # what the log says when a second pass sends


@pytest.fixture(params=["one pass", "two passes"])
def passes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs in this process plan a budget in one pass, or (a hold of 1 byte) in two."""
    if request.param == "two passes":
        monkeypatch.setenv(HOLD_ENV, "1")
    else:
        monkeypatch.delenv(HOLD_ENV, raising=False)
    return str(request.param)


def second_passes(ws: Workspace, run_id: str) -> int:
    """How many goals of a run planned a second pass to send."""
    return sum(1 for e in ws.events(run_id)
               if isinstance(e, LogLine) and TWO_PASSES in e.message)


def profiles(count: int, start: int = 0, **extra: Any) -> list[dict[str, Any]]:
    """`count` profiles with two mapped properties each, in change order p000, p001, …"""
    return [member(f"p{i:03d}", ext=f"u{i:03d}", a=f"a{i}", b=i, **extra)
            for i in range(start, start + count)]


def budget_goal(limit: int | None = None, on_budget: str | None = None,
                **changes: Any) -> dict[str, Any]:
    """An export goal of TWO with an optional budget."""
    goal = export_goal(mappings=changes.pop("mappings", TWO), **changes)
    if limit is not None:
        goal["max_data_points"] = limit
    if on_budget is not None:
        goal["on_budget"] = on_budget
    return goal


def set_connection(ws: Workspace, **keys: Any) -> None:
    """Add keys to the connection table of the workspace's config."""
    document = tomllib.loads(ws.paths.config.read_text(encoding="utf-8"))
    document["connection"][0].update(keys)
    ws.paths.config.write_text(tomli_w.dumps(document), encoding="utf-8")


def points_by_user(box: Sandbox) -> dict[str, int]:
    """The data points the simulator billed to each user, by external id."""
    return {u["external_id"]: u["data_points"] for u in box.sim.users if u.get("external_id")}


def ids(first: int, last: int) -> set[str]:
    """External ids u<first> … u<last - 1>."""
    return {f"u{i:03d}" for i in range(first, last)}


def goal_of(summary: Mapping[str, Any], name: str = "export") -> dict[str, Any]:
    """One goal of a run summary."""
    goal: dict[str, Any] = summary["goals"][name]
    return goal


def warnings(ws: Workspace, run_id: str) -> list[str]:
    """The run log's warning lines."""
    return [e.message for e in ws.events(run_id)
            if isinstance(e, LogLine) and e.level == "warning"]


@pytest.mark.usefixtures("passes")
def test_refuse_sends_nothing_and_keeps_the_watermark(tmp_path: Path, box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, [budget_goal()])
    ws.load(profiles(10))
    assert ws.run().state == "FINISHED"
    watermark = ws.watermark()
    assert watermark == ws.max_seq()
    ws.load(profiles(20, 10))  # 40 data points more
    ws.write_config([budget_goal(39)])
    box.sim.reset_stats()

    refused = ws.run()

    assert refused.state == "FAILED"
    goal = goal_of(refused.summary)
    assert goal["state"] == "FAILED" and goal["data_points"] == 0
    assert "~40 data points, over the budget of 39" in goal["error"]
    assert 'max_data_points = 39' in goal["error"] and 'on_budget = "partial"' in goal["error"]
    assert goal["budget"] == {"max_data_points": 39, "limit": 39,
                              "set_on": 'export goal "export"', "on_budget": "refuse",
                              "estimate": 40, "outcome": "refused", "sent": 0}
    assert refused_only(refused.summary)
    assert box.sim.stats["data_points"] == 0 and box.sim.user_count == 10
    assert ws.watermark() == watermark

    # A dry run says the same, and what it would cost.
    dry = ws.run(dry_run=True)
    assert dry.state == "FAILED" and "nothing would be sent" in goal_of(dry.summary)["error"]
    assert goal_of(dry.summary)["budget"]["estimate"] == 40

    # With the budget raised, the same delta goes, exactly once.
    ws.write_config([budget_goal(40)])
    fits = ws.run()
    assert fits.state == "FINISHED", fits.error
    assert goal_of(fits.summary)["data_points"] == 40 == box.sim.stats["data_points"]
    assert goal_of(fits.summary)["budget"]["outcome"] == "within"
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 30)), 2)
    assert ws.watermark() == ws.max_seq()


def test_partial_sends_the_budget_then_the_rest(tmp_path: Path, box: Sandbox, passes: str) -> None:
    # 200 profiles of 2 data points, every 7th below the permission minimum (skipped, 0 points):
    # 250 data points fill one whole request and 50 objects of the next.
    ws = Workspace.create(tmp_path, box, [budget_goal(250, "partial", all_attributes=True)])
    records = profiles(200)
    for record in records[::7]:
        record["_permission_level"] = "DO_NOT_TRACK"
    ws.load(records)
    sendable = [r["ext"] for r in records if r["_permission_level"] != "DO_NOT_TRACK"]
    assert len(sendable) == 171

    dry = ws.run(dry_run=True)
    assert goal_of(dry.summary)["data_points"] == 250
    assert goal_of(dry.summary)["budget"]["estimate"] == 342
    assert any(w.startswith("budget reached: would send 250 of ~342 data points")
               for w in warnings(ws, dry.run_id))
    assert box.sim.user_count == 0

    first = ws.run()

    assert first.state == "FINISHED", first.error
    assert second_passes(ws, first.run_id) == (passes == "two passes")
    assert goal_of(first.summary)["data_points"] == 250 == box.sim.stats["data_points"]
    assert goal_of(first.summary)["checked"] == 200  # the second pass does not count twice
    assert goal_of(first.summary)["budget"]["outcome"] == "partial"
    assert any(w.startswith("budget reached: sent 250 of ~342 data points; the rest goes next "
                            "run") for w in warnings(ws, first.run_id))
    assert points_by_user(box) == dict.fromkeys(sendable[:125], 2)
    with ws.store() as store:
        first_left = store.query("SELECT seq FROM profile WHERE id = ?",
                                 (f"p{int(sendable[125][1:]):03d}",)).fetchone()[0]
    assert ws.watermark() == first_left - 1

    second = ws.run()

    assert second.state == "FINISHED", second.error
    assert goal_of(second.summary)["data_points"] == 92
    assert goal_of(second.summary)["budget"]["outcome"] == "within"
    # Every profile of the segment delivered, none twice (all_attributes would resend it).
    assert points_by_user(box) == dict.fromkeys(sendable, 2)
    assert ws.watermark() == ws.max_seq()
    third = ws.run()
    assert goal_of(third.summary)["data_points"] == 0 and box.sim.stats["data_points"] == 342


def test_a_budget_smaller_than_one_profile_sends_nothing_and_waits(tmp_path: Path,
                                                                   box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, [budget_goal(1, "partial")])
    ws.load(profiles(3))

    result = ws.run()

    assert result.state == "FINISHED", result.error
    assert goal_of(result.summary)["data_points"] == 0 and box.sim.user_count == 0
    assert ws.watermark() < ws.max_seq()
    ws.write_config([budget_goal(6, "partial")])
    assert goal_of(ws.run().summary)["data_points"] == 6
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 3)), 2)


@pytest.mark.usefixtures("passes")
def test_a_cut_at_a_retried_profile_leaves_the_retries_and_the_delta(tmp_path: Path,
                                                                      box: Sandbox) -> None:
    mail = [*TWO, source("property", "email", "mail")]
    ws = Workspace.create(tmp_path, box, [budget_goal(mappings=mail)])
    records = profiles(4)
    records[2]["mail"] = "not an e-mail"  # Braze rejects p002
    ws.load(records)
    assert goal_of(ws.run().summary)["failed"] == 1
    watermark = ws.watermark()
    assert set(ws.failures()) == {"p002"}
    ws.load([{"_id": "p002", "mail": "dee@example.com"}, *profiles(2, 4)])
    ws.write_config([budget_goal(2, "partial", mappings=mail)])

    cut = ws.run()  # the retry of p002 comes first and costs 3: nothing fits

    assert goal_of(cut.summary)["data_points"] == 0 and box.sim.user_count == 3
    assert ws.watermark() == watermark and set(ws.failures()) == {"p002"}
    ws.write_config([budget_goal(7, "partial", mappings=mail)])
    assert goal_of(ws.run().summary)["data_points"] == 7
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 6)), 2) | {"u002": 3}
    assert ws.watermark() == ws.max_seq() and not ws.failures()


def two_goals(**budget: Any) -> list[dict[str, Any]]:
    """Goal "first" sends 2 data points per profile, goal "second" 1, to other attributes."""
    return [budget_goal(name="first", **budget),
            budget_goal(name="second", mappings=[source("property", "bc_c", "a")])]


@pytest.mark.usefixtures("passes")
def test_a_connection_budget_is_shared_in_goal_order(tmp_path: Path, box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, two_goals())
    set_connection(ws, max_data_points=25, on_budget="partial")
    ws.load(profiles(10))

    first = ws.run()

    assert first.state == "FINISHED", first.error
    assert goal_of(first.summary, "first")["data_points"] == 20
    assert goal_of(first.summary, "first")["budget"]["outcome"] == "within"
    second = goal_of(first.summary, "second")
    assert second["data_points"] == 5 and second["budget"]["outcome"] == "partial"
    assert second["budget"]["limit"] == 5 and second["budget"]["set_on"] == 'connection "c"'
    assert first.summary["data_points"] == 25 == box.sim.stats["data_points"]

    rest = ws.run()

    assert goal_of(rest.summary, "first")["data_points"] == 0
    assert goal_of(rest.summary, "second")["data_points"] == 5
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 10)), 3)
    assert ws.watermark("first") == ws.watermark("second") == ws.max_seq()


def test_a_connection_budget_refuses_the_goal_that_does_not_fit(tmp_path: Path,
                                                                box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, two_goals())
    set_connection(ws, max_data_points=25)
    ws.load(profiles(10))

    result = ws.run()

    assert result.state == "FAILED"
    assert goal_of(result.summary, "first")["state"] == "FINISHED"
    second = goal_of(result.summary, "second")
    assert second["state"] == "FAILED" and second["data_points"] == 0
    assert "less 20 spent by earlier goals of this run" in second["error"]
    assert refused_only(result.summary)
    assert box.sim.stats["data_points"] == 20
    assert ws.watermark("second") == 0


@pytest.mark.usefixtures("passes")
def test_the_tighter_of_goal_and_connection_budget_binds(tmp_path: Path, box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, two_goals(limit=8, on_budget="partial"))
    set_connection(ws, max_data_points=100)
    ws.load(profiles(10))

    result = ws.run()

    first = goal_of(result.summary, "first")
    assert first["data_points"] == 8 and first["budget"]["set_on"] == 'export goal "first"'
    assert goal_of(result.summary, "second")["budget"]["limit"] == 92
    assert goal_of(result.summary, "second")["data_points"] == 10


def crashing_settings() -> SimulatorSettings:
    """Slow enough requests that a run is killed between two of them."""
    return fast_settings(latency_ms=100.0)


def run_cli(ws: Workspace, crash_at: str | None = None,
            hold: str | None = None) -> tuple[int, dict[str, Any]]:
    """`bctui run c --json --concurrency 1`; its exit code and summary (empty when killed);
    `hold`: $BCTUI_BUDGET_HOLD_BYTES."""
    env = {"BCTUI_CRASH_AT": crash_at} if crash_at else {}
    if hold is not None:
        env[HOLD_ENV] = hold
    proc = ws.cli("run", "c", "--json", "--concurrency", "1", env=env)
    return proc.returncode, orjson.loads(proc.stdout) if proc.stdout.strip() else {}


@pytest.mark.parametrize("hold", [None, "1"], ids=["one pass", "two passes"])
def test_a_crash_mid_partial_run_then_reruns_stay_exact(
        tmp_path: Path, make_sandbox: Callable[..., Sandbox], hold: str | None) -> None:
    box = make_sandbox(users=0, settings=crashing_settings())
    ws = Workspace.create(tmp_path, box, [budget_goal(250, "partial")])
    ws.load(profiles(200))

    # Killed once the first request (75 profiles) was answered, before any checkpoint.
    code, _ = run_cli(ws, "export.batch_settled:1", hold)
    assert code == -9
    assert box.sim.user_count == 75
    killed = ws.runs()[0].id

    code, resumed = run_cli(ws, hold=hold)

    assert code == 0 and resumed["id"] == killed and resumed["state"] == "FINISHED"
    assert second_passes(ws, killed) == (2 if hold else 0)  # the killed run's, and its own
    assert goal_of(resumed)["data_points"] == 250
    # The first request's profiles were sent again (the crash lost their record: documented);
    # the budget stopped the resumed run after p124.
    assert points_by_user(box) == {**dict.fromkeys(sorted(ids(0, 75)), 4),
                                   **dict.fromkeys(sorted(ids(75, 125)), 2)}

    code, rest = run_cli(ws, hold=hold)

    assert code == 0 and rest["id"] != killed
    assert goal_of(rest)["data_points"] == 150
    assert points_by_user(box) == {**dict.fromkeys(sorted(ids(0, 75)), 4),
                                   **dict.fromkeys(sorted(ids(75, 200)), 2)}
    assert {u["external_id"]: u["custom_attributes"] for u in box.sim.users} == {
        f"u{i:03d}": {"bc_a": f"a{i}", "bc_b": i} for i in range(200)}
    assert ws.watermark() == ws.max_seq() and not ws.failures()



def change_when_sending(ws: Workspace, records: list[dict[str, Any]]) -> Callable[[Event], None]:
    """A run listener that writes `records` to the store when the goal starts sending: after
    the first pass planned the delta, before the second plans it again."""
    done: list[bool] = []

    def listener(event: Event) -> None:
        if isinstance(event, PhaseChanged) and event.phase == "sending" and not done:
            done.append(True)
            ws.load(records)

    return listener


def test_a_profile_changed_between_the_passes_goes_next_run(tmp_path: Path,
                                                            box: Sandbox) -> None:
    # all_attributes: a profile sent twice would cost its 2 data points twice.
    ws = Workspace.create(tmp_path, box, [budget_goal(250, "partial", all_attributes=True)])
    ws.load(profiles(200))
    upper = ws.max_seq()

    first = ws.run(budget_hold_bytes=1,
                   listener=change_when_sending(ws, [{"_id": "p010", "a": "changed"}]))

    assert first.state == "FINISHED", first.error
    assert second_passes(ws, first.run_id) == 1
    assert ws.max_seq() == upper + 1  # p010 moved past the run's upper change sequence
    # The second pass stops at the budget: p010 left the range, so the 125 profiles that fit
    # are p000-p009 and p011-p125.
    assert goal_of(first.summary)["data_points"] == 250 == box.sim.stats["data_points"]
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 126) - {"u010"}), 2)
    with ws.store() as store:
        p126 = store.query("SELECT seq FROM profile WHERE id = 'p126'").fetchone()[0]
    assert ws.watermark() == p126 - 1

    rest = ws.run(budget_hold_bytes=1)

    assert goal_of(rest.summary)["data_points"] == 150
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 200)), 2)
    assert next(u for u in box.sim.users if u["external_id"] == "u010")[
        "custom_attributes"]["bc_a"] == "changed"
    assert ws.watermark() == ws.max_seq() and not ws.failures()


def test_a_delta_that_fits_in_two_passes_leaves_a_change_since_for_next_run(
        tmp_path: Path, box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, [budget_goal(1000, all_attributes=True)])
    ws.load(profiles(100))
    upper = ws.max_seq()

    first = ws.run(budget_hold_bytes=1,
                   listener=change_when_sending(ws, [{"_id": "p003", "a": "changed"}]))

    assert first.state == "FINISHED", first.error
    assert second_passes(ws, first.run_id) == 1
    assert goal_of(first.summary)["budget"]["outcome"] == "within"
    assert goal_of(first.summary)["data_points"] == 198
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 100) - {"u003"}), 2)
    assert ws.watermark() == upper  # the fixed upper bound: p003's change is past it

    second = ws.run(budget_hold_bytes=1)

    assert goal_of(second.summary)["data_points"] == 2 and goal_of(second.summary)["checked"] == 1
    assert points_by_user(box) == dict.fromkeys(sorted(ids(0, 100)), 2)
    assert ws.watermark() == ws.max_seq()


def test_a_large_hold_takes_one_pass_and_a_small_one_two(tmp_path: Path, box: Sandbox) -> None:
    # 300 profiles of 2 data points in 4 requests: about 30 KB packed.
    ws = Workspace.create(tmp_path, box, [budget_goal(1000)])
    ws.load(profiles(300))
    one = ws.run(dry_run=True, budget_hold_bytes=10**9)
    assert second_passes(ws, one.run_id) == 0  # a dry run never plans twice
    two = ws.run(budget_hold_bytes=10_000)
    assert second_passes(ws, two.run_id) == 1
    assert goal_of(two.summary)["data_points"] == 600 == goal_of(one.summary)["data_points"]
    ws.load([{"_id": f"p{i:03d}", "a": "again"} for i in range(300)])
    held = ws.run(budget_hold_bytes=10**9)
    assert second_passes(ws, held.run_id) == 0
    assert goal_of(held.summary)["data_points"] == 300
    assert box.sim.stats["data_points"] == 900


def test_a_retry_grown_between_the_passes_stops_at_the_budget(tmp_path: Path,
                                                               box: Sandbox) -> None:
    mail = [*TWO, source("property", "email", "mail")]
    ws = Workspace.create(tmp_path, box, [budget_goal(mappings=mail)])
    ws.load([*profiles(2), member("p002", ext="u002", a="a2", mail="not an e-mail")])
    ws.run()
    assert set(ws.failures()) == {"p002"}  # Braze rejected it: retried first next time
    # The retry costs 2 (a, mail) and the delta 4 (p003, p004): 6 fits a budget of 6.
    ws.load([{"_id": "p002", "mail": "dee@example.com"}, *profiles(2, 3)])
    ws.write_config([budget_goal(6, mappings=mail)])
    box.sim.reset_stats()

    # Between the passes p002 gets a value for b: 3 data points, so p004 no longer fits.
    grown = ws.run(budget_hold_bytes=1, listener=change_when_sending(ws, [{"_id": "p002", "b": 2}]))

    assert grown.state == "FINISHED", grown.error
    assert second_passes(ws, grown.run_id) == 1
    assert goal_of(grown.summary)["budget"]["outcome"] == "partial"
    assert any("the delta grew after the estimate" in w for w in warnings(ws, grown.run_id))
    assert goal_of(grown.summary)["data_points"] == 5 == box.sim.stats["data_points"]
    with ws.store() as store:
        p004 = store.query("SELECT seq FROM profile WHERE id = 'p004'").fetchone()[0]
    assert ws.watermark() == p004 - 1 and not ws.failures()

    rest = ws.run()

    assert goal_of(rest.summary)["data_points"] == 2  # p004; p002 went with its b already
    assert box.sim.stats["data_points"] == 7
    assert {u["external_id"]: u["custom_attributes"] for u in box.sim.users} == {
        f"u{i:03d}": {"bc_a": f"a{i}", "bc_b": i} for i in range(5)}
    assert ws.watermark() == ws.max_seq()
