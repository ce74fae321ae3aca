"""What a front end works in: the config file as read, the state directory, the secrets file, and
stores opened on demand. The TUI holds one for its whole life; it never imports Textual."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from bctui.engine.config_document import ConfigDocument
from bctui.engine.models import Config
from bctui.engine.paths import Paths
from bctui.engine.runs import state as st
from bctui.engine.secrets import SecretsFile
from bctui.engine.stores import open_configured_store
from bctui.errors import BctuiError
from bctui.store import Store


class StaleEdit(BctuiError):
    """An edit was made against a config that has since been reloaded; it was not saved."""


@dataclass
class Workspace:
    """The config document, the paths and the secrets of one front end session."""

    paths: Paths
    document: ConfigDocument
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(cls, paths: Paths) -> Workspace:
        """Read the config: a missing file is an empty config, an invalid one raises ConfigError."""
        return cls(paths, ConfigDocument.load(paths.config))

    @property
    def config(self) -> Config:
        """The config as last read or saved."""
        return self.document.config

    @property
    def secrets(self) -> SecretsFile:
        """The state directory's secrets file."""
        return SecretsFile(self.paths.secrets)

    def reload(self) -> Config:
        """Read the file again (raises ConfigError when it is now invalid; the old one is kept)."""
        with self._lock:
            self.document = ConfigDocument.load(self.paths.config)
            return self.document.config

    def disk_version(self) -> bytes | None:
        """The file's bytes now (None when it is missing or unreadable)."""
        try:
            return self.paths.config.read_bytes()
        except OSError:
            return None

    def changed_on_disk(self) -> bool:
        """Whether someone else changed the file since it was read."""
        return self.document.changed_on_disk()

    def save(
        self,
        base: Config,
        new: Config,
        *,
        renamed_connections: Mapping[str, str] | None = None,
        renamed_goals: Mapping[tuple[str, str], str] | None = None,
        renamed_segments: Mapping[str, str] | None = None,
    ) -> Config:
        """Write `new`, an edit of `base`; refused when the file changed on disk or was reloaded
        since `base` was read (then nothing is written and the caller reloads)."""
        with self._lock:
            if base is not self.document.config:
                raise StaleEdit(
                    "connections.toml was reloaded while you were editing; nothing was saved",
                    fix="make the change again on what is shown now",
                )
            self.document = self.document.save(
                new,
                renamed_connections=renamed_connections or {},
                renamed_goals=renamed_goals or {},
                renamed_segments=renamed_segments or {},
            )
            return self.document.config

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """A store connection for the calling thread, closed afterwards."""
        self.paths.ensure_state_dir()
        store = open_configured_store(self.config.store, self.paths)
        try:
            st.migrate(store)
            yield store
        finally:
            store.close()
