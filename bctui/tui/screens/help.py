"""`?`: the keys of the screen underneath, read from the same bindings as its footer and palette."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


class HelpScreen(ModalScreen[None]):
    """Every key that works on a screen, with what it does."""

    BINDINGS = [
        Binding("escape,question_mark,q", "dismiss", "Close", id="help-close"),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.target = screen
        self.rows = self._rows(screen)

    @staticmethod
    def _rows(screen: Screen[object]) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        seen: set[tuple[str, str]] = set()
        app = screen.app
        # The screen's own keys first, then the app's, then those of the focused widget.
        order = {screen: 0, app: 1}
        actives = sorted(screen.active_bindings.values(), key=lambda a: order.get(a.node, 2))
        for active in actives:
            binding = active.binding
            if not binding.description:
                continue
            key = app.get_key_display(binding)
            text = binding.description
            if binding.tooltip and binding.tooltip != binding.description:
                text += f" — {binding.tooltip}"
            if (key, text) in seen:
                continue
            seen.add((key, text))
            rows.append((key, text))
        return rows

    def compose(self) -> ComposeResult:
        title = getattr(self.target, "HELP_TITLE", "") or type(self.target).__name__
        with Vertical(id="help-box"):
            yield Label(f"Keys — {title}", id="help-title")
            with VerticalScroll(id="help-keys"):
                for key, text in self.rows:
                    line = Text.assemble((f"{key:>12}", "bold"), "  ", text)
                    yield Static(line, classes="help-row")
            yield Label("ctrl+p lists every action · escape closes", id="help-foot")
