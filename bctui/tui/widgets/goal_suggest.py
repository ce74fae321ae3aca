"""Completion for the goal editors' inputs: Braze export fields and the store's property names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from textual.suggester import Suggester

from bctui.engine.models import BRAZE_EXPORT_FIELDS

CUSTOM = "custom_attributes."


class BrazeFieldSuggester(Suggester):
    """Braze user-export fields, `custom_attributes.` first, then known custom attribute names."""

    def __init__(self, custom: Sequence[str] = ()) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.custom = list(custom)

    async def get_suggestion(self, value: str) -> str | None:
        if value.startswith(CUSTOM):
            return next((f"{CUSTOM}{c}" for c in self.custom if f"{CUSTOM}{c}".startswith(value)
                         and len(value) < len(CUSTOM) + len(c)), None)  # fmt: skip
        for candidate in (CUSTOM, *BRAZE_EXPORT_FIELDS):
            if candidate.startswith(value) and candidate != value:
                return candidate
        return None


class PropertySuggester(Suggester):
    """Property names of the store: from a preloaded list, else asked of the store per prefix.

    `names` is filled by the screen's worker; when it was cut short (`complete` False) a prefix
    it cannot answer is looked up with `lookup` in a thread, so typing never blocks on SQLite.
    """

    def __init__(self, lookup: Callable[[str], list[str]] | None = None) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.names: list[str] = []
        self.complete = False
        self.lookup = lookup

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        found = next((n for n in self.names if n.startswith(value) and n != value), None)
        if found is not None or self.complete or self.lookup is None:
            return found
        names = await asyncio.to_thread(self.lookup, value)
        return next((n for n in names if n != value), None)
