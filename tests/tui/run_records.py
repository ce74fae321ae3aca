"""Recorded runs for the run panel and strip tests: a config with an import and an export goal, and
run logs plus history rows written with fixed ids and timestamps (no run process needed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bctui.engine.runs import state as st
from bctui.engine.runs.events import (
    BatchSent,
    Event,
    GoalFinished,
    LogLine,
    PhaseChanged,
    Progress,
    RateLimitWait,
    RunFinished,
    RunStarted,
)
from bctui.engine.runs.runner import log_path
from bctui.store import ProfileStore

RUN_ID = "20261201-095500-3f9a1c"
CONNECTION = "Braze main"
IMPORT = "Braze test users"
EXPORT = "VIPs to Braze"
COUNT_NAMES = ("checked", "created", "updated", "unchanged", "skipped", "failed")


def counts(**values: int) -> dict[str, int]:
    """Every counter, zero unless given."""
    return {name: values.get(name, 0) for name in COUNT_NAMES}


def recorded_config() -> dict[str, Any]:
    """A connections.toml (as a dict) with fixed endpoints: one import and one export goal."""
    return {
        "store": {"url": "sqlite:///profiles.db"},
        "segment": [{"name": "vip", "match": "all",
                     "rules": [{"property": "lifetime_value", "op": "gte", "value": 1000}]}],
        "connection": [{
            "name": CONNECTION,
            "enabled": True,
            "labels": ["prod"],
            "schedule": {"kind": "days_of_week", "days": ["mon", "fri"], "at": "01:30"},
            "braze": {"endpoint": "https://rest.iad-01.braze.com", "api_key": "secret:braze"},
            "s3": {"access_key_id": "AKIAEXAMPLE", "secret_access_key": "secret:s3",
                   "bucket": "my-braze-exports", "region": "us-east-1"},
            "goal": [
                {"type": "import", "name": IMPORT,
                 "audience": {"segment_id": "3bbc4555-8fa0-4c9b-a5c0-4505edf3e064",
                              "name": "BlueConic Test Users"},
                 "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}]],
                 "mappings": [{"braze": "first_name", "property": "first_name",
                               "strategy": "set"}]},
                {"type": "export", "name": EXPORT, "segment": "vip",
                 "identifiers": [[{"property": "braze_external_id", "braze": "external_id"}]],
                 "mappings": [{"source": "property", "value": "email", "braze": "email"}]},
            ],
        }],
    }  # fmt: skip


def recorded_events(t0: float, *, finish: bool = True, run_id: str = RUN_ID) -> list[Event]:
    """An import of 6 files, then an export of 5,879 profiles; cut mid-export unless `finish`."""
    imp_counts = counts(checked=20415, created=1204, updated=18870, skipped=341)
    events: list[Event] = [
        RunStarted(
            run_id=run_id,
            connection=CONNECTION,
            goals=[IMPORT, EXPORT],
            pid=4242,
            started_by="scheduler",
            ts=t0,
        ),
        PhaseChanged(
            goal=IMPORT,
            phase="requesting",
            detail='export of Braze segment "BlueConic Test Users"',
            ts=t0 + 0.2,
        ),
        LogLine(
            level="info",
            goal=IMPORT,
            ts=t0 + 1.0,
            message='requesting an export of segment "BlueConic Test Users"',
        ),
        PhaseChanged(goal=IMPORT, phase="waiting", detail="for export files", ts=t0 + 1.5),
    ]
    for n in range(1, 7):
        done = min(20415, n * 3500)
        partial = {k: v * done // 20415 for k, v in imp_counts.items()}
        events += [
            PhaseChanged(
                goal=IMPORT, phase="merging", detail=f"file {n}: f{n}.gz", ts=t0 + 10 + n * 2
            ),
            Progress(goal=IMPORT, done=done, unit="users", counts=partial, ts=t0 + 11 + n * 2),
        ]
    events += [
        LogLine(
            level="info",
            goal=IMPORT,
            message="export complete: 6 files, no new file for 30 s",
            ts=t0 + 53,
        ),
        GoalFinished(
            goal=IMPORT,
            goal_type="import",
            state="FINISHED",
            counts=imp_counts,
            data_points=0,
            seconds=53.0,
            ts=t0 + 53,
        ),
        PhaseChanged(goal=EXPORT, phase="selecting", detail="changes after 1200", ts=t0 + 54),
        LogLine(level="info", goal=EXPORT, message="5,879 profiles to check", ts=t0 + 54),
        PhaseChanged(goal=EXPORT, phase="sending", detail="batches of up to 75", ts=t0 + 55),
    ]
    total, sent = 5879, 0
    for second in range(1, 7):
        sent = min(total, second * 350 + second * second * 10)
        events += [
            BatchSent(
                goal=EXPORT,
                number=second,
                size=75,
                status=201,
                seconds=0.1,
                ts=t0 + 55 + second - 0.5,
            ),
            Progress(
                goal=EXPORT,
                done=sent,
                total=total,
                data_points=sent * 7,
                counts=counts(checked=sent, created=sent // 10, updated=sent - sent // 10),
                ts=t0 + 55 + second,
            ),
        ]
    events += [
        LogLine(
            level="warning",
            goal=EXPORT,
            ts=t0 + 61.5,
            message="Braze rejected 2 profiles: invalid email (retried next run)",
        ),
        RateLimitWait(goal=EXPORT, seconds=0.8, reason="429", ts=t0 + 61.8),
    ]
    if not finish:
        return events
    exp_counts = counts(checked=total, created=590, updated=5287, failed=2)
    events += [
        Progress(goal=EXPORT, done=total, total=total, data_points=41139, counts=exp_counts,
                 ts=t0 + 70),
        GoalFinished(goal=EXPORT, goal_type="export", state="FINISHED", counts=exp_counts,
                     data_points=41139, seconds=16.0, ts=t0 + 71),
        RunFinished(run_id=run_id, state="FINISHED", ts=t0 + 71.5, summary={
            "id": run_id, "state": "FINISHED", "seconds": 71.5, "data_points": 41139}),
    ]  # fmt: skip
    return events


def write_run(
    paths: Any,
    events: Sequence[Event],
    *,
    state: str = "FINISHED",
    run_id: str = RUN_ID,
    connection: str = CONNECTION,
    summary: dict[str, Any] | None = None,
) -> None:
    """Write a run's log and its history row (ended at its last event unless still RUNNING)."""
    paths.ensure_state_dir()
    path = log_path(paths, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(e.to_json() + b"\n" for e in events))
    first, last = events[0], events[-1]
    goals = [(IMPORT, "import"), (EXPORT, "export")]
    record = st.RunRecord(
        run_id, connection, first.ts, state,
        ended_at=None if state == st.RUNNING else last.ts,
        goals=[g for g, _ in goals], pid=4242, started_by="scheduler",
        summary=summary if summary is not None else _summary(events, state),
    )  # fmt: skip
    with ProfileStore(paths.state_dir / "profiles.db") as store:
        st.migrate(store)
        with store.transaction() as tx:
            st.insert_run(tx, record, goals)


def _summary(events: Sequence[Event], state: str) -> dict[str, Any]:
    goals: dict[str, Any] = {}
    for event in events:
        if isinstance(event, GoalFinished):
            goals[event.goal] = {
                "type": event.goal_type,
                "state": event.state,
                **event.counts,
                "data_points": event.data_points,
                "seconds": event.seconds,
                "error": event.error,
            }
    if state == st.RUNNING:
        return {}
    return {"state": state, "data_points": sum(g["data_points"] for g in goals.values()),
            "seconds": events[-1].ts - events[0].ts, "goals": goals}  # fmt: skip
