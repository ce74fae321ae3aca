"""Helpers shared by the profile store tests."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bctui.store import ProfileStore, ProfileWrite, Store, WriteResult

BACKENDS = ["sqlite", "postgresql"]


_databases: dict[int, str] = {}  # the session's shared database, by cluster


def open_backend(backend: str, request: pytest.FixtureRequest, path: Path) -> Store:
    """A new empty store on `backend`: a file at `path`, or a new schema (on its own search
    path) of a database shared by the session's store tests (a new database costs 0.5 s)."""
    if backend == "sqlite":
        return ProfileStore(path)
    import psycopg

    from bctui.store.pg.store import PgStore

    cluster: Any = request.getfixturevalue("pg_cluster")
    database = _databases.get(id(cluster))
    if database is None:
        database = _databases[id(cluster)] = cluster.create_database()
    schema = f"s_{uuid.uuid4().hex[:16]}"
    url = cluster.url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return PgStore(f"{url}?options=-csearch_path%3D{schema}")


def put(store: Store, profile_id: str | None = None, *, level: str | None = None,
        interactions: tuple[str, ...] = (), strategy: str = "set",
        **properties: Any) -> WriteResult:
    """Apply one write (properties merged with `strategy`) in its own transaction."""
    write = ProfileWrite(profile_id, [(k, strategy, v) for k, v in properties.items()], level,
                         interactions)
    with store.transaction() as tx:
        return tx.apply(write)
