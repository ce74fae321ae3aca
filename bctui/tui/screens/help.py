"""`?`: the keys of the screen underneath, read from the same bindings as its footer and palette."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static

# Keys every Textual screen has; they are listed once at the end rather than among the actions.
_GENERIC = {
    "focus_next", "focus_previous", "app.focus_next", "app.focus_previous",
    "copy_text", "screen.copy_text", "app.copy_text",
}  # fmt: skip


class HelpScreen(ModalScreen[None]):
    """Every key that works on a screen, with what it does."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help-close"),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.target = screen
        self.rows = self._rows(screen)

    @staticmethod
    def _rows(screen: Screen[object]) -> list[tuple[str, str]]:
        """(keys, what they do), the screen's own first, then the app's, then the focused
        widget's; keys bound to the same action are shown together."""
        app = screen.app
        order = {screen: 0, app: 1}
        actives = sorted(screen.active_bindings.values(), key=lambda a: order.get(a.node, 2))
        merged: dict[tuple[str, str], list[str]] = {}
        for active in actives:
            binding = active.binding
            if not binding.description or binding.system or binding.action in _GENERIC:
                continue
            text = binding.description
            if binding.tooltip and binding.tooltip != binding.description:
                text += f" — {binding.tooltip}"
            keys = merged.setdefault((binding.action, text), [])
            shown = app.get_key_display(binding)
            if shown not in keys:
                keys.append(shown)
        rows = [(", ".join(keys), text) for (_, text), keys in merged.items()]
        rows.append(("tab, shift+tab", "Move between fields and panels"))
        return rows

    def compose(self) -> ComposeResult:
        title = getattr(self.target, "HELP_TITLE", "") or type(self.target).__name__
        table = Table(box=None, show_header=False, pad_edge=False, expand=True)
        table.add_column(style="bold", no_wrap=True, min_width=8, max_width=16)
        table.add_column(ratio=1)
        for keys, text in self.rows:
            table.add_row(Text(keys), Text(text))  # plain: tooltips quote keys like [ ]
        with Vertical(id="help-box"):
            yield Label(f"Keys — {title}", id="help-title", markup=False)
            with VerticalScroll(id="help-keys"):
                yield Static(table)
            yield Label("ctrl+p lists every action · escape closes", id="help-foot")
