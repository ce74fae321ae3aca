"""`python -m bctui.sandbox`: the same command as `bctui sandbox`."""

from __future__ import annotations

import argparse

from bctui.sandbox.cli import add_arguments, main

parser = argparse.ArgumentParser(
    prog="python -m bctui.sandbox",
    description="Run a simulated Braze workspace and an S3 server on loopback.",
)
add_arguments(parser)
raise SystemExit(main(parser.parse_args()))
