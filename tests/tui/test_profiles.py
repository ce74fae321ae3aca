"""The profiles screen over a real store: find by id, by PROPERTY=VALUE, by a bare value; several
matches as a list; no match as a clear message."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Static
from tui_helpers import TuiWorkspace, drive, until

from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.app import BctuiApp
from bctui.tui.screens.profiles import ProfilesScreen

CONFIG = """\
[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "vip"
rules = [{ property = "lifetime_value", op = "gte", value = 1000 }]

[[segment]]
name = "dutch"
rules = [{ property = "country", op = "eq", value = "NL" }]
"""


def setup(workspace: TuiWorkspace) -> TuiWorkspace:
    """Three profiles with fixed ids."""
    workspace.write_config(CONFIG)
    workspace.paths.ensure_state_dir()
    writes = [
        ProfileWrite("11111111-aaaa-7000-8000-000000000001", [
            ("email", "set", "ada@example.com"), ("lifetime_value", "set", 2400),
            ("country", "set", "NL"), ("interests", "set", ["news", "cycling"]),
        ], permission_level="PERSONAL", interactions_viewed=["spring-sale"]),
        ProfileWrite("11111111-aaaa-7000-8000-000000000002", [
            ("email", "set", "bram@example.com"), ("lifetime_value", "set", 300),
            ("country", "set", "NL"),
        ]),
        ProfileWrite("11111111-aaaa-7000-8000-000000000003", [
            ("email", "set", "cor@example.com"), ("country", "set", "BE"),
        ]),
    ]  # fmt: skip
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store, \
            store.transaction() as tx:  # fmt: skip
        tx.apply_many(writes)
    return workspace


async def search(pilot: Pilot[None], text: str) -> ProfilesScreen:
    screen = pilot.app.screen
    if not isinstance(screen, ProfilesScreen):
        await pilot.app.push_screen(ProfilesScreen())
        screen = pilot.app.screen
    assert isinstance(screen, ProfilesScreen)
    box = screen.query_one("#profile-search", Input)
    box.focus()
    box.value = ""
    screen.search = None
    await pilot.press(*text, "enter")
    await until(pilot, lambda: screen.search is not None)
    return screen


def message(screen: ProfilesScreen) -> str:
    return str(screen.query_one("#profile-message", Label).render())


async def shown(pilot: Pilot[None], screen: ProfilesScreen, profile_id: str) -> None:
    await until(pilot, lambda: screen.shown is not None and screen.shown.id == profile_id)


def test_find_by_id_shows_everything_about_the_profile(workspace: TuiWorkspace) -> None:
    app = setup(workspace).app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await search(pilot, "11111111-aaaa-7000-8000-000000000001")
        await shown(pilot, screen, "11111111-aaaa-7000-8000-000000000001")
        summary = str(screen.query_one("#profile-summary", Static).render())
        assert "PERSONAL · change seq 1" in summary
        assert "segments     vip, dutch" in summary
        assert "interactions spring-sale" in summary
        props = screen.query_one("#profile-props", DataTable)
        rows = {str(props.get_row_at(i)[0]): str(props.get_row_at(i)[1])
                for i in range(props.row_count)}  # fmt: skip
        assert rows == {"country": "NL", "email": "ada@example.com",
                        "interests": "news | cycling", "lifetime_value": "2400"}  # fmt: skip
        assert not screen.query_one("#profile-results-box").display  # one match: no list

    drive(app, scenario)


def test_find_by_property_and_by_a_bare_email(workspace: TuiWorkspace) -> None:
    app = setup(workspace).app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await search(pilot, "email=bram@example.com")
        await shown(pilot, screen, "11111111-aaaa-7000-8000-000000000002")
        assert message(screen) == "1 profile has email=bram@example.com"
        screen = await search(pilot, "cor@example.com")
        await shown(pilot, screen, "11111111-aaaa-7000-8000-000000000003")
        assert message(screen) == '1 profile has the value "cor@example.com"'
        summary = str(screen.query_one("#profile-summary", Static).render())
        assert "segments     —" in summary and "ANONYMOUS" in summary

    drive(app, scenario)


def test_several_matches_become_a_list(workspace: TuiWorkspace) -> None:
    app = setup(workspace).app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await search(pilot, "NL")
        results = screen.query_one("#profile-results", DataTable)
        await until(pilot, lambda: results.row_count == 2)
        assert screen.query_one("#profile-results-box").display
        assert message(screen).startswith('2 profiles have the value "NL"')
        assert screen.shown is None and app.focused is results
        await pilot.press("down", "enter")
        await shown(pilot, screen, "11111111-aaaa-7000-8000-000000000002")

    drive(app, scenario)


def test_no_match_says_so(workspace: TuiWorkspace) -> None:
    app = setup(workspace).app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await search(pilot, "email=nobody@example.com")
        assert message(screen).startswith("no profile has email=nobody@example.com")
        assert not screen.query_one("#profile-detail").display
        screen = await search(pilot, "nobody")
        assert message(screen).startswith('no profile has the id or a property value "nobody"')
        assert screen.query_one("#profile-message", Label).has_class("-error")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ProfilesScreen))

    drive(app, scenario)


def test_an_empty_store_and_no_config(workspace: TuiWorkspace) -> None:
    app: BctuiApp = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await search(pilot, "ada@example.com")
        assert "no profile has" in message(screen)

    drive(app, scenario)
