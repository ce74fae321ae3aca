"""How far a running run has come, read from the end of its log without reading the whole file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bctui.engine.paths import Paths
from bctui.engine.runs.events import PhaseChanged, Progress, parse_event
from bctui.errors import BctuiError

TAIL_BYTES = 16 * 1024


@dataclass(frozen=True)
class RunPosition:
    """The newest progress of a run: which goal, which phase, how far."""

    goal: str
    phase: str
    done: int
    total: int

    @property
    def fraction(self) -> float | None:
        """0..1 when the total is known."""
        return min(1.0, self.done / self.total) if self.total else None


def run_position_of(paths: Paths, run_id: str) -> RunPosition | None:
    """`run_position` of a run's log file, or, when the file is not on this host (a PostgreSQL
    store's run of another host), of its last events in the database."""
    path = paths.runs_dir / f"{run_id}.jsonl"
    if path.exists():
        return run_position(path)
    from bctui.engine.runs import shared

    db = shared.configured_db(paths)
    if db is None:
        return None
    try:
        rows = db.rows(
            "SELECT body FROM run_event WHERE run_id = %s ORDER BY n DESC LIMIT 200", (run_id,)
        )
    except BctuiError:
        return None
    return _position([str(r[0]).encode() for r in reversed(rows)])


def run_position(path: Path) -> RunPosition | None:
    """The last progress (and phase) in a run log's tail; None when there is none yet."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - TAIL_BYTES))
            lines = handle.read().split(b"\n")
    except OSError:
        return None
    return _position(lines[1:] if len(lines) > 1 else lines)


def _position(lines: list[bytes]) -> RunPosition | None:
    progress: Progress | None = None
    phase = ""
    for line in reversed(lines):
        event = parse_event(line)
        if progress is None and isinstance(event, Progress):
            progress = event
        elif isinstance(event, PhaseChanged) and not phase:
            phase = event.phase
        if progress is not None and phase:
            break
    if progress is None:
        return None
    return RunPosition(progress.goal, phase, progress.done, progress.total)
