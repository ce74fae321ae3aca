"""Benchmark: a first export of N new profiles × 10 attributes (10·N data points) under
data-point budgets: none, a budget that is passed (`partial`: sends what fits; `refuse`: sends
nothing) and budgets that fit; peak RSS shows that memory stays bounded whatever the budget.

For every size the store is loaded once (not measured) and copied for each run; each run starts
a fresh sandbox in its own process (bench mode, Braze's real limit of 3,000 requests / 3 s, the
added latency) and measures `bctui run Bench --goal export` as a child process. A budgeted export
plans first: what fits is held packed up to a cap (32 MiB by default, `--hold` sets
$BCTUI_BUDGET_HOLD_BYTES), and past it a second pass plans it again to send it; the `passes`
column says which.

Columns: s (the goal's own seconds), wall s, CPU-s, peak RSS (largest process; tree: summed over
its processes, sampled), passes, data points sent, the sandbox's CPU-s, cores busy.

    python bench/budget.py [--profiles 200000] [--latency-ms 0] [--repeat 1] [--hold BYTES]
                           [--only none partial refuse fits]
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
    common_arguments,
    export_records,
    figures,
    machine,
    scratch,
    write_jsonl,
)

ATTRIBUTES = 10  # data points per new profile
TWO_PASSES = "planning it again to send it"  # the log line of a second pass


def cases(n: int) -> list[tuple[str, int | None, str]]:
    """(label, max_data_points, on_budget) for N profiles: 10·N data points in all."""
    total = n * ATTRIBUTES
    return [
        ("none", None, ""),
        (f"{total // 10:,} partial", total // 10, "partial"),  # held in one pass
        (f"{total // 2:,} partial", total // 2, "partial"),
        (f"{total // 2:,} refuse", total // 2, "refuse"),
        (f"{total:,} fits", total, "refuse"),
        (f"{total * 5:,} fits", total * 5, "refuse"),
    ]


def prepare(root: Path, n: int) -> Workspace:
    """A workspace with N profiles loaded, whose state each run copies (`use_state`)."""
    data = write_jsonl(root / "profiles.jsonl", export_records(n, "P", seed=1))
    with Sandbox(0, 0) as box:
        workspace = Workspace(root / "prepare", box)
        report = json.loads(workspace.load(data).stdout)
        assert report["created"] == n, report
    return workspace


def passes(log: Path) -> int:
    """1 or 2: how many planning passes the run's export took to send."""
    return 2 if TWO_PASSES in log.read_text(errors="replace") else 1


def phases(log: Path) -> list[str]:
    """Each phase of the export and the seconds it started at, from the run log."""
    events = [json.loads(line) for line in log.read_text().splitlines()]
    start = events[0]["ts"]
    return [f"{e['phase']} {e['ts'] - start:.1f}" for e in events if e["type"] == "phase"] + [
        f"end {events[-1]['ts'] - start:.1f}"]


def measure(table: Table, root: Path, template: Workspace, n: int, latency: float,
            hold: int | None, only: list[str]) -> None:
    """Every budget case at one latency; rows added to `table`."""
    for label, limit, on_budget in cases(n):
        if only and not any(word in label for word in only):
            continue
        with Sandbox(0, latency) as box:
            workspace = Workspace(root / f"run-{len(table.rows)}", box)
            workspace.use_state(template)
            if limit is not None:
                with workspace.config.open("a", encoding="utf-8") as config:  # the export goal
                    config.write(f'max_data_points = {limit}\non_budget = "{on_budget}"\n')
            if hold is not None:
                workspace.env["BCTUI_BUDGET_HOLD_BYTES"] = str(hold)
            box.admin("POST", "/_sandbox/reset-stats")
            child, goal, summary = workspace.run_goal("export", accept=(0, 7))
            stats = box.admin("GET", "/_sandbox/stats")
            sent, total = goal["data_points"], n * ATTRIBUTES
            if limit is None or limit >= total:
                want = total
            else:
                want = limit if on_budget == "partial" else 0
            if sent != want or stats["attributes_processed"] != sent // ATTRIBUTES:
                raise RuntimeError(f"{label}: {goal}, sandbox {stats['attributes_processed']}")
            row = figures(child.usage, n, goal["seconds"])
            for key in ("/s", "CPU-s/1M", "machine"):
                del row[key]
            row["passes"] = passes(Path(summary["log"])) if limit is not None else 1
            row["data points"] = sent
            table.add(f"budget {label}, {latency:g} ms", row)
            print("  phases: " + ", ".join(phases(Path(summary["log"]))), file=sys.stderr)


def main() -> int:
    """Parse options, run every size, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common_arguments(parser, profiles=200_000, latencies=(0.0,), repeat=1)
    parser.add_argument("--hold", type=int, default=None,
                        help="bytes a budget's first pass may hold (default bctui's)")
    parser.add_argument("--only", nargs="*", default=[],
                        help="run only the cases whose label has one of these words")
    args = parser.parse_args()
    print(machine(), flush=True)
    for n in args.profiles:
        table = Table(f"export of {n:,} new profiles × {ATTRIBUTES} attributes under budgets")
        with scratch() as root:
            print(f"preparing a store of {n:,} profiles…", file=sys.stderr, flush=True)
            template = prepare(root, n)
            for repeat in range(args.repeat):
                for latency in args.latency_ms:
                    print(f"run {repeat + 1}, {latency:g} ms…", file=sys.stderr, flush=True)
                    measure(table, root, template, n, latency, args.hold, args.only)
        table.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
