"""The import goal editor: a Braze audience picked live, optional campaign filter, identifier
rules, allow-create, the mapping grid, 'add remaining fields' and the export wait settings."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Checkbox, Footer, Input, Label, Select

from bctui.engine.models import Audience, ImportGoal, ImportMapping, Remaining, WaitSettings
from bctui.tui.widgets.audience_picker import AudiencePicker, CampaignFilter
from bctui.tui.widgets.goal_form import GoalEditorBase
from bctui.tui.widgets.goal_rows import RowErrors
from bctui.tui.widgets.identifier_rules import IdentifierRulesField
from bctui.tui.widgets.mapping_grid import STRATEGY_OPTIONS, MappingGrid

WAIT_FIELDS = (("poll_seconds", "poll every", "s"), ("quiet_seconds", "complete after", "s quiet"),
               ("timeout_minutes", "give up after", "min"))  # fmt: skip


class ImportGoalScreen(GoalEditorBase):
    """Edit an import goal (Braze → store)."""

    CSS_PATH = "import_goal.tcss"
    HELP_TITLE = "Import goal"
    GOAL_TYPE = "import"
    AUTO_FOCUS = "#audience-filter"
    FIELDS = ("general", "audience", "identifiers", "mappings", "remaining", "wait")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+o", "campaigns", "Campaigns", id="import-campaigns", show=False,
                tooltip="Show or hide the campaign filter (receivers of chosen campaigns only)"),
        Binding("ctrl+r", "reload_segments", "Reload segments", id="import-reload", show=False,
                tooltip="Fetch the Braze segment list again"),
    ]  # fmt: skip

    def __init__(self, connection: str, goal: str | None, draft: ImportGoal | None = None) -> None:
        super().__init__(connection, goal, draft)
        assert isinstance(self.start, ImportGoal)
        self.goal: ImportGoal = self.start

    def compose(self) -> ComposeResult:
        goal = self.goal
        secrets = self.bctui.workspace.secrets if self.bctui.workspace else None
        assert secrets is not None
        yield Label(self.header_text(), id="goal-header")
        with VerticalScroll(id="goal-form"):
            yield Label("Audience (Braze segment)", classes="section")
            yield AudiencePicker(self.conn, secrets, goal.audience, id="audience")
            yield Label("", id="err-audience", classes="field-error")
            yield Label("", id="campaign-summary")
            yield CampaignFilter(self.conn, secrets, goal.audience.campaign_ids, id="campaigns")
            with Horizontal(classes="row"):
                yield Label("Identifiers", classes="row-label")
                yield IdentifierRulesField(goal.identifiers, properties=self.properties,
                                           id="identifiers")  # fmt: skip
            yield Label("", id="err-identifiers", classes="field-error")
            yield Checkbox("Allow creation of new profiles", goal.allow_create,
                           id="allow-create", compact=True)  # fmt: skip
            yield Label("Mappings  [dim]ctrl+a add · ctrl+x delete · \\[ ] move[/dim]",
                        classes="section")  # fmt: skip
            yield MappingGrid("import", goal.mappings, properties=self.properties, id="mappings")
            yield Label("", id="err-mappings", classes="field-error")
            with Horizontal(classes="row", id="remaining-row"):
                yield Checkbox("Add remaining fields", goal.remaining.enabled,
                               id="remaining-enabled", compact=True)  # fmt: skip
                yield Label("prefix", classes="inline-label")
                yield Input(goal.remaining.prefix, id="remaining-prefix", compact=True)
                yield Select(STRATEGY_OPTIONS, value=goal.remaining.strategy, allow_blank=False,
                             id="remaining-strategy", compact=True)  # fmt: skip
            yield Label("", id="err-remaining", classes="field-error")
            with Horizontal(classes="row", id="wait-row"):
                yield Label("Export", classes="row-label")
                for name, before, after in WAIT_FIELDS:
                    yield Label(before, classes="inline-label")
                    yield Input(f"{getattr(goal.wait, name):g}", id=f"wait-{name}",
                                type="number", compact=True, classes="wait-input")  # fmt: skip
                    yield Label(after, classes="inline-unit")
            yield Label("", id="err-wait", classes="field-error")
            yield Label("", id="err-general", classes="field-error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(CampaignFilter).display = False
        self._show_campaign_summary()
        self.show_problems({}, {})

    # -- building the goal ---------------------------------------------------------------

    def build_goal(self) -> tuple[ImportGoal | None, dict[str, str], RowErrors]:
        fields: dict[str, str] = {}
        picker = self.query_one(AudiencePicker)
        campaigns = self.query_one(CampaignFilter).chosen
        chosen = picker.audience or Audience("")
        audience = Audience(chosen.segment_id, chosen.name, campaigns)
        grid = self.query_one(MappingGrid)
        mappings = grid.mappings()
        rows = _mapping_problems(mappings)
        wait_values: dict[str, float] = {}
        for name, _, _ in WAIT_FIELDS:
            text = self.query_one(f"#wait-{name}", Input).value.strip()
            try:
                wait_values[name] = float(text)
            except ValueError:
                fields["wait"] = f'"{text}" is not a number — write e.g. 10 or 0.5'
        strategy = self.query_one("#remaining-strategy", Select).value
        remaining = Remaining(
            self.query_one("#remaining-enabled", Checkbox).value,
            self.query_one("#remaining-prefix", Input).value,
            str(strategy) if isinstance(strategy, str) else "set",
        )
        if "wait" in fields:
            return None, fields, rows
        goal = ImportGoal(
            name=self.goal.name,
            audience=audience,
            identifiers=self.query_one(IdentifierRulesField).rules,
            mappings=tuple(m for m in mappings if isinstance(m, ImportMapping)),
            enabled=self.goal.enabled,
            allow_create=self.query_one("#allow-create", Checkbox).value,
            remaining=remaining,
            wait=WaitSettings(**wait_values),
        )
        return goal, fields, rows

    def show_problems(self, fields: Mapping[str, str], rows: RowErrors) -> None:
        super().show_problems(fields, rows)
        self.query_one(MappingGrid).set_errors(rows)

    # -- events --------------------------------------------------------------------------

    @on(CampaignFilter.Changed)
    def _campaigns_changed(self, message: CampaignFilter.Changed) -> None:
        self._show_campaign_summary()

    def _show_campaign_summary(self) -> None:
        panel = self.query_one(CampaignFilter)
        ids = panel.chosen
        what = "any" if not ids else f"receivers of any of {len(ids)} chosen"
        key = "ctrl+o hides the list" if panel.display else (
            "ctrl+o shows them" if ids else "ctrl+o narrows to receivers of chosen campaigns"
        )  # fmt: skip
        self.query_one("#campaign-summary", Label).update(f"Campaigns: {what} — {key}")

    def action_campaigns(self) -> None:
        """Show or hide the campaign filter (fetched the first time it is shown)."""
        panel = self.query_one(CampaignFilter)
        panel.display = not panel.display
        self._show_campaign_summary()
        if panel.display:
            panel.load()
            panel.scroll_visible()
            listing = panel.query_one("#campaign-list")
            if listing.display:
                listing.focus()

    def action_reload_segments(self) -> None:
        """Fetch the segment list again."""
        self.query_one(AudiencePicker).reload()


def _mapping_problems(mappings: tuple[object, ...]) -> RowErrors:
    """What is clearer said per row before saving; the rest (a property mapped twice, an unknown
    field) is the validator's, whose issues land under the same rows."""
    rows: RowErrors = {}
    for index, mapping in enumerate(mappings):
        if not isinstance(mapping, ImportMapping):
            continue
        if not mapping.braze:
            rows[(index, "braze")] = "a Braze field is needed, e.g. first_name"
        elif mapping.braze.startswith("custom_attributes") and mapping.braze.endswith("."):
            rows[(index, "braze")] = (
                f'"{mapping.braze}" names no attribute — write custom_attributes.NAME'
            )
        if not mapping.property:
            rows[(index, "property")] = "a profile property is needed"
    return rows
