"""The connections screen, driven with keys: toggles, favourites, new, copy, rename, delete, the
filter, a config that changes on disk, and runs started from the UI and from another terminal."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable
from tui_helpers import TuiWorkspace, drive, until

from bctui.engine.config import load_config
from bctui.engine.runs import state as st
from bctui.store import ProfileStore
from bctui.tui.app import BctuiApp

HAND_WRITTEN = """\
# Our Braze connections — edited by hand, keep this comment.
[store]
url = "sqlite:///profiles.db"

[[connection]]
name = "Braze main"   # production
enabled = true
favorite = false
labels = ["prod"]

[connection.braze]
endpoint = "https://rest.iad-01.braze.com"   # US-01
api_key = "secret:braze-main"

[[connection]]
name = "Staging"
labels = ["test"]
braze = { endpoint = "https://rest.fra-01.braze.eu", api_key = "env:BRAZE_STAGING_KEY" }
"""


def table(app: BctuiApp) -> DataTable[object]:
    return app.screen.query_one("#connections", DataTable)


def names(app: BctuiApp) -> list[str]:
    t = table(app)
    return [
        str(t.coordinate_to_cell_key(Coordinate(row, 0)).row_key.value)
        for row in range(t.row_count)
    ]


def test_space_toggles_one_line_and_keeps_the_comments(workspace: TuiWorkspace) -> None:
    path = workspace.write_config(HAND_WRITTEN)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        assert names(app) == ["Braze main", "Staging"]
        await pilot.press("space")  # Braze main: on → off
        await until(pilot, lambda: not app.config.connections[0].enabled)
        await pilot.press("down", "space", "f")  # Staging: off → on, favourite

    drive(app, scenario)
    text = path.read_text(encoding="utf-8")
    config = load_config(path)
    assert [c.enabled for c in config.connections] == [False, True]
    assert config.connections[1].favorite
    assert text.startswith("# Our Braze connections — edited by hand, keep this comment.\n")
    assert 'name = "Braze main"   # production' in text
    assert 'endpoint = "https://rest.iad-01.braze.com"   # US-01' in text
    before = HAND_WRITTEN.splitlines()
    after = text.splitlines()
    changed = [line for line in after if line not in before]
    assert "enabled = false" in changed[0]
    assert all("enabled" in line or "favorite" in line for line in changed), changed


def test_filter_by_label_and_escape_clears_it(workspace: TuiWorkspace) -> None:
    workspace.write_config(HAND_WRITTEN)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("slash", "t", "e", "s", "t")
        await until(pilot, lambda: names(app) == ["Staging"])
        await pilot.press("enter")  # back to the table, filter kept
        assert names(app) == ["Staging"]
        await pilot.press("escape")
        await until(pilot, lambda: names(app) == ["Braze main", "Staging"])

    drive(app, scenario)


def test_new_copy_and_delete_write_the_file(workspace: TuiWorkspace) -> None:
    path = workspace.write_config(HAND_WRITTEN)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("n")
        await pilot.press(*"Loyalty sync", "enter")
        await until(pilot, lambda: app.config.connection("Loyalty sync") is not None)
        await pilot.press("escape")  # back from its setup screen
        await until(pilot, lambda: "Loyalty sync" in names(app))
        # copy the first connection
        table(app).move_cursor(row=names(app).index("Braze main"))
        await pilot.press("c")
        await pilot.press("home", "ctrl+k")  # Input: to the start, delete to the end
        await pilot.press(*"Braze copy", "enter")
        await until(pilot, lambda: app.config.connection("Braze copy") is not None)
        # delete Staging, confirming
        table(app).move_cursor(row=names(app).index("Staging"))
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await until(pilot, lambda: app.config.connection("Staging") is None)

    drive(app, scenario)
    config = load_config(path)
    assert [c.name for c in config.connections] == ["Braze main", "Loyalty sync", "Braze copy"]
    new = config.connection("Loyalty sync")
    assert new is not None and new.braze.api_key == "secret:loyalty-sync-braze"
    copy = config.connection("Braze copy")
    assert copy is not None and not copy.enabled and copy.labels == ("prod",)
    assert "# Our Braze connections — edited by hand, keep this comment." in path.read_text()


def test_duplicate_name_is_refused_in_the_prompt(workspace: TuiWorkspace) -> None:
    path = workspace.write_config(HAND_WRITTEN)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("n", *"staging", "enter")
        await pilot.pause()
        error = app.screen.query_one("#prompt-error")
        assert "exists" in str(error.render())
        await pilot.press("escape")

    drive(app, scenario)
    assert path.read_text(encoding="utf-8") == HAND_WRITTEN


def test_a_change_on_disk_is_noticed_and_never_overwritten(workspace: TuiWorkspace) -> None:
    path = workspace.write_config(HAND_WRITTEN)
    app = workspace.app(poll_seconds=0.1)

    async def scenario(pilot: Pilot[None]) -> None:
        edited = HAND_WRITTEN.replace('labels = ["test"]', 'labels = ["test", "eu"]')
        path.write_text(edited, encoding="utf-8")
        await until(pilot, lambda: app.config.connections[1].labels == ("test", "eu"))
        # and a change made between the read and a save is refused, then reloaded
        path.write_text(edited.replace("enabled = true", "enabled = true\nfavorite = true", 1)
                        .replace("favorite = false\n", ""), encoding="utf-8")  # fmt: skip
        assert app.workspace is not None
        base = app.config
        import dataclasses

        conn = base.connections[0]
        new = dataclasses.replace(
            base, connections=(dataclasses.replace(conn, labels=("x",)), *base.connections[1:])
        )
        issues = app.try_save(base, new)
        assert issues and "changed on disk" in issues[0].message
        assert app.config.connections[0].favorite  # reloaded what is on disk

    drive(app, scenario)
    assert 'labels = ["prod"]' in path.read_text(encoding="utf-8")


def test_no_config_file_starts_empty_and_the_first_save_creates_it(
    workspace: TuiWorkspace,
) -> None:
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        empty = app.screen.query_one("#connections-empty")
        assert "press n" in str(empty.render())
        await pilot.press("n", *"First", "enter")
        await until(pilot, lambda: workspace.paths.config.exists())

    drive(app, scenario)
    assert [c.name for c in load_config(workspace.paths.config).connections] == ["First"]


def test_an_invalid_config_shows_its_problems_and_reloads_when_fixed(
    workspace: TuiWorkspace,
) -> None:
    path = workspace.write_config(HAND_WRITTEN.replace('name = "Staging"', 'nmae = "Staging"'))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        text = " ".join(str(w.render()) for w in app.screen.query(".problem"))
        assert "nmae" in text and "did you mean" in text
        path.write_text(HAND_WRITTEN, encoding="utf-8")
        await pilot.press("r")
        await until(pilot, lambda: app.screen.query("#connections"))

    drive(app, scenario)


def test_run_now_from_the_ui_and_a_run_from_another_terminal_show_live(
    live_workspace: Callable[..., TuiWorkspace], tmp_path: Path
) -> None:
    workspace = live_workspace(
        goal=[
            {
                "type": "export",
                "name": "everyone out",
                "segment": "all",
                "allow_create": True,
                "identifiers": [[{"property": "braze_external_id", "braze": "external_id"}]],
                "mappings": [{"source": "property", "value": "email", "braze": "email"}],
            }
        ]
    )
    config = workspace.paths.config
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text + '\n[[segment]]\nname = "all"\nmatch = "all"\n'
        'rules = [{ property = "braze_external_id", op = "exists" }]\n',
        encoding="utf-8",
    )
    workspace.paths.ensure_state_dir()
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store:
        from bctui.store import ProfileWrite

        with store.transaction() as tx:
            for i in range(50):
                tx.apply(ProfileWrite(None, updates=[
                    ("braze_external_id", "set", f"u{i}"), ("email", "set", f"u{i}@example.com")
                ]))  # fmt: skip
    app = workspace.app(poll_seconds=0.1)

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.press("r")
        await until(pilot, lambda: app.runs.status("Braze main") in ("RUNNING", "FINISHED"))
        await until(pilot, lambda: app.runs.status("Braze main") == "FINISHED", timeout=60)
        first = app.runs.latest["Braze main"].id
        # a run from another terminal appears in the open UI
        cli = subprocess.Popen(
            [sys.executable, "-m", "bctui", "--config", str(config), "--state-dir",
             str(workspace.paths.state_dir), "run", "Braze main", "--full"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        await until(pilot, lambda: app.runs.latest["Braze main"].id != first, timeout=30)
        assert cli.wait(timeout=60) == 0
        await until(pilot, lambda: app.runs.status("Braze main") == "FINISHED", timeout=30)

    drive(app, scenario)
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store:
        runs = st.list_runs(store, "Braze main")
    assert [r.state for r in runs] == ["FINISHED", "FINISHED"]
    assert runs[1].started_by == "ui" and runs[0].started_by == "cli"


def test_names_with_brackets_show_as_written(workspace: TuiWorkspace) -> None:
    """Names are data, not markup: `[/x]` would crash a markup parser, `[v2]` would vanish."""
    path = workspace.write_config(
        '[[connection]]\nname = "Crash [/x]"\nlabels = ["[b]x[/b]"]\n'
        'braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "env:K" }\n'
        '[[connection]]\nname = "Loyalty [v2]"\n'
        'braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "env:K2" }\n'
    )
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        assert names(app) == ["Crash [/x]", "Loyalty [v2]"]
        cells = [str(table(app).get_cell(name, "name")) for name in names(app)]
        assert cells == ["Crash [/x]", "Loyalty [v2]"]
        assert str(table(app).get_cell("Crash [/x]", "labels")) == "[b]x[/b]"
        await pilot.press("f")  # a notification naming it
        await until(pilot, lambda: app.config.connections[0].favorite)
        await pilot.press("d")
        title = lambda: str(app.screen.query_one(".modal-title").render())  # noqa: E731
        await until(pilot, lambda: "Crash [/x]" in title())
        await pilot.press("n")

    drive(app, scenario)
    assert "Crash [/x]" in path.read_text(encoding="utf-8")
