"""Finding profiles by what a person knows about them; shared by `bctui profiles show` and the UI.

What the text means, in order:

1. a profile id (exactly);
2. `PROPERTY=VALUE` when PROPERTY is a property some profile has: the profiles holding VALUE in
   that property (a numeric VALUE also finds the number, so `points=5` finds 5 and "5");
3. otherwise a bare value: the profiles holding it as a value of *any* property — an e-mail
   address, an external id, a phone number. Matching is exact (as for identifiers); a value with
   capitals also finds its lower-case form, since e-mail addresses are usually stored lower-case,
   and a numeric value finds the number too.

The value index is keyed by (name, value, pid), so "any property" is answered by a skip-scan: one
index seek per distinct property name (found by a recursive query), never a scan of all values.
Matches come oldest profile first, at most `limit` of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import orjson

from bctui.errors import NotFoundError
from bctui.store.model import Profile
from bctui.store.queries import json_array
from bctui.store.store import ProfileStore
from bctui.store.values import numeric

DEFAULT_LIMIT: Final = 50

Kind = Literal["empty", "id", "property", "value"]

# Every property name, by a skip-scan of the value index's leading column.
_NAMES_CTE: Final = """
WITH RECURSIVE names(name) AS (
    SELECT (SELECT min(name) FROM prop)
    UNION ALL
    SELECT (SELECT min(name) FROM prop WHERE name > names.name)
    FROM names WHERE names.name IS NOT NULL
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


def search_profiles(store: ProfileStore, text: str, *, limit: int = DEFAULT_LIMIT) -> Search:
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


def find_profile(store: ProfileStore, text: str) -> tuple[Profile, Search]:
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


def _has_property(store: ProfileStore, name: str) -> bool:
    return store.query("SELECT 1 FROM prop WHERE name = ? LIMIT 1", (name,)).fetchone() is not None


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
    store: ProfileStore,
    names: list[str] | None,
    keys: tuple[list[str], int | float | None],
    limit: int,
) -> tuple[tuple[Match, ...], bool]:
    """Profiles holding one of the texts (or the number) in one of `names` (None: any name)."""
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
        f"{head} SELECT p.id, json_group_array(DISTINCT m.name) FROM "
        f"({' UNION ALL '.join(branches)}) AS m JOIN profile AS p ON p.pid = m.pid "
        "GROUP BY m.pid ORDER BY m.pid LIMIT ?"
    )
    params.append(limit + 1)
    rows = store.query(sql, params).fetchall()
    matches = tuple(
        Match(str(profile_id), tuple(sorted(orjson.loads(found))))
        for profile_id, found in rows[:limit]
    )
    return matches, len(rows) > limit
