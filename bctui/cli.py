"""The `bctui` command: argument parsing and dispatch. Headless commands never import Textual."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence

from bctui import __version__
from bctui.commands import config_cmds, profile_cmds, run_cmds, scheduler_cmds, secret_cmds
from bctui.commands.context import Context
from bctui.errors import BctuiError, ExitCode

EXIT_CODES = """\
exit codes:
  0    success
  1    the command or run failed (details on stderr)
  2    bad arguments
  3    connections.toml or the secrets file is missing, malformed or invalid
  4    a named connection, goal, segment, profile or run does not exist
  5    another run of that connection holds its lock
  6    an input file could not be read, or some of its records were rejected
  130  cancelled (Ctrl-C / SIGTERM)

stdout carries data, stderr carries progress and diagnostics.
"""

Handler = Callable[[Context, argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, one sub-parser per command."""
    parser = argparse.ArgumentParser(
        prog="bctui",
        description="Run the BlueConic ⇄ Braze connection: a profile store synced with Braze "
        "through the Braze REST API and Amazon S3. Without a command, on a terminal, bctui opens "
        "its terminal UI.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bctui {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="connections.toml to use (default: $BCTUI_CONFIG, else the user config directory)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="PATH",
        help="where profiles, secrets and run logs live (default: "
        "$BCTUI_STATE_DIR, else the user state directory)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    config_cmds.register(commands)
    profile_cmds.register(commands)
    run_cmds.register(commands)
    scheduler_cmds.register(commands)
    secret_cmds.register(commands)
    _register_optional(commands)
    return parser


def _register_optional(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands whose modules pull in heavier dependencies register here."""
    from bctui.commands import braze_cmds, demo_cmds

    braze_cmds.register(commands)
    demo_cmds.register(commands)


def _open_ui(context: Context, args: argparse.Namespace) -> int:
    """`bctui` on a terminal: the Textual UI (imported only here)."""
    from bctui.tui.app import BctuiApp

    BctuiApp(context.paths).run()
    return ExitCode.OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bctui` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            # No terminal to draw on (a pipe, cron, CI): say how to use it instead.
            parser.print_help()
            return ExitCode.OK
        handler = _open_ui
    # SIGTERM stops a plain command the way Ctrl-C does (`run` installs its own handlers).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        context = Context.from_args(args)
    except BctuiError as exc:
        print(f"bctui: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    try:
        return handler(context, args)
    except BctuiError as exc:
        print(f"bctui: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bctui: cancelled (what was already committed is kept)", file=sys.stderr)
        return ExitCode.CANCELLED
    except OSError as exc:
        # A file or directory bctui was pointed at could not be used: say which, no traceback.
        where = f": {exc.filename}" if exc.filename else ""
        print(
            f"bctui: {exc.strerror or exc}{where} — check the path and its permissions",
            file=sys.stderr,
        )
        return ExitCode.FAILED
    except BrokenPipeError:
        # `bctui profiles dump | head`: the reader went away; that is not an error.
        sys.stderr.close()
        return ExitCode.OK
    finally:
        context.close()
