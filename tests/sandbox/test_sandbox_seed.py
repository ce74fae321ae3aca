"""Seeded data: deterministic, realistic enough, and shaped as the brief asks."""

from __future__ import annotations

import re

from bctui.sandbox import Simulator, SimulatorSettings
from bctui.sandbox.seed import build_catalog, generate_users, virtual_users


def test_same_seed_same_data_different_seed_different_data() -> None:
    catalog = build_catalog(7)
    first = [u.as_dict() for u in generate_users(7, 1500, catalog)]
    again = [u.as_dict() for u in generate_users(7, 1500, build_catalog(7))]
    assert first == again
    other = [u.as_dict() for u in generate_users(8, 1500, build_catalog(8))]
    assert [u["braze_id"] for u in other] != [u["braze_id"] for u in first]
    assert [s.id for s in build_catalog(8).segments] != [s.id for s in catalog.segments]
    # a prefix of a bigger population is the smaller population
    assert [u.as_dict() for u in generate_users(7, 10, catalog)] == first[:10]


def test_simulators_with_the_same_seed_agree() -> None:
    one = Simulator(SimulatorSettings(seed=3), users=50)
    two = Simulator(SimulatorSettings(seed=3), users=50)
    assert list(one.users) == list(two.users)
    assert one.full_key == two.full_key  # keys are seeded too, so a demo config keeps working


def test_users_have_the_documented_identifier_mix() -> None:
    users = [u.as_dict() for u in generate_users(7, 2000, build_catalog(7))]
    braze_ids = [u["braze_id"] for u in users]
    assert len(set(braze_ids)) == len(users)
    assert all(re.fullmatch(r"[0-9a-f]{24}", b) for b in braze_ids)
    with_external = sum(1 for u in users if u["external_id"])
    alias_only = sum(1 for u in users if not u["external_id"] and u["user_aliases"])
    assert with_external > 0.75 * len(users)
    assert alias_only > 0.05 * len(users)
    emails = [u["email"] for u in users if "email" in u]
    assert len(set(emails)) == len(emails) > 0.8 * len(users)
    custom = [u["custom_attributes"] for u in users]
    kinds = {type(v) for c in custom for v in c.values()}
    assert {int, float, str, bool, list, dict} <= kinds
    assert any(u["campaigns_received"] for u in users)


def test_catalog_exercises_pagination_and_archiving() -> None:
    catalog = build_catalog(7)
    assert sum(not s.archived for s in catalog.segments) > 100
    assert any(s.archived for s in catalog.segments)
    assert len(catalog.campaigns) > 100
    assert any(c.archived for c in catalog.campaigns)
    assert any(c.draft for c in catalog.campaigns)
    names = {s.name for s in catalog.segments}
    assert {"All Users", "Newsletter Subscribers", "Empty: Antarctica"} <= names
    for campaign in catalog.campaigns:
        for variation_id, message in campaign.messages.items():
            assert re.fullmatch(r"[0-9a-f-]{36}", variation_id)
            assert "channel" in message


def test_segments_are_predicates_over_user_state() -> None:
    catalog = build_catalog(7)
    users = list(generate_users(7, 1000, catalog))
    by_name = {s.name: s for s in catalog.segments}
    assert all(by_name["All Users"].predicate(u) for u in users)
    assert not any(by_name["Empty: Antarctica"].predicate(u) for u in users)
    gold = [u for u in users if by_name["Loyalty: Gold"].predicate(u)]
    assert gold and all(u.custom["loyalty_tier"] == "gold" for u in gold)


def test_virtual_users_have_unique_identifiers() -> None:
    catalog = build_catalog(7)
    users = list(virtual_users(7, 6000, catalog))
    assert len({u.braze_id for u in users}) == 6000
    external = [u.external_id for u in users if u.external_id]
    assert len(set(external)) == len(external)
    aliases = [u.aliases["bc_profile_id"] for u in users if u.aliases]
    assert len(set(aliases)) == len(aliases)
    # the first users are the fully generated ones
    assert [u.as_dict() for u in users[:5]] == [u.as_dict() for u in generate_users(7, 5, catalog)]
