"""The profile store on a PostgreSQL server, shared by several hosts."""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Final, Literal

import psycopg
from psycopg import errors as pg_errors

from bctui.errors import BctuiError
from bctui.store.base import Cursor
from bctui.store.model import Profile, permission_rank
from bctui.store.pg import segments as pg_segments
from bctui.store.pg.queries import lookup
from bctui.store.pg.schema import META, PROFILE_COLUMNS, STORE_MIGRATIONS
from bctui.store.pg.sql import placeholders, statement_for
from bctui.store.pg.transaction import PgTransaction
from bctui.store.queries import PROFILE_WIDTH, LookupKey, profile_from_row
from bctui.store.schema import STORE_COMPONENT, Migration
from bctui.store.segments import SegmentDef
from bctui.store.values import Scalar, identifier_key

CONNECT_TIMEOUT: Final = 10
"""Seconds to wait for the server to answer before saying it cannot be reached."""

# One key for every bctui migration of a database, so two hosts starting at once take turns.
_MIGRATE_LOCK: Final = 0x6263747569  # "bctui"


class PgStore:
    """Customer profiles in a PostgreSQL database: the `Store` interface of `ProfileStore`.

    One object serves one thread at a time; any number of objects, processes and hosts may
    share one database. `url` is a libpq URL (`postgresql://user@host:port/db`); `password`, when
    given, is used instead of one in the URL, PGPASSWORD or ~/.pgpass.
    """

    def __init__(self, url: str, *, password: str | None = None) -> None:
        self._url = url
        self._password = password
        self._where = redact(url)
        self._conn = self._connect()
        self._tx: PgTransaction | None = None
        try:
            self.migrate(STORE_COMPONENT, STORE_MIGRATIONS)
        except BaseException:
            self._conn.close()
            raise

    @property
    def dialect(self) -> Literal["postgresql"]:
        """The SQL dialect of `query` results and of `migrate`'s per-dialect statements."""
        return "postgresql"

    @property
    def conninfo(self) -> tuple[str, str | None]:
        """The libpq URL and the password it was opened with, for connections of a caller's own
        (the run lease, shared events); never for messages (see `where`)."""
        return self._url, self._password

    @property
    def where(self) -> str:
        """The store's URL without its password, for messages."""
        return self._where

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back)."""
        self._conn.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PgStore({self._where!r})"

    # -- connections ----------------------------------------------------------------------

    def _connect(self, *, autocommit: bool = True) -> psycopg.Connection[Any]:
        kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT}
        if self._password is not None:
            kwargs["password"] = self._password
        try:
            return psycopg.connect(self._url, autocommit=autocommit, **kwargs)
        except psycopg.Error as exc:
            raise connect_error(exc, self._url) from None
        except Exception as exc:  # a URL libpq cannot parse
            raise BctuiError(f"cannot use the store URL: {exc}", where="[store] url",
                             fix='use url = "postgresql://user@host:port/database"') from None

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection of its own in a read-only REPEATABLE READ transaction: one snapshot of
        the store for a long scan, while writes go on through this store and others."""
        reader = self._connect(autocommit=False)
        try:
            reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            reader.read_only = True
            yield reader
        finally:
            reader.close()

    # -- schema and transactions ----------------------------------------------------------

    def migrate(self, component: str, steps: Sequence[Migration]) -> int:
        """Apply `component`'s migration steps this database has not seen; returns how many
        ran. All of them run in one transaction: a failure leaves nothing half-made."""
        key = f"schema:{component}"
        try:
            if self._version(key) == len(steps):
                return 0
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
                self._conn.execute(META)
                current = self._version(key)
                if current > len(steps):
                    raise BctuiError(
                        f"the profile store's {component} schema is version {current}, newer "
                        f"than this bctui knows ({len(steps)})",
                        where=self._where, fix="upgrade bctui, or use another database",
                    )
                for step in steps[current:]:
                    for statement in step:
                        sql = statement_for(statement, "postgresql")
                        if sql is not None:
                            self._conn.execute(sql.encode())  # as written: no placeholders
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, str(len(steps))),
                )
        except pg_errors.InsufficientPrivilege as exc:
            raise BctuiError(
                f"cannot create the store's tables: {_first_line(exc)}", where=self._where,
                fix="grant the user CREATE on the schema (GRANT CREATE ON SCHEMA public TO "
                    "user, as the database's owner), or use a database the user owns",
            ) from None
        except psycopg.OperationalError as exc:
            raise self._error(exc, "cannot update the store's tables") from None
        except psycopg.Error as exc:
            raise BctuiError(f"cannot update the store's {component} tables: {_first_line(exc)}",
                             where=self._where,
                             fix="nothing was changed; report this as a bug in bctui") from None
        return len(steps) - current

    def _version(self, key: str) -> int:
        if self._conn.execute("SELECT to_regclass('meta')").fetchone() == (None,):
            return 0
        row = self._conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgTransaction]:
        """`with store.transaction() as tx:` — all of it is committed, or (on error) none of it."""
        if self._tx is not None:
            raise RuntimeError("a transaction is already open on this store")
        try:
            with self._conn.transaction():
                tx = self._tx = PgTransaction(self._conn)
                try:
                    yield tx
                    tx._finish()
                finally:
                    tx._close()
        except psycopg.OperationalError as exc:
            raise self._error(exc, "cannot write") from None
        finally:
            self._tx = None

    @contextlib.contextmanager
    def page_cache(self, kib: int) -> Iterator[None]:
        """Nothing to do on PostgreSQL (the server sizes its own cache)."""
        yield

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Cursor:
        """Run a read-only statement of the caller's (SQLite-flavoured: `?` placeholders)."""
        return self._conn.execute(placeholders(sql, isinstance(params, dict)), params)

    def segment_sql(
        self, segment: SegmentDef, *, alias: str = "p", correlated: bool = False
    ) -> tuple[str, list[object]]:
        """The segment's predicate for this store's SQL (see `bctui.store.segments`); one form
        serves both uses here."""
        return pg_segments.segment_sql(segment, alias=alias)

    def index_properties(self, names: Iterable[str], *, wait: bool = True) -> bool:
        """Nothing to do: the GIN index on the properties holds every property's values."""
        return True

    # -- reads ----------------------------------------------------------------------------

    def get(self, profile_id: str) -> Profile | None:
        """The profile with this id, or None."""
        row = self._conn.execute(
            f"SELECT {PROFILE_COLUMNS} FROM profile p WHERE p.id = %s", (profile_id,)
        ).fetchone()
        return None if row is None else profile_from_row(row)

    def find(self, property: str, value: Scalar) -> list[str]:
        """Ids of the profiles having `value` in `property`, oldest first (numbers numerically)."""
        return self.find_many(property, (value,)).get(value, [])

    def find_many(self, property: str, values: Iterable[Scalar]) -> dict[Scalar, list[str]]:
        """`find` for many values in one query; values nobody has are absent from the result."""
        keys: dict[LookupKey, list[Scalar]] = {}
        for value in values:
            key = identifier_key(value)
            if key is not None:
                keys.setdefault(key, []).append(value)
        found = lookup(self._conn, property, keys)
        if not found:
            return {}
        pids = sorted({pid for pid_list in found.values() for pid in pid_list})
        ids = dict(self._conn.execute(
            "SELECT pid, id FROM profile WHERE pid = ANY(%s::bigint[])", (pids,)
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
        `until_seq`; by default, all of them."""
        where = ["p.seq > ?"]
        params: list[object] = [since_seq]
        if until_seq is not None:
            where.append("p.seq <= ?")
            params.append(until_seq)
        if segment is not None:
            predicate, segment_params = self.segment_sql(segment)
            where.append(predicate)
            params.extend(segment_params)
        sql = f"SELECT count(*) FROM profile p WHERE {' AND '.join(where)}"
        return int(self.query(sql, params).fetchone()[0])

    def segment_counts(self, segments: Iterable[SegmentDef]) -> dict[str, int]:
        """Each segment's member count, by name (one scan for all of them)."""
        segments = list(segments)
        if not segments:
            return {}
        columns: list[str] = []
        params: list[object] = []
        for segment in segments:
            sql, segment_params = self.segment_sql(segment)
            columns.append(f"count(*) FILTER (WHERE {sql})")
            params.extend(segment_params)
        row = self.query(f"SELECT {', '.join(columns)} FROM profile p", params).fetchone()
        return {segment.name: int(n) for segment, n in zip(segments, row, strict=True)}

    def in_segment(self, profile_id: str, segment: SegmentDef) -> bool:
        """Whether the profile is a member of the segment (False when there is no such profile)."""
        predicate, params = self.segment_sql(segment)
        row = self.query(
            f"SELECT {predicate} FROM profile p WHERE p.id = ?", (*params, profile_id)
        ).fetchone()
        return bool(row and row[0])

    def max_seq(self) -> int:
        """The highest change sequence number committed so far (0 for a new store)."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()
        return int(row[0]) if row else 0

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
        `segments_of` segments each belongs to; see `ProfileStore.iter_profiles` (a snapshot
        as committed when the iteration starts, streamed in bounded memory)."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        where = ["p.seq > ?"]
        where_params: list[object] = [since_seq]
        if min_permission is not None:
            where.append("p.permission_level >= ?")
            where_params.append(permission_rank(min_permission))
        return self._stream(segment, segments_of, where, where_params, batch)

    def _stream(self, segment: SegmentDef | None, segments_of: Sequence[SegmentDef],
                where: list[str], where_params: list[object],
                batch: int) -> Generator[tuple[Profile, list[str]], None, None]:
        columns = [PROFILE_COLUMNS]
        column_params: list[object] = []
        for other in segments_of:
            sql, params = self.segment_sql(other)
            columns.append(sql)
            column_params.extend(params)
        if segment is not None:
            sql, params = self.segment_sql(segment)
            where.append(sql)
            where_params.extend(params)
        statement = placeholders(
            f"SELECT {', '.join(columns)} FROM profile p WHERE {' AND '.join(where)}"
            " ORDER BY p.seq"
        )
        names = [s.name for s in segments_of]
        width = PROFILE_WIDTH
        with self.snapshot() as reader:
            cursor = reader.cursor(name="bctui_profiles")
            cursor.itersize = batch
            cursor.execute(statement, (*column_params, *where_params))
            while rows := cursor.fetchmany(batch):
                for row in rows:
                    flags = row[width:]
                    member_of = [name for name, flag in zip(names, flags, strict=True) if flag]
                    yield profile_from_row(row[:width]), member_of

    def _error(self, exc: psycopg.Error, doing: str) -> BctuiError:
        return BctuiError(f"{doing}: {_first_line(exc)}", where=self._where,
                          fix="check that the PostgreSQL server is running and reachable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect_error(exc: psycopg.Error, url: str) -> BctuiError:
    """A clear error for a connection that failed: what is wrong, and what to fix."""
    from psycopg.conninfo import conninfo_to_dict

    where = redact(url)
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        info = {}
    user = str(info.get("user") or "the user")
    db = str(info.get("dbname") or user)
    host = f"{info.get('host') or 'localhost'}:{info.get('port') or 5432}"
    text = str(exc)
    lowered = text.lower()
    if "password authentication failed" in lowered or exc.sqlstate == "28P01":
        return BctuiError(f'PostgreSQL refused the password of user "{user}"', where=where,
                          fix="check [store] password (a secret: or env: reference), "
                              "PGPASSWORD or ~/.pgpass")
    if "no password supplied" in lowered or "password is required" in lowered:
        return BctuiError(f'PostgreSQL asks for a password for user "{user}" and none was given',
                          where=where,
                          fix='set [store] password = "secret:NAME" (or "env:VAR"), '
                              "PGPASSWORD or ~/.pgpass")
    if ("database" in lowered and "does not exist" in lowered) or exc.sqlstate == "3D000":
        return BctuiError(f'the database "{db}" does not exist on {host}', where=where,
                          fix=f'create it (createdb -O {user} {db}) or fix the database name in '
                              "[store] url")
    if "role" in lowered and "does not exist" in lowered:
        return BctuiError(f'PostgreSQL has no user "{user}"', where=where,
                          fix="create the role (CREATE ROLE … LOGIN PASSWORD …) or fix the user "
                              "in [store] url")
    if "permission denied" in lowered or exc.sqlstate == "42501":
        return BctuiError(f'user "{user}" may not connect to database "{db}"', where=where,
                          fix=f"GRANT CONNECT ON DATABASE {db} TO {user}")
    return BctuiError(f"cannot reach the PostgreSQL server at {host}: {_reason(text)}",
                      where=where,
                      fix="check the host and port in [store] url, that the server is running "
                          "and accepts TCP connections from this host (listen_addresses, "
                          "pg_hba.conf)")


def _reason(text: str) -> str:
    """libpq's reason ("Connection refused", "timeout expired", …) from its message."""
    for line in text.splitlines():
        if "failed: " in line:
            return line.split("failed: ", 1)[1].strip()
    return _first_line(Exception(text))


def redact(url: str) -> str:
    """The URL with any password replaced, so that no message shows it."""
    from bctui.store.store import _redact

    return _redact(url)
