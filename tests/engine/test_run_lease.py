"""The run lease of a PostgreSQL store: one holder across hosts, named when refused; renewed by
its heartbeat; taken over once expired, or at once when its process on this host is gone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from run_helpers import wait_for

from bctui.engine.runs import shared
from bctui.engine.runs.history import holder_alive
from bctui.engine.runs.lock import LockedError
from bctui.engine.runs.shared import LeaseLock, SharedDb


@pytest.fixture
def db(pg_url: str) -> Iterator[SharedDb]:
    """A database with the shared tables, reached as the runs reach it."""
    found = SharedDb(pg_url)
    for statement in shared.SHARED_MIGRATIONS[0]:
        found.rows(statement)
    yield found
    found.close()


def test_a_second_host_is_refused_naming_host_pid_and_run(
    db: SharedDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(shared.HOST_ENV, "host-a")
    first = LeaseLock(db, "Braze main", lease=5)
    first.acquire("run-1")
    try:
        monkeypatch.setenv(shared.HOST_ENV, "host-b")
        with pytest.raises(LockedError) as refused:
            LeaseLock(db.clone(), "braze MAIN", lease=5).acquire("run-2")
        assert refused.value.exit_code == 5
        assert f"host host-a, PID {os.getpid()}, run run-1" in refused.value.render()
        holder = LeaseLock(db, "Braze main").holder()
        assert holder is not None and (holder.host, holder.run_id) == ("host-a", "run-1")
        assert holder_alive(holder)  # another host's unexpired lease is live
    finally:
        first.release()
    assert LeaseLock(db, "Braze main").holder() is None


def test_the_heartbeat_keeps_a_lease_past_its_duration(
    db: SharedDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(shared.HOST_ENV, "host-a")
    lock = LeaseLock(db, "c", lease=1.0)
    lock.acquire("run-1")
    try:
        start = time.monotonic()
        while time.monotonic() - start < 2.5:  # over twice the lease: only renewals keep it
            monkeypatch.setenv(shared.HOST_ENV, "host-b")
            with pytest.raises(LockedError):
                LeaseLock(db, "c", lease=1.0).acquire("run-2")
            time.sleep(0.2)
        assert not lock.lost
    finally:
        lock.release()


def test_an_expired_lease_is_taken_over_and_its_old_holder_told(
    db: SharedDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(shared.HOST_ENV, "host-a")
    lost: list[bool] = []
    first = LeaseLock(db, "c", lease=0.8, on_lost=lambda: lost.append(True))
    first.acquire("run-1")
    first._stop.set()  # the heartbeat stops, as when host-a's network goes
    assert first._beat is not None
    first._beat.join()
    monkeypatch.setenv(shared.HOST_ENV, "host-b")
    second = LeaseLock(db, "c", lease=5)
    wait_for(lambda: _took(second, "run-2"), timeout=5, what="the expired lease taken over")
    try:
        assert second.stale is not None and second.stale.run_id == "run-1"
        holder = second.holder()
        assert holder is not None and (holder.host, holder.run_id) == ("host-b", "run-2")
        # host-a's heartbeat comes back: the lease is no longer its own, so its run must stop.
        first._stop.clear()
        first._heartbeat(db.clone(), first._token or "")
        assert lost == [True] and first.lost
    finally:
        second.release()


def test_a_dead_process_of_this_host_is_taken_over_at_once(
    db: SharedDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(shared.HOST_ENV, "host-a")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    db.rows(
        "INSERT INTO run_lease VALUES ('c', 'c', 'host-a', %s, 'gone', 1, "
        "extract(epoch from clock_timestamp()) + 600, 'tok')",
        (pid,),
    )
    lock = LeaseLock(db, "c", lease=5)
    lock.acquire("run-2")
    try:
        assert lock.stale is not None and (lock.stale.pid, lock.stale.run_id) == (pid, "gone")
    finally:
        lock.release()


def test_acquire_as_names_the_resumed_run(db: SharedDb) -> None:
    lock = LeaseLock(db, "c", lease=5)
    lock.acquire("asked")
    try:
        lock.acquire_as("resumed")
        holder = LeaseLock(db, "c").holder()
        assert holder is not None and holder.run_id == "resumed"
    finally:
        lock.release()


def test_events_reach_the_database_in_order_and_are_followed(db: SharedDb) -> None:
    from bctui.engine.runs.events import LogLine, RunFinished

    sink = shared.EventSink(db, "r1")
    for i in range(1200):
        sink.add(LogLine(level="info", message=f"line {i}").to_json())
    followed = shared.follow_db_events(db, "r1", poll=0.05)
    seen = [next(followed) for _ in range(1200)]
    assert [e.message for e in seen] == [f"line {i}" for i in range(1200)]  # type: ignore[attr-defined]
    sink.add(RunFinished(run_id="r1", state="FINISHED").to_json())
    sink.close()
    assert isinstance(next(followed), RunFinished)
    # A resumed run appends after the lines already there.
    again = shared.EventSink(db, "r1")
    again.add(LogLine(level="info", message="resumed").to_json())
    again.close()
    lines = shared.db_lines(db, "r1")
    assert len(lines) == 1202 and "resumed" in lines[-1]


def _took(lock: LeaseLock, run_id: str) -> bool:
    try:
        lock.acquire(run_id)
    except LockedError:
        return False
    return True


def test_status_and_cancel_of_a_run_on_another_host(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bctui.engine.paths import Paths
    from bctui.engine.runs import history
    from bctui.engine.runs import state as st
    from bctui.errors import BctuiError
    from bctui.store import open_store

    paths = Paths(tmp_path / "connections.toml", tmp_path / "state")
    with open_store(pg_url, paths.state_dir) as store:
        st.migrate(store)
        record = st.RunRecord("20260101-000000-abcdef", "c", time.time(), st.RUNNING)
        with store.transaction() as tx:
            st.insert_run(tx, record, [("g", "export")])
        monkeypatch.setenv(shared.HOST_ENV, "host-a")
        lock = history.shared.LeaseLock(history.shared.shared_db(store), "c", lease=5)
        lock.acquire(record.id)
        try:
            monkeypatch.setenv(shared.HOST_ENV, "host-b")
            assert history.run_status(paths, record, store) == history.RunStatus.RUNNING
            assert set(history.running(paths, ["c", "d"], store)) == {"c"}
            with pytest.raises(BctuiError, match="runs on host host-a") as refused:
                history.cancel_run(paths, "c", store=store)
            assert "on host-a" in refused.value.render()
        finally:
            lock.release()
        assert history.run_status(paths, record, store) == history.RunStatus.INTERRUPTED


def test_a_store_no_run_has_used_has_no_holder_and_no_events(pg_url: str) -> None:
    fresh = SharedDb(pg_url)
    try:
        assert LeaseLock(fresh, "c").holder() is None
        assert not shared.has_events(fresh, "r1")
    finally:
        fresh.close()
