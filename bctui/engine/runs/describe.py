"""Run events as the words a person reads: one line per event worth a line, and short counts.

Used by the CLI's renderers (`bctui run`, `bctui watch`) and by the UI's run log alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from bctui.engine.runs.events import (
    Event,
    GoalFinished,
    LogLine,
    PhaseChanged,
    RateLimitWait,
    RunFinished,
    RunStarted,
)

# Who starts runs (state.STARTED_BY), as a sentence names them.
STARTERS: Final = {"cli": "the CLI", "ui": "the UI", "scheduler": "the scheduler"}
SHORT_COUNTS: Final = ("created", "updated", "unchanged", "skipped", "failed")


def describe(event: Event) -> str | None:
    """One line of text for an event worth a line (progress and batches are not)."""
    match event:
        case RunStarted():
            return _run_started(event)
        case PhaseChanged():
            return f"[{event.goal}] {event.phase}" + (f": {event.detail}" if event.detail else "")
        case RateLimitWait():
            return f"[{event.goal}] waiting {event.seconds:.1f} s for Braze's rate limit" + (
                f" ({event.reason})" if event.reason else ""
            )
        case LogLine():
            prefix = f"[{event.goal}] " if event.goal else ""
            level = "" if event.level == "info" else f"{event.level}: "
            return f"{prefix}{level}{event.message}"
        case GoalFinished():
            counts = [f"{v:,} {k}" for k, v in event.counts.items()]
            counts.append(f"{event.data_points:,} data points")
            text = f"[{event.goal}] {event.state} in {event.seconds:.1f} s — {', '.join(counts)}"
            return text + (f" — {event.error}" if event.error else "")
        case RunFinished():
            return f"run {event.run_id} {event.state}" + (f": {event.error}" if event.error else "")
    return None


def _run_started(event: RunStarted) -> str:
    starter = str(getattr(event, "started_by", "") or "")
    who = STARTERS.get(starter, starter)
    if event.resumed:
        verb = f"resumed (started by {who})" if who else "resumed"
    else:
        verb = f"started by {who}" if who else "started"
    mode = " (dry run)" if event.dry_run else (" (full resync)" if event.full else "")
    return f'run {event.run_id} of "{event.connection}" {verb}{mode}, PID {event.pid}'


def short_counts(counts: Mapping[str, int], data_points: int) -> str:
    """The non-zero outcome counts and data points: '12 created · 3 failed · 45 dp' (and the
    values a two-way import kept from being sent back, when any)."""
    shown = [f"{counts[k]:,} {k}" for k in SHORT_COUNTS if counts.get(k)]
    if counts.get("echo_suppressed"):
        shown.append(f"{counts['echo_suppressed']:,} echoes suppressed")
    if data_points:
        shown.append(f"{data_points:,} dp")
    return " · ".join(shown)
