"""A string that never shows itself: in repr, str, f-strings, logs and tracebacks it is masked."""

from __future__ import annotations

from typing import Any, Final

MASK: Final = "••••••"


class Secret:
    """A secret value (API key, AWS secret). Call `reveal()` only where the value is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value, for the one place that puts it on the wire."""
        return self._value

    def masked(self) -> str:
        """A hint safe to show: the last four characters of a long value, else nothing."""
        tail = self._value[-4:] if len(self._value) >= 16 else ""
        return f"{MASK}{tail}"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")
