"""Benchmark: `bctui profiles load` of N generated profiles into a fresh store, then the same file
again (every record matched to its profile, nothing changed), and the store's size on disk.

The profiles have about 12 values each (e-mail, names, country, city, two numbers, a date, a flag,
1–3 interests, 0–2 tags), matched by e-mail. The file is generated once per size; each run loads it
into a fresh state directory, as child processes.

Columns: s (the load's own seconds, as it reports them), wall s (the process), /s, CPU-s and per
1M profiles, peak RSS (largest process; tree: summed over its processes, sampled), cores busy, and
store MB per 1M profiles (the SQLite file plus its -wal, after the load).

    python bench/load.py [--profiles 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from harness import Sandbox, Table, Workspace, figures, load_records, machine, scratch, write_jsonl


def measure(table: Table, workspace: Workspace, data: Path, n: int) -> None:
    """One run: load into an empty store, then load the same file again."""
    for label, expect in (("into empty", "created"), ("again, unchanged", "unchanged")):
        child = workspace.load(data, match="email")
        report = json.loads(child.stdout)
        if report.get(expect) != n:
            raise RuntimeError(f"profiles load {label}: {report}")
        row = figures(child.usage, n, report["elapsed"])
        del row["sandbox CPU-s"]
        row["store MB/1M"] = workspace.store_bytes() / 1e6 / n * 1_000_000
        table.add(f"load {n:,} {label}", row)


def main() -> int:
    """Parse options, run every size, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, nargs="+", default=[200_000], help="sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    args = parser.parse_args()
    print(machine(), flush=True)
    # The config needs endpoints to be valid; the load itself never calls the sandbox.
    with Sandbox(0, 0) as box, scratch() as root:
        for n in args.profiles:
            table = Table(f"profiles load of {n:,} profiles × ~12 values, matched by e-mail")
            data = write_jsonl(root / f"profiles-{n}.jsonl", load_records(n))
            for repeat in range(args.repeat):
                print(f"run {repeat + 1}…", file=sys.stderr, flush=True)
                workspace = Workspace(root / f"run-{n}-{repeat}", box)
                measure(table, workspace, data, n)
                shutil.rmtree(workspace.root)  # the store goes: the disk stays small
            data.unlink()
            table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
