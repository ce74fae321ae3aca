"""Live Braze lookups for the UI's pickers: segments and campaigns, with their details.

Each call is synchronous (it runs its own event loop, so call it from a thread worker) and opens
a short-lived client with a short timeout and few retries, so a picker answers or fails within
seconds. Failures are raised as the typed errors of `bctui.braze` (`InvalidApiKey`,
`MissingPermission`, `BrazeUnreachable`, `NotFound`, …), which carry Braze's message with the key
redacted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, TypeVar

from bctui.secret import Secret

if TYPE_CHECKING:
    from bctui.braze import BrazeClient, Campaign, CampaignDetails, Segment, SegmentDetails

T = TypeVar("T")
TIMEOUT: Final = 10.0


def _call(endpoint: str, key: Secret, action: Callable[[BrazeClient], Awaitable[T]]) -> T:
    from bctui.braze import BrazeClient
    from bctui.braze.permissions import PROBE_RETRY

    async def run() -> T:
        async with BrazeClient(endpoint, key, timeout=TIMEOUT, retry=PROBE_RETRY) as client:
            return await action(client)

    return asyncio.run(run())


def fetch_segments(endpoint: str, key: Secret) -> list[Segment]:
    """Every (non-archived) segment of the workspace, all pages of /segments/list."""
    return _call(endpoint, key, lambda client: client.list_segments())


def fetch_segment_details(endpoint: str, key: Secret, segment_id: str) -> SegmentDetails:
    """/segments/details of one segment (`NotFound` for an unknown id)."""
    return _call(endpoint, key, lambda client: client.segment_details(segment_id))


def fetch_campaigns(endpoint: str, key: Secret) -> list[Campaign]:
    """Every (non-archived) campaign of the workspace, all pages of /campaigns/list."""
    return _call(endpoint, key, lambda client: client.list_campaigns())


def fetch_campaign_details(endpoint: str, key: Secret, campaign_id: str) -> CampaignDetails:
    """/campaigns/details of one campaign (`NotFound` for an unknown id)."""
    return _call(endpoint, key, lambda client: client.campaign_details(campaign_id))
