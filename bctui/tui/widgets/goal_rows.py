"""A table of rows with an editor for the highlighted row (the shape of Posting's key/value
editor): the base of the mapping grid and of the identifier rules editor.

The editor always shows the highlighted row and every change in it is written straight into that
row, so what the table shows is what will be saved. Rows are plain dicts of strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import count
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Input, Label, Select
from textual.widgets.select import NoSelection

Row = dict[str, str]
RowErrors = dict[tuple[int, str], str]
"""(row index, field) → message; field "" is a problem of the whole row."""


class RowEditor(Vertical):
    """Rows in a DataTable, the highlighted one in editor fields below it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+a", "add_row", "Add row", id="rows-add", priority=True,
                tooltip="Add a row after the highlighted one and edit it"),
        # Priority: with a row's field focused, the Input's own ctrl+x (cut) would take it.
        Binding("ctrl+x", "delete_row", "Delete row", id="rows-delete", priority=True,
                tooltip="Delete the highlighted row (the table or one of its fields focused)"),
        Binding("left_square_bracket", "move(-1)", "Move up", id="rows-up", show=False,
                tooltip="Move the highlighted row up (with the table focused)"),
        Binding("right_square_bracket", "move(1)", "Move down", id="rows-down", show=False,
                tooltip="Move the highlighted row down (with the table focused)"),
    ]  # fmt: skip

    COLUMNS: Sequence[tuple[str, str]] = ()
    """(field, heading) of each column after the problem marker."""
    FIELDS: Sequence[str] = ()
    """The row's fields, each edited by the widget with id `{prefix}-{field}`."""
    FOCUS_FIELD = ""
    """The field that takes the focus when a row is added (default: the first)."""
    EMPTY_HINT = "No rows yet — ctrl+a adds one"

    class Changed(Message):
        """The rows changed (an edit, an added, deleted or moved row)."""

        def __init__(self, editor: RowEditor) -> None:
            super().__init__()
            self.editor = editor

        @property
        def control(self) -> RowEditor:
            """The editor whose rows changed."""
            return self.editor

    def __init__(self, rows: Iterable[Row] = (), *, prefix: str, id: str | None = None) -> None:
        super().__init__(id=id)
        self.prefix = prefix
        self._ids = count()
        self._rows: list[tuple[str, Row]] = [(self._new_key(), dict(r)) for r in rows]
        self.errors: RowErrors = {}

    def _new_key(self) -> str:
        return f"r{next(self._ids)}"

    # -- for subclasses ------------------------------------------------------------------

    def compose_editor(self) -> ComposeResult:
        """The editor's fields (ids `{prefix}-{field}`)."""
        yield from ()

    def cells(self, row: Row) -> tuple[str | Text, ...]:
        """What the table shows of a row, one cell per column."""
        return tuple(row.get(name, "") for name, _ in self.COLUMNS)

    def new_row(self, after: Row | None) -> Row:
        """A fresh row to add after `after` (None: the table is empty)."""
        return dict.fromkeys(self.FIELDS, "")

    def row_loaded(self, row: Row) -> None:
        """Called after the editor shows `row` (e.g. to enable or disable a field)."""

    # -- the widget ----------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield DataTable(id=f"{self.prefix}-table", cursor_type="row", zebra_stripes=False)
        yield Label(self.EMPTY_HINT, id=f"{self.prefix}-empty", classes="rows-empty")
        with Horizontal(id=f"{self.prefix}-editor", classes="rows-editor"):
            yield from self.compose_editor()
        yield Label("", id=f"{self.prefix}-error", classes="field-error")

    def on_mount(self) -> None:
        table = self.table
        table.add_column(" ", key="_mark", width=1)
        for name, heading in self.COLUMNS:
            table.add_column(heading, key=name)
        for key, row in self._rows:
            table.add_row(*self._cells(key, row), key=key)
        self._show_current()

    @property
    def table(self) -> DataTable[str | Text]:
        """The rows table."""
        return self.query_one(f"#{self.prefix}-table", DataTable)

    @property
    def rows(self) -> list[Row]:
        """The rows as they are now, in order."""
        return [dict(row) for _, row in self._rows]

    @property
    def current(self) -> int | None:
        """The highlighted row's index, or None when there are no rows."""
        if not self._rows:
            return None
        return min(max(self.table.cursor_row, 0), len(self._rows) - 1)

    def field(self, name: str) -> Widget:
        """The editor widget of a field."""
        return self.query_one(f"#{self.prefix}-{name}")

    def _cells(self, key: str, row: Row) -> tuple[str | Text, ...]:
        index = next(i for i, (k, _) in enumerate(self._rows) if k == key)
        bad = any(i == index for i, _ in self.errors)
        error = self.app.theme_variables.get("error", "red")
        mark = Text("✗", style=f"bold {error}") if bad else Text(" ")
        # A str cell would be parsed as markup: names like "Loyalty [v2]" are shown as typed.
        return (mark, *(Text(c) if isinstance(c, str) else c for c in self.cells(row)))

    def _refresh_row(self, index: int) -> None:
        key, row = self._rows[index]
        table = self.table
        for column, cell in zip(["_mark", *(n for n, _ in self.COLUMNS)],
                                self._cells(key, row), strict=True):  # fmt: skip
            table.update_cell(key, column, cell, update_width=True)

    def _rebuild(self, cursor: int | None) -> None:
        table = self.table
        table.clear()
        for key, row in self._rows:
            table.add_row(*self._cells(key, row), key=key)
        if cursor is not None and self._rows:
            table.move_cursor(row=min(cursor, len(self._rows) - 1))
        self._show_current()

    def _show_current(self) -> None:
        """Put the highlighted row into the editor (or hide the editor when there are none)."""
        index = self.current
        has_rows = index is not None
        self.query_one(f"#{self.prefix}-editor").display = has_rows
        self.query_one(f"#{self.prefix}-empty").display = not has_rows
        self.table.display = has_rows
        if index is not None:
            row = self._rows[index][1]
            for name in self.FIELDS:
                widget = self.field(name)
                value = row.get(name, "")
                if isinstance(widget, Input) and widget.value != value:
                    widget.value = value
                elif isinstance(widget, Select) and widget.value != value:
                    widget.value = value if value else Select.NULL
            self.row_loaded(row)
        self._show_errors()

    def _show_errors(self) -> None:
        label = self.query_one(f"#{self.prefix}-error", Label)
        index = self.current
        mine = [m for (i, _), m in self.errors.items() if i == index]
        others = sorted({i for i, _ in self.errors if i != index})
        text = "\n".join(mine)
        if others:
            where = ", ".join(str(i + 1) for i in others)
            text += ("\n" if text else "") + f"also a problem in row {where}"
        label.update(Text(text))
        label.display = bool(text)

    def set_errors(self, errors: RowErrors) -> None:
        """Mark the rows with problems and show the highlighted row's messages."""
        self.errors = dict(errors)
        for index in range(len(self._rows)):
            self._refresh_row(index)
        self._show_errors()

    # -- events --------------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._show_current()

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self._focus_editor()

    @on(Input.Changed)
    @on(Select.Changed)
    def _edited(self, event: Input.Changed | Select.Changed) -> None:
        index = self.current
        if index is None or event.control.id is None:
            return
        name = event.control.id.removeprefix(f"{self.prefix}-")
        if name not in self.FIELDS:
            return
        # The widget's value now, not the event's: a message from loading another row into the
        # editor may arrive late, and must not write that row's value into this one.
        widget = event.control
        value: object = widget.value
        text = "" if isinstance(value, NoSelection) or value is None else str(value)
        row = self._rows[index][1]
        if row.get(name, "") == text:
            return
        row[name] = text
        self.row_loaded(row)
        self._refresh_row(index)
        self.post_message(self.Changed(self))

    def _focus_editor(self) -> None:
        if self.FIELDS and self._rows:
            widget = self.field(self.FOCUS_FIELD or self.FIELDS[0])
            # Not scrolled on focus: that would aim at where the field was before the new row
            # was laid out. Once the layout is done, bring the field itself into view.
            widget.focus(scroll_visible=False)
            self.call_after_refresh(widget.scroll_visible, animate=False)

    # -- actions -------------------------------------------------------------------------

    def action_add_row(self) -> None:
        """Add a row after the highlighted one and edit it."""
        index = self.current
        after = self._rows[index][1] if index is not None else None
        at = 0 if index is None else index + 1
        self._rows.insert(at, (self._new_key(), self.new_row(after)))
        self._shift_errors(at, +1)
        self._rebuild(at)
        self._focus_editor()
        self.post_message(self.Changed(self))

    def action_delete_row(self) -> None:
        """Delete the highlighted row."""
        index = self.current
        if index is None:
            return
        del self._rows[index]
        self.errors = {k: v for k, v in self.errors.items() if k[0] != index}
        self._shift_errors(index, -1)
        self._rebuild(index)
        if not self._rows:
            self.table.focus()
        self.post_message(self.Changed(self))

    def action_move(self, step: int) -> None:
        """Move the highlighted row up (-1) or down (+1)."""
        index = self.current
        if index is None or not 0 <= index + step < len(self._rows):
            return
        other = index + step
        self._rows[index], self._rows[other] = self._rows[other], self._rows[index]
        self.errors = {
            ((other if i == index else index if i == other else i), f): m
            for (i, f), m in self.errors.items()
        }
        self._rebuild(other)
        self.post_message(self.Changed(self))

    def _shift_errors(self, start: int, step: int) -> None:
        self.errors = {((i + step if i >= start else i), f): m for (i, f), m in self.errors.items()}

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("delete_row", "move") and not self._rows:
            return None
        return True
