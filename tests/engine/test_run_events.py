"""Run events survive the run log: each is one JSON line whose `type` names it, read back equal."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest

from bctui.engine.runs.events import (
    EVENT_TYPES,
    Event,
    EventLog,
    LogLine,
    RunStarted,
    follow_events,
    parse_event,
    read_events,
)

SAMPLES: dict[str, Any] = {"str": "x", "int": 3, "float": 1.5, "bool": True,
                           "list[str]": ["a", "b"], "dict[str, int]": {"checked": 2},
                           "dict[str, Any]": {"goals": {"g": {"state": "FINISHED"}}}}


def sample(cls: type[Event]) -> Event:
    """An instance of `cls` with a value in every field."""
    values = {f.name: SAMPLES[str(f.type)] for f in dataclasses.fields(cls) if f.name != "ts"}
    return cls(**values)


@pytest.mark.parametrize("kind", sorted(EVENT_TYPES))
def test_every_event_round_trips_through_its_log_line(kind: str) -> None:
    event = sample(EVENT_TYPES[kind])
    line = event.to_json()

    assert orjson.loads(line)["type"] == kind
    assert parse_event(line) == event


def test_a_resumed_run_appends_after_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    first = LogLine(level="info", message="before the kill")
    path.write_bytes(first.to_json() + b"\n" + b'{"type": "log", "ts": 1.0, "lev')

    log = EventLog(path)
    resumed = RunStarted(run_id="r", connection="c", goals=["g"], pid=1, resumed=True)
    log.emit(resumed)
    log.close()

    assert list(read_events(path)) == [first, resumed]
    assert list(follow_events(path, poll=0.01, alive=lambda: False)) == [first, resumed]


def test_a_dry_runs_goals_are_read_from_its_summary(tmp_path: Path) -> None:
    """A dry run writes no progress to the store; what it counted is in its summary."""
    from bctui.engine.runs import state as st
    from bctui.store import ProfileStore

    with ProfileStore(tmp_path / "p.db") as store:
        st.migrate(store)
        record = st.RunRecord("r1", "c", 1.0, st.RUNNING, dry_run=True)
        goal = {"type": "export", "state": "FINISHED", "checked": 5, "created": 3,
                "data_points": 9, "seconds": 0.5, "error": ""}  # fmt: skip
        with store.transaction() as tx:
            st.insert_run(tx, record, [("out", "export")])
            st.finish_run(tx, "r1", st.FINISHED, "", {"goals": {"out": goal}})
        finished = st.get_run(store, "r1")
        assert finished is not None
        (shown,) = st.reported_goal_states(store, finished)
        assert (shown.goal, shown.state, shown.counts["created"], shown.data_points) == (
            "out", "FINISHED", 3, 9,
        )
        assert st.goal_states(store, "r1")[0].state == st.PENDING  # the store's own row
