"""`bctui check NAME` (the key's permissions and the S3 bucket) and `bctui sandbox`."""

from __future__ import annotations

import argparse

from bctui.commands.context import Context
from bctui.commands.output import print_json
from bctui.engine.check import check_connection
from bctui.engine.runs.runner import find_connection
from bctui.errors import ExitCode


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `check` and `sandbox`."""
    p = commands.add_parser(
        "check",
        help="test a connection's Braze key (per permission) and S3 bucket",
        description="Tests the API key against each of the six permissions bctui uses, without "
        "writing anything, and checks that the S3 bucket can be listed. Exits 1 when something "
        "the connection's goals need is missing.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--json", action="store_true", help="print the findings as JSON on stdout")
    p.set_defaults(handler=check)

    p = commands.add_parser(
        "sandbox",
        help="run a local Braze simulator and S3 server",
        description="Serve a Braze simulator and an S3 server (moto) on "
        "loopback in the foreground, print their endpoints and credentials, "
        "and stop on Ctrl-C.",
    )
    from bctui.sandbox import cli as sandbox_cli  # light: the servers load when started

    sandbox_cli.add_arguments(p)
    p.set_defaults(handler=lambda ctx, args: sandbox_cli.main(args))


def check(ctx: Context, args: argparse.Namespace) -> int:
    """Permissions per endpoint, then the bucket."""
    conn = find_connection(ctx.config, args.name)
    result = check_connection(conn, ctx.secrets)
    report = result.report
    if args.json:
        print_json(
            {
                "connection": conn.name,
                "endpoint": report.endpoint,
                "key_invalid": report.key_invalid,
                "unreachable": report.unreachable,
                "permissions": {
                    c.permission: {
                        "state": c.state.value,
                        "needed": c.permission in result.needed,
                        "message": c.message,
                    }
                    for c in report.checks
                },
                "s3": {"ok": result.s3_ok, "message": result.s3_message},
            }
        )
    else:
        for line in report.lines():
            print(line)
        print(f"S3: {result.s3_message}")
        if result.lacking and not (report.key_invalid or report.unreachable):
            print(
                f"the goals of {conn.name} need: {', '.join(sorted(result.lacking))} — create a "
                "key with these permissions in Braze (Settings › APIs and Identifiers)"
            )
    return ExitCode.OK if result.usable else ExitCode.FAILED
