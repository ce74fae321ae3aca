"""The baseline for bench/export.py: a user's own script sending profiles to /users/track.

It reads the first LIMIT profiles of a JSON-lines file, builds each attribute object the way a
hand-written script would (external id plus the same 10 attributes bctui's bench goal sends), and
sends sequential batches of 75 with `braze-client` from PyPI (`pip install braze-client`). That
package pins tenacity<6, whose asyncio module uses `asyncio.coroutine` (gone in Python 3.11), so
`types.coroutine` stands in for it before the import; nothing else of the package is touched. Where
braze-client is not installed, the same loop runs on plain `requests`. Prints one JSON line:
{"client", "sent", "requests", "seconds"}.

    python bench/baseline_client.py --endpoint URL --key KEY FILE [--limit 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import types
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

BATCH = 75


def objects(path: Path, limit: int) -> Iterator[dict[str, Any]]:
    """Attribute objects for the first `limit` profiles of `path`."""
    with path.open() as lines:
        for line in islice(lines, limit):
            record = json.loads(line)
            item: dict[str, Any] = {"external_id": record["external_id"]}
            for key, value in record.items():
                if key.startswith("attr_"):
                    item[f"bench_{key}"] = value
            item["bc_profile_id"] = record["external_id"]
            item["bc_source"] = "bench"
            yield item


def braze_client_sender(endpoint: str, key: str) -> tuple[str, Callable[[list[Any]], None]]:
    """`BrazeClient.user_track` from the braze-client package."""
    if not hasattr(asyncio, "coroutine"):
        asyncio.coroutine = types.coroutine  # type: ignore[attr-defined]
    from braze.client import BrazeClient  # type: ignore[import-untyped,unused-ignore]

    client = BrazeClient(api_key=key, api_url=endpoint)

    def send(batch: list[Any]) -> None:
        response = client.user_track(attributes=batch)
        if not response["success"]:
            raise RuntimeError(f"braze-client: {response}")

    return "braze-client", send


def requests_sender(endpoint: str, key: str) -> tuple[str, Callable[[list[Any]], None]]:
    """The same loop on plain `requests`, for where braze-client cannot be installed."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {key}"

    def send(batch: list[Any]) -> None:
        for _attempt in range(5):
            answer = session.post(f"{endpoint}/users/track", json={"attributes": batch}, timeout=10)
            if answer.status_code == 429:
                reset = float(answer.headers.get("X-RateLimit-Reset", time.time() + 1))
                time.sleep(max(0.0, reset - time.time()))
                continue
            answer.raise_for_status()
            return
        raise RuntimeError("requests: still rate limited after 5 attempts")

    return "requests", send


def main() -> int:
    """Send the slice and print what it took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--limit", type=int, default=20_000)
    parser.add_argument("--client", choices=("auto", "braze-client", "requests"), default="auto")
    args = parser.parse_args()
    if args.client == "requests":
        name, send = requests_sender(args.endpoint, args.key)
    else:
        try:
            name, send = braze_client_sender(args.endpoint, args.key)
        except ImportError:
            if args.client == "braze-client":
                raise
            name, send = requests_sender(args.endpoint, args.key)
    sent = requests_made = 0
    stream = objects(args.file, args.limit)
    started = time.perf_counter()
    while batch := list(islice(stream, BATCH)):
        send(batch)
        sent += len(batch)
        requests_made += 1
    seconds = time.perf_counter() - started
    print(json.dumps({"client": name, "sent": sent, "requests": requests_made, "seconds": seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
