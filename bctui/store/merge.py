"""Merge strategies: how an incoming value changes a multi-valued profile property.

Pure functions over value lists. "Empty" incoming means None, "", [] or an absent field (pass
None); with empty incoming every strategy leaves the property unchanged except `clear`, which
empties it.

- `set`: replace all values with the incoming ones.
- `add`: union: the current values in their order, then the incoming ones not already present.
- `sum`: one number, the sum of the current values (several are summed first; none counts as 0)
  and of every incoming value. Numeric strings ("12", "1.5") count as numbers; int + int stays an
  int. A value that is not a number raises `MergeError`.
- `set_if_empty`: the incoming values, only when the property has none.
- `clear`: like `set`, but empty incoming clears the property.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from bctui.store.values import (
    INT64_MAX,
    INT64_MIN,
    MergeError,
    Scalar,
    display,
    normalize,
    numeric,
    value_key,
)

__all__ = ["STRATEGIES", "MergeError", "merge", "normalize"]

STRATEGIES: Final = ("set", "add", "sum", "set_if_empty", "clear")


def merge(strategy: str, current: Sequence[Scalar], incoming: object) -> list[Scalar]:
    """The property's new values after merging `incoming` (raw input) into `current`."""
    function = _STRATEGY.get(strategy)
    if function is None:
        raise ValueError(
            f'unknown merge strategy "{strategy}"; use one of {", ".join(STRATEGIES)}'
        )
    if type(incoming) is str and "\x00" not in incoming:  # the common case, made short
        return function(current, [incoming] if incoming else [])
    try:
        new = normalize(incoming)
    except MergeError as exc:
        raise MergeError(f"{exc} (strategy {strategy})", value=exc.value,
                         strategy=strategy) from None
    return function(current, new)


def _set(current: Sequence[Scalar], new: list[Scalar]) -> list[Scalar]:
    return new if new else list(current)


def _add(current: Sequence[Scalar], new: list[Scalar]) -> list[Scalar]:
    out = list(current)
    if not new:
        return out
    seen = {value_key(v) for v in current}
    for value in new:
        key = value_key(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _sum(current: Sequence[Scalar], new: list[Scalar]) -> list[Scalar]:
    if not new:
        return list(current)
    total: int | float = 0
    for which, values in (("current value", current), ("value", new)):
        for value in values:
            number = numeric(value)
            if number is None:
                raise MergeError(
                    f"cannot sum: the {which} {display(value)} is not a number (strategy sum)",
                    value=value, strategy="sum",
                )
            total += number
    if isinstance(total, int) and not INT64_MIN <= total <= INT64_MAX:
        raise MergeError(f"cannot sum: the total {total} is too large to store (strategy sum)",
                         value=total, strategy="sum")
    if total in (float("inf"), float("-inf")):
        raise MergeError("cannot sum: the total overflows (strategy sum)", value=total,
                         strategy="sum")
    return [total]


def _set_if_empty(current: Sequence[Scalar], new: list[Scalar]) -> list[Scalar]:
    return new if new and not current else list(current)


def _clear(current: Sequence[Scalar], new: list[Scalar]) -> list[Scalar]:
    return new


_STRATEGY: Final[dict[str, Callable[[Sequence[Scalar], list[Scalar]], list[Scalar]]]] = {
    "set": _set,
    "add": _add,
    "sum": _sum,
    "set_if_empty": _set_if_empty,
    "clear": _clear,
}
