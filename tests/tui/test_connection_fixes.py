"""The connection screen's review fixes: names shown as written (never markup), edits that keep
what changed on disk, secrets stored before the config names them, renames off the event loop, a
connection deleted under a covering screen, the runs-a-day bound, the History tab's polling,
cursor and widths, and new secret names that take no one else's."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, Static, TabbedContent
from tui_helpers import FIXED_NOW, TuiWorkspace, drive, until

from bctui.engine.config import load_config
from bctui.engine.runs import state as st
from bctui.engine.secrets import SecretsFile
from bctui.store import open_store
from bctui.tui.app import BctuiApp
from bctui.tui.screens.connection import ConnectionScreen
from bctui.tui.screens.run_detail import RunDetailScreen
from bctui.tui.widgets.run_history import RunHistory

IDS = [[{"braze": "external_id", "property": "braze_external_id"}]]
CRASH = "Crash [/x]"
BOLD = "[b]x[/b]"


def conn_doc(name: str = "Braze main", **extra: Any) -> dict[str, Any]:
    conn: dict[str, Any] = {
        "name": name,
        "enabled": True,
        "labels": ["prod"],
        "braze": {"endpoint": "https://rest.fra-01.braze.eu", "api_key": "secret:braze"},
        "s3": {
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": "secret:s3",
            "bucket": "my-braze-exports",
        },
        "goal": [
            {
                "type": "import",
                "name": "Testers",
                "audience": {"segment_id": "seg-1", "name": "Test users"},
                "identifiers": IDS,
            }
        ],
    }
    conn.update(extra)
    return conn


def config(*conns: dict[str, Any]) -> dict[str, Any]:
    return {
        "store": {"url": "sqlite:///profiles.db"},
        "segment": [{"name": "vip", "match": "all", "rules": [{"property": "x", "op": "exists"}]}],
        "connection": list(conns) or [conn_doc()],
    }


def plain(app: BctuiApp, content: object) -> str:
    with app.console.capture() as capture:
        app.console.print(content)
    return capture.get()


def shown(app: BctuiApp, selector: str) -> str:
    return plain(app, app.screen.query_one(selector, Static).content)


async def open_tab(pilot: Pilot[None], tab: str, name: str = "Braze main") -> None:
    app = pilot.app
    app.push_screen(ConnectionScreen(name, tab=tab))
    await until(pilot, lambda: isinstance(app.screen, ConnectionScreen) and app.screen.ready)


async def type_into(pilot: Pilot[None], widget_id: str, text: str) -> None:
    field = pilot.app.screen.query_one(f"#{widget_id}", Input)
    field.focus()
    field.value = ""
    await pilot.pause()
    await pilot.press(*text)


def store_of(ws: TuiWorkspace) -> Any:
    ws.paths.ensure_state_dir()
    store = open_store("sqlite:///profiles.db", ws.paths.state_dir)
    st.migrate(store)
    return store


def add_run(ws: TuiWorkspace, run_id: str, started: float, goal: str = "Testers") -> None:
    store = store_of(ws)
    with store.transaction() as tx:
        st.insert_run(tx, st.RunRecord(run_id, "Braze main", started, st.RUNNING, pid=999_999),
                      [(goal, "import")])  # fmt: skip
        st.finish_run(tx, run_id, st.FINISHED, "", {})
        st.save_goal(tx, run_id, st.GoalState(goal, "export", st.FINISHED, {"updated": 12}, 34))
        st.record_failures(tx, st.goal_key("Braze main", goal), run_id, [("p-1", BOLD)])
    store.close()


# -- 1. markup --------------------------------------------------------------------------------


def test_names_with_brackets_show_as_written(workspace: TuiWorkspace) -> None:
    goal = {
        "type": "import",
        "name": BOLD,
        "audience": {"segment_id": "seg-1", "name": CRASH},
        "identifiers": IDS,
    }
    workspace.write_config(
        config(conn_doc(CRASH, labels=["Loyalty [v2]"], description=BOLD, goal=[goal]))
    )
    ws_store = store_of(workspace)
    with ws_store.transaction() as tx:
        st.insert_run(tx, st.RunRecord("run-1", CRASH, FIXED_NOW - 60, st.RUNNING, pid=999_999),
                      [(BOLD, "export")])  # fmt: skip
        st.finish_run(tx, "run-1", st.FINISHED, "", {})
        st.save_goal(tx, "run-1", st.GoalState(BOLD, "export", st.FINISHED, {"updated": 1}, 1))
        st.record_failures(tx, st.goal_key(CRASH, BOLD), "run-1", [("p-1", CRASH)])
    ws_store.close()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "details", CRASH)
        assert CRASH in shown(app, "#connection-header")
        assert CRASH in shown(app, "#details-name")
        assert app.screen.query_one("#details-description", Input).value == BOLD
        tabs = app.screen.query_one(TabbedContent)
        for key, tab in (("f3", "setup"), ("f5", "schedule"), ("f4", "goals"), ("f6", "history")):
            await pilot.press(key)
            await until(pilot, lambda: tabs.active == tab)  # noqa: B023 (awaited at once)
            await pilot.pause()
        goals = app.screen.query_one("#goals-table", DataTable)
        assert plain(app, goals.get_row_at(0)[1]).strip() == BOLD
        assert CRASH in plain(app, goals.get_row_at(0)[3])
        history = app.screen.query_one("#history-table", DataTable)
        await until(pilot, lambda: history.row_count == 1)
        assert BOLD in plain(app, history.get_row_at(0)[-1])
        history.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        failures = app.screen.query_one("#run-detail-failures", DataTable)
        await until(pilot, lambda: failures.row_count == 1)
        assert [plain(app, c).strip() for c in failures.get_row_at(0)][:3] == [BOLD, "p-1", CRASH]
        assert CRASH in shown(app, "#run-detail-header")
        goals_done = app.screen.query_one("#run-detail-goals", DataTable)
        assert plain(app, goals_done.get_row_at(0)[0]).strip() == BOLD

    drive(app, scenario)


# -- 2. only edited fields are saved ----------------------------------------------------------


def test_saving_keeps_what_changed_on_disk_meanwhile(workspace: TuiWorkspace) -> None:
    workspace.write_config(config(conn_doc(description="before")))
    app = workspace.app(poll_seconds=0.1)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "details")
        await type_into(pilot, "details-labels", "prod, eu")
        workspace.write_config(config(conn_doc(description="changed on disk", enabled=False)))
        await until(pilot, lambda: app.config.connections[0].description == "changed on disk")
        assert app.screen.dirty  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].labels == ("prod", "eu"))

    drive(app, scenario)
    conn = load_config(workspace.paths.config).connections[0]
    assert conn.labels == ("prod", "eu")
    assert conn.description == "changed on disk"
    assert conn.enabled is False


# -- 3. secrets before the config -------------------------------------------------------------


def test_a_secret_that_cannot_be_stored_leaves_the_config_alone(workspace: TuiWorkspace) -> None:
    workspace.write_config(
        config(conn_doc(braze={"endpoint": "https://rest.fra-01.braze.eu", "api_key": "env:K"}))
    )
    workspace.set_secret("s3", "x" * 40)
    os.chmod(workspace.paths.secrets, 0o644)  # refused: readable by others
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "setup")
        await type_into(pilot, "setup-api-key", "a-new-braze-key-0123456789")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any("Secret not stored" in n.title
                                       for n in app._notifications))  # fmt: skip

    drive(app, scenario)
    assert load_config(workspace.paths.config).connections[0].braze.api_key == "env:K"


# -- 4/5. renames off the event loop, failures as notifications -------------------------------


def test_a_rename_waiting_on_a_locked_store_leaves_the_ui_responsive(
    workspace: TuiWorkspace,
) -> None:
    workspace.write_config(config())
    store_of(workspace).close()
    app = workspace.app()
    lock = sqlite3.connect(workspace.paths.state_dir / "profiles.db", isolation_level=None)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "goals")
        app.screen.query_one("#goals-table", DataTable).focus()
        await pilot.press("e")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptModal")
        lock.execute("BEGIN IMMEDIATE")  # the rename now waits for the store
        try:
            await pilot.press("end", *" renamed", "enter")
            await until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
            await until(pilot, lambda: any(w.group == "goals-store" for w in app.workers))
            await pilot.press("f3")  # handled while the rename waits
            await until(pilot, lambda: app.screen.query_one(TabbedContent).active == "setup")
            assert [g.name for g in app.config.connections[0].goals] == ["Testers"]
        finally:
            lock.execute("ROLLBACK")
        await until(pilot, lambda: app.config.connections[0].goals[0].name == "Testers renamed")

    try:
        drive(app, scenario)
    finally:
        lock.close()
    assert [g.name for g in load_config(workspace.paths.config).connections[0].goals] == [
        "Testers renamed"
    ]


def test_a_rename_the_store_refuses_is_a_notification(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    store_of(workspace).close()
    # The state directory cannot be written: opening the store for the rename fails.
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "goals")
        app.screen.query_one("#goals-table", DataTable).focus()
        await pilot.press("e")
        await until(pilot, lambda: type(app.screen).__name__ == "PromptModal")
        (workspace.paths.state_dir / "profiles.db").unlink()
        (workspace.paths.state_dir / "profiles.db").mkdir()
        await pilot.press("end", *" renamed", "enter")
        await until(pilot, lambda: any(n.title == "Not renamed" for n in app._notifications))
        assert isinstance(app.screen, ConnectionScreen)

    drive(app, scenario)
    assert [g.name for g in load_config(workspace.paths.config).connections[0].goals] == ["Testers"]


# -- 6. a connection deleted on disk while a screen covers it ---------------------------------


def test_a_deleted_connection_under_another_screen_leaves_when_shown(
    workspace: TuiWorkspace,
) -> None:
    workspace.write_config(config())
    app = workspace.app(poll_seconds=0.1)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "details")
        cover: Screen[None] = Screen()
        app.push_screen(cover)
        await until(pilot, lambda: app.screen is cover)
        workspace.write_config(config(conn_doc("Other")))
        await until(pilot, lambda: app.config.connection("Braze main") is None)
        await pilot.pause(0.2)
        assert app.screen is cover
        assert any(isinstance(s, ConnectionScreen) for s in app.screen_stack)
        app.pop_screen()
        await until(pilot, lambda: type(app.screen).__name__ == "ConnectionsScreen")

    drive(app, scenario)


# -- 7. runs a day ----------------------------------------------------------------------------


def test_a_huge_number_of_runs_a_day_is_refused_before_the_preview(
    workspace: TuiWorkspace,
) -> None:
    workspace.write_config(config(conn_doc(schedule={"kind": "times_per_day", "times": 4})))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "schedule")
        started = time.monotonic()
        await type_into(pilot, "schedule-times", "2000000")
        await until(pilot, lambda: "out of range" in shown(app, "#times-error"))
        assert "out of range" in shown(app, "#schedule-next")
        # Computing that many runs for the preview took half a minute, the UI frozen meanwhile.
        assert time.monotonic() - started < 10

    drive(app, scenario)


# -- 8/9. the History tab ---------------------------------------------------------------------


def test_history_keeps_its_run_selected_and_stops_polling_when_covered(
    workspace: TuiWorkspace,
) -> None:
    workspace.write_config(config())
    add_run(workspace, "run-1", FIXED_NOW - 7200)
    add_run(workspace, "run-2", FIXED_NOW - 3600)
    app = workspace.app(poll_seconds=0.1)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "history")
        history = app.screen.query_one(RunHistory)
        table = history.table
        await until(pilot, lambda: table.row_count == 2)
        table.focus()
        await pilot.press("down")
        assert history.selected().record.id == "run-1"  # type: ignore[union-attr]
        add_run(workspace, "run-3", FIXED_NOW - 60)
        await until(pilot, lambda: table.row_count == 3)
        assert history.selected().record.id == "run-1"  # type: ignore[union-attr]
        assert table.cursor_row == 2
        # Covered: no longer following the poll; back on top: following it again.
        cover: Screen[None] = Screen()
        app.push_screen(cover)
        await until(pilot, lambda: history not in app.runs_changed._subscriptions)
        add_run(workspace, "run-4", FIXED_NOW - 30)
        await until(pilot, lambda: app.runs.latest["Braze main"].id == "run-4")
        app.pop_screen()
        await until(pilot, lambda: table.row_count == 4)
        assert history in app.runs_changed._subscriptions
        assert len(app.runs_changed._subscriptions[history]) == 1
        assert history.selected().record.id == "run-1"  # type: ignore[union-attr]

    drive(app, scenario)


def _widths(table: DataTable[Any]) -> int:
    return sum(c.get_render_width(table) for c in table.columns.values())


def test_history_and_run_details_fit_80_columns_and_use_160(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    add_run(workspace, "run-1", FIXED_NOW - 7200, goal="A goal with a rather long name indeed")

    for size, wide in (((80, 24), False), ((160, 48), True)):
        app = workspace.app()

        async def scenario(pilot: Pilot[None], app: BctuiApp = app, wide: bool = wide) -> None:
            await open_tab(pilot, "history")
            table = app.screen.query_one("#history-table", DataTable)
            await until(pilot, lambda: table.row_count == 1)
            keys = [str(k.value) for k in table.columns]
            assert ("by" in keys and "dp" in keys) is wide
            assert _widths(table) <= table.size.width
            table.focus()
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
            goals = app.screen.query_one("#run-detail-goals", DataTable)
            await until(pilot, lambda: goals.row_count == 1)
            assert (len(goals.columns) > 4) is wide
            assert _widths(goals) <= goals.size.width

        drive(app, scenario, size=size)


# -- 10. new secret names ---------------------------------------------------------------------


def test_a_new_key_takes_a_name_no_other_connection_uses(workspace: TuiWorkspace) -> None:
    endpoint = "https://rest.fra-01.braze.eu"
    workspace.write_config(
        config(
            conn_doc(braze={"endpoint": endpoint, "api_key": "env:BRAZE_KEY"}),
            conn_doc("Other", braze={"endpoint": endpoint, "api_key": "secret:braze-main-braze"}),
        )
    )
    workspace.set_secret("braze-main-braze", "the other connection's key")
    workspace.set_secret("braze-main-braze-2", "left behind by a deleted connection")
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "setup")
        await type_into(pilot, "setup-api-key", "a-new-braze-key-0123456789")
        assert "secret:braze-main-braze-3" in shown(app, "#setup-api-key-status")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not app.screen.dirty)  # type: ignore[attr-defined]

    drive(app, scenario)
    conns = load_config(workspace.paths.config).connections
    assert conns[0].braze.api_key == "secret:braze-main-braze-3"
    assert conns[1].braze.api_key == "secret:braze-main-braze"
    secrets = SecretsFile(workspace.paths.secrets)
    assert secrets.get("braze-main-braze-3").reveal() == "a-new-braze-key-0123456789"  # type: ignore[union-attr]
    assert secrets.get("braze-main-braze").reveal() == "the other connection's key"  # type: ignore[union-attr]


def test_a_new_key_for_a_connection_with_its_own_secret_keeps_the_name(
    workspace: TuiWorkspace,
) -> None:
    workspace.write_config(config())
    workspace.set_secret("braze", "old key")
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "setup")
        await type_into(pilot, "setup-api-key", "a-new-braze-key-0123456789")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not app.screen.dirty)  # type: ignore[attr-defined]

    drive(app, scenario)
    assert load_config(workspace.paths.config).connections[0].braze.api_key == "secret:braze"
    secret = SecretsFile(workspace.paths.secrets).get("braze")
    assert secret is not None and secret.reveal() == "a-new-braze-key-0123456789"
