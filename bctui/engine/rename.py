"""Renaming a connection or a goal without losing its history.

Run history, watermarks, import jobs, applied files and what exports sent are keyed by the
connection's name and by `state.goal_key(connection, goal)`; a rename moves all of them in one
transaction, while holding the connection's run lock so no run starts halfway. The caller renames
the connection or goal in connections.toml; a copy of a connection needs nothing here (it starts
with no history).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from bctui.engine.paths import Paths
from bctui.engine.runs import state as st
from bctui.engine.runs.history import live_holder
from bctui.engine.runs.lock import Lock, LockedError, run_lock, slug
from bctui.errors import BctuiError
from bctui.store import Store


def history_blocker(paths: Paths, store: Store, connection: str) -> str:
    """'' when the connection's history can be renamed now, else why not (and what to do)."""
    st.migrate(store)
    reason = _blocker(paths, store, connection)
    return f"{reason[0]}; {reason[1]}" if reason else ""


def rename_connection(paths: Paths, store: Store, old: str, new: str) -> None:
    """Move connection `old`'s history (runs, every goal's records) to the name `new`."""
    st.migrate(store)
    if old == new:
        return
    case_only = old.casefold() == new.casefold()
    with _held(paths, store, old, new):
        _refuse_if_blocked(paths, store, old)
        if not case_only and st.connection_has_history(store, new):
            raise BctuiError(
                f'cannot rename connection "{old}" to "{new}": "{new}" already has run history',
                fix="choose a name no connection has used before",
            )
        with store.transaction() as tx:
            st.rename_connection_rows(tx, store, old, new)


def rename_goal(paths: Paths, store: Store, connection: str, old: str, new: str) -> None:
    """Move goal `old` of a connection (watermark, sent values, import job, run rows) to `new`."""
    st.migrate(store)
    if old == new:
        return
    with _held(paths, store, connection):
        _refuse_if_blocked(paths, store, connection)
        if old.casefold() != new.casefold() and st.goal_has_history(store, connection, new):
            raise BctuiError(
                f'cannot rename goal "{old}" of connection "{connection}" to "{new}": '
                f'a goal "{new}" of it already has history',
                fix="choose a goal name the connection has not used before",
            )
        with store.transaction() as tx:
            st.rename_goal_rows(tx, store, connection, old, new)


def _blocker(paths: Paths, store: Store, connection: str) -> tuple[str, str] | None:
    """(why, fix) when a rename of the connection's history must wait."""
    holder = live_holder(paths, connection, store)
    if holder is not None and holder.run_id:
        return (
            f'connection "{connection}" is running (run {holder.run_id}, PID {holder.pid})',
            f"wait for it to finish, or cancel it with `kill {holder.pid}`",
        )
    for name in st.recorded_names(store, connection) or [connection]:
        if st.interrupted_run(store, name) is not None:
            return (
                f'connection "{connection}" has an interrupted run',
                f'finish it first with `bctui run "{connection}"`',
            )
    return None


def _refuse_if_blocked(paths: Paths, store: Store, connection: str) -> None:
    reason = _blocker(paths, store, connection)
    if reason is not None:
        raise BctuiError(f"cannot rename now: {reason[0]}", fix=reason[1])


@contextlib.contextmanager
def _held(paths: Paths, store: Store, *connections: str) -> Iterator[None]:
    """Hold the run locks of these connection names, so no run starts during the rename."""
    locks: list[Lock] = []
    seen: set[str] = set()
    try:
        for name in connections:
            if slug(name) in seen:
                continue  # a change of case: one lock file
            seen.add(slug(name))
            lock = run_lock(paths.locks_dir, name, store)
            try:
                lock.acquire("")  # "": not a run; a run refused now says a rename holds it
            except LockedError as exc:
                raise BctuiError(f"cannot rename now: {exc.message}", fix=exc.fix) from None
            locks.append(lock)
        yield
    finally:
        for lock in reversed(locks):
            lock.release()
