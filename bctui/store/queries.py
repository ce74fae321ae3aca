"""Batched reads shared by the store's lookups and its write path."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from bctui.store.index import is_indexed
from bctui.store.model import PERMISSION_LEVELS, Profile
from bctui.store.values import Scalar, lookup_keys

# Number parameters are bound one by one (not passed through JSON) so that every float arrives
# bit for bit; this many per statement stays far below SQLite's variable limit.
_CHUNK: Final = 500

PROFILE_COLUMNS: Final = (
    "p.pid, p.id, p.properties, p.permission_level, p.interactions_viewed,"
    # A time is the ISO text where a row has it (rows written before times became numbers),
    # else the integer microseconds.
    " iif(p.created_at = '', p.created_us, p.created_at),"
    " iif(p.updated_at = '', p.updated_us, p.updated_at), p.seq"
)
"""The profile columns `profile_from_row` expects, in order, for a query aliasing profile as p."""
PROFILE_WIDTH: Final = 8

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

LookupKey = tuple[bool, Scalar]


def json_array(values: Iterable[object]) -> str:
    """A JSON array for `json_each(?)`: exact for text and integers (never used for floats)."""
    return orjson.dumps(list(values)).decode()


def lookup(
    conn: sqlite3.Connection, name: str, keys: Collection[LookupKey]
) -> dict[LookupKey, list[int]]:
    """The pids (ascending: oldest first) having each key's value in property `name`.

    A text key finds exactly that text; a number key finds every value reading as that number.
    Keys nobody has are absent from the result.
    """
    found: dict[LookupKey, list[int]] = {}
    texts = [value for is_text, value in keys if is_text]
    numbers = [value for is_text, value in keys if not is_text]
    if texts:
        rows = conn.execute(
            "SELECT value, pid FROM prop WHERE name = ? "
            "AND value IN (SELECT value FROM json_each(?)) ORDER BY pid",
            (name, json_array(texts)),
        )
        for value, pid in rows:
            found.setdefault((True, value), []).append(pid)
    for start in range(0, len(numbers), _CHUNK):
        chunk = numbers[start:start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        # A number is found by its value, numeric text by its reading in `num`.
        rows = conn.execute(
            f"SELECT value, pid FROM prop WHERE name = ? AND value IN ({marks}) UNION ALL "
            f"SELECT num, pid FROM prop WHERE name = ? AND num IN ({marks}) ORDER BY 2",
            (name, *chunk, name, *chunk),
        )
        for number, pid in rows:
            pids = found.setdefault((False, number), [])
            if not pids or pids[-1] != pid:  # "5" and 5.0 on one profile: one match
                pids.append(pid)
    return found


def lookup_any(
    conn: sqlite3.Connection, name: str, keys: Collection[LookupKey]
) -> dict[LookupKey, list[int]]:
    """`lookup`, answered from the profiles' JSON when `name` is not indexed."""
    if is_indexed(conn, name):
        return lookup(conn, name, keys)
    wanted = set(keys)
    found: dict[LookupKey, list[int]] = {}
    loads = orjson.loads
    rows = conn.execute(
        "SELECT p.pid, k.value FROM profile p, json_each(p.properties) AS k WHERE k.key = ?"
        " ORDER BY p.pid",
        (name,),
    )
    for pid, values in rows:
        for value in loads(values):
            for key in lookup_keys(value):
                if key in wanted:
                    pids = found.setdefault(key, [])
                    if not pids or pids[-1] != pid:
                        pids.append(pid)
    return found


def profile_from_row(row: tuple[Any, ...]) -> Profile:
    """A `Profile` from a row of `PROFILE_COLUMNS`."""
    _pid, id_, properties, level, interactions, created, updated, seq = row
    return Profile(
        id=id_,
        properties=orjson.loads(properties),
        permission_level=PERMISSION_LEVELS[level],
        interactions_viewed=orjson.loads(interactions),
        created_at=_time(created),
        updated_at=_time(updated),
        seq=seq,
    )


def _time(stored: int | str) -> datetime:
    """A stored time: integer microseconds since the epoch, or ISO text (older rows)."""
    if type(stored) is int:
        return _EPOCH + timedelta(microseconds=stored)
    return datetime.fromisoformat(stored)  # type: ignore[arg-type]


def current_seq(conn: sqlite3.Connection) -> int:
    """The store's change-sequence counter: the highest sequence number ever allocated."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    return int(row[0]) if row else 0


# A delta touching at most 1/this of the store evaluates segment rules per changed row.
_CORRELATED_SHARE: Final = 20


def few_changes(conn: sqlite3.Connection, since_seq: int) -> bool:
    """Whether the delta after `since_seq` is small enough that checking each changed row's own
    properties beats building each segment's member set from the value index."""
    if since_seq <= 0:
        return False
    total = conn.execute("SELECT max(pid) FROM profile").fetchone()[0] or 0
    limit = max(total // _CORRELATED_SHARE, 1)
    changed = conn.execute(
        "SELECT count(*) FROM (SELECT 1 FROM profile INDEXED BY profile_seq WHERE seq > ?"
        " LIMIT ?)",
        (since_seq, limit + 1),
    ).fetchone()[0]
    return bool(changed <= limit)
