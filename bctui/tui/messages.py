"""Messages shared between screens, workers and the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from bctui.tui.app import RunsSnapshot


@dataclass
class RunsPolled(Message):
    """A poll of run history and locks finished."""

    snapshot: RunsSnapshot

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunsPolled)


class ConfigReloaded(Message):
    """connections.toml changed on disk: read it again."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ConfigReloaded)
