"""The connections table: one row per connection, its switch, schedule, next and last run. A poll
every second redraws only the cells that changed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from bctui.engine.models import Connection
from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.tail import run_position_of
from bctui.engine.schedule import describe_schedule, next_run
from bctui.tui.app import BctuiApp
from bctui.tui.format import ago, short_time

COLUMNS = (("star", "★"), ("name", "Name"), ("labels", "Labels"), ("on", "On"),
           ("schedule", "Schedule"), ("next", "Next"), ("last", "Last run"))  # fmt: skip
WIDE_COLUMNS = (("goals", "Goals"), ("description", "Description"))
# Columns whose text changes while the screen is open keep one width ("✓ 23h ago dry",
# "⟳ running 100%"; "Dec 24 01:30"), so a poll never shifts the table.
FIXED_WIDTHS = {"last": 14, "next": 12}
# Below 100 columns the text columns are cut to these widths, so that "Last run" stays on screen.
NARROW_WIDTHS = {"name": 16, "labels": 10, "schedule": 17}


class ConnectionTable(DataTable[object]):
    """The connections given to `show`, in that order, keyed by name."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._rows: dict[str, tuple[object, ...]] = {}
        self._shown: list[Connection] = []
        self._layout = (False, False)

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    @property
    def names(self) -> list[str]:
        """The names of the rows, top to bottom."""
        return list(self._rows)

    def show(self, connections: Sequence[Connection]) -> None:
        """Show these connections: the same rows get their changed cells redrawn, others a
        new table."""
        self._shown = list(connections)
        if not self.columns or [c.name for c in connections] != list(self._rows):
            self._rebuild()
            return
        keys = [key for key, _ in self._columns()]
        for conn in connections:
            row = self._row(conn)
            for index, (cell, before) in enumerate(zip(row, self._rows[conn.name], strict=True)):
                if cell != before:
                    self.update_cell(conn.name, keys[index], cell, update_width=True)
            self._rows[conn.name] = row

    def selected_name(self) -> str | None:
        """The highlighted connection's name, if any."""
        if not self._rows or not 0 <= self.cursor_row < self.row_count:
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key
        return str(key.value) if key.value is not None else None

    def on_resize(self) -> None:
        # A new table only when the layout changes: past 100 columns texts are no longer cut,
        # past 140 two more columns show.
        layout = (self.size.width >= 100, self.size.width >= 140)
        if layout != self._layout:
            self._layout = layout
            self._rebuild()

    def _columns(self) -> tuple[tuple[str, str], ...]:
        return COLUMNS + (WIDE_COLUMNS if self._layout[1] else ())

    def _rebuild(self) -> None:
        selected = self.selected_name()
        self.clear(columns=True)
        for key, label in self._columns():
            self.add_column(label, key=key, width=FIXED_WIDTHS.get(key))
        self._rows = {}
        for conn in self._shown:
            row = self._row(conn)
            self._rows[conn.name] = row
            self.add_row(*row, key=conn.name)
        if selected in self._rows:
            self.move_cursor(row=list(self._rows).index(selected))

    def _row(self, conn: Connection) -> tuple[object, ...]:
        theme = self.app.theme_variables
        on = (
            Text("●━", style=theme.get("success", "green"))
            if conn.enabled
            else Text("━○", style="dim")
        )
        now = self.bctui.clock()
        upcoming = next_run(conn.schedule, datetime.fromtimestamp(now).astimezone())
        if conn.schedule.kind == "manual":
            next_text = Text("—", style="dim")
        elif not conn.enabled:
            next_text = Text("off", style="dim")
        else:
            next_text = Text(short_time(upcoming.timestamp(), now) if upcoming else "—")
        row: tuple[object, ...] = (
            Text("★", style=theme.get("warning", "yellow")) if conn.favorite else Text(""),
            self._cut("name", conn.name),
            self._cut("labels", ", ".join(conn.labels)),
            on,
            self._cut("schedule", describe_schedule(conn.schedule)),
            next_text,
            self._last_run(conn.name),
        )
        if self._layout[1]:
            imports = sum(1 for g in conn.goals if g.type == "import")
            row += (Text(f"{imports} in · {len(conn.goals) - imports} out"), Text(conn.description))
        return row

    def _cut(self, column: str, text: str) -> Text:
        """Plain text (a name like `Loyalty [v2]` is not markup), cut below 100 columns."""
        width = NARROW_WIDTHS.get(column, 0)
        if not self._layout[0] and width and len(text) > width:
            text = text[: width - 1] + "…"
        return Text(text)

    def _last_run(self, name: str) -> Text:
        snapshot = self.bctui.runs
        theme = self.app.theme_variables
        status = snapshot.status(name)
        record = snapshot.latest.get(name)
        if status == history.RunStatus.RUNNING:
            holder = snapshot.running[name]
            position = run_position_of(self.bctui.paths, holder.run_id)
            fraction = position.fraction if position else None
            share = f" {fraction:.0%}" if fraction is not None else ""
            return Text(f"⟳ running{share}", style=f"bold {theme.get('accent', 'cyan')}")
        if record is None:
            return Text("never", style="dim")
        when = ago(record.ended_at or record.started_at, self.bctui.clock())
        dry = " dry" if record.dry_run else ""
        match status:
            case st.FINISHED:
                return Text(f"✓ {when}{dry}", style=theme.get("success", "green"))
            case st.FAILED:
                return Text(f"✗ {when}{dry}", style=theme.get("error", "red"))
            case st.CANCELLED:
                return Text(f"⊘ {when}{dry}", style=theme.get("warning", "yellow"))
            case history.RunStatus.INTERRUPTED:
                return Text("⚠ interrupted", style=theme.get("warning", "yellow"))
        return Text(status)
