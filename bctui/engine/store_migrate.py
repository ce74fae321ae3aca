"""`bctui store migrate`: copy a SQLite store, with its history, into a PostgreSQL database.

Everything bctui keeps in the store moves: profiles with their change sequences (so export
watermarks stay meaningful), run history and per-goal progress, watermarks, what each export
last sent, rejected profiles to retry, import jobs and the files they applied, the scheduler's
slots, and the run logs of the state directory (into the run events table, so every host can
read them). The target is written in one transaction and checked before it commits: each
table's row count and an order-independent checksum of its rows, computed on both sides, must
agree, or nothing is committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from bctui.engine.runs import state as st
from bctui.errors import BctuiError
from bctui.store import Store

CHUNK: Final = 5000
PROFILE_COLUMNS: Final = (
    "pid", "id", "properties", "permission_level", "interactions_viewed", "created_us",
    "updated_us", "seq",
)  # fmt: skip
# The SQLite store's own tables that are not copied as they are: `profile` is copied column by
# column, `meta` only for its change-sequence counter, and the value index (`prop`,
# `prop_name`) is SQLite's alone (PostgreSQL answers lookups from a GIN index).
STORE_TABLES: Final = ("profile", "meta", "prop", "prop_name")
EVENTS_TABLE: Final = "run_event"
_MASK: Final = (1 << 64) - 1


@dataclass(frozen=True)
class TableReport:
    """One table's copy: rows on each side and their checksums."""

    table: str
    source_rows: int
    target_rows: int
    source_sum: str
    target_sum: str

    @property
    def ok(self) -> bool:
        """Whether both sides agree."""
        return self.source_rows == self.target_rows and self.source_sum == self.target_sum


@dataclass(frozen=True)
class MigrateReport:
    """What `migrate_store` copied, table by table."""

    tables: tuple[TableReport, ...]
    replaced: bool

    @property
    def ok(self) -> bool:
        """Whether every table verified."""
        return all(t.ok for t in self.tables)


class Checksum:
    """An order-independent checksum of rows: the sum of each row's 64-bit hash, with a count.

    Values are normalized first (bytes as text, booleans as integers), so a row reads the same
    from SQLite and PostgreSQL whatever types each driver hands back."""

    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def add(self, row: Sequence[Any]) -> None:
        """Count one row."""
        digest = hashlib.blake2b(_canonical(row), digest_size=8).digest()
        self.total = (self.total + int.from_bytes(digest, "big")) & _MASK
        self.rows += 1

    @property
    def hex(self) -> str:
        """The checksum as 16 hex digits."""
        return f"{self.total:016x}"


def _canonical(row: Sequence[Any]) -> bytes:
    parts = []
    for value in row:
        if value is None:
            parts.append("n")
        elif isinstance(value, bool):
            parts.append(f"i{int(value)}")
        elif isinstance(value, int):
            parts.append(f"i{value}")
        elif isinstance(value, float):
            parts.append(f"i{int(value)}" if value.is_integer() else f"f{value!r}")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            parts.append("s" + bytes(value).decode("utf-8", "surrogateescape"))
        else:
            parts.append("s" + str(value))
    return "\x1e".join(parts).encode("utf-8", "surrogateescape")


def migrate_store(
    source: Store,
    target: Any,
    *,
    runs_dir: Path | None = None,
    replace: bool = False,
    progress: Callable[[str], None] = lambda text: None,
) -> MigrateReport:
    """Copy `source` (SQLite) into `target` (PostgreSQL) in one transaction, verified before it
    commits; the run logs in `runs_dir` go to the target's run events. A target holding data
    is refused unless `replace` (its bctui rows are then deleted in the same transaction)."""
    if getattr(source, "dialect", "sqlite") != "sqlite":
        raise BctuiError("`store migrate` copies from a SQLite store", where="--from",
                         fix='give --from "sqlite:///profiles.db" (or an absolute sqlite:////…)')
    if getattr(target, "dialect", "") != "postgresql":
        raise BctuiError("`store migrate` copies into a PostgreSQL store", where="--to",
                         fix='give --to "postgresql://user@host:port/database"')
    st.migrate(source)
    st.migrate(target)
    tables = _engine_tables(source, target)
    occupied = _occupied(target, [*tables, "profile", EVENTS_TABLE])
    if occupied and not replace:
        raise BctuiError(
            "the target database already holds bctui data (" + ", ".join(occupied) + ")",
            where="--to",
            fix="migrate into an empty database, or add --replace-target to delete what it "
            "holds and copy the source in its place",
        )
    reports: list[TableReport] = []
    source.query("BEGIN")  # one snapshot of the source for every table
    try:
        with target.transaction() as tx:
            if occupied:
                for table in [*tables, "profile", EVENTS_TABLE]:
                    tx.execute(f"DELETE FROM {table}")
            progress("profiles")
            reports.append(_copy_profiles(source, tx))
            for table in tables:
                progress(table)
                reports.append(_copy_table(source, target, tx, table))
            if runs_dir is not None:
                progress("run logs")
                reports.append(_copy_logs(source, tx, runs_dir))
            bad = [r for r in reports if not r.ok]
            if bad:
                raise BctuiError(
                    "the copy does not match the source ("
                    + ", ".join(f"{r.table}: {r.source_rows} rows, {r.target_rows} copied"
                                for r in bad)
                    + "); nothing was committed",
                    fix="make sure no run or load writes to either store meanwhile, and retry",
                )
    finally:
        source.query("ROLLBACK")
    return MigrateReport(tuple(reports), bool(occupied))


def _engine_tables(source: Store, target: Any) -> list[str]:
    """The source's tables other than the store's own, in name order; each must exist in the
    target (migrated by this same bctui)."""
    names = [
        r[0] for r in source.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        ).fetchall()
        if r[0] not in STORE_TABLES
    ]
    present = {
        r[0] for r in target.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = "
            "current_schema()"
        ).fetchall()
    }
    missing = [n for n in names if n not in present]
    if missing:
        raise BctuiError(
            "the target has no table for " + ", ".join(missing),
            where="--to",
            fix="the source was written by a newer bctui: upgrade this one and retry",
        )
    return names


def _occupied(target: Any, tables: Iterable[str]) -> list[str]:
    found = [t for t in tables if target.query(f"SELECT 1 FROM {t} LIMIT 1").fetchone()]
    row = target.query("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    if row is not None and int(row[0] or 0) > 0 and "profile" not in found:
        found.append("change sequence")
    return found


def _us(text: Any, us: Any) -> int:
    """A profile time as integer microseconds (rows written before that column held ISO text)."""
    if us is not None:
        return int(us)
    moment = datetime.fromisoformat(str(text))
    return int(moment.timestamp() * 1_000_000)


def _copy_profiles(source: Store, tx: Any) -> TableReport:
    out, back = Checksum(), Checksum()
    cursor = source.query(
        "SELECT pid, id, properties, permission_level, interactions_viewed, created_at, "
        "updated_at, created_us, updated_us, seq FROM profile ORDER BY pid"
    )
    marks = ", ".join("?" * len(PROFILE_COLUMNS))
    insert = f"INSERT INTO profile ({', '.join(PROFILE_COLUMNS)}) VALUES ({marks})"
    while rows := cursor.fetchmany(CHUNK):
        batch = []
        for pid, pid_text, props, level, viewed, c_at, u_at, c_us, u_us, seq in rows:
            row = (pid, pid_text, _str(props), level, _str(viewed), _us(c_at, c_us),
                   _us(u_at, u_us), seq)  # fmt: skip
            out.add(row)
            batch.append(row)
        tx.executemany(insert, batch)
    seq = source.query("SELECT value FROM meta WHERE key = 'seq'").fetchone()
    tx.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (str(int(seq[0]) if seq else 0),))
    # The per-name holder counts PostgreSQL keeps beside the profiles, from what was copied.
    tx.execute("DELETE FROM prop_name")
    tx.execute(
        "INSERT INTO prop_name (name, profiles) SELECT k.name, count(*) "
        "FROM profile p, jsonb_object_keys(p.props) AS k (name) GROUP BY k.name"
    )
    # New profiles take pids from the sequence: past every copied one.
    tx.execute("SELECT setval('profile_pid', greatest((SELECT max(pid) FROM profile), 1))")
    for stored in _read(tx, f"SELECT {', '.join(PROFILE_COLUMNS)} FROM profile"):
        back.add(stored)
    return TableReport("profile", out.rows, back.rows, out.hex, back.hex)


def _copy_table(source: Store, target: Any, tx: Any, table: str) -> TableReport:
    types = {
        r[0]: str(r[1]) for r in target.query(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?", (table,),
        ).fetchall()
    }  # fmt: skip
    cursor = source.query(f"SELECT * FROM {table}")
    columns = [d[0] for d in getattr(cursor, "description", None) or ()]
    missing = [c for c in columns if c not in types]
    if missing:
        raise BctuiError(
            f"the target's {table} table has no column " + ", ".join(missing),
            where="--to",
            fix="the source was written by a newer bctui: upgrade this one and retry",
        )
    convert = [_converter(types[c]) for c in columns]
    quoted = ", ".join(f'"{c}"' for c in columns)
    insert = f"INSERT INTO {table} ({quoted}) VALUES ({', '.join('?' * len(columns))})"
    out, back = Checksum(), Checksum()
    while rows := cursor.fetchmany(CHUNK):
        batch = [tuple(f(v) for f, v in zip(convert, row, strict=True)) for row in rows]
        for row in batch:
            out.add(row)
        tx.executemany(insert, batch)
    for stored in _read(tx, f"SELECT {quoted} FROM {table}"):
        back.add(stored)
    return TableReport(table, out.rows, back.rows, out.hex, back.hex)


def _copy_logs(source: Store, tx: Any, runs_dir: Path) -> TableReport:
    """Each history run's log file, as its run events (line numbers from 1)."""
    out, back = Checksum(), Checksum()
    for (run_id,) in source.query("SELECT id FROM run ORDER BY id").fetchall():
        path = runs_dir / f"{run_id}.jsonl"
        if not path.is_file():
            continue
        batch = [(run_id, n, line) for n, line in enumerate(_log_lines(path), start=1)]
        for row in batch:
            out.add(row)
        for start in range(0, len(batch), CHUNK):
            tx.executemany(
                "INSERT INTO run_event (run_id, n, body) VALUES (?, ?, ?)",
                batch[start:start + CHUNK],
            )
    for stored in _read(tx, "SELECT run_id, n, body FROM run_event"):
        back.add(stored)
    return TableReport(EVENTS_TABLE, out.rows, back.rows, out.hex, back.hex)


def _log_lines(path: Path) -> Iterator[str]:
    with open(path, "rb") as handle:
        for raw in handle:
            if raw.endswith(b"\n") and raw.strip():
                yield raw.rstrip(b"\n").decode("utf-8", "replace")


def _read(tx: Any, sql: str) -> Iterator[Sequence[Any]]:
    cursor = tx.execute(sql)
    while rows := cursor.fetchmany(CHUNK):
        yield from rows


def _str(value: Any) -> Any:
    return bytes(value).decode() if isinstance(value, (bytes, bytearray, memoryview)) else value


def _bytes(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, (bool, float)) and float(value).is_integer() else value


def _converter(data_type: str) -> Callable[[Any], Any]:
    """SQLite's loosely typed value as the target column's type takes it."""
    if data_type in ("text", "character varying", "json", "jsonb"):
        return _str
    if data_type == "bytea":
        return _bytes
    if data_type in ("bigint", "integer", "smallint"):
        return _number
    return lambda value: value
