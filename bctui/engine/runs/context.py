"""What a goal needs while it runs: the store, its settings, a way to report, a way to stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from bctui.engine.models import Connection
from bctui.engine.runs.events import Event, LogLine, PhaseChanged, Progress
from bctui.engine.runs.state import COUNT_NAMES, FINISHED, GoalState, save_goal

__all__ = ["COUNT_NAMES"]  # importers of the counts' names find them here too
from bctui.engine.secrets import SecretsFile
from bctui.errors import BctuiError, ExitCode
from bctui.store import Store
from bctui.store.base import StoreTransaction

SIGNAL_POLL_SECONDS = 0.1


class Cancelled(BctuiError):
    """The run was cancelled (SIGINT/SIGTERM, or the TUI's Cancel)."""

    exit_code = ExitCode.CANCELLED

    def __init__(self) -> None:
        super().__init__("the run was cancelled")


class CancelToken:
    """Set from a signal handler or another thread; checked by the engine at safe points."""

    def __init__(self) -> None:
        self._cancelled = False
        self._wake = threading.Event()

    def cancel(self) -> None:
        """Ask the run to stop at its next safe point (from any thread)."""
        self._cancelled = True
        self._wake.set()

    def cancel_from_signal(self) -> None:
        """`cancel()` for a signal handler. It takes no lock: the handler runs in the main thread
        between two bytecodes, possibly while that thread holds the wake-up event's lock inside
        `sleep`, and taking it again there would hang the run for good."""
        self._cancelled = True

    @property
    def cancelled(self) -> bool:
        """True once the run was asked to stop."""
        return self._cancelled

    def check(self) -> None:
        """Raise Cancelled if the run was asked to stop."""
        if self._cancelled:
            raise Cancelled()

    def sleep(self, seconds: float) -> None:
        """Wait, waking early (with Cancelled) when the run is cancelled; a cancel from a signal
        handler is noticed within SIGNAL_POLL_SECONDS."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self._cancelled:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.wait(min(remaining, SIGNAL_POLL_SECONDS))
        raise Cancelled()


@dataclass
class GoalRun:
    """One goal being run: shared plumbing for the importer and the exporter."""

    run_id: str
    connection: Connection
    key: str
    store: Store
    secrets: SecretsFile
    emit: Callable[[Event], None]
    cancel: CancelToken
    state: GoalState
    dry_run: bool = False
    full: bool = False

    @property
    def name(self) -> str:
        """The goal's name."""
        return self.state.goal

    def count(self, name: str, amount: int = 1) -> None:
        """Add to one of the goal's counters."""
        self.state.counts[name] = self.state.counts.get(name, 0) + amount

    def log(self, message: str, level: str = "info") -> None:
        """A line for the run log."""
        self.emit(LogLine(level=level, message=message, goal=self.name))

    def phase(self, phase: str, detail: str = "") -> None:
        """The goal entered a new phase."""
        self.emit(PhaseChanged(goal=self.name, phase=phase, detail=detail))

    def progress(self, done: int, total: int = 0, unit: str = "profiles") -> None:
        """Counts so far (coalesced by the event log)."""
        self.emit(
            Progress(
                goal=self.name,
                done=done,
                total=total,
                unit=unit,
                counts=dict(self.state.counts),
                data_points=self.state.data_points,
            )
        )

    def save(self, tx: StoreTransaction) -> None:
        """Persist the goal's progress in the caller's transaction (never in a dry run)."""
        if not self.dry_run:
            save_goal(tx, self.run_id, self.state)

    def finish(self, tx: StoreTransaction) -> None:
        """Mark the goal FINISHED in the transaction that commits its last work, so that a crash
        before the runner's own bookkeeping never makes a resumed run repeat the goal."""
        self.state.state = FINISHED
        self.save(tx)
