"""The export goal editor: a local segment (with live member counts), identifier rules,
allow-create, all-attributes, the minimum permission level, the data-point budget and the
mapping grid."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Checkbox, Footer, Input, Label, Select

from bctui.engine.models import ExportGoal, ExportMapping
from bctui.engine.summary import budget_text
from bctui.store.model import PERMISSION_LEVELS
from bctui.tui.widgets.budget_fields import budget_input, budget_mode, budget_select, parse_budget
from bctui.tui.widgets.goal_form import GoalEditorBase
from bctui.tui.widgets.goal_rows import RowErrors
from bctui.tui.widgets.goal_segment_picker import SegmentPicker
from bctui.tui.widgets.identifier_rules import IdentifierRulesField
from bctui.tui.widgets.mapping_grid import MappingGrid

PERMISSION_MEANINGS = {
    "DO_NOT_TRACK": "every profile, even do-not-track",
    "ANONYMOUS": "anonymous and personal profiles",
    "PERSONAL": "personal profiles only",
}


@dataclass
class KeptTypes(Message):
    """The mapping types the goal's runs decided: Braze attribute → (property, type)."""

    goal: str
    kept: dict[str, tuple[str, str]]


class ExportGoalScreen(GoalEditorBase):
    """Edit an export goal (store → Braze)."""

    CSS_PATH = "export_goal.tcss"
    HELP_TITLE = "Export goal"
    GOAL_TYPE = "export"
    AUTO_FOCUS = "#segment-list"
    FIELDS = ("general", "segment", "identifiers", "mappings", "min_permission_level",
              "max_data_points")  # fmt: skip

    def __init__(self, connection: str, goal: str | None, draft: ExportGoal | None = None) -> None:
        super().__init__(connection, goal, draft)
        assert isinstance(self.start, ExportGoal)
        self.goal: ExportGoal = self.start

    def compose(self) -> ComposeResult:
        goal = self.goal
        workspace = self.bctui.workspace
        assert workspace is not None
        yield Label(self.header_text(), id="goal-header")
        with VerticalScroll(id="goal-form"):
            yield Label("Segment (local)", classes="section")
            yield SegmentPicker(self.bctui.config.segments, goal.segment, workspace.store,
                                id="segment")  # fmt: skip
            yield Label("", id="err-segment", classes="field-error")
            with Horizontal(classes="row"):
                yield Label("Identifiers", classes="row-label")
                yield IdentifierRulesField(goal.identifiers, properties=self.properties,
                                           id="identifiers")  # fmt: skip
            yield Label("", id="err-identifiers", classes="field-error")
            yield Checkbox("Allow creation of new Braze users", goal.allow_create,
                           id="allow-create", compact=True)  # fmt: skip
            yield Label("off ⇒ only existing Braze users are updated", classes="hint")
            yield Checkbox("Send all attributes", goal.all_attributes, id="all-attributes",
                           compact=True)  # fmt: skip
            yield Label("every mapped attribute of a changed profile (BlueConic behaviour); "
                        "off: only the attributes that changed", classes="hint")  # fmt: skip
            with Horizontal(classes="row", id="permission-row"):
                yield Label("Minimum permission level", classes="inline-label")
                yield Select([(f"{p} — {PERMISSION_MEANINGS[p]}", p) for p in PERMISSION_LEVELS],
                             value=goal.min_permission_level, allow_blank=False,
                             id="min-permission", compact=True)  # fmt: skip
            yield Label("", id="err-min_permission_level", classes="field-error")
            with Horizontal(classes="row", id="budget-row"):
                yield Label("Max data points", classes="inline-label")
                yield budget_input(goal.max_data_points, id="max-data-points",
                                   owner="this goal")  # fmt: skip
                yield Label("when over budget", classes="inline-label")
                yield budget_select(goal.on_budget, id="on-budget")
            yield Label(self._budget_hint(), id="budget-hint", classes="hint")
            yield Label("", id="err-max_data_points", classes="field-error")
            yield Label("Mappings  [dim]ctrl+a add · ctrl+x delete · \\[ ] move[/dim]",
                        classes="section")  # fmt: skip
            yield MappingGrid("export", goal.mappings, properties=self.properties, id="mappings")
            yield Label("", id="err-mappings", classes="field-error")
            yield Label("", id="err-general", classes="field-error")
        yield Footer()

    def on_mount(self) -> None:
        self._budget_state()
        self.show_problems({}, {})
        if self.goal_name is not None:
            self._load_kept_types(self.goal_name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="goal-types")
    def _load_kept_types(self, goal: str) -> None:
        from bctui.engine.runs import state as st

        workspace = self.bctui.workspace
        if workspace is None:
            return
        with workspace.store() as store:
            kept = st.export_types(store, st.goal_key(self.connection_name, goal))
        self.post_message(KeptTypes(goal, kept))

    @on(KeptTypes)
    def _kept_types(self, message: KeptTypes) -> None:
        if message.goal == self.goal_name:  # not an answer about a goal since renamed
            self.query_one(MappingGrid).set_kept(message.kept)

    def _budget_hint(self) -> str:
        conn = self.conn
        if conn.max_data_points is None:
            return "the most data points one run of this goal may send; empty: no budget"
        shared = budget_text(conn.max_data_points, conn.on_budget)
        return f"the connection's applies too: {shared}, shared by its export goals"

    @on(Input.Changed, "#max-data-points")
    def _budget_state(self) -> None:
        """The over-budget choice only means something while there is a budget."""
        empty = not self.query_one("#max-data-points", Input).value.strip()
        self.query_one("#on-budget", Select).disabled = empty

    def build_goal(self) -> tuple[ExportGoal | None, dict[str, str], RowErrors]:
        fields: dict[str, str] = {}
        mappings = tuple(
            m for m in self.query_one(MappingGrid).mappings() if isinstance(m, ExportMapping)
        )
        rows: RowErrors = {}
        for index, mapping in enumerate(mappings):
            if not mapping.braze:
                rows[(index, "braze")] = "a Braze attribute name is needed"
            if mapping.source == "property" and not mapping.value:
                rows[(index, "value")] = "the property to send is needed"
        level = self.query_one("#min-permission", Select).value
        limit, problem = parse_budget(self.query_one("#max-data-points", Input).value)
        if problem:
            fields["max_data_points"] = problem
        goal = ExportGoal(
            name=self.goal.name,
            segment=self.query_one(SegmentPicker).chosen,
            identifiers=self.query_one(IdentifierRulesField).rules,
            mappings=mappings,
            enabled=self.goal.enabled,
            allow_create=self.query_one("#allow-create", Checkbox).value,
            all_attributes=self.query_one("#all-attributes", Checkbox).value,
            min_permission_level=str(level) if isinstance(level, str) else "ANONYMOUS",
            max_data_points=limit,
            on_budget=budget_mode(self.query_one("#on-budget", Select), limit),
        )
        return goal, fields, rows

    def field_for(self, rest: tuple[str | int, ...]) -> str:
        if rest and rest[0] == "on_budget":
            return "max_data_points"
        return super().field_for(rest)

    def show_problems(self, fields: Mapping[str, str], rows: RowErrors) -> None:
        super().show_problems(fields, rows)
        self.query_one(MappingGrid).set_errors(rows)
