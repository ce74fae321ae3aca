"""Helpers shared by the profile store tests."""

from __future__ import annotations

from typing import Any

from bctui.store import ProfileStore, ProfileWrite, WriteResult


def put(store: ProfileStore, profile_id: str | None = None, *, level: str | None = None,
        interactions: tuple[str, ...] = (), strategy: str = "set",
        **properties: Any) -> WriteResult:
    """Apply one write (properties merged with `strategy`) in its own transaction."""
    write = ProfileWrite(profile_id, [(k, strategy, v) for k, v in properties.items()], level,
                         interactions)
    with store.transaction() as tx:
        return tx.apply(write)
