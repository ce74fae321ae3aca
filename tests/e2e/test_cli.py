"""The headless CLI as a user runs it: a real `bctui` process on a temporary state directory."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "connections.toml"
EXAMPLE_PROFILES = ROOT / "examples" / "profiles.jsonl"


def bctui(
    state: Path,
    *args: str,
    config: Path = EXAMPLE_CONFIG,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BCTUI_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bctui", "--config", str(config), "--state-dir", str(state), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_help_documents_commands_and_exit_codes(tmp_path: Path) -> None:
    proc = bctui(tmp_path, "--help")
    assert proc.returncode == 0
    for word in (
        "validate",
        "profiles",
        "segments",
        "run",
        "watch",
        "secrets",
        "sandbox",
        "exit codes",
        "130",
    ):
        assert word in proc.stdout


def test_validate_the_example_warns_about_unset_secrets(tmp_path: Path) -> None:
    proc = bctui(tmp_path, "validate")
    assert proc.returncode == 0, proc.stderr
    assert "valid — 1 connection (2 goals), 2 segments" in proc.stdout
    assert "bctui secrets set braze-main" in proc.stderr


def test_validate_an_invalid_file_names_line_key_and_fix(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace('strategy = "sum"', 'strategy = "total"'))
    proc = bctui(tmp_path, "validate", config=config)
    assert proc.returncode == 3
    assert "connection[0].goal[0].mappings[2].strategy" in proc.stderr
    assert 'unknown value "total"' in proc.stderr and "set, add, sum" in proc.stderr
    assert f"{config}:" in proc.stderr


def test_missing_config_file(tmp_path: Path) -> None:
    proc = bctui(tmp_path, "list", config=tmp_path / "nope.toml")
    assert proc.returncode == 3 and "does not exist" in proc.stderr


def test_environment_variables_choose_config_and_state(tmp_path: Path) -> None:
    env = {"BCTUI_CONFIG": str(EXAMPLE_CONFIG), "BCTUI_STATE_DIR": str(tmp_path / "s")}
    proc = subprocess.run(
        [sys.executable, "-m", "bctui", "profiles", "load", str(EXAMPLE_PROFILES)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "s" / "profiles.db").exists()


def test_secrets_from_stdin_are_stored_private_and_never_shown(tmp_path: Path) -> None:
    value = "brz-live-0123456789abcdef0123456789"
    proc = bctui(tmp_path, "secrets", "set", "braze-main", stdin=value + "\n")
    assert proc.returncode == 0, proc.stderr
    assert value not in proc.stdout + proc.stderr
    secrets = tmp_path / "secrets.toml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    listed = bctui(tmp_path, "secrets", "list")
    assert listed.stdout.split() == ["braze-main"] and value not in listed.stdout
    validated = bctui(tmp_path, "validate")
    assert "braze-main" not in validated.stderr  # now resolvable
    assert value not in validated.stdout + validated.stderr
    secrets.chmod(0o644)
    refused = bctui(tmp_path, "validate")
    assert "chmod 600" in refused.stderr and value not in refused.stderr


def test_load_show_dump_count_segments(tmp_path: Path) -> None:
    loaded = bctui(tmp_path, "profiles", "load", str(EXAMPLE_PROFILES), "--json")
    assert loaded.returncode == 0, loaded.stderr
    report = json.loads(loaded.stdout)
    assert report["created"] == 6 and report["rejected"] == 0
    again = json.loads(bctui(tmp_path, "profiles", "load", str(EXAMPLE_PROFILES), "--json").stdout)
    assert again["unchanged"] == 6 and again["created"] == 0

    shown = bctui(tmp_path, "profiles", "show", "email=ada@example.com", "--json")
    profile = json.loads(shown.stdout)
    assert profile["id"] == "0b9c6a3e-5f0e-4d4e-9a59-1f1d2c3b4a01"
    assert profile["properties"]["interests"] == ["news", "cycling"]
    assert sorted(profile["segments"]) == ["newsletter", "vip"]
    text = bctui(tmp_path, "profiles", "show", profile["id"])  # type: ignore[arg-type]
    assert "permission level     PERSONAL" in text.stdout and "news | cycling" in text.stdout
    missing = bctui(tmp_path, "profiles", "show", "email=nobody@example.com")
    assert missing.returncode == 4 and "no profile has email=nobody@example.com" in missing.stderr

    assert bctui(tmp_path, "profiles", "count").stdout.strip() == "6"
    # vip: lifetime_value ≥ 1000 and country in NL/DE — Ada (NL 2400), Bram (DE 1200),
    # Eva (DE "1850.50", a numeric string).
    assert bctui(tmp_path, "profiles", "count", "--segment", "vip").stdout.strip() == "3"
    segments = {
        s["name"]: s["members"] for s in lines(bctui(tmp_path, "segments", "--json").stdout)
    }
    assert segments == {"vip": 3, "newsletter": 3}
    unknown = bctui(tmp_path, "profiles", "count", "--segment", "nope")
    assert unknown.returncode == 4 and "vip, newsletter" in unknown.stderr

    vip = lines(bctui(tmp_path, "profiles", "dump", "--json", "--segment", "vip").stdout)
    assert {p["properties"]["first_name"][0] for p in vip} == {"Ada", "Bram", "Eva"}  # type: ignore[index]


def test_dump_load_round_trip_into_a_new_store(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    bctui(first, "profiles", "load", str(EXAMPLE_PROFILES))
    dumped = bctui(first, "profiles", "dump", "--json").stdout
    dump_file = tmp_path / "dump.jsonl"
    dump_file.write_text(dumped)
    reloaded = bctui(second, "profiles", "load", str(dump_file))
    assert reloaded.returncode == 0, reloaded.stderr
    assert bctui(second, "profiles", "dump", "--json").stdout == dumped
    assert '"lifetime_value":["1850.50"]' in dumped and '"lifetime_value":[2400]' in dumped


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_loads(tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    source.write_text(
        '{"email": "a@example.com", "points": 1}\n'
        "{not json}\n"
        '{"email": "b@example.com", "points": 2}\n'
        '["a list"]\n'
        '{"email": "c@example.com", "_permission_level": "SUPER"}\n'
        '{"email": "d@example.com", "points": "many"}\n'
    )
    proc = bctui(tmp_path, "profiles", "load", str(source), "--match", "email", "--strategy", "sum")
    assert proc.returncode == 6
    assert f"{source}:2:" in proc.stderr and f"{source}:4:" in proc.stderr
    assert f"{source}:5:" in proc.stderr and "SUPER" in proc.stderr
    assert f"{source}:6:" in proc.stderr and "many" in proc.stderr
    assert "2 created" in proc.stderr and "4 rejected" in proc.stderr
    assert bctui(tmp_path, "profiles", "count").stdout.strip() == "2"


def test_csv_load_with_repeated_columns(tmp_path: Path) -> None:
    source = tmp_path / "p.csv"
    source.write_text(
        "email,interests,interests,_permission_level\n"
        "a@example.com,news,travel,PERSONAL\n"
        "b@example.com,food,,ANONYMOUS\n"
    )
    proc = bctui(tmp_path, "profiles", "load", str(source), "--match", "email")
    assert proc.returncode == 0, proc.stderr
    profile = json.loads(
        bctui(tmp_path, "profiles", "show", "email=a@example.com", "--json").stdout
    )
    assert profile["properties"]["interests"] == ["news", "travel"]
    assert profile["permission_level"] == "PERSONAL"


def test_unreadable_input_file(tmp_path: Path) -> None:
    proc = bctui(tmp_path, "profiles", "load", str(tmp_path / "absent.jsonl"))
    assert proc.returncode == 6 and "absent.jsonl" in proc.stderr


def test_list_json(tmp_path: Path) -> None:
    (conn,) = lines(bctui(tmp_path, "list", "--json").stdout)
    assert conn["name"] == "Braze main" and conn["enabled"] is True
    assert conn["schedule"] == "mon, fri at 01:30"
    assert [g["type"] for g in conn["goals"]] == ["import", "export"]  # type: ignore[index]
    table = bctui(tmp_path, "list").stdout
    assert "Braze main" in table and "1 import, 1 export" in table


@pytest.mark.parametrize("args", [["run", "Nope"], ["runs", "show", "nope"], ["check", "Nope"]])
def test_unknown_names_exit_4(tmp_path: Path, args: list[str]) -> None:
    proc = bctui(tmp_path, *args)
    assert proc.returncode == 4, proc.stderr
    assert "Braze main" in proc.stderr or "bctui runs" in proc.stderr


def _sandbox_config(tmp_path: Path, sandbox: Any, key_env: str = "K") -> Path:
    config = tmp_path / "sandbox.toml"
    config.write_text(f"""
[[connection]]
name = "Sandbox"
[connection.braze]
endpoint = "{sandbox.braze_url}"
api_key = "env:{key_env}"
[connection.s3]
access_key_id = "{sandbox.aws_access_key_id}"
secret_access_key = "env:S3"
bucket = "{sandbox.bucket}"
endpoint_url = "{sandbox.s3_endpoint}"
[[connection.goal]]
type = "import"
name = "in"
audience = {{ segment_id = "x" }}
identifiers = [[{{ braze = "external_id", property = "ext" }}]]
""")
    return config


def test_check_reports_each_permission_and_the_bucket(tmp_path: Path, sandbox: Any) -> None:
    config = _sandbox_config(tmp_path, sandbox)
    env = {"K": sandbox.api_key, "S3": sandbox.aws_secret_access_key}
    ok = bctui(tmp_path, "check", "Sandbox", "--json", config=config, env=env)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert {p["state"] for p in report["permissions"].values()} == {"ok"}
    assert report["s3"]["ok"] is True

    limited = sandbox.key_with("users.track", "segments.list")
    proc = bctui(tmp_path, "check", "Sandbox", config=config, env={**env, "K": limited})
    assert proc.returncode == 1
    assert "users.export.segment   missing" in proc.stdout
    assert "need: segments.details, users.export.segment" in proc.stdout
    assert limited not in proc.stdout + proc.stderr

    bogus = "bogus-key-0123456789abcdef"
    proc = bctui(tmp_path, "check", "Sandbox", config=config, env={**env, "K": bogus})
    assert proc.returncode == 1 and "API key invalid" in proc.stdout
    assert bogus not in proc.stdout + proc.stderr


def test_bad_state_directories_get_clear_errors(tmp_path: Path) -> None:
    empty = subprocess.run([sys.executable, "-m", "bctui", "--state-dir", "", "profiles", "count"],
                           capture_output=True, text=True, check=False)
    assert empty.returncode == 2 and "--state-dir (or BCTUI_STATE_DIR) is empty" in empty.stderr
    a_file = tmp_path / "file"
    a_file.write_text("")
    proc = bctui(a_file, "profiles", "count")
    assert proc.returncode == 1 and "the state directory is a file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_fails_when_braze_is_unreachable(tmp_path: Path, sandbox: Any) -> None:
    config = _sandbox_config(tmp_path, sandbox)
    config.write_text(config.read_text().replace(sandbox.braze_url, "http://127.0.0.1:9"))
    proc = bctui(tmp_path, "check", "Sandbox", config=config,
                 env={"K": "x" * 20, "S3": sandbox.aws_secret_access_key})
    assert proc.returncode == 1 and "unreachable" in proc.stdout
