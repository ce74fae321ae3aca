"""Running the callers' SQLite-flavoured SQL on PostgreSQL: placeholders and portable DDL.

Callers (the engine's tables, the exporter's joins) write SQL once, with `?` placeholders and
SQLite's type names; these functions turn it into what psycopg and PostgreSQL take. A statement
that cannot be written portably is given per dialect in its migration step (see `Migration`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Final

_DDL_WORDS: Final = {
    "TEXT": 'TEXT COLLATE "C"',
    "BLOB": "BYTEA",
    "REAL": "DOUBLE PRECISION",
    "INTEGER": "BIGINT",
}
_WORD: Final = re.compile(r"\b(TEXT|BLOB|REAL|INTEGER)\b|\bWITHOUT\s+ROWID\b", re.IGNORECASE)
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@functools.lru_cache(maxsize=1024)
def placeholders(sql: str, named: bool = False) -> str:
    """`sql` with `?` (or, when `named`, `:name`) placeholders as psycopg's `%s` (`%(name)s`)
    and every literal `%` doubled; text in quotes is left as it is (but for its `%`)."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = sql.find(c, i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == c:  # a doubled quote
                end = sql.find(c, end + 2)
            end = n if end == -1 else end + 1
            out.append(sql[i:end].replace("%", "%%"))
            i = end
            continue
        if c == "?":
            out.append("%s")
        elif c == "%":
            out.append("%%")
        elif c == ":" and named and i + 1 < n and sql[i + 1] == ":":
            out.append("::")
            i += 2
            continue
        elif c == ":" and named and (m := _NAME.match(sql, i + 1)):
            out.append(f"%({m.group()})s")
            i = m.end()
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def portable_ddl(sql: str) -> str:
    """SQLite DDL as PostgreSQL's: BLOB, REAL and INTEGER become BYTEA, DOUBLE PRECISION and
    BIGINT (SQLite's INTEGER holds 64 bits), TEXT compares bytewise as in SQLite (the "C"
    collation, whatever the database's locale), `WITHOUT ROWID` goes (every table is a heap)."""
    parts = re.split(r"('(?:[^']|'')*')", sql)  # leave string literals alone
    for i in range(0, len(parts), 2):
        parts[i] = _WORD.sub(_ddl_word, parts[i])
    return "".join(parts).rstrip()


def _ddl_word(match: re.Match[str]) -> str:
    word = match.group(1)
    return "" if word is None else _DDL_WORDS[word.upper()]


def statement_for(statement: str | Mapping[str, str], dialect: str) -> str | None:
    """A migration statement for `dialect`: a plain string is portable SQL (translated for
    PostgreSQL), a mapping gives each dialect's own; None when it has nothing for this one."""
    if isinstance(statement, str):
        return statement if dialect == "sqlite" else portable_ddl(statement)
    return statement.get(dialect)
