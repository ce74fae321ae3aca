"""Fixtures for the profile store tests: a fresh store file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bctui.store import ProfileStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProfileStore]:
    """An empty store in a temporary directory."""
    with ProfileStore(tmp_path / "profiles.db") as opened:
        yield opened
