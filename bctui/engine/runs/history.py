"""Runs as the front ends see them: live status, finding a run, who runs now, following a run's
events to its end, and cancelling it. The CLI (`runs`, `watch`) and the TUI share all of it."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from pathlib import Path

from bctui.engine.models import Config
from bctui.engine.paths import Paths
from bctui.engine.runs import shared
from bctui.engine.runs import state as st
from bctui.engine.runs.events import Event, follow_events, read_events
from bctui.engine.runs.lock import Holder, Lock, RunLock
from bctui.engine.runs.runner import log_path
from bctui.errors import BctuiError, NotFoundError
from bctui.store import Store


class RunStatus(StrEnum):
    """A run's state as people see it: history's state, corrected by whether it still runs."""

    RUNNING = "RUNNING"
    INTERRUPTED = "INTERRUPTED"  # recorded as running, but no live process runs it
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts: its parent must reap it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def _db(paths: Paths, store: Store | None) -> shared.SharedDb | None:
    """The run coordination database: the PostgreSQL `store`'s, or (no store given) that of
    the store `paths.config` names; None for SQLite."""
    if store is not None:
        return shared.shared_db(store)
    return shared.configured_db(paths)


def _lock(paths: Paths, connection: str, store: Store | None) -> Lock:
    db = _db(paths, store)
    if db is None:
        return RunLock(paths.locks_dir, connection)
    return shared.LeaseLock(db, connection)


def holder_alive(holder: Holder) -> bool:
    """Whether a lock's holder still runs: its process, when on this host; a lease of another
    host is live while unexpired (its heartbeat renews it)."""
    if holder.host and holder.host != shared.this_host():
        return True
    return pid_alive(holder.pid)


def live_holder(
    paths: Paths, connection: str, store: Store | None = None
) -> Holder | None:
    """The live process holding the connection's lock (its lease, for a PostgreSQL `store`),
    or None."""
    holder = _lock(paths, connection, store).holder()
    return holder if holder is not None and holder_alive(holder) else None


def run_status(
    paths: Paths, record: st.RunRecord, store: Store | None = None
) -> RunStatus:
    """RUNNING only while a live process holds the connection's lock for this run id."""
    if record.state != st.RUNNING:
        try:
            return RunStatus(record.state)
        except ValueError:
            return RunStatus.FAILED
    holder = live_holder(paths, record.connection, store)
    if holder is not None and holder.run_id == record.id:
        return RunStatus.RUNNING
    return RunStatus.INTERRUPTED


def find_run(paths: Paths, store: Store, config: Config | None, target: str) -> st.RunRecord:
    """A run by id, unique id prefix, or connection name (its latest run)."""
    st.migrate(store)
    record = st.get_run(store, target)
    if record is not None:
        return record
    conn = config.connection(target) if config is not None else None
    # A connection no longer in the config (or no config at all) still has its history.
    names = [conn.name] if conn is not None else st.recorded_names(store, target)
    for name in names:
        latest = st.list_runs(store, name, limit=1)
        if latest:
            return latest[0]
    if conn is not None:
        raise NotFoundError(
            f'connection "{conn.name}" has not run yet',
            fix=f'start it with `bctui run "{conn.name}"`',
        )
    raise NotFoundError(
        f'no run or connection "{target}"',
        fix="`bctui runs` lists run ids; `bctui list` the connections",
    )


def latest_runs(store: Store) -> dict[str, st.RunRecord]:
    """Connection name (as recorded) -> its newest run record, in one query."""
    st.migrate(store)
    return st.latest_runs(store)


def running(
    paths: Paths, connections: Iterable[str], store: Store | None = None
) -> dict[str, Holder]:
    """Connection -> its live lock holder, for the connections running now (a rename holds the
    lock for a moment with no run id: that is no run)."""
    out: dict[str, Holder] = {}
    for name in connections:
        holder = live_holder(paths, name, store)
        if holder is not None and holder.run_id:
            out[name] = holder
    return out


def wait_for_log(
    paths: Paths,
    record_or_id: st.RunRecord | str,
    timeout: float = 5.0,
    store: Store | None = None,
) -> Path:
    """The run's log file; a run that is (or may be) just starting gets `timeout` seconds to
    create it, since a run records itself a moment before it opens its log.

    With a PostgreSQL `store`, a run of another host has its log in the database: the path
    returned then may not exist (`run_lines` and `follow_run` read the database instead)."""
    if isinstance(record_or_id, st.RunRecord):
        run_id = record_or_id.id
        wait = timeout if record_or_id.state == st.RUNNING else 0.0
    else:
        run_id, wait = record_or_id, timeout
    path = log_path(paths, run_id)
    db = _db(paths, store)
    deadline = time.monotonic() + wait

    def found() -> bool:
        return path.exists() or (db is not None and shared.has_events(db, run_id))

    while not found() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not found():
        raise NotFoundError(
            f"the log of run {run_id} is missing",
            where=str(path),
            fix="run logs live in the state directory's runs/ folder",
        )
    return path


def run_lines(paths: Paths, run_id: str, store: Store | None = None) -> list[bytes]:
    """The run's log lines (without newlines): from its file, else (PostgreSQL) the database."""
    path = log_path(paths, run_id)
    db = _db(paths, store)
    if path.exists() or db is None:
        with open(path, "rb") as handle:
            return [line.rstrip(b"\n") for line in handle if line.endswith(b"\n")]
    return [line.encode() for line in shared.db_lines(db, run_id)]


def run_events(paths: Paths, run_id: str, store: Store | None = None) -> Iterator[Event]:
    """Every event of a run's log (its file, else the database for a PostgreSQL store)."""
    path = log_path(paths, run_id)
    db = _db(paths, store)
    if path.exists() or db is None:
        yield from read_events(path)
        return
    for _, event in shared.read_db_events(db, run_id):
        yield event


def cancel_run(
    paths: Paths, connection: str, run_id: str | None = None, store: Store | None = None
) -> int:
    """SIGTERM to the process running the connection (that run, when `run_id` is given), which
    then stops at its next safe point and records CANCELLED; returns its pid."""
    holder = live_holder(paths, connection, store)
    if holder is None or not holder.run_id or (run_id is not None and holder.run_id != run_id):
        what = f"run {run_id} of connection" if run_id else "connection"
        now = f" (it runs {holder.run_id} now)" if holder is not None and holder.run_id else ""
        raise BctuiError(
            f'{what} "{connection}" is not running{now}',
            fix="`bctui runs` shows which runs are going",
        )
    if holder.host and holder.host != shared.this_host():
        raise BctuiError(
            f'connection "{connection}" runs on host {holder.host} (PID {holder.pid})',
            fix=f"cancel it there: `kill {holder.pid}` on {holder.host}",
        )
    try:
        os.kill(holder.pid, signal.SIGTERM)
    except ProcessLookupError:
        raise BctuiError(
            f'connection "{connection}" is not running (its run just ended)',
            fix="`bctui runs` shows how it ended",
        ) from None
    return holder.pid


def follow_run(
    paths: Paths,
    connection: str,
    run_id: str,
    *,
    pid: int | None = None,
    poll: float = 0.2,
    stop: threading.Event | None = None,
    store: Store | None = None,
) -> Iterator[Event]:
    """The events of run `run_id` as they are written, to its RunFinished.

    When its process (`pid`, else the lock's holder) first resumes an interrupted run of the
    connection, that run's events come first. It ends after `run_id`'s RunFinished, when the
    process is gone and the log has no more events (run_status then says why), or when `stop`
    is set. The log may not exist yet (a run just launched) or the run may be long over.
    With a PostgreSQL `store`, a run whose log is not on this host is followed from the
    database, and whether it is alive comes from its lease.
    """
    return _Follower(paths, connection, run_id, pid, poll, stop, store).events()


class _Follower:
    """follow_run's state: the process followed and the runs whose events were yielded."""

    def __init__(
        self,
        paths: Paths,
        connection: str,
        run_id: str,
        pid: int | None,
        poll: float,
        stop: threading.Event | None,
        store: Store | None = None,
    ) -> None:
        self.paths = paths
        self.lock = _lock(paths, connection, store)
        self.db = _db(paths, store)
        self.run_id = run_id
        self.target = log_path(paths, run_id)
        self.pid = pid  # None: whichever live process holds the lock for one of our runs
        self.poll = poll
        self.stop = stop
        self.followed: set[str] = set()  # runs of that process whose events were yielded

    def events(self) -> Iterator[Event]:
        while not self.stopped():
            if self.exists(self.run_id):
                yield from self.follow(self.run_id)
                return
            resumed = self.resumed_run()
            if resumed is not None:
                self.followed.add(resumed)
                if self.wait_until(functools.partial(self.exists, resumed)):
                    yield from self.follow(resumed)
                continue
            if not self.alive():
                if self.exists(self.run_id):  # written just before the process went
                    yield from self.follow(self.run_id)
                return
            self.sleep()

    def exists(self, run_id: str) -> bool:
        """Whether the run's log has begun: its file here, or its events in the database."""
        if log_path(self.paths, run_id).exists():
            return True
        if self.db is None:
            return False
        try:
            return shared.has_events(self.db, run_id)
        except BctuiError:
            return False

    def follow(self, run_id: str) -> Iterator[Event]:
        path = log_path(self.paths, run_id)
        if self.db is not None and not path.exists():
            yield from shared.follow_db_events(
                self.db, run_id, poll=self.poll, alive=self.alive, stop=self.stop
            )
            return
        yield from follow_events(path, poll=self.poll, alive=self.alive, stop=self.stop)

    def alive(self) -> bool:
        """Whether the process that runs (or will run) our run is still there."""
        if self.pid is not None:  # a process of this host, started by the caller
            return pid_alive(self.pid)
        holder = self.holder()
        return (
            holder is not None
            and (holder.run_id == self.run_id or holder.run_id in self.followed)
            and holder_alive(holder)
        )

    def holder(self) -> Holder | None:
        try:
            return self.lock.holder()
        except BctuiError:
            return None  # the server is unreachable for a moment

    def resumed_run(self) -> str | None:
        """Another run our process is on now (an interrupted one it resumes first), if any."""
        holder = self.holder()
        if holder is None or not holder.run_id or not holder_alive(holder):
            return None
        if holder.run_id == self.run_id or holder.run_id in self.followed:
            return None
        if self.pid is None:
            # No process named: the one holding the lock while our run has no log yet is the
            # one that will write it.
            self.pid = holder.pid
        return holder.run_id if holder.pid == self.pid else None

    def wait_until(self, condition: Callable[[], bool]) -> bool:
        """Poll `condition` while the process lives; False when it went or `stop` came first."""
        while not condition():
            if not self.alive() or self.stopped():
                return condition()
            self.sleep()
        return True

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def sleep(self) -> None:
        if self.stop is not None:
            self.stop.wait(self.poll)
        else:
            time.sleep(self.poll)
