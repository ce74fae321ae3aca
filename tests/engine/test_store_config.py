"""The configured store: `[store] password` resolved from the secrets file or the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pg_cluster import PASSWORD

from bctui.engine.models import StoreSettings
from bctui.engine.paths import Paths
from bctui.engine.secrets import SecretError, SecretsFile
from bctui.engine.stores import open_configured_store
from bctui.errors import BctuiError
from bctui.secret import Secret


def _paths(tmp_path: Path) -> Paths:
    paths = Paths(tmp_path / "connections.toml", tmp_path / "state")
    paths.state_dir.mkdir(parents=True)
    return paths


def test_the_password_comes_from_the_secrets_file(pg_cluster: Any, tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    SecretsFile(paths.secrets).set("pg", Secret(PASSWORD))
    url = pg_cluster.url(pg_cluster.create_database(), password=False)
    with open_configured_store(StoreSettings(url, "secret:pg"), paths) as store:
        assert store.dialect == "postgresql" and store.count() == 0


def test_the_password_comes_from_the_environment(pg_cluster: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BCTUI_TEST_PG", PASSWORD)
    url = pg_cluster.url(pg_cluster.create_database(), password=False)
    with open_configured_store(StoreSettings(url, "env:BCTUI_TEST_PG"), _paths(tmp_path)) as store:
        assert store.count() == 0
    monkeypatch.setenv("BCTUI_TEST_PG", "wrong")
    with pytest.raises(BctuiError) as caught:
        open_configured_store(StoreSettings(url, "env:BCTUI_TEST_PG"), _paths(tmp_path / "b"))
    assert "refused the password" in caught.value.message
    assert "wrong" not in str(caught.value)


def test_a_missing_secret_names_the_setting(tmp_path: Path) -> None:
    settings = StoreSettings("postgresql://bctui@127.0.0.1:1/x", "secret:pg")
    with pytest.raises(SecretError) as caught:
        open_configured_store(settings, _paths(tmp_path))
    assert caught.value.where == "[store] password"
    assert "bctui secrets set pg" in caught.value.fix


def test_sqlite_needs_no_password(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    with open_configured_store(StoreSettings(), paths) as store:
        assert store.dialect == "sqlite"
    assert (paths.state_dir / "profiles.db").exists()
