"""`bctui run`, `bctui runs [show]`, `bctui watch`: runs as processes with an event log."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from bctui.commands.context import Context
from bctui.commands.output import note, print_json, print_table
from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.budget import refused_only
from bctui.engine.runs.context import CancelToken
from bctui.engine.runs.events import RunFinished
from bctui.engine.runs.runner import (
    RunOptions,
    check_run_id,
    find_connection,
    install_signal_handlers,
    log_path,
    run_connection,
)
from bctui.engine.summary import run_budget_line
from bctui.errors import BctuiError, ExitCode, UsageError
from bctui.store import Store

STATE_EXIT = {
    st.FINISHED: ExitCode.OK,
    st.FAILED: ExitCode.FAILED,
    st.CANCELLED: ExitCode.CANCELLED,
}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the run commands."""
    p = commands.add_parser(
        "run",
        help="run a connection now (or resume its interrupted run)",
        description="Run the connection's enabled goals (imports, then exports). If its last run "
        "was interrupted, that run is resumed instead: finished goals are not repeated. Progress "
        "goes to stderr; the summary to stdout. SIGINT/SIGTERM cancel cleanly.",
    )
    p.add_argument("name", metavar="NAME", help="the connection's name")
    p.add_argument("--goal", metavar="G", help="run only this goal (even if it is switched off)")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="write nothing on either side; report what would change and its cost",
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="exports send every profile of the segment and every mapped attribute",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=RunOptions.concurrency,
        metavar="N",
        help=(f"at most N concurrent /users/track requests (default {RunOptions.concurrency}); "
              "fewer are used when Braze's rate limit and latency need fewer"),
    )
    p.add_argument(
        "--run-id",
        type=_run_id,
        metavar="ID",
        help="for launchers: the id to give the run asked for (one not in the history yet)",
    )
    p.add_argument(
        "--started-by",
        choices=st.STARTED_BY,
        default="cli",
        help="for launchers: what started the run, shown in `bctui runs` (default cli)",
    )
    p.set_defaults(handler=run)

    p = commands.add_parser(
        "runs",
        help="run history; `runs show ID` prints a run's log",
        usage="bctui runs [NAME] [--json] [--limit N]\n       bctui runs show ID [--json]\n"
        "       bctui runs prune [--dry-run]",
        description="Without arguments, the history of every connection (newest first); with "
        "NAME, one connection's. `bctui runs show ID` prints a run's log (--json: the raw "
        "JSON-lines events). `bctui runs prune` applies [retention] now.",
    )
    p.add_argument("words", nargs="*", metavar="NAME | show ID", help=argparse.SUPPRESS)
    p.add_argument("--dry-run", action="store_true", help="with prune: only list what would go")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.add_argument("--limit", type=_positive, default=30, help="how many runs (default 30)")
    p.set_defaults(handler=runs)

    p = commands.add_parser(
        "watch",
        help="follow a running run's progress",
        description="Follow the events of a run as it goes, from any "
        "terminal (with a PostgreSQL store, from any host): ID is a run id, NAME a connection "
        "(its latest run).",
    )
    p.add_argument("target", metavar="ID|NAME")
    p.set_defaults(handler=watch)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _run_id(text: str) -> str:
    try:
        return check_run_id(text)
    except BctuiError as exc:
        raise argparse.ArgumentTypeError(exc.render()) from None


def run(ctx: Context, args: argparse.Namespace) -> int:
    """Run one connection in this process."""
    config = ctx.config
    cancel = CancelToken()
    restore = install_signal_handlers(cancel)
    from bctui.commands.render import renderer_for_stderr  # Rich: only when a run prints

    renderer = renderer_for_stderr()
    try:
        result = run_connection(
            config,
            ctx.paths,
            args.name,
            RunOptions(
                args.goal,
                args.dry_run,
                args.full,
                args.concurrency,
                run_id=args.run_id,
                started_by=args.started_by,
            ),
            listener=renderer,
            cancel=cancel,
        )
    finally:
        renderer.close()
        restore()
    if args.json:
        print_json(result.summary)
    else:
        print_summary(result.summary)
    if result.state == st.FAILED and refused_only(result.summary):
        return ExitCode.BUDGET
    return STATE_EXIT.get(result.state, ExitCode.FAILED)


def print_summary(summary: dict[str, Any]) -> None:
    """The per-goal counts as a table on stdout."""
    rows = []
    for name, goal in summary["goals"].items():
        rows.append(
            (
                name,
                goal["type"],
                goal["state"],
                f"{goal['checked']:,}",
                f"{goal['created']:,}",
                f"{goal['updated']:,}",
                f"{goal['unchanged']:,}",
                f"{goal['skipped']:,}",
                f"{goal['failed']:,}",
                f"{goal['data_points']:,}",
                f"{goal['seconds']:.1f}s",
            )
        )
    label = " (dry run)" if summary.get("dry_run") else ""
    print(
        f'run {summary["id"]} of "{summary["connection"]}": {summary["state"]}{label} '
        f"in {summary['seconds']:.1f} s" + (f" — {summary['error']}" if summary["error"] else "")
    )
    if rows:
        print_table(
            (
                "GOAL",
                "TYPE",
                "STATE",
                "CHECKED",
                "CREATED",
                "UPDATED",
                "UNCHANGED",
                "SKIPPED",
                "FAILED",
                "DATA POINTS",
                "TIME",
            ),
            rows,
        )
    for name, goal in summary["goals"].items():
        line = run_budget_line(name, goal)
        if line:
            print(f"budget: {line}")


def runs(ctx: Context, args: argparse.Namespace) -> int:
    """Run history, newest first; or `show ID`."""
    words = list(args.words)
    if words[:1] == ["prune"]:
        from bctui.commands.scheduler_cmds import prune_runs

        return prune_runs(ctx, words[1:], dry_run=args.dry_run)
    if words[:1] == ["show"]:
        if len(words) != 2:
            raise UsageError("`bctui runs show` takes one run id", fix="bctui runs show ID")
        return show_run(ctx, words[1], as_json=args.json)
    if len(words) > 1:
        raise UsageError(
            f"unexpected arguments: {' '.join(words[1:])}",
            fix="bctui runs [NAME] or bctui runs show ID",
        )
    store = ctx.store
    st.migrate(store)
    name = None
    if words:
        name = find_connection(ctx.config, words[0]).name
    records = st.list_runs(store, name, limit=args.limit)
    if args.json:
        for record in records:
            print_json(_run_json(ctx, record))
        return ExitCode.OK
    if not records:
        note("no runs yet" + (f' for "{name}"' if name else ""))
        return ExitCode.OK
    rows = []
    for record in records:
        took = f"{record.ended_at - record.started_at:.1f}s" if record.ended_at else "—"
        rows.append(
            (
                record.id,
                record.connection,
                history.run_status(ctx.paths, record, store) + (" (dry)" if record.dry_run else ""),
                record.started_by,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at)),
                took,
                f"{_data_points(store, record):,}",
                record.error[:60],
            )
        )
    print_table(
        ("RUN", "CONNECTION", "STATE", "BY", "STARTED", "TIME", "DATA POINTS", "ERROR"), rows
    )
    return ExitCode.OK


def _data_points(store: Store, record: st.RunRecord) -> int:
    """The data points a run spent (a dry run: would spend): its summary's once it has ended,
    else what its goals have recorded so far."""
    points = record.summary.get("data_points")
    if isinstance(points, int):
        return points
    return sum(goal.data_points for goal in st.reported_goal_states(store, record))


def _run_json(ctx: Context, record: st.RunRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "connection": record.connection,
        "state": str(history.run_status(ctx.paths, record, ctx.store)),
        "started_by": record.started_by,
        "dry_run": record.dry_run,
        "full": record.full,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "error": record.error,
        "data_points": _data_points(ctx.store, record),
        "goals": record.goals,
        "summary": record.summary,
        "log": str(log_path(ctx.paths, record.id)),
    }


def _find_run(ctx: Context, target: str) -> st.RunRecord:
    config = ctx.config if ctx.paths.config.exists() else None
    return history.find_run(ctx.paths, ctx.store, config, target)


def show_run(ctx: Context, run_id: str, *, as_json: bool) -> int:
    """A run's log, as text or raw JSON lines."""
    from bctui.engine.runs.describe import describe

    record = _find_run(ctx, run_id)
    history.wait_for_log(ctx.paths, record, store=ctx.store)
    if as_json:
        for line in history.run_lines(ctx.paths, record.id, ctx.store):
            sys.stdout.write(line.decode() + "\n")
        return ExitCode.OK
    for event in history.run_events(ctx.paths, record.id, ctx.store):
        text = describe(event)
        if text is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(event.ts))
            print(f"{stamp} {text}")
    return ExitCode.OK


def watch(ctx: Context, args: argparse.Namespace) -> int:
    """Follow a run's events until it ends (or its process dies)."""
    record = _find_run(ctx, args.target)
    history.wait_for_log(ctx.paths, record, store=ctx.store)
    from bctui.commands.render import renderer_for_stderr

    renderer = renderer_for_stderr()
    final: RunFinished | None = None
    try:
        for event in history.follow_run(
            ctx.paths, record.connection, record.id, store=ctx.store
        ):
            renderer(event)
            if isinstance(event, RunFinished) and event.run_id == record.id:
                final = event
    finally:
        renderer.close()
    if final is None:
        note(
            f"run {record.id} is not running (it was interrupted); "
            f'`bctui run "{record.connection}"` resumes it'
        )
        return ExitCode.FAILED
    return STATE_EXIT.get(final.state, ExitCode.FAILED)
