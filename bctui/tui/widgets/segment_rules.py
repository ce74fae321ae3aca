"""The rule rows of the segment editor, and how a rule's value is read from what is typed.

A rule's value is typed as text: a number is a number (`1000`), anything else text; quotes force
text (`"5"`). For `in`, a comma-separated list (`NL, DE`); `exists` takes no value. Comparisons
(`>`, `≥`, `<`, `≤`) take a number, or an ISO date or time (text that compares as a date).
"""

from __future__ import annotations

import re
from typing import Final

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, Select

from bctui.engine.config import Issue
from bctui.store.segments import OPS, Rule
from bctui.store.values import Scalar, numeric
from bctui.tui.screens.segments import OP_WORDS, value_text

_COMPARISONS: Final = ("gt", "gte", "lt", "lte")
_ISO_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.+\-Z]*)?")
_PLACEHOLDERS: Final = {
    "in": "values, comma-separated: NL, DE",
    "exists": "(no value)",
    "contains": "text",
}


def parse_value(op: str, text: str) -> tuple[Scalar | tuple[Scalar, ...] | None, str]:
    """The rule value typed for `op`, or a problem in the words of `bctui validate`."""
    word = OP_WORDS[op]
    text = text.strip()
    if op == "exists":
        return None, ""
    if op == "in":
        items = _split(text)
        if not items:
            return None, '"in" needs a list of values: type them separated by commas (NL, DE)'
        return tuple(_scalar(item, text_only=False) for item in items), ""
    if not text:
        return None, f'"{word}" needs a value'
    value = _scalar(text, text_only=op == "contains")
    if op in _COMPARISONS and isinstance(value, str) and not _ISO_DATE.fullmatch(value):
        return None, (
            f'"{word}" compares numbers: "{text}" is not a number '
            "(type a number such as 1000, or an ISO date such as 2026-01-31)"
        )
    return value, ""


def _scalar(text: str, *, text_only: bool) -> Scalar:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    if text_only:
        return text
    number = numeric(text)
    return text if number is None else number


def _split(text: str) -> list[str]:
    """Comma-separated items; a quoted item may hold commas."""
    items: list[str] = []
    current = ""
    quoted = False
    for char in text:
        if char == '"' and not current.rstrip().endswith("\\"):
            quoted = not quoted
        if char == "," and not quoted:
            items.append(current)
            current = ""
            continue
        current += char
    items.append(current)
    return [item.strip() for item in items if item.strip()]


def typed_value(rule: Rule) -> str:
    """What the value input shows for a rule."""
    if rule.value is None:
        return ""
    if isinstance(rule.value, tuple):
        return ", ".join(value_text(v) for v in rule.value)
    return value_text(rule.value)


class RuleRow(Vertical):
    """One rule: property (with completion), op, value, and its problems underneath."""

    def __init__(self, rule: Rule | None, names: list[str]) -> None:
        super().__init__(classes="rule-row")
        self.rule = rule
        self.names = names

    def compose(self) -> ComposeResult:
        rule = self.rule
        op = rule.op if rule else "eq"
        with Horizontal(classes="rule-fields"):
            yield Input(
                rule.property if rule else "",
                placeholder="property",
                classes="rule-property",
                suggester=self._suggester(),
            )
            yield Select(
                [(OP_WORDS[o], o) for o in OPS], value=op, allow_blank=False, classes="rule-op"
            )
            yield Input(typed_value(rule) if rule else "", classes="rule-value")
        yield Label("", classes="field-error rule-error", markup=False)

    def on_mount(self) -> None:
        self._op_changed(self.op)
        self.set_error("")

    def _suggester(self) -> SuggestFromList | None:
        return SuggestFromList(self.names, case_sensitive=True) if self.names else None

    def set_names(self, names: list[str]) -> None:
        """Offer these property names as completions."""
        self.names = names
        self.query_one(".rule-property", Input).suggester = self._suggester()

    @property
    def op(self) -> str:
        """The chosen op."""
        return str(self.query_one(".rule-op", Select).value)

    def raw(self) -> tuple[str, str, str]:
        """(property, op, value) as typed."""
        prop = self.query_one(".rule-property", Input).value
        return prop, self.op, self.query_one(".rule-value", Input).value

    def read(self) -> tuple[Rule | None, str]:
        """The rule, or what is wrong with it."""
        prop, op, text = self.raw()
        prop = prop.strip()
        problems = []
        if not prop:
            problems.append("property: a rule needs a property name")
        value, problem = parse_value(op, text)
        if problem:
            problems.append(f"value: {problem}")
        if problems:
            return None, " · ".join(problems)
        try:
            return Rule(prop, op, value), ""
        except ValueError as exc:
            return None, str(exc)

    def set_error(self, text: str) -> None:
        """Show (or clear) the message under the rule."""
        label = self.query_one(".rule-error", Label)
        label.update(text)
        label.display = bool(text)
        self.set_class(bool(text), "-error")

    @on(Select.Changed, ".rule-op")
    def _select_changed(self, event: Select.Changed) -> None:
        self._op_changed(str(event.value))
        self.set_error("")

    @on(Input.Changed)
    def _typed(self, event: Input.Changed) -> None:
        self.set_error("")  # the message was about what was there before

    def _op_changed(self, op: str) -> None:
        value = self.query_one(".rule-value", Input)
        value.disabled = op == "exists"
        value.placeholder = _PLACEHOLDERS.get(op, "a number, or text")

    def focus_property(self) -> None:
        """Put the cursor in the property input."""
        self.query_one(".rule-property", Input).focus()


class RuleList(Vertical):
    """The rule rows, in order: adds, removes and moves them (the screen recounts after)."""

    def __init__(self, rules: tuple[Rule, ...], names: list[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rules = rules
        self.names = names

    def compose(self) -> ComposeResult:
        for rule in self.rules:
            yield RuleRow(rule, self.names)

    @property
    def rows(self) -> list[RuleRow]:
        """The rule rows, in order."""
        return list(self.query_children(RuleRow))

    def read(self) -> tuple[tuple[Rule, ...], dict[int, str]]:
        """The rules that read well, and each wrong rule's problem by position."""
        rules: list[Rule] = []
        problems: dict[int, str] = {}
        for index, row in enumerate(self.rows):
            rule, problem = row.read()
            if rule is None:
                problems[index] = problem
            else:
                rules.append(rule)
        return tuple(rules), problems

    def set_names(self, names: list[str]) -> None:
        """Offer these property names as completions, in every row and in rows added later."""
        self.names = names
        for row in self.rows:
            row.set_names(names)

    async def add(self, after: RuleRow | None = None) -> RuleRow:
        """A new, empty rule below `after` (or at the end)."""
        row = RuleRow(None, self.names)
        if after is not None:
            await self.mount(row, after=after)
        else:
            await self.mount(row)
        return row

    async def remove_row(self, row: RuleRow) -> RuleRow | None:
        """Remove `row`; the row now in its place (or the new last one), None when none is left."""
        index = self.rows.index(row)
        await row.remove()
        rows = self.rows
        return rows[min(index, len(rows) - 1)] if rows else None

    def move(self, row: RuleRow, step: int) -> bool:
        """Move `row` up (-1) or down (1); False when it is already at that end."""
        rows = self.rows
        target = rows.index(row) + step
        if not 0 <= target < len(rows):
            return False
        if step < 0:
            self.move_child(row, before=rows[target])
        else:
            self.move_child(row, after=rows[target])
        return True


def issue_messages(issues: list[Issue], index: int) -> tuple[str, dict[int, str], list[str]]:
    """The validator's issues for the segment at `index`, sorted for the form: the name's
    problem, each rule's (by position), and the rest."""
    name_problem = ""
    rules: dict[int, list[str]] = {}
    general: list[str] = []
    for issue in issues:
        text = issue.message + (f" — {issue.fix}" if issue.fix else "")
        path = issue.path
        if len(path) >= 3 and path[0] == "segment" and path[1] == index:
            if path[2] == "name":
                name_problem = text
                continue
            if path[2] == "rules" and len(path) >= 4 and isinstance(path[3], int):
                rules.setdefault(path[3], []).append(text)
                continue
        general.append(f"{issue.key}: {text}" if path else text)
    return name_problem, {i: " · ".join(t) for i, t in rules.items()}, general
