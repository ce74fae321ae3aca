"""A local Braze simulator plus an S3 server on loopback, for the demo, the tests and benchmarks.

Nothing here imports Textual or Rich; moto is imported only when an S3 server starts.
"""

from __future__ import annotations

from bctui.sandbox.exports import ExportJob, S3Config
from bctui.sandbox.s3server import S3Server
from bctui.sandbox.sandbox import Sandbox
from bctui.sandbox.server import BrazeServer
from bctui.sandbox.settings import SimulatorSettings
from bctui.sandbox.simulator import Simulator

__all__ = [
    "BrazeServer",
    "ExportJob",
    "S3Config",
    "S3Server",
    "Sandbox",
    "Simulator",
    "SimulatorSettings",
]
