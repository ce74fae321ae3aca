"""Loading JSON lines and CSV, bad lines, matching, and the dump round trip."""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from store_helpers import put

from bctui.errors import BctuiError, InputError
from bctui.store import (
    LoadReport,
    ProfileStore,
    ProfileWrite,
    Rule,
    SegmentDef,
    Store,
    iter_dump,
    load_file,
)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _only(store: ProfileStore, prop: str, value: Any) -> dict[str, Any]:
    ids = store.find(prop, value)
    assert len(ids) == 1, ids
    profile = store.get(ids[0])
    assert profile is not None
    return {"properties": profile.properties, "level": profile.permission_level,
            "interactions": profile.interactions_viewed}


def test_json_lines(store: ProfileStore, tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", "\n".join([
        '{"email": "a@x.com", "name": "Ann", "points": 5, "tags": ["a", "b"], "vip": true}',
        '{"email": "b@x.com", "_permission_level": "personal", "_interactions_viewed": "i1"}',
        "",
        '  {"email": "c@x.com", "nested": {"b": 1, "a": 2}, "none": null, "blank": ""}  ',
    ]) + "\n")
    report = load_file(store, source)
    assert (report.lines, report.created, report.rejected) == (3, 3, 0)
    assert _only(store, "email", "a@x.com")["properties"] == {
        "email": ["a@x.com"], "name": ["Ann"], "points": [5], "tags": ["a", "b"],
        "vip": ["true"]}
    assert _only(store, "email", "b@x.com")["level"] == "PERSONAL"
    assert _only(store, "email", "b@x.com")["interactions"] == ["i1"]
    assert _only(store, "email", "c@x.com")["properties"] == {
        "email": ["c@x.com"], "nested": ['{"a":2,"b":1}']}


def test_bad_lines_are_reported_with_their_line_number_and_the_rest_loads(
        store: ProfileStore, tmp_path: Path) -> None:
    lines = [
        '{"email": "a@x.com", "points": 1}',  # 1
        '{"email": "b@x.com", "points": ',  # 2: truncated
        "[1, 2]",  # 3
        '{"email": "c@x.com", "_permission_level": "ROOT"}',  # 4
        "",  # 5
        '{"email": "d@x.com", "points": "many"}',  # 6: not a number for sum
        '{"email": "e@x.com", "_permision_level": "PERSONAL"}',  # 7: misspelt reserved key
        '{"email": "f@x.com", "points": 2}',  # 8
        '{"_id": 12}',  # 9
        '"just a string"',  # 10
        '{"email": "a@x.com", "points": 10}',  # 11
        '{"": 1}',  # 12
        '{"email": "g@x.com", "_interactions_viewed": [1]}',  # 13
        '{"email": "h@x.com", "points": 1e999}',  # 14
    ]
    source = _write(tmp_path / "in.jsonl", "\n".join(lines) + "\n")
    report = load_file(store, source, match="email", strategy="sum", batch_size=3)
    reasons = dict(report.errors)
    assert sorted(reasons) == [2, 3, 4, 6, 7, 9, 10, 12, 13, 14]
    assert "invalid JSON" in reasons[2]
    assert reasons[3] == "expected a JSON object, found an array"
    assert "ROOT" in reasons[4] and "PERSONAL" in reasons[4]
    assert "'many'" in reasons[6] and "sum" in reasons[6] and "points" in reasons[6]
    assert '"_permision_level"' in reasons[7]
    assert '"_id"' in reasons[9]
    assert reasons[10] == "expected a JSON object, found a string"
    assert "empty" in reasons[12]
    assert "interaction" in reasons[13]
    assert (report.lines, report.created, report.updated, report.rejected) == (13, 2, 1, 10)
    assert _only(store, "email", "a@x.com")["properties"]["points"] == [11]
    assert _only(store, "email", "f@x.com")["properties"]["points"] == [2]
    assert store.find("email", "d@x.com") == []


def test_matching(store: ProfileStore, tmp_path: Path) -> None:
    put(store, "old", email="dup@x.com")
    put(store, "new", email="dup@x.com")
    put(store, "known", email="k@x.com")
    source = _write(tmp_path / "in.jsonl", "\n".join([
        '{"email": "dup@x.com", "n": 1}',  # two profiles have it: the oldest, counted
        '{"email": "k@x.com", "n": 2}',
        '{"email": "fresh@x.com", "n": 3}',
        '{"email": "fresh@x.com", "m": 4}',  # the profile the line before created
        '{"_id": "known", "n": 5}',
        '{"_id": "given-id", "email": "k@x.com", "n": 6}',  # _id wins over match
        '{"n": 7}',  # nothing to match on: a new profile
        '{"email": ["zz@x.com", "k@x.com"], "o": 8}',  # first value that matches; 2 have it
    ]) + "\n")
    report = load_file(store, source, match="email")
    assert (report.created, report.updated, report.ambiguous) == (3, 5, 2)
    old = store.get("old")
    assert old is not None and old.properties["n"] == [1]
    known = store.get("known")
    assert known is not None and known.properties == {"email": ["zz@x.com", "k@x.com"],
                                                      "n": [5], "o": [8]}
    given = store.get("given-id")
    assert given is not None and given.properties["n"] == [6]
    assert _only(store, "email", "fresh@x.com")["properties"] == {
        "email": ["fresh@x.com"], "n": [3], "m": [4]}
    assert store.count() == 6


def test_csv(store: ProfileStore, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(
        "\ufeffemail,tag,tag,points,_permission_level,_interactions_viewed,city\r\n"
        "a@x.com,x,y,5,PERSONAL,i1,Zürich\r\n"
        "b@x.com,,z,,,,\r\n"
        "c@x.com,too,few\r\n"
        '"d@x.com","multi\nline",w,1,,,\r\n'
        "e@x.com,,,12,ANON,,\r\n"
        "\r\n"
        "f@x.com,,,7,,,\r\n".encode()
    )
    report = load_file(store, source, match="email")
    assert report.errors == [
        (4, "expected 7 cells (one per header column), found 3"),
        (7, "\"_permission_level\" is 'ANON'; use one of DO_NOT_TRACK, ANONYMOUS, PERSONAL"),
    ]
    assert (report.lines, report.created, report.rejected) == (6, 4, 2)
    a = _only(store, "email", "a@x.com")
    assert a == {"properties": {"city": ["Zürich"], "email": ["a@x.com"], "points": ["5"],
                                "tag": ["x", "y"]},
                 "level": "PERSONAL", "interactions": ["i1"]}
    assert _only(store, "email", "b@x.com")["properties"] == {"email": ["b@x.com"], "tag": ["z"]}
    assert _only(store, "email", "d@x.com")["properties"]["tag"] == ["multi\nline", "w"]
    assert store.find("points", 7) == store.find("email", "f@x.com")  # "7" reads as a number


def test_csv_bad_utf8_and_headerless_cells(store: ProfileStore, tmp_path: Path) -> None:
    source = tmp_path / "data.txt"  # no .csv: sniffed
    source.write_bytes(b"email,name,\na@x.com,Ann,\nb@x.com,B\xff\xfeb,\nc@x.com,Cy,oops\n"
                       b"d@x.com,Di,\n")
    report = load_file(store, source)
    assert report.errors == [(3, "the line is not valid UTF-8"),
                             (4, 'a value ("oops") is in a column with no header')]
    assert report.created == 2


def test_csv_with_an_unknown_reserved_column_is_refused(store: ProfileStore,
                                                        tmp_path: Path) -> None:
    source = _write(tmp_path / "in.csv", "\n\nemail,_segment\na@x.com,vip\n")
    with pytest.raises(InputError) as caught:
        load_file(store, source)
    assert caught.value.where == f"{source}:3"
    assert '"_segment"' in caught.value.message
    assert store.count() == 0


def test_files_that_cannot_be_read(store: ProfileStore, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_file(store, tmp_path / "missing.jsonl")
    assert caught.value.where == str(tmp_path / "missing.jsonl")
    assert "No such file" in caught.value.message
    with pytest.raises(InputError):
        load_file(store, tmp_path)
    array = _write(tmp_path / "array.json", '[{"a": 1}]')
    with pytest.raises(InputError, match="JSON array"):
        load_file(store, array)
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(InputError) as caught:
        load_file(store, broken)
    assert caught.value.where == str(broken)


def test_gzip_and_empty_files(store: ProfileStore, tmp_path: Path) -> None:
    packed = tmp_path / "in.csv.gz"
    packed.write_bytes(gzip.compress(b"email\na@x.com\n"))
    assert load_file(store, packed).created == 1
    empty = _write(tmp_path / "empty.jsonl", "\n\n")
    report = load_file(store, empty)
    assert report == LoadReport(elapsed=report.elapsed)


def test_stdin(store: ProfileStore, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b'{"email": "a@x.com"}\n{"email": "b@x.com"}\n'))
    monkeypatch.setattr(sys, "stdin", stdin)
    report = load_file(store, "-", match="email")
    assert report.created == 2


def test_errors_kept_are_capped(store: ProfileStore, tmp_path: Path) -> None:
    source = _write(tmp_path / "bad.jsonl", "nope\n" * 1005 + '{"a": 1}\n')
    report = load_file(store, source)
    assert (report.rejected, len(report.errors), report.errors_omitted) == (1005, 1000, 5)
    assert report.errors[-1][0] == 1000
    assert report.created == 1
    data = report.as_dict()
    assert data["errors"][0] == {"line": 1, "reason": data["errors"][0]["reason"]}
    assert data["rejected"] == 1005


def test_argument_checks(store: ProfileStore, tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", '{"a": 1}\n')
    with pytest.raises(BctuiError, match="unknown merge strategy"):
        load_file(store, source, strategy="merge")
    with pytest.raises(BctuiError, match="cannot match"):
        load_file(store, source, match="_id")


def test_progress_is_reported(store: ProfileStore, tmp_path: Path) -> None:
    source = _write(tmp_path / "in.jsonl", "".join(f'{{"n": {i}}}\n' for i in range(10)))
    seen: list[int] = []
    load_file(store, source, batch_size=4, progress=lambda r: seen.append(r.created))
    assert seen and seen[-1] == 10


def _variety(store: ProfileStore) -> None:
    with store.transaction() as tx:
        tx.apply_many([
            ProfileWrite("p-numbers", [("n", "set", [12, "12", 1.5, "1.5", 0.1 + 0.2, -7]),
                                       ("big", "set", 2**63 - 1)], "PERSONAL", ["i1", "i2"]),
            ProfileWrite("p-text", [("name", "set", "Zoë 東京 🚀 \"quoted\" \\ back"),
                                    ("obj", "set", {"k": [1, None]}),
                                    ("bool", "set", True)], "DO_NOT_TRACK"),
            ProfileWrite("p-empty"),
            ProfileWrite("p-multi", [("tags", "set", ["b", "a", "c"]), ("date", "set",
                                                                        "2024-02-29")]),
        ])


def test_dump_then_load_round_trips(store: ProfileStore, tmp_path: Path) -> None:
    _variety(store)
    segments = [SegmentDef("twelve", "all", (Rule("n", "eq", 12),)),
                SegmentDef("tagged", "any", (Rule("tags", "exists"), Rule("bool", "eq", True)))]
    dumped = list(iter_dump(store, segments))
    assert dumped[0] == {
        "id": "p-numbers",
        "properties": {"big": [2**63 - 1], "n": [12, "12", 1.5, "1.5", 0.1 + 0.2, -7]},
        "permission_level": "PERSONAL", "interactions_viewed": ["i1", "i2"],
        "segments": ["twelve"]}
    dump_file = tmp_path / "dump.jsonl"
    dump_file.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in dumped))

    with ProfileStore(tmp_path / "fresh.db") as fresh:
        report = load_file(fresh, dump_file)
        assert (report.created, report.rejected) == (4, 0)
        again = list(iter_dump(fresh, segments))
        assert orjson.dumps(again) == orjson.dumps(dumped)
        assert again == dumped
        report = load_file(fresh, dump_file)
        assert report.unchanged == 4
        assert list(iter_dump(fresh, segments, segment=segments[1])) == dumped[1:2] + dumped[3:]


def test_dump_lines_with_extra_keys_are_rejected(store: ProfileStore, tmp_path: Path) -> None:
    source = _write(tmp_path / "d.jsonl",
                    '{"id": "x", "properties": {}, "created_at": "2024"}\n'
                    '{"id": "", "properties": {}}\n'
                    '{"id": "y", "properties": {"a": [1]}, "permission_level": "nope"}\n')
    report = load_file(store, source)
    reasons = dict(report.errors)
    assert '"created_at"' in reasons[1]
    assert '"id" is empty' in reasons[2]
    assert "nope" in reasons[3]
    assert store.count() == 0


def _state(store: ProfileStore) -> list[tuple[Any, ...]]:
    """Every profile's content, ids of generated profiles left out (they are random)."""
    rows = store.query("SELECT id, properties, permission_level, interactions_viewed, seq"
                       " FROM profile ORDER BY pid").fetchall()
    return [(pid if pid[8:9] != "-" else None, props, level, seen, seq)
            for pid, props, level, seen, seq in rows]


@pytest.mark.parametrize("indexed", [(), ("tags", "points")])
@pytest.mark.parametrize("strategy", ["set", "add", "sum", "set_if_empty", "clear"])
def test_a_second_reading_process_loads_exactly_what_one_process_does(
        tmp_path: Path, strategy: str, indexed: tuple[str, ...]) -> None:
    lines = [
        '{"email": "n@x.com", "points": 1, "tags": ["t"]}',
        '{"email": "n@x.com", "points": 2, "tags": ["u"]}',  # the same new profile, same batch
        '{"email": "a@x.com", "points": 1, "tags": ["x", "x", "y"], "vip": true}',
        '{"email": "b@x.com", "points": ',  # truncated
        "[1, 2]",
        '{"email": "c@x.com", "_permission_level": "ROOT"}',
        "",
        '{"email": "d@x.com", "points": "many", "f": 1.5, "n": null, "o": {"b": 1, "a": 2}}',
        '{"email": "a@x.com", "points": 10, "tags": "z"}',  # the same profile, same batch
        '{"email": "e@x.com", "_permision_level": "PERSONAL"}',
        '{"_id": "p-1", "points": 2, "_interactions_viewed": ["i1", "i1", "i2"]}',
        '{"_id": "p-1", "points": 3}',
        '{"email": "f@x.com", "na\\u0000me": 1}',  # a NUL in a name
        '{"email": "g@x.com", "v": "a\\u0000b"}',  # a NUL in a value
        '{"email": "h@x.com", "points": 1e999}',
        '{"email": ["i@x.com", "j@x.com"], "points": 4, "_permission_level": "personal"}',
        '{"email": "j@x.com", "points": 5}',
        '{"email": "", "points": 6}',
        '{"id": "p-2", "properties": {"points": [7], "tags": ["q"]},'
        ' "permission_level": "PERSONAL", "interactions_viewed": ["i3"]}',
        '{"id": "p-2", "properties": {"points": [8]}}',
        '{"": 1}',
        *[f'{{"email": "k{i % 7}@x.com", "points": {i}, "big": {2**63}}}' for i in range(3)],
        *[f'{{"email": "m{i % 9}@x.com", "points": {i}}}' for i in range(40)],
    ]
    source = _write(tmp_path / "in.jsonl", "\n".join(lines) + "\n")
    reports, states = [], []
    for parallel in (False, True):
        with ProfileStore(tmp_path / f"{parallel}.db") as store:
            put(store, email="a@x.com", points=100)  # an existing profile
            store.index_properties(indexed)
            for _ in range(2):  # into the store, then again over what it loaded
                report = load_file(store, source, match="email", strategy=strategy,
                                   batch_size=4, parallel=parallel)
                reports.append({**report.as_dict(), "elapsed": 0})
            states.append(_state(store))
    assert reports[0]["created"] > 0 and reports[0]["rejected"] > 0
    assert reports[:2] == reports[2:]
    assert states[0] == states[1]
    assert _index(tmp_path / "True.db") == _index(tmp_path / "False.db")


def _index(path: Path) -> list[tuple[Any, ...]]:
    with ProfileStore(path) as store:
        return [*store.query("SELECT p.id LIKE '%-%-%', v.name, v.value, v.num"
                             " FROM prop v JOIN profile p USING (pid) ORDER BY p.pid, v.name,"
                             " v.value").fetchall(),
                *store.query("SELECT * FROM prop_name ORDER BY name").fetchall()]


def test_a_read_error_in_the_reading_process_is_reported(
        store: ProfileStore, tmp_path: Path) -> None:
    packed = tmp_path / "in.jsonl.gz"
    whole = gzip.compress(b"".join(b'{"email": "a%d@x.com"}\n' % i for i in range(5000)))
    packed.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InputError, match="cannot read past line"):
        load_file(store, packed, parallel=True)


@pytest.mark.parametrize("strategy", ["set", "sum"])
def test_a_reading_process_loads_exactly_alike_on_each_backend(
        new_store: Callable[[], Store], tmp_path: Path, strategy: str) -> None:
    lines = [f'{{"email": "m{i % 9}@x.com", "points": {i}, "_interactions_viewed": ["i{i % 3}"]}}'
             for i in range(60)]
    source = _write(tmp_path / "in.jsonl", "\n".join(lines) + "\n")
    states = []
    for parallel in (False, True):
        store = new_store()
        put(store, email="m1@x.com", points=100)
        report = load_file(store, source, match="email", strategy=strategy, batch_size=7,
                           parallel=parallel)
        assert (report.created, report.updated) == (8, 52), report.as_dict()
        states.append(sorted((props, level, seen) for _, props, level, seen, _ in _state(store)))
    assert states[0] == states[1]
