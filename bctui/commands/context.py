"""What every command handler gets: resolved paths, the config and the store, opened lazily."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from bctui.engine.config import load_config
from bctui.engine.models import Config, StoreSettings
from bctui.engine.paths import Paths
from bctui.engine.secrets import SecretsFile
from bctui.engine.stores import open_configured_store
from bctui.store import Store


@dataclass
class Context:
    """Resolved once per invocation; closes what it opened."""

    paths: Paths
    _config: Config | None = None
    _store: Store | None = field(default=None, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Context:
        """Flags, then environment, then platform defaults."""
        return cls(Paths.resolve(args.config, args.state_dir))

    @property
    def config(self) -> Config:
        """The validated config (raises ConfigError with every problem)."""
        if self._config is None:
            self._config = load_config(self.paths.config)
        return self._config

    def store_settings(self) -> StoreSettings:
        """The config's store, or the default store when there is no config file yet."""
        if self._config is None and not self.paths.config.exists():
            return StoreSettings()
        return self.config.store

    @property
    def store(self) -> Store:
        """The profile store, opened (and created) on first use."""
        if self._store is None:
            self.paths.ensure_state_dir()
            self._store = open_configured_store(self.store_settings(), self.paths)
        return self._store

    @property
    def secrets(self) -> SecretsFile:
        """The secrets file in the state directory."""
        return SecretsFile(self.paths.secrets)

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()
            self._store = None
