"""Small helpers for writing data to stdout: JSON lines and aligned text tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson


def print_json(value: Any) -> None:
    """One JSON document (or line) on stdout."""
    sys.stdout.write(orjson.dumps(value).decode() + "\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Left-aligned columns separated by two spaces, for people (use --json for scripts)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")


def note(message: str) -> None:
    """A diagnostic line on stderr."""
    print(message, file=sys.stderr)
