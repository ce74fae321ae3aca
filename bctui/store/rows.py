"""Profiles as raw rows, a page at a time, for the export's hot loop.

`ProfileStore.iter_profiles` builds a `Profile` per row (two JSON decodes, two timestamps): right
for callers that want whole profiles, too slow for an export planning a million. Here each row is
the stored columns as SQLite returns them, plus columns of a table the caller joins on the
profile id (the export's "last sent" record), plus one 0/1 flag per segment asked about; the
caller decodes only what it needs.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bctui.store.base import Store
from bctui.store.model import permission_rank
from bctui.store.queries import few_changes, json_array
from bctui.store.schema import connect
from bctui.store.segments import SegmentDef, register_functions, segment_sql
from bctui.store.store import ProfileStore

ROW_COLUMNS: Final = "p.id, p.properties, p.permission_level, p.interactions_viewed, p.seq"
"""What each row starts with: id, properties JSON, permission rank (0-2), viewed JSON, seq."""
ROW_WIDTH: Final = 5

READER_CACHE_KIB: Final = 16 * 1024



@dataclass(frozen=True)
class Joined:
    """Columns of another table joined to each profile row: `sql` is the JOIN clause (using
    alias `p` for the profile), `columns` what it adds, `params` the clause's parameters."""

    sql: str
    columns: str
    params: Sequence[object] = ()


def row_pages(
    store: Store,
    *,
    segment: SegmentDef,
    since_seq: int = 0,
    until_seq: int | None = None,
    only_ids: Sequence[str] | None = None,
    segments_of: Sequence[SegmentDef] = (),
    min_permission: str | None = None,
    joined: Joined | None = None,
    page: int = 1000,
) -> Generator[list[tuple[Any, ...]], None, None]:
    """Pages of rows for the members of `segment` changed after `since_seq` (and up to
    `until_seq`), in change order; or, with `only_ids`, those profiles (when they are members).

    Each row is `ROW_COLUMNS`, then `joined`'s columns, then one flag per `segments_of`. Reads
    one snapshot on a connection of its own, so the caller may write through `store` meanwhile.
    """
    if page < 1:
        raise ValueError("page must be at least 1")
    if not isinstance(store, ProfileStore):
        from bctui.store.pg.rows import pg_row_pages
        from bctui.store.pg.store import PgStore

        assert isinstance(store, PgStore)
        return pg_row_pages(store, segment=segment, since_seq=since_seq, until_seq=until_seq,
                            only_ids=only_ids, segments_of=segments_of,
                            min_permission=min_permission, joined=joined, page=page)
    return _sqlite_row_pages(store, segment=segment, since_seq=since_seq, until_seq=until_seq,
                             only_ids=only_ids, segments_of=segments_of,
                             min_permission=min_permission, joined=joined, page=page)


def _sqlite_row_pages(
    store: ProfileStore,
    *,
    segment: SegmentDef,
    since_seq: int,
    until_seq: int | None,
    only_ids: Sequence[str] | None,
    segments_of: Sequence[SegmentDef],
    min_permission: str | None,
    joined: Joined | None,
    page: int,
) -> Generator[list[tuple[Any, ...]], None, None]:
    reader = connect(store.path, busy_timeout=60.0)
    try:
        # A scan in sequence order reads each page once: a small cache does, and keeps the
        # export's memory flat beside the writer's larger one.
        reader.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
        register_functions(reader)
        reader.execute("BEGIN")  # one snapshot for the sizing query and the scan
        correlated = only_ids is not None or few_changes(reader, since_seq)
        columns = [ROW_COLUMNS]
        params: list[object] = []  # in the statement's order: columns, join, where
        join = ""
        join_params: Sequence[object] = ()
        if joined is not None:
            columns.append(joined.columns)
            join, join_params = joined.sql, joined.params
        for other in segments_of:
            sql, other_params = segment_sql(other, correlated=correlated)
            columns.append(sql)
            params.extend(other_params)
        member, member_params = segment_sql(segment, correlated=correlated)
        where = [member]
        where_params: list[object] = [*member_params]
        if only_ids is not None:
            where.append("p.id IN (SELECT value FROM json_each(?))")
            where_params.append(json_array(only_ids))
            source, order = "profile p", "p.id"
        else:
            source, order = "profile p INDEXED BY profile_seq", "p.seq"
            where.append("p.seq > ?")
            where_params.append(since_seq)
            if until_seq is not None:
                where.append("p.seq <= ?")
                where_params.append(until_seq)
        if min_permission is not None:
            where.append("p.permission_level >= ?")
            where_params.append(permission_rank(min_permission))
        cursor = reader.execute(
            f"SELECT {', '.join(columns)} FROM {source} {join} "
            f"WHERE {' AND '.join(where)} ORDER BY {order}",
            (*params, *join_params, *where_params),
        )
        while rows := cursor.fetchmany(page):
            yield rows
    finally:
        reader.close()
