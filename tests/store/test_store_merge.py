"""Merge strategies and value normalization, case by case."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bctui.store.merge import STRATEGIES, MergeError, merge, normalize

ABSENT = None
CUR_EMPTY: list[Any] = []
CUR_TWO = ["a", "b"]

# Incoming values for the non-numeric strategies, by name.
INCOMING: dict[str, Any] = {
    "absent": None,
    "empty-string": "",
    "empty-list": [],
    "list-of-empties": [None, ""],
    "scalar": "c",
    "scalar-present": "a",
    "list": ["c", "a", "c"],
    "numbers-and-strings": ["12", 12, 12.0, "1.5"],
    "object": {"z": 1, "a": [True, None]},
    "boolean": False,
}

# (strategy, current, incoming name) -> expected values. Written out, not computed.
EXPECTED: dict[tuple[str, str, str], list[Any]] = {
    ("set", "empty", "absent"): [],
    ("set", "empty", "empty-string"): [],
    ("set", "empty", "empty-list"): [],
    ("set", "empty", "list-of-empties"): [],
    ("set", "empty", "scalar"): ["c"],
    ("set", "empty", "scalar-present"): ["a"],
    ("set", "empty", "list"): ["c", "a"],
    ("set", "empty", "numbers-and-strings"): ["12", 12, "1.5"],
    ("set", "empty", "object"): ['{"a":[true,null],"z":1}'],
    ("set", "empty", "boolean"): ["false"],
    ("set", "two", "absent"): ["a", "b"],
    ("set", "two", "empty-string"): ["a", "b"],
    ("set", "two", "empty-list"): ["a", "b"],
    ("set", "two", "list-of-empties"): ["a", "b"],
    ("set", "two", "scalar"): ["c"],
    ("set", "two", "scalar-present"): ["a"],
    ("set", "two", "list"): ["c", "a"],
    ("set", "two", "numbers-and-strings"): ["12", 12, "1.5"],
    ("set", "two", "object"): ['{"a":[true,null],"z":1}'],
    ("set", "two", "boolean"): ["false"],
    ("add", "empty", "absent"): [],
    ("add", "empty", "empty-string"): [],
    ("add", "empty", "empty-list"): [],
    ("add", "empty", "list-of-empties"): [],
    ("add", "empty", "scalar"): ["c"],
    ("add", "empty", "scalar-present"): ["a"],
    ("add", "empty", "list"): ["c", "a"],
    ("add", "empty", "numbers-and-strings"): ["12", 12, "1.5"],
    ("add", "empty", "object"): ['{"a":[true,null],"z":1}'],
    ("add", "empty", "boolean"): ["false"],
    ("add", "two", "absent"): ["a", "b"],
    ("add", "two", "empty-string"): ["a", "b"],
    ("add", "two", "empty-list"): ["a", "b"],
    ("add", "two", "list-of-empties"): ["a", "b"],
    ("add", "two", "scalar"): ["a", "b", "c"],
    ("add", "two", "scalar-present"): ["a", "b"],
    ("add", "two", "list"): ["a", "b", "c"],
    ("add", "two", "numbers-and-strings"): ["a", "b", "12", 12, "1.5"],
    ("add", "two", "object"): ["a", "b", '{"a":[true,null],"z":1}'],
    ("add", "two", "boolean"): ["a", "b", "false"],
    ("set_if_empty", "empty", "absent"): [],
    ("set_if_empty", "empty", "empty-string"): [],
    ("set_if_empty", "empty", "empty-list"): [],
    ("set_if_empty", "empty", "list-of-empties"): [],
    ("set_if_empty", "empty", "scalar"): ["c"],
    ("set_if_empty", "empty", "scalar-present"): ["a"],
    ("set_if_empty", "empty", "list"): ["c", "a"],
    ("set_if_empty", "empty", "numbers-and-strings"): ["12", 12, "1.5"],
    ("set_if_empty", "empty", "object"): ['{"a":[true,null],"z":1}'],
    ("set_if_empty", "empty", "boolean"): ["false"],
    ("set_if_empty", "two", "absent"): ["a", "b"],
    ("set_if_empty", "two", "empty-string"): ["a", "b"],
    ("set_if_empty", "two", "empty-list"): ["a", "b"],
    ("set_if_empty", "two", "list-of-empties"): ["a", "b"],
    ("set_if_empty", "two", "scalar"): ["a", "b"],
    ("set_if_empty", "two", "scalar-present"): ["a", "b"],
    ("set_if_empty", "two", "list"): ["a", "b"],
    ("set_if_empty", "two", "numbers-and-strings"): ["a", "b"],
    ("set_if_empty", "two", "object"): ["a", "b"],
    ("set_if_empty", "two", "boolean"): ["a", "b"],
    ("clear", "empty", "absent"): [],
    ("clear", "empty", "empty-string"): [],
    ("clear", "empty", "empty-list"): [],
    ("clear", "empty", "list-of-empties"): [],
    ("clear", "empty", "scalar"): ["c"],
    ("clear", "empty", "scalar-present"): ["a"],
    ("clear", "empty", "list"): ["c", "a"],
    ("clear", "empty", "numbers-and-strings"): ["12", 12, "1.5"],
    ("clear", "empty", "object"): ['{"a":[true,null],"z":1}'],
    ("clear", "empty", "boolean"): ["false"],
    ("clear", "two", "absent"): [],
    ("clear", "two", "empty-string"): [],
    ("clear", "two", "empty-list"): [],
    ("clear", "two", "list-of-empties"): [],
    ("clear", "two", "scalar"): ["c"],
    ("clear", "two", "scalar-present"): ["a"],
    ("clear", "two", "list"): ["c", "a"],
    ("clear", "two", "numbers-and-strings"): ["12", 12, "1.5"],
    ("clear", "two", "object"): ['{"a":[true,null],"z":1}'],
    ("clear", "two", "boolean"): ["false"],
}

CURRENT = {"empty": CUR_EMPTY, "two": CUR_TWO}


def test_the_table_covers_every_case() -> None:
    expected = {(s, c, i) for s in STRATEGIES if s != "sum" for c in CURRENT for i in INCOMING}
    assert set(EXPECTED) == expected


@pytest.mark.parametrize(("strategy", "current", "incoming"), sorted(EXPECTED))
def test_merge(strategy: str, current: str, incoming: str) -> None:
    before = list(CURRENT[current])
    result = merge(strategy, CURRENT[current], INCOMING[incoming])
    assert result == EXPECTED[(strategy, current, incoming)]
    assert [type(v) for v in result] == [type(v) for v in EXPECTED[(strategy, current, incoming)]]
    assert CURRENT[current] == before  # the caller's list is never changed


# sum: (current, incoming) -> expected, or the MergeError text it must contain.
SUM_CASES: list[tuple[list[Any], Any, list[Any] | str]] = [
    ([], None, []),
    ([], "", []),
    ([], [], []),
    ([], 3, [3]),
    ([], "12", [12]),
    ([], "1.5", [1.5]),
    ([], ["1", 2, " 3 "], [6]),
    ([], [1, 2.5], [3.5]),
    ([7], None, [7]),
    ([7], [], [7]),
    (["7"], "", ["7"]),
    ([7], 3, [10]),
    ([7], "-2", [5]),
    ([7], 0.5, [7.5]),
    ([2, "3"], 1, [6]),  # several current values are summed first
    (["1.5"], "1.5", [3.0]),
    ([7], [1, 1], [8]),  # incoming values are distinct first: [1, 1] is one value
    ([7], [1, "1"], [9]),  # 1 and "1" are different values: both count
    (["abc"], None, ["abc"]),  # nothing to add: nothing checked
    (["abc"], 1, "the current value 'abc' is not a number"),
    ([1], "abc", "the value 'abc' is not a number"),
    ([1], ["2", "x"], "the value 'x' is not a number"),
    ([1], True, "the value 'true' is not a number"),
    ([1], "1_000", "the value '1_000' is not a number"),
    ([1], "inf", "the value 'inf' is not a number"),
    ([2**62], 2**62, "too large"),
]


@pytest.mark.parametrize(("current", "incoming", "expected"), SUM_CASES)
def test_sum(current: list[Any], incoming: Any, expected: list[Any] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(MergeError, match="sum") as caught:
            merge("sum", current, incoming)
        assert expected in str(caught.value)
        assert caught.value.strategy == "sum"
        return
    result = merge("sum", current, incoming)
    assert result == expected
    assert [type(v) for v in result] == [type(v) for v in expected]


def test_sum_of_ints_stays_int_and_a_float_makes_a_float() -> None:
    assert type(merge("sum", [1], 2)[0]) is int
    assert type(merge("sum", [1], "2")[0]) is int
    assert type(merge("sum", [1], 2.0)[0]) is float
    assert type(merge("sum", ["1.0"], 2)[0]) is float


def test_merge_error_is_a_value_error_naming_the_value() -> None:
    with pytest.raises(ValueError, match="'twelve'"):
        merge("sum", [], "twelve")


def test_unknown_strategy_is_a_programming_error_not_a_merge_error() -> None:
    with pytest.raises(ValueError, match="unknown merge strategy") as caught:
        merge("replace", [], "x")
    assert not isinstance(caught.value, MergeError)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_unstorable_incoming_values_raise_merge_error_for_every_strategy(strategy: str) -> None:
    with pytest.raises(MergeError, match=strategy):
        merge(strategy, [], 2**70)
    with pytest.raises(MergeError, match=strategy):
        merge(strategy, [], [1, math.nan])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, []),
        ("", []),
        ([], []),
        ((), []),
        ("x", ["x"]),
        (0, [0]),
        (0.0, [0.0]),
        (-3, [-3]),
        (True, ["true"]),
        (False, ["false"]),
        ({"b": 2, "a": {"d": None, "c": [1]}}, ['{"a":{"c":[1],"d":null},"b":2}']),
        ({}, ["{}"]),
        (["a", None, "", "a", "b"], ["a", "b"]),
        ([1, 1.0, "1", "1"], [1, "1"]),  # 1 and 1.0 are one value; "1" is another
        ([1.0, 1], [1.0]),  # the first one given is kept
        ([["x", 1], "y"], ['["x",1]', "y"]),
        ([True, "true"], ["true"]),
        ("é 東京 🚀", ["é 東京 🚀"]),
        (2**63 - 1, [2**63 - 1]),
        (-(2**63), [-(2**63)]),
    ],
)
def test_normalize(raw: Any, expected: list[Any]) -> None:
    result = normalize(raw)
    assert result == expected
    assert [type(v) for v in result] == [type(v) for v in expected]


@pytest.mark.parametrize("raw", [2**63, -(2**63) - 1, math.inf, -math.inf, math.nan, object(),
                                 b"bytes", [1, {1, 2}], "nul\x00", ["ok", "\x00"]])
def test_normalize_refuses_values_the_store_cannot_keep(raw: Any) -> None:
    with pytest.raises(MergeError):
        normalize(raw)
