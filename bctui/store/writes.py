"""Applying a batch of profile writes with a handful of statements.

A batch is applied as if its writes ran one after another: a later write sees what an earlier one
did (two records for one new e-mail address create one profile; two `sum`s both count). The I/O is
per batch: one lookup per identifier property, one read of the profiles involved, then a few
statements for the changes (the value index gets the values of the indexed properties only, see
`bctui.store.index`). Matching uses an in-memory index of the looked-up identifier values, kept
current as the batch changes those properties.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from typing import Final, Protocol

import orjson

from bctui.store.index import add_to_index, index_rows, indexed_names
from bctui.store.merge import merge
from bctui.store.model import (
    DEFAULT_PERMISSION,
    PERMISSION_LEVELS,
    Identifier,
    WriteResult,
    permission_rank,
)
from bctui.store.queries import LookupKey, json_array, lookup
from bctui.store.values import (
    MergeError,
    Scalar,
    identifier_key,
    lookup_keys,
    normalize,
    same_values,
)

_NO_VALUES: Final[list[Scalar]] = []
# The `props` of a prepared new profile not decoded yet (never changed: it is replaced).
_UNLOADED: Final[dict[str, list[Scalar]]] = {}
# The strategies that, merging into no values, give the incoming values as normalized.
_INTO_EMPTY: Final = frozenset(("set", "add", "set_if_empty", "clear"))
_DEFAULT_RANK: Final = PERMISSION_LEVELS.index(DEFAULT_PERMISSION)
_STATE_COLUMNS: Final = "pid, id, properties, permission_level, interactions_viewed, seq"

_Keyed = tuple[tuple[tuple[str, LookupKey | None], ...], ...]
"""A write's identifier groups, each value as its lookup key (None: nothing can equal it)."""


class _State:
    """A profile's working copy during a batch."""

    __slots__ = ("id", "interactions", "is_new", "json", "level", "original", "pid", "prepared",
                 "props", "seq")

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
        # `props` as stored (sorted-keys JSON) while a prepared new profile is unchanged.
        self.json: str | None = None
        # The write a prepared new profile came from; its `props` are `_UNLOADED` until decoded.
        self.prepared: PreparedWrite | None = None


def _decode(state: _State) -> None:
    """Decode a prepared new profile's properties from its JSON."""
    assert state.json is not None
    state.props = orjson.loads(state.json)


def _values(state: _State, name: str) -> list[Scalar]:
    """One property's values of a profile whose properties may still be JSON."""
    if state.props is _UNLOADED:
        assert state.prepared is not None
        known = state.prepared.known.get(name)
        if known is not None:
            return known
        _decode(state)
    return state.props.get(name, _NO_VALUES)


class WriteLike(Protocol):
    """What `Batch` reads of a write: `ProfileWrite`'s fields (see there)."""

    @property
    def profile_id(self) -> str | None: ...
    @property
    def updates(self) -> Sequence[tuple[str, str, object]]: ...
    @property
    def permission_level(self) -> str | None: ...
    @property
    def interactions_viewed(self) -> Sequence[str]: ...
    @property
    def match(self) -> Sequence[Sequence[Identifier]]: ...
    @property
    def create(self) -> bool: ...


class PreparedWrite:
    """A write whose result as a new profile was worked out beforehand (by the loader's reading
    process): the profile's properties as stored, used when no profile matches. Its `updates`
    (needed only when a profile does match) are made from the raw record on first use."""

    __slots__ = ("_make", "_raw", "_updates", "interactions_viewed", "known", "match", "names",
                 "new_id", "permission_level", "profile_id", "props_json")
    create: Final = True

    def __init__(self, profile_id: str | None, permission_level: str | None,
                 interactions_viewed: Sequence[str], match: Sequence[Sequence[Identifier]],
                 props_json: str, names: tuple[str, ...], known: dict[str, list[Scalar]],
                 new_id: str, raw: bytes,
                 make: Callable[[bytes], Sequence[tuple[str, str, object]]]) -> None:
        self.profile_id = profile_id
        self.permission_level = permission_level
        self.interactions_viewed = interactions_viewed
        self.match = match
        self.props_json = props_json
        """`{name: [values…]}` as sorted-keys JSON: the incoming values merged into none."""
        self.names = names
        """The names in `props_json`."""
        self.known = known
        """Some of `props_json`'s properties (the match property's) as values already, so that
        indexing them needs no decoding of the JSON."""
        self.new_id = new_id
        """The id of the new profile when `profile_id` is None (a `new_profile_id`)."""
        self._raw = raw
        self._make = make
        self._updates: Sequence[tuple[str, str, object]] | None = None

    @property
    def updates(self) -> Sequence[tuple[str, str, object]]:
        """The (property, strategy, incoming) updates, as the record gives them."""
        if self._updates is None:
            self._updates = self._make(self._raw)
        return self._updates


class BatchMerge(ABC):
    """One call of `Transaction.apply_many`: resolve, merge in memory, then write the changes.

    The merge is the same on every backend; a subclass does the I/O (`_lookup`, `_load`,
    `_allocate_pid`, `_flush`), each called once or a few times per batch.
    """

    def __init__(self, next_seq: Callable[[], int], now: int) -> None:
        self._next_seq = next_seq
        self._now = now
        self._pid_of_id: dict[str, int] = {}
        self._index: dict[tuple[str, LookupKey | None], set[int]] = {}
        self._indexed_names: set[str] = set()
        self._states: dict[int, _State] = {}
        self._next_pid: int | None = None
        self._indexed: set[str] = set()
        self._names_ok: set[str] = set()  # property names found free of NUL characters

    def run(self, writes: Sequence[WriteLike]) -> list[WriteResult]:
        """Apply `writes` in order and write every change; returns one result per write."""
        keyed = self._prefetch(writes)
        apply = self._apply
        results = [apply(write, groups) for write, groups in zip(writes, keyed, strict=True)]
        self._flush()
        return results

    # -- reading ---------------------------------------------------------------------------

    def _prefetch(self, writes: Sequence[WriteLike]) -> list[_Keyed]:
        """Look up every identifier and load the profiles involved; returns each write's
        identifier groups as lookup keys (worked out once, used again by `_match`)."""
        ids: set[str] = set()
        wanted: dict[str, set[LookupKey]] = {}
        keyed: list[_Keyed] = []
        for write in writes:
            if write.profile_id is not None:
                ids.add(write.profile_id)
                keyed.append(())
                continue
            write_groups = []
            for group in write.match:
                pairs = []
                for name, value in group:
                    if type(value) is str and value and "\x00" not in value:
                        key: LookupKey | None = (True, value)  # the common case, made short
                    else:
                        key = identifier_key(value)
                    if key is not None:
                        wanted.setdefault(name, set()).add(key)
                    pairs.append((name, key))
                write_groups.append(tuple(pairs))
            keyed.append(tuple(write_groups))
        if ids:
            self._load("id", ids)
        self._lookup(wanted)
        self._indexed_names = set(wanted)
        # Load the profiles the writes will most likely touch; a write whose target moves
        # because of an earlier write in the batch loads its profile on its own.
        pids: set[int] = set()
        states = self._states
        for groups in keyed:
            if groups:
                pid, _ = self._match(groups)
                if pid is not None and pid not in states:
                    pids.add(pid)
        if pids:
            self._load("pid", pids)
        return keyed

    def _match(self, groups: _Keyed) -> tuple[int | None, bool]:
        """(the oldest profile satisfying the first satisfiable group, whether it had company)."""
        index = self._index
        for group in groups:
            candidates: set[int] | None = None
            for name_key in group:
                found = index.get(name_key) if name_key[1] is not None else None
                if not found:
                    candidates = None
                    break
                candidates = found if candidates is None else candidates & found
                if not candidates:
                    break
            if candidates:
                return min(candidates), len(candidates) > 1
        return None, False

    def _resolve(self, write: WriteLike, groups: _Keyed) -> tuple[_State | None, bool]:
        pid: int | None = None
        ambiguous = False
        if write.profile_id is not None:
            pid = self._pid_of_id.get(write.profile_id)
        elif groups:
            pid, ambiguous = self._match(groups)
        if pid is None:
            return None, False
        if pid not in self._states:
            self._load("pid", {pid})
        state = self._states[pid]
        if state.props is _UNLOADED:
            _decode(state)
        return state, ambiguous

    # -- merging ---------------------------------------------------------------------------

    def _apply(self, write: WriteLike, groups: _Keyed) -> WriteResult:
        state, ambiguous = self._resolve(write, groups)
        if state is None:
            if not write.create:
                return WriteResult("skipped", None)
            if type(write) is PreparedWrite:
                return self._create_prepared(write)
            fast = self._create(write)
            if fast is not None:
                return fast
            state = _State(None, write.profile_id or new_profile_id(), {}, _DEFAULT_RANK, [], 0,
                           is_new=True)
        props = state.props
        changes: dict[str, list[Scalar]] = {}
        errors: list[MergeError] = []
        names_ok = self._names_ok
        for name, strategy, incoming in write.updates:
            if name not in names_ok:
                if "\x00" in name:
                    errors.append(MergeError(f"the property name {name!r} contains a NUL "
                                             "character, which cannot be stored"))
                    continue
                names_ok.add(name)
            current = changes[name] if name in changes else props.get(name, _NO_VALUES)
            if type(incoming) is str and incoming and "\x00" not in incoming:
                # The commonest writes, `set` (or an identifier's `set_if_empty`) to one text
                # value, without the general merge.
                if strategy == "set":
                    same = len(current) == 1 and current[0] == incoming and type(current[0]) is str
                    changes[name] = current if same else [incoming]
                    continue
                if strategy == "set_if_empty":
                    changes[name] = current if current else [incoming]
                    continue
            elif not current and strategy in _INTO_EMPTY:
                # Into an empty property these strategies all give the incoming values.
                try:
                    changes[name] = normalize(incoming)
                except MergeError as exc:
                    errors.append(MergeError(f'property "{name}": {exc} (strategy {strategy})',
                                             value=exc.value, strategy=strategy))
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
        if created:
            # A new profile starts with no values: nothing to remember or to take out.
            state.original = {}
            for name in self._indexed_names.intersection(changed):
                self._reindex(state.pid, name, _NO_VALUES, changes[name])
            for name in changed:
                props[name] = changes[name]
        elif changed:
            state.json = None  # a prepared new profile changed by a later write in the batch
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

    def _create(self, write: WriteLike) -> WriteResult | None:
        """A new profile from updates that all merge into no values as their normalized
        incoming values (the common "new profile, all `set`" case), without the general merge;
        None when some update needs it (the caller then merges as usual)."""
        props = prepared_props(write.updates, self._names_ok)
        if props is None:
            return None
        # A name repeated after an update that gave it values takes the general path; after
        # empty ones, merging into no values again gives what the general path gives.
        level = _DEFAULT_RANK
        if write.permission_level is not None:
            level = permission_rank(write.permission_level)
        interactions: list[str] = []
        if write.interactions_viewed:
            interactions = list(dict.fromkeys(write.interactions_viewed))
        pid = self._allocate_pid()
        state = _State(pid, write.profile_id or new_profile_id(), props, level, interactions, 0,
                       is_new=True)
        state.original = {}
        self._states[pid] = state
        self._pid_of_id[state.id] = pid
        indexed = self._indexed_names
        if indexed:
            for name in indexed.intersection(props):
                self._reindex(pid, name, _NO_VALUES, props[name])
        state.seq = seq = self._next_seq()
        return WriteResult("created", state.id, (), False, seq)

    def _create_prepared(self, write: PreparedWrite) -> WriteResult:
        """A new profile with the properties the write worked out beforehand."""
        level = _DEFAULT_RANK
        if write.permission_level is not None:
            level = permission_rank(write.permission_level)
        interactions: list[str] = []
        if write.interactions_viewed:
            interactions = list(dict.fromkeys(write.interactions_viewed))
        pid = self._allocate_pid()
        # The properties stay JSON (decoded only if a later write or the index needs them).
        state = _State(pid, write.profile_id or write.new_id, _UNLOADED, level, interactions, 0,
                       is_new=True)
        state.original = {}
        state.json = write.props_json
        state.prepared = write
        self._states[pid] = state
        self._pid_of_id[state.id] = pid
        indexed = self._indexed_names
        if indexed and not indexed.isdisjoint(write.names):
            for name in indexed.intersection(write.names):
                self._reindex(pid, name, _NO_VALUES, _values(state, name))
        state.seq = seq = self._next_seq()
        return WriteResult("created", state.id, (), False, seq)

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

    @abstractmethod
    def _lookup(self, wanted: dict[str, set[LookupKey]]) -> None:
        """Fill `_index` with the pids holding each wanted identifier value."""

    @abstractmethod
    def _load(self, column: str, keys: set[str] | set[int]) -> None:
        """Load the profiles whose `column` ("id" or "pid") is one of `keys` into `_states`."""

    @abstractmethod
    def _allocate_pid(self) -> int:
        """A pid for a new profile, above every pid allocated before."""

    @abstractmethod
    def _flush(self) -> None:
        """Write every changed profile."""


class Batch(BatchMerge):
    """`BatchMerge` on a SQLite connection, inside its `BEGIN IMMEDIATE` transaction."""

    def __init__(self, conn: sqlite3.Connection, next_seq: Callable[[], int], now: int) -> None:
        super().__init__(next_seq, now)
        self._conn = conn

    def _lookup(self, wanted: dict[str, set[LookupKey]]) -> None:
        # Identifier properties are indexed (on first use) before they are looked up.
        self._indexed = indexed_names(self._conn)
        if not wanted.keys() <= self._indexed:
            self._indexed.update(add_to_index(self._conn, wanted))
        for name, keys in wanted.items():
            found = lookup(self._conn, name, keys)
            for key in keys:
                self._index[(name, key)] = set(found.get(key, ()))

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
        indexed = self._indexed
        created: list[tuple[object, ...]] = []
        updated: list[tuple[object, ...]] = []
        removed: list[tuple[str, Scalar, int]] = []
        added: list[tuple[str, Scalar, int, int | float | None]] = []
        holders: dict[str, int] = {}  # name -> change in the number of profiles holding it
        new_holders: Counter[str] = Counter()  # the same for new profiles
        for state in touched:
            pid = state.pid
            assert pid is not None and state.original is not None
            props = state.props
            props_json = state.json or dumps(props, option=sort_keys).decode()
            interactions = "[]" if not state.interactions else dumps(state.interactions).decode()
            if state.is_new:
                created.append((pid, state.id, props_json, state.level, interactions, now, now,
                                state.seq))
                if props is _UNLOADED:
                    assert state.prepared is not None
                    names: Iterable[str] = state.prepared.names
                    new_holders.update(names)
                    for name in indexed.intersection(names):
                        added.extend(index_rows(name, _values(state, name), pid))
                    continue
                new_holders.update(iter(props))  # iter: counted in C, not item by item
                for name in indexed.intersection(props):
                    added.extend(index_rows(name, props[name], pid))
                continue
            updated.append((props_json, state.level, interactions, now, state.seq, pid))
            for name, old in state.original.items():
                new = props.get(name, _NO_VALUES)
                if bool(old) != bool(new):
                    holders[name] = holders.get(name, 0) + (1 if new else -1)
                if name not in indexed:
                    continue
                # Exact identity (type and value): a 1 that becomes 1.0 is rewritten.
                old_keys = {(type(v), v) for v in old}
                new_keys = {(type(v), v) for v in new}
                removed.extend((name, v, pid) for v in old if (type(v), v) not in new_keys)
                added.extend(index_rows(name, [v for v in new if (type(v), v) not in old_keys],
                                        pid))
        conn = self._conn
        if created:
            conn.executemany(
                "INSERT INTO profile (pid, id, properties, permission_level, interactions_viewed,"
                " created_at, updated_at, created_us, updated_us, seq)"
                " VALUES (?, ?, ?, ?, ?, '', '', ?, ?, ?)",
                created,
            )
        if updated:
            conn.executemany(
                "UPDATE profile SET properties = ?, permission_level = ?,"
                " interactions_viewed = ?, updated_at = '', updated_us = ?, seq = ? WHERE pid = ?",
                updated,
            )
        if removed:
            conn.executemany("DELETE FROM prop WHERE name = ? AND value = ? AND pid = ?", removed)
        if added:
            conn.executemany("INSERT INTO prop (name, value, pid, num) VALUES (?, ?, ?, ?)",
                             added)
        for name, amount in new_holders.items():
            holders[name] = holders.get(name, 0) + amount
        counts = [(name, amount) for name, amount in holders.items() if amount]
        if counts:
            conn.executemany(
                "INSERT INTO prop_name (name, profiles) VALUES (?, ?) ON CONFLICT (name)"
                " DO UPDATE SET profiles = profiles + excluded.profiles",
                counts,
            )


def prepared_props(
    updates: Sequence[tuple[str, str, object]], names_ok: Container[str] | None = None
) -> dict[str, list[Scalar]] | None:
    """What `updates` give a new profile (its properties, names in order of the updates) when
    every one merges into no values as its normalized incoming values (`set`, `add`,
    `set_if_empty`, `clear`) and none fails; None otherwise (the general merge decides).

    `names_ok`: property names known to be valid (any other takes the general path); without
    it, each name is checked for a NUL character."""
    props: dict[str, list[Scalar]] = {}
    for name, strategy, incoming in updates:
        if name in props or strategy not in _INTO_EMPTY:
            return None
        if name not in names_ok if names_ok is not None else "\x00" in name:
            return None
        if type(incoming) is str:
            if not incoming:
                continue
            if "\x00" in incoming:
                return None
            props[name] = [incoming]
            continue
        try:
            values = normalize(incoming)
        except MergeError:
            return None
        if values:
            props[name] = values
    return props


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off Python's cycle collector while a batch runs.

    A batch allocates many small objects and frees them all at its end (no cycles), and each
    collection the allocations would trigger walks every live object: that cost grows with the
    batch and can be most of a merge's time. Any cyclic garbage is collected after the batch.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def new_profile_id() -> str:
    """A new profile id: a UUID whose first 48 bits are the time in milliseconds (version 7).

    Random otherwise, but time-ordered, so a new profile's id lands at the end of the id index
    rather than on a random page: a large load changes far fewer pages.
    """
    global _random, _random_at
    if _random_at + 10 > len(_random):  # one getrandom call per 6,553 ids, not one per id
        _random, _random_at = os.urandom(65536), 0
    chunk = _random[_random_at:_random_at + 10]
    _random_at += 10
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(chunk, "big")
    value = value & ~(0xF << 76) | 7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    h = f"{value:032x}"  # what str(uuid.UUID(int=value)) gives, for a fraction of its cost
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _forget_random() -> None:
    global _random, _random_at
    _random, _random_at = b"", 0


_random = b""
_random_at = 0
# A forked child must never hand out the ids its parent's buffer would give.
os.register_at_fork(after_in_child=_forget_random)
