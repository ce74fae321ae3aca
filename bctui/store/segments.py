"""Local segments: rules over profile properties, evaluated in SQL by the store.

Properties are multi-valued, so a rule asks about *any* value: `eq` matches when any value equals,
`ne` when none does (a profile without the property matches `ne`), `in` when any value is in the
list, `contains` when any value contains the text (case-insensitive), `exists` when there is at
least one value, and `gt`/`gte`/`lt`/`lte` when any value compares. A numeric rule value compares
numerically, against every value that reads as a number (5 matches 5, 5.0 and "5"); a text rule
value compares as text, against text values only (so ISO dates compare as dates).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from bctui.store.values import Scalar, numeric

OPS: Final = ("eq", "ne", "in", "contains", "exists", "gt", "gte", "lt", "lte")

CONTAINS_FUNCTION: Final = "bctui_contains"
NUMERIC_FUNCTION: Final = "bctui_num"

_COMPARE: Final = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


@dataclass(frozen=True)
class Rule:
    """One condition on a property: `exists` takes no value, `in` a tuple, the others a scalar."""

    property: str
    op: str
    value: Scalar | tuple[Scalar, ...] | None = None

    def __post_init__(self) -> None:
        where = f'rule on property "{self.property}"'
        if not isinstance(self.property, str) or not self.property:
            raise ValueError("a segment rule needs a property name")
        if self.op not in OPS:
            raise ValueError(f'{where}: unknown op "{self.op}"; use one of {", ".join(OPS)}')
        if self.op == "exists":
            if self.value is not None:
                raise ValueError(f'{where}: "exists" takes no value')
            return
        if self.op == "in":
            if not isinstance(self.value, tuple | list):
                raise ValueError(f'{where}: "in" needs a list of values')
            object.__setattr__(self, "value", tuple(_rule_scalar(where, v) for v in self.value))
            return
        if self.value is None or isinstance(self.value, tuple | list):
            raise ValueError(f'{where}: "{self.op}" needs one value (a string or a number)')
        object.__setattr__(self, "value", _rule_scalar(where, self.value))


@dataclass(frozen=True)
class SegmentDef:
    """A named segment: its rules combined with `all` (AND) or `any` (OR)."""

    name: str
    match: Literal["all", "any"] = "all"
    rules: tuple[Rule, ...] = ()

    def __post_init__(self) -> None:
        if self.match not in ("all", "any"):
            raise ValueError(f'segment "{self.name}": match must be "all" or "any"')
        if not isinstance(self.rules, tuple):
            object.__setattr__(self, "rules", tuple(self.rules))


def segment_sql(
    segment: SegmentDef, *, alias: str = "p", correlated: bool = False
) -> tuple[str, list[object]]:
    """A SQL predicate (and its `?` parameters, in order) true for the segment's members.

    `alias` names the profile table in the surrounding query. The default form,
    `alias.pid IN (SELECT pid FROM prop WHERE …)`, has SQLite build each member set once per
    statement from the value index: best when counting or scanning the whole store (for a
    property the index does not hold, it reads the JSON; `ProfileStore.index_properties` with
    `segment_properties` indexes them). `correlated=True` gives `EXISTS (…)` over the row's own
    `properties` JSON: a few microseconds per row visited, and no work for rows not visited —
    best when only the changed rows are read. Both forms mean the same; either works in a WHERE
    clause and as a SELECT column (0/1). Run it on a store connection (`ProfileStore.query`,
    `Transaction.execute`): it may call the SQL functions `register_functions` adds.
    """
    if not segment.rules:
        return ("1" if segment.match == "all" else "0"), []
    parts: list[str] = []
    params: list[object] = []
    for rule in segment.rules:
        sql, rule_params = rule_sql(rule, alias=alias, correlated=correlated)
        parts.append(sql)
        params.extend(rule_params)
    joiner = " AND " if segment.match == "all" else " OR "
    return "(" + joiner.join(parts) + ")", params


def rule_sql(
    rule: Rule, *, alias: str = "p", correlated: bool = False
) -> tuple[str, list[object]]:
    """A SQL predicate for one rule; see `segment_sql` for the two forms."""
    json_sql, params, negate = _json_form(rule, alias)
    if not correlated:
        index_sql, index_params, _ = _index_form(rule, alias)
        # A property the value index does not hold (bctui.store.index) is read from the row's
        # JSON instead; the uncorrelated NOT EXISTS is evaluated once per statement.
        json_sql = (f"({index_sql} OR (NOT EXISTS (SELECT 1 FROM prop_name WHERE name = ? AND"
                    f" indexed) AND {json_sql}))")
        params = [*index_params, rule.property, *params]
    return (f"NOT {json_sql}" if negate else json_sql), params


def segment_properties(segments: Iterable[SegmentDef]) -> list[str]:
    """The properties the segments' rules ask about, each once, in order."""
    return list(dict.fromkeys(rule.property for segment in segments for rule in segment.rules))


def _json_form(rule: Rule, alias: str) -> tuple[str, list[object], bool]:
    """`EXISTS (…)` over the row's own `properties` JSON."""
    branches, negate = _conditions(rule, indexed=False)
    condition = " OR ".join(f"({sql})" for sql, _ in branches) or "0"
    params: list[object] = [rule.property]
    for _, branch_params in branches:
        params.extend(branch_params)
    sql = (f"EXISTS (SELECT 1 FROM json_each({alias}.properties) AS k, json_each(k.value) AS v"
           f" WHERE k.key = ? AND ({condition}))")
    return sql, params, negate


def _index_form(rule: Rule, alias: str) -> tuple[str, list[object], bool]:
    """`alias.pid IN (…)` over the value index."""
    branches, negate = _conditions(rule, indexed=True)
    params: list[object] = []
    # One SELECT per branch: each is a range of one index, where an OR would scan.
    selects = []
    for condition, branch_params in branches or [("0", [])]:
        selects.append(f"SELECT v.pid FROM prop AS v WHERE v.name = ? AND {condition}")
        params.extend([rule.property, *branch_params])
    return f"{alias}.pid IN ({' UNION ALL '.join(selects)})", params, negate


def register_functions(conn: sqlite3.Connection) -> None:
    """Add the SQL functions segment predicates use to a connection."""
    conn.create_function(CONTAINS_FUNCTION, 2, _contains, deterministic=True)
    conn.create_function(NUMERIC_FUNCTION, 1, numeric_reading, deterministic=True)


Branch = tuple[str, list[object]]


def _conditions(rule: Rule, *, indexed: bool) -> tuple[list[Branch], bool]:
    """(alternative conditions on one value `v.value`, any of which matches; whether the rule is
    negated). No alternatives means nothing matches.

    `indexed`: the value is a row of the value index, whose `num` holds the numeric reading of
    numeric text (a number's reading is its value); otherwise the reading is computed.
    """
    op, operand = rule.op, rule.value
    if op == "exists":
        return [("1", [])], False
    if op == "contains":
        return [(f"{CONTAINS_FUNCTION}(v.value, ?)", [_text(operand).casefold()])], False
    if op == "in":
        values: Sequence[Scalar] = operand  # type: ignore[assignment]
        texts = [v for v in values if isinstance(v, str)]
        numbers = [v for v in values if not isinstance(v, str)]
        branches: list[Branch] = []
        if texts:
            branches.append((f"v.value IN ({', '.join('?' * len(texts))})", list(texts)))
        if numbers:
            branches.extend(_numeric("IN", numbers, indexed=indexed))
        return branches, False
    sign = _COMPARE.get(op, "=")
    if isinstance(operand, str):
        if sign in ("<", "<="):
            # Numbers sort before all text in SQLite; `>= ''` keeps the comparison to text.
            return [(f"v.value >= '' AND v.value {sign} ?", [operand])], False
        return [(f"v.value {sign} ?", [operand])], op == "ne"
    assert isinstance(operand, int | float)
    return _numeric(sign, [operand], indexed=indexed), op == "ne"


def _numeric(sign: str, operands: Sequence[Scalar], *, indexed: bool) -> list[Branch]:
    """Conditions comparing the value's numeric reading with the operand(s)."""
    marks = f"({', '.join('?' * len(operands))})" if sign == "IN" else "?"
    if not indexed:
        return [(f"{NUMERIC_FUNCTION}(v.value) {sign} {marks}", list(operands))]
    # A number is its own reading (numbers sort before all text: `< ''` bounds the way up);
    # numeric text has its reading in `num`.
    numbers = f"v.value {sign} {marks}"
    if sign in (">", ">="):
        numbers = f"{numbers} AND v.value < ''"
    return [(numbers, list(operands)), (f"v.num {sign} {marks}", list(operands))]


def numeric_reading(value: object) -> int | float | None:
    """SQL function: the numeric reading of a stored value (see `values.numeric`)."""
    if isinstance(value, str | int | float):
        return numeric(value)
    return None


def _contains(value: object, needle: str) -> bool:
    if value is None:
        return False
    return needle in _text(value).casefold()


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def _rule_scalar(where: str, value: object) -> Scalar:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return value
    raise ValueError(f"{where}: expected a string or a number, got {type(value).__name__}")
