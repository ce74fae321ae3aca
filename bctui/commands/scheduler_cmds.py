"""`bctui scheduler` (the foreground daemon), `bctui tick` (one pass, for cron) and
`bctui runs prune` (the retention, by hand)."""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from bctui.commands.context import Context
from bctui.commands.output import note
from bctui.engine.retention import prune
from bctui.engine.runs import state as st
from bctui.engine.scheduler import (
    POLL_SECONDS,
    Scheduler,
    SchedulerLock,
    SchedulerLog,
    clock_from_env,
    record_tick,
)
from bctui.errors import ExitCode, UsageError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the scheduler commands."""
    p = commands.add_parser(
        "scheduler",
        help="run scheduled syncs (a foreground daemon, e.g. under systemd)",
        description="Start the runs of switched-on connections at their scheduled times, in "
        "the foreground until SIGTERM or Ctrl-C (runs in progress go on). connections.toml is "
        "re-read when it changes. A run missed while the scheduler was down is made up once on "
        "start; a due run of a connection that is still running is skipped. Logs go to stderr "
        "and to scheduler.log in the state directory.",
    )
    p.add_argument("--poll-seconds", type=_poll, default=POLL_SECONDS, help=argparse.SUPPRESS)
    p.set_defaults(handler=scheduler)

    p = commands.add_parser(
        "tick",
        help="start the scheduled runs that are due now, then exit (for cron)",
        description="One pass of the scheduler, for cron (`* * * * * bctui tick`): start the "
        "runs whose scheduled time has come since the last pass, apply [retention], and exit. "
        "The daemon and tick never start one scheduled run twice.",
    )
    p.set_defaults(handler=tick)


def _poll(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.01 <= value <= POLL_SECONDS:
        raise argparse.ArgumentTypeError(f"use 0.01 to {POLL_SECONDS:g} seconds")
    return value


def scheduler(ctx: Context, args: argparse.Namespace) -> int:
    """The foreground daemon."""
    paths = ctx.paths
    ctx.config  # noqa: B018 - a config that is invalid at start is an error, not a wait
    paths.ensure_state_dir()
    lock = SchedulerLock(paths)
    lock.acquire()
    try:
        daemon = Scheduler(
            paths, SchedulerLog(paths), clock=clock_from_env(), poll=args.poll_seconds
        )
        if daemon.reload() is None:
            return ExitCode.CONFIG  # the reason is logged; a daemon with no config does nothing
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            daemon.serve(stop)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return ExitCode.OK
    finally:
        lock.release()


def tick(ctx: Context, args: argparse.Namespace) -> int:
    """One pass: start what is due now."""
    config = ctx.config
    ctx.paths.ensure_state_dir()
    daemon = Scheduler(ctx.paths, SchedulerLog(ctx.paths), clock=clock_from_env())
    record_tick(ctx.paths)
    decisions = daemon.run_due(config)
    if not any(d.action == "start" for d in decisions):
        note("nothing due")
    daemon.prune_if_due(config)  # cron users have no daemon to keep the history bounded
    return ExitCode.OK


def prune_runs(ctx: Context, words: list[str], *, dry_run: bool) -> int:
    """`bctui runs prune [--dry-run]`: apply `[retention]` now."""
    if words:
        raise UsageError(
            f"unexpected arguments: {' '.join(words)}", fix="bctui runs prune [--dry-run]"
        )
    config = ctx.config
    store = ctx.store
    st.migrate(store)
    report = prune(ctx.paths, store, config.retention, dry_run=dry_run)
    keep = config.retention
    print(f"{report.describe()} (keeping {keep.days} days, at most {keep.runs} runs a connection)")
    if dry_run:
        for run_id in report.runs:
            print(f"  {run_id}")
    return ExitCode.OK
