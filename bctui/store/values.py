"""Property values: what a scalar is, how raw input becomes a value list, and numeric readings."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Final

import orjson

Scalar = str | int | float
"""One property value. Booleans, objects and None never get stored as such (see `normalize`)."""

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1

# A plain decimal number: no underscores, no "inf"/"nan", no hex — what a person writes as a number.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER_START: Final = frozenset("+-.0123456789")


class MergeError(ValueError):
    """A value that a merge strategy (or the store) cannot use; names the value and the strategy."""

    def __init__(self, message: str, *, value: object = None, strategy: str = "") -> None:
        super().__init__(message)
        self.value = value
        self.strategy = strategy


def normalize(value: object) -> list[Scalar]:
    """Turn raw input (a scalar, a list, an object, None) into an ordered list of distinct scalars.

    Booleans become "true"/"false", objects (and lists nested inside a list) compact JSON text with
    sorted keys, None and "" are dropped. Numbers keep their type; 1 and 1.0 count as the same
    value (the first one given is kept), while 12 and "12" are different values.
    """
    kind = type(value)
    if kind is str and "\x00" not in value:  # type: ignore[operator]
        return [value] if value else []  # type: ignore[list-item]
    if kind is list or kind is tuple:
        out: list[Scalar] = []
        seen: set[tuple[bool, Scalar]] = set()
        for item in value:  # type: ignore[attr-defined]
            scalar = scalar_of(item)
            if scalar is None:
                continue
            key = (type(scalar) is str, scalar)
            if key not in seen:
                seen.add(key)
                out.append(scalar)
        return out
    scalar = scalar_of(value)
    return [] if scalar is None else [scalar]


def scalar_of(value: object) -> Scalar | None:
    """One raw item as a scalar, or None for "no value"; lists inside lists become JSON text."""
    kind = type(value)
    if kind is str:
        if "\x00" in value:  # type: ignore[operator]
            raise MergeError(f"the text {display(value)} contains a NUL character, which cannot "
                             "be stored; remove it", value=value)
        return value or None  # type: ignore[return-value]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:  # type: ignore[operator]
            raise MergeError(
                f"the number {value} is too large to store (the limit is ±9.2e18); "
                "send it as a string instead",
                value=value,
            )
        return value  # type: ignore[return-value]
    if kind is float:
        if not math.isfinite(value):  # type: ignore[arg-type]
            raise MergeError(f"the number {value} cannot be stored; send a finite number",
                             value=value)
        return value  # type: ignore[return-value]
    if value is None:
        return None
    if isinstance(value, dict | list | tuple):
        try:
            return orjson.dumps(
                value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
            ).decode()
        except TypeError as exc:
            raise MergeError(f"the object {value!r} cannot be stored as JSON: {exc}",
                             value=value) from exc
    # Subclasses (an IntEnum, a str subclass) are stored as their plain value.
    if isinstance(value, str):
        return scalar_of(str(value))
    if isinstance(value, int):
        return scalar_of(int(value))
    if isinstance(value, float):
        return scalar_of(float(value))
    raise MergeError(f"a {type(value).__name__} value cannot be stored; "
                     "use a string, a number, a list or an object", value=value)


def numeric(value: Scalar) -> int | float | None:
    """The numeric reading of a value: the number itself, a numeric string parsed, else None.

    "12" reads as 12 and "1.5" as 1.5 (surrounding blanks allowed); "1_000", "inf" and "0x1f" are
    not numbers here, because nobody types them meaning a number.
    """
    if type(value) is str:
        if not value or (value[0] not in _NUMBER_START and not value[0].isspace()):
            return None  # the common case (names, e-mails, dates): no regex needed
        text = value.strip()
        if not _NUMBER.fullmatch(text):
            return None
        if _INTEGER.fullmatch(text):
            number = int(text)
            return number if INT64_MIN <= number <= INT64_MAX else float(number)
        result = float(text)
        return result if math.isfinite(result) else None
    return value  # type: ignore[return-value]


def same_values(a: Sequence[Scalar], b: Sequence[Scalar]) -> bool:
    """Whether two value lists would be stored identically (order, values and types)."""
    return a == b and list(map(type, a)) == list(map(type, b))


def value_key(value: Scalar) -> tuple[bool, Scalar]:
    """The identity of a value: for "distinct" (text and numbers never collide, 1 == 1.0), and as
    a lookup key (a string finds exactly that text, a number any value reading as that number)."""
    return (type(value) is str, value)


def identifier_key(value: object) -> tuple[bool, Scalar] | None:
    """The lookup key of a raw identifier value, or None when no stored value can equal it."""
    try:
        scalar = scalar_of(value)
    except MergeError:
        return None
    return None if scalar is None else (type(scalar) is str, scalar)


def lookup_keys(value: Scalar) -> Iterable[tuple[bool, Scalar]]:
    """The keys under which a stored value is found: its text, and its numeric reading if any."""
    if type(value) is str:
        yield (True, value)
        number = numeric(value)
        if number is not None:
            yield (False, number)
    else:
        yield (False, value)


def display(value: object) -> str:
    """A value quoted for an error message, shortened so a huge value cannot flood the output."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
