"""Retention: runs past `[retention] days` or beyond the newest `runs` of a connection lose their
history rows and log files together; running and interrupted runs are never pruned; the
`[retention]` table is validated; a big export's run log stays small (batch events coalesce)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bctui.engine.config import ConfigError, parse_config
from bctui.engine.config_write import to_toml
from bctui.engine.models import Retention
from bctui.engine.paths import Paths
from bctui.engine.retention import DAY, prunable_runs, prune
from bctui.engine.runs import state as st
from bctui.engine.runs.events import BatchSent, EventLog, GoalFinished, read_events
from bctui.engine.runs.launch import stderr_path
from bctui.engine.runs.runner import log_path
from bctui.store import ProfileStore

NOW = 1_800_000_000.0


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path / "connections.toml", tmp_path / "state")
    paths.runs_dir.mkdir(parents=True)
    return paths


@pytest.fixture
def store(paths: Paths) -> Iterator[ProfileStore]:
    with ProfileStore(paths.state_dir / "profiles.db") as opened:
        st.migrate(opened)
        yield opened


def add_run(
    paths: Paths, store: ProfileStore, connection: str, days_ago: float, state: str = st.FINISHED
) -> str:
    """A run of `connection` that started `days_ago` days before NOW, with a log and stderr."""
    started = NOW - days_ago * DAY
    run_id = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)) + f"-{os.urandom(3).hex()}"
    record = st.RunRecord(run_id, connection, started, st.RUNNING)
    with store.transaction() as tx:
        st.insert_run(tx, record, [("g", "export")])
        if state != st.RUNNING:
            st.finish_run(tx, run_id, state, "", {})
    log_path(paths, run_id).write_text('{"type": "log"}\n')
    stderr_path(paths, run_id).write_text("")
    return run_id


def run_ids(store: ProfileStore) -> set[str]:
    return {r[0] for r in store.query("SELECT id FROM run").fetchall()}


def goal_rows(store: ProfileStore) -> set[str]:
    return {r[0] for r in store.query("SELECT run_id FROM run_goal").fetchall()}


def test_runs_older_than_the_days_go_with_their_files(paths: Paths, store: ProfileStore) -> None:
    old = add_run(paths, store, "a", 31)
    failed = add_run(paths, store, "b", 40, st.FAILED)
    recent = add_run(paths, store, "a", 29)

    report = prune(paths, store, Retention(days=30, runs=200), now=NOW)

    assert set(report.runs) == {old, failed}
    assert report.by_connection == {"a": 1, "b": 1}
    assert run_ids(store) == goal_rows(store) == {recent}
    for run_id in (old, failed):
        assert not log_path(paths, run_id).exists()
        assert not stderr_path(paths, run_id).exists()
    assert log_path(paths, recent).exists() and stderr_path(paths, recent).exists()
    assert len(report.files) == 4 and report.bytes > 0


def test_only_the_newest_runs_of_each_connection_are_kept(
    paths: Paths, store: ProfileStore
) -> None:
    a_runs = [add_run(paths, store, "a", d) for d in (5, 4, 3, 2, 1)]
    b_runs = [add_run(paths, store, "b", d) for d in (5, 4)]

    report = prune(paths, store, Retention(days=30, runs=3), now=NOW)

    assert set(report.runs) == set(a_runs[:2])
    assert run_ids(store) == set(a_runs[2:]) | set(b_runs)


def test_running_and_interrupted_runs_are_never_pruned(paths: Paths, store: ProfileStore) -> None:
    # Recorded as running: live, or a dead process's run that the next run resumes.
    stuck = add_run(paths, store, "a", 100, st.RUNNING)
    done = [add_run(paths, store, "a", d) for d in (3, 2, 1)]

    report = prune(paths, store, Retention(days=30, runs=1), now=NOW)

    assert set(report.runs) == set(done[:2])
    assert run_ids(store) == {stuck, done[2]}
    assert log_path(paths, stuck).exists()
    assert [r.id for r in prunable_runs(store, Retention(days=1, runs=1), now=NOW)] == []


def test_a_dry_run_deletes_nothing(paths: Paths, store: ProfileStore) -> None:
    old = add_run(paths, store, "a", 100)

    report = prune(paths, store, Retention(days=30, runs=200), now=NOW, dry_run=True)

    assert report.runs == (old,) and report.dry_run
    assert report.describe().startswith("would prune 1 run (1 connection), 2 files")
    assert run_ids(store) == {old}
    assert log_path(paths, old).exists()


def test_old_run_files_without_a_history_row_go_too(paths: Paths, store: ProfileStore) -> None:
    orphan = paths.runs_dir / "20200101-000000-abcdef.stderr"  # a run that never recorded itself
    orphan.write_text("Traceback …")
    os.utime(orphan, (NOW - 40 * DAY, NOW - 40 * DAY))
    fresh = paths.runs_dir / "20200101-000000-123456.jsonl"  # may be a run starting right now
    fresh.write_text("")
    os.utime(fresh, (NOW - 1, NOW - 1))
    other = paths.runs_dir / "notes.txt"
    other.write_text("mine")
    os.utime(other, (NOW - 40 * DAY, NOW - 40 * DAY))

    report = prune(paths, store, Retention(days=30, runs=200), now=NOW)

    assert report.files == (orphan,)
    assert not orphan.exists() and fresh.exists() and other.exists()


def test_the_retention_table_is_read_validated_and_written_back() -> None:
    assert parse_config("").retention == Retention(days=90, runs=500)
    config = parse_config("[retention]\ndays = 30\nruns = 200\n")
    assert config.retention == Retention(30, 200)
    assert parse_config(to_toml(config)) == config
    with pytest.raises(ConfigError) as caught:
        parse_config('[retention]\ndays = 0\nruns = "many"\nweeks = 2\n')
    message = caught.value.render()
    assert "retention.days: days = 0 would keep nothing" in message
    assert "retention.runs: expected an integer" in message
    assert 'retention.weeks: unknown key "weeks"' in message


# -- a big export's run log ------------------------------------------------------------------


def test_batch_events_coalesce_into_a_few_lines_with_summed_counts(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    seen: list[BatchSent] = []
    log = EventLog(path, lambda e: seen.append(e) if isinstance(e, BatchSent) else None)
    # 13,334 batches: what a 1,000,000-profile export sends, as fast as it can.
    for number in range(1, 13_335):
        log.emit(BatchSent(goal="out", number=number, size=75, failed=number % 2, status=201))
    log.emit(
        GoalFinished(
            goal="out", goal_type="export", state="FINISHED", counts={}, data_points=0, seconds=1
        )
    )
    log.close()

    batches = [e for e in read_events(path) if isinstance(e, BatchSent)]
    assert len(batches) < 100
    assert sum(b.size for b in batches) == 13_334 * 75
    assert sum(b.failed for b in batches) == 6_667
    assert sum(b.batches for b in batches) == 13_334
    assert batches[0].number == 1 and batches[-1].number == 13_334  # the first goes out at once
    assert [e.kind for e in read_events(path)][-1] == "goal_finished"  # flushed before it
    assert seen == batches  # the listener sees what the log holds
