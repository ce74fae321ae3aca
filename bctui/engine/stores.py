"""Opening the configured profile store, with its password resolved."""

from __future__ import annotations

from bctui.engine.models import StoreSettings
from bctui.engine.paths import Paths
from bctui.engine.secrets import SecretsFile, resolve
from bctui.store import Store, open_store


def open_configured_store(settings: StoreSettings, paths: Paths) -> Store:
    """The store `[store]` names; a PostgreSQL password comes from its `secret:`/`env:`
    reference (without one, libpq's PGPASSWORD or ~/.pgpass apply)."""
    password = None
    if settings.password:
        secret = resolve(settings.password, SecretsFile(paths.secrets), where="[store] password")
        password = secret.reveal()
    return open_store(settings.url, paths.state_dir, password=password)
