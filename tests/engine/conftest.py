"""The engine's store-touching tests run on both backends: SQLite, and PostgreSQL (a new
database on the session's throwaway server for every Workspace)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import run_helpers

# Modules whose tests run on PostgreSQL too (the rest of tests/engine is about config, schedules
# and other things no store backend changes).
BOTH_BACKENDS = {
    "test_run_export", "test_run_import", "test_run_crash", "test_run_faults",
    "test_run_events", "test_export_payloads", "test_export_edge_cases", "test_run_launch",
    "test_run_shared", "test_two_way", "test_export_types", "test_export_budget",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `store_backend` for the modules that run on both backends."""
    if "store_backend" not in metafunc.fixturenames:
        return
    module = Path(str(metafunc.module.__file__)).stem
    backends = ["sqlite", "postgresql"] if module in BOTH_BACKENDS else ["sqlite"]
    if module == "test_run_shared":
        backends = ["postgresql"]
    metafunc.parametrize("store_backend", backends, indirect=True)


@pytest.fixture(autouse=True)
def store_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend every Workspace of the test is created on."""
    backend = getattr(request, "param", "sqlite")
    if backend == "postgresql":
        cluster: Any = request.getfixturevalue("pg_cluster")
        from pg_cluster import PASSWORD

        def database() -> tuple[str, str]:
            return str(cluster.url(cluster.create_database(), password=False)), PASSWORD

        run_helpers.pg_database = database
    try:
        yield backend
    finally:
        run_helpers.pg_database = None
        if backend == "postgresql":
            from bctui.engine.runs import shared

            shared.close_all()  # the test's databases are not used again
