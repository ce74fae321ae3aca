"""Turning run events into what a person reads on stderr: Rich progress on a terminal, plain
timestamped lines otherwise. Used by `bctui run` and `bctui watch` alike."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bctui.engine.runs.describe import describe as describe  # callers import it from here
from bctui.engine.runs.describe import short_counts
from bctui.engine.runs.events import (
    BatchSent,
    Event,
    GoalFinished,
    PhaseChanged,
    RunFinished,
)
from bctui.engine.runs.events import Progress as ProgressEvent

LEVEL_STYLE = {"warning": "yellow", "error": "bold red", "debug": "dim"}
STATE_STYLE = {"FINISHED": "green", "FAILED": "bold red", "CANCELLED": "yellow"}


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


class PlainRenderer:
    """Timestamped lines, for logs and pipes."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def __call__(self, event: Event) -> None:
        text = describe(event)
        if text is not None:
            self.stream.write(f"{_clock(event.ts)} {text}\n")
            self.stream.flush()

    def close(self) -> None:
        """Nothing to tear down."""


class RichRenderer:
    """Live progress bars per goal, with log lines scrolling above them."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.fields[goal]}"),
            TextColumn("{task.fields[phase]}"),
            BarColumn(),
            TextColumn("{task.completed:,.0f}/{task.fields[total_text]}"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def _task(self, goal: str) -> TaskID:
        if goal not in self.tasks:
            self.tasks[goal] = self.progress.add_task(
                "", total=None, goal=goal, phase="", counts="", total_text="?"
            )
        return self.tasks[goal]

    def __call__(self, event: Event) -> None:
        match event:
            case ProgressEvent():
                fields: dict[str, Any] = {
                    "counts": short_counts(event.counts, event.data_points),
                    "total_text": f"{event.total:,}" if event.total else "?",
                }
                self.progress.update(
                    self._task(event.goal),
                    completed=event.done,
                    total=event.total or None,
                    **fields,
                )
                return
            case BatchSent():
                return
            case PhaseChanged():
                self.progress.update(self._task(event.goal), phase=event.phase)
            case GoalFinished():
                task = self._task(event.goal)
                done = self.progress.tasks[self.tasks[event.goal]].completed
                style = STATE_STYLE.get(event.state, "")
                self.progress.update(
                    task,
                    phase=f"[{style}]{event.state.lower()}[/]",
                    total=done or 1,
                    completed=done or 1,
                    counts=short_counts(event.counts, event.data_points),
                )
        text = describe(event)
        if text is not None:
            style = LEVEL_STYLE.get(getattr(event, "level", ""), "")
            if isinstance(event, RunFinished):
                style = STATE_STYLE.get(event.state, "")
            self.progress.console.print(
                f"[dim]{_clock(event.ts)}[/] {escape(text)}",
                style=style,
                markup=True,
                highlight=False,
            )

    def close(self) -> None:
        """Stop the live display."""
        self.progress.stop()


def renderer_for_stderr() -> PlainRenderer | RichRenderer:
    """Rich progress on a terminal, plain lines otherwise."""
    return RichRenderer() if sys.stderr.isatty() else PlainRenderer()
