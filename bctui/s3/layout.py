"""Where Braze writes segment exports in a bucket (reference §8.6).

`[root/]segment-export/<segment_id>/<YYYY-MM-DD>/<object_prefix>/<32 hex>.gz|.zip`, where the date
is the day the export completed (UTC) and `object_prefix` is `<uuid>-<unix seconds at request>`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

EXPORT_FOLDER = "segment-export"
EXPORT_SUFFIXES = (".gz", ".zip")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_STARTED = re.compile(r"-(\d{9,11})$")
# Braze's docs call the timestamp "seconds since 2017-01-01" while real keys hold Unix seconds;
# only a value that reads as a plausible Unix time is used to narrow the search.
_EARLIEST = dt.date(2017, 1, 1)


@dataclass(frozen=True)
class ExportFile:
    """One export file in the bucket."""

    key: str
    size: int
    last_modified: dt.datetime
    etag: str


def _clean_root(root: str | None) -> str:
    parts = [part for part in (root or "").split("/") if part]
    return "".join(f"{part}/" for part in parts)


def _segment_part(segment_id: str) -> str:
    segment = segment_id.strip("/")
    if not segment or "/" in segment:
        raise ValueError(f"not a segment id: {segment_id!r}")
    return segment


def segment_root(root: str | None, segment_id: str) -> str:
    """`[root/]segment-export/<segment_id>/`: the folder holding one date folder per day."""
    return f"{_clean_root(root)}{EXPORT_FOLDER}/{_segment_part(segment_id)}/"


def date_text(date: dt.date | str) -> str:
    """A date folder name, `YYYY-MM-DD`."""
    if isinstance(date, dt.datetime):
        date = date.astimezone(dt.UTC).date() if date.tzinfo else date.date()
    text = date.isoformat() if isinstance(date, dt.date) else date.strip("/")
    if not _DATE.match(text):
        raise ValueError(f"not a YYYY-MM-DD date: {date!r}")
    return text


def export_prefix(
    root: str | None, segment_id: str, date: dt.date | str, object_prefix: str
) -> str:
    """`[root/]segment-export/<segment_id>/<YYYY-MM-DD>/<object_prefix>/`; root may have slashes."""
    prefix = object_prefix.strip("/")
    if not prefix or "/" in prefix:
        raise ValueError(f"not an object prefix: {object_prefix!r}")
    return f"{segment_root(root, segment_id)}{date_text(date)}/{prefix}/"


def is_date_folder(name: str) -> bool:
    """True for a `YYYY-MM-DD` folder name."""
    return bool(_DATE.match(name))


def requested_on(object_prefix: str, *, today: dt.date | None = None) -> dt.date | None:
    """The UTC day an export was requested, read from its object prefix, if plausible."""
    match = _STARTED.search(object_prefix.strip("/"))
    if not match:
        return None
    day = dt.datetime.fromtimestamp(int(match.group(1)), dt.UTC).date()
    latest = (today or dt.datetime.now(dt.UTC).date()) + dt.timedelta(days=2)
    return day if _EARLIEST <= day <= latest else None


def is_export_file(key: str) -> bool:
    """True for the `.gz` and `.zip` objects Braze writes (not folders or stray files)."""
    return key.lower().endswith(EXPORT_SUFFIXES)
