"""`bctui validate`, `bctui list`, `bctui segments`."""

from __future__ import annotations

import argparse
from typing import Any

from bctui.commands.context import Context
from bctui.commands.output import note, print_json, print_table
from bctui.engine.config import describe_schedule
from bctui.engine.models import Connection
from bctui.engine.secrets import SecretError, resolve
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
    if args.json:
        for conn in config.connections:
            print_json(connection_summary(conn))
        return ExitCode.OK
    rows = [
        (
            "★" if c.favorite else "",
            c.name,
            "on" if c.enabled else "off",
            ", ".join(c.labels),
            describe_schedule(c.schedule),
            _goal_summary(c),
        )
        for c in config.connections
    ]
    if not rows:
        note(f"no connections in {ctx.paths.config}")
        return ExitCode.OK
    print_table(("", "NAME", "STATE", "LABELS", "SCHEDULE", "GOALS"), rows)
    return ExitCode.OK


def connection_summary(conn: Connection) -> dict[str, Any]:
    """What `list --json` prints for one connection (no secret references resolved)."""
    return {
        "name": conn.name,
        "enabled": conn.enabled,
        "favorite": conn.favorite,
        "labels": list(conn.labels),
        "description": conn.description,
        "schedule": describe_schedule(conn.schedule),
        "endpoint": conn.braze.endpoint,
        "goals": [{"name": g.name, "type": g.type, "enabled": g.enabled} for g in conn.goals],
    }


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


def _goal_summary(conn: Connection) -> str:
    imports = sum(1 for g in conn.goals if g.type == "import")
    exports = len(conn.goals) - imports
    return f"{imports} import, {exports} export"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
