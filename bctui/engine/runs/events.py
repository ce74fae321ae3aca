"""Typed run events: what a run reports, written as JSON lines to its run log and handed to a
callback.

Front ends never look inside the engine: the CLI turns these into Rich progress, the TUI into
messages, and `bctui watch` reads them back from the log with `read_events`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

import orjson


def _now() -> float:
    return time.time()


@dataclass(frozen=True)
class Event:
    """Base of every run event; `ts` is seconds since the epoch."""

    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=_now, kw_only=True)

    def to_json(self) -> bytes:
        """One JSON line (without the newline)."""
        # Fields hold only JSON values, so the instance dict serializes as it is (far cheaper
        # than dataclasses.asdict, which deep-copies).
        return orjson.dumps({"type": self.kind, **vars(self)})


@dataclass(frozen=True)
class RunStarted(Event):
    """A run began (or an interrupted run was resumed)."""

    kind: ClassVar[str] = "run_started"
    run_id: str
    connection: str
    goals: list[str]
    pid: int
    dry_run: bool = False
    full: bool = False
    resumed: bool = False
    started_by: str = "cli"  # cli | ui | scheduler; a resumed run keeps the original's


@dataclass(frozen=True)
class PhaseChanged(Event):
    """A goal moved to a new phase: requesting, waiting, merging, selecting, sending, done."""

    kind: ClassVar[str] = "phase"
    goal: str
    phase: str
    detail: str = ""


@dataclass(frozen=True)
class Progress(Event):
    """Counts so far within a goal's current phase (`total` 0 when not known yet)."""

    kind: ClassVar[str] = "progress"
    goal: str
    done: int
    total: int = 0
    unit: str = "profiles"
    counts: dict[str, int] = field(default_factory=dict)
    data_points: int = 0


@dataclass(frozen=True)
class BatchSent(Event):
    """/users/track requests finished: one, or in a run log `batches` of them coalesced.

    A coalesced event carries the last request's `number`, the summed `size` and `failed`, the
    highest `status` and the slowest request's `seconds`.
    """

    kind: ClassVar[str] = "batch"
    goal: str
    number: int
    size: int
    failed: int = 0
    status: int = 0
    seconds: float = 0.0
    batches: int = 1

    def merged(self, later: BatchSent) -> BatchSent:
        """This event and a later one of the same goal as one."""
        return BatchSent(
            goal=self.goal,
            number=later.number,
            size=self.size + later.size,
            failed=self.failed + later.failed,
            status=max(self.status, later.status),
            seconds=max(self.seconds, later.seconds),
            batches=self.batches + later.batches,
            ts=later.ts,
        )


@dataclass(frozen=True)
class RateLimitWait(Event):
    """The run paused for Braze's rate limit."""

    kind: ClassVar[str] = "rate_limit_wait"
    goal: str
    seconds: float
    reason: str = ""


@dataclass(frozen=True)
class LogLine(Event):
    """A line for the run log shown to people."""

    kind: ClassVar[str] = "log"
    level: str  # info | warning | error
    message: str
    goal: str = ""


@dataclass(frozen=True)
class GoalFinished(Event):
    """A goal's result."""

    kind: ClassVar[str] = "goal_finished"
    goal: str
    goal_type: str  # import | export (not `type`: in the log, `type` names the event)
    state: str  # FINISHED | FAILED | CANCELLED
    counts: dict[str, int]
    data_points: int
    seconds: float
    error: str = ""


@dataclass(frozen=True)
class RunFinished(Event):
    """The run's final state; always the last event of a complete log."""

    kind: ClassVar[str] = "run_finished"
    run_id: str
    state: str  # FINISHED | FAILED | CANCELLED
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        RunStarted,
        PhaseChanged,
        Progress,
        BatchSent,
        RateLimitWait,
        LogLine,
        GoalFinished,
        RunFinished,
    )
}


def parse_event(line: bytes | str) -> Event | None:
    """One log line back into its event; None for a torn or unknown line."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    cls = EVENT_TYPES.get(str(raw.pop("type", "")))
    if cls is None:
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in raw.items() if k in names})
    except TypeError:
        return None


Listener = Callable[[Event], None]


class Sink(Protocol):
    """Somewhere else every log line goes too (`shared.EventSink`: the database)."""

    def add(self, line: bytes) -> None:
        """Take one line (without its newline); must not block for long."""

    def close(self) -> None:
        """Write what is left and stop."""


class EventLog:
    """Appends events to a run log (flushed per event, so a watcher sees them at once).

    Progress events are coalesced: at most one per goal every `progress_interval` seconds reaches
    the file, and the latest one is always written before any other event of that goal. Batch
    events coalesce the same way, summed (see BatchSent), so a run of a million profiles (13,334
    batches) writes a few lines a second rather than one per request.
    """

    def __init__(
        self,
        path: Path,
        listener: Listener | None = None,
        progress_interval: float = 0.25,
        sink: Sink | None = None,
    ) -> None:
        self.path = path
        self.listener = listener
        self.sink = sink  # also gets every line (a PostgreSQL store's run_event table)
        self.progress_interval = progress_interval
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._file: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed in close()
        if _torn(path):
            # A run killed mid-write can leave half a line; the run that resumes it appends to
            # the same log, so start on a line of our own and keep every new event readable.
            self._file.write(b"\n")
        self._pending: dict[str, Progress] = {}
        self._last_progress: dict[str, float] = {}
        self._batches: dict[str, BatchSent] = {}
        self._last_batch: dict[str, float] = {}

    def emit(self, event: Event) -> None:
        """Record and forward one event."""
        if isinstance(event, BatchSent):
            pending = self._batches.pop(event.goal, None)
            merged = event if pending is None else pending.merged(event)
            now = time.monotonic()
            if now - self._last_batch.get(event.goal, 0.0) < self.progress_interval:
                self._batches[event.goal] = merged
                return
            self._last_batch[event.goal] = now
            self._write(merged)
            return
        if isinstance(event, Progress):
            now = time.monotonic()
            if now - self._last_progress.get(event.goal, 0.0) < self.progress_interval:
                self._pending[event.goal] = event
                return
            self._last_progress[event.goal] = now
            self._pending.pop(event.goal, None)
        elif not isinstance(event, (BatchSent, RateLimitWait)):
            # Batches and waits are as frequent as progress: they do not force it out.
            self._flush_pending(getattr(event, "goal", None))
        self._write(event)

    def _flush_pending(self, goal: str | None) -> None:
        for name in list(self._batches) if goal is None else [goal]:
            batch = self._batches.pop(name, None)
            if batch is not None:
                self._last_batch[name] = time.monotonic()
                self._write(batch)
        goals = list(self._pending) if goal is None else [goal]
        for name in goals:
            pending = self._pending.pop(name, None)
            if pending is not None:
                self._last_progress[name] = time.monotonic()
                self._write(pending)

    def _write(self, event: Event) -> None:
        line = event.to_json()
        self._file.write(line + b"\n")
        self._file.flush()
        if self.sink is not None:
            self.sink.add(line)
        if self.listener is not None:
            self.listener(event)

    def close(self) -> None:
        """Flush coalesced progress and close the file."""
        self._flush_pending(None)
        self._file.close()
        if self.sink is not None:
            self.sink.close()


def _torn(path: Path) -> bool:
    """Whether the file ends in the middle of a line."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


def read_events(path: Path) -> Iterator[Event]:
    """Every complete event in a run log."""
    with open(path, "rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                event = parse_event(line)
                if event is not None:
                    yield event


def pause(poll: float, stop: threading.Event | None) -> bool:
    """Wait one poll interval of a follower; True when `stop` was set meanwhile."""
    if stop is not None:
        return stop.wait(poll)
    time.sleep(poll)
    return False


def follow_events(
    path: Path,
    *,
    poll: float = 0.2,
    alive: Callable[[], bool] = lambda: True,
    stop: threading.Event | None = None,
) -> Iterator[Event]:
    """Events of a run log as they are written, until RunFinished, `alive()` turns False, or
    `stop` is set (checked at each poll).

    A line is yielded only once its newline is there, so a half-written line is never misread.
    """
    with open(path, "rb") as handle:
        buffer = b""
        idle_checks = 0
        while True:
            chunk = handle.read(1 << 16)
            if chunk:
                idle_checks = 0
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    event = parse_event(line)
                    if event is None:
                        continue
                    yield event
                    if isinstance(event, RunFinished):
                        return
                continue
            if stop is not None and stop.is_set():
                return
            if not alive():
                idle_checks += 1
                if idle_checks > 1:  # one more read after the writer went away
                    return
            if pause(poll, stop):
                return
            os.stat(path)  # raises if the log was removed underneath us
