"""Benchmark: an import of an N-user Braze segment export into an empty store, then the same import
again, merging `set`, `sum` and `add` mappings into the N profiles it created.

Each run starts a fresh sandbox in its own process (bench mode, N seeded users; the segment export
is written as gzip JSON-lines files into its S3, about 5,000 users a file) and runs
`bctui run Bench --goal import` twice on a fresh state directory, as child processes.

Columns: s (the goal's own seconds), merge s (the merge window: from the first file merged to the
goal's end, less the quiet period the goal waits for no new file), wall s (the process), /s (users
per second of the whole goal), merge /s (over the merge window), CPU-s of bctui's processes and per
1M users, peak RSS (largest process; tree: summed over its processes, sampled), the sandbox's CPU-s
over the same span (it writes the export files on the same two cores), cores busy, store MB per 1M
profiles after the import.

The sandbox writes its files `--file-interval` seconds apart (default 0: as fast as it can, so
the merge window measures bctui rather than the sandbox's pacing; its default of 0.2 s per 5,000
users alone makes 1M users take 40 s).

With `--store sqlite postgresql` every run is made on each store in turn (a throwaway PostgreSQL
server, a new database per run), with PG CPU-s: the server's processes over the same span, and the
store's size from `pg_database_size`.

    python bench/import.py [--profiles 200000] [--latency-ms 100] [--repeat 3] [--file-interval 0]
                           [--store sqlite postgresql]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from harness import (
    Child,
    PgServer,
    Sandbox,
    Table,
    Workspace,
    common_arguments,
    figures,
    machine,
    merge_window,
    pg_server,
    scratch,
)


def row(workspace: Workspace, child: Child, goal: dict[str, Any], summary: dict[str, Any], n: int
        ) -> dict[str, float]:  # fmt: skip
    """The figures of one import run."""
    window = merge_window(Path(summary["log"]))
    figures_ = figures(child.usage, n, goal["seconds"])
    result = {"s": figures_.pop("s"), "merge s": window}
    result |= {"wall s": figures_.pop("wall s"), "/s": figures_.pop("/s")}
    result["merge /s"] = n / window if window > 0 else float("nan")
    result |= figures_
    result["store MB/1M"] = workspace.store_bytes() / 1e6 / n * 1_000_000
    return result


def measure(table: Table, root: Path, n: int, latency: float, repeat: int, interval: float,
            pg: PgServer | None) -> None:  # fmt: skip
    """One run: an import into an empty store, then merging into the profiles it made."""
    tag = f"{latency:g} ms"
    with Sandbox(n, latency) as box:
        box.admin("POST", "/_sandbox/settings", {"export_file_interval": interval})
        name = "sqlite" if pg is None else "postgresql"
        workspace = Workspace(root / f"run-{repeat}-{name}-{tag.replace(' ', '')}", box, pg)
        child, goal, summary = workspace.run_goal("import")
        # Seeded users without an external id are skipped (the goal matches on it).
        skipped = goal["skipped"]
        if goal["checked"] != n or goal["created"] + skipped != n:
            raise RuntimeError(f"import into an empty store: {goal}")
        table.add(f"{name}: import {n:,} into empty, {tag}",
                  row(workspace, child, goal, summary, n))  # fmt: skip
        child, goal, summary = workspace.run_goal("import")
        if goal["checked"] != n or goal["created"] != 0 or goal["skipped"] != skipped:
            raise RuntimeError(f"import merging into {n:,}: {goal}")
        table.add(f"{name}: merge {n:,} into {n:,}, {tag}",
                  row(workspace, child, goal, summary, n))  # fmt: skip
        workspace.drop()


def main() -> int:
    """Parse options, run every size and latency, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser, profiles=200_000, latencies=(100.0,), repeat=3)
    parser.add_argument("--file-interval", type=float, default=0.0, metavar="SECONDS",
                        help="seconds between the sandbox's export files (default 0)")
    args = parser.parse_args()
    print(machine(), flush=True)
    for n in args.profiles:
        table = Table(
            f"import of a {n:,}-user segment export (5 mappings: 3 set, sum, add); "
            f"sandbox in bench mode, files {args.file_interval:g} s apart"
        )
        with scratch() as root, pg_server(args.store) as pg:
            for repeat in range(args.repeat):
                for latency in args.latency_ms:
                    for store in args.store:
                        print(f"run {repeat + 1}, {latency:g} ms, {store}…", file=sys.stderr,
                              flush=True)  # fmt: skip
                        server = pg if store != "sqlite" else None
                        measure(table, root, n, latency, repeat, args.file_interval, server)
        table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
