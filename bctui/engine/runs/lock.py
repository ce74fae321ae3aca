"""One run per connection at a time: an flock'd file that the kernel releases when its holder dies.

The file also says who holds it (PID, run id, start time), for the message a second run prints. A
file whose lock is free but that still names a holder was left by a killed run: it is stale, and is
taken over (the caller logs that it did).

With a PostgreSQL store, shared between hosts, the lock is a lease in the database instead
(`shared.LeaseLock`, same interface); `run_lock` picks the one the store needs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, Protocol

import orjson

from bctui.errors import BctuiError, ExitCode

if TYPE_CHECKING:
    from bctui.store import Store

# `holder()` (behind `bctui watch`, `bctui runs` and the TUI) probes with a shared lock held for an
# instant; a run that starts in that instant waits the probe out rather than mistaking it for a
# running run.
PROBE_GRACE_SECONDS: Final = 0.5


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a connection's lock."""

    pid: int
    run_id: str
    started_at: float
    host: str = ""  # set for a lease in a PostgreSQL store: the host the process runs on


class LockedError(BctuiError):
    """Another live run holds the connection's lock."""

    exit_code = ExitCode.LOCKED

    def __init__(self, connection: str, holder: Holder | None) -> None:
        self.holder = holder
        if holder is not None and not holder.run_id:
            # Held by something other than a run: a rename moving the connection's history.
            super().__init__(
                f'connection "{connection}" is busy (PID {holder.pid} is renaming it)',
                fix="try again in a moment",
            )
            return
        on = f"host {holder.host}, " if holder is not None and holder.host else ""
        who = (
            f"{on}PID {holder.pid}, run {holder.run_id}"
            if holder
            else "a process that has not written its details yet"
        )
        there = f" on {holder.host}" if holder is not None and holder.host else ""
        super().__init__(
            f'connection "{connection}" is already running ({who})',
            fix=(
                f"wait for it (`bctui watch {holder.run_id}`), or stop it with "
                f"`kill {holder.pid}`{there}"
            )
            if holder
            else "wait for it to finish",
        )


class Lock(Protocol):
    """What a run needs of its connection's lock: a file lock (SQLite) or a lease (PostgreSQL)."""

    connection: str
    stale: Holder | None

    def acquire(self, run_id: str) -> None:
        """Take the lock or raise LockedError naming the holder."""

    def acquire_as(self, run_id: str) -> None:
        """Name another run as the holder."""

    def release(self) -> None:
        """Let go of the lock."""

    def holder(self) -> Holder | None:
        """The live holder, or None."""


def run_lock(
    locks_dir: Path,
    connection: str,
    store: Store | None = None,
    *,
    on_lost: Callable[[], None] | None = None,
) -> Lock:
    """The connection's lock: a lease in the database for a PostgreSQL store (shared between
    hosts), else a file lock in `locks_dir`. `on_lost` is called should a lease be lost."""
    from bctui.engine.runs.shared import LeaseLock, shared_db

    db = shared_db(store)
    if db is None:
        return RunLock(locks_dir, connection)
    return LeaseLock(db, connection, on_lost=on_lost)


class RunLock:
    """The lock of one connection: acquire(), then release() when the run ends."""

    def __init__(self, locks_dir: Path, connection: str) -> None:
        self.connection = connection
        self.path = locks_dir / f"{slug(connection)}.lock"
        self._handle: IO[bytes] | None = None
        self.stale: Holder | None = None  # set when acquire() took over a dead run's lock

    def acquire(self, run_id: str) -> None:
        """Take the lock or raise LockedError naming the holder (`run_id` "" for work that is
        not a run, such as a rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(self.path, "a+b")  # noqa: SIM115 - kept open while the lock is held
        if not _lock_exclusive(handle, PROBE_GRACE_SECONDS):
            holder = _read_holder(handle)
            handle.close()
            raise LockedError(self.connection, holder)
        self.stale = _read_holder(handle)
        self._handle = handle
        self.acquire_as(run_id)

    def acquire_as(self, run_id: str) -> None:
        """(Re)write the holder record while holding the lock, e.g. when resuming another run."""
        assert self._handle is not None, "acquire() first"
        self._handle.seek(0)
        self._handle.truncate()
        record = {"pid": os.getpid(), "run_id": run_id, "started_at": time.time()}
        self._handle.write(orjson.dumps(record))
        self._handle.flush()

    def release(self) -> None:
        """Clear the holder record and let go of the lock."""
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
        fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None

    def holder(self) -> Holder | None:
        """The live holder of the lock, or None when nobody holds it."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return _read_holder(handle)
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return None


def slug(name: str) -> str:
    """A file-name-safe form of a connection name (distinct names stay distinct)."""
    base = re.sub(r"[^a-z0-9]+", "-", name.casefold()).strip("-") or "connection"
    return f"{base}-{_short_hash(name.casefold())}"


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:8]


def _lock_exclusive(handle: IO[bytes], grace: float) -> bool:
    """Take the exclusive lock, retrying for `grace` seconds; False when it stays taken."""
    deadline = time.monotonic() + grace
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def _read_holder(handle: IO[bytes]) -> Holder | None:
    handle.seek(0)
    try:
        raw = orjson.loads(handle.read() or b"null")
        return Holder(int(raw["pid"]), str(raw["run_id"]), float(raw["started_at"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
