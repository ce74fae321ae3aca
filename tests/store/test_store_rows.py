"""The exporter's raw row pages, and callers' own tables and SQL, alike on both backends."""

from __future__ import annotations

import orjson
from store_helpers import put

from bctui.store import ProfileWrite, Rule, SegmentDef, Store
from bctui.store.rows import ROW_WIDTH, Joined, row_pages

NL = SegmentDef("nl", "all", (Rule("country", "eq", "NL"),))
BIG = SegmentDef("big", "all", (Rule("points", "gte", 100),))
EVERYONE = SegmentDef("all", "all", ())

# A caller's table, written once: portable DDL (BLOB, REAL, INTEGER, WITHOUT ROWID), and one
# statement per dialect where they differ.
SENT_MIGRATIONS = (
    ("""CREATE TABLE sent (
        goal TEXT NOT NULL,
        profile_id TEXT NOT NULL,
        attrs BLOB NOT NULL,
        at REAL,
        n INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (goal, profile_id)
    ) WITHOUT ROWID""",),
    ({"sqlite": "CREATE INDEX sent_at ON sent (at)",
      "postgresql": "CREATE INDEX sent_at ON sent USING brin (at)"},
     {"postgresql": "COMMENT ON TABLE sent IS 'what was sent'"}),
)


def _fill(store: Store) -> None:
    put(store, "a", country="NL", points=5, level="DO_NOT_TRACK")  # seq 1
    put(store, "b", country="DE", points=500)  # seq 2
    put(store, "c", country=["NL", "BE"], points="150", level="PERSONAL")  # seq 3
    put(store, "d", country="NL", interactions=("i1",))  # seq 4


def _rows(store: Store, **kwargs: object) -> list[tuple[object, ...]]:
    segment = kwargs.pop("segment", EVERYONE)
    return [row for page in row_pages(store, segment=segment, **kwargs)  # type: ignore[arg-type]
            for row in page]


def test_pages_of_a_segments_changes_in_order(store: Store) -> None:
    _fill(store)
    rows = _rows(store, segment=NL)
    assert [(r[0], r[4]) for r in rows] == [("a", 1), ("c", 3), ("d", 4)]
    _pid, props, level, viewed, _seq = rows[2][:ROW_WIDTH]
    assert orjson.loads(props) == {"country": ["NL"]}
    assert (level, orjson.loads(viewed)) == (1, ["i1"])
    assert [r[0] for r in _rows(store, segment=NL, since_seq=1, until_seq=3)] == ["c"]
    assert [r[0] for r in _rows(store, segment=NL, min_permission="ANONYMOUS")] == ["c", "d"]
    assert [r[0] for r in _rows(store, segment=NL, only_ids=["d", "b", "a"])] == ["a", "d"]
    pages = list(row_pages(store, segment=EVERYONE, page=3))
    assert [len(p) for p in pages] == [3, 1]


def test_segment_flags_and_joined_columns(store: Store) -> None:
    _fill(store)
    store.migrate("caller", SENT_MIGRATIONS)
    with store.transaction() as tx:
        tx.executemany("INSERT INTO sent (goal, profile_id, attrs, at) VALUES (?, ?, ?, ?)",
                       [("g", "a", b"\x00{a}", 1.5), ("g", "c", b"{c}", None),
                        ("other", "b", b"{b}", 2.0)])
    joined = Joined("LEFT JOIN sent s ON s.goal = ? AND s.profile_id = p.id", "s.attrs, s.at",
                    ("g",))
    rows = _rows(store, segments_of=[NL, BIG], joined=joined)
    flags = {r[0]: r[ROW_WIDTH:] for r in rows}
    assert flags == {"a": (b"\x00{a}", 1.5, 1, 0), "b": (None, None, 0, 1),
                     "c": (b"{c}", None, 1, 1), "d": (None, None, 1, 0)}
    assert all(type(r[ROW_WIDTH]) in (bytes, type(None)) for r in rows)


def test_a_page_scan_reads_one_snapshot(store: Store) -> None:
    _fill(store)
    pages = row_pages(store, segment=EVERYONE, page=2)
    first = next(pages)
    put(store, "e", country="NL")
    put(store, "a", points=7)
    rest = [r for page in pages for r in page]
    assert [r[0] for r in [*first, *rest]] == ["a", "b", "c", "d"]


def test_callers_sql_placeholders_percent_signs_and_blobs(store: Store) -> None:
    store.migrate("caller", SENT_MIGRATIONS)
    with store.transaction() as tx:
        cursor = tx.execute("INSERT INTO sent (goal, profile_id, attrs, n) VALUES (?, ?, ?, ?)",
                            ("50% off", "it's", bytes(range(256)), 2**62))
        assert cursor.rowcount == 1
        tx.execute("UPDATE sent SET n = n + :step WHERE goal = :goal",
                   {"step": 1, "goal": "50% off"})
    rows = store.query("SELECT goal, profile_id, attrs, n FROM sent WHERE goal LIKE '50%'"
                       " AND profile_id = 'it''s' AND ? = 1", (1,)).fetchall()
    assert rows == [("50% off", "it's", bytes(range(256)), 2**62 + 1)]
    assert store.migrate("caller", SENT_MIGRATIONS) == 0


def test_a_transactions_profile_writes_and_own_rows_roll_back_together(store: Store) -> None:
    store.migrate("caller", SENT_MIGRATIONS)
    try:
        with store.transaction() as tx:
            tx.apply(ProfileWrite("x", [("a", "set", 1)]))
            tx.execute("INSERT INTO sent (goal, profile_id, attrs) VALUES ('g', 'x', ?)", (b"",))
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert store.get("x") is None and store.max_seq() == 0
    assert store.query("SELECT count(*) FROM sent").fetchone() == (0,)
