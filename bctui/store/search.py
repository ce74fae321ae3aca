"""Finding profiles by what a person knows about them; shared by `bctui profiles show` and the UI.

What the text means, in order:

1. a profile id (exactly);
2. `PROPERTY=VALUE` when PROPERTY is a property some profile has: the profiles holding VALUE in
   that property (a numeric VALUE also finds the number, so `points=5` finds 5 and "5");
3. otherwise a bare value: the profiles holding it as a value of *any* property — an e-mail
   address, an external id, a phone number. Matching is exact (as for identifiers); a value with
   capitals also finds its lower-case form, since e-mail addresses are usually stored lower-case,
   and a numeric value finds the number too.

Indexed properties (identifiers, segment properties: see `bctui.store.index`) are answered by the
value index, one seek per property name; the others are read from the profiles' JSON, so a bare
value is found wherever it is, at the cost of a scan when some property is not indexed.
Matches come oldest profile first, at most `limit` of them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

import orjson

from bctui.errors import NotFoundError
from bctui.store.base import Store
from bctui.store.model import Profile
from bctui.store.queries import json_array
from bctui.store.segments import NUMERIC_FUNCTION
from bctui.store.values import Scalar, lookup_keys, numeric

DEFAULT_LIMIT: Final = 50

Kind = Literal["empty", "id", "property", "value"]

# Every indexed property some profile holds (the others are read from the profiles' JSON).
_NAMES_CTE: Final = """
WITH names(name) AS MATERIALIZED (
    SELECT name FROM prop_name WHERE indexed AND profiles > 0
)"""

_HINT: Final = "give a profile id, PROPERTY=VALUE such as email=jane@example.com, or a value"


@dataclass(frozen=True)
class Match:
    """One profile found, and the properties that hold the value (none for an id match)."""

    profile_id: str
    properties: tuple[str, ...] = ()


@dataclass(frozen=True)
class Search:
    """What a search text meant and what it found."""

    text: str
    kind: Kind
    matches: tuple[Match, ...] = ()
    more: bool = False
    """More profiles matched than were returned."""
    property_name: str = ""
    value: str = ""

    @property
    def message(self) -> str:
        """One line saying what was found, or what was looked for in vain."""
        count = len(self.matches)
        if self.kind == "empty":
            return "type a profile id, PROPERTY=VALUE, or a value such as an e-mail address"
        if self.kind == "id":
            return f'profile "{self.text}"'
        what = (f"{self.property_name}={self.value}" if self.kind == "property"
                else f'the value "{self.value}"')  # fmt: skip
        if not count:
            if self.kind == "property":
                return f"no profile has {what}"
            return f'no profile has the id or a property value "{self.value}"'
        many = f"more than {count}" if self.more else f"{count}"
        return f"1 profile has {what}" if count == 1 else f"{many} profiles have {what}"


def search_profiles(store: Store, text: str, *, limit: int = DEFAULT_LIMIT) -> Search:
    """Look a profile up by id, `PROPERTY=VALUE` or a bare value (see the module's rules)."""
    text = text.strip()
    if not text:
        return Search(text, "empty")
    if store.get(text) is not None:
        return Search(text, "id", (Match(text),))
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if sep and name and value and _has_property(store, name):
        matches, more = _find(store, [name], _keys(value, fold=False), limit)
        return Search(text, "property", matches, more, name, value)
    matches, more = _find(store, None, _keys(text, fold=True), limit)
    return Search(text, "value", matches, more, value=text)


def find_profile(store: Store, text: str) -> tuple[Profile, Search]:
    """The profile a search text names (the oldest when several match), with the search;
    raises NotFoundError saying what was looked for."""
    search = search_profiles(store, text)
    for match in search.matches:
        profile = store.get(match.profile_id)
        if profile is not None:
            return profile, search
    if search.kind == "empty":
        raise NotFoundError("no profile id or value given", fix=_HINT)
    name, sep, value = search.text.partition("=")
    if sep and name.strip() and value.strip():
        name, value = name.strip(), value.strip()
        fix = "check the property name and value (`bctui profiles dump`)"
        if not _has_property(store, name):
            fix = f'no profile has a property named "{name}"; ' + fix
        raise NotFoundError(f"no profile has {name}={value}", fix=fix)
    raise NotFoundError(
        f'no profile with id "{search.text}", and no property has that value', fix=_HINT
    )


def is_indexed(store: Store, name: str) -> bool:
    """Whether the value index holds `name`'s values (on PostgreSQL, every property's are)."""
    if store.dialect == "postgresql":
        return True
    row = store.query("SELECT indexed FROM prop_name WHERE name = ?", (name,)).fetchone()
    return bool(row and row[0])


def _has_property(store: Store, name: str) -> bool:
    row = store.query("SELECT 1 FROM prop_name WHERE name = ? AND profiles > 0", (name,))
    return row.fetchone() is not None


def _keys(text: str, *, fold: bool) -> tuple[list[str], int | float | None]:
    """The texts to look for, and the number (when the text reads as one)."""
    texts = [text]
    if fold and text.lower() != text:
        texts.append(text.lower())
    number = numeric(text)
    if isinstance(number, float) and not math.isfinite(number):
        number = None
    return texts, number


def _find(
    store: Store,
    names: list[str] | None,
    keys: tuple[list[str], int | float | None],
    limit: int,
) -> tuple[tuple[Match, ...], bool]:
    """Profiles holding one of the texts (or the number) in one of `names` (None: any name)."""
    if store.dialect == "postgresql":
        from bctui.store.pg.search import find

        pg_found = find(store, names, keys, limit)
        pids = [pid for pid, _ in pg_found]
        named = dict(pg_found)
        ids = dict(store.query(
            "SELECT pid, id FROM profile WHERE pid = ANY(?::bigint[])", (pids,)
        ).fetchall()) if pids else {}
        matches = tuple(Match(str(ids[pid]), tuple(sorted(named[pid]))) for pid in pids[:limit])
        return matches, len(pids) > limit
    if names is not None:
        store.index_properties(names, wait=False)
        indexed = [n for n in names if is_indexed(store, n)]
        scanned = [n for n in names if n not in indexed]
    else:
        indexed = None
        scanned = [str(row[0]) for row in store.query(
            "SELECT name FROM prop_name WHERE NOT indexed AND profiles > 0")]
    found: dict[int, set[str]] = {}
    if indexed is None or indexed:
        for pid, names_found in _find_indexed(store, indexed, keys, limit):
            found[pid] = set(orjson.loads(names_found))
    if scanned:
        # Unindexed properties: read from the profiles' JSON (in Python, so numbers compare
        # exactly as the index would compare them).
        for pid, name in _scan(store, scanned, keys):
            found.setdefault(pid, set()).add(name)
    pids = sorted(found)[:limit + 1]
    ids = dict(store.query(
        "SELECT pid, id FROM profile WHERE pid IN (SELECT value FROM json_each(?))",
        (json_array(pids),),
    ).fetchall()) if pids else {}
    matches = tuple(Match(str(ids[pid]), tuple(sorted(found[pid]))) for pid in pids[:limit])
    return matches, len(pids) > limit


def _find_indexed(
    store: Store,
    names: list[str] | None,
    keys: tuple[list[str], int | float | None],
    limit: int,
) -> list[tuple[int, str]]:
    """(pid, JSON array of the names holding a key) from the value index, oldest first."""
    texts, number = keys
    if names is None:
        head, source = _NAMES_CTE, "names"
        params: list[object] = []
    else:
        head, source = "", "(SELECT value AS name FROM json_each(?))"
        params = [json_array(names)]
    # Each branch joins the names to the value index on its key prefix: a seek per name.
    marks = ", ".join("?" * len(texts))
    branches = [
        f"SELECT v.pid, v.name FROM {source} AS n JOIN prop AS v "
        f"ON v.name = n.name AND v.value IN ({marks})"
    ]
    params.extend(texts)
    if number is not None:
        if names is not None:
            params.append(json_array(names))
        branches.append(
            f"SELECT v.pid, v.name FROM {source} AS n JOIN prop AS v "
            "ON v.name = n.name AND v.value = ?"
        )
        branches.append(
            f"SELECT v.pid, v.name FROM {source} AS n JOIN prop AS v "
            "ON v.name = n.name AND v.num = ?"
        )
        params.append(number)
        if names is not None:
            params.append(json_array(names))
        params.append(number)
    sql = (
        f"{head} SELECT m.pid, json_group_array(DISTINCT m.name) FROM "
        f"({' UNION ALL '.join(branches)}) AS m GROUP BY m.pid ORDER BY m.pid LIMIT ?"
    )
    params.append(limit + 1)
    return [(int(pid), str(found)) for pid, found in store.query(sql, params)]


def _scan(
    store: Store, names: list[str], keys: tuple[list[str], int | float | None]
) -> Iterator[tuple[int, str]]:
    """(pid, name) of every profile holding a key in one of `names`, read from its JSON.

    SQLite picks the candidates (a superset: numbers compare within a hair), and each is then
    checked exactly in Python. Without a number, a row is first tested for the text as bctui
    writes it into the JSON (orjson's encoding), which skips almost every row unread.
    """
    texts, number = keys
    wanted: set[tuple[bool, Scalar]] = {(True, t) for t in texts}
    params: list[object] = [json_array(names)]
    conditions = [f"(v.type = 'text' AND v.value IN ({', '.join('?' * len(texts))}))"]
    params.extend(texts)
    row_filter = ""
    if number is None:
        row_filter = " AND (" + " OR ".join("instr(p.properties, ?)" for _ in texts) + ")"
        params.extend(orjson.dumps(t).decode() for t in texts)
    else:
        wanted.add((False, number))
        conditions.append("(v.type IN ('integer', 'real') AND abs(v.value - ?) <= abs(?) * 1e-9)")
        # Only text that can read as a number (see values.numeric) gets the Python reading.
        conditions.append(
            "(v.type = 'text' AND (unicode(v.value) <= 32 OR unicode(v.value) > 127"
            " OR substr(v.value, 1, 1) IN ('+', '-', '.', '0', '1', '2', '3', '4', '5', '6',"
            f" '7', '8', '9')) AND {NUMERIC_FUNCTION}(v.value) = ?)"
        )
        params.extend([number, number, number])
    rows = store.query(
        "SELECT DISTINCT p.pid, k.key, k.value FROM profile p, json_each(p.properties) AS k,"
        " json_each(k.value) AS v WHERE k.key IN (SELECT value FROM json_each(?))"
        f" AND ({' OR '.join(conditions)}){row_filter}",
        params,
    )
    loads = orjson.loads
    for pid, name, values in rows:
        if any(key in wanted for value in loads(values) for key in lookup_keys(value)):
            yield int(pid), str(name)
