"""The batched write path on PostgreSQL: `BatchMerge`'s merge, with PostgreSQL's I/O.

Per batch: one lookup statement per identifier property, one read of the profiles involved,
then COPY for the new profiles, pipelined UPDATEs by primary key for the changed ones, one upsert
of the per-name holder counts (`prop_name`, which lists the names without a profile scan).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
import psycopg

from bctui.store.pg.queries import lookup
from bctui.store.pg.schema import PID_BLOCK
from bctui.store.queries import LookupKey
from bctui.store.writes import _UNLOADED, BatchMerge, _State

_STATE_COLUMNS = "pid, id, properties, permission_level, interactions_viewed, seq"
_COPY = ("COPY profile (pid, id, properties, permission_level, interactions_viewed, created_us,"
         " updated_us, seq) FROM STDIN")
# One statement per changed profile, pipelined: each finds its row by the primary key, where a
# join with unnest(…) may be planned as a scan of the whole table.
_UPDATE = (
    "UPDATE profile SET properties = %s, permission_level = %s, interactions_viewed = %s,"
    " updated_us = %s, seq = %s WHERE pid = %s"
)

_COUNT = (
    "INSERT INTO prop_name (name, profiles) SELECT * FROM unnest(%s::text[], %s::bigint[])"
    " ON CONFLICT (name) DO UPDATE SET profiles = prop_name.profiles + excluded.profiles"
)


class PgBatch(BatchMerge):
    """`BatchMerge` on a PostgreSQL connection, inside a `PgTransaction`."""

    def __init__(self, conn: psycopg.Connection[Any], next_seq: Any, now: int) -> None:
        super().__init__(next_seq, now)
        self._conn = conn
        self._pid_end = 0

    def _lookup(self, wanted: dict[str, set[LookupKey]]) -> None:
        for name, keys in wanted.items():
            found = lookup(self._conn, name, keys)
            for key in keys:
                self._index[(name, key)] = set(found.get(key, ()))

    def _load(self, column: str, keys: set[str] | set[int]) -> None:
        kind = "bigint" if column == "pid" else "text"
        rows = self._conn.execute(
            f"SELECT {_STATE_COLUMNS} FROM profile WHERE {column} = ANY(%s::{kind}[])",
            (list(keys),),
        )
        loads = orjson.loads
        for pid, id_, props, level, interactions, seq in rows:
            self._states[pid] = _State(pid, id_, loads(props), level, loads(interactions), seq,
                                       is_new=False)
            self._pid_of_id[id_] = pid

    def _allocate_pid(self) -> int:
        # The sequence steps by PID_BLOCK: each value starts a block of pids of our own.
        if self._next_pid is None or self._next_pid >= self._pid_end:
            row = self._conn.execute("SELECT nextval('profile_pid')").fetchone()
            assert row is not None
            self._next_pid = int(row[0])
            self._pid_end = self._next_pid + PID_BLOCK
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def _flush(self) -> None:
        touched = [s for s in self._states.values() if s.original is not None]
        if not touched:
            return
        now = self._now
        dumps = orjson.dumps
        sort_keys = orjson.OPT_SORT_KEYS
        created: list[tuple[object, ...]] = []
        holders: Counter[str] = Counter()  # name -> change in the number of profiles holding it
        pids: list[int] = []
        props_list: list[str] = []
        levels: list[int] = []
        interactions_list: list[str] = []
        seqs: list[int] = []
        for state in touched:
            assert state.pid is not None
            props_json = state.json or dumps(state.props, option=sort_keys).decode()
            interactions = "[]" if not state.interactions else dumps(state.interactions).decode()
            if state.is_new:
                created.append((state.pid, state.id, props_json, state.level, interactions,
                                now, now, state.seq))
                if state.props is _UNLOADED:
                    assert state.prepared is not None
                    holders.update(state.prepared.names)
                else:
                    holders.update(iter(state.props))
                continue
            assert state.original is not None
            for name, old in state.original.items():
                if bool(old) != bool(state.props.get(name)):
                    holders[name] += 1 if state.props.get(name) else -1
            pids.append(state.pid)
            props_list.append(props_json)
            levels.append(state.level)
            interactions_list.append(interactions)
            seqs.append(state.seq)
        if created:
            with self._conn.cursor() as cursor, cursor.copy(_COPY) as copy:
                for row in created:
                    copy.write_row(row)
        if pids:
            with self._conn.cursor() as cursor:
                cursor.executemany(_UPDATE, [
                    (pr, lv, it, now, sq, pid) for pr, lv, it, sq, pid in
                    zip(props_list, levels, interactions_list, seqs, pids, strict=True)])
        counts = sorted((name, n) for name, n in holders.items() if n)  # in key order: no deadlock
        if counts:
            self._conn.execute(_COUNT, ([c[0] for c in counts], [c[1] for c in counts]))
