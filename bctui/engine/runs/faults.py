"""Named crash points for the crash-safety tests: `BCTUI_CRASH_AT=name[:n]` kills the process
(SIGKILL, no cleanup) the n-th time (default: first) the run passes `name`. Unset, it costs one
dictionary lookup per call."""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Die here if the crash-safety tests asked for it."""
    wanted = os.environ.get("BCTUI_CRASH_AT")
    if not wanted:
        return
    target, _, nth = wanted.partition(":")
    if target != name:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
