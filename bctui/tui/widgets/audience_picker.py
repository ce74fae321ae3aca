"""The import goal's audience: Braze segments fetched live (type to filter, details of the
highlighted one beside or below the list), and an optional filter on campaign receivers.

Workers only fetch and post messages; every answer carries what it was asked for, and is shown
only while it still matches what is on screen.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Label, OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from bctui.engine import clients, lookups
from bctui.engine.models import Audience, Connection
from bctui.engine.secrets import SecretsFile
from bctui.errors import BctuiError
from bctui.secret import Secret

if TYPE_CHECKING:
    from bctui.braze import Campaign, CampaignDetails, Segment, SegmentDetails

REST_SECONDS = 0.3
"""How long the highlight rests on a segment before its details are asked for."""
KEY_FIX = "set the API key in the Setup tab"


def _key(conn: Connection, secrets: SecretsFile) -> Secret:
    """The connection's key, or a BctuiError that says where to set it."""
    try:
        return clients.braze_key(conn, secrets)
    except BctuiError as exc:
        raise BctuiError(exc.message, fix=KEY_FIX) from None


def _error_text(exc: BaseException) -> str:
    """Braze's own words for a Braze error; the message and fix for ours."""
    from bctui.braze import BrazeError

    if isinstance(exc, BrazeError):
        return f"Braze: {exc.render()}"
    if isinstance(exc, BctuiError):
        return exc.render()
    return f"{type(exc).__name__}: {exc}"


def _date(text: str | None) -> str:
    return (text or "")[:10] or "—"


class AudiencePicker(Vertical):
    """Pick a Braze segment; posts `Chosen` with the new Audience."""

    DEFAULT_CSS = """
    AudiencePicker {
        height: auto;
        #audience-chosen { padding: 0 1; }
        #audience-body { height: auto; layout: vertical; }
        &.-wide #audience-body { layout: horizontal; }
        #audience-left { height: auto; width: 1fr; }
        #audience-list { height: 7; background: $surface; }
        &.-wide #audience-list { height: 12; }
        #audience-message { height: 7; padding: 1 2; color: $text-muted; background: $surface; }
        #audience-message.-error { color: $error; }
        #audience-details { height: auto; min-height: 3; padding: 0 1; color: $text-muted; }
        &.-wide #audience-message { height: 12; }
        &.-wide #audience-details { width: 1fr; height: 13; border-left: vkey $border-blurred; }
    }
    """

    @dataclass
    class Chosen(Message):
        """A segment was chosen."""

        audience: Audience

    @dataclass
    class SegmentsLoaded(Message):
        """/segments/list answered (request `request`), or failed with `error`."""

        request: int
        segments: Sequence[Segment]
        error: str = ""

    @dataclass
    class DetailsLoaded(Message):
        """/segments/details of `segment_id` answered, or failed with `error`."""

        segment_id: str
        details: SegmentDetails | None
        error: str = ""

    def __init__(
        self,
        connection: Connection,
        secrets: SecretsFile,
        audience: Audience | None,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.connection = connection
        self.secrets = secrets
        self.audience = audience
        self.segments: list[Segment] = []
        self._request = 0
        self._details: dict[str, SegmentDetails | str] = {}
        self._rest_timer: Timer | None = None
        self.requested_details: list[str] = []
        """Segment ids whose details were asked for, in order (tests follow the picker by it)."""
        self.stale_dropped = 0
        """Answers that arrived for a segment no longer highlighted."""

    def compose(self) -> ComposeResult:
        yield Label("", id="audience-chosen")
        with Horizontal(id="audience-body"):
            with Vertical(id="audience-left"):
                yield Input(placeholder="type to filter segments · enter picks",
                            id="audience-filter", compact=True,
                            tooltip="Type to filter the segments; escape clears the filter, "
                            "enter picks the highlighted one")  # fmt: skip
                yield OptionList(id="audience-list", compact=True)
                yield Static("", id="audience-message")
            yield Static("", id="audience-details")

    def on_mount(self) -> None:
        self._show_chosen()
        self.reload()

    def on_resize(self) -> None:
        self.set_class(self.app.size.width >= 120, "-wide")

    # -- the list ------------------------------------------------------------------------

    def reload(self) -> None:
        """Fetch the segment list again."""
        self._request += 1
        self._message("loading segments from Braze…")
        self.query_one("#audience-message", Static).loading = True
        self._fetch(self._request)

    @work(thread=True, exclusive=True, exit_on_error=False, group="audience-list")
    def _fetch(self, request: int) -> None:
        try:
            key = _key(self.connection, self.secrets)
            found = lookups.fetch_segments(self.connection.braze.endpoint, key)
        except Exception as exc:  # every failure becomes the list's message
            self.post_message(self.SegmentsLoaded(request, [], _error_text(exc)))
            return
        self.post_message(self.SegmentsLoaded(request, found))

    @on(SegmentsLoaded)
    def _loaded(self, message: SegmentsLoaded) -> None:
        message.stop()
        if message.request != self._request:
            return
        self.query_one("#audience-message", Static).loading = False
        if message.error:
            self.segments = []
            self._message(message.error, error=True)
            return
        self.segments = sorted(message.segments, key=lambda s: s.name.casefold())
        self._fill()

    def _message(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#audience-message", Static)
        message.update(Text(text))  # Braze's words may hold brackets: never markup
        message.set_class(error, "-error")
        message.display = True
        self.query_one("#audience-list", OptionList).display = False

    def shown_segments(self) -> list[Segment]:
        """The segments the filter lets through."""
        folded = self.query_one("#audience-filter", Input).value.strip().casefold()
        return [s for s in self.segments if folded in s.name.casefold()]

    def _fill(self) -> None:
        shown = self.shown_segments()
        options = self.query_one("#audience-list", OptionList)
        if not shown:
            what = "no segment matches the filter" if self.segments else "Braze has no segments"
            self._message(what)
            return
        self.query_one("#audience-message", Static).display = False
        options.display = True
        chosen = self.audience.segment_id if self.audience else ""
        options.set_options(
            Option(Text(("✓ " if s.id == chosen else "  ") + s.name), id=s.id) for s in shown
        )
        ids = [s.id for s in shown]
        options.highlighted = ids.index(chosen) if chosen in ids else 0

    @on(Input.Changed, "#audience-filter")
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        if self.segments:
            self._fill()

    def on_key(self, event: events.Key) -> None:
        """Escape clears a filter first; with none, it goes on to the screen's binding (back).

        A key handler, not a binding: a binding of our own would hide the screen's escape
        (Back) from the footer whenever the filter has the focus."""
        field = self.query_one("#audience-filter", Input)
        if event.key == "escape" and field.value:
            event.stop()
            event.prevent_default()
            field.value = ""

    @on(Input.Submitted, "#audience-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        options = self.query_one("#audience-list", OptionList)
        if options.display and options.highlighted is not None:
            self._choose(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected, "#audience-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._choose(event.option.id)

    def _choose(self, segment_id: str | None) -> None:
        segment = next((s for s in self.segments if s.id == segment_id), None)
        if segment is None:
            return
        campaigns = self.audience.campaign_ids if self.audience else ()
        self.audience = Audience(segment.id, segment.name, campaigns)
        self._show_chosen()
        self._fill()
        self.post_message(self.Chosen(self.audience))

    def _show_chosen(self) -> None:
        label = self.query_one("#audience-chosen", Label)
        if self.audience is None or not self.audience.segment_id:
            label.update("Audience: none chosen yet — pick a Braze segment below")
            return
        name = self.audience.name or "(unnamed)"
        label.update(
            Text.assemble("Audience: ", (name, "bold"), "  ", (self.audience.segment_id, "dim"))
        )

    # -- details of the highlighted segment ----------------------------------------------

    @property
    def highlighted_id(self) -> str | None:
        """The id of the highlighted segment, if the list shows one."""
        options = self.query_one("#audience-list", OptionList)
        if not options.display or options.highlighted is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    @on(OptionList.OptionHighlighted, "#audience-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        segment_id = event.option.id
        if segment_id is None:
            return
        if self._rest_timer is not None:
            self._rest_timer.stop()
        cached = self._details.get(segment_id)
        if cached is not None:
            self._show_details(segment_id, cached)
            return
        name = next((s.name for s in self.segments if s.id == segment_id), "")
        self.query_one("#audience-details", Static).update(Text.assemble((name, "bold"), "\n…"))
        self._rest_timer = self.set_timer(REST_SECONDS, lambda: self._rested(segment_id))

    def _rested(self, segment_id: str) -> None:
        if self.highlighted_id != segment_id:
            return
        self.requested_details.append(segment_id)
        self.run_worker(
            lambda: self._fetch_details(segment_id),
            thread=True,
            exit_on_error=False,
            group="audience-details",
            name=f"details {segment_id}",
        )

    def _fetch_details(self, segment_id: str) -> None:
        try:
            key = _key(self.connection, self.secrets)
            found = lookups.fetch_segment_details(self.connection.braze.endpoint, key, segment_id)
        except Exception as exc:
            self.post_message(self.DetailsLoaded(segment_id, None, _error_text(exc)))
            return
        self.post_message(self.DetailsLoaded(segment_id, found))

    @on(DetailsLoaded)
    def _details_loaded(self, message: DetailsLoaded) -> None:
        message.stop()
        result: SegmentDetails | str = message.details or message.error
        self._details[message.segment_id] = result
        if message.segment_id != self.highlighted_id:
            self.stale_dropped += 1
            return
        self._show_details(message.segment_id, result)

    def _show_details(self, segment_id: str, details: SegmentDetails | str) -> None:
        panel = self.query_one("#audience-details", Static)
        if isinstance(details, str):
            panel.update(Content.from_markup("[$error]$text[/]", text=details))
            return
        segment = next((s for s in self.segments if s.id == segment_id), None)
        tracking = ""
        if segment is not None and segment.analytics_tracking_enabled is not None:
            state = "on" if segment.analytics_tracking_enabled else "off"
            tracking = f"analytics tracking {state}"
        about = [
            tracking,
            f"tags: {', '.join(details.tags)}" if details.tags else "",
            f"teams: {', '.join(details.teams)}" if details.teams else "",
        ]
        # Every piece is Braze's data (names, descriptions, tags): Text, never markup.
        lines = [
            Text(details.name, style="bold"),
            Text(details.text_description or details.description or ""),
            Text(" · ".join(a for a in about if a)),
            Text(f"created {_date(details.created_at)} · updated {_date(details.updated_at)}"),
            Text(segment_id, style="dim"),
        ]
        panel.update(Text("\n").join(line for line in lines if line.plain))

    @property
    def details_text(self) -> str:
        """What the details panel shows (plain text)."""
        return str(self.query_one("#audience-details", Static).render())


class CampaignFilter(Vertical):
    """Narrow an audience to receivers of any chosen campaign; fetched on first show only."""

    DEFAULT_CSS = """
    CampaignFilter {
        height: auto;
        #campaign-list { height: 8; background: $surface; }
        #campaign-message { padding: 0 2; color: $text-muted; }
        #campaign-message.-error { color: $error; }
        #campaign-details { color: $text-muted; padding: 0 1; height: auto; }
    }
    """

    @dataclass
    class Changed(Message):
        """The chosen campaigns changed."""

        campaign_ids: tuple[str, ...]

    @dataclass
    class CampaignsLoaded(Message):
        """/campaigns/list answered, or failed with `error`."""

        campaigns: Sequence[Campaign]
        error: str = ""

    @dataclass
    class CampaignDetailsLoaded(Message):
        """/campaigns/details of one campaign answered (or failed)."""

        campaign_id: str
        details: CampaignDetails | None
        error: str = ""

    def __init__(
        self,
        connection: Connection,
        secrets: SecretsFile,
        chosen: Sequence[str],
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.connection = connection
        self.secrets = secrets
        self.chosen: tuple[str, ...] = tuple(chosen)
        self.loaded = False
        self._details: dict[str, Text] = {}
        self._rest_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("loading campaigns from Braze…", id="campaign-message")
        yield SelectionList[str](id="campaign-list", compact=True)
        yield Static("", id="campaign-details")

    def on_mount(self) -> None:
        self.query_one("#campaign-list").display = False

    def load(self) -> None:
        """Fetch the campaign list (once)."""
        if self.loaded:
            return
        self.loaded = True
        self.query_one("#campaign-message", Static).loading = True
        self._fetch()

    @work(thread=True, exclusive=True, exit_on_error=False, group="campaign-list")
    def _fetch(self) -> None:
        try:
            key = _key(self.connection, self.secrets)
            found = lookups.fetch_campaigns(self.connection.braze.endpoint, key)
        except Exception as exc:
            self.post_message(self.CampaignsLoaded([], _error_text(exc)))
            return
        self.post_message(self.CampaignsLoaded(found))

    @on(CampaignsLoaded)
    def _loaded(self, message: CampaignsLoaded) -> None:
        message.stop()
        text = self.query_one("#campaign-message", Static)
        text.loading = False
        if message.error:
            text.update(Text(message.error))
            text.add_class("-error")
            self.loaded = False  # showing the filter again retries
            return
        text.update("receivers of any checked campaign (space checks) — none: the whole segment")
        listing = self.query_one("#campaign-list", SelectionList)
        ordered = sorted(message.campaigns, key=lambda c: c.name.casefold())
        known = {c.id for c in ordered}
        listing.add_options(
            [(Text(c.name), c.id, c.id in self.chosen) for c in ordered]
            + [
                (Text(f"(unknown campaign {cid})"), cid, True)
                for cid in self.chosen
                if cid not in known
            ]
        )
        listing.display = True
        if self.display and listing.option_count:
            listing.highlighted = 0
            listing.focus()  # the user just asked for the list

    @on(SelectionList.SelectedChanged, "#campaign-list")
    def _changed(self, event: SelectionList.SelectedChanged[Any]) -> None:
        event.stop()
        chosen = tuple(str(v) for v in event.selection_list.selected)
        if chosen != self.chosen:
            self.chosen = chosen
            self.post_message(self.Changed(chosen))

    @on(SelectionList.SelectionHighlighted, "#campaign-list")
    def _highlighted(self, event: SelectionList.SelectionHighlighted[Any]) -> None:
        event.stop()
        campaign_id = str(event.selection.value)
        if self._rest_timer is not None:
            self._rest_timer.stop()
        if campaign_id in self._details:
            self.query_one("#campaign-details", Static).update(self._details[campaign_id])
            return
        self.query_one("#campaign-details", Static).update(Text("…"))
        self._rest_timer = self.set_timer(REST_SECONDS, self._rested_on(campaign_id))

    def _rested_on(self, campaign_id: str) -> Callable[[], None]:
        def rested() -> None:
            listing = self.query_one("#campaign-list", SelectionList)
            if listing.highlighted is None:
                return
            if str(listing.get_option_at_index(listing.highlighted).value) != campaign_id:
                return
            self.run_worker(lambda: self._fetch_details(campaign_id), thread=True,
                            exit_on_error=False, group="campaign-details")  # fmt: skip

        return rested

    def _fetch_details(self, campaign_id: str) -> None:
        try:
            key = _key(self.connection, self.secrets)
            found = lookups.fetch_campaign_details(self.connection.braze.endpoint, key, campaign_id)
        except Exception as exc:
            self.post_message(self.CampaignDetailsLoaded(campaign_id, None, _error_text(exc)))
            return
        self.post_message(self.CampaignDetailsLoaded(campaign_id, found))

    @on(CampaignDetailsLoaded)
    def _details_loaded(self, message: CampaignDetailsLoaded) -> None:
        message.stop()
        d = message.details
        # Braze's words (channels, description, errors) as Text, never as markup.
        if d is None:
            text = Text(message.error)
        else:
            parts = [
                ", ".join(d.channels) or "no channels",
                f"last sent {_date(d.last_sent)}",
                "draft" if d.draft else ("enabled" if d.enabled else "stopped"),
            ]
            text = Text(" · ".join(parts) + (f"\n{d.description}" if d.description else ""))
        self._details[message.campaign_id] = text
        listing = self.query_one("#campaign-list", SelectionList)
        if listing.highlighted is None:
            return
        if str(listing.get_option_at_index(listing.highlighted).value) == message.campaign_id:
            self.query_one("#campaign-details", Static).update(text)
