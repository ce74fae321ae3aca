"""`bctui store migrate`: copy a SQLite store, with its history, into PostgreSQL, verified."""

from __future__ import annotations

import argparse

from bctui.commands.context import Context
from bctui.commands.output import note, print_table
from bctui.errors import ExitCode, UsageError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `store` and its sub-commands."""
    p = commands.add_parser(
        "store",
        help="the profile store: copy it into PostgreSQL",
        description="Commands on the profile store itself.",
    )
    sub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    m = sub.add_parser(
        "migrate",
        help="copy a SQLite store with its history into a PostgreSQL database, verified",
        description="Copies profiles (with their change sequences), run history, watermarks, "
        "last-sent values, failures to retry, import jobs and applied-file records, schedule "
        "slots and the state directory's run logs, in one transaction on the target; prints "
        "each table's row counts and checksums on both sides, and commits only when they match. "
        "Stop runs and the scheduler first. Then set [store] url to the target.",
    )
    m.add_argument("--from", dest="source", metavar="URL", required=True,
                   help='the SQLite store, e.g. "sqlite:///profiles.db" (in the state directory)')
    m.add_argument("--to", dest="target", metavar="URL", required=True,
                   help='the PostgreSQL database, e.g. "postgresql://bctui@db.internal/bctui"')
    m.add_argument("--to-password", metavar="REF",
                   help='the target\'s password as "secret:NAME" or "env:VAR" (else the URL\'s, '
                   "PGPASSWORD or ~/.pgpass)")
    m.add_argument("--replace-target", action="store_true",
                   help="the target already holds bctui data: delete it and copy the source in "
                   "its place (in the same transaction)")
    m.set_defaults(handler=migrate)


def migrate(ctx: Context, args: argparse.Namespace) -> int:
    """Open both stores, copy, print the verification table."""
    from bctui.engine.secrets import resolve
    from bctui.engine.store_migrate import migrate_store
    from bctui.store import open_store

    if args.source == args.target:
        raise UsageError("--from and --to name the same store", fix="give two different URLs")
    password = None
    if args.to_password:
        if not args.to_password.startswith(("secret:", "env:")):
            raise UsageError(
                "--to-password takes a reference, not the password itself",
                where="--to-password",
                fix='give "secret:NAME" (see `bctui secrets set`) or "env:VAR"',
            )
        password = resolve(args.to_password, ctx.secrets, where="--to-password").reveal()
    ctx.paths.ensure_state_dir()
    source = open_store(args.source, ctx.paths.state_dir)
    try:
        target = open_store(args.target, ctx.paths.state_dir, password=password)
        try:
            report = migrate_store(
                source, target, runs_dir=ctx.paths.runs_dir, replace=args.replace_target,
                progress=lambda what: note(f"copying {what}…"),
            )
        finally:
            target.close()
    finally:
        source.close()
    print_table(
        ("TABLE", "SOURCE ROWS", "TARGET ROWS", "SOURCE CHECKSUM", "TARGET CHECKSUM", "OK"),
        [
            (t.table, f"{t.source_rows:,}", f"{t.target_rows:,}", t.source_sum, t.target_sum,
             "yes" if t.ok else "NO")
            for t in report.tables
        ],
    )
    replaced = " (its earlier bctui data replaced)" if report.replaced else ""
    note(f"copied into the target{replaced}; every table verified. Point [store] url at it.")
    return ExitCode.OK
