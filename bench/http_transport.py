"""Benchmark: the HTTP path alone — pre-built /users/track batches through several HTTP clients.

Sends N batches of 75 attribute objects (10 attributes each) to the sandbox in its own process
(`python -m bctui.sandbox --bench --users 0`), side by side in one run, through:

- a:  BrazeClient with FastTransport, the hand-written HTTP/1.1 transport (today's default)
- a': BrazeClient with httpx's own transport (httpx.AsyncHTTPTransport, i.e. httpcore)
- b:  one bare httpx.AsyncClient (httpx's own transport)
- b': one bare httpx.AsyncClient on FastTransport (b with the hand-written transport)
- c:  bare httpx.AsyncClients, the requests spread over K of them
- d:  one bare aiohttp.ClientSession (only if aiohttp is installed; not a bctui dependency)

The bare clients (b–d) do what a careful script would: serialise each batch with orjson, parse the
answer, and on a 429 hold every sender until the window's reset. BrazeClient does its own pacing,
retries and result parsing, so a vs a' is what the hand-written transport buys inside bctui.

Settings: latency 0 ms and 100 ms with Braze's real limit (3,000 requests per fixed 3 s window;
a run starts at a window boundary and requests/s counts the accepted requests of its complete
windows, so 1,000/s = 75,000 profiles/s = 100% of the ceiling), and 0 ms with the limit lifted
(transport capacity: CPU-bound, the sandbox competing for the same two cores). CPU-seconds are the
client process's own (getrusage) and the sandbox's (/proc), per 1,000,000 profiles.

    python bench/http_transport.py [--batches 6000] [--slow-batches 1500] [--repeat 3]
                                   [--concurrency 192] [--clients 12]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import Sandbox

from bctui.braze import BrazeClient, RetryPolicy
from bctui.braze.transport import FastTransport
from bctui.secret import Secret

PER_BATCH = 75
CEILING = 75_000  # profiles/s: 3,000 requests / 3 s × 75 objects
WINDOW = 3.0
LIMIT = 3000
DISTINCT_BATCHES = 200  # cycled, so memory stays small whatever N is


def build_batches(seed: int = 1) -> list[list[dict[str, Any]]]:
    """DISTINCT_BATCHES batches of 75 objects × (external_id + 10 attributes)."""
    rng = random.Random(seed)
    batches = []
    for b in range(DISTINCT_BATCHES):
        batch = []
        for i in range(PER_BATCH):
            obj: dict[str, Any] = {"external_id": f"U{b:04d}{i:03d}"}
            for k in range(10):
                obj[f"bench_attr_{k}"] = (
                    rng.randrange(1_000_000) if k % 2 else f"v{rng.random():.6f}"
                )
            batch.append(obj)
        batches.append(batch)
    return batches


@dataclass
class Result:
    """One run of one variant."""

    wall: float
    done: list[float]  # completion times of accepted requests, seconds from the start
    cpu: float
    sandbox_cpu: float
    limited: int = 0
    extra: dict[str, float] = field(default_factory=dict)


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Gate:
    """Holds every bare sender after a 429 until the window's reset (a script's pacing)."""

    def __init__(self) -> None:
        self.resume_at = 0.0
        self.limited = 0

    async def wait(self) -> None:
        while (delay := self.resume_at - time.time()) > 0:
            await asyncio.sleep(delay)

    def hold(self, headers: Any) -> None:
        self.limited += 1
        reset = headers.get("x-ratelimit-reset")
        retry = headers.get("x-ratelimit-retry-after") or headers.get("retry-after")
        now = time.time()
        until = float(reset) if reset else now + float(retry or 0.5)
        if retry and not reset:
            until = now + float(retry)
        self.resume_at = max(self.resume_at, until)


Send = Callable[[bytes], Awaitable[tuple[int, Any]]]


async def bare_run(
    send: Send, batches: list[list[dict[str, Any]]], n: int, concurrency: int, gate: Gate
) -> list[float]:
    """`concurrency` workers send batches 0..n-1 through `send`, retrying 429s after the gate."""
    done: list[float] = []
    counter = iter(range(n))
    start = time.perf_counter()

    async def worker() -> None:
        for index in counter:
            body = orjson.dumps({"attributes": batches[index % DISTINCT_BATCHES]})
            while True:
                await gate.wait()
                status, headers = await send(body)
                if status == 429:
                    gate.hold(headers)
                    continue
                if status != 201:
                    raise RuntimeError(f"unexpected status {status}")
                done.append(time.perf_counter() - start)
                break

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def run_braze(
    box: dict[str, str], batches: list[list[dict[str, Any]]], n: int, concurrency: int, fast: bool
) -> tuple[list[float], int]:
    transport: httpx.AsyncBaseTransport
    if fast:
        transport = FastTransport(max_connections=concurrency)
    else:
        transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        )
    retry = RetryPolicy(max_attempts=6, max_rate_limited=10_000)
    done: list[float] = []
    async with BrazeClient(
        box["braze"],
        Secret(box["key"]),
        max_connections=concurrency,
        transport=transport,
        retry=retry,
    ) as braze:
        source = (batches[i % DISTINCT_BATCHES] for i in range(n))
        start = time.perf_counter()
        async for _, result in braze.track_batches(source, concurrency=concurrency):
            if not result.accepted:
                raise RuntimeError(f"rejected: {result.message}")
            done.append(time.perf_counter() - start)
        return done, braze.stats.rate_limited


async def run_httpx(
    box: dict[str, str],
    batches: list[list[dict[str, Any]]],
    n: int,
    concurrency: int,
    clients: int,
    fast: bool = False,
) -> tuple[list[float], int]:
    per = max(1, math.ceil(concurrency / clients))
    headers = {"Authorization": f"Bearer {box['key']}", "Content-Type": "application/json"}
    pool = [
        httpx.AsyncClient(
            headers=headers,
            timeout=30,
            limits=httpx.Limits(max_connections=per, max_keepalive_connections=per),
            transport=FastTransport(max_connections=per) if fast else None,
        )
        for _ in range(clients)
    ]
    url = httpx.URL(f"{box['braze']}/users/track")
    turn = iter(range(1 << 62))
    gate = Gate()

    async def send(body: bytes) -> tuple[int, Any]:
        client = pool[next(turn) % clients]
        response = await client.post(url, content=body)
        orjson.loads(response.content)
        return response.status_code, response.headers

    try:
        return await bare_run(send, batches, n, concurrency, gate), gate.limited
    finally:
        for client in pool:
            await client.aclose()


async def run_aiohttp(
    box: dict[str, str], batches: list[list[dict[str, Any]]], n: int, concurrency: int
) -> tuple[list[float], int]:
    import aiohttp

    headers = {"Authorization": f"Bearer {box['key']}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    url = f"{box['braze']}/users/track"
    gate = Gate()
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def send(body: bytes) -> tuple[int, Any]:
            async with session.post(url, data=body) as response:
                orjson.loads(await response.read())
                return response.status, response.headers

        return await bare_run(send, batches, n, concurrency, gate), gate.limited


def aiohttp_available() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


SLOW = ("a' BrazeClient + httpx transport", "b  bare httpx, 1 client")


def variants(concurrency: int, clients: int) -> dict[str, Callable[..., Any]]:
    table: dict[str, Callable[..., Any]] = {
        "a  BrazeClient + FastTransport": lambda box, b, n: run_braze(box, b, n, concurrency, True),
        "a' BrazeClient + httpx transport": lambda box, b, n: run_braze(
            box, b, n, concurrency, False
        ),
        "b  bare httpx, 1 client": lambda box, b, n: run_httpx(box, b, n, concurrency, 1),
        "b' bare httpx + FastTransport": lambda box, b, n: run_httpx(
            box, b, n, concurrency, 1, fast=True
        ),
        f"c  bare httpx, {clients} clients": lambda box, b, n: run_httpx(
            box, b, n, concurrency, clients
        ),
    }
    if aiohttp_available():
        table["d  bare aiohttp, 1 session"] = lambda box, b, n: run_aiohttp(box, b, n, concurrency)
    return table


def wait_for_window() -> None:
    """Sleep to just past the next boundary of the sandbox's fixed 3 s windows (epoch-aligned)."""
    now = time.time()
    time.sleep(math.floor(now / WINDOW) * WINDOW + WINDOW + 0.02 - now)


def windowed_rate(done: list[float], wall: float) -> float:
    """Accepted requests per second over the run's complete windows (≤ 1,000/s by the limit)."""
    whole = math.floor(wall / WINDOW)
    if whole == 0:
        return len(done) / wall
    horizon = whole * WINDOW
    return sum(1 for t in done if t <= horizon) / horizon


def run_one(
    runner: Callable[..., Any],
    sandbox: Sandbox,
    batches: list[list[dict[str, Any]]],
    n: int,
    limited_window: bool,
) -> dict[str, float]:
    if limited_window:
        wait_for_window()
    cpu0, box0, t0 = own_cpu(), sandbox.cpu_seconds(), time.perf_counter()
    done, limited = asyncio.run(runner(sandbox.endpoints, batches, n))
    wall = time.perf_counter() - t0
    cpu, box_cpu = own_cpu() - cpu0, sandbox.cpu_seconds() - box0
    assert len(done) == n, (len(done), n)
    rate = windowed_rate(done, wall) if limited_window else n / wall
    per_million = 1_000_000 / (n * PER_BATCH)
    return {
        "req/s": rate,
        "profiles/s": rate * PER_BATCH,
        "% ceiling": rate * PER_BATCH / CEILING * 100,
        "wall s": wall,
        "429s": limited,
        "client CPU-s/1M": cpu * per_million,
        "sandbox CPU-s/1M": box_cpu * per_million,
    }


COLUMNS = ["req/s", "profiles/s", "% ceiling", "wall s", "429s", "client CPU-s/1M",
           "sandbox CPU-s/1M"]  # fmt: skip


def print_table(title: str, rows: dict[str, list[dict[str, float]]]) -> None:
    print(f"\n{title}  (medians of {len(next(iter(rows.values())))} runs)")
    header = f"{'variant':36}" + "".join(f"{c:>17}" for c in COLUMNS)
    print(header + f"{'req/s vs a':>12}{'CPU vs a':>10}")
    medians = {
        name: {c: statistics.median(r[c] for r in runs) for c in COLUMNS}
        for name, runs in rows.items()
    }
    base = next(iter(medians.values()))
    for name, figures in medians.items():
        cells = "".join(
            f"{figures[c]:>17,.0f}" if c not in ("% ceiling", "wall s") else f"{figures[c]:>17.1f}"
            for c in COLUMNS
        )
        speed = figures["req/s"] / base["req/s"]
        cpu = figures["client CPU-s/1M"] / base["client CPU-s/1M"]
        print(f"{name:36}{cells}{speed:>11.2f}x{cpu:>9.2f}x")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=6000, help="requests per run (N)")
    parser.add_argument(
        "--slow-batches",
        type=int,
        default=1500,
        help="requests per run for the variants on one httpcore pool (a', b), which are slow",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=192, help="requests in flight")
    parser.add_argument("--clients", type=int, default=12, help="httpx clients for variant c")
    parser.add_argument(
        "--settings", default="0,100,0-unlimited", help="comma list: latency ms, '-unlimited'"
    )
    args = parser.parse_args()
    batches = build_batches()
    table = variants(args.concurrency, args.clients)
    sandbox = Sandbox(0, 0.0).__enter__()
    print(
        f"{args.batches} requests × {PER_BATCH} profiles per run ({args.slow_batches} for a' and "
        f"b), {args.concurrency} in flight; "
        f"the sandbox runs in its own process on the same {os.cpu_count()} cores, so figures at "
        "0 ms are bounded by both processes sharing the CPU. With the real limit, req/s counts "
        "the requests accepted in a run's complete 3 s windows (a run shorter than one window "
        "is a burst and may show more than 100%). Python "
        f"{sys.version.split()[0]}, httpx {httpx.__version__}."
    )
    if "d  bare aiohttp, 1 session" not in table:
        print("aiohttp is not installed: variant d skipped.")
    try:
        for setting in args.settings.split(","):
            unlimited = setting.endswith("-unlimited")
            latency = float(setting.removesuffix("-unlimited"))
            limit = [10**9, WINDOW] if unlimited else [LIMIT, WINDOW]
            sandbox.admin(
                "POST", "/_sandbox/settings", {"latency_ms": latency, "track_rate_limit": limit}
            )
            rows: dict[str, list[dict[str, float]]] = {name: [] for name in table}
            names = list(table)
            for repeat in range(args.repeat):
                # Rotate the order so no variant always runs first (or right after another).
                for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                    n = args.slow_batches if name in SLOW else args.batches
                    rows[name].append(run_one(table[name], sandbox, batches, n, not unlimited))
            limit_text = "no rate limit" if unlimited else "real limit 3,000 / 3 s"
            print_table(f"latency {latency:g} ms, {limit_text}", rows)
    finally:
        sandbox.__exit__()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
