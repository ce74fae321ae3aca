"""The JSON type each export mapping sends, and the conversions to it.

A mapping sends one JSON type on every run, whatever the data: `string`, `number`, `boolean`,
`time` (an ISO 8601 string) or `array`. Segments and viewed interactions are arrays; the profile
id, the permission level and a static text are strings. A property mapping without a `type` gets
one at the goal's first run, from one pass over the goal's segment (`infer`), and keeps it in the
store (`state.export_types`), also when the data changes later.

A value that does not convert raises `ValueProblem`: the exporter records the profile as
rejected with that reason (retried next run) and sends the rest of the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

import orjson

from bctui.engine.models import ExportMapping
from bctui.engine.runs import state as st
from bctui.store import Store
from bctui.store.segments import SegmentDef
from bctui.store.values import display, numeric

Values = Sequence[Any]
Convert = Callable[[Values], Any]

# What a source other than a property always sends.
NATURAL: Final = {"segments": "array", "interactions_viewed": "array", "profile_id": "string",
                  "permission_level": "string", "static": "string"}
# Text that means a boolean (compared lowercased and stripped); numbers 1 and 0 too.
BOOLEAN_TEXT: Final = {"true": True, "false": False, "yes": True, "no": False, "1": True,
                       "0": False}
# Braze keeps a date whose year is past 3000 (or before year 0) as a string (reference §7.5).
MAX_YEAR: Final = 3000
JOIN: Final = ", "  # how `type = "string"` joins several values


class ValueProblem(ValueError):
    """A profile's value that the mapping's type cannot send: the reason names the value, the
    Braze attribute and the type, and says how to fix it."""


def _article(kind: str) -> str:
    return f"an {kind}" if kind == "array" else f"a {kind}"


def _problem(braze: str, kind: str, detail: str) -> ValueProblem:
    # The text before the colon is the same for every profile of the mapping: the run log says
    # it once (`Exporter._warn_once` keys on it).
    return ValueProblem(f'cannot send "{braze}" as {_article(kind)}: {detail}')


def _several(braze: str, kind: str, values: Values, *, inferred: bool) -> ValueProblem:
    shown = ", ".join(display(v) for v in values[:3]) + (", …" if len(values) > 3 else "")
    fix = ('set type = "array" on the mapping to send every value' if kind != "string" else
           'set type = "array" on the mapping to send every value, or write type = "string" to '
           "send them joined into one text")
    chosen = "inferred from the data at the goal's first run" if inferred else "its type"
    return _problem(braze, kind, f"the profile has {len(values)} values ({shown}), and the "
                    f"mapping sends one ({kind}, {chosen}); {fix}")


def converter(braze: str, kind: str, *, inferred: bool = False) -> Convert:
    """The conversion of a property's values (a non-empty list) to `kind`; raises ValueProblem.

    The exporter's hot loop sends values already of the type itself and calls this for the rest.
    `inferred`: the type was not written in the config (said in the reasons).
    """
    if kind == "array":
        return list
    if kind == "string":
        def to_string(values: Values) -> str:
            if len(values) > 1 and inferred:
                raise _several(braze, kind, values, inferred=True)
            return JOIN.join(v if type(v) is str else str(v) for v in values)
        return to_string
    one: Callable[[Any], Any] = {"number": _number, "boolean": _boolean, "time": _time}[kind]

    def to_scalar(values: Values) -> Any:
        if len(values) > 1:
            raise _several(braze, kind, values, inferred=inferred)
        try:
            return one(values[0])
        except ValueError as exc:
            fix = "fix the value in the profile, or change the mapping's type"
            raise _problem(braze, kind, f"{display(values[0])} {exc}; {fix}") from None
    return to_scalar


def _number(value: Any) -> int | float:
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    found = numeric(value) if kind is str else None
    if found is None:
        raise ValueError("is not a number (numeric text such as 12 or -1.5 converts)")
    return found


def _boolean(value: Any) -> bool:
    kind = type(value)
    if kind is str:
        found = BOOLEAN_TEXT.get(value.strip().lower())
        if found is not None:
            return found
    elif (kind is int or kind is float) and value in (0, 1):
        return bool(value)
    raise ValueError("is not a boolean (true/false, yes/no, 1/0 convert)")


def _time(value: Any) -> str:
    if type(value) is not str:
        raise ValueError("is not a time: times are ISO 8601 text (such as 2025-11-11 or "
                         "2025-11-11T10:00:00Z)")
    text = value.strip()
    try:
        moment: date = datetime.fromisoformat(text) if len(text) > 10 else date.fromisoformat(text)
    except ValueError:
        raise ValueError("is not an ISO 8601 date or time (such as 2025-11-11 or "
                         "2025-11-11T10:00:00Z)") from None
    if moment.year > MAX_YEAR:
        raise ValueError(f"is after the year {MAX_YEAR}, which Braze keeps as text, not a time")
    return text


def legacy(values: Values) -> Any:
    """No type decided (the segment held no value when the run started): one value as it is,
    several as an array; the next run decides from the data."""
    return values[0] if len(values) == 1 else list(values)


# -- the type of each mapping ------------------------------------------------------------------


def infer(store: Store, segment: SegmentDef, properties: Iterable[str]) -> dict[str, str]:
    """The type of each property, from one pass over the segment's profiles: `array` when a
    profile holds several values, else `boolean` when every value is true/false text, `number`
    when every value is a number (numeric text counts when the property also holds numbers
    stored as such), otherwise `string`. A property with no value in the segment is left out.

    In Python rather than SQL: orjson reads a profile's JSON several times faster than SQLite's
    json_each walks it (measured: 3-4 s per million profiles with 8 such mappings, once a goal).
    """
    names = tuple(sorted(set(properties)))
    if not names:
        return {}
    where, params = store.segment_sql(segment)
    rows = store.query(f"SELECT p.properties FROM profile p WHERE {where}", params)
    seen: dict[str, set[str]] = {name: set() for name in names}
    # Names still open: a property that held several values is an array whatever comes later;
    # one that held plain text can only still become an array.
    open_ = [(name, seen[name]) for name in names]
    loads = orjson.loads
    while open_:
        page = rows.fetchmany(2000)
        if not page:
            break
        for (props_json,) in page:
            props = loads(props_json)
            for name, kinds in open_:
                values = props.get(name)
                if not values:
                    continue
                if len(values) > 1:
                    kinds.add("several")
                elif "text" not in kinds:
                    value = values[0]
                    if type(value) is not str:
                        kinds.add("number")
                    elif value == "true" or value == "false":
                        kinds.add("bool")
                    else:
                        kinds.add("text" if numeric(value) is None else "numeric text")
        open_ = [(name, kinds) for name, kinds in open_ if "several" not in kinds]
    rows.close()
    out: dict[str, str] = {}
    for name, kinds in seen.items():
        if not kinds:
            continue
        if "several" in kinds:
            out[name] = "array"
        elif kinds == {"bool"}:
            out[name] = "boolean"
        elif "number" in kinds and kinds <= {"number", "numeric text"}:
            out[name] = "number"
        else:
            out[name] = "string"
    return out


@dataclass(frozen=True)
class Decided:
    """The type of each property mapping (Braze attribute → type), which of them were not
    written in the config, and which were inferred now."""

    types: dict[str, str]
    inferred: frozenset[str]
    new: dict[str, str]


def resolve(
    store: Store,
    key: str,
    mappings: Sequence[ExportMapping],
    segment: SegmentDef,
    *,
    save: bool,
) -> Decided:
    """The type of each property mapping: a `type` in the config wins; otherwise the type kept
    for the goal, or one inferred now and kept (`save`; a dry run decides without keeping). A
    mapping whose property has no value in the segment yet has no type (see `legacy`)."""
    kept = st.export_types(store, key)
    types: dict[str, str] = {}
    inferred: set[str] = set()
    to_infer: dict[str, str] = {}  # Braze attribute → property
    for m in mappings:
        if m.source != "property":
            continue
        if m.type:
            types[m.braze] = m.type
            continue
        inferred.add(m.braze)
        found = kept.get(m.braze)
        if found is not None and found[0] == m.value:
            types[m.braze] = found[1]
        else:
            to_infer[m.braze] = m.value
    new: dict[str, str] = {}
    if to_infer:
        by_property = infer(store, segment, to_infer.values())
        new = {braze: by_property[prop] for braze, prop in to_infer.items()
               if prop in by_property}
        types.update(new)
    # Keep the type each mapping sends now (an explicit one too: removing `type` later keeps it).
    changed = [(m.braze, m.value, types[m.braze]) for m in mappings
               if m.braze in types and kept.get(m.braze) != (m.value, types[m.braze])]
    if save and changed:
        with store.transaction() as tx:
            st.save_export_types(tx, key, changed)
    return Decided(types, frozenset(inferred), new)

