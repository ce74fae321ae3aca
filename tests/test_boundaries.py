"""The engine never imports the UI: no Textual (and no Rich live display) in the headless
packages, whether imported or run through the CLI's headless commands."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEADLESS = ("engine", "braze", "s3", "store", "sandbox")
FORBIDDEN = ("textual", "bctui.tui", "rich.live", "rich.progress")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", HEADLESS)
def test_headless_packages_never_import_the_ui(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / "bctui" / package).rglob("*.py"))
        for line, name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
        or (package != "sandbox" and name.split(".")[0] == "rich")
    ]
    assert offenders == []


PROBE = """
import importlib, json, pkgutil, sys
import bctui
names = []
for package in {packages!r}:
    module = importlib.import_module("bctui." + package)
    for info in pkgutil.walk_packages(module.__path__, module.__name__ + "."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
            names.append(info.name)
importlib.import_module("bctui.cli")
from bctui.cli import main
for argv in {commands!r}:
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps({{"modules": len(names),
                  "ui": sorted(m for m in sys.modules if m == "textual"
                               or m.startswith(("textual.", "bctui.tui")))}}))
"""


def test_importing_everything_headless_and_running_commands_loads_no_textual(
    tmp_path: Path,
) -> None:
    commands = [
        ["--help"],
        ["--config", str(ROOT / "connections.toml"), "--state-dir", str(tmp_path), "validate"],
        ["--config", str(ROOT / "connections.toml"), "--state-dir", str(tmp_path), "list"],
        [
            "--config",
            str(ROOT / "connections.toml"),
            "--state-dir",
            str(tmp_path),
            "profiles",
            "load",
            str(ROOT / "examples" / "profiles.jsonl"),
        ],
        ["--config", str(ROOT / "connections.toml"), "--state-dir", str(tmp_path), "segments"],
        ["--config", str(ROOT / "connections.toml"), "--state-dir", str(tmp_path), "runs"],
    ]
    code = PROBE.format(packages=[*HEADLESS, "commands"], commands=commands)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["modules"] > 40
    assert report["ui"] == []


# Which of our own packages each package may import (the layering of STYLE.md, Harlequin-style).
LAYERS: dict[str, set[str]] = {
    "store": {"errors", "lazy"},
    "braze": {"errors", "secret", "lazy", "braze", "__init__"},
    "s3": {"errors", "secret", "lazy", "s3"},
    "engine": {"errors", "secret", "lazy", "engine", "store", "braze", "s3", "__init__"},
    "tui": {"errors", "secret", "engine", "store", "braze", "s3", "tui"},
}


def _own_imports(path: Path) -> set[str]:
    names = set()
    for _, name in _imports(path):
        parts = name.split(".")
        if parts[0] == "bctui":
            names.add(parts[1] if len(parts) > 1 else "__init__")
    return names


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_packages_import_only_the_layers_below_them(package: str) -> None:
    allowed = LAYERS[package] | {package}
    offenders = [
        f"{path.relative_to(ROOT)}: bctui.{name}"
        for path in sorted((ROOT / "bctui" / package).rglob("*.py"))
        for name in sorted(_own_imports(path) - allowed)
    ]
    assert offenders == []


def test_the_ui_starts_without_the_http_and_aws_libraries() -> None:
    """The first screen must come up fast: httpx and boto3 load only when a lookup needs them."""
    probe = (
        "import sys, json; import bctui.tui.app, bctui.tui.screens.connections; "
        "print(json.dumps(sorted(m for m in ('httpx', 'boto3', 'botocore') if m in sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
