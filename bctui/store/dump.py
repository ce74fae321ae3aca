"""Profiles out: the dump line that `load_file` reads back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from bctui.store.base import Store
from bctui.store.model import Profile
from bctui.store.segments import SegmentDef

DUMP_KEYS = ("id", "properties", "permission_level", "interactions_viewed", "segments")


def dump_line(profile: Profile, segments: Sequence[str]) -> dict[str, Any]:
    """`{"id", "properties", "permission_level", "interactions_viewed", "segments"}`."""
    return {
        "id": profile.id,
        "properties": profile.properties,
        "permission_level": profile.permission_level,
        "interactions_viewed": profile.interactions_viewed,
        "segments": list(segments),
    }


def iter_dump(
    store: Store, segments: Sequence[SegmentDef], *, segment: SegmentDef | None = None
) -> Iterator[dict[str, Any]]:
    """Every profile (or `segment`'s members) as a dump line, in change order, streamed; each
    names the `segments` it belongs to."""
    for profile, names in store.iter_profiles(segment=segment, segments_of=segments):
        yield dump_line(profile, names)
