"""`bctui validate`, `bctui list`, `bctui segments`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from bctui.commands.context import Context
from bctui.commands.output import note, print_json, print_table
from bctui.engine.schedule import describe_schedule, next_run, short_time
from bctui.engine.secrets import SecretError, resolve
from bctui.engine.summary import connection_summary as connection_summary  # its old home
from bctui.engine.summary import goal_counts
from bctui.errors import ExitCode


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the config commands."""
    p = commands.add_parser(
        "validate",
        help="check connections.toml and the secrets it names",
        description="Validate connections.toml strictly; every problem is "
        "listed with its line, key and fix. Secret references that cannot be "
        "resolved here are reported as warnings.",
    )
    p.set_defaults(handler=validate)

    p = commands.add_parser("list", help="list the connections")
    p.add_argument("--json", action="store_true", help="one JSON object per connection")
    p.set_defaults(handler=list_connections)

    p = commands.add_parser("segments", help="list local segments with member counts")
    p.add_argument("--json", action="store_true", help="one JSON object per segment")
    p.set_defaults(handler=segments)


def validate(ctx: Context, args: argparse.Namespace) -> int:
    """Load the config (raising ConfigError on problems) and check secret references."""
    from bctui.engine.notify import config_warnings as notify_warnings  # smtplib: only here

    config = ctx.config
    warnings = 0
    for conn in config.connections:
        refs = [("braze.api_key", conn.braze.api_key)]
        if conn.s3 is not None:
            refs += [
                ("s3.access_key_id", conn.s3.access_key_id),
                ("s3.secret_access_key", conn.s3.secret_access_key),
            ]
        for key, ref in refs:
            try:
                resolve(ref, ctx.secrets, where=f'connection "{conn.name}" {key}')
            except SecretError as exc:
                warnings += 1
                note(f"warning: {exc.render()}")
    if config.smtp is not None and config.smtp.user:
        try:
            resolve(config.smtp.password, ctx.secrets, where="[smtp] password")
        except SecretError as exc:
            warnings += 1
            note(f"warning: {exc.render()}")
    for problem in notify_warnings(config):
        warnings += 1
        note(f"warning: {problem}")
    from bctui.engine.runs.echo import config_warnings as two_way_warnings

    for problem in two_way_warnings(config, ctx.secrets):
        warnings += 1
        note(f"warning: {problem}")
    goals = sum(len(c.goals) for c in config.connections)
    print(
        f"{ctx.paths.config}: valid — {_plural(len(config.connections), 'connection')} "
        f"({_plural(goals, 'goal')}), {_plural(len(config.segments), 'segment')}"
        + (f", {_plural(warnings, 'warning')}" if warnings else "")
    )
    return ExitCode.OK


def list_connections(ctx: Context, args: argparse.Namespace) -> int:
    """The connections table (or JSON lines)."""
    config = ctx.config
    now = datetime.now(UTC)
    from bctui.engine.scheduler import NOT_RUNNING, scheduler_status  # only `list` needs it

    scheduler = scheduler_status(ctx.paths)
    if args.json:
        for conn in config.connections:
            print_json({**connection_summary(conn, now=now), "scheduler_running": bool(scheduler)})
        return ExitCode.OK
    rows = []
    for c in config.connections:
        upcoming = next_run(c.schedule, now) if c.enabled else None
        rows.append(
            (
                "★" if c.favorite else "",
                c.name,
                "on" if c.enabled else "off",
                ", ".join(c.labels),
                describe_schedule(c.schedule),
                short_time(upcoming, now) if upcoming else "",
                goal_counts(c),
            )
        )
    if not rows:
        note(f"no connections in {ctx.paths.config}")
        return ExitCode.OK
    print_table(("", "NAME", "STATE", "LABELS", "SCHEDULE", "NEXT", "GOALS"), rows)
    # A "next run" is only a promise while a scheduler keeps it.
    note(scheduler.describe() if scheduler is not None else NOT_RUNNING)
    return ExitCode.OK


def segments(ctx: Context, args: argparse.Namespace) -> int:
    """Local segments with their live member counts."""
    config = ctx.config
    counts = ctx.store.segment_counts(config.segments)
    if args.json:
        for seg in config.segments:
            print_json(
                {
                    "name": seg.name,
                    "match": seg.match,
                    "rules": len(seg.rules),
                    "members": counts[seg.name],
                }
            )
        return ExitCode.OK
    if not config.segments:
        note(f"no [[segment]] tables in {ctx.paths.config}")
        return ExitCode.OK
    print_table(
        ("SEGMENT", "MATCH", "RULES", "MEMBERS"),
        [(s.name, s.match, len(s.rules), f"{counts[s.name]:,}") for s in config.segments],
    )
    return ExitCode.OK


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
