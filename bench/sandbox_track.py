"""Benchmark: push attribute objects through `track_many` into a sandbox in another process.

Starts `python -m bctui.sandbox --bench` (its own process, so client and server do not share a GIL),
then sends N attribute objects (10 attributes each) with the client's own batching (75 per request)
and pacing, at each latency, and prints requests/s, objects/s, 429s and elapsed time. Braze's
ceiling is 3,000 requests per 3 s, i.e. 1,000 requests/s or 75,000 objects/s.

    python bench/sandbox_track.py [--objects 300000] [--latency-ms 0 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from bctui.braze import BrazeClient, WaitEvent
from bctui.secret import Secret

READY_TIMEOUT = 60.0


@dataclass
class Figures:
    """What one run measured."""

    latency_ms: float
    objects: int
    requests: int
    elapsed: float
    client_429s: int
    server_429s: int
    waits: int
    failed_objects: int

    @property
    def requests_per_second(self) -> float:
        """Requests answered per second."""
        return self.requests / self.elapsed

    @property
    def objects_per_second(self) -> float:
        """Attribute objects delivered per second."""
        return self.objects / self.elapsed


class SandboxProcess:
    """`python -m bctui.sandbox --bench` in a child process; reads its endpoint and key."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.key = ""

    def __enter__(self) -> SandboxProcess:
        command = [sys.executable, "-m", "bctui.sandbox", "--bench", "--users", "0"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT
        for line in self.process.stdout:
            if match := re.match(r"Braze REST endpoint\s+(\S+)", line):
                self.url = match.group(1)
            if match := re.match(r"export BCTUI_SANDBOX_BRAZE_API_KEY=(\S+)", line):
                self.key = match.group(1)
            if (self.url and self.key) or time.monotonic() > deadline:
                break
        if not (self.url and self.key):
            self.__exit__()
            raise RuntimeError("the sandbox did not print its endpoint and key")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the sandbox's unauthenticated admin API."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())


def attribute_objects(count: int, run: int) -> Iterator[dict[str, Any]]:
    """`count` attribute objects with an external id and 10 custom attributes each."""
    base = {f"bench_attr_{k}": f"value-{k}" for k in range(1, 10)}
    for i in range(count):
        yield {"external_id": f"bench-{run}-{i}", **base, "bench_attr_0": i}


async def run_once(
    box: SandboxProcess, objects: int, latency_ms: float, concurrency: int, run: int
) -> Figures:
    """Send `objects` objects at `latency_ms` and measure."""
    box.admin("POST", "/_sandbox/settings", {"latency_ms": latency_ms})
    box.admin("POST", "/_sandbox/reset-stats")
    waits: list[WaitEvent] = []
    requests = failed = delivered = 0
    async with BrazeClient(
        box.url, Secret(box.key), max_connections=concurrency, on_wait=waits.append
    ) as client:
        started = time.perf_counter()
        stream = client.track_many(attribute_objects(objects, run), concurrency=concurrency)
        async with aclosing(stream):
            async for batch, result in stream:
                requests += 1
                delivered += len(batch)
                failed += len(result.failures("attributes", len(batch)))
        elapsed = time.perf_counter() - started
        client_429s = client.stats.rate_limited
    stats = box.admin("GET", "/_sandbox/stats")
    if delivered != objects or stats["attributes_processed"] != objects - failed:
        raise RuntimeError(
            f"sent {delivered} of {objects} objects, "
            f"Braze processed {stats['attributes_processed']}"
        )
    return Figures(
        latency_ms,
        objects,
        requests,
        elapsed,
        client_429s,
        stats["rate_limited"],
        len(waits),
        failed,
    )


def report(label: str, runs: list[Figures]) -> None:
    """Print one line per run and the medians."""
    for index, run in enumerate(runs, 1):
        print(
            f"  run {index}: {run.requests_per_second:7.0f} req/s"
            f"  {run.objects_per_second:8.0f} obj/s"
            f"  429s {run.client_429s:4d} (server {run.server_429s})  waits {run.waits:3d}"
            f"  failed {run.failed_objects}  elapsed {run.elapsed:6.2f} s"
        )
    if len(runs) > 1:
        print(
            f"  median: {statistics.median(r.requests_per_second for r in runs):7.0f} req/s  "
            f"{statistics.median(r.objects_per_second for r in runs):8.0f} obj/s  "
            f"429s {statistics.median(r.client_429s for r in runs):g}  "
            f"elapsed {statistics.median(r.elapsed for r in runs):6.2f} s"
        )
    print(f"  ({label})")


def main() -> int:
    """Parse options, start the sandbox, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=300_000, help="attribute objects per run")
    parser.add_argument(
        "--latency-ms", type=float, nargs="+", default=[0.0, 100.0], help="latencies to run at"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per latency (medians shown)")
    parser.add_argument(
        "--concurrency", type=int, default=192, help="requests in flight (and connections)"
    )
    args = parser.parse_args()
    print(
        f"bctui track benchmark: {args.objects:,} objects x 10 attributes, 75 per request, "
        f"concurrency {args.concurrency}, sandbox in a separate process (pid {os.getpid()} client)"
    )
    with SandboxProcess() as box:
        run = 0
        for latency in args.latency_ms:
            print(f"latency {latency:g} ms:")
            figures = []
            for _ in range(args.repeat):
                run += 1
                figures.append(
                    asyncio.run(run_once(box, args.objects, latency, args.concurrency, run))
                )
            report("Braze's ceiling: 1000 req/s, 75000 obj/s", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
