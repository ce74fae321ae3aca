"""The secrets file: 0600, refused when others can read it, references resolved, values hidden."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from bctui.engine.secrets import SecretError, SecretsFile, resolve
from bctui.secret import Secret

VALUE = "brz-0123456789abcdef0123456789abcdef"


def test_created_private_and_read_back(tmp_path: Path) -> None:
    secrets = SecretsFile(tmp_path / "state" / "secrets.toml")
    secrets.set("braze-main", Secret(VALUE))
    assert stat.S_IMODE(secrets.path.stat().st_mode) == 0o600
    assert secrets.names() == ["braze-main"]
    found = secrets.get("braze-main")
    assert found is not None and found.reveal() == VALUE
    assert VALUE not in repr(found) and VALUE not in str(found) and VALUE not in f"{found}"


def test_group_readable_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    secrets = SecretsFile(tmp_path / "secrets.toml")
    secrets.set("k", Secret(VALUE))
    secrets.path.chmod(0o640)
    with pytest.raises(SecretError) as caught:
        secrets.get("k")
    assert "chmod 600" in caught.value.fix and VALUE not in str(caught.value)


def test_set_keeps_other_secrets_and_delete(tmp_path: Path) -> None:
    secrets = SecretsFile(tmp_path / "secrets.toml")
    secrets.set("a", Secret("1"))
    secrets.set("b", Secret("2"))
    assert secrets.names() == ["a", "b"]
    assert secrets.delete("a") and not secrets.delete("a")
    assert secrets.names() == ["b"]


def test_invalid_names_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretError, match="not a valid secret name"):
        SecretsFile(tmp_path / "s.toml").set("has space", Secret("x"))


def test_resolve_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = SecretsFile(tmp_path / "secrets.toml")
    secrets.set("braze-main", Secret(VALUE))
    assert resolve("secret:braze-main", secrets).reveal() == VALUE
    monkeypatch.setenv("BCTUI_TEST_KEY", "from-env")
    assert resolve("env:BCTUI_TEST_KEY", secrets).reveal() == "from-env"
    with pytest.raises(SecretError) as caught:
        resolve("secret:missing", secrets, where="connection Main braze.api_key")
    assert "bctui secrets set missing" in caught.value.fix
    monkeypatch.delenv("BCTUI_TEST_KEY")
    with pytest.raises(SecretError, match="BCTUI_TEST_KEY is not set"):
        resolve("env:BCTUI_TEST_KEY", secrets)


def test_malformed_secrets_file_does_not_echo_values(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text(f'k = "{VALUE}\n')
    path.chmod(0o600)
    with pytest.raises(SecretError) as caught:
        SecretsFile(path).names()
    assert VALUE not in str(caught.value)


def test_hand_written_entries_of_other_types_survive_a_set(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    path.write_text('note = 1\n[extra]\nx = "y"\nk = "v"\n')
    path.chmod(0o600)
    secrets = SecretsFile(path)
    secrets.set("new", Secret("value"))
    text = path.read_text()
    assert "note = 1" in text and "[extra]" in text
    assert secrets.names() == ["new"]
    assert not secrets.delete("note")


def test_secret_names_for_the_ui_avoid_names_in_use() -> None:
    from bctui.engine.secrets import secret_name_for

    assert secret_name_for("Braze main", "braze") == "braze-main-braze"
    assert secret_name_for("braze-main", "braze", {"braze-main-braze"}) == "braze-main-braze-2"
    taken = {"braze-main-braze", "braze-main-braze-2"}
    assert secret_name_for("Braze main", "braze", taken) == "braze-main-braze-3"
    assert secret_name_for("2026 sync", "s3") == "c-2026-sync-s3"
