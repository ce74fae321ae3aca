"""`bctui demo`: the whole product on a sandboxed Braze, in one command."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bctui.commands.context import Context
from bctui.commands.output import note
from bctui.commands.run_cmds import STATE_EXIT, print_summary
from bctui.engine.models import Config
from bctui.engine.paths import Paths
from bctui.engine.runs.context import CancelToken
from bctui.engine.runs.runner import RunOptions, RunResult, install_signal_handlers, run_connection
from bctui.errors import ExitCode, UsageError
from bctui.store import ProfileStore


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `demo`."""
    p = commands.add_parser(
        "demo",
        help="see a whole sync against a local Braze simulator (no account needed)",
        description="Starts a Braze simulator and an S3 server on loopback with seeded users, "
        "segments and campaigns, writes a demo config and demo profiles, and opens the UI on them: "
        "every screen works against the sandbox. With --headless: runs the connection (import, "
        "then export) with live progress, changes a few profiles and runs again to show that only "
        "what changed is sent. The sandbox stops at the end.",
    )
    p.add_argument(
        "--headless",
        action="store_true",
        help="run the two demo runs in the terminal, without the UI",
    )
    p.add_argument(
        "--dir",
        metavar="DIR",
        type=Path,
        help="keep the demo's config, store and run logs here (default: a temporary "
        "directory, removed afterwards)",
    )
    p.add_argument("--users", type=int, default=30_000, help="Braze users to seed (default 30000)")
    p.add_argument(
        "--profiles", type=int, default=20_000, help="local profiles to load (default 20000)"
    )
    p.set_defaults(handler=demo)


def demo(ctx: Context, args: argparse.Namespace) -> int:
    """Sandbox up, config and profiles in, the UI (or two runs), sandbox down."""
    if not args.headless:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UsageError(
                "the demo opens the terminal UI, and this is not a terminal",
                fix="run it in a terminal, or use `bctui demo --headless`",
            )
        return demo_ui(args)
    from bctui import demo as demo_setup
    from bctui.sandbox import Sandbox

    directory = args.dir or Path(tempfile.mkdtemp(prefix="bctui-demo-"))
    note(f"starting a Braze simulator with {args.users:,} users and an S3 server on loopback…")
    cancel = CancelToken()
    restore = install_signal_handlers(cancel)
    try:
        with Sandbox(users=args.users, settings=demo_setup.demo_settings()) as sandbox:
            note(f"Braze simulator at {sandbox.braze_url}, S3 at {sandbox.s3_endpoint}")
            note(f"writing the demo config, secrets and {args.profiles:,} profiles to {directory}")
            prepared = demo_setup.prepare(directory, sandbox, profiles=args.profiles)
            note(f"config: {prepared.paths.config}")
            first = _run(
                prepared.config,
                prepared.paths,
                RunOptions(),
                cancel,
                "1/2: import loyalty data from Braze, export VIPs to Braze",
            )
            if first.state != "FINISHED" or cancel.cancelled:
                return STATE_EXIT.get(first.state, ExitCode.FAILED)
            with ProfileStore(prepared.paths.state_dir / "profiles.db") as store:
                changed = demo_setup.touch_profiles(store, 500)
            second = _run(
                prepared.config,
                prepared.paths,
                RunOptions(goal="VIPs to Braze"),
                cancel,
                f"2/2: {changed} profiles changed; the delta sends only those "
                "profiles, and only their changed attributes",
            )
            note(
                f"done. Braze simulator counted {sandbox.sim.stats['data_points']:,} data points "
                "in all."
            )
            return STATE_EXIT.get(second.state, ExitCode.FAILED)
    finally:
        restore()
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            note(
                f"the demo's files are kept in {directory} (the sandbox is stopped, so its "
                "endpoints in the config no longer answer)"
            )


def demo_ui(args: argparse.Namespace) -> int:
    """The UI on a demo workspace against a sandbox that lives as long as the UI."""
    from bctui import demo as demo_setup
    from bctui.sandbox import Sandbox
    from bctui.tui.app import BctuiApp

    directory = args.dir or Path(tempfile.mkdtemp(prefix="bctui-demo-"))
    note(f"starting a Braze simulator with {args.users:,} users and an S3 server on loopback…")
    try:
        with Sandbox(users=args.users, settings=demo_setup.demo_settings()) as sandbox:
            note(f"writing the demo config, secrets and {args.profiles:,} profiles to {directory}")
            prepared = demo_setup.prepare(directory, sandbox, profiles=args.profiles)
            BctuiApp(prepared.paths, demo=True).run()
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            note(f"the demo's files are kept in {directory} (the sandbox is stopped)")
    return ExitCode.OK


def _run(
    config: Config, paths: Paths, options: RunOptions, cancel: CancelToken, title: str
) -> RunResult:
    note(f"\n== run {title}")
    from bctui.commands.render import renderer_for_stderr

    renderer = renderer_for_stderr()
    try:
        result = run_connection(
            config, paths, "Demo workspace", options, listener=renderer, cancel=cancel
        )
    finally:
        renderer.close()
    print_summary(result.summary)
    sys.stdout.flush()
    return result
