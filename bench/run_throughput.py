"""Benchmark: every row of issue 9's table in one go — bench/load.py, bench/export.py (with the
delta and the braze-client baseline) and bench/import.py, one after the other, with the same
options. Each prints its own table of medians; see bench/README.md.

    python bench/run_throughput.py [--profiles 200000] [--latency-ms 0 100] [--repeat 3]
                                   [--store sqlite postgresql]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from harness import STORES, Sandbox

HERE = Path(__file__).resolve().parent


def start_sandbox(users: int, latency_ms: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`bctui sandbox --bench` in a child process; returns it and the endpoints it printed.

    For other scripts that drive the sandbox by hand; terminate the process when done.
    """
    box = Sandbox(users, latency_ms).__enter__()
    assert box.process is not None
    return box.process, box.endpoints


def main() -> int:
    """Run the three scripts in turn."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", nargs="+", default=["200000"])
    parser.add_argument("--latency-ms", nargs="+", default=["0", "100"])
    parser.add_argument("--repeat", default="3")
    parser.add_argument("--slice", default="20000", help="profiles the braze-client baseline sends")
    parser.add_argument("--store", nargs="+", default=["sqlite"], choices=STORES,
                        help="stores to run on, side by side (default sqlite)")  # fmt: skip
    args = parser.parse_args()
    sizes, repeat = ["--profiles", *args.profiles], ["--repeat", args.repeat]
    repeat += ["--store", *args.store]
    latencies = ["--latency-ms", *args.latency_ms]
    # An import waits mostly on S3 and its own pacing, not on Braze's latency: the highest one.
    highest = ["--latency-ms", max(args.latency_ms, key=float)]
    for script, extra in (
        ("load.py", []),
        ("export.py", [*latencies, "--slice", args.slice]),
        ("import.py", highest),
    ):
        command = [sys.executable, str(HERE / script), *sizes, *repeat, *extra]
        if subprocess.run(command, check=False).returncode != 0:
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
