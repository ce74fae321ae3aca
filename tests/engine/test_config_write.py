"""Writing connections.toml: round trip, atomic replace, permissions kept, malformed files kept."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bctui.engine.config import ConfigError, load_config, parse_config
from bctui.engine.config_write import save_config, to_toml
from bctui.engine.models import ExportGoal

ROOT = Path(__file__).resolve().parents[2]


def test_round_trip_of_the_example(tmp_path: Path) -> None:
    config = load_config(ROOT / "connections.toml")
    target = tmp_path / "connections.toml"
    save_config(config, target)
    assert load_config(target) == config
    # Writing what was read gives the same text again (stable output).
    assert to_toml(load_config(target)) == to_toml(config)


def test_save_keeps_the_file_mode(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    target.write_text((ROOT / "connections.toml").read_text())
    target.chmod(0o640)
    save_config(load_config(target), target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_malformed_file_is_never_overwritten(tmp_path: Path) -> None:
    target = tmp_path / "connections.toml"
    broken = '[[connection]]\nname = "half-edited\n'
    target.write_text(broken)
    config = load_config(ROOT / "connections.toml")
    with pytest.raises(ConfigError):
        save_config(config, target)
    assert target.read_text() == broken


CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from bctui.engine import fileio

    point = sys.argv[2]
    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)
    if point == "fsync":
        fileio.os.fsync = die          # data written, not yet durable or renamed
    else:
        fileio.os.replace = die        # about to rename
    fileio.atomic_write(Path(sys.argv[1]), b"new content " * 100_000)
    """
)


@pytest.mark.parametrize("point", ["fsync", "replace"])
def test_a_crash_mid_write_leaves_the_old_file(tmp_path: Path, point: str) -> None:
    target = tmp_path / "connections.toml"
    target.write_text("old content\n")
    proc = subprocess.run([sys.executable, "-c", CRASHER, str(target), point], check=False)
    assert proc.returncode == -9  # really killed
    assert target.read_text() == "old content\n"


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    from bctui.engine.fileio import atomic_write

    target = tmp_path / "f.toml"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f.toml"]


def test_written_text_is_what_parse_reads(tmp_path: Path) -> None:
    config = load_config(ROOT / "connections.toml")
    text = to_toml(config)
    assert parse_config(text) == config
    assert 'api_key = "secret:braze-main"' in text


def test_an_export_mapping_type_is_written_back() -> None:
    text = (ROOT / "connections.toml").read_text().replace(
        'value = "lifetime_value", braze = "lifetime_value" }',
        'value = "lifetime_value", braze = "lifetime_value", type = "number" }')
    config = parse_config(text)
    written = to_toml(config)
    assert 'braze = "lifetime_value", type = "number" }' in written
    assert 'braze = "email" }' in written  # no type, none written
    assert parse_config(written) == config
def test_budgets_round_trip_through_to_toml() -> None:
    config = load_config(ROOT / "connections.toml")
    conn = config.connections[0]
    goals = tuple(dataclasses.replace(g, max_data_points=7, on_budget="partial")
                  if isinstance(g, ExportGoal) else g for g in conn.goals)
    conn = dataclasses.replace(conn, max_data_points=9, goals=goals)
    config = dataclasses.replace(config, connections=(conn, *config.connections[1:]))
    text = to_toml(config)
    assert parse_config(text) == config
    assert "max_data_points = 9\n" in text and 'on_budget = "partial"\n' in text
