"""Which properties the value index holds, and bringing a property into it.

The value index (`prop`) holds the values of the *indexed* properties only: those used as
identifiers (looked up by `find`, matched by a write's identifier groups) and those segment rules
ask about (counted or scanned through the store). A property becomes indexed the first time it is
used that way, or through `ProfileStore.index_properties`; its values are then copied in from the
profiles once, and kept current by every write after that. Everything that reads the index has a
correct fallback over the profiles' own JSON for a property that is not indexed, so an answer never
depends on what is indexed, only its speed does.

`prop_name` lists every property name some profile holds (with how many profiles hold it), so the
names are known without indexing every value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Final

import orjson

from bctui.store.values import Scalar, numeric

# How long a read waits for the write lock to index a property before it answers from the
# profiles' JSON instead (it indexes the property next time).
READ_LOCK_WAIT_MS: Final = 50


def indexed_names(conn: sqlite3.Connection) -> set[str]:
    """The properties whose values the value index holds."""
    return {row[0] for row in conn.execute("SELECT name FROM prop_name WHERE indexed")}


def is_indexed(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the value index holds `name`'s values."""
    row = conn.execute("SELECT indexed FROM prop_name WHERE name = ?", (name,)).fetchone()
    return bool(row and row[0])


def index_rows(
    name: str, values: Iterable[Scalar], pid: int
) -> list[tuple[str, Scalar, int, int | float | None]]:
    """The value index's rows for one property of one profile."""
    return [(name, v, pid, numeric(v) if type(v) is str else None) for v in values]


def add_to_index(conn: sqlite3.Connection, names: Iterable[str]) -> list[str]:
    """Index `names` inside the caller's write transaction; returns the names newly indexed.

    Copies each one's values from every profile holding it (read in Python, so that every float
    arrives bit for bit), then marks it indexed so writes keep it current.
    """
    wanted = sorted(set(names) - indexed_names(conn))
    insert = "INSERT INTO prop (name, value, pid, num) VALUES (?, ?, ?, ?)"
    loads = orjson.loads
    for name in wanted:
        cursor = conn.execute(
            "SELECT p.pid, k.value FROM profile p, json_each(p.properties) AS k WHERE k.key = ?",
            (name,),
        )
        while rows := cursor.fetchmany(2000):
            batch = [row for pid, values in rows for row in index_rows(name, loads(values), pid)]
            conn.executemany(insert, batch)
        conn.execute(
            "INSERT INTO prop_name (name, indexed) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET indexed = 1",
            (name,),
        )
    return wanted


def try_index(conn: sqlite3.Connection, names: Iterable[str], *, busy_timeout: float) -> bool:
    """Index `names` in a transaction of its own, from a read path; False when another process
    holds the write lock (the caller then answers from the profiles' JSON)."""
    missing = set(names) - indexed_names(conn)
    if not missing:
        return True
    conn.execute(f"PRAGMA busy_timeout = {READ_LOCK_WAIT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
    try:
        add_to_index(conn, missing)
        conn.execute("COMMIT")
    except sqlite3.OperationalError:  # a read-only file, a full disk: answer from the JSON
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return False
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True
