"""`bctui secrets set|list|delete`: values are read from stdin or a hidden prompt, never echoed."""

from __future__ import annotations

import argparse
import getpass
import sys

from bctui.commands.context import Context
from bctui.commands.output import note
from bctui.engine.secrets import check_name
from bctui.errors import ExitCode, NotFoundError, UsageError
from bctui.secret import Secret


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `secrets` and its sub-commands."""
    p = commands.add_parser(
        "secrets",
        help="manage the secrets that connections.toml refers to",
        description="Secrets live in a 0600 file in the state directory; "
        'connections.toml refers to them as "secret:NAME".',
    )
    sub = p.add_subparsers(dest="secrets_command", metavar="ACTION", required=True)
    s = sub.add_parser("set", help="store a secret (read from stdin, or a hidden prompt)")
    s.add_argument("name", metavar="NAME")
    s.set_defaults(handler=set_secret)
    s = sub.add_parser("list", help="show the names of the stored secrets (never the values)")
    s.set_defaults(handler=list_secrets)
    s = sub.add_parser("delete", help="remove a secret")
    s.add_argument("name", metavar="NAME")
    s.set_defaults(handler=delete_secret)


def set_secret(ctx: Context, args: argparse.Namespace) -> int:
    """Read the value without echoing it and store it."""
    check_name(args.name)
    try:
        if sys.stdin.isatty():
            value = getpass.getpass(f"value for {args.name} (input hidden): ")
        else:
            value = sys.stdin.readline()
    except EOFError:
        value = ""
    # Keys never hold surrounding white space; a pasted newline or space would only make
    # authentication fail later.
    value = value.strip()
    if not value:
        raise UsageError(
            "no value given",
            where=f"secret {args.name}",
            fix="pipe the value in (`… | bctui secrets set NAME`) or type it",
        )
    ctx.paths.ensure_state_dir()
    ctx.secrets.set(args.name, Secret(value))
    note(f'stored secret "{args.name}" in {ctx.paths.secrets}; refer to it as "secret:{args.name}"')
    return ExitCode.OK


def list_secrets(ctx: Context, args: argparse.Namespace) -> int:
    """Names only."""
    for name in ctx.secrets.names():
        print(name)
    return ExitCode.OK


def delete_secret(ctx: Context, args: argparse.Namespace) -> int:
    """Remove one secret."""
    if not ctx.secrets.delete(args.name):
        raise NotFoundError(
            f'no secret named "{args.name}"',
            where=str(ctx.paths.secrets),
            fix="`bctui secrets list` shows the names",
        )
    note(f'deleted secret "{args.name}"')
    return ExitCode.OK
