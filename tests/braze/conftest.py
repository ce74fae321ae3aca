"""Fixtures for the Braze client tests: a scripted stand-in Braze server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from braze_standin import StandIn


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """A started stand-in Braze server with nothing scripted yet."""
    with StandIn() as server:
        yield server
