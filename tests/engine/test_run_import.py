"""Import goals end to end: a Braze segment export, written by the simulator into S3 (moto) as gzip
JSON lines, merged into the store."""

from __future__ import annotations

import gzip
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from run_helpers import (
    Workspace,
    braze_segment_id,
    braze_track,
    braze_users,
    export_requests,
    ident,
    import_goal,
    mapping,
    member,
    wait_for,
)

from bctui.engine.runs.events import LogLine
from bctui.engine.runs.runner import RunResult
from bctui.sandbox import Sandbox, SimulatorSettings

STRATEGY_MAPPINGS = [
    mapping("first_name", "first", "set"),
    mapping("custom_attributes.pts", "points", "sum"),
    mapping("custom_attributes.tags", "tags", "add"),
    mapping("custom_attributes.nick", "nickname", "set_if_empty"),
    mapping("custom_attributes.color", "color", "clear"),
    mapping("custom_attributes.gone", "gone", "clear"),
    mapping("custom_attributes.absent", "keep", "set"),
]


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An empty simulated workspace whose exports arrive quickly, three users a file, under a
    folder of the bucket (Braze's "AWS S3 Bucket Folder", the connection's `root`)."""
    return make_sandbox(users=0, root="braze/exports", settings=SimulatorSettings(
        export_delay_seconds=0.05, export_file_interval=0.05, export_file_users=3))


def all_users(box: Sandbox) -> str:
    """The id of the simulator's "All Users" segment."""
    return braze_segment_id(box, "All Users")


def counts(result: RunResult, goal: str = "import") -> dict[str, int]:
    """The six counts of one goal of a run."""
    keys = ("checked", "created", "updated", "unchanged", "skipped", "failed")
    return {k: result.summary["goals"][goal][k] for k in keys}


def props(ws: Workspace, pid: str) -> dict[str, list[Any]]:
    """One profile's properties."""
    found: dict[str, list[Any]] = ws.profiles()[pid]["properties"]
    return found


def test_every_merge_strategy(tmp_path: Path, box: Sandbox) -> None:
    braze_track(box, [
        {"external_id": "u1", "first_name": "Ann", "pts": 10, "tags": ["a", "b"],
         "nick": "Annie", "color": "red"},
        {"external_id": "u2", "first_name": "Bob", "pts": 7, "tags": ["z"], "nick": "Bobby",
         "gone": "g2"},
    ])
    ws = Workspace.create(tmp_path, box, [import_goal(all_users(box), mappings=STRATEGY_MAPPINGS)])
    ws.load([
        member("p1", ext="u1", first="Old", points=5, tags=["b", "c"], nickname="Existing",
               color="blue", gone="stale", keep="k"),
        member("p2", ext="u2", first="B", color="green", gone="x"),
    ])

    result = ws.run()

    assert result.state == "FINISHED", result.error
    assert counts(result) == {"checked": 2, "created": 0, "updated": 2, "unchanged": 0,
                              "skipped": 0, "failed": 0}
    assert props(ws, "p1") == {"member": ["yes"], "ext": ["u1"], "first": ["Ann"],
                               "points": [15], "tags": ["b", "c", "a"],
                               "nickname": ["Existing"], "color": ["red"], "keep": ["k"]}
    # `clear` empties a property when Braze omits the field (Braze leaves out empty fields).
    assert props(ws, "p2") == {"member": ["yes"], "ext": ["u2"], "first": ["Bob"],
                               "points": [7], "tags": ["z"], "nickname": ["Bobby"],
                               "gone": ["g2"]}

    again = ws.run()

    # Each run's export is applied once: sums grow by one application, unions do not repeat.
    assert counts(again)["updated"] == 2
    assert props(ws, "p1")["points"] == [25] and props(ws, "p2")["points"] == [14]
    assert props(ws, "p1")["tags"] == ["b", "c", "a"]
    assert ws.engine_rows("import_job") == 0
    assert ws.engine_rows("import_file") == 2  # one file (two users) per export


def test_allow_create_off_skips_on_creates(tmp_path: Path, box: Sandbox) -> None:
    braze_track(box, [{"external_id": "u1", "first_name": "Ann"},
                      {"external_id": "u9", "first_name": "Nina"}])
    goal = import_goal(all_users(box), mappings=[mapping("first_name", "first")],
                       allow_create=False)
    ws = Workspace.create(tmp_path, box, [goal])
    ws.load([member("p1", ext="u1")])

    off = ws.run()

    assert counts(off) == {"checked": 2, "created": 0, "updated": 1, "unchanged": 0,
                           "skipped": 1, "failed": 0}
    assert set(ws.properties_by("ext")) == {"u1"}

    ws.write_config([{**goal, "allow_create": True}])
    on = ws.run()

    assert counts(on) == {"checked": 2, "created": 1, "updated": 0, "unchanged": 1,
                          "skipped": 0, "failed": 0}
    # The identifier property is filled in, so the created profile matches next time.
    assert ws.properties_by("ext")["u9"] == {"ext": ["u9"], "first": ["Nina"]}


def test_identifier_groups_or_of_and(tmp_path: Path, box: Sandbox) -> None:
    alias = {"alias_name": "al-2", "alias_label": "bc_profile_id"}
    braze_track(box, [
        {"external_id": "x1", "email": "x1@example.com", "first_name": "A"},
        {"user_alias": alias, "_update_existing_only": False, "first_name": "B"},
        {"external_id": "x3", "email": "c@example.com", "first_name": "C"},
        {"external_id": "x4", "email": "shared@example.com", "first_name": "D"},
        {"user_alias": {"alias_name": "al-5", "alias_label": "other"},
         "_update_existing_only": False, "first_name": "E"},
        {"external_id": "y1", "email": "y1@example.com", "first_name": "F"},
        {"external_id": "y2", "email": "y2@example.com", "first_name": "G"},
    ])
    or_groups = [[ident("external_id", "ext")], [ident("user_alias", "alias", "bc_profile_id")],
                 [ident("email", "mail")]]
    and_group = [[ident("external_id", "ext"), ident("email", "mail")]]
    names = mapping("first_name", "first")
    ws = Workspace.create(tmp_path, box, [
        import_goal(all_users(box), name="or", identifiers=or_groups, mappings=[names],
                    allow_create=False),
        import_goal(all_users(box), name="and", identifiers=and_group, mappings=[names],
                    allow_create=False, enabled=False),
    ])
    ws.load([
        member("P1", ext="x1"),
        member("P2", alias="al-2"),
        member("P3", mail="c@example.com"),
        member("P4a", ext="x4"),
        member("P4b", mail="shared@example.com"),
        member("Q1", ext="y1", mail="y1@example.com"),
        member("Q2", ext="y2", mail="other@example.com"),
    ])

    result = ws.run(goal="or")

    firsts = {pid: p["properties"].get("first") for pid, p in ws.profiles().items()}
    assert firsts == {"P1": ["A"], "P2": ["B"], "P3": ["C"], "P4a": ["D"], "P4b": None,
                      "Q1": ["F"], "Q2": ["G"]}
    # Matched by e-mail, the profile gets the external id for next time.
    assert props(ws, "P3")["ext"] == ["x3"]
    # The user known only under another alias label matches no group.
    assert counts(result, "or")["skipped"] == 1
    assert counts(result, "or")["updated"] == 6

    ws.load([{"_id": "Q1", "first": "-"}, {"_id": "Q2", "first": "-"}])
    ws.run(goal="and")

    # An AND group needs every pair: Q2's e-mail differs, so it is not matched.
    assert props(ws, "Q1")["first"] == ["F"]
    assert props(ws, "Q2")["first"] == ["-"]


def test_remaining_fields_with_prefix_and_nested_mappings(tmp_path: Path, box: Sandbox) -> None:
    braze_track(box, [{"external_id": "u1", "first_name": "Ann", "last_name": "Lee", "pts": 3,
                       "color": "red",
                       "prefs": {"channel": "email", "frequency": "weekly"}}])
    ws = Workspace.create(tmp_path, box, [import_goal(
        all_users(box),
        mappings=[mapping("first_name", "first"), mapping("custom_attributes.pts", "points"),
                  mapping("custom_attributes.prefs.channel", "channel")],
        remaining={"enabled": True, "prefix": "braze_", "strategy": "set_if_empty"})])
    ws.load([member("p1", ext="u1", braze_color="kept")])

    ws.run()

    found = props(ws, "p1")
    assert found["first"] == ["Ann"] and found["points"] == [3]
    assert found["channel"] == ["email"]
    assert found["braze_last_name"] == ["Lee"]
    assert found["braze_external_id"] == ["u1"]
    assert found["braze_prefs"] == ['{"channel":"email","frequency":"weekly"}']
    assert found["braze_color"] == ["kept"]  # the remaining fields' strategy: set_if_empty
    # Mapped fields are not brought in a second time under the prefix.
    assert "braze_first_name" not in found and "braze_pts" not in found


def test_campaign_filter_narrows_the_audience(tmp_path: Path,
                                              make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=120, settings=SimulatorSettings(
        export_delay_seconds=0.05, export_file_interval=0.05, export_file_users=40))
    users = list(box.sim.users)
    received = Counter(c["api_campaign_id"] for u in users for c in u["campaigns_received"])
    campaign, _ = received.most_common(1)[0]
    receivers = [u for u in users
                 if any(c["api_campaign_id"] == campaign for c in u["campaigns_received"])]
    with_ext = {u["external_id"] for u in receivers if u.get("external_id")}
    assert 0 < len(receivers) < len(users)
    ws = Workspace.create(tmp_path, box, [import_goal(
        all_users(box), campaign_ids=[campaign], mappings=[mapping("first_name", "first")])])

    result = ws.run()

    assert counts(result) == {"checked": len(receivers), "created": len(with_ext),
                              "updated": 0, "unchanged": 0,
                              "skipped": len(receivers) - len(with_ext), "failed": 0}
    assert set(ws.properties_by("ext")) == with_ext


def test_malformed_lines_are_counted_with_file_and_line(tmp_path: Path, box: Sandbox) -> None:
    braze_track(box, [{"external_id": f"u{i}", "first_name": f"N{i}"} for i in range(4)])
    ws = Workspace.create(tmp_path, box, [import_goal(
        all_users(box), mappings=[mapping("first_name", "first")],
        wait={"poll_seconds": 0.1, "quiet_seconds": 1.5, "timeout_minutes": 1})])
    outcome: dict[str, RunResult] = {}
    runner = threading.Thread(target=lambda: outcome.update(result=ws.run()))
    runner.start()
    try:
        job = wait_for(lambda: box.sim.exports, what="the export request")[0]
        assert job.wait(10), "the simulator did not finish its export"
        bad = b"\n".join([
            b'{"external_id": "late-1", "first_name": "Lou"}',
            b'{"external_id": "late-2", "first_name": ',
            b'["an", "array"]',
            b"",
            b'{"external_id": "late-3", "first_name": "Liz"}',
            b'{"external_id": ["two", "ids"], "first_name": "Max"}',
        ]) + b"\n"
        s3 = boto3.client("s3", endpoint_url=box.s3_endpoint, region_name=box.region,
                          aws_access_key_id=box.aws_access_key_id,
                          aws_secret_access_key=box.aws_secret_access_key)
        name = "f" * 32 + ".gz"
        s3.put_object(Bucket=box.bucket, Key=job.prefix + name, Body=gzip.compress(bad))
    finally:
        runner.join(30)
    result = outcome["result"]

    assert result.state == "FINISHED", result.error
    assert counts(result) == {"checked": 9, "created": 6, "updated": 0, "unchanged": 0,
                              "skipped": 0, "failed": 3}
    assert {"late-1", "late-3", "u0", "u3"} <= set(ws.properties_by("ext"))
    warnings = [e.message for e in ws.events(result.run_id)
                if isinstance(e, LogLine) and e.level == "warning"]
    assert any(w.startswith(f"{name}:2: not valid JSON") for w in warnings), warnings
    assert any(w.startswith(f"{name}:3: not a JSON object") for w in warnings), warnings
    assert any(w.startswith(f"{name}:6: unexpected shape: external_id is not a single value")
               for w in warnings), warnings


def test_dry_run_changes_neither_side_and_predicts_the_counts(tmp_path: Path,
                                                              box: Sandbox) -> None:
    braze_track(box, [{"external_id": "u1", "pts": 4}, {"external_id": "u2", "pts": 0},
                      {"external_id": "u9", "pts": 2}])
    ws = Workspace.create(tmp_path, box, [import_goal(
        all_users(box), mappings=[mapping("custom_attributes.pts", "points", "sum")])])
    ws.load([member("p1", ext="u1", points=1), member("p2", ext="u2", points=1)])
    before = ws.profiles()
    seq = ws.max_seq()
    braze_before = braze_users(box)

    dry = ws.run(dry_run=True)

    assert dry.state == "FINISHED" and dry.summary["dry_run"] is True
    assert counts(dry) == {"checked": 3, "created": 1, "updated": 1, "unchanged": 1,
                           "skipped": 0, "failed": 0}
    assert ws.profiles() == before and ws.max_seq() == seq
    assert ws.engine_rows("import_job") == ws.engine_rows("import_file") == 0
    assert braze_users(box) == braze_before

    real = ws.run()

    assert counts(real) == counts(dry)
    assert ws.properties_by("ext")["u1"]["points"] == [5]


def test_a_timed_out_import_waits_again_for_the_same_export(
        tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(export_delay_seconds=3.0,
                                                           export_file_interval=0.05))
    braze_track(box, [{"external_id": "u1", "first_name": "Ann"}])
    wait = {"poll_seconds": 0.1, "quiet_seconds": 0.3, "timeout_minutes": 0.03}  # 1.8 s
    ws = Workspace.create(tmp_path, box, [import_goal(
        all_users(box), mappings=[mapping("first_name", "first")], wait=wait)])
    ws.load([member("p1", ext="u1")])

    first = ws.run()

    assert first.state == "FAILED"
    assert "no export files arrived" in first.summary["goals"]["import"]["error"]

    # Braze is still writing that export: the next run waits for it again (a new request
    # would be refused while it runs) instead of failing at once.
    second = ws.run()

    assert second.state == "FINISHED", second.error
    assert export_requests(box) == 1
    assert props(ws, "p1")["first"] == ["Ann"]
