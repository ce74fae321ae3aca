"""Fixtures for the S3 tests: moto with IAM authentication in its own process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from s3_standin import MotoWithAuth


@pytest.fixture(scope="module")
def moto_auth() -> Iterator[MotoWithAuth]:
    """A moto server that enforces IAM credentials and policies."""
    server = MotoWithAuth()
    try:
        yield server
    finally:
        server.close()
