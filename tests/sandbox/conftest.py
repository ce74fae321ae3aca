"""Fixtures for the sandbox's own tests: raw httpx clients (never the bctui Braze client)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from bctui.sandbox import Sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox's Braze endpoint with the all-permissions key."""
    with httpx.Client(
        base_url=sandbox.braze_url,
        headers={"Authorization": f"Bearer {sandbox.api_key}"},
        timeout=10.0,
    ) as http:
        yield http


@pytest.fixture
def anonymous(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """An httpx client on the sandbox's Braze endpoint without any Authorization header."""
    with httpx.Client(base_url=sandbox.braze_url, timeout=10.0) as http:
        yield http
