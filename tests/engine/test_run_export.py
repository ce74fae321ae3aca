"""Export goals end to end: the store's profiles sent to the Braze simulator over real HTTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_helpers import (
    EVERYONE,
    Workspace,
    braze_track,
    export_goal,
    fast_settings,
    ident,
    member,
    source,
    track_requests,
)

from bctui.sandbox import Sandbox
from bctui.store import ProfileWrite

VIP: dict[str, Any] = {"name": "vip", "match": "all",
                       "rules": [{"property": "vip", "op": "eq", "value": "yes"}]}
ALL_SOURCES = [
    source("property", "email", "email"),
    source("property", "bc_tags", "tags"),
    source("property", "bc_score", "score"),
    source("profile_id", "bc_profile_id"),
    source("segments", "bc_segments"),
    source("interactions_viewed", "bc_interactions"),
    source("permission_level", "bc_permission"),
    source("static", "bc_source", "bctui"),
]


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An empty simulated workspace."""
    return make_sandbox(users=0, settings=fast_settings())


def user(box: Sandbox, external_id: str) -> dict[str, Any]:
    """A simulator user (fails when there is no such user)."""
    found = box.sim.user(external_id=external_id)
    assert found is not None, f"Braze has no user {external_id}"
    return found


def custom(box: Sandbox, external_id: str) -> dict[str, Any]:
    """A simulator user's custom attributes."""
    return dict(user(box, external_id)["custom_attributes"])


def goal_counts(summary: dict[str, Any], goal: str = "export") -> dict[str, int]:
    """The six counts and data points of one goal of a run summary."""
    keys = ("checked", "created", "updated", "unchanged", "skipped", "failed", "data_points")
    return {k: summary["goals"][goal][k] for k in keys}


def test_every_mapping_source_then_a_delta_of_changed_attributes(tmp_path: Path,
                                                                  box: Sandbox) -> None:
    braze_track(box, [{"external_id": "u1", "first_name": "Ann"},
                      {"external_id": "u3", "first_name": "Dee"}])
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=ALL_SOURCES)], [EVERYONE, VIP])
    ws.load([
        member("p1", ext="u1", email="ann@example.com", tags=["a", "b"], score=5, vip="yes",
               interactions=["i1", "i2"]),
        member("p2", level="ANONYMOUS", ext="u2", email="bob@example.com", tags="x", score=2.5),
        member("p3", level="DO_NOT_TRACK", ext="u3", email="dee@example.com", score=1),
        member("p4", ext="u4", tags=["q"]),
    ])
    box.sim.reset_stats()

    first = ws.run()

    assert first.state == "FINISHED", first.error
    assert goal_counts(first.summary) == {"checked": 4, "created": 3, "updated": 0,
                                          "unchanged": 0, "skipped": 1, "failed": 0,
                                          "data_points": 8 + 7 + 5}
    assert box.sim.stats["data_points"] == first.summary["data_points"] == 20
    u1 = box.sim.user(external_id="u1")
    assert u1 is not None and u1["email"] == "ann@example.com" and u1["first_name"] == "Ann"
    assert custom(box, "u1") == {
        "bc_tags": ["a", "b"], "bc_score": 5, "bc_profile_id": "p1",
        "bc_segments": ["everyone", "vip"], "bc_interactions": ["i1", "i2"],
        "bc_permission": "PERSONAL", "bc_source": "bctui",
    }
    # bc_tags holds several values in some profiles: an array, also for one value (stable type).
    assert custom(box, "u2") == {
        "bc_tags": ["x"], "bc_score": 2.5, "bc_profile_id": "p2", "bc_segments": ["everyone"],
        "bc_permission": "ANONYMOUS", "bc_source": "bctui",
    }
    assert custom(box, "u3") == {}  # DO_NOT_TRACK is below the goal's minimum: never sent
    assert custom(box, "u4") == {
        "bc_tags": ["q"], "bc_profile_id": "p4", "bc_segments": ["everyone"],
        "bc_permission": "PERSONAL", "bc_source": "bctui",
    }
    assert ws.watermark() == ws.max_seq()

    # Braze's copy of an attribute that bctui has no reason to resend is left alone.
    braze_track(box, [{"external_id": "u1", "bc_source": "edited in Braze"}])
    points_before = {u: user(box, u)["data_points"] for u in ("u1", "u2", "u4")}
    ws.load([{"_id": "p1", "score": 6},                     # one attribute changed
             {"_id": "p2", "tags": ["x", "y"], "vip": "yes"},  # tags and segments changed
             {"_id": "p4", "note": "not mapped"}])           # changed, but nothing mapped did
    box.sim.reset_stats()

    second = ws.run()

    assert goal_counts(second.summary) == {"checked": 3, "created": 0, "updated": 2,
                                           "unchanged": 1, "skipped": 0, "failed": 0,
                                           "data_points": 3}
    assert box.sim.stats["data_points"] == 3
    assert box.sim.stats["attributes_processed"] == 2
    points_after = {u: user(box, u)["data_points"] for u in ("u1", "u2", "u4")}
    assert {u: points_after[u] - points_before[u] for u in points_after} == {
        "u1": 1, "u2": 2, "u4": 0}
    assert custom(box, "u1")["bc_score"] == 6
    assert custom(box, "u1")["bc_source"] == "edited in Braze"
    assert custom(box, "u2")["bc_tags"] == ["x", "y"]
    assert custom(box, "u2")["bc_segments"] == ["everyone", "vip"]
    assert ws.watermark() == ws.max_seq()


def test_emptied_property_is_removed_and_all_attributes_resends(tmp_path: Path,
                                                                box: Sandbox) -> None:
    mappings = [source("property", "bc_score", "score"), source("static", "bc_source", "x")]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings)])
    ws.load([member("p1", ext="u1", score=3), member("p2", ext="u2", score=4)])
    ws.run()
    with ws.store() as store, store.transaction() as tx:
        tx.apply(ProfileWrite("p1", updates=[("score", "clear", None)]))

    cleared = ws.run()

    assert goal_counts(cleared.summary)["data_points"] == 1
    assert "bc_score" not in custom(box, "u1")
    assert custom(box, "u2")["bc_score"] == 4

    ws.write_config([export_goal(mappings=mappings, all_attributes=True)])
    ws.load([{"_id": "p2", "note": "touched"}])
    box.sim.reset_stats()
    everything = ws.run()
    # BlueConic's behaviour on request: every mapped attribute of the changed profile.
    assert goal_counts(everything.summary)["data_points"] == 2
    assert box.sim.stats["data_points"] == 2


def test_allow_create_off_updates_existing_users_only(tmp_path: Path, box: Sandbox) -> None:
    braze_track(box, [{"external_id": "known", "first_name": "K"}])
    mappings = [source("static", "bc_source", "bctui")]
    ws = Workspace.create(tmp_path, box, [
        export_goal(name="update only", mappings=mappings, allow_create=False),
        export_goal(name="create", mappings=mappings, allow_create=True, enabled=False),
    ])
    ws.load([member("p1", ext="known"), member("p2", ext="unknown")])
    box.sim.reset_stats()

    result = ws.run(goal="update only")

    assert result.state == "FINISHED"
    assert custom(box, "known") == {"bc_source": "bctui"}
    assert box.sim.user(external_id="unknown") is None
    assert box.sim.stats["update_only_skipped"] == 1
    assert box.sim.stats["users_created"] == 0

    ws.run(goal="create")

    assert custom(box, "unknown") == {"bc_source": "bctui"}
    assert box.sim.stats["users_created"] == 1


def test_min_permission_level_skips_and_counts(tmp_path: Path, box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, [
        export_goal(mappings=[source("permission_level", "bc_permission")],
                    min_permission_level="PERSONAL")])
    ws.load([member("p1", ext="u1", level="PERSONAL"),
             member("p2", ext="u2", level="ANONYMOUS"),
             member("p3", ext="u3", level="DO_NOT_TRACK")])

    result = ws.run()

    assert goal_counts(result.summary) == {"checked": 3, "created": 1, "updated": 0,
                                           "unchanged": 0, "skipped": 2, "failed": 0,
                                           "data_points": 1}
    assert [u for u in ("u1", "u2", "u3") if box.sim.user(external_id=u)] == ["u1"]
    assert ws.watermark() == ws.max_seq()

    # Raising the level is a change: the profile is in the next delta and is sent.
    ws.load([{"_id": "p2", "_permission_level": "PERSONAL"}])
    ws.run()
    assert custom(box, "u2") == {"bc_permission": "PERSONAL"}


def test_identifier_groups_first_match_wins_missing_values_skip(tmp_path: Path,
                                                                box: Sandbox) -> None:
    identifiers = [
        [ident("external_id", "ext"), ident("email", "mail")],   # AND: both needed
        [ident("user_alias", "alias", "bc_profile_id")],
        [ident("email", "mail")],
    ]
    braze_track(box, [{"email": "carl@example.com", "_update_existing_only": False,
                       "first_name": "Carl"}])
    ws = Workspace.create(tmp_path, box, [
        export_goal(identifiers=identifiers, mappings=[source("profile_id", "bc_profile_id")])])
    ws.load([
        member("both", ext="e-both", mail="both@example.com", alias="al-both"),
        member("ext-only", ext="e-only", alias="al-only"),
        member("mail-only", mail="carl@example.com"),
        member("nothing", other="x"),
    ])

    result = ws.run()

    assert goal_counts(result.summary)["skipped"] == 1
    assert goal_counts(result.summary)["created"] == 3
    both = box.sim.user(external_id="e-both")
    assert both is not None and both["email"] == "both@example.com"
    assert both["custom_attributes"] == {"bc_profile_id": "both"}
    # The first group matched, so the alias of the same profile was never used.
    assert box.sim.user(alias=("al-both", "bc_profile_id")) is None
    # A group with a missing value is skipped: the alias group identified this one.
    assert box.sim.user(external_id="e-only") is None
    aliased = box.sim.user(alias=("al-only", "bc_profile_id"))
    assert aliased is not None and aliased["custom_attributes"] == {"bc_profile_id": "ext-only"}
    carl = box.sim.user(email="carl@example.com")
    assert carl is not None and carl["first_name"] == "Carl"
    assert carl["custom_attributes"] == {"bc_profile_id": "mail-only"}
    assert box.sim.stats["users"] == 3


def test_rejections_are_attributed_recorded_and_retried_after_a_fix(tmp_path: Path,
                                                                    box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, [
        export_goal(mappings=[source("property", "email", "email"),
                              source("profile_id", "bc_profile_id")])])
    too_long = "x" * 988
    ws.load([member(f"p{i}", ext=f"u{i}", email=f"user{i}@example.com") for i in range(10)]
            + [member("bad-mail", ext="u-bad", email="not an e-mail"),
               member("bad-mail-2", ext="u-bad-2", email="two@@example.com"),
               member("long-id", ext=too_long, email="long@example.com")])

    first = ws.run()

    assert first.state == "FINISHED"
    counts = goal_counts(first.summary)
    assert counts["failed"] == 3 and counts["created"] == 10
    failures = ws.failures()
    assert set(failures) == {"bad-mail", "bad-mail-2", "long-id"}
    assert "email" in failures["bad-mail"] and "email" in failures["bad-mail-2"]
    assert "987" in failures["long-id"]
    assert all(box.sim.user(external_id=f"u{i}") for i in range(10))
    assert box.sim.user(external_id="u-bad") is None
    assert ws.watermark() == ws.max_seq()  # rejected profiles do not hold the watermark back

    # Unfixed, they are retried and rejected again; nothing else is resent.
    box.sim.reset_stats()
    again = ws.run()
    assert goal_counts(again.summary)["failed"] == 3
    assert box.sim.stats["attributes_processed"] == 0
    assert set(ws.failures()) == {"bad-mail", "bad-mail-2", "long-id"}

    ws.load([{"_id": "bad-mail", "email": "fixed@example.com"},
             {"_id": "long-id", "ext": "u-long"}])
    box.sim.reset_stats()
    fixed = ws.run()

    assert goal_counts(fixed.summary)["failed"] == 1
    assert set(ws.failures()) == {"bad-mail-2"}
    fixed_user = box.sim.user(external_id="u-bad")
    assert fixed_user is not None and fixed_user["email"] == "fixed@example.com"
    assert custom(box, "u-long") == {"bc_profile_id": "long-id"}
    assert box.sim.stats["attributes_processed"] == 2


def test_dry_run_writes_nothing_and_predicts_the_real_cost(tmp_path: Path, box: Sandbox) -> None:
    braze_track(box, [{"external_id": "u1"}])
    ws = Workspace.create(tmp_path, box, [
        export_goal(mappings=ALL_SOURCES, min_permission_level="ANONYMOUS")], [EVERYONE, VIP])
    ws.load([member("p1", ext="u1", email="a@example.com", tags=["a", "b"], vip="yes"),
             member("p2", ext="u2", score=3),
             member("p3", level="DO_NOT_TRACK", ext="u3", score=1)])
    seq = ws.max_seq()
    box.sim.reset_stats()
    requests = track_requests(box)

    dry = ws.run(dry_run=True)

    assert dry.state == "FINISHED" and dry.summary["dry_run"] is True
    predicted = goal_counts(dry.summary)
    assert predicted == {"checked": 3, "created": 2, "updated": 0, "unchanged": 0,
                         "skipped": 1, "failed": 0, "data_points": 6 + 5}
    assert ws.max_seq() == seq
    assert not ws.watermark_row()
    assert ws.engine_rows("export_sent") == 0
    assert track_requests(box) == requests
    assert box.sim.stats["data_points"] == 0
    assert box.sim.user(external_id="u2") is None

    real = ws.run()

    assert goal_counts(real.summary) == predicted
    assert box.sim.stats["data_points"] == predicted["data_points"]

    ws.load([{"_id": "p1", "tags": ["a"]}, {"_id": "p2", "score": 3}])
    box.sim.reset_stats()
    dry_delta = ws.run(dry_run=True)
    real_delta = ws.run()
    assert goal_counts(dry_delta.summary) == goal_counts(real_delta.summary)
    assert goal_counts(real_delta.summary)["data_points"] == box.sim.stats["data_points"] == 1


def test_a_changed_identifier_sends_every_attribute_to_the_new_braze_user(
        tmp_path: Path, box: Sandbox) -> None:
    identifiers = [[ident("external_id", "ext")], [ident("email", "mail")]]
    mappings = [source("property", "bc_tier", "tier"), source("static", "bc_source", "bctui")]
    ws = Workspace.create(tmp_path, box, [export_goal(identifiers=identifiers,
                                                      mappings=mappings)])
    ws.load([member("p1", ext="old-id", tier="gold"),
             member("p2", mail="p2@example.com", tier="silver")])
    ws.run()

    # The same attribute values, but Braze now knows these profiles by other identifiers.
    ws.load([{"_id": "p1", "ext": "new-id"}, {"_id": "p2", "ext": "p2-id"}])
    box.sim.reset_stats()
    moved = ws.run()

    assert goal_counts(moved.summary)["unchanged"] == 0
    assert custom(box, "new-id") == {"bc_tier": "gold", "bc_source": "bctui"}
    assert custom(box, "p2-id") == {"bc_tier": "silver", "bc_source": "bctui"}
    assert box.sim.stats["data_points"] == goal_counts(moved.summary)["data_points"] == 4

    # Delivered under the new identifiers, an unchanged profile is not sent again.
    ws.load([{"_id": "p1", "note": "x"}])
    again = ws.run()
    assert goal_counts(again.summary)["unchanged"] == 1


def test_full_resync_sends_every_profile_and_attribute(tmp_path: Path, box: Sandbox) -> None:
    mappings = [source("property", "bc_score", "score"), source("static", "bc_source", "x")]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings)])
    ws.load([member(f"p{i}", ext=f"u{i}", score=i) for i in range(1, 5)])
    ws.run()
    braze_track(box, [{"external_id": "u1", "bc_score": 99, "bc_source": "edited"}])
    box.sim.reset_stats()

    unchanged = ws.run()
    full = ws.run(full=True)

    assert goal_counts(unchanged.summary)["checked"] == 0
    assert goal_counts(full.summary) == {"checked": 4, "created": 0, "updated": 4,
                                         "unchanged": 0, "skipped": 0, "failed": 0,
                                         "data_points": 8}
    assert box.sim.stats["data_points"] == 8
    assert custom(box, "u1") == {"bc_score": 1, "bc_source": "x"}  # Braze's edits overwritten
    assert ws.watermark() == ws.max_seq()
