"""Saving a segment into the config model: in place, appended, and renames that carry goals."""

from __future__ import annotations

from bctui.engine.config import parse_config
from bctui.engine.edits import replace_segment
from bctui.engine.models import ExportGoal
from bctui.store.segments import Rule, SegmentDef

CONFIG = """\
[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "vip"
match = "all"
rules = [{ property = "lifetime_value", op = "gte", value = 1000 }]

[[segment]]
name = "travellers"
match = "any"
rules = [{ property = "interests", op = "eq", value = "travel" }]

[[connection]]
name = "Braze main"
braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "secret:braze-main" }

[[connection.goal]]
type = "export"
name = "VIPs to Braze"
segment = "VIP"
identifiers = [[{ property = "braze_external_id", braze = "external_id" }]]
mappings = [{ source = "property", value = "email", braze = "email" }]

[[connection.goal]]
type = "export"
name = "Travellers to Braze"
segment = "travellers"
identifiers = [[{ property = "braze_external_id", braze = "external_id" }]]
mappings = [{ source = "property", value = "email", braze = "email" }]
"""

BIG = SegmentDef("big spenders", "any", (Rule("lifetime_value", "gte", 5000),))


def goal_segments(config_text: str = CONFIG, old: str | None = "vip") -> dict[str, str]:
    config = replace_segment(parse_config(config_text), old, BIG)
    return {
        goal.name: goal.segment
        for goal in config.connections[0].goals
        if isinstance(goal, ExportGoal)
    }


def test_an_edit_keeps_the_segments_place_and_renames_carry_the_goals() -> None:
    config = parse_config(CONFIG)
    new = replace_segment(config, "VIP", BIG)  # names match case-insensitively
    assert [s.name for s in new.segments] == ["big spenders", "travellers"]
    assert new.segments[0] == BIG
    assert goal_segments() == {
        "VIPs to Braze": "big spenders",
        "Travellers to Braze": "travellers",
    }
    assert config.segments[0].name == "vip"  # the original is untouched


def test_an_edit_without_a_rename_leaves_the_goals_alone() -> None:
    config = parse_config(CONFIG)
    same = SegmentDef("vip", "any", ())
    new = replace_segment(config, "vip", same)
    assert new.segments == (same, config.segments[1])
    assert new.connections == config.connections


def test_a_new_segment_is_appended() -> None:
    config = parse_config(CONFIG)
    for old in (None, "gone"):
        new = replace_segment(config, old, BIG)
        assert [s.name for s in new.segments] == ["vip", "travellers", "big spenders"]
        assert new.connections == config.connections
