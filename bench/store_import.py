"""Benchmark: the store side of an import — parse Braze export lines and merge them, per file.

Generates N users as gzip JSON lines in files of 5,000 (the shape of a Braze segment export with
the fields `bench/run_throughput.py` maps), then in a child process reads each file with the
importer's own parser and merges it in one transaction, as `Importer._apply_file` does (no S3,
no sandbox: the figure is bctui's merge cost alone). Runs into an empty store, then merges the
same files again (sum/add into N existing profiles). Prints seconds, users/s, the store's size
and the child's peak RSS.

    python bench/store_import.py --users 200000 --repeat 3
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import orjson

CHILD = r"""
import sys, time
from pathlib import Path
from bctui.engine.models import Audience, IdentifierPair, ImportGoal, ImportMapping
from bctui.engine.runs.importer import Importer, UserMapper
from bctui.s3.stream import gzip_lines
from bctui.store import ProfileStore
from bctui.store.writes import gc_paused

goal = ImportGoal(
    name="import", audience=Audience("seg"), allow_create=True,
    identifiers=((IdentifierPair("external_id", "external_id"),),),
    mappings=(
        ImportMapping("first_name", "first_name", "set"),
        ImportMapping("email", "email", "set"),
        ImportMapping("country", "country", "set"),
        ImportMapping("custom_attributes.loyalty_points", "points", "sum"),
        ImportMapping("custom_attributes.favorite_categories", "interests", "add"),
    ),
)
files = sorted(Path(sys.argv[1]).glob("*.gz"))
store = ProfileStore(Path(sys.argv[2]))
imp = Importer.__new__(Importer)
imp.mapper = UserMapper(goal)
imp.bad_lines_logged = 0
started = time.perf_counter()
tally = {}
for path in files:
    data = path.read_bytes()
    writes, lines, counts = [], [], {"checked": 0}
    with gc_paused():
        imp._parse_lines(gzip_lines([data]), path.name, writes, lines, counts)
    with store.transaction() as tx:
        for start in range(0, len(writes), 1000):
            for result in tx.apply_many(writes[start:start + 1000]):
                tally[result.outcome] = tally.get(result.outcome, 0) + 1
        tx.execute("SELECT 1")
elapsed = time.perf_counter() - started
store.close()
print(f"{elapsed:.3f} {tally}")
"""

FIRST = ["anna", "bram", "chloe", "daan", "emma", "finn", "greta", "hugo", "iris", "jens"]
CATEGORIES = ["shoes", "bags", "books", "garden", "kitchen", "toys", "sports", "beauty"]
COUNTRIES = ["NL", "DE", "BE", "FR", "GB", "US", "ES", "IT", "PL", "SE"]


def generate(folder: Path, users: int, seed: int = 1) -> None:
    """Write `users` exported users in gzip files of 5,000 lines."""
    rng = random.Random(seed)
    for start in range(0, users, 5000):
        lines = []
        for i in range(start, min(start + 5000, users)):
            first = rng.choice(FIRST)
            user = {
                "external_id": f"C{i + 1:07d}",
                "braze_id": f"{i + 1:024x}",
                "first_name": first.title(),
                "email": f"{first}.{i + 1}@example.com",
                "country": rng.choice(COUNTRIES),
                "custom_attributes": {
                    "loyalty_points": rng.randrange(0, 20000),
                    "favorite_categories": rng.sample(CATEGORIES, rng.randint(1, 4)),
                },
            }
            lines.append(orjson.dumps(user))
        (folder / f"part-{start // 5000:05d}.json.gz").write_bytes(
            gzip.compress(b"\n".join(lines) + b"\n", 6)
        )


def merge(folder: Path, db: Path) -> tuple[float, float]:
    """One child process merging every file; (merge seconds, peak RSS MiB)."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), str(db)], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    out = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit("merge failed")
    print(f"    {out.strip()}", file=sys.stderr)
    return float(out.split()[0]), usage.ru_maxrss / 1024


def main() -> None:
    """Generate the files, merge them into an empty store and again, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n = args.users
    with tempfile.TemporaryDirectory(prefix="bctui-bench-") as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        generate(folder, n)
        empty, again, sizes, rss = [], [], [], []
        for attempt in range(args.repeat):
            db = Path(tmp) / f"s{attempt}.db"
            seconds, peak = merge(folder, db)
            empty.append(seconds)
            rss.append(peak)
            seconds, peak = merge(folder, db)
            again.append(seconds)
            rss.append(peak)
            sizes.append(db.stat().st_size / n * 1_000_000 / 1e6)
        print(f"{n:,} users, median of {args.repeat}:")
        print(
            f"  empty store   {statistics.median(empty):7.2f} s  "
            f"{n / statistics.median(empty):>9,.0f} users/s"
        )
        print(
            f"  merge again   {statistics.median(again):7.2f} s  "
            f"{n / statistics.median(again):>9,.0f} users/s"
        )
        print(f"  store size    {statistics.median(sizes):7.0f} MB per 1M users")
        print(f"  peak RSS      {max(rss):7.1f} MiB")


if __name__ == "__main__":
    main()
