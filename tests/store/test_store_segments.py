"""Segment rules evaluated in SQL: every op, multi-valued and numeric-string cases, all/any."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_helpers import BACKENDS, open_backend, put

from bctui.store import ProfileStore, ProfileWrite, Rule, SegmentDef, Store, segment_sql
from bctui.store import store as store_module
from bctui.store.schema import connect as real_connect

PROFILES: dict[str, dict[str, Any]] = {
    "p1": {"country": "NL", "score": 5, "name": "Ann Smith", "joined": "2024-03-01",
           "mixed": 3},
    "p2": {"country": ["DE", "NL"], "score": "5", "name": "BOB", "joined": "2023-12-31",
           "mixed": "a"},
    "p3": {"country": "FR", "score": [5.5, 100], "name": "Çedille Straße",
           "joined": "2025-01-01", "flag": True},
    "p4": {"country": "BE", "score": ["abc", "12.5"], "interests": ["running", "music"]},
    "p5": {},
}
EVERYONE = set(PROFILES)


@pytest.fixture(scope="module", params=BACKENDS)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """One store with the five profiles above, shared by the read-only tests here."""
    path = Path(tmp_path_factory.mktemp("segments")) / "profiles.db"
    with open_backend(request.param, request, path) as opened:
        for profile_id, properties in PROFILES.items():
            put(opened, profile_id, **properties)
        yield opened


RULES: list[tuple[Rule, set[str]]] = [
    (Rule("country", "eq", "NL"), {"p1", "p2"}),
    (Rule("country", "eq", "nl"), set()),
    (Rule("score", "eq", 5), {"p1", "p2"}),  # 5 and "5"
    (Rule("score", "eq", 5.0), {"p1", "p2"}),
    (Rule("score", "eq", "5"), {"p2"}),  # a text rule value compares as text
    (Rule("score", "eq", 12.5), {"p4"}),  # "12.5" reads as a number
    (Rule("country", "ne", "NL"), {"p3", "p4", "p5"}),  # no value equals, or no property
    (Rule("score", "ne", 5), {"p3", "p4", "p5"}),
    (Rule("country", "in", ("NL", "FR")), {"p1", "p2", "p3"}),
    (Rule("score", "in", (100, "abc")), {"p3", "p4"}),
    (Rule("score", "in", ()), set()),
    (Rule("name", "contains", "smith"), {"p1"}),
    (Rule("name", "contains", "Bo"), {"p2"}),
    (Rule("name", "contains", "STRASSE"), {"p3"}),  # case-insensitive beyond ASCII: ß = ss
    (Rule("name", "contains", "çed"), {"p3"}),
    (Rule("score", "contains", "5"), {"p1", "p2", "p3", "p4"}),  # numbers as written
    (Rule("score", "contains", 2.5), {"p4"}),
    (Rule("country", "exists"), {"p1", "p2", "p3", "p4"}),
    (Rule("interests", "exists"), {"p4"}),
    (Rule("nothing", "exists"), set()),
    (Rule("score", "gt", 5), {"p3", "p4"}),  # 5.5/100 and "12.5"
    (Rule("score", "gte", 5), {"p1", "p2", "p3", "p4"}),
    (Rule("score", "lt", 5.5), {"p1", "p2"}),
    (Rule("score", "lte", 5.5), {"p1", "p2", "p3"}),
    (Rule("score", "lt", 0), set()),  # "abc" has no numeric reading
    (Rule("score", "gt", "4"), {"p2", "p4"}),  # text rule: text values only ("5", "abc")
    (Rule("joined", "gt", "2024-01-01"), {"p1", "p3"}),  # ISO dates compare as text
    (Rule("joined", "gte", "2025-01-01"), {"p3"}),
    (Rule("joined", "lt", "2024-01-01"), {"p2"}),
    (Rule("joined", "lte", "2024-03-01"), {"p1", "p2"}),
    (Rule("mixed", "lt", "b"), {"p2"}),  # the number 3 never compares with text
    (Rule("mixed", "gte", 0), {"p1"}),
    (Rule("flag", "eq", True), {"p3"}),  # booleans are stored as "true"
    (Rule("flag", "eq", "true"), {"p3"}),
]


def _members(store: ProfileStore, segment: SegmentDef, correlated: bool) -> set[str]:
    predicate, params = store.segment_sql(segment, correlated=correlated)
    rows = store.query(f"SELECT p.id FROM profile p WHERE {predicate}", params)
    return {row[0] for row in rows}


@pytest.mark.parametrize("correlated", [False, True], ids=["set", "correlated"])
@pytest.mark.parametrize(("rule", "expected"), RULES, ids=lambda x: repr(x) if isinstance(
    x, Rule) else "")
def test_rule(seeded: ProfileStore, rule: Rule, expected: set[str], correlated: bool) -> None:
    segment = SegmentDef("s", "all", (rule,))
    assert _members(seeded, segment, correlated) == expected


@pytest.mark.parametrize(("rule", "expected"), RULES[:12], ids=lambda x: repr(x) if isinstance(
    x, Rule) else "")
def test_count_and_scan_and_membership_agree(seeded: ProfileStore, rule: Rule,
                                             expected: set[str]) -> None:
    segment = SegmentDef("s", "all", (rule,))
    assert seeded.count(segment) == len(expected)
    assert {p.id for p, _ in seeded.iter_profiles(segment=segment)} == expected
    assert {pid for pid in PROFILES if seeded.in_segment(pid, segment)} == expected
    tagged = {p.id for p, names in seeded.iter_profiles(segments_of=[segment]) if names}
    assert tagged == expected


@pytest.mark.parametrize("correlated", [False, True], ids=["set", "correlated"])
def test_all_and_any(seeded: ProfileStore, correlated: bool) -> None:
    both = SegmentDef("both", "all", (Rule("country", "eq", "NL"), Rule("score", "gte", 5)))
    assert _members(seeded, both, correlated) == {"p1", "p2"}
    nl_not_de = SegmentDef("x", "all", (Rule("country", "eq", "NL"), Rule("country", "ne", "DE")))
    assert _members(seeded, nl_not_de, correlated) == {"p1"}
    either = SegmentDef("either", "any", (Rule("country", "eq", "FR"),
                                          Rule("interests", "exists")))
    assert _members(seeded, either, correlated) == {"p3", "p4"}


@pytest.mark.parametrize("correlated", [False, True], ids=["set", "correlated"])
def test_empty_rules_match_everyone_with_all_and_no_one_with_any(seeded: ProfileStore,
                                                                 correlated: bool) -> None:
    assert _members(seeded, SegmentDef("all", "all", ()), correlated) == EVERYONE
    assert _members(seeded, SegmentDef("any", "any", ()), correlated) == set()
    assert seeded.count(SegmentDef("all", "all", ())) == len(PROFILES)
    assert seeded.count(SegmentDef("any", "any", ())) == 0


def test_segment_counts_and_predicates_as_columns(seeded: ProfileStore) -> None:
    nl = SegmentDef("nl", "all", (Rule("country", "eq", "NL"),))
    rich = SegmentDef("rich", "all", (Rule("score", "gte", 100),))
    assert seeded.segment_counts([nl, rich]) == {"nl": 2, "rich": 1}
    predicate, params = seeded.segment_sql(nl)
    rows = dict(seeded.query(f"SELECT p.id, {predicate} FROM profile p", params).fetchall())
    assert rows == {"p1": 1, "p2": 1, "p3": 0, "p4": 0, "p5": 0}
    assert not seeded.in_segment("no-such-profile", nl)


@pytest.mark.parametrize(
    ("rule", "index"),
    [
        (Rule("country", "eq", "NL"), "PRIMARY KEY (name=? AND value=?)"),
        (Rule("score", "gt", 5), "INDEX prop_num (name=? AND num>?)"),
        (Rule("score", "gt", 5), "PRIMARY KEY (name=? AND value>? AND value<?)"),
        (Rule("score", "lte", 5), "PRIMARY KEY (name=? AND value<?)"),
        (Rule("score", "in", (1, 2)), "INDEX prop_num (name=? AND num=?)"),
        (Rule("score", "in", (1, 2)), "PRIMARY KEY (name=? AND value=?)"),
        (Rule("joined", "lt", "2024"), "PRIMARY KEY (name=? AND value>? AND value<?)"),
    ],
)
@pytest.mark.sqlite_only("the plan of SQLite's value index")
def test_rules_use_the_value_indexes(seeded: ProfileStore, rule: Rule, index: str) -> None:
    predicate, params = segment_sql(SegmentDef("s", "all", (rule,)))
    plan = seeded.query(f"EXPLAIN QUERY PLAN SELECT count(*) FROM profile p WHERE {predicate}",
                        params).fetchall()
    assert any(index in row[3] for row in plan), plan


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("country", "like", "NL"), 'unknown op "like"'),
        (("country", "exists", "x"), '"exists" takes no value'),
        (("country", "in", "NL"), '"in" needs a list'),
        (("country", "eq", None), '"eq" needs one value'),
        (("country", "gt", ("a",)), '"gt" needs one value'),
        (("", "eq", "x"), "needs a property name"),
        (("country", "in", ("NL", {"a": 1})), "expected a string or a number"),
    ],
)
def test_invalid_rules_are_refused(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rule(*args)


def test_rule_values_are_normalized() -> None:
    assert Rule("x", "in", ["a", True]).value == ("a", "true")  # type: ignore[arg-type]
    assert Rule("x", "eq", False).value == "false"
    with pytest.raises(ValueError, match="all"):
        SegmentDef("s", "every", ())  # type: ignore[arg-type]


def test_a_small_delta_costs_what_its_rows_cost(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted in SQLite VM steps (not time): a delta of 10 changes in 3,000 profiles."""
    steps = [0]

    def counting_connect(path: Path, *, busy_timeout: float) -> Any:
        conn = real_connect(path, busy_timeout=busy_timeout)

        def tick() -> int:
            steps[0] += 1
            return 0

        conn.set_progress_handler(tick, 100)
        return conn

    with ProfileStore(tmp_path / "p.db") as store:
        with store.transaction() as tx:
            tx.apply_many([ProfileWrite(None, [("country", "set", ["NL", "DE"][i % 2]),
                                               ("score", "set", i)]) for i in range(3000)])
        since = store.max_seq()
        for i in range(10):
            put(store, None, country="NL", score=i)
        segment = SegmentDef("nl", "all", (Rule("country", "eq", "NL"), Rule("score", "lt", 5)))
        monkeypatch.setattr(store_module, "connect", counting_connect)

        delta = [p.id for p, _ in store.iter_profiles(segment=segment, since_seq=since,
                                                      segments_of=[segment])]
        delta_steps, steps[0] = steps[0], 0
        full = [p.id for p, _ in store.iter_profiles(segment=segment, segments_of=[segment])]
        full_steps = steps[0]

    assert len(delta) == 5
    assert len(full) == 3 + 5  # scores 0, 2, 4 among the first 3,000 are NL
    assert delta_steps * 20 < full_steps, (delta_steps, full_steps)
