"""The value index holds identifier and segment properties only; every answer stays the same.

A store made before the index became selective (every value of every property indexed) is
migrated in place and answers every query as before; a new store indexes a property when it is
first used as an identifier or in a segment, and answers from the profiles' JSON until then.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from store_helpers import put

from bctui.store import ProfileStore, Rule, SegmentDef, segment_sql
from bctui.store.properties import property_names
from bctui.store.schema import STORE_COMPONENT, STORE_MIGRATIONS, apply_migrations, connect
from bctui.store.search import search_profiles
from bctui.store.segments import register_functions, segment_properties
from bctui.store.values import numeric
from bctui.store.writes import new_profile_id

PROFILES: dict[str, dict[str, Any]] = {
    "p1": {
        "email": "ada@example.com",
        "country": "NL",
        "score": 5,
        "joined": "2024-03-01",
        "ratio": 0.1 + 0.2,
    },
    "p2": {
        "email": "Bram@Example.com",
        "country": ["DE", "NL"],
        "score": "5",
        "name": "BOB",
        "ratio": 1e-300,
    },
    "p3": {
        "email": "cor@example.com",
        "country": "FR",
        "score": [5.5, 100],
        "nickname": "ada@example.com",
        "flag": True,
    },
    "p4": {"country": "BE", "score": ["abc", "12.5"], "interests": ["running", "music"]},
    "p5": {},
}

SEGMENTS = [
    SegmentDef("nl", "all", (Rule("country", "eq", "NL"),)),
    SegmentDef("five", "all", (Rule("score", "eq", 5),)),
    SegmentDef("not-nl", "all", (Rule("country", "ne", "NL"),)),
    SegmentDef("big", "any", (Rule("score", "gt", 5), Rule("ratio", "lt", 0.5))),
    SegmentDef("named", "all", (Rule("name", "contains", "bo"), Rule("joined", "exists"))),
    SegmentDef("either", "any", (Rule("name", "exists"), Rule("joined", "gte", "2024"))),
    SegmentDef("tiny", "all", (Rule("ratio", "eq", 1e-300),)),
]

SEARCHES = [
    "ada@example.com",
    "BRAM@EXAMPLE.COM",
    "Bram@Example.com",
    "5",
    "12.5",
    "NL",
    "score=5",
    "email=cor@example.com",
    "country=NL",
    "nothing",
    "0.30000000000000004",
]


def _fill(store: ProfileStore) -> None:
    for profile_id, properties in PROFILES.items():
        put(store, profile_id, **properties)


def _old_layout_store(path: Path) -> None:
    """A store as bctui wrote it before this change: schema step 1, every value indexed."""
    with ProfileStore(path.with_name("source.db")) as source:
        _fill(source)
        rows = [
            (*row[:5], _iso(row[5]), _iso(row[6]), row[7])
            for row in source.query(
                "SELECT pid, id, properties, permission_level, interactions_viewed, created_us,"
                " updated_us, seq FROM profile"
            )
        ]
    conn = connect(path, busy_timeout=5)
    register_functions(conn)
    apply_migrations(conn, STORE_COMPONENT, STORE_MIGRATIONS[:1], where=str(path))
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO profile VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    for pid, _id, properties, *_ in rows:
        for name, values in orjson.loads(properties).items():
            conn.executemany(
                "INSERT INTO prop (name, value, pid, num) VALUES (?, ?, ?, ?)",
                [(name, v, pid, numeric(v) if isinstance(v, str) else None) for v in values],
            )
    conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (len(rows),))
    conn.execute("COMMIT")
    conn.close()


def _iso(microseconds: int) -> str:
    """A time as the first store layout wrote it."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=microseconds)
    return moment.isoformat(timespec="microseconds")


def _answers(store: ProfileStore) -> dict[str, Any]:
    """Every kind of query, answered by this store."""
    out: dict[str, Any] = {}
    for segment in SEGMENTS:
        for correlated in (False, True):
            predicate, params = segment_sql(segment, correlated=correlated)
            out[f"{segment.name} {correlated}"] = sorted(
                row[0]
                for row in store.query(f"SELECT p.id FROM profile p WHERE {predicate}", params)
            )
    for text in SEARCHES:
        search = search_profiles(store, text)
        out[f"search {text}"] = (search.kind, search.matches, search.more)
    out["names"] = property_names(store)
    out["names n"] = property_names(store, "n")
    return out


def _lookups(store: ProfileStore) -> dict[str, Any]:
    """Identifier lookups and segment counts (these index what they use)."""
    out: dict[str, Any] = {
        "find email": store.find_many("email", ["ada@example.com", "cor@example.com", "x"]),
        "find score": store.find_many("score", [5, "5", 12.5, 100, "abc"]),
        "find ratio": store.find_many("ratio", [0.1 + 0.2, 0.3, 1e-300]),
        "find flag": store.find("flag", "true"),
        "counts": store.segment_counts(SEGMENTS),
        "stream": [(p.id, names) for p, names in store.iter_profiles(segments_of=SEGMENTS)],
    }
    return out


def test_an_old_layout_store_is_migrated_and_answers_as_before(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    _old_layout_store(old)
    with ProfileStore(tmp_path / "fresh.db") as fresh:
        _fill(fresh)
        assert fresh.query("SELECT count(*) FROM prop").fetchone()[0] == 0  # nothing used yet
        expected = _answers(fresh)
        expected_lookups = _lookups(fresh)
    with ProfileStore(old) as migrated:
        version = migrated.query("SELECT value FROM meta WHERE key = 'schema:store'").fetchone()
        assert version == (len(STORE_MIGRATIONS),)
        names = dict(migrated.query("SELECT name, profiles FROM prop_name WHERE indexed"))
        assert names == {
            "country": 4,
            "email": 3,
            "flag": 1,
            "interests": 1,
            "joined": 1,
            "name": 1,
            "nickname": 1,
            "ratio": 2,
            "score": 4,
        }
        assert _answers(migrated) == expected
        assert _lookups(migrated) == expected_lookups
        before = migrated.get("p3")
        assert before is not None and before.created_at.tzinfo is UTC
        assert migrated.query("SELECT created_us FROM profile WHERE id = 'p3'").fetchone() == (
            None,
        )
        put(migrated, "p3", country="SE")  # an old row written again keeps its created time
        after = migrated.get("p3")
        assert after is not None and after.created_at == before.created_at
        assert after.updated_at > before.updated_at
        put(migrated, "p6", country="NL", hobby="chess")  # a new name is not indexed
        assert migrated.find("country", "NL")[-1] == "p6"
        assert migrated.query("SELECT indexed FROM prop_name WHERE name = 'hobby'").fetchone() == (
            0,
        )


def test_indexed_and_unindexed_properties_answer_alike(tmp_path: Path) -> None:
    with ProfileStore(tmp_path / "a.db") as plain, ProfileStore(tmp_path / "b.db") as indexed:
        _fill(plain)
        indexed.index_properties(["country", "score", "email", "ratio", "name", "joined"])
        _fill(indexed)
        assert indexed.query("SELECT count(*) FROM prop").fetchone()[0] > 0
        assert _answers(plain) == _answers(indexed)
        assert _lookups(plain) == _lookups(indexed)


@pytest.mark.sqlite_only("SQLite's value index tables")
def test_a_property_is_indexed_when_first_used_and_kept_exact(store: ProfileStore) -> None:
    _fill(store)
    assert store.query("SELECT count(*) FROM prop WHERE name = 'ratio'").fetchone() == (0,)
    assert store.find("ratio", 0.1 + 0.2) == ["p1"]
    assert store.find("ratio", 0.3) == []
    rows = store.query("SELECT value, pid FROM prop WHERE name = 'ratio' ORDER BY pid")
    assert [value for value, _ in rows] == [0.1 + 0.2, 1e-300]  # bit for bit
    put(store, "p1", ratio=None, strategy="clear")  # later writes keep the index current
    assert store.find("ratio", 0.1 + 0.2) == []
    assert store.query("SELECT count(*) FROM prop WHERE name = 'ratio'").fetchone() == (1,)
    nl = SegmentDef("nl", "all", (Rule("country", "eq", "NL"),))
    assert store.count(nl) == 2
    assert store.query("SELECT indexed FROM prop_name WHERE name = 'country'").fetchone() == (1,)


def test_names_are_listed_while_some_profile_holds_them(store: ProfileStore) -> None:
    put(store, "p1", hobby="chess", city="Utrecht")
    put(store, "p2", hobby=["go", "chess"])
    assert property_names(store) == ["city", "hobby"]
    put(store, "p1", hobby=None, strategy="clear")
    assert property_names(store) == ["city", "hobby"]
    put(store, "p2", hobby=None, strategy="clear")
    assert property_names(store) == ["city"]
    assert search_profiles(store, "hobby=chess").kind == "value"  # no longer a property


@pytest.mark.sqlite_only("SQLite's file write lock")
def test_reads_answer_from_the_json_while_another_process_writes(store: ProfileStore) -> None:
    _fill(store)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        assert store.find("email", "cor@example.com") == ["p3"]
        assert store.count(SEGMENTS[0]) == 2
        assert store.query("SELECT count(*) FROM prop").fetchone() == (0,)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert store.find("email", "cor@example.com") == ["p3"]
    assert store.query("SELECT count(*) FROM prop").fetchone() == (3,)  # indexed now


@pytest.mark.sqlite_only("SQLite's value index tables")
def test_segment_properties_and_explicit_indexing(store: ProfileStore) -> None:
    assert segment_properties(SEGMENTS) == ["country", "score", "ratio", "name", "joined"]
    _fill(store)
    store.index_properties(segment_properties(SEGMENTS))
    indexed = {row[0] for row in store.query("SELECT name FROM prop_name WHERE indexed")}
    assert indexed == {"country", "score", "ratio", "name", "joined"}
    with store.transaction() as tx:  # inside a transaction: indexed with its writes
        store.index_properties(["flag"])
        tx.execute("SELECT 1")
    assert store.query("SELECT count(*) FROM prop WHERE name = 'flag'").fetchone() == (1,)


def test_new_profile_ids_are_unique_time_ordered_uuids() -> None:
    ids = [new_profile_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(i) for i in ids[:100]]
    assert all(str(u) == i and u.version == 7 for u, i in zip(parsed, ids, strict=False))
    assert ids[0][:8] <= ids[-1][:8]


@pytest.mark.parametrize("strategy", ["set", "add", "set_if_empty", "clear", "sum"])
def test_writes_into_empty_properties_match_the_merge(store: ProfileStore, strategy: str) -> None:
    from bctui.store import ProfileWrite
    from bctui.store.merge import merge

    values: list[object] = [
        [1, 1.0, "1"],
        {"b": 1, "a": [2]},
        True,
        2.5,
        [[1], "x"],
        None,
        "",
        [],
        float("inf"),
        2**70,
        "x\x00y",
        7,
    ]
    with store.transaction() as tx:
        results = tx.apply_many(
            [ProfileWrite(f"p{i}", [("v", strategy, value)]) for i, value in enumerate(values)]
        )
    for i, (value, result) in enumerate(zip(values, results, strict=True)):
        try:
            expected: object = merge(strategy, [], value)
        except ValueError as exc:
            assert result.outcome == "failed"
            assert [str(e) for e in result.errors] == [f'property "v": {exc}']
            continue
        profile = store.get(f"p{i}")
        assert profile is not None
        assert profile.properties.get("v", []) == expected


def test_a_read_only_store_answers_without_indexing(tmp_path: Path) -> None:
    path = tmp_path / "p.db"
    with ProfileStore(path) as store:
        _fill(store)
    readonly = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    register_functions(readonly)
    from bctui.store.index import try_index

    assert try_index(readonly, ["country"], busy_timeout=1) is False
    assert not readonly.in_transaction
    predicate, params = segment_sql(SEGMENTS[0])
    rows = readonly.execute(f"SELECT p.id FROM profile p WHERE {predicate}", params)
    assert sorted(row[0] for row in rows) == ["p1", "p2"]
    readonly.close()
