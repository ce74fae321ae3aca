"""Segment rules as PostgreSQL predicates over the profile's JSONB properties.

The same meaning as `bctui.store.segments` (read that module's docstring): any value of the
property matching; numbers compare numerically with every value reading as a number (`bctui_num`,
exact decimal arithmetic), text with text values only, bytewise (the "C" collation, as SQLite).
The SQL uses `?` placeholders, so that it composes with the caller's SQL passed to
`PgStore.query`, which translates both.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import orjson

from bctui.store.segments import Rule, SegmentDef
from bctui.store.values import Scalar

_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "ne": "="}
_TEXT = "(v.value #>> '{}')"


def number_param(value: int | float) -> Decimal:
    """A number as the exact decimal PostgreSQL compares it as (a float by its shortest repr,
    which is how the stored JSON spells it)."""
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def segment_sql(segment: SegmentDef, *, alias: str = "p") -> tuple[str, list[object]]:
    """A predicate (and its `?` parameters) true for the segment's members; usable in a WHERE
    clause and as a SELECT column (a boolean)."""
    if not segment.rules:
        return ("TRUE" if segment.match == "all" else "FALSE"), []
    parts: list[str] = []
    params: list[object] = []
    for rule in segment.rules:
        sql, rule_params = rule_sql(rule, alias=alias)
        parts.append(sql)
        params.extend(rule_params)
    joiner = " AND " if segment.match == "all" else " OR "
    return "(" + joiner.join(parts) + ")", params


def rule_sql(rule: Rule, *, alias: str = "p") -> tuple[str, list[object]]:
    """A predicate for one rule: EXISTS over the property's values; text equality as JSONB
    containment instead, which the GIN index on the properties answers."""
    texts = _texts_only(rule)
    if texts is not None:
        if not texts:
            return "FALSE", []
        docs = [orjson.dumps({rule.property: [text]}).decode() for text in texts]
        sql = " OR ".join(f"{alias}.props @> ?::jsonb" for _ in docs)
        sql = f"({sql})" if len(docs) > 1 else sql
        return (f"NOT {sql}" if rule.op == "ne" else sql), list(docs)
    condition, params = _condition(rule)
    sql = (f"EXISTS (SELECT 1 FROM jsonb_array_elements({alias}.props -> ?) AS v(value)"
           f" WHERE {condition})")
    if rule.op == "ne":
        sql = f"NOT {sql}"
    return sql, [rule.property, *params]


def _texts_only(rule: Rule) -> list[str] | None:
    """The texts an `eq`, `ne` or `in` rule compares with when they are all it compares with
    (a text equals only the same text); None for any other rule."""
    if rule.op in ("eq", "ne") and isinstance(rule.value, str):
        return [rule.value]
    if rule.op == "in" and isinstance(rule.value, tuple) and all(
        isinstance(v, str) for v in rule.value
    ):
        return [str(v) for v in rule.value]
    return None


def _condition(rule: Rule) -> tuple[str, list[object]]:
    op, operand = rule.op, rule.value
    if op == "exists":
        return "TRUE", []
    if op == "contains":
        needle = operand if isinstance(operand, str) else str(operand)
        return f"strpos(bctui_fold({_TEXT}), ?) > 0", [needle.casefold()]
    if op == "in":
        values: Sequence[Scalar] = operand  # type: ignore[assignment]
        texts = [v for v in values if isinstance(v, str)]
        numbers = [number_param(v) for v in values if not isinstance(v, str)]
        branches: list[str] = []
        params: list[object] = []
        if texts:
            branches.append(f"(jsonb_typeof(v.value) = 'string' AND {_TEXT} = ANY(?::text[]))")
            params.append(texts)
        if numbers:
            branches.append("bctui_num(v.value) = ANY(?::numeric[])")
            params.append(numbers)
        return ("(" + " OR ".join(branches) + ")") if branches else "FALSE", params
    sign = _COMPARE[op]
    if isinstance(operand, str):
        return (f"(jsonb_typeof(v.value) = 'string' AND {_TEXT} COLLATE \"C\" {sign} ?)",
                [operand])
    assert isinstance(operand, int | float)
    return f"bctui_num(v.value) {sign} ?", [number_param(operand)]
