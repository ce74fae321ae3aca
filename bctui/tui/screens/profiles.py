"""Find a profile by id, PROPERTY=VALUE or any value (the rules of bctui.store.search), and show
its properties, segments, permission level, interactions and change sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from bctui.store.model import Profile
from bctui.store.search import Search, search_profiles
from bctui.tui.app import BctuiApp
from bctui.tui.format import ago, stamp

_PLACEHOLDER = "profile id, PROPERTY=VALUE, or a value (e-mail, external id, phone…)"


class ProfilesScreen(Screen[None]):
    """Look up profiles in the local store."""

    CSS_PATH = "profiles.tcss"
    HELP_TITLE = "Profiles"
    AUTO_FOCUS = "#profile-search"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+f", "search", "Search", id="profiles-search",
                tooltip="Put the cursor in the search box"),
        Binding("ctrl+l", "results", "Results", id="profiles-results",
                tooltip="Move to the list of matching profiles"),
        Binding("ctrl+o", "properties", "Properties", id="profiles-properties",
                tooltip="Move to the shown profile's properties"),
        Binding("escape", "back", "Back", id="profiles-back", tooltip="Back to the connections"),
    ]  # fmt: skip

    @dataclass
    class Searched(Message):
        """What a search found: the matches and, when exactly one matched, that profile."""

        text: str
        search: Search
        profiles: dict[str, Profile]

    @dataclass
    class Loaded(Message):
        """One profile read from the store, with the names of the segments it is in."""

        profile_id: str
        profile: Profile | None
        segments: list[str]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.query_text = query
        """The search on screen (results for another text are stale and dropped)."""
        self.shown: Profile | None = None
        """The profile whose details are shown."""
        self.search: Search | None = None
        self._wanted = ""

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Label(" Profiles ─ find one by id, PROPERTY=VALUE or any value", id="profiles-header")
        yield Input(self.query_text, placeholder=_PLACEHOLDER, id="profile-search")
        yield Label("", id="profile-message", markup=False)  # quotes what was typed
        with Horizontal(id="profiles-body"):
            with Vertical(id="profile-results-box") as box:
                box.border_title = "Matches"
                yield DataTable(id="profile-results", cursor_type="row", zebra_stripes=False)
            with Vertical(id="profile-detail") as detail:
                detail.border_title = "Profile"
                yield Static("", id="profile-summary")
                yield DataTable(id="profile-props", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        results = self.query_one("#profile-results", DataTable)
        results.add_column("Profile id", key="id")
        results.add_column("Matched in", key="matched")
        results.add_column("Updated", key="updated")
        props = self.query_one("#profile-props", DataTable)
        props.add_column("Property", key="name")
        props.add_column("Values", key="values")
        self.query_one("#profile-results-box").display = False
        self.query_one("#profile-detail").display = False
        self._message(_hint(), muted=True)
        if self.query_text:
            self._search(self.query_text)

    def on_resize(self) -> None:
        self.query_one("#profiles-body").set_class(self.size.width >= 120, "-wide")

    def _message(self, text: str, *, muted: bool = False, error: bool = False) -> None:
        label = self.query_one("#profile-message", Label)
        label.update(text)
        label.set_class(muted, "-muted")
        label.set_class(error, "-error")

    # -- searching -------------------------------------------------------------------------

    @on(Input.Submitted, "#profile-search")
    def _submitted(self, event: Input.Submitted) -> None:
        self._search(event.value)

    def _search(self, text: str) -> None:
        self.query_text = text.strip()
        if not self.query_text:
            self._message(_hint(), muted=True)
            return
        self._message(f"looking for {self.query_text}…", muted=True)
        self._run_search(self.query_text)

    @work(thread=True, exclusive=True, exit_on_error=False, group="profile-search")
    def _run_search(self, text: str) -> None:
        workspace = self.bctui.workspace
        assert workspace is not None
        with workspace.store() as store:
            search = search_profiles(store, text)
            profiles = {m.profile_id: store.get(m.profile_id) for m in search.matches}
        found = {pid: p for pid, p in profiles.items() if p is not None}
        self.post_message(self.Searched(text, search, found))

    @on(Searched)
    def _searched(self, message: Searched) -> None:
        if message.text != self.query_text:
            return  # an answer to an older search
        search = message.search
        self.search = search
        matches = search.matches
        results = self.query_one("#profile-results", DataTable)
        results.clear()
        box = self.query_one("#profile-results-box")
        if not matches:
            box.display = False
            self.query_one("#profile-detail").display = False
            self.shown = None
            self._message(f"{search.message} — {_fix(search)}", error=True)
            return
        now = self.bctui.clock()
        for match in matches:
            profile = message.profiles.get(match.profile_id)
            updated = ago(profile.updated_at.timestamp(), now) if profile else ""
            matched = ", ".join(match.properties) or "id"
            # Profile data and ids are shown as they are, never read as markup.
            results.add_row(Text(match.profile_id), Text(matched), Text(updated),
                            key=match.profile_id)  # fmt: skip
        box.display = len(matches) > 1
        box.remove_class("-collapsed")
        more = f" (oldest {len(matches)} shown)" if search.more else ""
        if len(matches) == 1:
            self._message(search.message)
            self._show(matches[0].profile_id)
        else:
            self._message(f"{search.message}{more} — enter shows one")
            self.query_one("#profile-detail").display = False
            self.shown = None
            results.focus()

    @on(DataTable.RowSelected, "#profile-results")
    def _result_chosen(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._show(str(event.row_key.value))

    def _show(self, profile_id: str) -> None:
        self._wanted = profile_id
        self._load(profile_id)

    @work(thread=True, exclusive=True, exit_on_error=False, group="profile-load")
    def _load(self, profile_id: str) -> None:
        workspace = self.bctui.workspace
        assert workspace is not None
        segments = self.bctui.config.segments
        with workspace.store() as store:
            profile = store.get(profile_id)
            names = [s.name for s in segments if profile and store.in_segment(profile_id, s)]
        self.post_message(self.Loaded(profile_id, profile, names))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        if message.profile_id != self._wanted:
            return
        profile = message.profile
        detail = self.query_one("#profile-detail", Vertical)
        if profile is None:
            self._message(f'profile "{message.profile_id}" is no longer in the store', error=True)
            detail.display = False
            return
        self.shown = profile
        detail.display = True
        self.query_one("#profile-summary", Static).update(self._summary(profile, message.segments))
        props = self.query_one("#profile-props", DataTable)
        props.clear()
        for name in sorted(profile.properties):
            values = " | ".join(str(v) for v in profile.properties[name])
            props.add_row(Text(name), Text(values), key=name)
        if not profile.properties:
            props.add_row(Text("no properties", style="dim"), Text(""))
        # The list gives the profile room until it has the focus again (ctrl+l).
        self.query_one("#profile-results-box").add_class("-collapsed")
        if self.size.width < 120 and self.focused is self.query_one("#profile-results"):
            props.focus()

    def _summary(self, profile: Profile, segments: list[str]) -> Text:
        now = self.bctui.clock()
        created = profile.created_at.timestamp()
        updated = profile.updated_at.timestamp()
        when = f"{stamp(created)} ({ago(created, now)})"
        if updated != created:
            when += f" · updated {stamp(updated)} ({ago(updated, now)})"
        rows = [
            ("id", profile.id),
            ("permission", f"{profile.permission_level} · change seq {profile.seq}"),
            ("segments", ", ".join(segments) or "—"),
            ("interactions", ", ".join(profile.interactions_viewed) or "—"),
            ("created", when),
        ]
        text = Text()
        for index, (key, value) in enumerate(rows):
            if index:
                text.append("\n")
            text.append(f"{key:<13}", style="bold")
            text.append(value)
        return text

    # -- keys ------------------------------------------------------------------------------

    def action_search(self) -> None:
        """Focus the search box."""
        self.query_one("#profile-search", Input).focus()

    def action_results(self) -> None:
        """Focus the results list (when there is one)."""
        if self.query_one("#profile-results-box").display:
            self.query_one("#profile-results", DataTable).focus()

    def action_properties(self) -> None:
        """Focus the shown profile's properties."""
        if self.shown is not None:
            self.query_one("#profile-props", DataTable).focus()

    def action_back(self) -> None:
        """Back to the previous screen."""
        self.dismiss()

    def highlighted_result(self) -> str | None:
        """The id of the highlighted match, if any."""
        table = self.query_one("#profile-results", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return None if key.value is None else str(key.value)


def _hint() -> str:
    return ("type a profile id, PROPERTY=VALUE (email=jane@example.com) or just a value, "
            "then enter")  # fmt: skip


def _fix(search: Search) -> str:
    if search.kind == "property":
        return f"check the value, or search for it in any property: {search.value}"
    return "check the spelling; values match exactly (PROPERTY=VALUE narrows to one property)"
