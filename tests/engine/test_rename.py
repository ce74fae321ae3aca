"""Renaming a connection or a goal keeps its history: runs, watermarks, applied files and what
exports sent move to the new name, so the next delta export sends nothing it sent before; a
rename waits for a running or interrupted run, and never lands on another name's history."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from run_helpers import (
    Workspace,
    braze_segment_id,
    braze_track,
    export_goal,
    fast_settings,
    import_goal,
    mapping,
    member,
    source,
    track_requests,
)

from bctui.engine.config import load_config
from bctui.engine.rename import history_blocker, rename_connection, rename_goal
from bctui.engine.runs import state as st
from bctui.engine.runs.lock import RunLock
from bctui.engine.runs.runner import RunOptions, RunResult, run_connection
from bctui.errors import BctuiError
from bctui.sandbox import Sandbox

pytestmark = pytest.mark.slow

LINKED: dict[str, Any] = {
    "name": "linked",
    "match": "all",
    "rules": [{"property": "ext", "op": "exists"}],
}


def workspace(root: Path, box: Sandbox) -> Workspace:
    """An import of three Braze users, then an export of the profiles with an id."""
    braze_track(box, [{"external_id": f"u{i}", "pts": i + 1} for i in range(3)])
    ws = Workspace.create(
        root,
        box,
        [
            import_goal(
                braze_segment_id(box, "All Users"),
                mappings=[mapping("custom_attributes.pts", "points", "sum")],
            ),
            export_goal(segment="linked", mappings=[source("property", "bc_points", "points")]),
        ],
        [LINKED],
    )
    ws.load([member("p0", ext="u0", points=10), member("p1", ext="u7", points=1)])
    return ws


def rename_in_config(
    ws: Workspace, connection: str | None = None, goals: dict[str, str] | None = None
) -> None:
    """What the editor does to connections.toml: rename the connection and/or some goals."""
    document = tomllib.loads(ws.paths.config.read_text())
    conn = document["connection"][0]
    conn["name"] = connection or conn["name"]
    for goal in conn["goal"]:
        goal["name"] = (goals or {}).get(goal["name"], goal["name"])
    ws.paths.config.write_text(tomli_w.dumps(document))


def run(ws: Workspace, name: str, goal: str | None = None) -> RunResult:
    """Run the connection under its (new) name, in this process."""
    return run_connection(
        load_config(ws.paths.config), ws.paths, name, RunOptions(goal=goal, concurrency=4)
    )


def key_rows(ws: Workspace, connection: str, goal: str) -> dict[str, int]:
    """How many rows each goal-keyed table holds for this goal."""
    key = st.goal_key(connection, goal)
    with ws.store() as store:
        return {
            t: store.query(f"SELECT count(*) FROM {t} WHERE goal_key = ?", (key,)).fetchone()[0]
            for t in st.GOAL_KEY_TABLES
        }


def test_a_renamed_connection_keeps_its_history(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))
    first = ws.run()
    assert first.state == "FINISHED", first.error
    before = {g: key_rows(ws, "c", g) for g in ("import", "export")}
    assert before["export"]["watermark"] == 1 and before["export"]["export_sent"] == 4
    assert before["import"]["import_file"] >= 1
    sent = track_requests(ws.sandbox)

    with ws.store() as store:
        assert history_blocker(ws.paths, store, "c") == ""
        rename_connection(ws.paths, store, "c", "Braze main")
    rename_in_config(ws, connection="Braze main")

    assert {g: key_rows(ws, "Braze main", g) for g in ("import", "export")} == before
    assert all(n == 0 for g in ("import", "export") for n in key_rows(ws, "c", g).values())
    with ws.store() as store:
        assert [r.id for r in st.list_runs(store, "Braze main")] == [first.run_id]
        assert st.list_runs(store, "c") == []
    # A delta export under the new name: nothing changed since the last run, nothing is sent.
    again = run(ws, "Braze main", goal="export")
    assert again.state == "FINISHED", again.error
    assert again.summary["goals"]["export"]["checked"] == 0
    assert track_requests(ws.sandbox) == sent

    # A change of case only keeps the same goal keys and renames the history's name.
    with ws.store() as store:
        rename_connection(ws.paths, store, "Braze main", "BRAZE MAIN")
        assert {r.connection for r in st.list_runs(store, "BRAZE MAIN")} == {"BRAZE MAIN"}
        assert len(st.list_runs(store, "BRAZE MAIN")) == 2
    assert key_rows(ws, "braze main", "export") == before["export"]


def test_a_renamed_goal_keeps_its_watermark_and_what_it_sent(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))
    first = ws.run()
    assert first.state == "FINISHED", first.error
    before = key_rows(ws, "c", "export")
    ws.load([{"_id": "p0", "points": 50}])  # one change: the next delta sends that one only
    sent = track_requests(ws.sandbox)

    with ws.store() as store:
        rename_goal(ws.paths, store, "c", "export", "To Braze")
    rename_in_config(ws, goals={"export": "To Braze"})

    assert key_rows(ws, "c", "To Braze") == before
    assert all(n == 0 for n in key_rows(ws, "c", "export").values())
    with ws.store() as store:
        assert [g.goal for g in st.goal_states(store, first.run_id)] == ["import", "To Braze"]
        renamed = st.get_run(store, first.run_id)
        assert renamed is not None and renamed.goals == ["import", "To Braze"]
    again = run(ws, "c", goal="To Braze")
    goal = again.summary["goals"]["To Braze"]
    assert (goal["checked"], goal["updated"], goal["data_points"]) == (1, 1, 1)
    assert track_requests(ws.sandbox) == sent + 1


def test_a_rename_waits_for_an_interrupted_or_running_run(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))
    crashed = ws.cli("run", "c", env={"BCTUI_CRASH_AT": "export.batch_settled:1"})
    assert crashed.returncode == -9, crashed.stderr
    before = key_rows(ws, "c", "import")

    with ws.store() as store:
        blocker = history_blocker(ws.paths, store, "c")
        with pytest.raises(BctuiError, match="has an interrupted run") as refused:
            rename_connection(ws.paths, store, "c", "d")
        with pytest.raises(BctuiError, match="has an interrupted run"):
            rename_goal(ws.paths, store, "c", "export", "out")
    assert 'bctui run "c"' in blocker
    assert refused.value.fix == 'finish it first with `bctui run "c"`'
    assert key_rows(ws, "c", "import") == before and ws.runs()[0].connection == "c"

    assert ws.cli("run", "c").returncode == 0  # resumed and finished
    lock = RunLock(ws.paths.locks_dir, "c")
    lock.acquire("20260101-000000-abcdef")  # this process is now running "c"
    try:
        with ws.store() as store:
            assert "is running (run 20260101-000000-abcdef" in history_blocker(ws.paths, store, "c")
            with pytest.raises(BctuiError, match="is already running"):
                rename_connection(ws.paths, store, "c", "d")
    finally:
        lock.release()
    with ws.store() as store:
        assert history_blocker(ws.paths, store, "c") == ""
        rename_connection(ws.paths, store, "c", "d")
        assert len(st.list_runs(store, "d")) == 1


def test_a_rename_onto_another_name_with_history_is_refused(
    tmp_path: Path, make_sandbox: Callable[..., Sandbox]
) -> None:
    ws = workspace(tmp_path, make_sandbox(users=0, settings=fast_settings()))
    assert ws.run().state == "FINISHED"
    before = key_rows(ws, "c", "export")
    with ws.store() as store:
        with store.transaction() as tx:  # a run of another connection "Other"
            st.insert_run(
                tx,
                st.RunRecord("20200101-000000-abcdef", "Other", 1.0, "FINISHED"),
                [("x", "export")],
            )
        with store.transaction() as tx:  # a goal "previous" that "c" had once
            st.set_watermark(tx, st.goal_key("c", "previous"), 5)

        with pytest.raises(BctuiError, match='"other" already has run history'):
            rename_connection(ws.paths, store, "c", "other")
        with pytest.raises(BctuiError, match='a goal "previous" of it already has history'):
            rename_goal(ws.paths, store, "c", "export", "previous")
        with pytest.raises(BctuiError, match='a goal "import" of it already has history'):
            rename_goal(ws.paths, store, "c", "export", "import")
        rename_goal(ws.paths, store, "c", "export", "EXPORT")  # a change of case is no clash
        assert [g.goal for g in st.goal_states(store, ws.runs()[-1].id)][-1] == "EXPORT"
    assert key_rows(ws, "c", "export") == before
