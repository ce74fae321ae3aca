"""Small readers that turn loosely typed JSON values into typed dataclass fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def text(data: Mapping[str, Any], key: str) -> str | None:
    """A string field (numbers are turned into text), or None."""
    value = data.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def flag(data: Mapping[str, Any], key: str) -> bool | None:
    """A boolean field (also "true"/"false" strings), or None."""
    value = data.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def names(data: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """A list of strings (tags, teams, channels) as a tuple; other items are dropped."""
    value = data.get(key)
    if not isinstance(value, list):
        return ()
    return tuple(str(item) for item in value if isinstance(item, str | int | float))


def rest(data: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    """The fields not in `known` (kept so nothing Braze sends is lost)."""
    return {key: value for key, value in data.items() if key not in known}
