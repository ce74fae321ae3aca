"""Fixtures for the profile store tests: a fresh store per test, on each backend.

Every test taking `store` (or `new_store`) runs on SQLite and on PostgreSQL (a fresh database
on the session's throwaway server). A test about something only SQLite has (the file, its
permissions, WAL, the value index's tables) says so with `@pytest.mark.sqlite_only("why")`;
its PostgreSQL run is skipped with that reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from store_helpers import BACKENDS, open_backend

from bctui.store import Store


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): the test is about the SQLite store only"
    )


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store backend this run of the test uses."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _sqlite_only(request: pytest.FixtureRequest) -> None:
    """Skip the PostgreSQL run of a test marked `sqlite_only`, saying why."""
    marker = request.node.get_closest_marker("sqlite_only")
    params = getattr(getattr(request.node, "callspec", None), "params", {})
    if marker is not None and "postgresql" in params.values():
        pytest.skip(f"SQLite only: {marker.args[0]}")


@pytest.fixture
def new_store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Store]]:
    """Opens another new, empty store on the test's backend per call (closed afterwards)."""
    with ExitStack() as stack:
        count = 0

        def make() -> Store:
            nonlocal count
            count += 1
            return stack.enter_context(
                open_backend(backend, request, tmp_path / f"profiles-{count}.db")
            )

        yield make


@pytest.fixture
def store(new_store: Callable[[], Store]) -> Store:
    """An empty store in a temporary directory (SQLite) or database (PostgreSQL)."""
    return new_store()
