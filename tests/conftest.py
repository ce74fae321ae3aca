"""Shared fixtures: a moto S3 server per test session, and a seeded Braze sandbox per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bctui.sandbox import S3Server, Sandbox


@pytest.fixture(scope="session")
def moto_server() -> Iterator[S3Server]:
    """One moto S3 server on loopback for the whole session (one per xdist worker)."""
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_endpoint(moto_server: S3Server) -> str:
    """The session's S3 endpoint URL, emptied of every bucket first."""
    moto_server.reset()
    return moto_server.endpoint_url


@pytest.fixture
def make_sandbox(s3_endpoint: str, moto_server: S3Server) -> Iterator[Callable[..., Sandbox]]:
    """A factory for started sandboxes sharing the session's S3 server; all stopped afterwards.

    Takes `Sandbox`'s keyword arguments, e.g. `make_sandbox(users=50, settings=SimulatorSettings(
    fault_500=0.5))`.
    """
    started: list[Sandbox] = []

    def factory(**kwargs: Any) -> Sandbox:
        kwargs.setdefault("s3", moto_server)
        box = Sandbox(**kwargs)
        box.start()
        started.append(box)
        return box

    try:
        yield factory
    finally:
        for box in reversed(started):
            box.stop()


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """A started `Sandbox(users=200, seed=7)` on the session's (freshly reset) S3 server."""
    return make_sandbox(users=200, seed=7)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """A throwaway PostgreSQL server for the session (one per xdist worker; see pg_cluster.py)."""
    from pg_cluster import PgCluster

    cluster = PgCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_cluster: Any) -> str:
    """The URL (with its password) of a new, empty database on the session's PostgreSQL server."""
    return str(pg_cluster.url(pg_cluster.create_database()))
