"""Identifier rules: an OR of AND-groups of (Braze identifier ⇄ profile property) pairs, shown on
one line in the goal editors and edited in a modal that returns the new rules."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Select, Static

from bctui.engine.models import BRAZE_IDENTIFIERS, IdentifierPair, IdentifierRules
from bctui.tui.widgets.goal_rows import Row, RowEditor, RowErrors
from bctui.tui.widgets.goal_suggest import PropertySuggester


def describe_rules(rules: IdentifierRules) -> str:
    """`external_id ⇄ braze_external_id   OR  email ⇄ email` (AND within a group)."""
    groups = []
    for group in rules:
        pairs = [f"{p.braze}{f'[{p.label}]' if p.label else ''} ⇄ {p.property}" for p in group]
        groups.append(" AND ".join(pairs))
    return "   OR  ".join(groups)


class IdentifierRulesField(Horizontal):
    """The rules on one line, with a button (and ctrl+g on the screen) to edit them."""

    DEFAULT_CSS = """
    IdentifierRulesField {
        height: auto;
        #ids-line { width: auto; max-width: 1fr; padding: 0 2 0 0; }
        #ids-line.-empty { color: $text-muted; }
        Button { min-width: 12; }
    }
    """

    class Changed(Message):
        """The rules were edited."""

        def __init__(self, field: IdentifierRulesField) -> None:
            super().__init__()
            self.field = field

        @property
        def control(self) -> IdentifierRulesField:
            """The field that changed."""
            return self.field

    def __init__(
        self,
        rules: IdentifierRules,
        *,
        properties: PropertySuggester | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.rules = rules
        self.properties = properties

    def compose(self) -> ComposeResult:
        yield Static(id="ids-line")
        yield Button("Edit ^g", id="ids-edit", compact=True)

    def on_mount(self) -> None:
        self._show()

    def _show(self) -> None:
        line = self.query_one("#ids-line", Static)
        text = describe_rules(self.rules)
        line.set_class(not text, "-empty")
        # Text, not markup: `user_alias[label]` and property names are shown as they are.
        line.update(Text(text or "none yet — every goal needs at least one (ctrl+g)"))

    @on(Button.Pressed, "#ids-edit")
    def _pressed(self) -> None:
        self.edit()

    @work
    async def edit(self) -> None:
        """Open the rules editor; apply what it returns."""
        rules = await self.app.push_screen_wait(
            IdentifierRulesModal(self.rules, properties=self.properties)
        )
        if rules is not None and rules != self.rules:
            self.rules = rules
            self._show()
            self.post_message(self.Changed(self))


class PairsEditor(RowEditor):
    """One row per pair, with its group number; groups are ORed, pairs in a group ANDed."""

    DEFAULT_CSS = """
    PairsEditor {
        height: auto;
        & > DataTable { height: auto; max-height: 10; background: $surface; }
        .rows-editor { height: auto; }
        .rows-editor Input { width: 1fr; }
        #ids-braze { width: 20; }
        .rows-empty { color: $text-muted; }
        .field-error { color: $error; }
    }
    """

    COLUMNS = (("group", "Group"), ("braze", "Braze identifier"), ("property", "Profile property"),
               ("label", "Alias label"))  # fmt: skip
    FIELDS = ("braze", "property", "label")
    FOCUS_FIELD = "property"
    EMPTY_HINT = "No identifiers yet — ctrl+a adds a pair"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+g", "add_group", "New OR group", id="ids-add-group", priority=True,
                tooltip="Start a new group (tried when the groups above find no match)"),
    ]  # fmt: skip

    def __init__(self, rows: list[Row], properties: PropertySuggester | None) -> None:
        super().__init__(rows, prefix="ids", id="ids-pairs")
        self.properties = properties

    def compose_editor(self) -> ComposeResult:
        options = [(b, b) for b in BRAZE_IDENTIFIERS]
        yield Select(options, allow_blank=False, value="external_id", id="ids-braze", compact=True)
        yield Input(
            placeholder="profile property",
            id="ids-property",
            compact=True,
            suggester=self.properties,
        )
        yield Input(placeholder="alias label", id="ids-label", compact=True)

    def cells(self, row: Row) -> tuple[str | Text, ...]:
        return (f"{row['group']}", row.get("braze", ""), row.get("property", ""),
                row.get("label", ""))  # fmt: skip

    def new_row(self, after: Row | None) -> Row:
        group = after["group"] if after else "1"
        return {"group": group, "braze": "email" if after else "external_id", "property": "",
                "label": ""}  # fmt: skip

    def row_loaded(self, row: Row) -> None:
        label = self.query_one("#ids-label", Input)
        label.disabled = row.get("braze") != "user_alias"
        if label.disabled and row.get("label"):
            row["label"] = ""
            label.value = ""

    def action_add_group(self) -> None:
        """Add a pair in a new group after the last one."""
        groups = [int(r["group"]) for r in self.rows] or [0]
        self._rows.append(
            (
                self._new_key(),
                {"group": str(max(groups) + 1), "braze": "email", "property": "", "label": ""},
            )
        )
        self._rebuild(len(self._rows) - 1)
        self._focus_editor()
        self.post_message(self.Changed(self))

    def action_delete_row(self) -> None:
        super().action_delete_row()
        self._renumber()

    def _renumber(self) -> None:
        """Groups left empty by a deletion disappear; the rest keep their order."""
        numbers: dict[str, str] = {}
        for _, row in self._rows:
            numbers.setdefault(row["group"], str(len(numbers) + 1))
            row["group"] = numbers[row["group"]]
        self._rebuild(self.current)


def rules_to_rows(rules: IdentifierRules) -> list[Row]:
    """One row per pair, numbered by group."""
    return [
        {"group": str(g + 1), "braze": p.braze, "property": p.property, "label": p.label}
        for g, group in enumerate(rules)
        for p in group
    ]


def rows_to_rules(rows: list[Row]) -> tuple[IdentifierRules, RowErrors]:
    """The rules the rows describe, and the problems the model cannot even hold (a pair without
    a property); everything else is the validator's to say when the goal is saved."""
    errors: RowErrors = {}
    groups: dict[str, list[IdentifierPair]] = {}
    for index, row in enumerate(rows):
        braze, prop, label = row["braze"], row["property"].strip(), row["label"].strip()
        if not prop:
            errors[(index, "property")] = "a profile property is needed"
        groups.setdefault(row["group"], []).append(IdentifierPair(braze, prop, label))
    return tuple(tuple(g) for g in groups.values()), errors


class IdentifierRulesModal(ModalScreen[IdentifierRules | None]):
    """Edit identifier rules; dismisses the new rules, or None when cancelled."""

    DEFAULT_CSS = """
    IdentifierRulesModal {
        align: center middle;
        #ids-box {
            width: 90%; max-width: 110; height: auto; max-height: 90%;
            border: round $border; background: $panel; padding: 0 1;
        }
        #ids-help { color: $text-muted; }
        #ids-buttons { height: auto; align-horizontal: right; }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "done", "Done", id="ids-done", priority=True,
                tooltip="Use these rules (saving the goal is ctrl+s in the editor)"),
        Binding("escape", "cancel", "Cancel", id="ids-cancel"),
    ]  # fmt: skip

    def __init__(
        self, rules: IdentifierRules, *, properties: PropertySuggester | None = None
    ) -> None:
        super().__init__()
        self.rules = rules
        self.properties = properties

    def compose(self) -> ComposeResult:
        with Vertical(id="ids-box") as box:
            box.border_title = "Identifier rules"
            yield Static(
                Text(
                    "Groups are tried in order; the first whose pairs all match wins. "
                    "ctrl+a add pair (AND) · ctrl+g new group (OR) · ctrl+x delete · [ ] move"
                ),
                id="ids-help",
            )
            yield PairsEditor(rules_to_rows(self.rules), self.properties)
            with Horizontal(id="ids-buttons"):
                yield Button("Done ^s", variant="primary", id="ids-ok", compact=True)
                yield Button("Cancel", id="ids-no", compact=True)

    def on_mount(self) -> None:
        self.query_one(PairsEditor).table.focus()

    @on(Button.Pressed, "#ids-ok")
    def action_done(self) -> None:
        """Check the rows and return the rules."""
        editor = self.query_one(PairsEditor)
        rules, errors = rows_to_rules(editor.rows)
        editor.set_errors(errors)
        if not errors:
            self.dismiss(rules)

    @on(Button.Pressed, "#ids-no")
    def action_cancel(self) -> None:
        """Close without changes."""
        self.dismiss(None)
