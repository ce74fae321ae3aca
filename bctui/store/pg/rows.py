"""`bctui.store.rows.row_pages` on PostgreSQL: one snapshot, streamed by a server-side cursor."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from bctui.store.model import permission_rank
from bctui.store.pg.sql import placeholders
from bctui.store.pg.store import PgStore
from bctui.store.rows import ROW_COLUMNS, Joined
from bctui.store.segments import SegmentDef


def pg_row_pages(
    store: PgStore,
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
    """Pages of rows as `row_pages` gives them (segment flags as 0/1)."""
    columns = [ROW_COLUMNS]
    params: list[object] = []  # in the statement's order: columns, join, where
    join = ""
    join_params: Sequence[object] = ()
    if joined is not None:
        columns.append(joined.columns)
        join, join_params = joined.sql, joined.params
    for other in segments_of:
        sql, other_params = store.segment_sql(other)
        columns.append(f"({sql})::int")
        params.extend(other_params)
    member, member_params = store.segment_sql(segment)
    where = [member]
    where_params: list[object] = [*member_params]
    if only_ids is not None:
        where.append("p.id = ANY(?::text[])")
        where_params.append(list(only_ids))
        order = "p.id"
    else:
        order = "p.seq"
        where.append("p.seq > ?")
        where_params.append(since_seq)
        if until_seq is not None:
            where.append("p.seq <= ?")
            where_params.append(until_seq)
    if min_permission is not None:
        where.append("p.permission_level >= ?")
        where_params.append(permission_rank(min_permission))
    statement = placeholders(
        f"SELECT {', '.join(columns)} FROM profile p {join} "
        f"WHERE {' AND '.join(where)} ORDER BY {order}"
    )
    with store.snapshot() as reader:
        cursor = reader.cursor(name="bctui_rows")
        cursor.itersize = page
        cursor.execute(statement, (*params, *join_params, *where_params))
        while rows := cursor.fetchmany(page):
            yield rows
