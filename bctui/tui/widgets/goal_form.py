"""What the import and export goal editors share: saving the goal into its connection (with the
validator's issues put under the fields they name), backing out with unsaved changes, the dry
run, and the store's property names for completion."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Label

from bctui.engine.config import Issue
from bctui.engine.models import Config, Connection, Goal
from bctui.tui.app import BctuiApp
from bctui.tui.widgets.goal_rows import RowErrors
from bctui.tui.widgets.goal_suggest import PropertySuggester

PROPERTY_PRELOAD = 2000
"""Property names loaded for completion at once; past that, completion asks the store."""


class GoalEditorBase(Screen[None]):
    """A goal editor: subclasses build the goal from their fields and place the messages."""

    GOAL_TYPE: ClassVar[str] = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save (stays)", id="goal-save", priority=True,
                tooltip="Validate and save the goal to connections.toml; the editor stays open"),
        Binding("ctrl+d", "dry_run", "Dry run", id="goal-dry-run", priority=True,
                tooltip="Save, then show what a run of this goal would change (nothing is sent)"),
        Binding("ctrl+a", "add_mapping", "Add mapping", id="goal-add-mapping", priority=True,
                tooltip="Add a mapping row after the highlighted one and edit it"),
        Binding("ctrl+g", "identifiers", "Identifiers", id="goal-identifiers", show=False,
                tooltip="Edit the identifier rules"),
        Binding("escape", "back", "Back", id="goal-back",
                tooltip="Back to the connection (asks first when there are unsaved changes)"),
    ]  # fmt: skip

    FIELDS: ClassVar[tuple[str, ...]] = ("general",)
    """Field names with a `#err-{name}` label under them."""

    def __init__(self, connection: str, goal: str | None, draft: Goal | None = None) -> None:
        super().__init__()
        self.connection_name = connection
        self.goal_name = goal
        self.draft = draft
        self.properties = PropertySuggester(self._lookup_properties)
        found = self._stored_goal()
        self.saved: Goal | None = found if found is not None else None
        start = found if found is not None else draft
        if start is None:
            raise ValueError(f"goal {goal!r} not found in connection {connection!r} and no draft")
        self.start: Goal = start

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    @property
    def conn(self) -> Connection:
        """The connection as the config in force has it."""
        conn = self._config().connection(self.connection_name)
        assert conn is not None, f"connection {self.connection_name!r} is gone"
        return conn

    def _config(self) -> Config:
        # Also called from __init__: `self.app` is then the running app (Textual's context).
        return self.bctui.config

    def _stored_goal(self) -> Goal | None:
        if self.goal_name is None:
            return None
        conn = self._config().connection(self.connection_name)
        return conn.goal(self.goal_name) if conn is not None else None

    def header_text(self) -> Text:
        """The first line: what is edited, and where (names shown as typed, never as markup)."""
        name = self.start.name
        state = "" if self.saved is not None else " ─ new, not saved yet"
        return Text(f' {self.GOAL_TYPE.capitalize()} "{name}" ─ {self.connection_name}{state}')

    def on_mount(self) -> None:
        # Textual calls each class's on_mount: subclasses add theirs without calling this one.
        self._preload_properties()
        # Focusing the first field may scroll the form; start with its top in view.
        self.call_after_refresh(lambda: self.query_one("#goal-form").scroll_home(animate=False))

    # -- for subclasses ------------------------------------------------------------------

    def build_goal(self) -> tuple[Goal | None, dict[str, str], RowErrors]:
        """The goal the fields describe; with the problems the model cannot even hold."""
        raise NotImplementedError

    def show_problems(self, fields: Mapping[str, str], rows: RowErrors) -> None:
        """Put each message under its field (an empty mapping clears them)."""
        for name in self.FIELDS:
            label = self.query_one(f"#err-{name}", Label)
            text = fields.get(name, "")
            label.update(Text(text))  # the validator's words quote names: never markup
            label.display = bool(text)

    def field_for(self, rest: tuple[str | int, ...]) -> str:
        """The field of an issue path below the goal ('general' when none fits)."""
        head = rest[0] if rest else ""
        return head if isinstance(head, str) and head in self.FIELDS else "general"

    # -- saving --------------------------------------------------------------------------

    def dirty(self) -> bool:
        """Whether the fields differ from the goal as saved."""
        goal, fields, rows = self.build_goal()
        return goal is None or fields != {} or rows != {} or goal != self.saved

    def save(self) -> bool:
        """Validate and save; True when saved. Problems go under their fields."""
        goal, fields, rows = self.build_goal()
        if goal is None or fields or rows:
            self.show_problems(fields, rows)
            self.notify("not saved: see the messages under the fields", severity="error")
            return False
        base = self.bctui.config
        conn = base.connection(self.connection_name)
        if conn is None:
            self.show_problems({"general": f'connection "{self.connection_name}" is gone'}, {})
            return False
        ci = base.connections.index(conn)
        current = conn.goal(self.goal_name) if self.goal_name is not None else None
        if current is None:
            goals = (*conn.goals, goal)
            gi = len(conn.goals)
        else:
            gi = conn.goals.index(current)
            goals = tuple(goal if g is current else g for g in conn.goals)
        new_conn = dataclasses.replace(conn, goals=goals)
        config = dataclasses.replace(
            base, connections=tuple(new_conn if c is conn else c for c in base.connections)
        )
        issues = self.bctui.try_save(base, config, done=f'{goal.type} goal "{goal.name}" saved')
        if issues:
            self._place(issues, ci, gi)
            return False
        self.goal_name = goal.name
        self.saved = self._stored_goal()
        self.show_problems({}, {})
        self._update_header()
        return True

    def _place(self, issues: list[Issue], ci: int, gi: int) -> None:
        prefix: tuple[str | int, ...] = ("connection", ci, "goal", gi)
        fields: dict[str, list[str]] = {}
        rows: RowErrors = {}
        for issue in issues:
            text = issue.message + (f" — {issue.fix}" if issue.fix else "")
            path = tuple(issue.path)
            if path[: len(prefix)] != prefix:
                fields.setdefault("general", []).append(f"{issue.key}: {text}")
                continue
            rest = path[len(prefix) :]
            if len(rest) >= 2 and rest[0] == "mappings" and isinstance(rest[1], int):
                name = str(rest[2]) if len(rest) > 2 else ""
                rows[(rest[1], name)] = text
                continue
            fields.setdefault(self.field_for(rest), []).append(text)
        self.show_problems({k: "\n".join(v) for k, v in fields.items()}, rows)

    def _update_header(self) -> None:
        self.query_one("#goal-header", Label).update(self.header_text())

    def action_save(self) -> None:
        """Validate and save the goal."""
        self.save()

    @work
    async def action_back(self) -> None:
        """Leave, asking first when there are unsaved changes."""
        if self.dirty():
            from bctui.tui.screens.confirm import ConfirmModal

            sure = await self.app.push_screen_wait(
                ConfirmModal(
                    "Discard the unsaved changes?",
                    "ctrl+s saves them; leaving now forgets them.",
                    yes="Discard",
                )
            )
            if not sure:
                return
        self.dismiss()

    def action_dry_run(self) -> None:
        """Save when needed, then open the dry-run preview of this goal."""
        if self.dirty() and not self.save():
            self.notify("the dry run needs the goal saved first; fix the problems shown",
                        severity="error")  # fmt: skip
            return
        from bctui.tui.screens.dry_run import DryRunScreen

        assert self.goal_name is not None
        self.app.push_screen(DryRunScreen(self.connection_name, self.goal_name))

    def action_add_mapping(self) -> None:
        """Add a mapping row and edit it."""
        from bctui.tui.widgets.mapping_grid import MappingGrid

        # The grid brings the focused field into view once the new row is laid out.
        self.query_one(MappingGrid).action_add_row()

    def action_identifiers(self) -> None:
        """Edit the identifier rules."""
        from bctui.tui.widgets.identifier_rules import IdentifierRulesField

        self.query_one(IdentifierRulesField).edit()

    # -- property names for completion ---------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="goal-properties")
    def _preload_properties(self) -> None:
        from bctui.store.properties import property_names

        workspace = self.bctui.workspace
        if workspace is None:
            return
        with workspace.store() as store:
            names = property_names(store, limit=PROPERTY_PRELOAD + 1)
        # Handing a list over is atomic; the suggester only reads it.
        self.properties.complete = len(names) <= PROPERTY_PRELOAD
        self.properties.names = names[:PROPERTY_PRELOAD]

    def _lookup_properties(self, prefix: str) -> list[str]:
        from bctui.store.properties import property_names

        workspace = self.bctui.workspace
        if workspace is None:
            return []
        with workspace.store() as store:
            return property_names(store, prefix, limit=5)
