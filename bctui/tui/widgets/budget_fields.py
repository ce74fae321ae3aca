"""The two fields of a data-point budget, as the export goal editor and the connection's Details
tab show them: "max data points" (digits only, empty = no budget) and "when over budget"."""

from __future__ import annotations

from typing import Literal

from textual.widgets import Input, Select

BUDGET_OPTIONS = [
    ("refuse — send nothing", "refuse"),
    ("send partial — rest next run", "partial"),
]
TOML_INT_MAX = 2**63 - 1  # the largest whole number TOML holds


def budget_input(value: int | None, *, id: str, owner: str) -> Input:
    """The "max data points" field: digits only; empty means no budget."""
    return Input(
        "" if value is None else str(value),
        placeholder="no budget",
        restrict=r"[0-9]*",
        compact=True,
        id=id,
        tooltip=f"The most data points one run of {owner} may send; empty: no budget",
    )


def budget_select(on_budget: str, *, id: str) -> Select[str]:
    """The "when over budget" choice (only read while a budget is set)."""
    return Select(
        BUDGET_OPTIONS,
        value=on_budget if on_budget in ("refuse", "partial") else "refuse",
        allow_blank=False,
        compact=True,
        id=id,
        tooltip="refuse: a run whose changes cost more sends nothing and fails, saying so; "
        "send partial: it sends up to the budget, in change order, and the rest next run",
    )


def parse_budget(text: str) -> tuple[int | None, str]:
    """The budget a field holds (None: empty, no budget), and what is wrong with it ('' if
    nothing)."""
    text = text.strip()
    if not text:
        return None, ""
    if not text.isdigit():
        return None, f'"{text}" is not a whole number — write e.g. 500000, or leave it empty'
    number = int(text)
    if number < 1:
        return None, "a budget of 0 sends nothing — write at least 1, or leave it empty for none"
    if number > TOML_INT_MAX:
        return None, f"{text} is too large — at most {TOML_INT_MAX}, or leave it empty for none"
    return number, ""


def budget_mode(select: Select[str], limit: int | None) -> Literal["refuse", "partial"]:
    """What the select says, as the model holds it (the default while there is no budget)."""
    return "partial" if limit is not None and select.value == "partial" else "refuse"
