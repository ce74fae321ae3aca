"""The Braze and S3 packages stay free of Textual and Rich."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import bctui

PACKAGES = [Path(bctui.__file__).parent / name for name in ("braze", "s3")]


def test_no_module_of_ours_imports_textual_or_rich() -> None:
    offenders = []
    for package in PACKAGES:
        for source in sorted(package.rglob("*.py")):
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [
                    f"{source.name}: {n}" for n in names if n.split(".")[0] in ("textual", "rich")
                ]
    assert offenders == []


def test_importing_braze_and_s3_loads_no_textual() -> None:
    # (httpx itself imports Rich for its command line when click and pygments are installed,
    # so only Textual can be checked at run time.)
    code = (
        "import sys, bctui.braze, bctui.s3\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'textual')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
