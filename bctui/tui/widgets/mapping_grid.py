"""The mapping grid of both goal editors: import rows (Braze field → property, strategy) or
export rows (source + value → Braze attribute), edited in place, added, deleted and reordered."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Input, Label, Select

from bctui.engine.models import EXPORT_SOURCES, EXPORT_TYPES, ExportMapping, ImportMapping
from bctui.engine.runs.types import NATURAL
from bctui.store.merge import STRATEGIES
from bctui.tui.widgets.goal_rows import Row, RowEditor
from bctui.tui.widgets.goal_suggest import BrazeFieldSuggester, PropertySuggester

STRATEGY_MEANINGS = {
    "set": "replace all values",
    "add": "add values not there yet",
    "sum": "add the numbers to the total",
    "set_if_empty": "only while the property is empty",
    "clear": "replace; an empty Braze field clears it",
}
SOURCE_MEANINGS = {
    "property": "a profile property",
    "profile_id": "the profile id",
    "segments": "the profile's segments",
    "interactions_viewed": "the interactions viewed",
    "permission_level": "the permission level",
    "static": "a fixed text",
}
STRATEGY_OPTIONS = [(f"{s} — {STRATEGY_MEANINGS[s]}", s) for s in STRATEGIES]
SOURCE_OPTIONS = [(f"{s} — {SOURCE_MEANINGS[s]}", s) for s in EXPORT_SOURCES]
TYPE_OPTIONS = [(t, t) for t in EXPORT_TYPES]
AUTO = "auto"
"""A property mapping without `type`: inferred at the goal's first run, then kept."""
TYPE_TIP = (
    "The JSON type this mapping always sends. auto: inferred from the data at the goal's first "
    "run and kept; string, number, boolean, time (ISO 8601) or array: converted, and a value "
    "that does not convert is that profile's error"
)

Kind = Literal["import", "export"]


class MappingGrid(RowEditor):
    """The rows of a goal's mappings; `mappings()` reads them back as the model's mappings."""

    DEFAULT_CSS = """
    MappingGrid {
        height: auto;
        & > DataTable { height: auto; max-height: 12; background: $surface; }
        .rows-editor { height: auto; }
        .rows-editor Input { width: 1fr; }
        .rows-editor Select { width: 1fr; }
        .rows-editor SelectCurrent #label { text-wrap: nowrap; text-overflow: ellipsis; }
        .grid-arrow { width: 3; padding: 0 1; }
        .rows-editor .grid-type { width: 12; margin-left: 1; }
        .grid-type-fixed { width: 12; margin-left: 1; padding: 0 1; color: $text-muted; }
        .rows-empty { color: $text-muted; padding: 0 1; }
        .field-error { color: $error; padding: 0 1; }
    }
    """

    def __init__(
        self,
        kind: Kind,
        mappings: Sequence[ImportMapping] | Sequence[ExportMapping] = (),
        *,
        properties: PropertySuggester | None = None,
        id: str | None = None,
    ) -> None:
        self.kind = kind
        self.properties = properties or PropertySuggester()
        self.kept: dict[str, tuple[str, str]] = {}
        """Braze attribute → (property, type) the goal's runs decided and keep (see set_kept)."""
        if kind == "import":
            self.COLUMNS = (("braze", "Braze field"), ("property", "Profile property"),
                            ("strategy", "Strategy"))  # fmt: skip
            self.FIELDS = ("braze", "property", "strategy")
            rows: list[Row] = [
                {"braze": m.braze, "property": m.property, "strategy": m.strategy}
                for m in mappings
                if isinstance(m, ImportMapping)
            ]
        else:
            self.COLUMNS = (("source", "Source"), ("value", "Value"),
                            ("braze", "Braze attribute"), ("type", "Type"))  # fmt: skip
            self.FIELDS = ("source", "value", "braze", "type")
            self.FOCUS_FIELD = "value"
            rows = [
                {"source": m.source, "value": m.value, "braze": m.braze, "type": m.type}
                for m in mappings
                if isinstance(m, ExportMapping)
            ]
        self.EMPTY_HINT = "No mappings yet — ctrl+a adds one"
        super().__init__(rows, prefix=f"{kind}-map", id=id)

    def compose_editor(self) -> ComposeResult:
        p = self.prefix
        if self.kind == "import":
            yield Input(placeholder="Braze field, e.g. first_name", id=f"{p}-braze", compact=True,
                        suggester=BrazeFieldSuggester(),
                        tooltip="A field of Braze's user export, or custom_attributes.NAME "
                        "(→ accepts the completion)")  # fmt: skip
            yield Label("→", classes="grid-arrow")
            yield Input(placeholder="profile property", id=f"{p}-property", compact=True,
                        suggester=self.properties)  # fmt: skip
            yield Select(STRATEGY_OPTIONS, allow_blank=False, value="set", id=f"{p}-strategy",
                         compact=True,
                         tooltip="How the Braze value merges into the property")  # fmt: skip
        else:
            yield Select(SOURCE_OPTIONS, allow_blank=False, value="property", id=f"{p}-source",
                         compact=True, tooltip="What is sent")  # fmt: skip
            yield Input(
                placeholder="property name",
                id=f"{p}-value",
                compact=True,
                suggester=self.properties,
            )
            yield Label("→", classes="grid-arrow")
            yield Input(placeholder="Braze attribute", id=f"{p}-braze", compact=True)
            # Only a property's type is a choice; the other sources show the one they send.
            yield Select(TYPE_OPTIONS, prompt=AUTO, allow_blank=True, id=f"{p}-type",
                         compact=True, classes="grid-type", tooltip=TYPE_TIP)  # fmt: skip
            yield Label("", id=f"{p}-type-fixed", classes="grid-type-fixed")

    def cells(self, row: Row) -> tuple[str | Text, ...]:
        if self.kind == "import":
            return (row.get("braze", ""), row.get("property", ""), row.get("strategy", ""))
        source = row.get("source", "")
        value = row.get("value", "")
        shown = f'"{value}"' if source == "static" else value
        return (source, shown, row.get("braze", ""), self._type_cell(row))

    def _type_cell(self, row: Row) -> Text:
        """A property's type (auto: with what the runs decided, when they did); another
        source's fixed type, dimmed: not a choice."""
        source = row.get("source", "") or "property"
        if source != "property":
            return Text(NATURAL.get(source, ""), style="dim")
        if row.get("type"):
            return Text(row["type"])
        # A kept decision holds only while the mapping names the property it was made for.
        prop, kind = self.kept.get(row.get("braze", "").strip(), ("", ""))
        return Text(f"{AUTO}: {kind}" if kind and prop == row.get("value", "").strip() else AUTO)

    def set_kept(self, kept: dict[str, tuple[str, str]]) -> None:
        """Show, beside "auto", the types the goal's runs inferred and keep sending."""
        self.kept = dict(kept)
        for index in range(len(self.rows)):
            self._refresh_row(index)

    def new_row(self, after: Row | None) -> Row:
        if self.kind == "import":
            return {"braze": "", "property": "", "strategy": "set"}
        return {"source": "property", "value": "", "braze": "", "type": ""}

    def row_loaded(self, row: Row) -> None:
        if self.kind != "export":
            return
        value = self.query_one(f"#{self.prefix}-value", Input)
        source = row.get("source", "")
        takes_value = source in ("property", "static")
        value.disabled = not takes_value
        value.placeholder = {"property": "property name", "static": "the text to send"}.get(
            source, "(no value)"
        )
        value.suggester = self.properties if source == "property" else None
        if not takes_value and row.get("value"):
            row["value"] = ""
            value.value = ""
        chosen = source in ("property", "")
        self.query_one(f"#{self.prefix}-type", Select).display = chosen
        fixed = self.query_one(f"#{self.prefix}-type-fixed", Label)
        fixed.display = not chosen
        fixed.update(NATURAL.get(source, ""))

    def mappings(self) -> tuple[ImportMapping, ...] | tuple[ExportMapping, ...]:
        """The rows as the model's mappings (text trimmed; validation is the config's)."""
        if self.kind == "import":
            return tuple(
                ImportMapping(r["braze"].strip(), r["property"].strip(), r["strategy"] or "set")
                for r in self.rows
            )
        return tuple(
            ExportMapping(
                r["source"] or "property",
                r["braze"].strip(),
                r["value"] if r["source"] == "static" else r["value"].strip(),
                # A type that only fitted the row's earlier source goes with it.
                r.get("type", "") if r["source"] in ("property", "", None)
                or r.get("type") == NATURAL.get(r["source"]) else "",
            )
            for r in self.rows
        )
