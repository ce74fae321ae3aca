"""Data-point budgets of export goals: `max_data_points` on a goal or a connection.

Braze bills every attribute written. With a budget, an export plans its delta into memory while
the planned cost stays within the budget, and only counts the rest (keeping no objects): either
everything fits and is sent as planned, or it does not, and the goal refuses to send anything
(`on_budget = "refuse"`) or sends the planned prefix in change order and stops there
(`on_budget = "partial"`), its watermark just below the first profile not sent, so that the next
run sends the rest. A connection's budget is shared by its export goals in goal order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from bctui.engine.models import Connection, ExportGoal
from bctui.engine.runs import state as st
from bctui.errors import BctuiError, ExitCode

if TYPE_CHECKING:
    from bctui.engine.runs.exporter import ExportBatch, Exporter, Planned

WITHIN: Final = "within"
PARTIAL: Final = "partial"
REFUSED: Final = "refused"
FIX: Final = (
    'raise max_data_points, set on_budget = "partial" (it sends up to the budget now and the '
    "rest next run), or narrow the goal's segment"
)


class BudgetExceeded(BctuiError):
    """An export goal's delta costs more data points than its budget allows."""

    exit_code = ExitCode.BUDGET


@dataclass(frozen=True)
class Budget:
    """What one export goal may spend in this run, and what happens past it."""

    limit: int  # data points this goal may send in this run
    on_budget: str  # "refuse" | "partial"
    owner: str  # where the binding max_data_points is set: 'export goal "x"', 'connection "c"'
    max_data_points: int  # the setting itself
    spent_by_others: int = 0  # what earlier export goals of the run spent of a connection's

    def describe(self) -> str:
        """'connection "c"'s max_data_points = 1,000, less 400 spent by earlier goals'."""
        text = f"{self.owner}'s max_data_points = {self.max_data_points:,}"
        if self.spent_by_others:
            text += f", less {self.spent_by_others:,} spent by earlier goals of this run"
        return text


def goal_budget(conn: Connection, goal: ExportGoal, spent_before: int) -> Budget | None:
    """The budget that binds an export goal: its own max_data_points, or its connection's less
    what the export goals before it in this run spent (`spent_before`), whichever is smaller
    (the goal's on a tie); None when neither is set."""
    options = []
    if goal.max_data_points is not None:
        options.append(Budget(goal.max_data_points, goal.on_budget, f'export goal "{goal.name}"',
                              goal.max_data_points))
    if conn.max_data_points is not None:
        left = max(0, conn.max_data_points - spent_before)
        options.append(Budget(left, conn.on_budget, f'connection "{conn.name}"',
                              conn.max_data_points, spent_before))
    return min(options, key=lambda b: b.limit) if options else None


@dataclass
class Cut:
    """A delta planned against a budget: the batches to send and where the goal stops."""

    budget: Budget
    batches: list[ExportBatch]
    spent_before: int  # the goal's data points in this run before this pass (a resumed run)
    estimate: int  # what the whole delta costs, `spent_before` included
    watermark: int | None  # where the watermark stops; None when the whole delta fits


@dataclass
class _Fit:
    kept: list[ExportBatch]
    points: int  # data points of the kept objects
    total: int  # data points of every object planned
    first_left: Planned | None  # the first profile not kept


def fit(batches: Iterable[ExportBatch], room: int,
        tick: Callable[[], None] = lambda: None) -> _Fit:
    """Keep batches while their objects' data points fit in `room`, cutting the batch that
    overflows at its first object that does not fit; count the rest without keeping it."""
    kept: list[ExportBatch] = []
    points = total = 0
    first_left: Planned | None = None
    for batch in batches:
        costs = [planned.data_points for planned in batch.planned]
        total += sum(costs)
        if first_left is None:
            take = 0
            for cost in costs:
                if points + cost > room:
                    break
                points += cost
                take += 1
            if take < len(costs):
                first_left = batch.planned[take]
                if take:
                    kept.append(_truncate(batch, take))
            else:
                kept.append(batch)
        tick()
    return _Fit(kept, points, total, first_left)


def _truncate(batch: ExportBatch, take: int) -> ExportBatch:
    """The batch's first `take` objects (and what records their delivery)."""
    del batch[take:]
    del batch.planned[take:]
    if batch.sent:
        rows = orjson.loads(batch.sent)[:take]
        batch.sent = st.encode_sent((row[0], row[1], row[2]) for row in rows)
    return batch


def plan_within(exporter: Exporter, budget: Budget) -> Cut:
    """Plan the exporter's delta against `budget`: the batches to send, or BudgetExceeded when
    the goal refuses (nothing is sent and its watermark stays)."""
    run = exporter.run
    gs = run.state
    spent_before = gs.data_points
    room = max(0, budget.limit - spent_before)
    start = gs.cursor or 0
    run.phase("estimating", f"data points against a budget of {budget.limit:,}")
    found = fit(exporter._plan(), room, lambda: run.progress(exporter.examined, exporter.total))
    estimate = spent_before + found.total
    info: dict[str, Any] = {
        "max_data_points": budget.max_data_points,
        "limit": budget.limit,
        "set_on": budget.owner,
        "on_budget": budget.on_budget,
        "estimate": estimate,
        "outcome": WITHIN,
    }
    gs.budget = info
    if found.first_left is None:
        run.log(f"budget: ~{estimate:,} data points, within {budget.describe()}")
        return Cut(budget, found.kept, spent_before, estimate, None)
    if budget.on_budget != PARTIAL:
        info["outcome"] = REFUSED
        sent = "would be sent" if run.dry_run else "was sent"
        raise BudgetExceeded(
            f"the delta would cost ~{estimate:,} data points, over the budget of "
            f"{budget.limit:,} ({budget.describe()}); nothing {sent}",
            where=f'export goal "{run.name}"',
            fix=FIX,
        )
    info["outcome"] = PARTIAL
    first = found.first_left
    # Retries come before the delta: when the first profile left is one, none of the delta is
    # sent. The retries left keep their failure rows, so the next run retries them.
    watermark = start if first.profile_id in exporter.retry_ids else first.seq - 1
    keep = {batch.number for batch in found.kept}
    exporter.unresolved = {number: min(upto, watermark)
                           for number, upto in exporter.unresolved.items() if number in keep}
    for batch in found.kept:
        batch.upto = min(batch.upto, watermark)
    exporter.resolved = min(exporter.resolved, watermark)
    return Cut(budget, found.kept, spent_before, estimate, watermark)


def report(exporter: Exporter, cut: Cut) -> None:
    """Say where a partial goal stopped, once its batches are settled."""
    if cut.watermark is None:
        return
    run = exporter.run
    verb = "would send" if run.dry_run else "sent"
    run.log(
        f"budget reached: {verb} {run.state.data_points:,} of ~{cut.estimate:,} data points; "
        f"the rest goes next run ({cut.budget.describe()})",
        "warning",
    )


def refused_only(summary: Mapping[str, Any]) -> bool:
    """Whether a failed run failed only because export goals refused their budget."""
    goals = summary.get("goals")
    if not isinstance(goals, dict):
        return False
    failed = [g for g in goals.values() if isinstance(g, dict) and g.get("state") == st.FAILED]
    return bool(failed) and all(
        isinstance(g.get("budget"), dict) and g["budget"].get("outcome") == REFUSED
        for g in failed
    )
