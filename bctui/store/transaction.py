"""A write transaction on the store: profile writes plus the caller's own rows, atomically."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from typing import Any

from bctui.store.model import ProfileWrite, WriteResult
from bctui.store.queries import current_seq
from bctui.store.writes import Batch, WriteLike, gc_paused


class Transaction:
    """Writes inside one `BEGIN IMMEDIATE` transaction (see `ProfileStore.transaction`).

    The write lock is held from the start, so the change sequence numbers it hands out are
    above every number another connection has committed, and below any it will commit later.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._seq: int | None = None
        self._seq_at_start: int | None = None
        self._open = True

    def apply(self, write: ProfileWrite) -> WriteResult:
        """Apply one write; see `apply_many` for the batched path."""
        return self.apply_many((write,))[0]

    def apply_many(self, writes: Sequence[WriteLike]) -> list[WriteResult]:
        """Apply writes (`ProfileWrite`s, or the loader's `PreparedWrite`s) in order, as if one
        by one, with the I/O done once for the batch."""
        self._check_open()
        if not writes:
            return []
        now = time.time_ns() // 1000  # microseconds since the epoch, as stored
        with gc_paused():
            return Batch(self._conn, self._next_seq, now).run(writes)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run the caller's own statement in this transaction (committed with the writes)."""
        self._check_open()
        return self._conn.execute(sql, params)

    def executemany(
        self, sql: str, rows: Iterable[Sequence[Any] | dict[str, Any]]
    ) -> sqlite3.Cursor:
        """`execute` for many parameter rows."""
        self._check_open()
        return self._conn.executemany(sql, rows)

    def _next_seq(self) -> int:
        if self._seq is None:
            self._seq = self._seq_at_start = current_seq(self._conn)
        self._seq += 1
        return self._seq

    def _finish(self) -> None:
        """Record the sequence counter; called just before COMMIT."""
        self._open = False
        if self._seq is not None and self._seq != self._seq_at_start:
            self._conn.execute("UPDATE meta SET value = ? WHERE key = 'seq'", (self._seq,))

    def _close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("this transaction is already committed or rolled back")
