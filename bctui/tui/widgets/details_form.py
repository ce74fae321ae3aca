"""The Details tab of a connection: favourite, on/off, labels, description, notification e-mails
and the data-point budget of a run.

Also home of `ConnectionForm`, the small base the Details, Setup and Schedule forms share: each
loads a connection, applies its fields to one, and shows a message under each field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TypeVar

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, Label, Select, Static, Switch

from bctui.engine.models import NOTIFY_WHEN, Connection, Notify, Schedule
from bctui.tui.widgets.budget_fields import budget_input, budget_mode, budget_select, parse_budget

Problems = dict[str, str]
"""Field id → what is wrong with it."""

T = TypeVar("T")

WHEN_LABELS = {"always": "after every run", "failure": "only after failures", "never": "never"}


def split_list(text: str) -> tuple[str, ...]:
    """'a, b,,c ' → ('a', 'b', 'c')."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def merge_edits(loaded: T, edited: T, current: T) -> T:
    """`current` with only what was edited (`edited` against `loaded`) applied.

    A form keeps the values it loaded while the user edits it; the file may change on disk
    meanwhile. Saving applies the fields the user changed and keeps every other field as it is
    now, so an edit made elsewhere is not reverted. Settings merge field by field; a schedule is
    one choice (its fields depend on its kind), so it is taken whole.
    """
    if edited == loaded:
        return current
    if (
        dataclasses.is_dataclass(edited)
        and not isinstance(edited, Schedule)
        and type(loaded) is type(edited) is type(current)
    ):
        changes = {
            f.name: merge_edits(
                getattr(loaded, f.name), getattr(edited, f.name), getattr(current, f.name)
            )
            for f in dataclasses.fields(edited)
        }
        return dataclasses.replace(current, **changes)  # type: ignore[type-var]
    return edited


class ConnectionForm(VerticalScroll):
    """A form over one connection's fields, with a message slot under each field."""

    FIELDS: tuple[str, ...] = ()
    """The field ids this form shows messages for."""

    class Edited(Message):
        """A field of the form changed (the screen recomputes 'unsaved' and re-validates)."""

    def __init__(self, connection: str, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="connection-form")
        self.connection = connection

    def row(self, label: str, *widgets: Widget, field: str = "") -> ComposeResult:
        """One labelled row, and the error line under it when it names a field."""
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            yield from widgets
        if field:
            yield Label("", id=f"{field}-error", classes="field-error -empty")

    def show_problems(self, problems: Mapping[str, str]) -> None:
        """Put each message under its field; clear the rest."""
        for name in self.FIELDS:
            text = problems.get(name, "")
            for label in self.query(f"#{name}-error").results(Label):
                if str(label.content) != text:  # an update costs a layout pass
                    label.update(Content(text))  # names in messages are not markup
                label.set_class(not text, "-empty")

    def field_for(self, path: tuple[str | int, ...]) -> str | None:
        """The field an issue's key path (after `connection[i]`) belongs to, if this form's."""
        return None

    def load(self, conn: Connection) -> None:
        """Show `conn`'s values."""

    def apply(self, conn: Connection) -> tuple[Connection, Problems]:
        """`conn` with this form's values, and what cannot even be held (e.g. a non-number)."""
        return conn, {}

    def edited(self) -> None:
        """Tell the screen a field may have changed (it compares with the saved values)."""
        self.post_message(self.Edited())


class DetailsForm(ConnectionForm):
    """Favourite, on/off, labels, description, who is told about runs, and the budget."""

    FIELDS = ("labels", "description", "emails", "when", "max_data_points")

    def compose(self) -> ComposeResult:
        yield from self.row(
            "Name",
            Static(Content(self.connection), id="details-name"),
        )
        yield Static(
            "rename it from the connections list (e); its history follows",
            classes="form-hint",
        )
        yield from self.row("Favourite", Switch(id="details-favorite"))
        yield from self.row(
            "On",
            Switch(id="details-enabled"),
            Static("scheduled runs only happen while on", classes="form-note"),
        )
        yield from self.row(
            "Labels",
            Input(compact=True, placeholder="comma-separated, e.g. prod, eu", id="details-labels"),
            field="labels",
        )
        yield from self.row(
            "Description",
            Input(
                compact=True, placeholder="what this connection is for", id="details-description"
            ),
            field="description",
        )
        yield Label("Notifications", classes="form-section")
        yield from self.row(
            "E-mails",
            Input(compact=True, placeholder="ops@example.com, …", id="details-emails"),
            field="emails",
        )
        yield from self.row(
            "When",
            Select(
                [(WHEN_LABELS[w], w) for w in NOTIFY_WHEN],
                allow_blank=False,
                compact=True,
                value="failure",
                id="details-when",
            ),
            field="when",
        )
        yield Label("Data-point budget", classes="form-section")
        yield from self.row(
            "Max per run",
            budget_input(None, id="details-max-data-points", owner="this connection"),
            Static("data points, shared by its export goals in order", classes="form-note"),
            field="max_data_points",
        )
        yield from self.row(
            "Over budget",
            budget_select("refuse", id="details-on-budget"),
        )

    def load(self, conn: Connection) -> None:
        self.connection = conn.name
        self.query_one("#details-name", Static).update(Content(conn.name))
        self.query_one("#details-favorite", Switch).value = conn.favorite
        self.query_one("#details-enabled", Switch).value = conn.enabled
        self.query_one("#details-labels", Input).value = ", ".join(conn.labels)
        self.query_one("#details-description", Input).value = conn.description
        self.query_one("#details-emails", Input).value = ", ".join(conn.notify.emails)
        self.query_one("#details-when", Select).value = conn.notify.when
        limit = "" if conn.max_data_points is None else str(conn.max_data_points)
        self.query_one("#details-max-data-points", Input).value = limit
        self.query_one("#details-on-budget", Select).value = conn.on_budget
        self._budget_state()

    def _budget_state(self) -> None:
        # The over-budget choice only means something while there is a budget.
        empty = not self.query_one("#details-max-data-points", Input).value.strip()
        self.query_one("#details-on-budget", Select).disabled = empty

    def apply(self, conn: Connection) -> tuple[Connection, Problems]:
        when = self.query_one("#details-when", Select).value
        notify = Notify(
            split_list(self.query_one("#details-emails", Input).value),
            when if isinstance(when, str) else conn.notify.when,  # type: ignore[arg-type]
        )
        problems: Problems = {}
        limit, problem = parse_budget(self.query_one("#details-max-data-points", Input).value)
        if problem:
            problems["max_data_points"] = problem
            limit = conn.max_data_points  # what cannot be held keeps the value as it is
        new = dataclasses.replace(
            conn,
            max_data_points=limit,
            on_budget=budget_mode(self.query_one("#details-on-budget", Select), limit),
            favorite=self.query_one("#details-favorite", Switch).value,
            enabled=self.query_one("#details-enabled", Switch).value,
            labels=split_list(self.query_one("#details-labels", Input).value),
            description=self.query_one("#details-description", Input).value,
            notify=notify,
        )
        return new, problems

    def field_for(self, path: tuple[str | int, ...]) -> str | None:
        match path:
            case ("labels", *_):
                return "labels"
            case ("description", *_):
                return "description"
            case ("notify", "emails", *_):
                return "emails"
            case ("notify", "when", *_):
                return "when"
            case ("notify",):
                return "emails"
            case ("max_data_points" | "on_budget", *_):
                return "max_data_points"
        return None

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "details-max-data-points":
            self._budget_state()
        self.edited()

    def on_switch_changed(self, event: Switch.Changed) -> None:
        self.edited()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.edited()
