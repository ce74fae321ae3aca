"""Short summaries of connections and goals: what `bctui list` prints and the UI's tables show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bctui.engine.models import Connection, ExportGoal, Goal, ImportGoal
from bctui.engine.schedule import describe_schedule, next_run


def connection_summary(conn: Connection, *, now: datetime | None = None) -> dict[str, Any]:
    """What `list --json` prints for one connection (no secret references resolved).

    `next_run` is the next scheduled start as ISO 8601 (in the schedule's zone), or None when the
    connection is off or runs only by hand.
    """
    upcoming = next_run(conn.schedule, now or datetime.now(UTC)) if conn.enabled else None
    return {
        "name": conn.name,
        "enabled": conn.enabled,
        "favorite": conn.favorite,
        "labels": list(conn.labels),
        "description": conn.description,
        "schedule": describe_schedule(conn.schedule),
        "next_run": upcoming.isoformat() if upcoming else None,
        "endpoint": conn.braze.endpoint,
        "max_data_points": conn.max_data_points,
        "on_budget": conn.on_budget,
        "goals": [{"name": g.name, "type": g.type, "enabled": g.enabled} for g in conn.goals],
    }


def goal_counts(conn: Connection) -> str:
    """'1 import, 2 exports' (or 'no goals')."""
    if not conn.goals:
        return "no goals"
    imports = sum(1 for g in conn.goals if g.type == "import")
    exports = len(conn.goals) - imports
    return f"{_plural(imports, 'import')}, {_plural(exports, 'export')}"


def goal_summary(goal: Goal) -> str:
    """One line for the UI's Goals tab: where the data comes from, where it goes, and how."""
    if isinstance(goal, ImportGoal):
        return _import_summary(goal)
    return _export_summary(goal)


def connection_line(conn: Connection) -> str:
    """'1 import, 1 export · mon, fri at 01:30 · https://rest.iad-01.braze.com'."""
    return " · ".join((goal_counts(conn), describe_schedule(conn.schedule), conn.braze.endpoint))


def _import_summary(goal: ImportGoal) -> str:
    audience = goal.audience
    source = f'Braze segment "{audience.name or audience.segment_id}"'
    if audience.campaign_ids:
        source += f" ({_plural(len(audience.campaign_ids), 'campaign')}' receivers)"
    strategies = list(dict.fromkeys(m.strategy for m in goal.mappings))
    target = _plural(len(goal.mappings), "field")
    if strategies:
        target += f" ({', '.join(strategies)})"
    parts = [f"{source} → {target}"]
    if goal.remaining.enabled:
        parts.append(f"other fields as {goal.remaining.prefix}* ({goal.remaining.strategy})")
    parts.append("creates profiles" if goal.allow_create else "existing profiles only")
    return ", ".join(parts)


def _export_summary(goal: ExportGoal) -> str:
    parts = [
        f'segment "{goal.segment}" → {_plural(len(goal.mappings), "attribute")}',
        "creates users" if goal.allow_create else "update only",
        "all attributes" if goal.all_attributes else "changed attributes",
    ]
    if goal.max_data_points is not None:
        parts.append(budget_text(goal.max_data_points, goal.on_budget))
    return ", ".join(parts)


def budget_text(max_data_points: int, on_budget: str) -> str:
    """'at most 500,000 data points a run (the rest next run)'."""
    past = "the rest next run" if on_budget == "partial" else "refused when more"
    return f"at most {max_data_points:,} data points a run ({past})"


def run_budget_line(goal: str, summary: dict[str, Any]) -> str | None:
    """What a goal of a run summary did against its data-point budget, when it had one and the
    delta did not fit: 'export: ~342 data points against a budget of 250: partial, 250 sent'."""
    budget = summary.get("budget")
    if not isinstance(budget, dict) or budget.get("outcome") == "within":
        return None
    outcome = "refused, nothing sent" if budget.get("outcome") == "refused" else (
        f"partial, {summary.get('data_points', 0):,} sent; the rest goes next run")
    return (f"{goal}: ~{budget.get('estimate', 0):,} data points against a budget of "
            f"{budget.get('limit', 0):,} ({budget.get('set_on', '')}): {outcome}")


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
