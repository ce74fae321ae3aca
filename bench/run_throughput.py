"""Benchmark: whole `bctui run`s — an export and an import of N profiles — against the sandbox.

The sandbox runs in its own process (`python -m bctui.sandbox --bench`, so it never shares a GIL
with the run and keeps counts rather than full user state), with Braze's real rate limit of 3,000
requests per 3 s and an added latency per answer (real Braze answers in ~100 ms). Each repeat uses a
fresh state directory and prints:

- load: `bctui profiles load` of N profiles (profiles/s);
- export: `bctui run --goal export` of N new profiles × 10 attributes (profiles/s, requests/s);
- delta: 1,000 of them changed, exported again (seconds: it should cost what 1,000 cost);
- import: `bctui run --goal import` of a Braze segment of N users (users/s over the whole goal,
  and over the merge window: from the first file to the end, less the quiet period).

    python bench/run_throughput.py [--profiles 200000] [--latency-ms 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QUIET_SECONDS = 1.0


def start_sandbox(users: int, latency_ms: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`bctui sandbox --bench` in a child process; returns it and the endpoints it printed."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bctui.sandbox",
            "--bench",
            "--users",
            str(users),
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    found: dict[str, str] = {}
    patterns = {
        "braze": r"Braze REST endpoint\s+(\S+)",
        "key": r"Braze API key\s+(\S+)",
        "s3": r"S3 endpoint\s+(\S+)",
        "bucket": r"S3 bucket\s+(\S+)",
        "secret": r"AWS secret key\s+(\S+)",
        "key_id": r"AWS access key id\s+(\S+)",
    }
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        for name, pattern in patterns.items():
            if match := re.match(pattern, line):
                found[name] = match.group(1)
        if len(found) == len(patterns) or time.monotonic() > deadline:
            break
    if len(found) != len(patterns):
        proc.terminate()
        raise RuntimeError(f"the sandbox did not start: got {found}")
    return proc, found


def segment_id(endpoint: str, key: str, name: str) -> str:
    """The id of a seeded Braze segment, by name."""
    import urllib.request

    request = urllib.request.Request(
        f"{endpoint}/segments/list?page=0", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        segments = json.loads(response.read())["segments"]
    return next(s["id"] for s in segments if s["name"] == name)


def write_config(path: Path, box: dict[str, str], audience: str) -> None:
    mappings = "\n".join(
        f'  {{ source = "property", value = "attr_{k}", braze = "bench_attr_{k}" }},'
        for k in range(8)
    )
    path.write_text(f"""
[[segment]]
name = "everyone"
match = "all"
rules = []

[[connection]]
name = "Bench"
[connection.braze]
endpoint = "{box["braze"]}"
api_key = "env:BENCH_BRAZE_KEY"
[connection.s3]
access_key_id = "{box["key_id"]}"
secret_access_key = "env:BENCH_S3_SECRET"
bucket = "{box["bucket"]}"
endpoint_url = "{box["s3"]}"

[[connection.goal]]
type = "import"
name = "import"
audience = {{ segment_id = "{audience}", name = "All Users" }}
allow_create = true
identifiers = [[{{ braze = "external_id", property = "external_id" }}]]
mappings = [
  {{ braze = "first_name", property = "first_name", strategy = "set" }},
  {{ braze = "email", property = "email", strategy = "set" }},
  {{ braze = "country", property = "country", strategy = "set" }},
  {{ braze = "custom_attributes.loyalty_points", property = "points", strategy = "sum" }},
  {{ braze = "custom_attributes.favorite_categories", property = "interests", strategy = "add" }},
]
wait = {{ poll_seconds = 0.5, quiet_seconds = {QUIET_SECONDS}, timeout_minutes = 30 }}

[[connection.goal]]
type = "export"
name = "export"
segment = "everyone"
allow_create = true
identifiers = [[{{ property = "external_id", braze = "external_id" }}]]
mappings = [
{mappings}
  {{ source = "profile_id", braze = "bc_profile_id" }},
  {{ source = "static", value = "bench", braze = "bc_source" }},
]
""")


def write_profiles(path: Path, count: int, prefix: str, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "w") as handle:
        for i in range(count):
            record: dict[str, Any] = {"external_id": f"{prefix}{i:08d}"}
            for k in range(8):
                record[f"attr_{k}"] = rng.randrange(1_000_000) if k % 2 else f"v{rng.random():.6f}"
            handle.write(json.dumps(record) + "\n")


def bctui(state: Path, config: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bctui", "--config", str(config), "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"bctui {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return elapsed, proc.stdout


def merge_window(log: Path) -> float:
    """Seconds from the first file being merged to the goal's end, less the quiet period."""
    first = end = 0.0
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "phase" and event["phase"] == "merging" and not first:
            first = event["ts"]
        if event["type"] == "goal_finished" and event["goal"] == "import":
            end = event["ts"]
    return end - first - QUIET_SECONDS


def run_once(n: int, latency_ms: float, seed: int) -> dict[str, float]:
    proc, box = start_sandbox(n, latency_ms)
    try:
        with tempfile.TemporaryDirectory(prefix="bctui-bench-") as tmp:
            root = Path(tmp)
            state, config = root / "state", root / "connections.toml"
            write_config(config, box, segment_id(box["braze"], box["key"], "All Users"))
            env = {**os.environ, "BENCH_BRAZE_KEY": box["key"], "BENCH_S3_SECRET": box["secret"]}
            profiles = root / "profiles.jsonl"
            write_profiles(profiles, n, "P", seed)
            load_s, _ = bctui(
                state, config, env, "profiles", "load", str(profiles), "--match", "external_id"
            )
            export_s, out = bctui(state, config, env, "run", "Bench", "--goal", "export", "--json")
            export = json.loads(out)["goals"]["export"]
            assert export["created"] == n, export
            changes = root / "changes.jsonl"
            write_profiles(changes, 1000, "P", seed + 1)
            bctui(state, config, env, "profiles", "load", str(changes), "--match", "external_id")
            _, out = bctui(state, config, env, "run", "Bench", "--goal", "export", "--json")
            delta = json.loads(out)["goals"]["export"]
            assert delta["updated"] == 1000, delta
            _, out = bctui(state, config, env, "run", "Bench", "--goal", "import", "--json")
            summary = json.loads(out)
            imported = summary["goals"]["import"]
            assert imported["checked"] == n, imported
            window = merge_window(Path(summary["log"]))
            # Only bctui children have been waited for so far (the sandbox is still running).
            peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return {
        "load profiles/s": n / load_s,
        "export profiles/s": n / export["seconds"],
        "export requests/s": (n / 75) / export["seconds"],
        "export run wall s": export_s,
        "delta (1,000 changed) goal s": delta["seconds"],
        "import users/s (whole goal)": n / imported["seconds"],
        "import users/s (merge window)": n / window if window > 0 else float("nan"),
        "import goal s": imported["seconds"],
        "peak RSS of a bctui process MiB": peak_mib,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for repeat in range(args.repeat):
        figures = run_once(args.profiles, args.latency_ms, seed=repeat)
        runs.append(figures)
        print(
            f"run {repeat + 1}: " + ", ".join(f"{k} {v:,.1f}" for k, v in figures.items()),
            flush=True,
        )
    print(
        f"\nmedians of {args.repeat} runs, {args.profiles:,} profiles, Braze latency "
        f"{args.latency_ms:g} ms, rate limit 3,000 requests / 3 s:"
    )
    for key in runs[0]:
        print(f"  {key:<34} {statistics.median(r[key] for r in runs):>12,.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
