"""Callers' SQLite-flavoured SQL as PostgreSQL takes it: placeholders and portable DDL."""

from __future__ import annotations

import pytest

from bctui.store.pg.sql import placeholders, portable_ddl, statement_for


@pytest.mark.parametrize(
    ("sql", "named", "expected"),
    [
        ("SELECT a FROM t WHERE b = ? AND c = ?", False, "SELECT a FROM t WHERE b = %s AND c = %s"),
        ("SELECT '?', \"?\" FROM t WHERE x LIKE 'a%' AND y = ?", False,
         "SELECT '?', \"?\" FROM t WHERE x LIKE 'a%%' AND y = %s"),
        ("SELECT 'it''s ?' || ? , 5 % 2", False, "SELECT 'it''s ?' || %s , 5 %% 2"),
        ("UPDATE t SET n = :n WHERE k = :key AND x::text = ':no'", True,
         "UPDATE t SET n = %(n)s WHERE k = %(key)s AND x::text = ':no'"),
        ("SELECT ':a', ?", False, "SELECT ':a', %s"),
    ],
)
def test_placeholders(sql: str, named: bool, expected: str) -> None:
    assert placeholders(sql, named) == expected


def test_portable_ddl() -> None:
    ddl = portable_ddl("""CREATE TABLE t (
        a TEXT PRIMARY KEY, b BLOB, c REAL NOT NULL DEFAULT 0, d integer,
        e TEXT DEFAULT 'REAL TEXT'
    ) WITHOUT ROWID""")
    assert ddl == """CREATE TABLE t (
        a TEXT COLLATE "C" PRIMARY KEY, b BYTEA, c DOUBLE PRECISION NOT NULL DEFAULT 0, d BIGINT,
        e TEXT COLLATE "C" DEFAULT 'REAL TEXT'
    )"""
    assert portable_ddl("ALTER TABLE t ADD COLUMN ids BLOB") == "ALTER TABLE t ADD COLUMN ids BYTEA"


def test_statements_per_dialect() -> None:
    both = "CREATE INDEX i ON t (a)"
    assert statement_for(both, "sqlite") == both
    assert statement_for(both, "postgresql") == both
    split = {"sqlite": "SELECT 1", "postgresql": "SELECT 2"}
    assert (statement_for(split, "sqlite"), statement_for(split, "postgresql")) == ("SELECT 1",
                                                                                   "SELECT 2")
    assert statement_for({"postgresql": "COMMENT ON TABLE t IS 'x'"}, "sqlite") is None
