"""Writes: outcomes, the change sequence, batches, transactions, lookups."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC
from pathlib import Path

import pytest
from store_helpers import put

from bctui.errors import BctuiError
from bctui.store import ProfileStore, ProfileWrite, Rule, SegmentDef, Store


def test_create_then_update_then_unchanged(store: ProfileStore) -> None:
    created = put(store, "p1", email="a@x.com", points=5)
    assert (created.outcome, created.profile_id, created.seq) == ("created", "p1", 1)
    first = store.get("p1")
    assert first is not None
    assert first.properties == {"email": ["a@x.com"], "points": [5]}
    assert first.permission_level == "ANONYMOUS"
    assert first.interactions_viewed == []
    assert first.created_at == first.updated_at
    assert first.created_at.tzinfo is UTC

    updated = put(store, "p1", points=6)
    assert (updated.outcome, updated.seq) == ("updated", 2)
    second = store.get("p1")
    assert second is not None and second.properties["points"] == [6]
    assert second.updated_at > first.updated_at and second.created_at == first.created_at

    unchanged = put(store, "p1", points=6, email="a@x.com", name=None, tags=[])
    assert (unchanged.outcome, unchanged.seq) == ("unchanged", 2)
    third = store.get("p1")
    assert third == second  # seq and updated_at left alone
    assert store.max_seq() == 2


@pytest.mark.parametrize(
    ("write", "changes"),
    [
        (ProfileWrite("p1", permission_level="PERSONAL"), True),
        (ProfileWrite("p1", permission_level="ANONYMOUS"), False),
        (ProfileWrite("p1", interactions_viewed=["i2"]), True),
        (ProfileWrite("p1", interactions_viewed=["i1"]), False),
        (ProfileWrite("p1", [("tags", "add", ["b", "a"])]), False),
        (ProfileWrite("p1", [("tags", "add", "c")]), True),
        (ProfileWrite("p1", [("tags", "set", ["b", "a"])]), True),  # order is part of the value
        (ProfileWrite("p1", [("n", "set", 1.0)]), True),  # 1 becomes 1.0: stored differently
        (ProfileWrite("p1", [("n", "set", "1")]), True),
        (ProfileWrite("p1", [("n", "set_if_empty", 7)]), False),
        (ProfileWrite("p1", [("n", "sum", 0)]), False),
        (ProfileWrite("p1", [("n", "clear", None)]), True),
        (ProfileWrite("p1", [("gone", "clear", None)]), False),
    ],
)
def test_only_real_changes_bump_the_sequence(store: ProfileStore, write: ProfileWrite,
                                             changes: bool) -> None:
    put(store, "p1", tags=["a", "b"], n=1, interactions=("i1",))
    before = store.get("p1")
    with store.transaction() as tx:
        result = tx.apply(write)
    after = store.get("p1")
    assert before is not None and after is not None
    assert result.outcome == ("updated" if changes else "unchanged")
    if changes:
        assert after.seq == store.max_seq() > before.seq
        assert after.updated_at > before.updated_at
    else:
        assert after == before


def test_values_keep_their_types_and_order(store: ProfileStore) -> None:
    put(store, "p1", a=[12, "12", 1.5, "1.5", -0.25, 2**63 - 1], b="Zoë 東京 🚀", c={"k": [1]},
        d=True)
    profile = store.get("p1")
    assert profile is not None
    assert profile.properties == {"a": [12, "12", 1.5, "1.5", -0.25, 2**63 - 1],
                                  "b": ["Zoë 東京 🚀"], "c": ['{"k":[1]}'], "d": ["true"]}
    assert [type(v) for v in profile.properties["a"]] == [int, str, float, str, float, int]


def test_sequence_strictly_increases_across_transactions_and_stores(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with ProfileStore(path) as one, ProfileStore(path) as two:
        seqs = []
        for i in range(6):
            target = one if i % 2 else two
            seqs.append(put(target, f"p{i}", n=i).seq or 0)
            seqs.append(put(target, f"p{i}", n=i + 100).seq or 0)
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert one.max_seq() == two.max_seq() == seqs[-1]
        with one.transaction() as tx:
            results = tx.apply_many([ProfileWrite(f"q{i}") for i in range(5)])
        assert [r.seq for r in results] == list(range(seqs[-1] + 1, seqs[-1] + 6))
        assert two.get("q4") is not None


def test_concurrent_writers_on_one_file_never_share_a_sequence_number(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    ProfileStore(path).close()
    seqs: list[int] = []
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            with ProfileStore(path) as store:
                for i in range(60):
                    with store.transaction() as tx:
                        results = tx.apply_many([ProfileWrite(f"{name}-{i}-{j}") for j in range(3)])
                    seqs.extend(r.seq or 0 for r in results)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(seqs) == list(range(1, 361))
    with ProfileStore(path) as store:
        assert store.count() == 360
        assert store.max_seq() == 360
        assert [p.seq for p, _ in store.iter_profiles()] == list(range(1, 361))


def test_a_failed_transaction_leaves_nothing(store: ProfileStore) -> None:
    store.migrate("test", [["CREATE TABLE applied (name TEXT PRIMARY KEY)"]])
    put(store, "p1", n=1)
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as tx:
        tx.apply(ProfileWrite("p1", [("n", "set", 2)]))
        tx.apply(ProfileWrite("p2", [("n", "set", 3)]))
        tx.execute("INSERT INTO applied VALUES (?)", ("file-1",))
        raise RuntimeError("boom")
    assert store.count() == 1
    assert store.max_seq() == 1
    profile = store.get("p1")
    assert profile is not None and profile.properties == {"n": [1]}
    assert store.find("n", 2) == []
    assert store.query("SELECT count(*) FROM applied").fetchone()[0] == 0
    with pytest.raises(RuntimeError, match="already committed"):
        tx.apply(ProfileWrite("p3"))


def test_callers_rows_commit_with_the_profile_writes(store: ProfileStore) -> None:
    store.migrate("test", [["CREATE TABLE applied (name TEXT PRIMARY KEY)"]])
    with store.transaction() as tx:
        tx.apply(ProfileWrite("p1", [("n", "set", 1)]))
        tx.execute("INSERT INTO applied VALUES (?)", ("file-1",))
        tx.executemany("INSERT INTO applied VALUES (?)", [("file-2",), ("file-3",)])
    assert store.query("SELECT count(*) FROM applied").fetchone()[0] == 3
    assert store.get("p1") is not None


def test_transactions_do_not_nest(store: ProfileStore) -> None:
    with store.transaction(), pytest.raises(RuntimeError, match="already open"), \
            store.transaction():
        pass


def test_a_busy_store_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    with ProfileStore(path) as holder, ProfileStore(path, busy_timeout=0.05) as waiter:
        with holder.transaction(), pytest.raises(BctuiError) as caught, waiter.transaction():
            pass
        assert "busy" in caught.value.message
        assert "wait for it to finish" in caught.value.fix
        assert caught.value.where == str(path)
        put(waiter, "p1")  # free again once the holder commits


def test_merge_errors_fail_the_record_only(store: ProfileStore) -> None:
    put(store, "p1", points=1, name="old")
    with store.transaction() as tx:
        results = tx.apply_many([
            ProfileWrite("p1", [("name", "set", "new"), ("points", "sum", "lots")]),
            ProfileWrite("p2", [("points", "sum", "x"), ("size", "sum", [1, "y"])]),
            ProfileWrite("p3", [("points", "sum", "2")]),
        ])
    assert [r.outcome for r in results] == ["failed", "failed", "created"]
    assert results[0].profile_id == "p1" and results[1].profile_id is None
    message = str(results[0].errors[0])
    assert "'lots'" in message and 'property "points"' in message
    assert len(results[1].errors) == 2
    profile = store.get("p1")
    assert profile is not None and profile.properties == {"name": ["old"], "points": [1]}
    assert store.get("p2") is None
    assert store.max_seq() == 2


def test_a_write_can_match_by_identifiers(store: ProfileStore) -> None:
    put(store, "old", email="a@x.com", phone="1")
    put(store, "new", email="a@x.com", phone="2")
    put(store, "other", email="b@x.com", phone="2")
    with store.transaction() as tx:
        both = tx.apply(ProfileWrite(match=[[("email", "a@x.com"), ("phone", "2")]],
                                     updates=[("hit", "set", 1)]))
        oldest = tx.apply(ProfileWrite(match=[[("email", "a@x.com")]],
                                       updates=[("hit", "add", 2)]))
        second_group = tx.apply(ProfileWrite(match=[[("email", "zz")], [("phone", "1")]],
                                             updates=[("hit", "add", 3)]))
        skipped = tx.apply(ProfileWrite(match=[[("email", "none@x.com")]], create=False))
        created = tx.apply(ProfileWrite(match=[[("email", "none@x.com")]]))
    assert (both.profile_id, both.ambiguous) == ("new", False)
    assert (oldest.profile_id, oldest.ambiguous) == ("old", True)
    assert (second_group.profile_id, second_group.ambiguous) == ("old", False)
    assert (skipped.outcome, skipped.profile_id) == ("skipped", None)
    assert created.outcome == "created" and created.profile_id not in ("old", "new", "other")
    old = store.get("old")
    assert old is not None and old.properties["hit"] == [2, 3]


def test_a_batch_behaves_like_writes_one_after_another(store: ProfileStore) -> None:
    put(store, "p1", email="a@x.com", points=10)
    by_email = [[("email", "new@x.com")]]
    with store.transaction() as tx:
        results = tx.apply_many([
            ProfileWrite(match=by_email, updates=[("email", "set", "new@x.com"),
                                                  ("points", "sum", 1)]),
            ProfileWrite(match=by_email, updates=[("points", "sum", 2)]),
            ProfileWrite(match=[[("email", "a@x.com")]], updates=[("email", "set", "b@x.com")]),
            ProfileWrite(match=[[("email", "b@x.com")]], updates=[("points", "sum", 5)]),
            ProfileWrite(match=[[("email", "a@x.com")]], updates=[("points", "sum", 100)]),
            ProfileWrite("fixed", [("points", "sum", 1)]),
            ProfileWrite("fixed", [("points", "sum", 1)]),
            ProfileWrite("fixed", [("points", "sum", 0)]),
        ])
    assert [r.outcome for r in results] == [
        "created", "updated", "updated", "updated", "created", "created", "updated", "unchanged"]
    assert results[0].profile_id == results[1].profile_id
    assert results[2].profile_id == results[3].profile_id == "p1"
    assert len({r.profile_id for r in results}) == 4
    seqs = [r.seq or 0 for r in results]
    assert seqs[-1] == seqs[-2] and seqs[:-1] == sorted(seqs[:-1])
    assert store.find("email", "new@x.com") == [results[0].profile_id]
    fresh = store.get(results[0].profile_id or "")
    assert fresh is not None and fresh.properties["points"] == [3]
    p1 = store.get("p1")
    assert p1 is not None and p1.properties == {"email": ["b@x.com"], "points": [15]}
    fixed = store.get("fixed")
    assert fixed is not None and fixed.properties == {"points": [2]} and fixed.seq == seqs[-1]
    nobody = store.get(results[4].profile_id or "")  # matching does not set the identifier
    assert nobody is not None and nobody.properties == {"points": [100]}
    assert store.find("email", "a@x.com") == []


def test_find_is_numeric_aware_and_oldest_first(store: ProfileStore) -> None:
    put(store, "text", code="5")
    put(store, "int", code=5)
    put(store, "float", code=[5.0, "5.0"])
    put(store, "other", code=["6", "x"])
    assert store.find("code", 5) == ["text", "int", "float"]
    assert store.find("code", 5.0) == ["text", "int", "float"]
    assert store.find("code", "5") == ["text"]
    assert store.find("code", "x") == ["other"]
    assert store.find("code", "nope") == []
    assert store.find("nothing", 5) == []
    assert store.find_many("code", ["5", 6, "x", "nope", ""]) == {
        "5": ["text"], 6: ["other"], "x": ["other"]}


def test_a_changed_value_moves_in_the_index(store: ProfileStore) -> None:
    put(store, "p1", code=[1, "a"])
    put(store, "p1", code=[1.0, "b"])
    assert store.find("code", 1) == ["p1"]
    assert store.find("code", "a") == []
    assert store.find("code", "b") == ["p1"]
    put(store, "p1", code=None, strategy="clear")
    assert store.find("code", 1) == [] and store.find("code", "b") == []
    numbers = SegmentDef("n", "all", (Rule("code", "exists"),))
    assert store.count(numbers) == 0


def test_permission_levels_are_validated(store: ProfileStore) -> None:
    with pytest.raises(ValueError, match="DO_NOT_TRACK, ANONYMOUS, PERSONAL"):
        ProfileWrite("p1", permission_level="personal")
    put(store, "p1", level="DO_NOT_TRACK")
    profile = store.get("p1")
    assert profile is not None and profile.permission_level == "DO_NOT_TRACK"


def test_unknown_strategy_aborts_the_transaction(store: ProfileStore) -> None:
    with pytest.raises(ValueError, match="unknown merge strategy"), store.transaction() as tx:
        tx.apply_many([ProfileWrite("p1"), ProfileWrite("p2", [("a", "replace", 1)])])
    assert store.count() == 0


WEIRD = ["tab\tand\nnewline", 'quote " and \\ backslash', "\u2028 \u2029",
         "emoji 🚀 and 東京", "\x7f\x1b[31m", " 12 ", "0012", "1e3", "-.5", "é" * 300]


def test_any_text_is_indexed_exactly_and_leaves_the_index_exactly(store: ProfileStore) -> None:
    put(store, "p1", weird=WEIRD)
    profile = store.get("p1")
    assert profile is not None and profile.properties["weird"] == WEIRD
    for value in WEIRD:
        assert store.find("weird", value) == ["p1"], value
    assert store.find("weird", 12) == ["p1"]  # " 12 " and "0012" read as 12
    assert store.find("weird", 1000) == ["p1"]
    assert store.find("weird", -0.5) == ["p1"]
    put(store, "p1", weird=WEIRD[:2], strategy="set")
    for value in WEIRD[2:]:
        assert store.find("weird", value) == [], value
    assert store.find("weird", 12) == []
    assert _index_rows(store) in (2, None)
    put(store, "p1", weird=None, strategy="clear")
    assert _index_rows(store) in (0, None)


def test_numbers_are_indexed_exactly(store: ProfileStore) -> None:
    floats = [0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, -2.5, 1 / 3]
    put(store, "p1", f=floats, i=[2**63 - 1, -(2**63), 0])
    for value in [*floats, 2**63 - 1, -(2**63), 0]:
        assert store.find("f" if isinstance(value, float) else "i", value) == ["p1"], value
    put(store, "p1", f=[], i=[], strategy="clear")
    assert _index_rows(store) in (0, None)


def _index_rows(store: Store) -> int | None:
    """The rows of SQLite's value index (PostgreSQL has none: a GIN index does its work)."""
    if store.dialect != "sqlite":
        return None
    return int(store.query("SELECT count(*) FROM prop").fetchone()[0])


def test_nul_characters_are_refused(store: ProfileStore) -> None:
    with store.transaction() as tx:
        results = tx.apply_many([ProfileWrite("p1", [("a", "set", "x\x00y")]),
                                 ProfileWrite("p2", [("a\x00b", "set", "x")]),
                                 ProfileWrite("p3", [("a", "add", ["ok", "x\x00"])])])
    assert [r.outcome for r in results] == ["failed"] * 3
    assert "NUL" in str(results[0].errors[0]) and "NUL" in str(results[1].errors[0])
    with pytest.raises(ValueError, match="NUL"):
        ProfileWrite("id\x00")
    assert store.count() == 0


def test_new_profiles_get_time_ordered_uuids(store: ProfileStore) -> None:
    with store.transaction() as tx:
        results = tx.apply_many([ProfileWrite() for _ in range(50)])
    ids = [r.profile_id or "" for r in results]
    assert len(set(ids)) == 50
    for profile_id in ids:
        parsed = uuid.UUID(profile_id)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert str(parsed) == profile_id
    stamps = [uuid.UUID(i).int >> 80 for i in ids]
    assert stamps == sorted(stamps)
    assert abs(stamps[0] - time.time() * 1000) < 60_000
