"""The segment editor: name, match, an ordered list of rules, and the member count as it changes.

The rule rows and how their values are read live in `bctui.tui.widgets.segment_rules`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Select, Static

from bctui.engine.edits import replace_segment, segment_name_problem
from bctui.engine.models import Config
from bctui.errors import BctuiError
from bctui.store.properties import property_names
from bctui.store.segments import SegmentDef
from bctui.tui.app import BctuiApp
from bctui.tui.screens.confirm import ConfirmModal
from bctui.tui.screens.segments import users_of
from bctui.tui.widgets.segment_rules import (
    RuleList,
    RuleRow,
    issue_messages,
    parse_value,
    typed_value,
)

__all__ = ["RuleRow", "SegmentEditorScreen", "parse_value", "typed_value"]

DEBOUNCE_SECONDS: Final = 0.3
_MATCHES: Final = (("all rules (AND)", "all"), ("any rule (OR)", "any"))

FormState = tuple[str, str, tuple[tuple[str, str, str], ...]]


class SegmentEditorScreen(Screen[None]):
    """Edit (or create) one local segment, with its member count kept live."""

    CSS_PATH = "segment_editor.tcss"
    HELP_TITLE = "Segment editor"
    AUTO_FOCUS = "#seg-name"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="segment-save",
                tooltip="Save the segment to connections.toml and go back"),
        Binding("ctrl+n", "add_rule", "Add rule", id="segment-add-rule",
                tooltip="Add a rule below the one with the cursor"),
        Binding("ctrl+r", "remove_rule", "Remove rule", id="segment-remove-rule",
                tooltip="Remove the rule with the cursor"),
        Binding("f7,alt+up", "move_rule(-1)", "Rule up", id="segment-rule-up", show=False,
                tooltip="Move the rule with the cursor up"),
        Binding("f8,alt+down", "move_rule(1)", "Rule down", id="segment-rule-down", show=False,
                tooltip="Move the rule with the cursor down"),
        Binding("f5", "reload", "Reload segment", id="segment-reload",
                tooltip="After connections.toml changed this segment: load its new version"),
        Binding("escape", "back", "Back", id="segment-back",
                tooltip="Back to the segments (asks before dropping changes)"),
    ]  # fmt: skip

    @dataclass
    class Counted(Message):
        """The member count of the rules as they were at request `seq`."""

        seq: int
        count: int | None
        total: int | None = None
        error: str = ""

    @dataclass
    class NamesLoaded(Message):
        """The store's property names, for completion."""

        names: list[str]

    def __init__(self, name: str | None, draft: SegmentDef | None = None) -> None:
        super().__init__()
        self.original = name
        """The name of the segment being edited in the config (None: a new segment)."""
        self.draft = draft
        self._names: list[str] = []
        self._seq = 0
        self._timer: Timer | None = None
        self._initial: FormState | None = None
        self._base: Config | None = None
        self._total: int | None = None
        self._saving = False
        self._conflict: Literal["", "changed", "deleted"] = ""
        self._properties = ""
        self.shown_count: int | None = None
        """The member count on screen while it matches the rules (None while counting)."""

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def _start(self) -> SegmentDef:
        if self.draft is not None:
            return self.draft
        existing = self.bctui.config.segment(self.original) if self.original else None
        return existing or SegmentDef("", "all", ())

    def compose(self) -> ComposeResult:
        self._base = self.bctui.config
        start = self._start()
        title = f"Segments › {self.original or 'new segment'}"
        used = users_of(self.bctui.config, self.original) if self.original else []
        exported = ", ".join(f"{c} / {g}" for c, g in used)
        detail = f"exported by {exported}" if used else "no export goal uses it"
        yield Label(f" {title} ─ {detail}", id="seg-header", markup=False)
        with Horizontal(id="seg-body"):
            with VerticalScroll(id="seg-form") as form:
                form.border_title = "Segment"
                yield Label("", id="seg-error", classes="field-error", markup=False)
                with Horizontal(id="seg-top"):
                    yield Label("Name", classes="seg-label")
                    yield Input(start.name, placeholder="vip", id="seg-name")
                    yield Label("Match", classes="seg-label")
                    yield Select(_MATCHES, value=start.match, allow_blank=False, id="seg-match")
                yield Label("", id="seg-name-error", classes="field-error", markup=False)
                yield Label("Rules", id="seg-rules-title")
                yield RuleList(start.rules, self._names, id="seg-rules")
                yield Label("", id="seg-no-rules", classes="muted")
                yield Static(
                    "ctrl+n add rule · ctrl+r remove · f7/f8 move · ctrl+s save · escape back",
                    id="seg-keys",
                )
            yield Static(self._properties, id="seg-properties", markup=False)
        yield Label("", id="seg-conflict", markup=False)
        yield Label("", id="seg-count", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.bctui.config_changed.subscribe(self, self._config_changed)
        self._prepare()
        self._load_names()

    def _prepare(self) -> None:
        """Set up a freshly composed form."""
        for selector in ("#seg-name-error", "#seg-error", "#seg-conflict"):
            self.query_one(selector, Label).display = False
        self.on_resize()
        self._rules_changed()
        self._initial = self._state()
        self._request_count()

    def on_resize(self) -> None:
        self.query_one("#seg-body").set_class(self.size.width >= 120, "-wide")

    # -- the form --------------------------------------------------------------------------

    @property
    def rows(self) -> list[RuleRow]:
        """The rule rows, in order."""
        return self.query_one(RuleList).rows

    def _state(self) -> FormState:
        name = self.query_one("#seg-name", Input).value
        match = str(self.query_one("#seg-match", Select).value)
        return name, match, tuple(row.raw() for row in self.rows)

    def read(self) -> tuple[SegmentDef | None, dict[int, str]]:
        """The segment the form describes (None when a rule is wrong), and each wrong rule's
        problem by position."""
        name = self.query_one("#seg-name", Input).value.strip()
        match = cast(Literal["all", "any"], str(self.query_one("#seg-match", Select).value))
        rules, problems = self.query_one(RuleList).read()
        return (None, problems) if problems else (SegmentDef(name, match, rules), {})

    def _rules_changed(self) -> None:
        empty = self.query_one("#seg-no-rules", Label)
        empty.display = not self.rows
        empty.update("No rules: with match all, everyone is a member — ctrl+n adds a rule.")

    @on(Input.Changed)
    @on(Select.Changed)
    def _form_changed(self, event: Message) -> None:
        control = getattr(event, "control", None)
        if control is not None and control.id == "seg-name":
            self.query_one("#seg-name-error", Label).display = False
            return
        self._schedule_count()

    # -- live count ------------------------------------------------------------------------

    def _schedule_count(self) -> None:
        """Count again once the typing pauses."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE_SECONDS, self._request_count)

    def _request_count(self) -> None:
        self._timer = None
        self._seq += 1
        self.shown_count = None
        segment, problems = self.read()
        label = self.query_one("#seg-count", Label)
        if segment is None:
            first = problems[min(problems)]
            label.update(f"members: — (rule {min(problems) + 1}: {first})")
            label.set_class(True, "-stale")
            return
        label.set_class(True, "-stale")
        label.update(f"members: counting…{self._total_text()}")
        self._count(self._seq, dataclasses.replace(segment, name=segment.name or "draft"))

    def _total_text(self) -> str:
        return "" if self._total is None else f" of {self._total:,} profiles"

    @work(thread=True, exclusive=True, exit_on_error=False, group="segment-editor-count")
    def _count(self, seq: int, segment: SegmentDef) -> None:
        workspace = self.bctui.workspace
        assert workspace is not None
        try:
            with workspace.store() as store:
                total = store.count()
                count = store.count(segment)
        except BctuiError as exc:
            self.post_message(self.Counted(seq, None, None, exc.message))
            return
        self.post_message(self.Counted(seq, count, total))

    @on(Counted)
    def _counted(self, message: Counted) -> None:
        if message.seq != self._seq:
            return  # the rules changed since this count was asked for
        label = self.query_one("#seg-count", Label)
        label.set_class(False, "-stale")
        if message.error:
            label.update(f"members: cannot count — {message.error}")
            return
        self._total = message.total
        self.shown_count = message.count
        label.update(f"members: {message.count:,}{self._total_text()}")

    # -- property names --------------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="segment-editor-names")
    def _load_names(self) -> None:
        workspace = self.bctui.workspace
        assert workspace is not None
        with workspace.store() as store:
            names = property_names(store, limit=500)
        self.post_message(self.NamesLoaded(names))

    @on(NamesLoaded)
    def _names_loaded(self, message: NamesLoaded) -> None:
        self._names = message.names
        self.query_one(RuleList).set_names(message.names)
        shown = ", ".join(message.names[:60]) or "none yet (load profiles first)"
        self._properties = f"Properties in the store:\n{shown}"
        self.query_one("#seg-properties", Static).update(self._properties)

    # -- rules -----------------------------------------------------------------------------

    def _focused_row(self) -> RuleRow | None:
        node = self.focused
        while node is not None and not isinstance(node, RuleRow):
            node = node.parent  # type: ignore[assignment]
        return node

    async def action_add_rule(self) -> None:
        """Add a rule below the focused one (or at the end)."""
        row = await self.query_one(RuleList).add(after=self._focused_row())
        row.focus_property()
        self._rules_changed()
        self._schedule_count()

    async def action_remove_rule(self) -> None:
        """Remove the focused rule (or the last one)."""
        rows = self.rows
        current = self._focused_row() or (rows[-1] if rows else None)
        if current is None:
            return
        after = await self.query_one(RuleList).remove_row(current)
        if after is not None:
            after.focus_property()
        else:
            self.query_one("#seg-name", Input).focus()
        self._rules_changed()
        self._schedule_count()

    async def action_move_rule(self, step: int) -> None:
        """Move the focused rule up (-1) or down (1)."""
        current = self._focused_row()
        if current is None:
            return
        focused = self.focused
        if not self.query_one(RuleList).move(current, step):
            return
        if focused is not None:
            focused.focus()
        self._schedule_count()

    # -- save and back ---------------------------------------------------------------------

    def _config_changed(self, config: Config) -> None:
        """Rebase on a config reloaded from disk, unless it changed this very segment."""
        base = self._base
        if base is None or config is base or self._saving:
            return
        before = base.segment(self.original) if self.original else None
        after = config.segment(self.original) if self.original else None
        if before == after:
            self._base = config  # the edits apply to the new config as well
            return
        self._base = config
        self._conflict = "deleted" if after is None else "changed"
        self._show_conflict()
        self.refresh_bindings()

    def _show_conflict(self) -> None:
        label = self.query_one("#seg-conflict", Label)
        label.display = bool(self._conflict)
        what = {"changed": "changed in connections.toml meanwhile: f5 loads that version (your "
                "edits here are dropped)", "deleted": "removed from connections.toml meanwhile: "
                "f5 keeps your edits as a new segment"}.get(self._conflict)  # fmt: skip
        if what:
            label.update(f'Segment "{self.original}" was {what}.')

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "reload":
            return bool(self._conflict)
        return True

    async def action_reload(self) -> None:
        """After a change on disk: load the segment's new version, or keep the edits as a new
        segment when it was removed."""
        if not self._conflict:
            return
        if self._conflict == "deleted":
            self.original = None  # saved as a new segment; escape still asks first
        else:
            self.draft = None
            await self.recompose()
            self._prepare()
        self._conflict = ""
        self._show_conflict()
        self.refresh_bindings()

    def _show_problems(self, name_problem: str, rule_problems: dict[int, str],
                       general: list[str]) -> None:  # fmt: skip
        label = self.query_one("#seg-name-error", Label)
        label.update(name_problem)
        label.display = bool(name_problem)
        for index, row in enumerate(self.rows):
            row.set_error(rule_problems.get(index, ""))
        error = self.query_one("#seg-error", Label)
        error.update("\n".join(general))
        error.display = bool(general)

    def action_save(self) -> None:
        """Save to connections.toml (export goals follow a rename) and go back."""
        base = self._base
        assert base is not None
        if self._conflict:
            self._show_conflict()
            self.notify("the segment changed in connections.toml meanwhile: f5 first",
                        title="Not saved", severity="error")  # fmt: skip
            return
        segment, rule_problems = self.read()
        name = self.query_one("#seg-name", Input).value.strip()
        name_problem = segment_name_problem(base, name, self.original)
        self._show_problems(name_problem, rule_problems, [])
        if segment is None or name_problem:
            count = len(rule_problems) + bool(name_problem)
            self.notify(f"{count} problem{'s' if count > 1 else ''} to fix first",
                        title="Not saved", severity="error")  # fmt: skip
            return
        new = replace_segment(base, self.original, segment)
        index = next(i for i, s in enumerate(new.segments) if s is segment)
        old = base.segment(self.original) if self.original else None
        renamed = {old.name: segment.name} if old is not None and old.name != segment.name else {}
        self._saving = True
        try:
            issues = self.bctui.try_save(
                base, new, renamed_segments=renamed or None,
                done=f'segment "{segment.name}" saved',
            )  # fmt: skip
        finally:
            self._saving = False
        if not issues:
            self._initial = self._state()
            self.dismiss()
            return
        self._show_problems(*issue_messages(issues, index))

    @work
    async def action_back(self) -> None:
        """Back to the segments; asks first when there are unsaved changes."""
        if self._initial is not None and self._state() != self._initial:
            sure = await self.app.push_screen_wait(
                ConfirmModal(
                    "Drop your changes to this segment?", "Nothing has been saved yet.", yes="Drop"
                )
            )
            if not sure:
                return
        self.dismiss()
