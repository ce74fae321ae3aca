"""The connection screen driven with keys: Details, Schedule and their problems, the Goals tab's
edits (asserted on connections.toml), History and a run's details, and a connection that
disappears from the file."""

from __future__ import annotations

import time
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Static
from tui_helpers import TuiWorkspace, drive, until

from bctui.engine.config import load_config
from bctui.engine.runs import state as st
from bctui.store import open_store
from bctui.tui.app import BctuiApp
from bctui.tui.screens.connection import ConnectionScreen
from bctui.tui.screens.run_detail import RunDetailScreen

IDS = [[{"braze": "external_id", "property": "braze_external_id"}]]


def config(**extra: Any) -> dict[str, Any]:
    conn: dict[str, Any] = {
        "name": "Braze main",
        "enabled": True,
        "labels": ["prod"],
        "notify": {"emails": ["ops@example.com"], "when": "failure"},
        "braze": {"endpoint": "https://rest.fra-01.braze.eu", "api_key": "secret:braze"},
        "s3": {
            "access_key_id": "AKIAEXAMPLE",
            "secret_access_key": "secret:s3",
            "bucket": "my-braze-exports",
        },
        "goal": [
            {
                "type": "export",
                "name": "VIPs",
                "segment": "vip",
                "identifiers": [[{"property": "braze_external_id", "braze": "external_id"}]],
            },
            {
                "type": "import",
                "name": "Testers",
                "audience": {"segment_id": "seg-1", "name": "Test users"},
                "identifiers": IDS,
            },
            {
                "type": "import",
                "name": "Everyone",
                "audience": {"segment_id": "seg-2", "name": "All users"},
                "identifiers": IDS,
            },
        ],
    }
    conn.update(extra)
    return {
        "store": {"url": "sqlite:///profiles.db"},
        "segment": [{"name": "vip", "match": "all", "rules": [{"property": "x", "op": "exists"}]}],
        "connection": [conn],
    }


def screen(app: BctuiApp) -> ConnectionScreen:
    assert isinstance(app.screen, ConnectionScreen)
    return app.screen


def plain(app: BctuiApp, content: object) -> str:
    with app.console.capture() as capture:
        app.console.print(content)
    return capture.get()


def error_of(app: BctuiApp, field: str) -> str:
    label = app.screen.query_one(f"#{field}-error", Static)
    return plain(app, label.content) if label.display else ""


async def open_tab(pilot: Pilot[None], tab: str) -> None:
    app = pilot.app
    app.push_screen(ConnectionScreen("Braze main", tab=tab))
    await until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
    await until(pilot, lambda: isinstance(app.screen, ConnectionScreen) and app.screen.ready)


async def type_into(pilot: Pilot[None], widget_id: str, text: str) -> None:
    field = pilot.app.screen.query_one(f"#{widget_id}")
    field.focus()
    field.value = ""  # type: ignore[attr-defined]
    await pilot.pause()
    await pilot.press(*text)


def goal_names(ws: TuiWorkspace) -> list[str]:
    return [g.name for g in load_config(ws.paths.config).connections[0].goals]


# -- Details and Schedule -------------------------------------------------------------------


def test_details_save_labels_emails_and_switches(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "details")
        await type_into(pilot, "details-labels", "prod, eu")
        await type_into(pilot, "details-emails", "a@example.com, b@example.org")
        screen(app).query_one("#details-favorite").value = True  # type: ignore[attr-defined]
        await pilot.pause()
        assert "unsaved" in plain(app, app.screen.query_one("#connection-header", Static).content)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].favorite)

    drive(app, scenario)
    conn = load_config(workspace.paths.config).connections[0]
    assert conn.labels == ("prod", "eu")
    assert conn.notify.emails == ("a@example.com", "b@example.org")
    assert conn.favorite and conn.enabled


def test_invalid_fields_say_what_is_wrong_and_nothing_is_saved(workspace: TuiWorkspace) -> None:
    path = workspace.write_config(config())
    before = path.read_bytes()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "details")
        await type_into(pilot, "details-emails", "ops@example.com, not-an-address")
        await pilot.press("f5")
        kind = app.screen.query_one("#schedule-kind")
        kind.value = "days_of_week"  # type: ignore[attr-defined]
        await pilot.pause()
        app.screen.query_one("#schedule-day-mon").value = True  # type: ignore[attr-defined]
        await type_into(pilot, "schedule-at", "25:00")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert '"not-an-address" is not an e-mail address' in error_of(app, "emails")
        assert '"25:00" is not a time of day' in error_of(app, "at")
        next_runs = plain(app, app.screen.query_one("#schedule-next", Static).content)
        assert "25:00" in next_runs  # the problem, instead of run times
        # A bad cron expression, too.
        kind.value = "cron"  # type: ignore[attr-defined]
        await pilot.pause()
        await type_into(pilot, "schedule-expr", "61 * * *")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert error_of(app, "expr")
        assert "five fields" in error_of(app, "expr")

    drive(app, scenario)
    assert path.read_bytes() == before


def test_next_three_runs_of_a_days_of_week_schedule(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    app = workspace.app()  # now = Tue 2026-12-01 12:00 UTC

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "schedule")
        app.screen.query_one("#schedule-kind").value = "days_of_week"  # type: ignore[attr-defined]
        await pilot.pause()
        for day in ("mon", "fri"):
            app.screen.query_one(f"#schedule-day-{day}").value = True  # type: ignore[attr-defined]
        await type_into(pilot, "schedule-at", "01:30")
        text = ""

        def shown() -> str:
            nonlocal text
            text = plain(app, app.screen.query_one("#schedule-next", Static).content)
            return text

        await until(pilot, lambda: "Fri 2026-12-04 01:30" in shown())
        assert "Mon 2026-12-07 01:30" in text
        assert "Fri 2026-12-11 01:30" in text
        await type_into(pilot, "schedule-timezone", "Europe/Amsterdam")
        await until(pilot, lambda: "Fri 2026-12-04 01:30 Europe/Amsterdam" in shown())
        assert "Fri 2026-12-04 00:30 UTC here" in text
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].schedule.kind == "days_of_week")

    drive(app, scenario)
    schedule = load_config(workspace.paths.config).connections[0].schedule
    assert schedule.days == ("mon", "fri")
    assert schedule.at == "01:30" and schedule.timezone == "Europe/Amsterdam"


def test_escape_with_unsaved_changes_asks_first(workspace: TuiWorkspace) -> None:
    path = workspace.write_config(config())
    before = path.read_bytes()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "details")
        await type_into(pilot, "details-description", "hello")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ConnectionScreen)  # the question
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ConnectionScreen))
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, ConnectionScreen))

    drive(app, scenario)
    assert path.read_bytes() == before


def test_a_connection_deleted_on_disk_closes_the_screen(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    app = workspace.app(poll_seconds=0.1)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "details")
        other = config(name="Another")
        time.sleep(0.01)
        workspace.write_config(other)
        await until(pilot, lambda: not isinstance(app.screen, ConnectionScreen))

    drive(app, scenario)


# -- Goals -----------------------------------------------------------------------------------


def goals_table(app: BctuiApp) -> DataTable[object]:
    return app.screen.query_one("#goals-table", DataTable)


def shown_goals(app: BctuiApp) -> list[str]:
    table = goals_table(app)
    return [str(table.get_row_at(i)[1]) for i in range(table.row_count)]


def test_goals_list_imports_first_and_edits_save_at_once(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "goals")
        assert shown_goals(app) == ["Testers", "Everyone", "VIPs"]
        goals_table(app).focus()
        await pilot.press("space")  # Testers off
        await until(pilot, lambda: not app.config.connections[0].goals[1].enabled)
        await pilot.press("right_square_bracket")  # Testers below Everyone
        await until(pilot, lambda: shown_goals(app) == ["Everyone", "Testers", "VIPs"])
        # Moves stay within the imports.
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert shown_goals(app) == ["Everyone", "Testers", "VIPs"]
        await pilot.press("c")  # copy Testers
        await pilot.pause()
        await pilot.press("enter")  # "Testers copy"
        await until(pilot, lambda: "Testers copy" in shown_goals(app))
        await pilot.press("down", "down", "d")  # delete VIPs (after the copy)
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: "VIPs" not in shown_goals(app))

    drive(app, scenario)
    conn = load_config(workspace.paths.config).connections[0]
    assert [g.name for g in conn.goals] == ["Everyone", "Testers", "Testers copy"]
    assert [g.enabled for g in conn.goals] == [True, False, False]


def test_renaming_a_goal_moves_its_history(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    paths = workspace.paths
    paths.ensure_state_dir()
    store = open_store("sqlite:///profiles.db", paths.state_dir)
    st.migrate(store)
    with store.transaction() as tx:
        st.set_watermark(tx, st.goal_key("Braze main", "VIPs"), 42)
    store.close()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "goals")
        goals_table(app).focus()
        await pilot.press("down", "down", "e")  # VIPs
        await pilot.pause()
        await pilot.press("end", *" to Braze", "enter")
        await until(pilot, lambda: "VIPs to Braze" in shown_goals(app))

    drive(app, scenario)
    assert goal_names(workspace) == ["VIPs to Braze", "Testers", "Everyone"]
    store = open_store("sqlite:///profiles.db", paths.state_dir)
    try:
        assert st.watermark(store, st.goal_key("Braze main", "VIPs to Braze")) == 42
        assert st.watermark(store, st.goal_key("Braze main", "VIPs")) == 0
    finally:
        store.close()


def test_adding_a_goal_opens_the_editor_with_a_draft(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "goals")
        goals_table(app).focus()
        await pilot.press("i")
        await pilot.pause()
        await pilot.press(*"New import", "enter")
        await until(pilot, lambda: type(app.screen).__name__ == "ImportGoalScreen")

    drive(app, scenario)
    assert "New import" not in goal_names(workspace)  # saved only from the editor


# -- History -----------------------------------------------------------------------------


def test_history_lists_runs_and_opens_a_runs_details(workspace: TuiWorkspace) -> None:
    workspace.write_config(config())
    paths = workspace.paths
    paths.ensure_state_dir()
    store = open_store("sqlite:///profiles.db", paths.state_dir)
    st.migrate(store)
    started = 1_796_036_400.0  # an hour before the pinned now
    with store.transaction() as tx:
        st.insert_run(
            tx,
            st.RunRecord("run-1", "Braze main", started, st.RUNNING, pid=999_999,
                         started_by="scheduler"),
            [("VIPs", "export")],
        )  # fmt: skip
        st.finish_run(tx, "run-1", st.FINISHED, "", {})
        st.save_goal(
            tx, "run-1", st.GoalState("VIPs", "export", st.FINISHED, {"updated": 12, "failed": 1},
                                      data_points=34, seconds=2.0)
        )  # fmt: skip
        st.record_failures(tx, st.goal_key("Braze main", "VIPs"), "run-1",
                           [("p-1", "invalid email")])  # fmt: skip
    store.close()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_tab(pilot, "history")
        table = app.screen.query_one("#history-table", DataTable)
        await until(pilot, lambda: table.row_count == 1)
        row = [plain(app, cell) for cell in table.get_row_at(0)]
        assert "finished" in row[0]
        assert row[1] == "scheduler\n"
        assert "12 updated" in row[4] and "1 failed" in row[4]
        assert "34" in row[5]
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunDetailScreen))
        failures = app.screen.query_one("#run-detail-failures", DataTable)
        await until(pilot, lambda: failures.row_count == 1)
        assert [str(c) for c in failures.get_row_at(0)][1:3] == ["p-1", "invalid email"]
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConnectionScreen))

    drive(app, scenario, size=(160, 48))  # every column shows from 120 wide on
