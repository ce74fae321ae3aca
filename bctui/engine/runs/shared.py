"""Runs shared between hosts through a PostgreSQL store: the run lease and the run events.

With a SQLite store a run's lock is a file lock and its events a file in the state directory.
With PostgreSQL, several hosts share the store, so both live in the database too:

- `run_lease`: one row per connection naming its holder (host, PID, run id) with an expiry the
  holder's heartbeat renews; a host that vanished (SIGKILL, network gone) stops renewing, and
  its lease is free again once it expires (about a minute, `BCTUI_LEASE_SECONDS`).
- `run_event`: every line of a run's log, appended in batches by a writer thread, so `bctui
  watch`, `bctui runs` and the UI on another host follow the run.

Everything here talks to the server on connections of its own (autocommit), never on the store's:
a heartbeat must not wait behind a long import transaction.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bctui.engine.runs.events import Event, RunFinished, parse_event, pause
from bctui.errors import BctuiError

if TYPE_CHECKING:
    import psycopg

    from bctui.engine.paths import Paths
    from bctui.engine.runs.lock import Holder
    from bctui.store import Store

SHARED_COMPONENT: Final = "shared"
SHARED_MIGRATIONS: Final = (
    (
        # `connection` is the folded connection name (names compare ignoring case); times are
        # seconds since the epoch, `expires_at` on the server's clock so hosts' clocks may differ.
        """CREATE TABLE run_lease (
            connection TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            run_id TEXT NOT NULL,
            started_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL,
            token TEXT NOT NULL
        )""",
        # A run's log lines in order (`n` from 1); a resumed run appends after its own.
        """CREATE TABLE run_event (
            run_id TEXT NOT NULL,
            n BIGINT NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (run_id, n)
        )""",
    ),
)

LEASE_ENV: Final = "BCTUI_LEASE_SECONDS"
HOST_ENV: Final = "BCTUI_HOST"
DEFAULT_LEASE_SECONDS: Final = 60.0
EVENT_FLUSH_SECONDS: Final = 0.5
EVENT_FLUSH_LINES: Final = 500
EVENT_BUFFER_LINES: Final = 100_000  # kept while the server is unreachable; oldest dropped after
CONNECT_TIMEOUT: Final = 10
_NOW: Final = "extract(epoch from clock_timestamp())"


def lease_seconds() -> float:
    """How long a lease lasts without a heartbeat (`BCTUI_LEASE_SECONDS`, default 60)."""
    raw = os.environ.get(LEASE_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_LEASE_SECONDS
    except ValueError:
        value = DEFAULT_LEASE_SECONDS
    return max(0.5, value)


def this_host() -> str:
    """The name this host goes by in leases (`BCTUI_HOST`, else the host name)."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


def is_postgres(store: Store | None) -> bool:
    """Whether the store is a PostgreSQL one (shared between hosts)."""
    return store is not None and store.dialect == "postgresql"


def migrate(store: Store) -> None:
    """Create the lease and event tables in a PostgreSQL store (nothing for SQLite)."""
    if is_postgres(store):
        store.migrate(SHARED_COMPONENT, SHARED_MIGRATIONS)


class SharedDb:
    """One autocommit connection to the store's server, opened on first use and reopened after
    a failure; safe to share between threads (one statement at a time)."""

    def __init__(self, conninfo: str, password: str | None = None, where: str = "") -> None:
        self._conninfo = conninfo
        self._password = password
        self.where = where or "[store] url"
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def clone(self) -> SharedDb:
        """Another SharedDb to the same server, with a connection of its own."""
        return SharedDb(self._conninfo, self._password, self.where)

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT}
            if self._password is not None:
                kwargs["password"] = self._password
            self._conn = psycopg.connect(self._conninfo, **kwargs)
        return self._conn

    def rows(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement without a result)."""
        return self._run(sql, params)[0]

    def count(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> int:
        """Run one statement; how many rows it changed."""
        return self._run(sql, params)[1]

    def many(self, sql: str, params: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows, in one transaction."""
        import psycopg

        with self._lock:
            try:
                conn = self._connect()
                with conn.transaction(), conn.cursor() as cursor:
                    cursor.executemany(sql, params)
            except psycopg.Error as exc:
                self._drop()
                raise self._error(exc) from exc

    def _run(
        self, sql: str, params: Sequence[Any] | dict[str, Any]
    ) -> tuple[list[tuple[Any, ...]], int]:
        import psycopg
        import psycopg.errors

        with self._lock:
            try:
                cursor = self._connect().execute(sql, params)
                found = cursor.fetchall() if cursor.description else []
                return found, cursor.rowcount
            except psycopg.errors.UndefinedTable:
                return [], 0  # a store no run has used yet: no leases, no events
            except psycopg.Error as exc:
                self._drop()
                raise self._error(exc) from exc

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def _error(self, exc: Exception) -> BctuiError:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return BctuiError(
            f"the PostgreSQL store cannot be reached for run coordination: {first}",
            where=self.where,
            fix="check that the server is up and reachable, and the [store] settings",
        )

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._drop()


_SHARED: dict[tuple[str, str | None], SharedDb] = {}
_SHARED_LOCK = threading.Lock()


def shared_db(store: Store | None) -> SharedDb | None:
    """The process's SharedDb for a PostgreSQL store's server (None for SQLite or no store)."""
    if not is_postgres(store):
        return None
    conninfo, password = store_conninfo(store)
    with _SHARED_LOCK:
        db = _SHARED.get((conninfo, password))
        if db is None:
            where = str(getattr(store, "where", "") or "[store] url")
            db = _SHARED[(conninfo, password)] = SharedDb(conninfo, password, where)
        return db


_CONFIGURED: dict[Path, tuple[int, SharedDb | None]] = {}


def close_all() -> None:
    """Close every connection this process keeps for run coordination (they reopen on use)."""
    with _SHARED_LOCK:
        found = list(_SHARED.values())
        _SHARED.clear()
        _CONFIGURED.clear()
    for db in found:
        db.close()


def configured_db(paths: Paths) -> SharedDb | None:
    """The SharedDb of the store `paths.config` names when it is PostgreSQL (None for SQLite,
    or without a readable config); re-read when the file changes."""
    from bctui.engine.config import load_config
    from bctui.engine.secrets import SecretsFile, resolve
    from bctui.store.store import is_postgres_url

    try:
        stamp = paths.config.stat().st_mtime_ns
    except OSError:
        return None
    with _SHARED_LOCK:
        cached = _CONFIGURED.get(paths.config)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        settings = load_config(paths.config).store
    except BctuiError:
        return None
    db = None
    if is_postgres_url(settings.url):
        password = None
        if settings.password:
            try:
                password = resolve(
                    settings.password, SecretsFile(paths.secrets), where="[store] password"
                ).reveal()
            except BctuiError:
                return None  # the run itself will say what is wrong with the password
        with _SHARED_LOCK:
            db = _SHARED.get((settings.url, password))
            if db is None:
                db = _SHARED[(settings.url, password)] = SharedDb(settings.url, password)
    with _SHARED_LOCK:
        _CONFIGURED[paths.config] = (stamp, db)
    return db


def store_conninfo(store: Any) -> tuple[str, str | None]:
    """The libpq URL and password a PostgreSQL store connects with."""
    url, password = store.conninfo
    return str(url), password


# -- the lease ---------------------------------------------------------------------------------


class LeaseLock:
    """A connection's run lock as a lease row in the database: `RunLock`'s interface.

    acquire() takes the row when it is free, expired, or left by a process of this host that is
    gone, in one conditional upsert; a heartbeat thread renews it every quarter of the lease.
    Should the lease be lost anyway (the server unreachable longer than the lease, and another
    host took over), `on_lost` is called so the run stops.
    """

    def __init__(
        self,
        db: SharedDb,
        connection: str,
        *,
        on_lost: Callable[[], None] | None = None,
        lease: float | None = None,
    ) -> None:
        self.connection = connection
        self.key = connection.casefold()
        self.db = db
        self.lease = lease_seconds() if lease is None else lease
        self.on_lost = on_lost
        self.stale: Holder | None = None
        self.lost = False
        self._token: str | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self, run_id: str) -> None:
        """Take the lease or raise LockedError naming the holder."""
        from bctui.engine.runs.history import pid_alive
        from bctui.engine.runs.lock import LockedError

        token = uuid.uuid4().hex
        before = self._row()
        dead = ""
        if before is not None:
            holder, old_token, expired = before
            if not expired and holder.host == this_host() and not pid_alive(holder.pid):
                dead = old_token  # a process of this host that died: no need to wait it out
        got = self.db.rows(
            "INSERT INTO run_lease AS l (connection, name, host, pid, run_id, started_at, "
            f"expires_at, token) VALUES (%s, %s, %s, %s, %s, %s, {_NOW} + %s, %s) "
            "ON CONFLICT (connection) DO UPDATE SET name = excluded.name, host = excluded.host, "
            "pid = excluded.pid, run_id = excluded.run_id, started_at = excluded.started_at, "
            "expires_at = excluded.expires_at, token = excluded.token "
            f"WHERE l.expires_at < {_NOW} OR l.token = %s RETURNING token",
            (self.key, self.connection, this_host(), os.getpid(), run_id, time.time(),
             self.lease, token, dead),
        )  # fmt: skip
        if not got:
            now = self._row()
            raise LockedError(self.connection, now[0] if now is not None else None)
        self.stale = before[0] if before is not None and before[0].run_id else None
        self._token = token
        self.lost = False
        self._stop.clear()
        self._beat = threading.Thread(
            target=self._heartbeat, args=(self.db.clone(), token), daemon=True,
            name=f"lease-{self.key}",
        )  # fmt: skip
        self._beat.start()

    def acquire_as(self, run_id: str) -> None:
        """Name another run as the holder (resuming an interrupted one)."""
        assert self._token is not None, "acquire() first"
        self.db.count(
            "UPDATE run_lease SET run_id = %s, started_at = %s WHERE connection = %s "
            "AND token = %s",
            (run_id, time.time(), self.key, self._token),
        )

    def release(self) -> None:
        """Stop the heartbeat and delete the lease row (if still ours)."""
        token, self._token = self._token, None
        if token is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
            self._beat = None
        with contextlib.suppress(BctuiError):
            self.db.count(
                "DELETE FROM run_lease WHERE connection = %s AND token = %s", (self.key, token)
            )

    def holder(self) -> Holder | None:
        """The holder of an unexpired lease, or None (also when it is a process of this host
        that is gone: its lease is as good as free, see acquire)."""
        from bctui.engine.runs.history import pid_alive

        row = self._row()
        if row is None or row[2]:
            return None
        holder = row[0]
        if holder.host == this_host() and not pid_alive(holder.pid):
            return None
        return holder

    def _row(self) -> tuple[Holder, str, bool] | None:
        """(holder, token, expired) of the lease row, or None when there is none."""
        from bctui.engine.runs.lock import Holder

        rows = self.db.rows(
            f"SELECT pid, run_id, started_at, host, token, expires_at < {_NOW} "
            "FROM run_lease WHERE connection = %s",
            (self.key,),
        )
        if not rows:
            return None
        pid, run_id, started_at, host, token, expired = rows[0]
        holder = Holder(int(pid), str(run_id), float(started_at), str(host))
        return holder, str(token), bool(expired)

    def _heartbeat(self, db: SharedDb, token: str) -> None:
        interval = self.lease / 4
        try:
            while not self._stop.wait(interval):
                try:
                    kept = db.count(
                        f"UPDATE run_lease SET expires_at = {_NOW} + %s "
                        "WHERE connection = %s AND token = %s",
                        (self.lease, self.key, token),
                    )
                except BctuiError:
                    continue  # unreachable for now: try again; the lease may still hold
                if kept == 0:
                    self.lost = True
                    if self.on_lost is not None:
                        self.on_lost()
                    return
        finally:
            db.close()


# -- events ------------------------------------------------------------------------------------


class EventSink:
    """Appends a run's log lines to `run_event` from a thread of its own, in batches (every
    EVENT_FLUSH_SECONDS or EVENT_FLUSH_LINES lines): the run never waits on the server."""

    def __init__(self, db: SharedDb, run_id: str) -> None:
        self.db = db.clone()
        self.run_id = run_id
        self._pending: list[bytes] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._next: int | None = None
        self.dropped = 0
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"events-{run_id}")
        self._thread.start()

    def add(self, line: bytes) -> None:
        """Queue one log line (without its newline)."""
        with self._lock:
            self._pending.append(line)
            if len(self._pending) > EVENT_BUFFER_LINES:
                del self._pending[0]
                self.dropped += 1
            if len(self._pending) >= EVENT_FLUSH_LINES:
                self._wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (waiting at most `timeout` seconds) and stop."""
        self._closing = True
        self._wake.set()
        self._thread.join(timeout)
        self.db.close()

    def _loop(self) -> None:
        while True:
            self._wake.wait(EVENT_FLUSH_SECONDS)
            self._wake.clear()
            closing = self._closing
            try:
                self._flush()
            except BctuiError:
                if closing:
                    return  # the file log has every event; the server is gone for now
                time.sleep(EVENT_FLUSH_SECONDS)
                continue
            if closing:
                return

    def _flush(self) -> None:
        with self._lock:
            lines, self._pending = self._pending, []
        if not lines:
            return
        try:
            if self._next is None:
                found = self.db.rows(
                    "SELECT coalesce(max(n), 0) FROM run_event WHERE run_id = %s", (self.run_id,)
                )
                self._next = int(found[0][0]) + 1
            first = self._next
            self.db.many(
                "INSERT INTO run_event (run_id, n, body) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                [(self.run_id, first + i, line.decode()) for i, line in enumerate(lines)],
            )
            self._next = first + len(lines)
        except BctuiError:
            with self._lock:
                self._pending[:0] = lines  # kept, in order, for the next try
            raise


def has_events(db: SharedDb, run_id: str) -> bool:
    """Whether the database holds any event of the run."""
    return bool(db.rows("SELECT 1 FROM run_event WHERE run_id = %s LIMIT 1", (run_id,)))


def read_db_events(db: SharedDb, run_id: str, after: int = 0) -> list[tuple[int, Event]]:
    """The run's events stored after line `after`, with their line numbers."""
    rows = db.rows(
        "SELECT n, body FROM run_event WHERE run_id = %s AND n > %s ORDER BY n", (run_id, after)
    )
    out = []
    for n, body in rows:
        event = parse_event(body)
        if event is not None:
            out.append((int(n), event))
    return out


def db_lines(db: SharedDb, run_id: str) -> list[str]:
    """The run's raw log lines as stored."""
    return [str(r[0]) for r in db.rows(
        "SELECT body FROM run_event WHERE run_id = %s ORDER BY n", (run_id,)
    )]


def follow_db_events(
    db: SharedDb,
    run_id: str,
    *,
    poll: float = 0.2,
    alive: Callable[[], bool] = lambda: True,
    stop: threading.Event | None = None,
) -> Iterator[Event]:
    """`follow_events` for a run whose log is on another host: polls `run_event`."""
    after = 0
    idle_checks = 0
    while True:
        try:
            found = read_db_events(db, run_id, after)
        except BctuiError:
            found = []  # the server went away for a moment: poll on
        if found:
            idle_checks = 0
            for n, event in found:
                after = n
                yield event
                if isinstance(event, RunFinished):
                    return
            continue
        if stop is not None and stop.is_set():
            return
        if not alive():
            idle_checks += 1
            # The writer flushes every EVENT_FLUSH_SECONDS: give its last batch time to land.
            if idle_checks * poll > EVENT_FLUSH_SECONDS * 4 + 1:
                return
        if pause(poll, stop):
            return
