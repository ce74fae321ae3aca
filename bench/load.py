"""Benchmark: `bctui profiles load` of N generated profiles into a fresh store, then the same file
again (every record matched to its profile, nothing changed), and the store's size on disk.

The profiles have about 12 values each (e-mail, names, country, city, two numbers, a date, a flag,
1–3 interests, 0–2 tags), matched by e-mail. The file is generated once per size; each run loads it
into a fresh state directory, as child processes.

Columns: s (the load's own seconds, as it reports them), wall s (the process), /s, CPU-s and per
1M profiles, peak RSS (largest process; tree: summed over its processes, sampled), cores busy, and
store MB per 1M profiles (the SQLite file plus its -wal, after the load; on PostgreSQL
`pg_database_size`, and PG CPU-s: the server's processes over the same span).

    python bench/load.py [--profiles 200000] [--repeat 3] [--store sqlite postgresql]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import (
    Sandbox,
    Table,
    Workspace,
    figures,
    load_records,
    machine,
    pg_server,
    scratch,
    store_argument,
    write_jsonl,
)


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
        table.add(f"{workspace.store}: load {n:,} {label}", row)


def main() -> int:
    """Parse options, run every size, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, nargs="+", default=[200_000], help="sizes")
    parser.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    store_argument(parser)
    args = parser.parse_args()
    print(machine(), flush=True)
    # The config needs endpoints to be valid; the load itself never calls the sandbox.
    with Sandbox(0, 0) as box, pg_server(args.store) as pg, scratch() as root:
        for n in args.profiles:
            table = Table(f"profiles load of {n:,} profiles × ~12 values, matched by e-mail")
            data = write_jsonl(root / f"profiles-{n}.jsonl", load_records(n))
            for repeat in range(args.repeat):
                for store in args.store:
                    print(f"run {repeat + 1}, {store}…", file=sys.stderr, flush=True)
                    workspace = Workspace(
                        root / f"run-{n}-{repeat}-{store}", box, pg if store != "sqlite" else None
                    )
                    measure(table, workspace, data, n)
                    workspace.drop()  # the store goes: the disk stays small
            data.unlink()
            table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
