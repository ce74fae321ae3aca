"""The PostgreSQL schema of the profile store, and its migrations.

The same tables as SQLite's where callers read them (`profile` with the same column meanings,
`meta` with the change-sequence counter and the schema versions), with two differences that suit
a server shared by several hosts: `profile.props` (the properties as JSONB, generated from the
JSON text) carries a GIN index that answers identifier lookups for every property, so there is
no value index to keep (and no per-name counters that concurrent writers would queue on); and
pids come from a sequence, since writers on several hosts create profiles at once.
"""

from __future__ import annotations

from typing import Final

from bctui.store.schema import Migration

PID_BLOCK: Final = 1024
"""Pids a batch takes from the sequence at a time (one round trip per this many new profiles)."""

# Numeric text reads as the number it spells (bctui.store.values.numeric): a plain decimal
# with optional sign, fraction and exponent, blanks around it allowed.
_NUMERIC_FUNCTION: Final = r"""
CREATE FUNCTION bctui_num(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE jsonb_typeof(v)
        WHEN 'number' THEN (v #>> '{}')::numeric
        WHEN 'string' THEN CASE
            WHEN (v #>> '{}') ~ '^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$'
            THEN btrim(v #>> '{}', E' \t\n\r\f\v')::numeric
        END
    END
$fn$"""

# Python's str.casefold for `contains`, near enough: lower() (by the database's locale) and the
# two common folds lower() does not make.
_FOLD_FUNCTION: Final = """
CREATE FUNCTION bctui_fold(t text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT replace(replace(lower(t), 'ß', 'ss'), 'ς', 'σ')
$fn$"""

def _native(*statements: str) -> Migration:
    """A step of PostgreSQL's own statements (not translated as portable DDL is)."""
    return tuple({"postgresql": statement} for statement in statements)


STORE_MIGRATIONS: Final[tuple[Migration, ...]] = (
    _native(
        f"CREATE SEQUENCE profile_pid INCREMENT BY {PID_BLOCK}",
        # Times are integer microseconds since the epoch; ids and text compare bytewise, as
        # in SQLite (the "C" collation), whatever the database's locale.
        """CREATE TABLE profile (
            pid BIGINT PRIMARY KEY,
            id TEXT COLLATE "C" NOT NULL UNIQUE,
            properties TEXT NOT NULL DEFAULT '{}',
            props JSONB GENERATED ALWAYS AS (properties::jsonb) STORED,
            permission_level SMALLINT NOT NULL DEFAULT 1,
            interactions_viewed TEXT NOT NULL DEFAULT '[]',
            created_us BIGINT NOT NULL,
            updated_us BIGINT NOT NULL,
            seq BIGINT NOT NULL
        )""",
        "CREATE UNIQUE INDEX profile_seq ON profile (seq)",
        # No pending list: with one, every lookup reads the whole list until a vacuum merges
        # it (4 ms a lookup after a large load, where the index itself answers in 0.02 ms).
        "CREATE INDEX profile_props ON profile USING gin (props jsonb_path_ops)"
        " WITH (fastupdate = off)",
        # Every property name some profile holds, with how many profiles hold it.
        """CREATE TABLE prop_name (
            name TEXT COLLATE "C" PRIMARY KEY,
            profiles BIGINT NOT NULL DEFAULT 0
        )""",
        _NUMERIC_FUNCTION,
        _FOLD_FUNCTION,
        "INSERT INTO meta (key, value) VALUES ('seq', '0') ON CONFLICT (key) DO NOTHING",
    ),
)

META: Final = 'CREATE TABLE IF NOT EXISTS meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT)'

PROFILE_COLUMNS: Final = (
    "p.pid, p.id, p.properties, p.permission_level, p.interactions_viewed, p.created_us,"
    " p.updated_us, p.seq"
)
"""`bctui.store.queries.PROFILE_COLUMNS` for this schema (`profile_from_row` reads both)."""
