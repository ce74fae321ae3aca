"""Data-point budgets of export goals: `max_data_points` on a goal or a connection.

Braze bills every attribute written. With a budget, an export first plans its delta in change
order, keeping the batches that fit the budget (packed as bytes) and counting the rest: either
everything fits and is sent, or it does not, and the goal refuses to send anything
(`on_budget = "refuse"`) or sends the prefix that fits and stops there (`on_budget =
"partial"`), its watermark just below the first profile not sent, so that the next run sends the
rest. A connection's budget is shared by its export goals in goal order.

Memory stays bounded whatever the budget: what the first pass holds is capped (`HOLD_BYTES`).
Past the cap it only counts, and when the goal may send, a second pass plans the same range of
changes again (up to the goal's fixed upper change sequence) and sends as it plans, stopping at
the budget. Small budgets take one pass.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Generator, Iterator, Mapping
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
# What the first pass of a budgeted export may hold while it decides (packed batches: about 70
# bytes a data point); past it, a second pass plans again what fits, so memory stays bounded.
HOLD_BYTES: Final = 32 * 1024 * 1024
HOLD_ENV: Final = "BCTUI_BUDGET_HOLD_BYTES"
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
    batches: Iterator[ExportBatch]
    spent_before: int  # the goal's data points in this run before this pass (a resumed run)
    estimate: int  # what the whole delta costs, `spent_before` included
    watermark: int | None  # where the watermark stops; None when the whole delta fits
    fitted: _Fit  # what fits: counted for a dry run, which keeps no batches


@dataclass
class _Fit:
    """A pass of `fit`: what fits in `room` and what the pass planned in all."""

    room: int
    points: int = 0  # data points of the objects that fit
    objects: int = 0  # objects that fit
    created: int = 0  # of them, those never delivered to the goal before
    total: int = 0  # data points of every object planned
    first_left: Planned | None = None  # the first profile that does not fit
    cut: int = 0  # the number of the batch it is in
    cut_kept: bool = False  # whether the objects before it in that batch are kept


def fit(batches: Generator[ExportBatch, None, None], found: _Fit, *, count_rest: bool,
        on_cut: Callable[[_Fit], None] = lambda found: None,
        tick: Callable[[], None] = lambda: None) -> Iterator[ExportBatch]:
    """Yield batches while their objects' data points fit in `found.room`, the batch that
    overflows cut at its first object that does not fit (`on_cut` is told before it is
    yielded); then count the rest without yielding it (`count_rest`), or stop planning."""
    with contextlib.closing(batches):
        for batch in batches:
            costs = [planned.data_points for planned in batch.planned]
            found.total += sum(costs)
            if found.first_left is None:
                points, take = found.points, 0
                for cost in costs:
                    if points + cost > found.room:
                        break
                    points += cost
                    take += 1
                found.points = points
                found.objects += take
                found.created += sum(1 for planned in batch.planned[:take] if planned.first_time)
                if take < len(costs):
                    found.first_left = batch.planned[take]
                    found.cut, found.cut_kept = batch.number, take > 0
                    on_cut(found)
                    if take:
                        yield _truncate(batch, take)
                    if not count_rest:
                        return
                else:
                    yield batch
            tick()


def _truncate(batch: ExportBatch, take: int) -> ExportBatch:
    """The batch's first `take` objects (and what records their delivery)."""
    del batch[take:]
    del batch.planned[take:]
    if batch.sent:
        rows = orjson.loads(batch.sent)[:take]
        batch.sent = st.encode_sent((row[0], row[1], row[2]) for row in rows)
    return batch


def hold_limit(given: int | None = None) -> int:
    """The bytes a budget's first pass may hold: `given`, else $BCTUI_BUDGET_HOLD_BYTES, else
    HOLD_BYTES."""
    if given is not None:
        return given
    text = os.environ.get(HOLD_ENV, "").strip()
    return int(text) if text.isdigit() else HOLD_BYTES


def plan_within(exporter: Exporter, budget: Budget, hold: int = HOLD_BYTES) -> Cut:
    """Plan the exporter's delta against `budget`: the batches to send, or BudgetExceeded when
    the goal refuses (nothing is sent and its watermark stays).

    The first pass holds the batches that fit, packed, while they take at most `hold` bytes,
    and counts the whole delta. When they took more before the pass could decide, it lets go
    of them, and the batches come from a second pass over the same range of changes
    (`_second_pass`), which stops at the budget. A dry run holds nothing: it only counts.
    """
    run = exporter.run
    gs = run.state
    spent_before = gs.data_points
    start = gs.cursor or 0
    run.phase("estimating", f"data points against a budget of {budget.limit:,}")
    found = _Fit(max(0, budget.limit - spent_before))
    held: list[ExportBatch] | None = None if run.dry_run else []
    size = 0
    for batch in fit(exporter._plan(), found, count_rest=True,
                     tick=lambda: run.progress(exporter.examined, exporter.total)):
        if held is not None:
            size += batch.pack()
            if size <= hold:
                held.append(batch)
            else:
                held = None  # over what may be held: the rest is only counted
                exporter.counting_only = True
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
    elif budget.on_budget != PARTIAL:
        info["outcome"] = REFUSED
        sent = "would be sent" if run.dry_run else "was sent"
        raise BudgetExceeded(
            f"the delta would cost ~{estimate:,} data points, over the budget of "
            f"{budget.limit:,} ({budget.describe()}); nothing {sent}",
            where=f'export goal "{run.name}"',
            fix=FIX,
        )
    else:
        info["outcome"] = PARTIAL
    if held is not None or run.dry_run:
        watermark = None if found.first_left is None else _stop_at(exporter, found, start)
        return Cut(budget, _unpacked(held or []), spent_before, estimate, watermark, found)
    run.log(f"budget: what fits took more than {hold:,} bytes to hold; planning it again to "
            f"send it (changes {start} to {gs.upper})")
    cut = Cut(budget, iter(()), spent_before, estimate, None, _Fit(found.room))
    cut.batches = _second_pass(exporter, cut, start)
    return cut


def _unpacked(held: list[ExportBatch]) -> Iterator[ExportBatch]:
    """The held batches, each unpacked as it goes out (and let go of once sent)."""
    held.reverse()
    while held:
        batch = held.pop()
        batch.unpack()
        yield batch


def _second_pass(exporter: Exporter, cut: Cut, start: int) -> Iterator[ExportBatch]:
    """The batches that fit, planned again over the first pass's range of changes (up to the
    goal's fixed upper change sequence: a profile changed since has moved past it, and goes
    next run), stopping at the first object that does not fit."""
    run = exporter.run

    def stop(found: _Fit) -> None:
        cut.watermark = _stop_at(exporter, found, start)

    yield from fit(exporter.replan(), cut.fitted, count_rest=False, on_cut=stop)
    info = run.state.budget
    assert info is not None
    if cut.watermark is None:
        info["outcome"] = WITHIN  # what did not fit has changed since the estimate
    elif info["outcome"] != PARTIAL:
        # A profile rejected last time, changed since the estimate, now costs more: the goal
        # stops at its budget rather than spend past it.
        info["outcome"] = PARTIAL
        run.log("budget: the delta grew after the estimate; sending stopped at the budget, "
                "the rest goes next run", "warning")


def _stop_at(exporter: Exporter, found: _Fit, start: int) -> int:
    """Where the watermark stops when `found.first_left` is the first profile not sent: the
    batches from the cut on are not sent (the cut one only its kept prefix), and none of the
    batches settles the watermark past it."""
    first = found.first_left
    assert first is not None
    # Retries come before the delta: when the first profile left is one, none of the delta is
    # sent. The retries left keep their failure rows, so the next run retries them.
    watermark = start if first.profile_id in exporter.retry_ids else first.seq - 1
    exporter.unresolved = {
        number: min(upto, watermark) for number, upto in exporter.unresolved.items()
        if number < found.cut or (number == found.cut and found.cut_kept)}
    exporter.resolved = min(exporter.resolved, watermark)
    return watermark


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
