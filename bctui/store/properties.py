"""The names of the properties profiles hold, read from the value index without scanning it."""

from __future__ import annotations

from bctui.store.store import ProfileStore

# A skip-scan: each step seeks the next distinct name in the (name, value, pid) key, so listing
# N names costs N index seeks however many values each name has.
_NAMES_SQL = """
WITH RECURSIVE names(name) AS (
    SELECT (SELECT min(name) FROM prop WHERE name >= ?1)
    UNION ALL
    SELECT (SELECT min(name) FROM prop WHERE name > names.name)
    FROM names
    WHERE names.name IS NOT NULL AND substr(names.name, 1, ?2) = ?3
    LIMIT ?4
)
SELECT name FROM names WHERE name IS NOT NULL AND substr(name, 1, ?2) = ?3
"""


def property_names(store: ProfileStore, prefix: str = "", limit: int = 50) -> list[str]:
    """Up to `limit` property names starting with `prefix` (case-sensitive), in sorted order."""
    if limit < 1:
        return []
    rows = store.query(_NAMES_SQL, (prefix, len(prefix), prefix, limit + 1)).fetchall()
    return [str(row[0]) for row in rows[:limit]]
