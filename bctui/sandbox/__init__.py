"""A local Braze simulator plus an S3 server on loopback, for the demo, the tests and benchmarks.

Nothing here imports Textual or Rich; moto is imported only when an S3 server starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bctui.lazy import lazy_attributes

if TYPE_CHECKING:
    from bctui.sandbox.exports import ExportJob, S3Config
    from bctui.sandbox.s3server import S3Server
    from bctui.sandbox.sandbox import Sandbox
    from bctui.sandbox.server import BrazeServer
    from bctui.sandbox.settings import SimulatorSettings
    from bctui.sandbox.simulator import Simulator

# Loaded on first use: `bctui --help` registers the sandbox's arguments without starting it.
_EXPORTS = {
    "ExportJob": "bctui.sandbox.exports",
    "S3Config": "bctui.sandbox.exports",
    "S3Server": "bctui.sandbox.s3server",
    "Sandbox": "bctui.sandbox.sandbox",
    "BrazeServer": "bctui.sandbox.server",
    "SimulatorSettings": "bctui.sandbox.settings",
    "Simulator": "bctui.sandbox.simulator",
}

__all__ = [
    "BrazeServer",
    "ExportJob",
    "S3Config",
    "S3Server",
    "Sandbox",
    "Simulator",
    "SimulatorSettings",
]


__getattr__ = lazy_attributes(__name__, _EXPORTS)
