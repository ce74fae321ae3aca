"""The profile store: a SQLite file in WAL mode, safe to share between processes."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

from bctui.errors import BctuiError
from bctui.store.index import add_to_index, try_index
from bctui.store.model import Profile, permission_rank
from bctui.store.queries import (
    PROFILE_COLUMNS,
    PROFILE_WIDTH,
    current_seq,
    few_changes,
    json_array,
    lookup_any,
    profile_from_row,
)
from bctui.store.schema import (
    CACHE_KIB,
    STORE_COMPONENT,
    STORE_MIGRATIONS,
    Migration,
    apply_migrations,
    connect,
)
from bctui.store.segments import SegmentDef, register_functions, segment_properties, segment_sql
from bctui.store.transaction import Transaction
from bctui.store.values import Scalar, identifier_key

if TYPE_CHECKING:
    from bctui.store.base import Store

DEFAULT_BUSY_TIMEOUT: Final = 60.0
"""Seconds a write waits for another process's write transaction before giving up."""


_LOCKED_FIX: Final = (
    "another bctui process (a run or `profiles load`) is writing to it; wait for it to finish "
    "and try again"
)


class ProfileStore:
    """Customer profiles in a SQLite file: reads, segment queries and batched write transactions.

    One object serves one thread at a time (it may be handed to a worker thread); several objects
    and several processes may share one file.
    """

    def __init__(self, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self._path = Path(path)
        self._where = str(self._path)
        self._busy_timeout = busy_timeout
        _create_private(self._path)
        self._conn = connect(self._path, busy_timeout=busy_timeout)
        self._tx: Transaction | None = None
        try:
            register_functions(self._conn)
            self.migrate(STORE_COMPONENT, STORE_MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise

    @property
    def path(self) -> Path:
        """The store's database file."""
        return self._path

    @property
    def dialect(self) -> Literal["sqlite"]:
        """The SQL dialect of `query` results and of `migrate`'s per-dialect statements."""
        return "sqlite"

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._conn.close()

    def __enter__(self) -> ProfileStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProfileStore({self._where!r})"

    # -- schema and transactions ---------------------------------------------------------

    def migrate(self, component: str, steps: Sequence[Migration]) -> int:
        """Apply `component`'s migration steps this file has not seen; returns how many ran."""
        try:
            return apply_migrations(self._conn, component, steps, where=self._where)
        except sqlite3.OperationalError as exc:
            raise self._error(exc, "cannot update the store's tables") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """`with store.transaction() as tx:` — all of it is committed, or (on error) none of it."""
        if self._tx is not None:
            raise RuntimeError("a transaction is already open on this store")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._error(exc, "cannot start a write") from exc
        tx = self._tx = Transaction(self._conn)
        try:
            yield tx
            tx._finish()
            self._conn.execute("COMMIT")
        except BaseException:
            tx._close()
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self._tx = None

    @contextlib.contextmanager
    def page_cache(self, kib: int) -> Iterator[None]:
        """Use a page cache of `kib` KiB on this store's connection for a while (a writer whose
        writes land in key order needs little; memory is what it saves)."""
        self._conn.execute(f"PRAGMA cache_size = -{int(kib)}")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run a read-only statement of the caller's (e.g. over tables it migrated in)."""
        return self._conn.execute(sql, params)

    def segment_sql(
        self, segment: SegmentDef, *, alias: str = "p", correlated: bool = False
    ) -> tuple[str, list[object]]:
        """The segment's predicate for this store's SQL: `bctui.store.segments.segment_sql`."""
        return segment_sql(segment, alias=alias, correlated=correlated)

    def index_properties(self, names: Iterable[str], *, wait: bool = True) -> bool:
        """Have the value index hold these properties' values (identifiers, segment rules).

        Lookups and segment queries index what they use on their own; an engine calls this
        for the properties its segments and identifier rules name, so that the first run does
        not pay for it. With `wait=False`, gives up (returning False) when another process is
        writing: every query answers from the profiles' JSON meanwhile, only slower.
        """
        wanted = list(names)
        if not wanted:
            return True
        try:
            if self._conn.in_transaction:  # inside `transaction()`: the write lock is ours
                add_to_index(self._conn, wanted)
                return True
            if wait:
                with self.transaction():
                    add_to_index(self._conn, wanted)
                return True
            return try_index(self._conn, wanted, busy_timeout=self._busy_timeout)
        except sqlite3.OperationalError as exc:
            raise self._error(exc, "cannot index the properties") from exc

    # -- reads -----------------------------------------------------------------------------

    def get(self, profile_id: str) -> Profile | None:
        """The profile with this id, or None."""
        row = self._conn.execute(
            f"SELECT {PROFILE_COLUMNS} FROM profile p WHERE p.id = ?", (profile_id,)
        ).fetchone()
        return None if row is None else profile_from_row(row)

    def find(self, property: str, value: Scalar) -> list[str]:
        """Ids of the profiles having `value` in `property`, oldest first (numbers numerically)."""
        return self.find_many(property, (value,)).get(value, [])

    def find_many(self, property: str, values: Iterable[Scalar]) -> dict[Scalar, list[str]]:
        """`find` for many values in one query; values nobody has are absent from the result."""
        keys: dict[tuple[bool, Scalar], list[Scalar]] = {}
        for value in values:
            key = identifier_key(value)
            if key is not None:
                keys.setdefault(key, []).append(value)
        self.index_properties([property], wait=False)
        found = lookup_any(self._conn, property, keys)
        if not found:
            return {}
        pids = {pid for pid_list in found.values() for pid in pid_list}
        ids = dict(self._conn.execute(
            "SELECT pid, id FROM profile WHERE pid IN (SELECT value FROM json_each(?))",
            (json_array(pids),),
        ).fetchall())
        out: dict[Scalar, list[str]] = {}
        for key, pid_list in found.items():
            for value in keys[key]:
                out[value] = [ids[pid] for pid in pid_list]
        return out

    def count(
        self, segment: SegmentDef | None = None, *, since_seq: int = 0,
        until_seq: int | None = None,
    ) -> int:
        """The number of profiles (or of a segment's members) changed after `since_seq` and up to
        `until_seq`; by default, all of them. A small delta is counted from its own rows."""
        where = ["p.seq > ?"]
        params: list[object] = [since_seq]
        if until_seq is not None:
            where.append("p.seq <= ?")
            params.append(until_seq)
        if segment is not None:
            correlated = few_changes(self._conn, since_seq)
            if not correlated:
                self.index_properties(segment_properties([segment]), wait=False)
            predicate, segment_params = segment_sql(segment, correlated=correlated)
            where.append(predicate)
            params.extend(segment_params)
        elif since_seq <= 0 and until_seq is None:
            return int(self._conn.execute("SELECT count(*) FROM profile").fetchone()[0])
        sql = f"SELECT count(*) FROM profile p WHERE {' AND '.join(where)}"
        return int(self._conn.execute(sql, params).fetchone()[0])

    def segment_counts(self, segments: Iterable[SegmentDef]) -> dict[str, int]:
        """Each segment's member count, by name."""
        return {segment.name: self.count(segment) for segment in segments}

    def in_segment(self, profile_id: str, segment: SegmentDef) -> bool:
        """Whether the profile is a member of the segment (False when there is no such profile)."""
        predicate, params = segment_sql(segment, correlated=True)
        row = self._conn.execute(
            f"SELECT {predicate} FROM profile p WHERE p.id = ?", (*params, profile_id)
        ).fetchone()
        return bool(row and row[0])

    def max_seq(self) -> int:
        """The highest change sequence number allocated so far (0 for a new store)."""
        return current_seq(self._conn)

    def iter_profiles(
        self,
        *,
        segment: SegmentDef | None = None,
        since_seq: int = 0,
        segments_of: Sequence[SegmentDef] = (),
        min_permission: str | None = None,
        batch: int = 1000,
    ) -> Generator[tuple[Profile, list[str]], None, None]:
        """Profiles changed after `since_seq`, in change order, with the names of the
        `segments_of` segments each belongs to.

        Streams `batch` rows at a time from one statement on a connection of its own: the
        profiles as committed when the iteration starts (a snapshot; writes made meanwhile, even
        through this store, are left for the next delta), in bounded memory. The scan walks the
        sequence index from `since_seq`, so a delta of a few changes reads only those rows.
        `segment` keeps its members only; `min_permission` keeps profiles at or above it.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        where = ["p.seq > ?"]
        where_params: list[object] = [since_seq]
        if min_permission is not None:
            where.append("p.permission_level >= ?")
            where_params.append(permission_rank(min_permission))
        return self._stream(segment, segments_of, where, where_params, since_seq, batch)

    def _stream(self, segment: SegmentDef | None, segments_of: Sequence[SegmentDef],
                where: list[str], where_params: list[object], since_seq: int,
                batch: int) -> Generator[tuple[Profile, list[str]], None, None]:
        if segment is not None or segments_of:
            every = [*segments_of, *([segment] if segment is not None else [])]
            self.index_properties(segment_properties(every), wait=False)
        reader = connect(self._path, busy_timeout=self._busy_timeout)
        try:
            register_functions(reader)
            reader.execute("BEGIN")  # one snapshot for the sizing query and the scan
            correlated = True
            if segment is not None or segments_of:
                correlated = few_changes(reader, since_seq)
            columns = [PROFILE_COLUMNS]
            column_params: list[object] = []
            for other in segments_of:
                sql, params = segment_sql(other, correlated=correlated)
                columns.append(sql)
                column_params.extend(params)
            if segment is not None:
                sql, params = segment_sql(segment, correlated=correlated)
                where.append(sql)
                where_params.extend(params)
            cursor = reader.execute(
                f"SELECT {', '.join(columns)} FROM profile p INDEXED BY profile_seq "
                f"WHERE {' AND '.join(where)} ORDER BY p.seq",
                (*column_params, *where_params),
            )
            names = [s.name for s in segments_of]
            while rows := cursor.fetchmany(batch):
                for row in rows:
                    flags = row[PROFILE_WIDTH:]
                    member_of = [name for name, flag in zip(names, flags, strict=True) if flag]
                    yield profile_from_row(row[:PROFILE_WIDTH]), member_of
        finally:
            reader.close()

    def _error(self, exc: sqlite3.OperationalError, doing: str) -> BctuiError:
        if "locked" in str(exc) or "busy" in str(exc):
            return BctuiError(f"{doing}: the profile store is busy", where=self._where,
                              fix=_LOCKED_FIX)
        return BctuiError(f"{doing}: {exc}", where=self._where,
                          fix="check the file's permissions and the free disk space")


def open_store(url: str, state_dir: Path, *, password: str | None = None) -> Store:
    """Open the store a `[store] url` names: `sqlite:///name.db` is relative to `state_dir`,
    `sqlite:////abs/path.db` absolute; `postgresql://user@host:port/db` a PostgreSQL database,
    with `password` (resolved from `[store] password`) or libpq's PGPASSWORD / ~/.pgpass."""
    if is_postgres_url(url):
        from bctui.store.pg.store import PgStore

        return PgStore(url, password=password)
    return ProfileStore(store_path(url, state_dir))


def is_postgres_url(url: str) -> bool:
    """Whether a store URL names a PostgreSQL database (`postgresql://` or `postgres://`)."""
    return url.partition("://")[0].lower() in ("postgresql", "postgres")


def store_path(url: str, state_dir: Path) -> Path:
    """The database file a store URL names; raises BctuiError for anything but a SQLite file."""
    where = "[store] url"
    fix = ('use url = "sqlite:///profiles.db" (a file in the state directory), '
           '"sqlite:////abs/path.db" or "postgresql://user@host:port/database"')
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme != "sqlite":
        raise BctuiError(f'unsupported store URL "{_redact(url)}"', where=where, fix=fix)
    if not rest.startswith("/"):
        raise BctuiError(f'"{_redact(url)}" names a host; a SQLite URL has three slashes',
                         where=where, fix=fix)
    path_text = rest[1:]
    if not path_text or path_text.endswith("/") or "?" in path_text or "#" in path_text:
        raise BctuiError(f'"{url}" does not name a database file', where=where, fix=fix)
    path = Path(path_text)
    return path if path.is_absolute() else Path(state_dir) / path


def _redact(url: str) -> str:
    """The URL with any password replaced, so an error message never shows it."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host += f":{parts.port}"
        netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return url.partition("://")[0] + "://…"


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (profiles hold personal data);
    SQLite gives its -wal and -shm files the same permissions."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise BctuiError(f"cannot create the profile store: {exc.strerror}", where=str(path),
                         fix="check that the directory exists and is writable") from exc
    os.close(fd)
