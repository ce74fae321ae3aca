"""Write the config model back to `connections.toml`, atomically and readably."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from bctui.engine.config import ConfigError, load_config, parse_config
from bctui.engine.fileio import atomic_write
from bctui.engine.models import (
    Config,
    Connection,
    ExportGoal,
    Goal,
    IdentifierRules,
    ImportGoal,
    Schedule,
)
from bctui.store.segments import SegmentDef

HEADER = (
    "# bctui connections — see DESIGN §7 for every key. Written by bctui; comments are not kept.\n"
)


def save_config(config: Config, path: Path) -> None:
    """Replace `path` with `config`, atomically; refuse to overwrite a file that does not parse.

    A malformed file may hold hand edits the user has not finished: it is never overwritten.
    """
    if path.exists():
        try:
            load_config(path)
        except ConfigError as exc:
            raise ConfigError(path, exc.issues) from None
    text = to_toml(config)
    parse_config(text, path)  # what we write must read back
    atomic_write(path, text.encode("utf-8"))


def to_toml(config: Config) -> str:
    """The TOML text for `config`, keys in the documented order, defaults left out."""
    doc: dict[str, Any] = {"store": {"url": config.store.url}}
    if config.segments:
        doc["segment"] = [_segment(s) for s in config.segments]
    if config.connections:
        doc["connection"] = [_connection(c) for c in config.connections]
    return HEADER + "\n" + tomli_w.dumps(doc)


def _segment(segment: SegmentDef) -> dict[str, Any]:
    rules = []
    for rule in segment.rules:
        item: dict[str, Any] = {"property": rule.property, "op": rule.op}
        if rule.value is not None:
            item["value"] = list(rule.value) if isinstance(rule.value, tuple) else rule.value
        rules.append(item)
    return {"name": segment.name, "match": segment.match, "rules": rules}


def _connection(conn: Connection) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": conn.name,
        "enabled": conn.enabled,
        "favorite": conn.favorite,
        "labels": list(conn.labels),
        "description": conn.description,
        "notify": {"emails": list(conn.notify.emails), "when": conn.notify.when},
        "schedule": _schedule(conn.schedule),
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
        out["goal"] = [_goal(g) for g in conn.goals]
    return out


def _schedule(schedule: Schedule) -> dict[str, Any]:
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


def _goal(goal: Goal) -> dict[str, Any]:
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
    }
