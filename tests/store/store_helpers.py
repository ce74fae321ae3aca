"""Helpers shared by the profile store tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bctui.store import ProfileStore, ProfileWrite, Store, WriteResult

BACKENDS = ["sqlite", "postgresql"]


def open_backend(backend: str, request: pytest.FixtureRequest, path: Path) -> Store:
    """A new empty store on `backend` (a file at `path`, or a new PostgreSQL database)."""
    if backend == "sqlite":
        return ProfileStore(path)
    from bctui.store.pg.store import PgStore

    cluster: Any = request.getfixturevalue("pg_cluster")
    return PgStore(cluster.url(cluster.create_database()))


def put(store: Store, profile_id: str | None = None, *, level: str | None = None,
        interactions: tuple[str, ...] = (), strategy: str = "set",
        **properties: Any) -> WriteResult:
    """Apply one write (properties merged with `strategy`) in its own transaction."""
    write = ProfileWrite(profile_id, [(k, strategy, v) for k, v in properties.items()], level,
                         interactions)
    with store.transaction() as tx:
        return tx.apply(write)
