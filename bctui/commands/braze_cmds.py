"""`bctui check NAME` (the key's permissions and the S3 bucket) and `bctui sandbox`."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from bctui.commands.context import Context
from bctui.commands.output import print_json
from bctui.engine.models import Connection, ImportGoal
from bctui.engine.runs.runner import find_connection
from bctui.engine.secrets import resolve
from bctui.errors import BctuiError, ExitCode
from bctui.secret import Secret

if TYPE_CHECKING:
    from bctui.braze import PermissionReport

# What each kind of goal needs of the key (reference §3; BlueConic asks for all six).
NEEDED = {
    "import": ("users.export.segment", "segments.list", "segments.details"),
    "export": ("users.track",),
}
CAMPAIGN_FILTER = ("campaigns.list", "campaigns.details")


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


def needed_permissions(conn: Connection) -> set[str]:
    """The permissions the connection's goals need."""
    needed: set[str] = set()
    for goal in conn.goals:
        needed.update(NEEDED[goal.type])
        if isinstance(goal, ImportGoal) and goal.audience.campaign_ids:
            needed.update(CAMPAIGN_FILTER)
    return needed


def check(ctx: Context, args: argparse.Namespace) -> int:
    """Permissions per endpoint, then the bucket."""
    conn = find_connection(ctx.config, args.name)
    where = f'connection "{conn.name}"'
    key = resolve(conn.braze.api_key, ctx.secrets, where=f"{where} braze.api_key")
    from bctui.braze import PermissionState

    report = asyncio.run(_permissions(conn.braze.endpoint, key))
    needed = needed_permissions(conn)
    lacking = [
        c.permission
        for c in report.checks
        if c.permission in needed and c.state is not PermissionState.OK
    ]
    s3_line, s3_ok = _check_s3(ctx, conn)
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
                        "needed": c.permission in needed,
                        "message": c.message,
                    }
                    for c in report.checks
                },
                "s3": {"ok": s3_ok, "message": s3_line},
            }
        )
    else:
        for line in report.lines():
            print(line)
        print(f"S3: {s3_line}")
        if lacking and not (report.key_invalid or report.unreachable):
            print(
                f"the goals of {conn.name} need: {', '.join(sorted(lacking))} — create a key "
                "with these permissions in Braze (Settings › APIs and Identifiers)"
            )
    usable = not (lacking or report.key_invalid or report.unreachable)
    return ExitCode.OK if usable and s3_ok else ExitCode.FAILED


async def _permissions(endpoint: str, key: Secret) -> PermissionReport:
    from bctui.braze import BrazeClient, check_permissions

    async with BrazeClient(endpoint, key) as client:
        return await check_permissions(client)


def _check_s3(ctx: Context, conn: Connection) -> tuple[str, bool]:
    if conn.s3 is None:
        return "not configured (only import goals need it)", True
    from bctui.s3 import S3Access

    where = f'connection "{conn.name}" s3'
    try:
        key_id = resolve(conn.s3.access_key_id, ctx.secrets, where=where).reveal()
        secret = resolve(conn.s3.secret_access_key, ctx.secrets, where=where)
        access = S3Access(
            key_id, secret, region=conn.s3.region, endpoint_url=conn.s3.endpoint_url or None
        )
        access.check_bucket(conn.s3.bucket)
    except BctuiError as exc:
        return exc.render(), False
    return f"bucket {conn.s3.bucket} is reachable and can be listed", True
