"""The SQLite schema, its versioned migrations, and how a connection to the store is opened.

Each component keeps its own ordered list of migration steps (a step is a sequence of SQL
statements) and its own version in `meta` under `schema:<component>`; `apply_migrations` runs the
steps a file has not seen yet, in order, in one write transaction. The store's own steps are
`STORE_MIGRATIONS`: adding a step is appending one entry. Another module (the engine's
watermarks, applied export files, run history, last-sent attributes) calls
`ProfileStore.migrate("engine", ENGINE_MIGRATIONS)` with its own list.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from bctui.errors import BctuiError

Statement = str | Mapping[str, str]
"""A migration statement: portable SQL (SQLite's, which PostgreSQL's store translates: BLOB,
REAL, INTEGER and `WITHOUT ROWID`, see `bctui.store.pg.sql`), or {"sqlite": …, "postgresql": …}
where the dialects differ (a dialect left out runs nothing for that statement)."""

Migration = Sequence[Statement]
"""One migration step: SQL statements run in order inside the migration's transaction."""

STORE_COMPONENT: Final = "store"

STORE_MIGRATIONS: Final[tuple[Migration, ...]] = (
    (
        # pid is the rowid: a compact key for the value index, allocated in creation order, so
        # "the oldest profile" is the smallest pid. `properties` is the JSON object
        # {name: [values…]} (names sorted, values in order, numbers and strings kept apart): one
        # row read gives a whole profile. permission_level is 0/1/2 (DO_NOT_TRACK, ANONYMOUS,
        # PERSONAL) so that "at least ANONYMOUS" is a numeric comparison.
        """CREATE TABLE profile (
            pid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            properties TEXT NOT NULL DEFAULT '{}',
            permission_level INTEGER NOT NULL DEFAULT 1,
            interactions_viewed TEXT NOT NULL DEFAULT '[]',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            seq INTEGER NOT NULL
        )""",
        "CREATE UNIQUE INDEX profile_seq ON profile (seq)",
        # The value index: one row per property value, clustered by (name, value) for identifier
        # lookups and segment rules. `value` has no declared type so SQLite keeps each value as
        # given (12 stays an integer, "12" text); `num` is the numeric reading of numeric text
        # (12 for "12"), NULL otherwise: a number is found through `value` itself, so it costs
        # one index entry, not two.
        """CREATE TABLE prop (
            name TEXT NOT NULL,
            value NOT NULL,
            pid INTEGER NOT NULL,
            num,
            PRIMARY KEY (name, value, pid)
        ) WITHOUT ROWID""",
        "CREATE INDEX prop_num ON prop (name, num) WHERE num IS NOT NULL",
        "INSERT INTO meta (key, value) VALUES ('seq', 0) ON CONFLICT (key) DO NOTHING",
    ),
    (
        # Every property name some profile holds, with how many profiles hold it, and whether
        # the value index holds its values (see bctui/store/index.py): the value index keeps
        # identifier and segment properties only, which is most of a store's size and of a
        # load's time otherwise. A store made before this step keeps every property indexed.
        """CREATE TABLE prop_name (
            name TEXT PRIMARY KEY,
            profiles INTEGER NOT NULL DEFAULT 0,
            indexed INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        "INSERT INTO prop_name (name, profiles, indexed) SELECT k.key, count(*), 1"
        " FROM profile AS p, json_each(p.properties) AS k GROUP BY k.key",
    ),
    (
        # The created and updated times as integer microseconds since the Unix epoch (UTC),
        # 8 bytes each rather than 32 of ISO text. Rows written from now on leave created_at and
        # updated_at empty; older rows keep their text, read as before (see profile_from_row).
        "ALTER TABLE profile ADD COLUMN created_us INTEGER",
        "ALTER TABLE profile ADD COLUMN updated_us INTEGER",
    ),
)

_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID"

# The page cache per connection: large enough that a batch of random index inserts (emails,
# uuids) finds most interior pages cached; bounded, so memory stays flat whatever the data size.
CACHE_KIB: Final = 64 * 1024


def connect(path: Path, *, busy_timeout: float) -> sqlite3.Connection:
    """Open the store file in WAL mode, with the settings every connection needs."""
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise BctuiError(f"cannot open the profile store: {exc}", where=str(path),
                         fix="check that the directory exists and is writable") from exc
    try:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        # Checkpoint every ~40 MB of log rather than every 4 MB: a page changed by several
        # transactions is copied into the database once; the log is cut back to 64 MB after.
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        conn.execute("PRAGMA journal_size_limit = 67108864")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise BctuiError(f"this file is not a profile store ({exc})", where=str(path),
                         fix="point [store] url at another file, or move this one away") from exc
    if str(mode).lower() != "wal":
        conn.close()
        raise BctuiError(f"the profile store cannot use write-ahead logging (mode {mode!r})",
                         where=str(path), fix="keep the store on a local file system")
    return conn


def schema_version(conn: sqlite3.Connection, component: str) -> int:
    """The number of `component`'s migration steps this file has applied (0 for none)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (f"schema:{component}",))
        found = row.fetchone()
    except sqlite3.OperationalError:  # no meta table yet: a new file
        return 0
    return int(found[0]) if found else 0


def apply_migrations(
    conn: sqlite3.Connection, component: str, steps: Sequence[Migration], *, where: str
) -> int:
    """Bring `component`'s tables up to date; returns the number of steps applied now."""
    if schema_version(conn, component) == len(steps):
        return 0  # the common case: no write lock needed
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_META)
        current = schema_version(conn, component)
        if current > len(steps):
            raise BctuiError(
                f"the profile store's {component} schema is version {current}, newer than this "
                f"bctui knows ({len(steps)})",
                where=where,
                fix="upgrade bctui, or use another store file",
            )
        for step in steps[current:]:
            for statement in step:
                sql = statement if isinstance(statement, str) else statement.get("sqlite")
                if sql is not None:
                    conn.execute(sql)
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (f"schema:{component}", len(steps)),
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return len(steps) - current
