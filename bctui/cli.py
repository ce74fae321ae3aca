"""The `bctui` command: argument parsing and dispatch. Headless commands never import Textual."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from bctui import __version__
from bctui.errors import BctuiError, ExitCode

if TYPE_CHECKING:
    from bctui.commands.context import Context

EXIT_CODES = """\
exit codes:
  0    success
  1    the command or run failed (details on stderr)
  2    bad arguments
  3    connections.toml or the secrets file is missing, malformed or invalid
  4    a named connection, goal, segment, profile or run does not exist
  5    another run of that connection holds its lock
  6    an input file could not be read, or some of its records were rejected
  7    a run refused an export goal: its delta costs more than max_data_points
  130  cancelled (Ctrl-C / SIGTERM)

stdout carries data, stderr carries progress and diagnostics.
"""

Handler = Callable[["Context", argparse.Namespace], int]


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
    from bctui.commands import (
        config_cmds,
        profile_cmds,
        run_cmds,
        scheduler_cmds,
        secret_cmds,
        store_cmds,
    )

    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    config_cmds.register(commands)
    profile_cmds.register(commands)
    run_cmds.register(commands)
    scheduler_cmds.register(commands)
    secret_cmds.register(commands)
    store_cmds.register(commands)
    _register_optional(commands)
    return parser


def _register_optional(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Commands whose modules pull in heavier dependencies register here."""
    from bctui.commands import braze_cmds, demo_cmds

    braze_cmds.register(commands)
    demo_cmds.register(commands)


def _only_global_options(words: list[str]) -> tuple[str | None, str | None] | None:
    """(config, state dir) when `words` hold nothing but those two options, else None."""
    found: dict[str, str] = {}
    rest = iter(words)
    for word in rest:
        name, eq, value = word.partition("=")
        if name not in ("--config", "--state-dir") or name in found:
            return None
        if not eq:
            value = next(rest, "")
            if not value or value.startswith("-"):
                return None  # let argparse say what is missing
        found[name] = value
    return found.get("--config"), found.get("--state-dir")


def _ui_for(config: str | None, state_dir: str | None) -> int:
    from bctui.engine.paths import Paths

    try:
        paths = Paths.resolve(config, state_dir)
    except BctuiError as exc:
        print(f"bctui: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    from bctui.tui.app import BctuiApp

    BctuiApp(paths).run()
    return ExitCode.OK


def _open_ui(context: Context, args: argparse.Namespace) -> int:
    """`bctui` on a terminal: the Textual UI (imported only here)."""
    from bctui.tui.app import BctuiApp

    BctuiApp(context.paths).run()
    return ExitCode.OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bctui` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    ui_paths = _only_global_options(words)
    if ui_paths is not None and sys.stdin.isatty() and sys.stdout.isatty():
        # Straight to the UI: its first screen should not wait for every command to load.
        return _ui_for(*ui_paths)
    from bctui.commands.context import Context

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
        place = f": {exc.filename}" if exc.filename else ""
        print(
            f"bctui: {exc.strerror or exc}{place} — check the path and its permissions",
            file=sys.stderr,
        )
        return ExitCode.FAILED
    except BrokenPipeError:
        # `bctui profiles dump | head`: the reader went away; that is not an error.
        sys.stderr.close()
        return ExitCode.OK
    finally:
        context.close()
