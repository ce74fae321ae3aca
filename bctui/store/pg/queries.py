"""Batched identifier lookups on PostgreSQL, shared by the store's reads and its write path."""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal
from typing import Any

import orjson

from bctui.store.pg.segments import number_param
from bctui.store.queries import LookupKey


def lookup(conn: Any, name: str, keys: Collection[LookupKey]) -> dict[LookupKey, list[int]]:
    """The pids (ascending: oldest first) having each key's value in property `name`; see
    `bctui.store.queries.lookup`. Text is found through the GIN index on the properties, one
    index probe per value; a number is compared with every value of the property."""
    found: dict[LookupKey, list[int]] = {}
    texts = [value for is_text, value in keys if is_text]
    numbers = [value for is_text, value in keys if not is_text]
    if texts:
        docs = [orjson.dumps({name: [text]}).decode() for text in texts]
        rows = conn.execute(
            "SELECT k.i, m.pid FROM unnest(%s::text[]) WITH ORDINALITY AS k(doc, i)"
            " CROSS JOIN LATERAL (SELECT pid FROM profile WHERE props @> k.doc::jsonb) AS m"
            " ORDER BY m.pid",
            (docs,),
        )
        for i, pid in rows:
            found.setdefault((True, texts[i - 1]), []).append(pid)
    if numbers:
        by_decimal: dict[Decimal, LookupKey] = {}
        for number in numbers:
            by_decimal.setdefault(number_param(number), (False, number))  # type: ignore[arg-type]
        rows = conn.execute(
            "SELECT DISTINCT bctui_num(v.value), p.pid FROM profile p,"
            " jsonb_array_elements(p.props -> %s) AS v(value)"
            " WHERE bctui_num(v.value) = ANY(%s::numeric[]) ORDER BY 2",
            (name, list(by_decimal)),
        )
        for number, pid in rows:
            pids = found.setdefault(by_decimal[number], [])
            if not pids or pids[-1] != pid:  # "5" and 5.0 on one profile: one match
                pids.append(pid)
    return found
