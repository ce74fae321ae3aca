"""Date and time formats the Braze API reads and writes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# `yyyy-MM-dd'T'HH:mm:ss:SSSZ`: Braze's own variant with a colon before the milliseconds.
_COLON_MILLIS = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}):(\d{3})(Z|[+-]\d{2}:?\d{2})?$")
# `last_edit.time[gt]`: `yyyy-MM-DDTHH:mm:ss`, optionally with an offset such as `-5:00` or `Z`.
_LAST_EDIT = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.\d+)?"
    r"(?:(Z)|([+-])(\d{1,2}):?(\d{2}))?$"
)


def iso_millis(epoch: float) -> str:
    """`2021-06-28T17:02:43.032Z`, the export's format for event and campaign dates."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def created_at_text(epoch: float) -> str:
    """`2020-07-10 15:00:00.000 UTC`, the export sample's format for `created_at`."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"


def iso_seconds(epoch: float) -> str:
    """`2024-03-05T10:20:30+00:00`, ISO 8601 as the list/details endpoints return it."""
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()


def parse_event_time(text: object) -> float | None:
    """Epoch seconds of an event/purchase `time` (ISO 8601 or Braze's `:SSS` variant), else None.

    A time without a zone is taken as UTC.
    """
    if not isinstance(text, str) or not text:
        return None
    candidate = text.strip()
    match = _COLON_MILLIS.match(candidate)
    if match:
        candidate = f"{match.group(1)}.{match.group(2)}{match.group(3) or ''}"
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_last_edit(text: str) -> float | None:
    """Epoch seconds of a `last_edit.time[gt]` value, else None.

    Accepts the documented `yyyy-MM-DDTHH:mm:ss` (taken as UTC) and the doc example's offset form
    (`2020-06-28T23:59:59-5:00`). A `+` that arrived unencoded in a query string reads as a blank.
    """
    text = text.strip()
    if " " in text:
        head, _, tail = text.rpartition(" ")
        text = f"{head}+{tail}"
    match = _LAST_EDIT.match(text)
    if not match:
        return None
    date, clock, zulu, sign, hours, minutes = match.groups()
    try:
        moment = datetime.fromisoformat(f"{date}T{clock}")
    except ValueError:
        return None
    zone = UTC
    if sign and not zulu:
        offset = timedelta(hours=int(hours), minutes=int(minutes))
        if offset >= timedelta(hours=24):
            return None
        zone = timezone(offset if sign == "+" else -offset)
    return moment.replace(tzinfo=zone).timestamp()
