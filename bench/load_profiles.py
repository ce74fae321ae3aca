"""Benchmark: load N generated profiles into a fresh store, then load the same file again.

Generates JSON lines (about ten properties per profile: an e-mail, names, a country and city,
two numbers, a date, a boolean and two multi-valued properties) into a temporary file, then runs
`python -m bctui profiles load FILE --match email` in a child process on a temporary state
directory — or, when that command is not available, `load_file` in a child process — and prints
wall time, profiles/s and the child's peak RSS. The second load matches every record to its
profile and changes nothing. Several sizes show whether memory stays flat.

    python bench/load_profiles.py                     # 100,000 and 1,000,000 profiles
    python bench/load_profiles.py --n 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

FIRST = ["anna", "bram", "chloe", "daan", "emma", "finn", "greta", "hugo", "iris", "jens",
         "katja", "lars", "mila", "noah", "olga", "piet", "quinn", "rosa", "sven", "tess"]
LAST = ["jansen", "de vries", "bakker", "visser", "smit", "meyer", "schmidt", "müller", "dubois",
        "martin", "rossi", "garcía", "novak", "kowalski", "nielsen", "berg"]
COUNTRIES = ["NL", "DE", "BE", "FR", "GB", "US", "ES", "IT", "PL", "SE"]
CITIES = [f"city-{i:02d}" for i in range(50)]
INTERESTS = ["running", "cycling", "cooking", "travel", "music", "film", "gaming", "books",
             "fashion", "tech", "gardening", "photography"]
TAGS = ["vip", "newsletter", "b2b", "churn-risk", "app-user", "store-visitor", "loyalty", "new"]

API_CHILD = """
import sys
from pathlib import Path
from bctui.store import load_file, open_store
store = open_store("sqlite:///profiles.db", Path(sys.argv[2]))
report = load_file(store, sys.argv[1], match="email", strategy="set")
store.close()
print(f"created={report.created} updated={report.updated} unchanged={report.unchanged} "
      f"rejected={report.rejected}", file=sys.stderr)
"""


@dataclass
class Run:
    """One child process: its wall time and peak resident memory."""

    seconds: float
    max_rss_mib: float


def generate(path: Path, n: int, seed: int = 1) -> None:
    """Write `n` profiles as JSON lines."""
    rng = random.Random(seed)
    with path.open("wb") as out:
        lines: list[bytes] = []
        for i in range(n):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            record = {
                "email": f"{first}.{last.replace(' ', '')}.{i}@example.com",
                "first_name": first.title(),
                "last_name": last.title(),
                "country": rng.choice(COUNTRIES),
                "city": rng.choice(CITIES),
                "lifetime_value": round(rng.uniform(0, 5000), 2),
                "orders": rng.randint(0, 80),
                "signup_date": f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-"
                               f"{rng.randint(1, 28):02d}",
                "newsletter": rng.random() < 0.4,
                "interests": rng.sample(INTERESTS, rng.randint(1, 3)),
                "tags": rng.sample(TAGS, rng.randint(0, 2)),
            }
            lines.append(orjson.dumps(record))
            if len(lines) == 10_000:
                out.write(b"\n".join(lines) + b"\n")
                lines = []
        if lines:
            out.write(b"\n".join(lines) + b"\n")


def cli_available() -> bool:
    """Whether `python -m bctui profiles load` runs in this checkout."""
    probe = subprocess.run([sys.executable, "-m", "bctui", "profiles", "load", "--help"],
                           capture_output=True, check=False)
    return probe.returncode == 0


def load(data: Path, state_dir: Path, via_cli: bool) -> Run:
    """Run one load in a child process; wait4 gives that child's own peak RSS."""
    if via_cli:
        command = [sys.executable, "-m", "bctui", "--state-dir", str(state_dir), "profiles",
                   "load", str(data), "--match", "email"]
    else:
        command = [sys.executable, "-c", API_CHILD, str(data), str(state_dir)]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"load failed ({child.returncode}):\n{errors.decode(errors='replace')}")
    print(f"    {errors.decode(errors='replace').strip().splitlines()[-1]}", file=sys.stderr)
    return Run(seconds, usage.ru_maxrss / 1024)


def main() -> None:
    """Parse arguments, generate the files, run the loads, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append",
                        help="profiles to generate (repeatable; default 100000 and 1000000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; prints the median")
    parser.add_argument("--via", choices=("auto", "cli", "api"), default="auto",
                        help="the CLI command, or load_file in a child process")
    args = parser.parse_args()
    sizes = args.n or [100_000, 1_000_000]
    via_cli = cli_available() if args.via == "auto" else args.via == "cli"
    print(f"loading through {'the CLI' if via_cli else 'load_file'}; "
          f"median of {args.repeat} run(s)")
    print(f"{'profiles':>10} {'load':>6} {'seconds':>8} {'profiles/s':>11} {'peak RSS MiB':>13}")
    with tempfile.TemporaryDirectory(prefix="bctui-bench-") as tmp:
        for n in sizes:
            data = Path(tmp) / f"profiles-{n}.jsonl"
            generate(data, n)
            runs: dict[str, list[Run]] = {"insert": [], "again": []}
            for attempt in range(args.repeat):
                state = Path(tmp) / f"state-{n}-{attempt}"
                runs["insert"].append(load(data, state, via_cli))
                runs["again"].append(load(data, state, via_cli))
            for kind, results in runs.items():
                seconds = statistics.median(r.seconds for r in results)
                rss = statistics.median(r.max_rss_mib for r in results)
                print(f"{n:>10,} {kind:>6} {seconds:>8.2f} {n / seconds:>11,.0f} {rss:>13.1f}",
                      flush=True)
            data.unlink()


if __name__ == "__main__":
    main()
