"""Benchmark: a first export of N new profiles × 10 attributes, the delta (1,000 of them changed),
and a `braze-client` script on a slice, side by side against the same sandbox, at each latency.

For every size the store is loaded once (not measured) and copied for each run. Each run starts a
fresh sandbox in its own process (bench mode, Braze's real limit of 3,000 requests / 3 s, the added
latency), then measures, as child processes:

- export: `bctui run Bench --goal export` of N new profiles (10 attributes each);
- delta: 1,000 of them changed (`profiles load`, not measured), exported again;
- braze-client: bench/baseline_client.py sending the first SLICE profiles in sequential batches of
  75, the way a user's script would; and the ratio bctui / braze-client of that same run.

Columns: s (the goal's own seconds; the baseline's sending time), wall s (the whole process, with
Python's start-up), /s, % of Braze's ceiling (75,000 profiles/s), CPU-s of bctui's processes and
per 1M profiles, peak RSS (largest process; tree: summed over its processes, sampled), the
sandbox's CPU-s over the same span, cores busy (bctui + sandbox CPU / wall: near 2.0 the two shared
cores bound the figure), 429s the sandbox answered, store MB per 1M profiles after the export.

With `--store sqlite postgresql` every run is made on each store in turn (a throwaway PostgreSQL
server; the prepared database is copied with `CREATE DATABASE … TEMPLATE`), with PG CPU-s: the
server's processes over the same span.

    python bench/export.py [--profiles 200000] [--latency-ms 0 100] [--repeat 3] [--slice 20000]
                           [--store sqlite postgresql]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import (
    CEILING_PROFILES_PER_S,
    PgServer,
    Sandbox,
    Table,
    Workspace,
    common_arguments,
    export_records,
    figures,
    machine,
    pg_server,
    run_child,
    scratch,
    write_jsonl,
)

CHANGED = 1_000
BASELINE = Path(__file__).with_name("baseline_client.py")


def prepare(root: Path, n: int, pgs: dict[str, PgServer | None]
            ) -> tuple[Path, Path, dict[str, Workspace]]:  # fmt: skip
    """The data files and a loaded store per store kind to copy: (profiles, changes, templates)."""
    data = write_jsonl(root / "profiles.jsonl", export_records(n, "P", seed=1))
    # The same first 1,000 external ids with other values: 1,000 changed profiles.
    changes = write_jsonl(root / "changes.jsonl", export_records(min(CHANGED, n), "P", seed=2))
    templates = {}
    with Sandbox(0, 0) as box:
        for store, pg in pgs.items():
            workspace = Workspace(root / f"prepare-{store}", box, pg)
            report = json.loads(workspace.load(data).stdout)
            assert report["created"] == n, report
            templates[store] = workspace
    return data, changes, templates


def measure(
    table: Table,
    root: Path,
    files: tuple[Path, Path, Workspace],
    n: int,
    latency: float,
    slice_: int,
) -> None:
    """One run at one latency on one store: export, delta, baseline; rows added to `table`."""
    data, changes, template = files
    pg = template.pg
    tag = f"{latency:g} ms"
    name = template.store
    with Sandbox(0, latency) as box:
        workspace = Workspace(root / f"run-{name}-{tag.replace(' ', '')}", box, pg)
        workspace.use_state(template)

        box.admin("POST", "/_sandbox/reset-stats")
        child, goal, _ = workspace.run_goal("export")
        stats = box.admin("GET", "/_sandbox/stats")
        if goal["created"] != n or stats["attributes_processed"] != n:
            raise RuntimeError(f"export: {goal}, sandbox processed {stats['attributes_processed']}")
        export = figures(child.usage, n, goal["seconds"])
        export["% ceiling"] = export["/s"] / CEILING_PROFILES_PER_S * 100
        export["429s"] = stats["responses_429"]
        export["store MB/1M"] = workspace.store_bytes() / 1e6 / n * 1_000_000
        table.add(f"{name}: export {n:,} new, {tag}", export)

        workspace.load(changes)
        box.admin("POST", "/_sandbox/reset-stats")
        child, delta, _ = workspace.run_goal("export")
        stats = box.admin("GET", "/_sandbox/stats")
        if delta["updated"] != min(CHANGED, n):
            raise RuntimeError(f"delta: {delta}")
        row = figures(child.usage, min(CHANGED, n), delta["seconds"])
        del row["CPU-s/1M"]
        row["429s"] = stats["responses_429"]
        table.add(f"{name}: delta {CHANGED:,} of {n:,}, {tag}", row)

        # Nothing changed since: what a run costs by itself (start-up, selection, bookkeeping).
        child, idle, _ = workspace.run_goal("export")
        if idle["checked"] != 0:
            raise RuntimeError(f"no-op export: {idle}")
        row = figures(child.usage, 0, idle["seconds"])
        for key in ("/s", "CPU-s/1M"):
            del row[key]
        table.add(f"{name}: no-op run (0 changed), {tag}", row)

        count = min(slice_, n)
        box.admin("POST", "/_sandbox/reset-stats")
        command = [sys.executable, str(BASELINE), str(data), "--limit", str(count)]
        command += ["--endpoint", box.endpoints["braze"], "--key", box.endpoints["key"]]
        child = run_child(command, sandbox=box)
        stats = box.admin("GET", "/_sandbox/stats")
        sent = json.loads(child.stdout)
        if stats["attributes_processed"] != count:
            raise RuntimeError(f"baseline: sandbox processed {stats['attributes_processed']}")
        base = figures(child.usage, count, sent["seconds"])
        base["% ceiling"] = base["/s"] / CEILING_PROFILES_PER_S * 100
        base["429s"] = stats["responses_429"]
        table.add(f"{name}: {sent['client']} {count:,}, {tag}", base)
        ratio = {"ratio": export["/s"] / base["/s"]}
        table.add(f"{name}: ratio bctui/{sent['client']}, {tag}", ratio)
        workspace.drop()


def main() -> int:
    """Parse options, run every size and latency, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser, profiles=200_000, latencies=(0.0, 100.0), repeat=3)
    parser.add_argument(
        "--slice", type=int, default=20_000, help="profiles the baseline sends (default 20000)"
    )
    args = parser.parse_args()
    print(machine(), flush=True)
    for n in args.profiles:
        table = Table(
            f"export of {n:,} profiles × 10 attributes; sandbox in bench mode, "
            f"rate limit 3,000 requests / 3 s"
        )
        with scratch() as root, pg_server(args.store) as pg:
            print(f"preparing a store of {n:,} profiles…", file=sys.stderr, flush=True)
            pgs = {store: (pg if store != "sqlite" else None) for store in args.store}
            data, changes, templates = prepare(root, n, pgs)
            for repeat in range(args.repeat):
                for latency in args.latency_ms:
                    for store in args.store:
                        print(f"run {repeat + 1}, {latency:g} ms, {store}…", file=sys.stderr,
                              flush=True)  # fmt: skip
                        files = (data, changes, templates[store])
                        measure(table, root, files, n, latency, args.slice)
        table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
