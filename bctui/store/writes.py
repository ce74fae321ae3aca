"""Applying a batch of profile writes with a handful of statements.

A batch is applied as if its writes ran one after another: a later write sees what an earlier one
did (two records for one new e-mail address create one profile; two `sum`s both count). The I/O is
per batch: one lookup per identifier property, one read of the profiles involved, then a few
statements for the changes (a new profile's text values are indexed by SQLite straight from the
JSON just stored). Matching uses an in-memory index of the looked-up identifier values, kept
current as the batch changes those properties.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Final

import orjson

from bctui.store.merge import merge
from bctui.store.model import (
    DEFAULT_PERMISSION,
    PERMISSION_LEVELS,
    ProfileWrite,
    WriteResult,
    permission_rank,
)
from bctui.store.queries import LookupKey, json_array, lookup
from bctui.store.values import (
    MergeError,
    Scalar,
    identifier_key,
    lookup_keys,
    numeric,
    same_values,
)

_NO_VALUES: Final[list[Scalar]] = []
_DEFAULT_RANK: Final = PERMISSION_LEVELS.index(DEFAULT_PERMISSION)
_STATE_COLUMNS: Final = "pid, id, properties, permission_level, interactions_viewed, seq"


class _State:
    """A profile's working copy during a batch."""

    __slots__ = ("id", "interactions", "is_new", "level", "original", "pid", "props", "seq")

    def __init__(self, pid: int | None, id_: str, props: dict[str, list[Scalar]], level: int,
                 interactions: list[str], seq: int, *, is_new: bool) -> None:
        self.pid = pid
        self.id = id_
        self.props = props
        self.level = level
        self.interactions = interactions
        self.seq = seq
        self.is_new = is_new
        # Each changed property's values as the value index holds them (before this batch).
        self.original: dict[str, list[Scalar]] | None = None


class Batch:
    """One call of `Transaction.apply_many`: resolve, merge in memory, then write the changes."""

    def __init__(self, conn: sqlite3.Connection, next_seq: Callable[[], int], now: str) -> None:
        self._conn = conn
        self._next_seq = next_seq
        self._now = now
        self._pid_of_id: dict[str, int] = {}
        self._index: dict[tuple[str, LookupKey], set[int]] = {}
        self._indexed_names: set[str] = set()
        self._states: dict[int, _State] = {}
        self._next_pid: int | None = None

    def run(self, writes: Sequence[ProfileWrite]) -> list[WriteResult]:
        """Apply `writes` in order and write every change; returns one result per write."""
        self._prefetch(writes)
        results = [self._apply(write) for write in writes]
        self._flush()
        return results

    # -- reading ---------------------------------------------------------------------------

    def _prefetch(self, writes: Sequence[ProfileWrite]) -> None:
        ids: set[str] = set()
        wanted: dict[str, set[LookupKey]] = {}
        for write in writes:
            if write.profile_id is not None:
                ids.add(write.profile_id)
            else:
                for group in write.match:
                    for name, value in group:
                        key = identifier_key(value)
                        if key is not None:
                            wanted.setdefault(name, set()).add(key)
        if ids:
            self._load("id", ids)
        for name, keys in wanted.items():
            found = lookup(self._conn, name, keys)
            for key in keys:
                self._index[(name, key)] = set(found.get(key, ()))
        self._indexed_names = set(wanted)
        # Load the profiles the writes will most likely touch; a write whose target moves
        # because of an earlier write in the batch loads its profile on its own.
        pids: set[int] = set()
        for write in writes:
            if write.profile_id is None and write.match:
                pid, _ = self._match(write)
                if pid is not None and pid not in self._states:
                    pids.add(pid)
        if pids:
            self._load("pid", pids)

    def _load(self, column: str, keys: set[str] | set[int]) -> None:
        rows = self._conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM profile WHERE {column} IN "
            "(SELECT value FROM json_each(?))",
            (json_array(keys),),
        )
        loads = orjson.loads
        for pid, id_, props, level, interactions, seq in rows:
            self._states[pid] = _State(pid, id_, loads(props), level, loads(interactions), seq,
                                       is_new=False)
            self._pid_of_id[id_] = pid

    def _match(self, write: ProfileWrite) -> tuple[int | None, bool]:
        """(the oldest profile satisfying the first satisfiable group, whether it had company)."""
        for group in write.match:
            candidates: set[int] | None = None
            for name, value in group:
                key = identifier_key(value)
                found = self._index.get((name, key)) if key is not None else None
                if not found:
                    candidates = None
                    break
                candidates = found if candidates is None else candidates & found
                if not candidates:
                    break
            if candidates:
                return min(candidates), len(candidates) > 1
        return None, False

    def _resolve(self, write: ProfileWrite) -> tuple[_State | None, bool]:
        pid: int | None = None
        ambiguous = False
        if write.profile_id is not None:
            pid = self._pid_of_id.get(write.profile_id)
        elif write.match:
            pid, ambiguous = self._match(write)
        if pid is None:
            return None, False
        if pid not in self._states:
            self._load("pid", {pid})
        return self._states[pid], ambiguous

    # -- merging ---------------------------------------------------------------------------

    def _apply(self, write: ProfileWrite) -> WriteResult:
        state, ambiguous = self._resolve(write)
        if state is None:
            if not write.create:
                return WriteResult("skipped", None)
            state = _State(None, write.profile_id or new_profile_id(), {}, _DEFAULT_RANK, [], 0,
                           is_new=True)
        props = state.props
        changes: dict[str, list[Scalar]] = {}
        errors: list[MergeError] = []
        for name, strategy, incoming in write.updates:
            if "\x00" in name:
                errors.append(MergeError(f"the property name {name!r} contains a NUL character,"
                                         " which cannot be stored"))
                continue
            current = changes[name] if name in changes else props.get(name, _NO_VALUES)
            if strategy == "set" and type(incoming) is str and incoming and "\x00" not in incoming:
                # The commonest write, `set` to one text value, without the general merge.
                same = len(current) == 1 and current[0] == incoming and type(current[0]) is str
                changes[name] = current if same else [incoming]
                continue
            try:
                changes[name] = merge(strategy, current, incoming)
            except MergeError as exc:
                errors.append(MergeError(f'property "{name}": {exc}', value=exc.value,
                                         strategy=exc.strategy))
        created = state.pid is None
        if errors:
            return WriteResult("failed", None if created else state.id, tuple(errors), ambiguous,
                               None if created else state.seq)
        if created:
            changed = [name for name, values in changes.items() if values]
        else:
            changed = [name for name, values in changes.items()
                       if values is not (old := props.get(name, _NO_VALUES))
                       and not same_values(old, values)]
        level = state.level
        if write.permission_level is not None:
            level = permission_rank(write.permission_level)
        interactions = state.interactions
        if write.interactions_viewed:
            seen = set(interactions)
            extra = [i for i in dict.fromkeys(write.interactions_viewed) if i not in seen]
            if extra:
                interactions = [*interactions, *extra]
        same_meta = level == state.level and interactions is state.interactions
        if not (created or changed) and same_meta:
            return WriteResult("unchanged", state.id, (), ambiguous, state.seq)
        if created:
            state.pid = self._allocate_pid()
            self._states[state.pid] = state
            self._pid_of_id[state.id] = state.pid
        if changed:
            original = state.original
            if original is None:
                original = state.original = {}
            for name in changed:
                old = props.get(name, _NO_VALUES)
                if name not in original:
                    original[name] = old
                new = changes[name]
                if name in self._indexed_names:
                    self._reindex(state.pid, name, old, new)
                if new:
                    props[name] = new
                else:
                    del props[name]
        elif state.original is None:
            state.original = {}
        state.level = level
        state.interactions = interactions
        state.seq = self._next_seq()
        return WriteResult("created" if created else "updated", state.id, (), ambiguous, state.seq)

    def _reindex(self, pid: int | None, name: str, old: list[Scalar], new: list[Scalar]) -> None:
        """Keep the batch's identifier index true to the profile's new values."""
        assert pid is not None
        for values, present in ((old, False), (new, True)):
            for value in values:
                for key in lookup_keys(value):
                    pids = self._index.get((name, key))
                    if pids is not None:
                        if present:
                            pids.add(pid)
                        else:
                            pids.discard(pid)

    def _allocate_pid(self) -> int:
        if self._next_pid is None:
            row = self._conn.execute("SELECT max(pid) FROM profile").fetchone()
            self._next_pid = (row[0] or 0) + 1
        pid = self._next_pid
        self._next_pid += 1
        return pid

    # -- writing ---------------------------------------------------------------------------

    def _flush(self) -> None:
        touched = [s for s in self._states.values() if s.original is not None]
        if not touched:
            return
        now = self._now
        dumps = orjson.dumps
        sort_keys = orjson.OPT_SORT_KEYS
        created: list[tuple[object, ...]] = []
        updated: list[tuple[object, ...]] = []
        removed: list[tuple[str, Scalar, int]] = []
        added: list[tuple[str, Scalar, int, int | float | None]] = []
        numeric_texts: list[tuple[int | float, str, str, int]] = []
        for state in touched:
            pid = state.pid
            assert pid is not None and state.original is not None
            props = state.props
            props_json = dumps(props, option=sort_keys).decode()
            interactions = dumps(state.interactions).decode()
            if state.is_new:
                created.append((pid, state.id, props_json, state.level, interactions, now, now,
                                state.seq))
                # Text values reach the index straight from the JSON (see below); numbers,
                # and the reading of numeric text, from here.
                for name, values in props.items():
                    for v in values:
                        if not isinstance(v, str):
                            added.append((name, v, pid, None))
                        elif (number := numeric(v)) is not None:
                            numeric_texts.append((number, name, v, pid))
                continue
            updated.append((props_json, state.level, interactions, now, state.seq, pid))
            for name, old in state.original.items():
                new = props.get(name, _NO_VALUES)
                # Exact identity (type and value): a 1 that becomes 1.0 is rewritten.
                old_keys = {(type(v), v) for v in old}
                new_keys = {(type(v), v) for v in new}
                removed.extend((name, v, pid) for v in old if (type(v), v) not in new_keys)
                added.extend((name, v, pid, numeric(v) if isinstance(v, str) else None)
                             for v in new if (type(v), v) not in old_keys)
        conn = self._conn
        if created:
            conn.executemany(
                "INSERT INTO profile (pid, id, properties, permission_level, interactions_viewed,"
                " created_at, updated_at, seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                created,
            )
            # New profiles have the batch's consecutive pids. Letting SQLite read their text
            # values out of the JSON it just stored costs far less than binding each one.
            conn.execute(
                "INSERT INTO prop (name, value, pid) SELECT k.key, v.value, p.pid"
                " FROM profile AS p, json_each(p.properties) AS k, json_each(k.value) AS v"
                " WHERE p.pid BETWEEN ? AND ? AND v.type = 'text'",
                (created[0][0], created[-1][0]),
            )
        if updated:
            conn.executemany(
                "UPDATE profile SET properties = ?, permission_level = ?,"
                " interactions_viewed = ?, updated_at = ?, seq = ? WHERE pid = ?",
                updated,
            )
        if removed:
            conn.executemany("DELETE FROM prop WHERE name = ? AND value = ? AND pid = ?", removed)
        if added:
            conn.executemany("INSERT INTO prop (name, value, pid, num) VALUES (?, ?, ?, ?)",
                             added)
        if numeric_texts:
            conn.executemany("UPDATE prop SET num = ? WHERE name = ? AND value = ? AND pid = ?",
                             numeric_texts)


def new_profile_id() -> str:
    """A new profile id: a UUID whose first 48 bits are the time in milliseconds (version 7).

    Random otherwise, but time-ordered, so a new profile's id lands at the end of the id index
    rather than on a random page: a large load changes far fewer pages.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    return str(uuid.UUID(int=value))
