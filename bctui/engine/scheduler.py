"""The scheduler: which connections are due, claiming each scheduled slot exactly once, starting
their runs, the heartbeat that says a scheduler is alive, and the `bctui scheduler` loop.

Slots. A connection's slots are its schedule's run times (`schedule.next_runs`). The store keeps,
per connection, the last slot handled (`schedule_slot`): every slot up to it was started, skipped
(switched off, or a run still going) or predates the connection. A pass takes the newest slot
after it that is not in the future, so a daemon that was down makes up a missed run once, not
once per missed slot. A connection seen for the first time (or whose schedule changed) records
that moment instead and waits for its next slot. A slot is claimed in a write transaction before
its run starts, so the daemon and `bctui tick` (and two of either) never start one slot twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Final, Literal, TextIO

import orjson

from bctui.engine.config import ConfigError, load_config
from bctui.engine.models import Config, Schedule
from bctui.engine.paths import Paths
from bctui.engine.retention import prune
from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.launch import RunHandle, launch_run
from bctui.engine.runs.runner import RunOptions
from bctui.engine.schedule import next_run, next_runs
from bctui.engine.stores import open_configured_store
from bctui.errors import BctuiError
from bctui.store import Store

HEARTBEAT_FILE: Final = "scheduler.json"
LOG_FILE: Final = "scheduler.log"
LOCK_FILE: Final = "scheduler.lock"
# Test seam: a file holding the current time (seconds since the epoch) that slot times are read
# against instead of the system clock. Only slots use it; the heartbeat keeps real time.
FAKE_NOW_ENV: Final = "BCTUI_FAKE_NOW_FILE"
ALIVE_SECONDS: Final = 30.0  # a heartbeat older than this means no scheduler is running
TICK_FILE: Final = "tick.json"
TICK_ALIVE_SECONDS: Final = 150.0  # cron runs `bctui tick` every minute or so
POLL_SECONDS: Final = 5.0  # the longest sleep: config edits are noticed within it
PRUNE_SECONDS: Final = 3600.0  # how often the daemon applies the retention
LOG_MAX_BYTES: Final = 5_000_000  # scheduler.log is rotated to scheduler.log.1 past this
# Windows searched for the newest missed slot, smallest first (a run every minute would make a
# month of downtime 43,200 slots to walk; most schedules find their slot in the first window).
_WINDOWS: Final = (timedelta(hours=2), timedelta(days=3), timedelta(days=70), timedelta(days=800))

Clock = Callable[[], datetime]
Action = Literal["start", "busy", "off", "first_seen", "rescheduled"]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def clock_from_env() -> Clock:
    """The system clock, or the test clock `$BCTUI_FAKE_NOW_FILE` names (read at each call)."""
    name = os.environ.get(FAKE_NOW_ENV, "")
    if not name:
        return system_clock
    path = Path(name)

    def fake() -> datetime:
        try:
            return datetime.fromtimestamp(float(path.read_text(encoding="utf-8")), UTC)
        except (OSError, ValueError):
            return system_clock()

    return fake


# -- slots ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlotRecord:
    """One connection's row of `schedule_slot`."""

    connection: str  # the folded name
    slot: float  # every slot up to this instant is handled
    handled_at: float | None  # when the last slot was claimed (None: only first seen)
    schedule: str  # schedule_key() of the schedule the slot belongs to


@dataclass(frozen=True)
class Decision:
    """What one pass did with one connection's due slot."""

    connection: str  # the name as configured
    action: Action  # start it, skipped (busy / off), or only recorded (first seen / new schedule)
    slot: datetime | None = None


def schedule_key(schedule: Schedule) -> str:
    """A stable text for a schedule: when it changes, past slots are forgotten."""
    return orjson.dumps(dataclasses.asdict(schedule), option=orjson.OPT_SORT_KEYS).decode()


def slot_records(store: Store) -> dict[str, SlotRecord]:
    """Every connection's last handled slot, by folded name."""
    st.migrate(store)
    rows = store.query("SELECT connection, slot, handled_at, schedule FROM schedule_slot")
    return {r[0]: SlotRecord(r[0], r[1], r[2], r[3]) for r in rows.fetchall()}


def newest_slot(schedule: Schedule, after: datetime, now: datetime) -> datetime | None:
    """The newest slot of `schedule` strictly after `after` and not after `now`, or None."""
    if now <= after:
        return None
    for window in _WINDOWS:
        start = max(after, now - window)
        found: datetime | None = None
        cursor = start
        while True:
            batch = next_runs(schedule, cursor, 64)
            hits = [t for t in batch if t <= now]
            if hits:
                found = hits[-1]
            if len(hits) < 64:
                break
            cursor = hits[-1]
        if found is not None:
            return found
        if start == after:
            return None
    return None


def claim_due(
    store: Store, config: Config, now: datetime, busy: Collection[str] = ()
) -> list[Decision]:
    """Claim every connection's due slot at `now` and say what to do with it.

    `busy` holds the folded names of connections with a run going: their slot is handled as
    skipped. Switched-off connections have their slots handled without a run, so switching one
    on never starts the slots it missed while off. Connections not seen before (or whose
    schedule changed) only record `now` as their starting point.
    """
    records = slot_records(store)
    out: list[Decision] = []
    for conn in config.connections:
        key = conn.name.casefold()
        fingerprint = schedule_key(conn.schedule)
        record = records.get(key)
        if record is None or record.schedule != fingerprint:
            if _claim(store, key, fingerprint, now.timestamp(), None, record):
                action: Action = "first_seen" if record is None else "rescheduled"
                out.append(Decision(conn.name, action))
            continue
        due = newest_slot(conn.schedule, datetime.fromtimestamp(record.slot, UTC), now)
        if due is None:
            continue
        if not _claim(store, key, fingerprint, due.timestamp(), now.timestamp(), record):
            continue  # another scheduler (or tick) handled it first
        if not conn.enabled:
            action = "off"
        elif key in busy:
            action = "busy"
        else:
            action = "start"
        out.append(Decision(conn.name, action, due))
    return out


def _claim(
    store: Store,
    key: str,
    fingerprint: str,
    slot: float,
    handled_at: float | None,
    expected: SlotRecord | None,
) -> bool:
    """Move the connection's slot to `slot` if its row is still `expected`; whether it did."""
    with store.transaction() as tx:
        row = tx.execute(
            "SELECT slot, schedule FROM schedule_slot WHERE connection = ?", (key,)
        ).fetchone()
        current = None if row is None else (row[0], row[1])
        if current != (None if expected is None else (expected.slot, expected.schedule)):
            return False
        tx.execute(
            "INSERT INTO schedule_slot (connection, slot, handled_at, schedule) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (connection) DO UPDATE SET slot = excluded.slot, "
            "handled_at = excluded.handled_at, schedule = excluded.schedule",
            (key, slot, handled_at, fingerprint),
        )
    return True


def next_slot(config: Config, now: datetime) -> datetime | None:
    """The soonest slot after `now` among switched-on connections."""
    upcoming = [next_run(c.schedule, now) for c in config.connections if c.enabled]
    found = [t for t in upcoming if t is not None]
    return min(found) if found else None


# -- heartbeat -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchedulerStatus:
    """A scheduler's heartbeat: where and since when it runs, and when it last beat."""

    host: str
    pid: int
    started_at: float
    beat_at: float
    kind: Literal["daemon", "tick"] = "daemon"

    def describe(self) -> str:
        """'scheduler running on HOST since 2026-01-27 01:30' (local time), or for cron's
        `bctui tick`: '`bctui tick` last ran on HOST at 01:31:00'."""
        if self.kind == "tick":
            at = time.strftime("%H:%M:%S", time.localtime(self.beat_at))
            return f"`bctui tick` last ran on {self.host} at {at}"
        since = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.started_at))
        return f"scheduler running on {self.host} since {since} (PID {self.pid})"


NOT_RUNNING: Final = (
    "no scheduler is running: next run times are not kept unless `bctui scheduler` or "
    "`bctui tick` from cron runs"
)


def heartbeat_path(paths: Paths) -> Path:
    """`<state>/scheduler.json`."""
    return paths.state_dir / HEARTBEAT_FILE


def read_heartbeat(paths: Paths) -> SchedulerStatus | None:
    """The heartbeat file as written, alive or not (None when absent or unreadable)."""
    return _read_status(heartbeat_path(paths))


def _read_status(path: Path) -> SchedulerStatus | None:
    try:
        raw = orjson.loads(path.read_bytes())
        return SchedulerStatus(
            str(raw["host"]), int(raw["pid"]), float(raw["started_at"]), float(raw["beat_at"])
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def scheduler_status(paths: Paths, *, now: float | None = None) -> SchedulerStatus | None:
    """What keeps the schedules now, or None: a daemon whose heartbeat is under 30 s old and,
    on this host, whose process lives; else a `bctui tick` that ran in the last few minutes."""
    now = time.time() if now is None else now
    status = read_heartbeat(paths)
    # Another host's process cannot be checked from here; its heartbeat must do.
    if (
        status is not None
        and now - status.beat_at < ALIVE_SECONDS
        and (status.host != socket.gethostname() or history.pid_alive(status.pid))
    ):
        return status
    tick = _read_status(paths.state_dir / TICK_FILE)
    if tick is not None and now - tick.beat_at < TICK_ALIVE_SECONDS:
        return dataclasses.replace(tick, kind="tick")
    return None


def record_tick(paths: Paths) -> None:
    """Note that `bctui tick` ran, so that `bctui list` and the UI know cron keeps the schedules."""
    now = time.time()
    status = SchedulerStatus(socket.gethostname(), os.getpid(), now, now, "tick")
    path = paths.state_dir / TICK_FILE
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(orjson.dumps(dataclasses.asdict(status)))
    os.replace(temp, path)


def _write_heartbeat(paths: Paths, status: SchedulerStatus) -> None:
    # Temp file + rename: a reader never sees half a file. No fsync: it is rewritten every poll.
    path = heartbeat_path(paths)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_bytes(orjson.dumps(dataclasses.asdict(status)))
    os.replace(temp, path)


# -- the log ---------------------------------------------------------------------------------


class SchedulerLog:
    """Plain timestamped lines to `<state>/scheduler.log` and to stderr."""

    def __init__(self, paths: Paths, stream: TextIO | None = None) -> None:
        self.path = paths.state_dir / LOG_FILE
        self.stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()

    def info(self, message: str) -> None:
        """An ordinary event: a run started, the config reloaded."""
        self.write("info", message)

    def warning(self, message: str) -> None:
        """Something skipped or ignored."""
        self.write("warning", message)

    def error(self, message: str) -> None:
        """Something failed (the scheduler goes on)."""
        self.write("error", message)

    def write(self, level: str, message: str) -> None:
        """One line: `2026-01-27T01:30:00+01:00 info message`."""
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        line = f"{stamp} {level} {message}\n"
        with self._lock:
            with contextlib.suppress(OSError):
                self._rotate()
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(line)
            with contextlib.suppress(OSError, ValueError):
                self.stream.write(line)
                self.stream.flush()

    def _rotate(self) -> None:
        if self.path.exists() and self.path.stat().st_size > LOG_MAX_BYTES:
            os.replace(self.path, self.path.with_name(LOG_FILE + ".1"))


# -- starting runs ---------------------------------------------------------------------------


class Scheduler:
    """Starts due runs: one pass for `bctui tick`, a loop for `bctui scheduler`."""

    def __init__(
        self,
        paths: Paths,
        log: SchedulerLog,
        *,
        clock: Clock = system_clock,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.paths = paths
        self.log = log
        self.clock = clock
        self.poll = poll
        self.config: Config | None = None
        self.handles: dict[str, RunHandle] = {}  # folded name -> the run this scheduler started
        self._config_seen: tuple[int, int, int] | None = None  # mtime_ns, size, inode
        self._config_digest = ""
        self._last_prune = 0.0

    # -- config --

    def reload(self) -> Config | None:
        """Re-read connections.toml when it changed; an invalid edit is logged and the last
        valid config kept. Returns the config in use (None before a first valid one)."""
        try:
            info = self.paths.config.stat()
            seen = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            seen = None
        if seen is not None and seen == self._config_seen and self.config is not None:
            return self.config
        self._config_seen = seen
        try:
            data = self.paths.config.read_bytes()
        except OSError as exc:
            if self._config_digest != "missing":
                self._config_digest = "missing"
                self.log.error(
                    f"cannot read {self.paths.config}: {exc.strerror or exc}; "
                    + ("keeping the last valid config" if self.config else "waiting for it")
                )
            return self.config
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._config_digest:
            return self.config
        self._config_digest = digest
        first = self.config is None
        try:
            config = load_config(self.paths.config)
        except ConfigError as exc:
            kept = "keeping the last valid config" if self.config else "no runs start until fixed"
            self.log.error(f"{exc.render()}\n  ({kept})")
            return self.config
        self.config = config
        names = ", ".join(c.name for c in config.connections if c.enabled) or "none"
        verb = "read" if first else "reloaded"
        self.log.info(
            f"{verb} {self.paths.config}: {len(config.connections)} connection(s), on: {names}"
        )
        return config

    # -- one pass --

    def run_due(self, config: Config) -> list[Decision]:
        """Claim and start what is due now; skipped slots are logged. Never raises for a run
        that cannot start."""
        self._reap(config)
        now = self.clock()
        names = [c.name for c in config.connections]
        busy = {key for key, handle in self.handles.items() if history.pid_alive(handle.pid)}
        self.paths.ensure_state_dir()
        with open_configured_store(config.store, self.paths) as store:
            # On PostgreSQL the leases show runs of every host, not only this one's.
            busy |= {name.casefold() for name in history.running(self.paths, names, store)}
            decisions = claim_due(store, config, now, busy)
        for decision in decisions:
            self._act(decision)
        return decisions

    def _act(self, decision: Decision) -> None:
        name = decision.connection
        when = _local(decision.slot) if decision.slot else ""
        if decision.action == "first_seen":
            self.log.info(f'"{name}": first seen; its schedule counts from now')
        elif decision.action == "rescheduled":
            self.log.info(f'"{name}": schedule changed; it counts from now')
        elif decision.action == "off":
            self.log.info(f'"{name}": slot {when} not run: the connection is switched off')
        elif decision.action == "busy":
            self.log.warning(f'"{name}": slot {when} skipped: a run of it is still going')
        else:
            try:
                handle = launch_run(self.paths, name, RunOptions(), started_by="scheduler")
            except BctuiError as exc:
                self.log.error(f'"{name}": slot {when}: cannot start the run: {exc.render()}')
                return
            self.handles[name.casefold()] = handle
            self.log.info(f'"{name}": slot {when}: started run {handle.run_id} (PID {handle.pid})')

    def _reap(self, config: Config) -> None:
        """Log how the runs this scheduler started ended."""
        ended = [(k, h) for k, h in self.handles.items() if not history.pid_alive(h.pid)]
        if not ended:
            return
        with contextlib.ExitStack() as stack:
            store: Store | None = None
            with contextlib.suppress(BctuiError):
                store = stack.enter_context(open_configured_store(config.store, self.paths))
            for key, handle in ended:
                del self.handles[key]
                record = st.get_run(store, handle.run_id) if store is not None else None
                if record is None:
                    self.log.error(
                        f'"{handle.connection}": run {handle.run_id} ended without recording '
                        f"itself; see {handle.stderr_path}"
                    )
                elif record.state == st.FINISHED:
                    self.log.info(f'"{handle.connection}": run {handle.run_id} FINISHED')
                else:
                    error = f": {record.error}" if record.error else ""
                    self.log.error(
                        f'"{handle.connection}": run {handle.run_id} {record.state}{error}'
                    )

    def prune_if_due(self, config: Config) -> None:
        """Apply the retention at most once an hour."""
        if time.monotonic() - self._last_prune < PRUNE_SECONDS and self._last_prune:
            return
        self._last_prune = time.monotonic()
        with open_configured_store(config.store, self.paths) as store:
            report = prune(self.paths, store, config.retention)
        if report.runs or report.files:
            self.log.info(f"retention: {report.describe()}")

    # -- the daemon --

    def serve(self, stop: threading.Event) -> None:
        """Run until `stop` is set: reload the config, beat, start due runs, sleep."""
        self.paths.ensure_state_dir()
        status = SchedulerStatus(socket.gethostname(), os.getpid(), time.time(), time.time())
        self.log.info(f"scheduler started (PID {status.pid}, state {self.paths.state_dir})")
        try:
            while not stop.is_set():
                status = dataclasses.replace(status, beat_at=time.time())
                with contextlib.suppress(OSError):
                    _write_heartbeat(self.paths, status)
                config = self.reload()
                if config is not None:
                    self._pass(config)
                stop.wait(self._sleep_for(config))
        finally:
            with contextlib.suppress(OSError):
                current = read_heartbeat(self.paths)
                if current is not None and current.pid == status.pid:
                    heartbeat_path(self.paths).unlink()
            going = [h for h in self.handles.values() if history.pid_alive(h.pid)]
            left = f"; {len(going)} run(s) it started go on" if going else ""
            self.log.info(f"scheduler stopped{left}")

    def _pass(self, config: Config) -> None:
        # One bad pass (a locked or unreadable store, a disk error) is logged, never fatal.
        try:
            self.run_due(config)
        except (BctuiError, OSError) as exc:
            self.log.error(f"pass failed: {exc}")
        try:
            self.prune_if_due(config)
        except (BctuiError, OSError) as exc:
            self.log.error(f"retention failed: {exc}")

    def _sleep_for(self, config: Config | None) -> float:
        """Until the next slot, but at most one poll."""
        if config is None:
            return self.poll
        now = self.clock()
        upcoming = next_slot(config, now)
        if upcoming is None:
            return self.poll
        return max(0.05, min(self.poll, (upcoming - now).total_seconds()))


class SchedulerLock:
    """Only one `bctui scheduler` per state directory (an flock the kernel drops on exit)."""

    def __init__(self, paths: Paths) -> None:
        self.path = paths.state_dir / LOCK_FILE
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise BctuiError naming the scheduler that has it."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(self.path, "a+b")  # noqa: SIM115 - held for the daemon's life
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().decode(errors="replace").strip() or "?"
            handle.close()
            raise BctuiError(
                f"another scheduler is running for this state directory (PID {pid})",
                where=str(self.path.parent),
                fix="stop it first, or give this one another --state-dir",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let go of the lock."""
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None


def _local(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M")
