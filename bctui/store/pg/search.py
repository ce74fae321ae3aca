"""The PostgreSQL side of `bctui.store.search` and `bctui.store.properties`."""

from __future__ import annotations

import orjson

from bctui.store.base import Store
from bctui.store.pg.segments import number_param


def find(
    store: Store, names: list[str] | None, keys: tuple[list[str], int | float | None],
    limit: int,
) -> list[tuple[int, list[str]]]:
    """(pid, the names holding a key) of the profiles holding one of the texts (or the number)
    in one of `names` (None: any name), oldest first, at most `limit + 1` of them."""
    texts, number = keys
    where: list[str] = []
    params: list[object] = []
    if names is not None:
        where.append("e.key = ANY(?::text[])")
        params.append(names)
    conditions = ["(jsonb_typeof(v.value) = 'string' AND (v.value #>> '{}') = ANY(?::text[]))"]
    params.append(texts)
    if number is not None:
        conditions.append("bctui_num(v.value) = ?")
        params.append(number_param(number))
    where.append(f"({' OR '.join(conditions)})")
    if names is not None and number is None:  # the GIN index finds the candidates
        docs = [orjson.dumps({n: [t]}).decode() for n in names for t in texts]
        where.append("(" + " OR ".join("p.props @> ?::jsonb" for _ in docs) + ")")
        params.extend(docs)
    sql = (
        "SELECT p.pid, array_agg(DISTINCT e.key) FROM profile p,"
        " jsonb_each(p.props) AS e(key, vals), jsonb_array_elements(e.vals) AS v(value)"
        f" WHERE {' AND '.join(where)} GROUP BY p.pid ORDER BY p.pid LIMIT ?"
    )
    return [(int(pid), list(found)) for pid, found in store.query(sql, [*params, limit + 1])]


def property_names(store: Store, prefix: str, limit: int) -> list[str]:
    """Up to `limit` + 1 property names some profile holds, starting with `prefix`, sorted."""
    rows = store.query(
        "SELECT name FROM prop_name WHERE name >= ? AND left(name, ?) = ? AND profiles > 0"
        " ORDER BY name LIMIT ?",
        (prefix, len(prefix), prefix, limit + 1),
    ).fetchall()
    return [str(row[0]) for row in rows]
