"""A write transaction on the PostgreSQL store: profile writes plus the caller's own rows."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg

from bctui.store.base import Cursor
from bctui.store.model import ProfileWrite, WriteResult
from bctui.store.pg.sql import placeholders
from bctui.store.pg.writes import PgBatch
from bctui.store.writes import WriteLike, gc_paused


class PgTransaction:
    """Writes inside one READ COMMITTED transaction (see `PgStore.transaction`).

    Writers on several hosts commit in any order, so change sequences need care: an export
    takes everything up to the highest committed sequence as sent, and a writer that took a
    lower number but committed later would be skipped for ever. Profile writes therefore first
    lock the sequence counter's row (`SELECT … FOR UPDATE`) and keep it until COMMIT: numbers
    are handed out and committed in order, as under SQLite's write lock. The lock is taken
    before the batch reads its profiles, so a writer always merges into what the previous one
    committed: concurrent `sum` and `add` lose no update.
    """

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._seq: int | None = None
        self._seq_at_start: int | None = None
        self._open = True

    def apply(self, write: ProfileWrite) -> WriteResult:
        """Apply one write; see `apply_many` for the batched path."""
        return self.apply_many((write,))[0]

    def apply_many(self, writes: Sequence[WriteLike]) -> list[WriteResult]:
        """Apply writes in order, as if one by one, with the I/O done once for the batch."""
        self._check_open()
        if not writes:
            return []
        self._lock_seq()
        now = time.time_ns() // 1000
        with gc_paused():
            return PgBatch(self._conn, self._next_seq, now).run(writes)

    def execute(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> Cursor:
        """Run the caller's own statement (`?` placeholders) in this transaction."""
        self._check_open()
        return self._conn.execute(placeholders(sql, isinstance(params, dict)), params)

    def executemany(
        self, sql: str, rows: Iterable[Sequence[Any] | dict[str, Any]]
    ) -> Cursor:
        """`execute` for many parameter rows (pipelined: one round trip for all)."""
        self._check_open()
        rows = list(rows)
        cursor = self._conn.cursor()
        if rows:
            named = isinstance(rows[0], dict)
            cursor.executemany(placeholders(sql, named), rows)
        return cursor

    def _lock_seq(self) -> None:
        if self._seq is None:
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'seq' FOR UPDATE"
            ).fetchone()
            self._seq = self._seq_at_start = int(row[0]) if row else 0

    def _next_seq(self) -> int:
        assert self._seq is not None
        self._seq += 1
        return self._seq

    def _finish(self) -> None:
        """Record the sequence counter; called just before COMMIT."""
        self._open = False
        if self._seq is not None and self._seq != self._seq_at_start:
            self._conn.execute("UPDATE meta SET value = %s WHERE key = 'seq'", (str(self._seq),))

    def _close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("this transaction is already committed or rolled back")
