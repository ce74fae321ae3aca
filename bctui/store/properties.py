"""The names of the properties profiles hold, read from the list of names (no profile scan)."""

from __future__ import annotations

from bctui.store.base import Store

# `prop_name` lists every name some profile holds, indexed or not.
_NAMES_SQL = """
SELECT name FROM prop_name
WHERE name >= ?1 AND substr(name, 1, ?2) = ?3 AND profiles > 0
ORDER BY name LIMIT ?4
"""


def property_names(store: Store, prefix: str = "", limit: int = 50) -> list[str]:
    """Up to `limit` property names starting with `prefix` (case-sensitive), in sorted order."""
    if limit < 1:
        return []
    if store.dialect == "postgresql":
        from bctui.store.pg.search import property_names as pg_names

        return pg_names(store, prefix, limit)[:limit]
    rows = store.query(_NAMES_SQL, (prefix, len(prefix), prefix, limit + 1)).fetchall()
    return [str(row[0]) for row in rows[:limit]]
