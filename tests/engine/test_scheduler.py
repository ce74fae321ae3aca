"""The scheduler's due-slot logic with a fixed clock (first seen, never twice, made up once after
downtime, switched off, busy, schedule edits), its heartbeat, and its config reload."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from bctui.engine.config import parse_config
from bctui.engine.models import Config, Schedule
from bctui.engine.paths import Paths
from bctui.engine.runs import state as st
from bctui.engine.scheduler import (
    Decision,
    Scheduler,
    SchedulerLog,
    SchedulerStatus,
    claim_due,
    clock_from_env,
    heartbeat_path,
    newest_slot,
    record_tick,
    scheduler_status,
    slot_records,
)
from bctui.store import ProfileStore

HOURLY = 'schedule = { kind = "times_per_day", times = 24, timezone = "UTC" }'
T0 = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)


def config(*connections: tuple[str, str, bool]) -> Config:
    """A config of connections (name, schedule line, enabled) with no goals."""
    text = "".join(
        f'[[connection]]\nname = "{name}"\nenabled = {str(on).lower()}\n{schedule}\n'
        f'[connection.braze]\nendpoint = "https://rest.iad-01.braze.com"\n'
        f'api_key = "env:KEY"\n'
        for name, schedule, on in connections
    )
    return parse_config(text)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProfileStore]:
    with ProfileStore(tmp_path / "profiles.db") as opened:
        st.migrate(opened)
        yield opened


def at(hours: float) -> datetime:
    """T0 plus some hours."""
    return T0 + timedelta(hours=hours)


def actions(decisions: list[Decision]) -> list[tuple[str, str, datetime | None]]:
    return [(d.connection, d.action, d.slot) for d in decisions]


def test_a_new_connection_waits_for_its_next_slot_and_no_slot_runs_twice(
    store: ProfileStore,
) -> None:
    cfg = config(("c", HOURLY, True))

    assert actions(claim_due(store, cfg, T0)) == [("c", "first_seen", None)]
    assert slot_records(store)["c"].slot == T0.timestamp()  # "seen at" is the starting point
    assert claim_due(store, cfg, at(0.5)) == []  # 10:50: the 10:00 slot predates it
    eleven = T0.replace(hour=11, minute=0)
    assert actions(claim_due(store, cfg, eleven)) == [("c", "start", eleven)]
    assert claim_due(store, cfg, eleven) == []
    assert claim_due(store, cfg, eleven + timedelta(minutes=59)) == []
    assert actions(claim_due(store, cfg, eleven + timedelta(hours=1))) == [
        ("c", "start", eleven + timedelta(hours=1))
    ]


def test_slots_missed_while_down_are_made_up_once_with_the_newest(store: ProfileStore) -> None:
    cfg = config(("c", HOURLY, True))
    claim_due(store, cfg, T0)
    claim_due(store, cfg, T0.replace(hour=11, minute=0))

    # Down from 11:00 to 15:30: four slots (12:00 … 15:00) missed, one run made up.
    decisions = claim_due(store, cfg, at(5.2))

    assert actions(decisions) == [("c", "start", T0.replace(hour=15, minute=0))]
    assert claim_due(store, cfg, at(5.3)) == []


def test_a_second_scheduler_on_the_same_store_never_starts_the_slot_again(
    tmp_path: Path, store: ProfileStore
) -> None:
    cfg = config(("c", HOURLY, True))
    claim_due(store, cfg, T0)
    with ProfileStore(tmp_path / "profiles.db") as other:  # a `bctui tick` beside the daemon
        first = claim_due(store, cfg, at(1))
        second = claim_due(other, cfg, at(1))
    assert [d.action for d in first] == ["start"]
    assert second == []


def test_a_connection_added_later_does_not_run_for_the_past(store: ProfileStore) -> None:
    claim_due(store, config(("a", HOURLY, True)), T0)
    both = config(("a", HOURLY, True), ("b", HOURLY, True))

    decisions = claim_due(store, both, at(3))

    assert actions(decisions) == [
        ("a", "start", T0.replace(hour=13, minute=0)),
        ("b", "first_seen", None),
    ]


def test_switched_off_slots_are_handled_without_a_run(store: ProfileStore) -> None:
    claim_due(store, config(("c", HOURLY, True)), T0)
    off = config(("c", HOURLY, False))

    assert actions(claim_due(store, off, at(1))) == [("c", "off", T0.replace(hour=11, minute=0))]
    # Switched on again at 11:30: the 11:00 slot it missed while off does not start.
    assert claim_due(store, config(("c", HOURLY, True)), at(1.2)) == []
    assert [d.action for d in claim_due(store, config(("c", HOURLY, True)), at(1.7))] == ["start"]


def test_a_due_slot_while_a_run_goes_is_skipped_and_handled(store: ProfileStore) -> None:
    cfg = config(("c", HOURLY, True), ("d", HOURLY, True))
    claim_due(store, cfg, T0)

    decisions = claim_due(store, cfg, at(1), busy={"c"})

    assert [(d.connection, d.action) for d in decisions] == [("c", "busy"), ("d", "start")]
    assert claim_due(store, cfg, at(1.1)) == []


def test_an_edited_schedule_starts_afresh(store: ProfileStore) -> None:
    claim_due(store, config(("c", HOURLY, True)), T0)
    daily = 'schedule = { kind = "days_of_week", days = ["mon"], at = "09:00", timezone = "UTC" }'

    # T0 is a Monday 10:20: today's 09:00 slot predates the new schedule.
    assert actions(claim_due(store, config(("c", daily, True)), at(1))) == [
        ("c", "rescheduled", None)
    ]
    assert claim_due(store, config(("c", daily, True)), at(2)) == []
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    assert actions(claim_due(store, config(("c", daily, True)), monday)) == [("c", "start", monday)]


def test_manual_connections_never_come_due(store: ProfileStore) -> None:
    cfg = config(("m", 'schedule = { kind = "manual" }', True))
    claim_due(store, cfg, T0)
    assert claim_due(store, cfg, at(24 * 40)) == []


def test_the_newest_missed_slot_is_found_quickly_after_a_long_downtime() -> None:
    every_minute = Schedule(kind="cron", expr="* * * * *", timezone="UTC")
    started = time.monotonic()
    found = newest_slot(every_minute, T0, T0 + timedelta(days=30, seconds=30))
    assert found == T0 + timedelta(days=30)
    assert time.monotonic() - started < 2
    monthly = Schedule(kind="day_of_month", day=31, at="01:00", timezone="UTC")
    # Down from January to mid-May: the last slot before now is April's last day.
    found = newest_slot(
        monthly, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 5, 15, tzinfo=UTC)
    )
    assert found == datetime(2026, 4, 30, 1, 0, tzinfo=UTC)
    assert newest_slot(monthly, T0, T0) is None


# -- heartbeat -----------------------------------------------------------------------------


def write_heartbeat(paths: Paths, **fields: object) -> None:
    paths.ensure_state_dir()
    beat = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": 1.0, "beat_at": 2.0}
    heartbeat_path(paths).write_bytes(orjson.dumps({**beat, **fields}))


def test_the_heartbeat_says_whether_a_scheduler_runs(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "connections.toml", tmp_path / "state")
    assert scheduler_status(paths) is None
    now = time.time()

    write_heartbeat(paths, started_at=now - 100, beat_at=now - 3)
    status = scheduler_status(paths)
    assert status is not None and status.pid == os.getpid()
    assert status.describe().startswith(f"scheduler running on {socket.gethostname()} since ")

    write_heartbeat(paths, beat_at=now - 31)  # stale: its scheduler stopped beating
    assert scheduler_status(paths) is None
    dead = 2**22 + 12345
    write_heartbeat(paths, pid=dead, beat_at=now)  # this host, and no such process
    assert scheduler_status(paths) is None
    write_heartbeat(paths, host="elsewhere.example", pid=dead, beat_at=now)
    assert scheduler_status(paths) == SchedulerStatus("elsewhere.example", dead, 1.0, now)
    heartbeat_path(paths).write_text("{not json")
    assert scheduler_status(paths) is None


def test_the_fake_clock_file_moves_only_when_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now_file = tmp_path / "now"
    now_file.write_text(str(T0.timestamp()))
    monkeypatch.setenv("BCTUI_FAKE_NOW_FILE", str(now_file))
    clock = clock_from_env()
    assert clock() == T0
    now_file.write_text(str(at(2).timestamp()))
    assert clock() == at(2)


# -- config reload ---------------------------------------------------------------------------


def test_an_invalid_edit_is_logged_and_the_last_valid_config_kept(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "connections.toml", tmp_path / "state")
    paths.ensure_state_dir()
    good = (
        '[[connection]]\nname = "c"\nenabled = true\n'
        '[connection.braze]\nendpoint = "https://rest.iad-01.braze.com"\napi_key = "env:K"\n'
    )
    paths.config.write_text(good)
    stream = io.StringIO()
    scheduler = Scheduler(paths, SchedulerLog(paths, stream))

    first = scheduler.reload()
    assert first is not None and [c.name for c in first.connections] == ["c"]
    paths.config.write_text(good.replace("enabled = true", "enabled = maybe"))
    assert scheduler.reload() is first
    assert "keeping the last valid config" in stream.getvalue()
    assert scheduler.reload() is first  # unchanged since: no second report
    assert stream.getvalue().count("keeping the last valid config") == 1

    paths.config.write_text(good.replace('name = "c"', 'name = "renamed"'))
    os.utime(paths.config, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    reloaded = scheduler.reload()
    assert reloaded is not None and [c.name for c in reloaded.connections] == ["renamed"]
    log = (paths.state_dir / "scheduler.log").read_text()
    assert "reloaded" in log and "error" in log
    assert log.splitlines()[0][:4].isdigit()  # plain lines that start with a timestamp


def test_a_recent_tick_from_cron_counts_as_keeping_the_schedules(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "connections.toml", tmp_path)
    assert scheduler_status(paths) is None
    record_tick(paths)
    status = scheduler_status(paths)
    assert status is not None and status.kind == "tick"
    assert "`bctui tick` last ran on" in status.describe()
    assert scheduler_status(paths, now=time.time() + 600) is None
