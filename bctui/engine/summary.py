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
    return ", ".join(
        (
            f'segment "{goal.segment}" → {_plural(len(goal.mappings), "attribute")}',
            "creates users" if goal.allow_create else "update only",
            "all attributes" if goal.all_attributes else "changed attributes",
        )
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
