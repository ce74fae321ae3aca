"""Write the config model back to `connections.toml`, atomically and readably.

`to_toml` renders a whole file in the documented layout (the example's: inline tables for small
settings, `[connection.braze]` / `[connection.s3]` tables, one mapping per line). The `*_dict`
functions give the plain-dict form of each model object that `config_edit` diffs to change a
hand-written file in place; `*_toml` render one new table of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import tomlkit

from bctui.engine.models import (
    Config,
    Connection,
    ExportGoal,
    Goal,
    IdentifierRules,
    ImportGoal,
    Retention,
    Schedule,
    SmtpSettings,
    StoreSettings,
)
from bctui.store.segments import SegmentDef

HEADER: Final = (
    "# bctui connections (DESIGN §7 lists every key). Comments and layout you add are kept.\n"
)

# Dict-valued keys of a connection written as `[connection.KEY]` tables; other tables are inline.
CONNECTION_TABLES: Final = ("braze", "s3")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def save_config(config: Config, path: Path) -> None:
    """Replace `path` with `config`, atomically; refuse to overwrite a file that does not parse.

    A malformed file may hold hand edits the user has not finished: it is never overwritten. An
    existing file is edited in place, so its comments and layout survive.
    """
    from bctui.engine.config_document import ConfigDocument  # it builds on this module

    ConfigDocument.load(path).save(config)


def to_toml(config: Config) -> str:
    """The TOML text for `config` in the documented layout."""
    parts = [HEADER, "[store]\n" + table_body(store_dict(config.store))]
    if config.smtp is not None:
        parts.append("[smtp]\n" + table_body(smtp_dict(config.smtp)))
    if config.retention != Retention():
        retention = {"days": config.retention.days, "runs": config.retention.runs}
        parts.append("[retention]\n" + table_body(retention))
    parts += [segment_toml(segment_dict(s)) for s in config.segments]
    parts += [connection_toml(connection_dict(c)) for c in config.connections]
    return "\n".join(parts)


# -- rendering ---------------------------------------------------------------------------------


def toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, quoted otherwise."""
    return key if _BARE_KEY.match(key) else tomlkit.string(key).as_string()


def toml_value(value: Any, *, indent: str = "  ") -> str:
    """One value as TOML text: tables inline, a list of several tables one item per line."""
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + items + " }"
    if isinstance(value, list | tuple):
        if len(value) > 1 and all(isinstance(v, Mapping) for v in value):
            lines = "".join(f"{indent}{toml_value(v)},\n" for v in value)
            return "[\n" + lines + "]"
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(tomlkit.item(value).as_string())


def table_body(table: Mapping[str, Any]) -> str:
    """`key = value` lines for every entry of `table`."""
    return "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in table.items())


def segment_toml(segment: Mapping[str, Any]) -> str:
    """A `[[segment]]` table."""
    return "[[segment]]\n" + table_body(segment)


def goal_toml(goal: Mapping[str, Any]) -> str:
    """A `[[connection.goal]]` table."""
    return "[[connection.goal]]\n" + table_body(goal)


def connection_toml(conn: Mapping[str, Any]) -> str:
    """A `[[connection]]` table with its `[connection.braze]`/`[connection.s3]` and goals."""
    simple = {k: v for k, v in conn.items() if k not in (*CONNECTION_TABLES, "goal")}
    parts = ["[[connection]]\n" + table_body(simple)]
    parts += [
        f"[connection.{key}]\n" + table_body(conn[key]) for key in CONNECTION_TABLES if key in conn
    ]
    parts += [goal_toml(g) for g in conn.get("goal", [])]
    return "\n".join(parts)


# -- the model as plain dicts ------------------------------------------------------------------


def store_dict(store: StoreSettings) -> dict[str, Any]:
    """The `[store]` table."""
    if store.password:
        return {"url": store.url, "password": store.password}
    return {"url": store.url}


def smtp_dict(smtp: SmtpSettings) -> dict[str, Any]:
    """The `[smtp]` table; user and password only when the server needs a login."""
    out: dict[str, Any] = {"host": smtp.host, "port": smtp.port, "security": smtp.security}
    if smtp.user:
        out.update(user=smtp.user, password=smtp.password)
    out.update(sender=smtp.sender, timeout_seconds=smtp.timeout_seconds)
    return out


def segment_dict(segment: SegmentDef) -> dict[str, Any]:
    """A `[[segment]]` table; `rules` in file order."""
    rules = []
    for rule in segment.rules:
        item: dict[str, Any] = {"property": rule.property, "op": rule.op}
        if rule.value is not None:
            item["value"] = list(rule.value) if isinstance(rule.value, tuple) else rule.value
        rules.append(item)
    return {"name": segment.name, "match": segment.match, "rules": rules}


def connection_dict(conn: Connection) -> dict[str, Any]:
    """A `[[connection]]` table; its goals under "goal"."""
    out: dict[str, Any] = {
        "name": conn.name,
        "enabled": conn.enabled,
        "favorite": conn.favorite,
        "labels": list(conn.labels),
        "description": conn.description,
        "notify": {"emails": list(conn.notify.emails), "when": conn.notify.when},
        "schedule": schedule_dict(conn.schedule),
        **budget_dict(conn.max_data_points, conn.on_budget),
        "braze": {"endpoint": conn.braze.endpoint, "api_key": conn.braze.api_key},
    }
    if conn.s3 is not None:
        s3 = conn.s3
        out["s3"] = {
            "access_key_id": s3.access_key_id,
            "secret_access_key": s3.secret_access_key,
            "bucket": s3.bucket,
            "root": s3.root,
            "region": s3.region,
            "endpoint_url": s3.endpoint_url,
        }
    if conn.goals:
        out["goal"] = [goal_dict(g) for g in conn.goals]
    return out


def schedule_dict(schedule: Schedule) -> dict[str, Any]:
    """The schedule table: only the keys its kind takes."""
    out: dict[str, Any] = {"kind": schedule.kind}
    match schedule.kind:
        case "times_per_day":
            out["times"] = schedule.times
        case "days_of_week":
            out.update(days=list(schedule.days), at=schedule.at)
        case "day_of_month":
            out.update(day=schedule.day, at=schedule.at)
        case "weekday_of_month":
            out.update(week=schedule.week, day=schedule.day, at=schedule.at)
        case "cron":
            out["expr"] = schedule.expr
    if schedule.timezone:
        out["timezone"] = schedule.timezone
    return out


def _identifiers(rules: IdentifierRules, *, braze_first: bool) -> list[list[dict[str, str]]]:
    groups = []
    for group in rules:
        pairs = []
        for pair in group:
            item = (
                {"braze": pair.braze, "property": pair.property}
                if braze_first
                else {"property": pair.property, "braze": pair.braze}
            )
            if pair.label:
                item["label"] = pair.label
            pairs.append(item)
        groups.append(pairs)
    return groups


def goal_dict(goal: Goal) -> dict[str, Any]:
    """A `[[connection.goal]]` table."""
    if isinstance(goal, ImportGoal):
        audience: dict[str, Any] = {
            "segment_id": goal.audience.segment_id,
            "name": goal.audience.name,
        }
        if goal.audience.campaign_ids:
            audience["campaign_ids"] = list(goal.audience.campaign_ids)
        return {
            "type": "import",
            "name": goal.name,
            "enabled": goal.enabled,
            "audience": audience,
            "allow_create": goal.allow_create,
            "identifiers": _identifiers(goal.identifiers, braze_first=True),
            "mappings": [
                {"braze": m.braze, "property": m.property, "strategy": m.strategy}
                for m in goal.mappings
            ],
            "remaining": {
                "enabled": goal.remaining.enabled,
                "prefix": goal.remaining.prefix,
                "strategy": goal.remaining.strategy,
            },
            "wait": {
                "poll_seconds": goal.wait.poll_seconds,
                "quiet_seconds": goal.wait.quiet_seconds,
                "timeout_minutes": goal.wait.timeout_minutes,
            },
        }
    assert isinstance(goal, ExportGoal)
    mappings = []
    for m in goal.mappings:
        item: dict[str, str] = {"source": m.source}
        if m.source in ("property", "static"):
            item["value"] = m.value
        item["braze"] = m.braze
        if m.type:
            item["type"] = m.type
        mappings.append(item)
    return {
        "type": "export",
        "name": goal.name,
        "enabled": goal.enabled,
        "segment": goal.segment,
        "allow_create": goal.allow_create,
        "all_attributes": goal.all_attributes,
        "min_permission_level": goal.min_permission_level,
        "identifiers": _identifiers(goal.identifiers, braze_first=False),
        "mappings": mappings,
        **budget_dict(goal.max_data_points, goal.on_budget),
    }


def budget_dict(max_data_points: int | None, on_budget: str) -> dict[str, Any]:
    """`max_data_points` and `on_budget`, only when set (on_budget only when not the default)."""
    out: dict[str, Any] = {}
    if max_data_points is not None:
        out["max_data_points"] = max_data_points
        if on_budget != "refuse":
            out["on_budget"] = on_budget
    return out


# The names these had before they were public.
_segment = segment_dict
_connection = connection_dict
_schedule = schedule_dict
_goal = goal_dict
