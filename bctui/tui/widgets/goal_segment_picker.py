"""The export goal's local segment picker: the config's segments, each with its live member count
(counted in a worker, numbers appearing as they come)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from bctui.store import SegmentDef, Store

StoreOpener = Callable[[], AbstractContextManager[Store]]


class SegmentPicker(Vertical):
    """Pick a local segment; posts `Chosen` with its name."""

    DEFAULT_CSS = """
    SegmentPicker {
        height: auto;
        #segment-chosen { padding: 0 1; }
        #segment-list { height: auto; max-height: 8; background: $surface; }
        #segment-empty { color: $text-muted; padding: 0 2; }
    }
    """

    @dataclass
    class Chosen(Message):
        """A segment was chosen."""

        name: str

    @dataclass
    class Counted(Message):
        """One segment's member count (or why it could not be counted)."""

        name: str
        count: int | None
        error: str = ""

    def __init__(
        self,
        segments: Sequence[SegmentDef],
        chosen: str,
        open_store: StoreOpener,
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.segments = list(segments)
        self.chosen = chosen
        self.open_store = open_store
        self.counts: dict[str, int | str] = {}

    def compose(self) -> ComposeResult:
        yield Label("", id="segment-chosen")
        yield OptionList(id="segment-list", compact=True)
        yield Label(
            "No [[segment]] in connections.toml yet: add one (Segments, from the palette) first.",
            id="segment-empty",
        )

    def on_mount(self) -> None:
        self._fill()
        self._show_chosen()
        if self.segments:
            self._count(list(self.segments))

    @work(thread=True, exclusive=True, exit_on_error=False, group="segment-counts")
    def _count(self, segments: list[SegmentDef]) -> None:
        with self.open_store() as store:
            for segment in segments:
                try:
                    number: int | None = store.count(segment)
                    error = ""
                except Exception as exc:  # one bad segment must not hide the others' counts
                    number, error = None, str(exc)
                self.post_message(self.Counted(segment.name, number, error))

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        message.stop()
        self.counts[message.name] = message.count if message.count is not None else "?"
        self._fill()

    def _prompt(self, segment: SegmentDef) -> Text:
        mark = "✓ " if segment.name.casefold() == self.chosen.casefold() else "  "
        count = self.counts.get(segment.name)
        shown = "counting…" if count is None else (
            f"{count:,} members" if isinstance(count, int) else "count failed"
        )  # fmt: skip
        text = Text(f"{mark}{segment.name} · {shown}")
        text.stylize("dim", len(mark) + len(segment.name))
        return text

    def _fill(self) -> None:
        options = self.query_one("#segment-list", OptionList)
        self.query_one("#segment-empty").display = not self.segments
        options.display = bool(self.segments)
        highlighted = options.highlighted
        options.set_options(Option(self._prompt(s), id=s.name) for s in self.segments)
        names = [s.name.casefold() for s in self.segments]
        if highlighted is None and self.chosen.casefold() in names:
            highlighted = names.index(self.chosen.casefold())
        if self.segments:
            options.highlighted = highlighted if highlighted is not None else 0

    def _show_chosen(self) -> None:
        label = self.query_one("#segment-chosen", Label)
        if not self.chosen:
            label.update("Segment: none chosen yet — pick one below (enter)")
        else:
            label.update(Text.assemble("Segment: ", (self.chosen, "bold")))

    @on(OptionList.OptionSelected, "#segment-list")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is None:
            return
        self.chosen = event.option.id
        self._show_chosen()
        self._fill()
        self.post_message(self.Chosen(self.chosen))
