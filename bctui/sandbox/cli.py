"""`bctui sandbox`: run the Braze simulator and S3 on loopback in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from bctui.errors import BctuiError, ExitCode
from bctui.sandbox.settings import SimulatorSettings, parse_faults

if TYPE_CHECKING:  # the simulator and its servers load only when a sandbox starts
    from bctui.sandbox.sandbox import Sandbox

_Handler = Callable[[int, FrameType | None], Any] | int | None
KEY_ENV = "BCTUI_SANDBOX_BRAZE_API_KEY"
ACCESS_KEY_ENV = "BCTUI_SANDBOX_AWS_ACCESS_KEY_ID"
SECRET_ENV = "BCTUI_SANDBOX_AWS_SECRET_ACCESS_KEY"


def _faults(text: str) -> dict[str, float]:
    try:
        return parse_faults(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a TCP port (0-65535; 0 picks a free one)"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `sandbox` command's options to `parser`."""
    parser.add_argument("--port", type=_port, default=0, help="Braze API port (default: any free)")
    parser.add_argument("--s3-port", type=_port, default=0, help="S3 port (default: any free)")
    parser.add_argument(
        "--users", type=_non_negative_int, default=1000, help="seeded users (default: 1000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="seed for the sample data (default: 7)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="delay added to every Braze response, in milliseconds (default: 0)",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default={},
        metavar="429=F,500=F,drop=F",
        help="fractions of /users/track and export requests answered with a 429, a 500, or a "
        "dropped connection (e.g. 429=0.05,500=0.05,drop=0.02)",
    )
    parser.add_argument(
        "--bench",
        action="store_true",
        help="bench mode: count tracked users and data points instead of keeping them",
    )
    parser.add_argument(
        "--bucket", default="bctui-exports", help="S3 bucket for exports (default: bctui-exports)"
    )
    parser.add_argument("--root", default="", help="S3 root folder for exports (default: none)")


def build_sandbox(args: argparse.Namespace) -> Sandbox:
    """The (not yet started) sandbox the parsed options describe."""
    from bctui.sandbox.sandbox import Sandbox

    try:
        settings = SimulatorSettings(
            latency_ms=args.latency_ms, bench_mode=args.bench, seed=args.seed, **args.faults
        )
    except ValueError as exc:
        raise BctuiError(
            str(exc), where="bctui sandbox", fix="check --latency-ms and --faults"
        ) from None
    return Sandbox(
        users=args.users,
        seed=args.seed,
        settings=settings,
        braze_port=args.port,
        s3_port=args.s3_port,
        bucket=args.bucket,
        root=args.root,
    )


def describe(box: Sandbox, out: TextIO) -> None:
    """Print the endpoints, credentials and a connections.toml snippet for a started sandbox."""
    settings = box.sim.settings
    mode = " (bench mode: users are counted, not kept)" if settings.bench_mode else ""
    faults = ", ".join(
        f"{name}={value:g}"
        for name, value in (
            ("429", settings.fault_429),
            ("500", settings.fault_500),
            ("drop", settings.fault_drop),
        )
        if value
    )
    rows = [
        ("Braze REST endpoint", box.braze_url),
        ("Braze API key", f"{box.api_key}  (every permission)"),
        ("S3 endpoint", box.s3_endpoint),
        ("S3 bucket", box.bucket),
        ("S3 root", box.root or "(none)"),
        ("S3 region", box.region),
        ("AWS access key id", box.aws_access_key_id),
        ("AWS secret key", box.aws_secret_access_key),
        ("Users", f"{box.users} seeded with seed {box.seed}{mode}"),
        ("Latency", f"{settings.latency_ms:g} ms"),
        ("Faults", faults or "none"),
        ("Admin", f"{box.braze_url}/_sandbox/stats"),
    ]
    width = max(len(label) for label, _ in rows)
    print("bctui sandbox: a simulated Braze workspace and S3 on loopback", file=out)
    print("(sandbox credentials: printing them is the point; Ctrl-C stops)\n", file=out)
    for label, value in rows:
        print(f"{label:<{width}}  {value}", file=out)
    print(
        f"""
# Secrets stay out of connections.toml: export these, then paste the snippet below.
export {KEY_ENV}={box.api_key}
export {ACCESS_KEY_ENV}={box.aws_access_key_id}
export {SECRET_ENV}={box.aws_secret_access_key}

[[connection]]
name = "Sandbox"
enabled = true
description = "Local Braze simulator (bctui sandbox)"

[connection.braze]
endpoint = "{box.braze_url}"
api_key = "env:{KEY_ENV}"

[connection.s3]
access_key_id = "env:{ACCESS_KEY_ENV}"
secret_access_key = "env:{SECRET_ENV}"
bucket = "{box.bucket}"
root = "{box.root}"
region = "{box.region}"
endpoint_url = "{box.s3_endpoint}"
""",
        file=out,
        flush=True,
    )


def main(args: argparse.Namespace) -> int:
    """Run the sandbox in the foreground until SIGINT or SIGTERM; returns the exit code."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        """Signal handler: let the main thread stop the sandbox cleanly."""
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        box = build_sandbox(args)
        print("starting the sandbox…", file=sys.stderr, flush=True)
        box.start()
    except BctuiError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        _restore(previous)
        return int(exc.exit_code)
    try:
        describe(box, sys.stdout)
        while not stop.wait(3600):
            pass
        print("stopping the sandbox…", file=sys.stderr, flush=True)
    finally:
        box.stop()
        _restore(previous)
    return int(ExitCode.OK)


def _restore(previous: dict[signal.Signals, _Handler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
