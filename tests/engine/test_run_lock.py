"""The per-connection run lock: one holder, named when refused; stale records taken over; a
holder probe (`bctui watch`, `bctui runs`) never mistaken for a run."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import orjson
import pytest

from bctui.engine.runs.lock import Holder, LockedError, RunLock


def test_a_second_acquire_is_refused_naming_the_holder(tmp_path: Path) -> None:
    first = RunLock(tmp_path, "Braze main")
    first.acquire("run-1")
    try:
        with pytest.raises(LockedError) as refused:
            RunLock(tmp_path, "Braze main").acquire("run-2")
        assert refused.value.exit_code == 5
        assert f"PID {os.getpid()}, run run-1" in refused.value.render()
        holder = RunLock(tmp_path, "Braze main").holder()
        assert holder is not None and (holder.pid, holder.run_id) == (os.getpid(), "run-1")
    finally:
        first.release()
    assert RunLock(tmp_path, "Braze main").holder() is None


def test_a_record_left_by_a_dead_holder_is_stale_and_taken_over(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, "c")
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.write_bytes(orjson.dumps({"pid": 999999, "run_id": "dead", "started_at": 1.0}))

    lock.acquire("alive")
    try:
        assert lock.stale == Holder(999999, "dead", 1.0)
        holder = RunLock(tmp_path, "c").holder()
        assert holder is not None and holder.run_id == "alive"
    finally:
        lock.release()


def test_a_holder_probe_is_waited_out(tmp_path: Path) -> None:
    lock = RunLock(tmp_path, "c")
    lock.acquire("earlier")
    lock.release()
    with open(lock.path, "rb") as probe:
        # What holder() does for an instant; a run starting in that instant must still start.
        fcntl.flock(probe.fileno(), fcntl.LOCK_SH)
        timer = threading.Timer(0.05, fcntl.flock, (probe.fileno(), fcntl.LOCK_UN))
        timer.start()
        try:
            lock.acquire("next")
        finally:
            timer.join()
    try:
        assert lock.stale is None
    finally:
        lock.release()
