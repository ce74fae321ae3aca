"""Reading: iter_profiles (delta, segment, permission, streaming, snapshot), get, count."""

from __future__ import annotations

import pytest
from store_helpers import put

from bctui.store import ProfileStore, ProfileWrite, Rule, SegmentDef

NL = SegmentDef("nl", "all", (Rule("country", "eq", "NL"),))
BIG = SegmentDef("big", "all", (Rule("points", "gte", 100),))


@pytest.fixture
def filled(store: ProfileStore) -> ProfileStore:
    put(store, "a", country="NL", points=5, level="DO_NOT_TRACK")  # seq 1
    put(store, "b", country="DE", points=500)  # seq 2
    put(store, "c", country=["NL", "BE"], points="150", level="PERSONAL")  # seq 3
    put(store, "d")  # seq 4
    put(store, "a", points=6)  # seq 5: a moves to the end
    return store


def _ids(store: ProfileStore, **kwargs: object) -> list[str]:
    return [p.id for p, _ in store.iter_profiles(**kwargs)]  # type: ignore[arg-type]


def test_in_change_order(filled: ProfileStore) -> None:
    assert _ids(filled) == ["b", "c", "d", "a"]
    assert [p.seq for p, _ in filled.iter_profiles()] == [2, 3, 4, 5]


def test_since_seq(filled: ProfileStore) -> None:
    assert _ids(filled, since_seq=2) == ["c", "d", "a"]
    assert _ids(filled, since_seq=4) == ["a"]
    assert _ids(filled, since_seq=5) == []


def test_segment_and_segments_of(filled: ProfileStore) -> None:
    assert _ids(filled, segment=NL) == ["c", "a"]
    assert _ids(filled, segment=NL, since_seq=3) == ["a"]
    tagged = [(p.id, names) for p, names in filled.iter_profiles(segments_of=[NL, BIG])]
    assert tagged == [("b", ["big"]), ("c", ["nl", "big"]), ("d", []), ("a", ["nl"])]
    tagged = [(p.id, names) for p, names in filled.iter_profiles(segments_of=[NL, BIG],
                                                                 since_seq=4)]
    assert tagged == [("a", ["nl"])]


def test_min_permission(filled: ProfileStore) -> None:
    assert _ids(filled, min_permission="DO_NOT_TRACK") == ["b", "c", "d", "a"]
    assert _ids(filled, min_permission="ANONYMOUS") == ["b", "c", "d"]
    assert _ids(filled, min_permission="PERSONAL") == ["c"]
    assert _ids(filled, min_permission="PERSONAL", segment=BIG, since_seq=1) == ["c"]
    with pytest.raises(ValueError, match="unknown permission level"):
        filled.iter_profiles(min_permission="EVERYONE")


def test_streams_in_small_batches(store: ProfileStore) -> None:
    with store.transaction() as tx:
        tx.apply_many([ProfileWrite(f"p{i:03}", [("i", "set", i)]) for i in range(25)])
    profiles = [p for p, _ in store.iter_profiles(batch=4)]
    assert [p.properties["i"] for p in profiles] == [[i] for i in range(25)]
    with pytest.raises(ValueError, match="batch"):
        store.iter_profiles(batch=0)


def test_a_scan_sees_the_store_as_it_was_when_it_started(filled: ProfileStore) -> None:
    scan = filled.iter_profiles(batch=1)
    first, _ = next(scan)
    put(filled, "e", country="NL")
    put(filled, "b", points=1)
    with filled.transaction() as tx:  # writing while a scan is open is fine
        tx.apply(ProfileWrite("d", [("x", "set", 1)]))
    rest = [p.id for p, _ in scan]
    assert [first.id, *rest] == ["b", "c", "d", "a"]
    assert _ids(filled, since_seq=5) == ["e", "b", "d"]


def test_an_abandoned_scan_releases_its_connection(filled: ProfileStore) -> None:
    scan = filled.iter_profiles()
    next(scan)
    scan.close()
    put(filled, "z")
    assert filled.count() == 5


def test_count(filled: ProfileStore) -> None:
    assert filled.count() == 4
    assert filled.count(NL) == 2
    assert filled.count(BIG) == 2
    assert filled.get("nope") is None


@pytest.mark.parametrize(("since", "until", "everyone", "nl"),
                         [(0, None, 4, 2), (2, None, 3, 2), (2, 4, 2, 1), (4, 4, 0, 0),
                          (5, None, 0, 0), (0, 3, 2, 1)])
def test_count_a_change_range(filled: ProfileStore, since: int, until: int | None,
                              everyone: int, nl: int) -> None:
    assert filled.count(since_seq=since, until_seq=until) == everyone
    assert filled.count(NL, since_seq=since, until_seq=until) == nl
