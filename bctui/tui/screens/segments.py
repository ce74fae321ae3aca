"""Local segments: rules in short form, live member counts, and the export goals using each."""

from __future__ import annotations

import contextlib
import dataclasses
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
from textual.widgets import DataTable, Footer, Label, Static
from textual.widgets.data_table import CellDoesNotExist

from bctui.engine.models import Config, ExportGoal
from bctui.errors import BctuiError
from bctui.store.segments import Rule, SegmentDef
from bctui.store.values import Scalar, numeric
from bctui.tui.app import BctuiApp
from bctui.tui.screens.confirm import ConfirmModal

OP_WORDS: dict[str, str] = {
    "eq": "equals",
    "ne": "not equal",
    "in": "in",
    "contains": "contains",
    "exists": "exists",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
}
"""How each rule op reads in the editor's op list."""

_OP_SIGNS = {"eq": "=", "ne": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
COLUMNS = (("name", "Name"), ("match", "Match"), ("rules", "Rules"), ("members", "Members"),
           ("used", "Used by"))  # fmt: skip
COUNTING = "…"
WIDE = 120
"""From this width on, the detail is a side panel and the table names the goals using each."""


def value_text(value: Scalar) -> str:
    """A rule value as typed in the editor: text that would read as a number is quoted."""
    if isinstance(value, str):
        if numeric(value) is not None or value != value.strip() or "," in value or '"' in value:
            return '"' + value.replace('"', '\\"') + '"'
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{value:.1f}"
    return str(value)


def rule_text(rule: Rule) -> str:
    """One rule in short form: `lifetime_value ≥ 1000`, `country in NL, DE`."""
    if rule.op == "exists":
        return f"{rule.property} exists"
    if rule.op == "in":
        assert isinstance(rule.value, tuple)
        return f"{rule.property} in {', '.join(value_text(v) for v in rule.value)}"
    assert rule.value is not None and not isinstance(rule.value, tuple)
    sign = _OP_SIGNS.get(rule.op, rule.op)
    return f"{rule.property} {sign} {value_text(rule.value)}"


def rules_text(segment: SegmentDef) -> str:
    """All of a segment's rules in short form, joined by ` · ` (`—` for none)."""
    return " · ".join(rule_text(r) for r in segment.rules) or "—"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def users_of(config: Config, name: str) -> list[tuple[str, str]]:
    """The (connection, export goal) pairs whose goal exports the segment `name`."""
    folded = name.casefold()
    return [
        (conn.name, goal.name)
        for conn in config.connections
        for goal in conn.goals
        if isinstance(goal, ExportGoal) and goal.segment.casefold() == folded
    ]


class SegmentsScreen(Screen[None]):
    """The config's local segments with member counts computed in the background."""

    CSS_PATH = "segments.tcss"
    HELP_TITLE = "Segments"
    AUTO_FOCUS = "#segments"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "edit", "Edit", id="segments-edit",
                tooltip="Edit the segment's name, match and rules"),
        Binding("n", "new", "New", id="segments-new", tooltip="Add a segment"),
        Binding("c", "copy", "Copy", id="segments-copy",
                tooltip="Start a new segment from a copy of this one"),
        Binding("d,delete", "delete", "Delete", id="segments-delete",
                tooltip="Delete the segment (not while an export goal uses it)"),
        Binding("r", "recount", "Recount", id="segments-recount",
                tooltip="Count every segment's members again"),
        Binding("escape", "back", "Back", id="segments-back", tooltip="Back to the connections"),
    ]  # fmt: skip

    @dataclass
    class Counted(Message):
        """A segment's member count (or why it could not be counted), for one round of counts."""

        round: int
        name: str
        count: int | None
        error: str = ""

    def __init__(self) -> None:
        super().__init__()
        self._round = 0
        self._counts: dict[str, int | None] = {}
        self._errors: dict[str, str] = {}
        self._total: int | None = None
        self._width = 0

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Label("", id="segments-header", markup=False)
        with Horizontal(id="segments-body"):
            with Vertical(id="segments-box") as box:
                box.border_title = "Segments"
                yield DataTable(id="segments", cursor_type="row", zebra_stripes=False)
                yield Label("", id="segments-empty")
            yield Static("", id="segments-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.bctui.config_changed.subscribe(self, self._config_changed)
        self._rebuild()
        self.action_recount()

    def on_resize(self) -> None:
        wide = self.size.width >= WIDE
        self.query_one("#segments-body").set_class(wide, "-wide")
        if self.size.width != self._width:
            self._width = self.size.width
            self._rebuild()

    @property
    def table(self) -> DataTable[object]:
        """The segments table."""
        return self.query_one("#segments", DataTable)

    def _config_changed(self, config: Config) -> None:
        self._rebuild()
        self.action_recount()

    # -- the table -------------------------------------------------------------------------

    def _members(self, name: str) -> Text:
        if name in self._errors:
            return Text("error", style=self.app.theme_variables.get("error", "red"))
        count = self._counts.get(name)
        return Text(COUNTING if count is None else f"{count:,}", justify="right")

    def _widths(self, config: Config) -> tuple[int, int]:
        """(name column, rules column) widths that fit the table in the screen's width."""
        width = self._width or 80
        room = width - 4 - (48 if width >= WIDE else 0)  # borders, and the side panel
        names = max((len(s.name) for s in config.segments), default=4)
        name = min(max(names, 4), 24)
        used = 28 if width >= WIDE else 7
        return name, max(room - name - 5 - 9 - used - 5 * 2, 12)

    def _used_text(self, used: list[tuple[str, str]]) -> Text:
        if not used:
            return Text("—", style="dim")
        if self._width >= WIDE:
            return Text(", ".join(f"{c} / {g}" for c, g in used))
        return Text(f"{len(used)} goal" + ("s" if len(used) > 1 else ""))

    def _rebuild(self) -> None:
        table = self.table
        selected = self.selected_name()
        table.clear(columns=True)
        config = self.bctui.config
        name_width, rules_width = self._widths(config)
        widths = {"name": name_width, "rules": rules_width, "match": 5, "members": 9}
        for key, label in COLUMNS:
            table.add_column(label, key=key, width=widths.get(key))
        for segment in config.segments:
            rules = rules_text(segment)
            if len(rules) > rules_width:
                rules = rules[: rules_width - 1] + "…"
            table.add_row(  # names and rule values are the user's: Text, never markup
                Text(_clip(segment.name, name_width)),
                Text(segment.match),
                Text(rules),
                self._members(segment.name),
                self._used_text(users_of(config, segment.name)),
                key=segment.name,
            )
        names = [s.name for s in config.segments]
        if selected in names:
            table.move_cursor(row=names.index(selected))
        empty = self.query_one("#segments-empty", Label)
        empty.display = not names
        empty.update("No segments yet: press n to add one (a named rule over profile properties).")
        self._header()
        self._detail()

    def _header(self) -> None:
        segments = len(self.bctui.config.segments)
        total = "counting…" if self._total is None else f"{self._total:,} profiles in the store"
        plural = "" if segments == 1 else "s"
        self.query_one("#segments-header", Label).update(
            f" {segments} local segment{plural} ─ {total}"
        )

    def _detail(self) -> None:
        detail = self.query_one("#segments-detail", Static)
        segment = self.selected()
        if segment is None:
            detail.update("")
            return
        joiner = "all of" if segment.match == "all" else "any of"
        lines = [Text(segment.name, style="bold"), Text(f"members: {self._count_line(segment)}")]
        if segment.rules:
            lines.append(Text(f"match {joiner}:"))
        else:
            lines.append(Text("no rules: " + ("everyone" if segment.match == "all" else "no one")))
        lines.extend(Text(f"  {rule_text(rule)}") for rule in segment.rules)
        used = users_of(self.bctui.config, segment.name)
        lines.append(Text("exported by: " + (", ".join(f"{c} / {g}" for c, g in used) or "—")))
        detail.update(Text("\n").join(lines))

    def _count_line(self, segment: SegmentDef) -> str:
        if segment.name in self._errors:
            return self._errors[segment.name]
        count = self._counts.get(segment.name)
        return "counting…" if count is None else f"{count:,}"

    def selected_name(self) -> str | None:
        """The highlighted segment's name, if any."""
        table = self.table
        if table.row_count == 0 or not 0 <= table.cursor_row < table.row_count:
            return None
        key = table.coordinate_to_cell_key(Coordinate(table.cursor_row, 0)).row_key
        return str(key.value) if key.value is not None else None

    def selected(self) -> SegmentDef | None:
        """The highlighted segment."""
        name = self.selected_name()
        return self.bctui.config.segment(name) if name else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    # -- counts ----------------------------------------------------------------------------

    def action_recount(self) -> None:
        """Count every segment again; the cells show … until their count arrives."""
        self._round += 1
        self._counts = {}
        self._errors = {}
        self._total = None
        for segment in self.bctui.config.segments:
            self._set_cell(segment.name)
        self._header()
        self._detail()
        self._count(self._round, self.bctui.config.segments)

    @work(thread=True, exclusive=True, exit_on_error=False, group="segment-counts")
    def _count(self, round: int, segments: tuple[SegmentDef, ...]) -> None:
        workspace = self.bctui.workspace
        assert workspace is not None
        with workspace.store() as store:
            self.post_message(self.Counted(round, "", store.count()))
            for segment in segments:
                try:
                    count = store.count(segment)
                except BctuiError as exc:
                    self.post_message(self.Counted(round, segment.name, None, exc.message))
                    continue
                self.post_message(self.Counted(round, segment.name, count))

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.round != self._round:
            return  # a count from before the last change or recount
        if not message.name:
            self._total = message.count
            self._header()
            return
        if message.error:
            self._errors[message.name] = message.error
        self._counts[message.name] = message.count
        self._set_cell(message.name)
        if message.name == self.selected_name():
            self._detail()

    def _set_cell(self, name: str) -> None:
        with contextlib.suppress(CellDoesNotExist):  # the row went away with a config change
            self.table.update_cell(name, "members", self._members(name))

    # -- actions ---------------------------------------------------------------------------

    def action_back(self) -> None:
        """Back to the previous screen."""
        self.dismiss()

    def action_new(self) -> None:
        """Open the editor on a new segment."""
        from bctui.tui.screens.segment_editor import SegmentEditorScreen

        self.app.push_screen(SegmentEditorScreen(None))

    def action_edit(self) -> None:
        """Open the editor on the highlighted segment."""
        segment = self.selected()
        if segment is None:
            return
        from bctui.tui.screens.segment_editor import SegmentEditorScreen

        self.app.push_screen(SegmentEditorScreen(segment.name))

    def action_copy(self) -> None:
        """Open the editor on a new segment with the highlighted one's rules."""
        segment = self.selected()
        if segment is None:
            return
        from bctui.tui.screens.segment_editor import SegmentEditorScreen

        taken = {s.name.casefold() for s in self.bctui.config.segments}
        name = f"{segment.name} copy"
        number = 2
        while name.casefold() in taken:
            name = f"{segment.name} copy {number}"
            number += 1
        draft = dataclasses.replace(segment, name=name)
        self.app.push_screen(SegmentEditorScreen(None, draft=draft))

    @work
    async def action_delete(self) -> None:
        """Delete the segment after a confirmation; refused while an export goal uses it."""
        segment = self.selected()
        if segment is None:
            return
        used = users_of(self.bctui.config, segment.name)
        if used:
            goals = ", ".join(f'"{g}" of "{c}"' for c, g in used)
            self.notify(
                f'"{segment.name}" is exported by {goals}: point those goals at another '
                "segment (or delete them) first",
                title="Cannot delete a segment in use",
                severity="error",
                timeout=10,
            )
            return
        sure = await self.app.push_screen_wait(
            ConfirmModal(
                f'Delete segment "{segment.name}"?',
                f"{rules_text(segment)}\nIt is removed from connections.toml; no profile changes.",
                yes="Delete",
            )
        )
        if not sure:
            return
        base = self.bctui.config
        config = dataclasses.replace(
            base, segments=tuple(s for s in base.segments if s.name != segment.name)
        )
        self.bctui.try_save(base, config, done=f'segment "{segment.name}" deleted')
