"""The strip under the connections table: the highlighted connection's current or last run."""

from __future__ import annotations

from textual.widgets import Static


class RunStrip(Static):
    """Placeholder until the run panel's widgets land (replaced by the run panel's engineer)."""

    def show(self, connection: str | None) -> None:
        """Follow `connection`'s run (None: nothing highlighted)."""
        self.update(connection or "")
