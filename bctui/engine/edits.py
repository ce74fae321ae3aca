"""Edits of the config model that both front ends make the same way (no Textual here)."""

from __future__ import annotations

import dataclasses

from bctui.engine.models import Config, ExportGoal
from bctui.store.segments import SegmentDef


def replace_segment(config: Config, old_name: str | None, segment: SegmentDef) -> Config:
    """`config` with the segment `old_name` replaced by `segment` in its place (appended when
    `old_name` is None or names no segment); a rename carries the export goals using it."""
    segments = list(config.segments)
    original = config.segment(old_name) if old_name else None
    if original is None:
        segments.append(segment)
        return dataclasses.replace(config, segments=tuple(segments))
    segments[segments.index(original)] = segment
    connections = config.connections
    if original.name != segment.name:
        folded = original.name.casefold()
        connections = tuple(
            dataclasses.replace(
                conn,
                goals=tuple(
                    dataclasses.replace(goal, segment=segment.name)
                    if isinstance(goal, ExportGoal) and goal.segment.casefold() == folded
                    else goal
                    for goal in conn.goals
                ),
            )
            for conn in connections
        )
    return dataclasses.replace(config, segments=tuple(segments), connections=connections)


def segment_name_problem(config: Config, name: str, old_name: str | None) -> str:
    """What is wrong with naming the segment `old_name` (None: a new one) `name` ('' if fine)."""
    if not name:
        return "a segment needs a name"
    other = config.segment(name)
    if other is not None and (old_name is None or other.name.casefold() != old_name.casefold()):
        return f'a segment named "{other.name}" exists; choose another name'
    return ""
