"""The read endpoints' two shapes: page-numbered listings (/segments/list, /campaigns/list:
100 per page, 0-based, no cursor) and one object by id (/segments/details, /campaigns/details)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bctui.braze.errors import BadRequest, NotFound, UnexpectedResponse

if TYPE_CHECKING:
    from bctui.braze.client import BrazeClient

PAGE_SIZE = 100
MAX_PAGES = 10_000


async def fetch_all(
    client: BrazeClient, path: str, key: str, params: Mapping[str, str | int | bool]
) -> list[Mapping[str, Any]]:
    """Every item of a paged listing: request pages 0, 1, … and stop on a short page.

    A server that ignores `page` would return the same page forever; a page whose first id was
    already seen stops with an error instead of looping.
    """
    items: list[Mapping[str, Any]] = []
    seen: set[str] = set()
    for page in range(MAX_PAGES):
        response = await client.request("GET", path, params={**params, "page": page})
        data = response.data if isinstance(response.data, Mapping) else {}
        chunk = data.get(key)
        if not isinstance(chunk, list):
            raise UnexpectedResponse(
                f"the answer has no {key!r} list",
                path=path,
                endpoint=client.endpoint,
                status=response.status,
            )
        entries = [item for item in chunk if isinstance(item, Mapping)]
        ids = [str(item.get("id")) for item in entries if item.get("id") is not None]
        if ids and ids[0] in seen:
            raise UnexpectedResponse(
                f"page {page} repeats items of an earlier page (is `page` ignored?)",
                path=path,
                endpoint=client.endpoint,
                status=response.status,
            )
        seen.update(ids)
        items.extend(entries)
        if len(chunk) < PAGE_SIZE:
            return items
    raise UnexpectedResponse(
        f"more than {MAX_PAGES} pages", path=path, endpoint=client.endpoint, status=200
    )


async def fetch_one(
    client: BrazeClient, path: str, id_param: str, id_value: str, what: str
) -> Mapping[str, Any]:
    """One object by id; an unknown id raises `NotFound` (Braze answers 400 or 404)."""
    if not id_value:
        raise ValueError(f"{id_param} is required")
    try:
        response = await client.request("GET", path, params={id_param: id_value})
    except (BadRequest, NotFound) as exc:
        raise NotFound(
            path=path,
            endpoint=client.endpoint,
            braze_message=exc.braze_message,
            status=exc.status,
            what=f"{what} {id_value!r}",
        ) from None
    if not isinstance(response.data, Mapping):
        raise UnexpectedResponse(
            "the answer is not a JSON object",
            path=path,
            endpoint=client.endpoint,
            status=response.status,
        )
    return response.data
