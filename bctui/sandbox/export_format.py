"""`/users/export/segment` requests and the exported user objects (reference §8.2–8.3, §8.8)."""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from bctui.sandbox.catalog import Segment
from bctui.sandbox.model import User
from bctui.sandbox.times import created_at_text

MAX_CUSTOM_ATTRIBUTES = 500
OUTPUT_FORMATS = ("zip", "gzip")


def _standard(name: str) -> Callable[[User], Any]:
    return lambda user: user.fields.get(name)


def _summaries(summary: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    return [{"name": name, **entry} for name, entry in summary.items()] or None


def _coordinates(user: User) -> list[float] | None:
    location = user.fields.get("current_location")
    if not isinstance(location, dict):
        return None
    return [location["longitude"], location["latitude"]]  # [lon, lat] as documented


# Field name -> how to read it from a user, in the order of Braze's export object (§8.8).
# A None (or empty) value means "no data": the field is omitted from the exported object.
_EXTRACTORS: dict[str, Callable[[User], Any]] = {
    "created_at": lambda u: created_at_text(u.created_at),
    "external_id": lambda u: u.external_id,
    "user_aliases": lambda u: [
        {"alias_name": name, "alias_label": label} for label, name in u.aliases.items()
    ],
    "braze_id": lambda u: u.braze_id,
    "random_bucket": lambda u: u.random_bucket,
    "first_name": _standard("first_name"),
    "last_name": _standard("last_name"),
    "email": _standard("email"),
    "dob": _standard("dob"),
    "home_city": _standard("home_city"),
    "country": _standard("country"),
    "phone": _standard("phone"),
    "language": _standard("language"),
    "time_zone": _standard("time_zone"),
    "last_coordinates": _coordinates,
    "gender": _standard("gender"),
    "total_revenue": lambda u: u.total_revenue if u.purchases else None,
    "attributed_campaign": _standard("attributed_campaign"),
    "attributed_source": _standard("attributed_source"),
    "attributed_adgroup": _standard("attributed_adgroup"),
    "attributed_ad": _standard("attributed_ad"),
    "push_subscribe": _standard("push_subscribe"),
    "email_subscribe": _standard("email_subscribe"),
    "custom_attributes": lambda u: u.custom,
    "custom_events": lambda u: _summaries(u.events),
    "purchases": lambda u: _summaries(u.purchases),
    "devices": lambda u: u.devices,
    "push_tokens": lambda u: u.push_tokens,
    "apps": lambda u: u.apps,
    "campaigns_received": lambda u: u.campaigns,
    "canvases_received": lambda u: None,  # the sandbox has no Canvases
    "cards_clicked": lambda u: None,
    "created_from": lambda u: u.created_from,
    "uninstalled_at": lambda u: None,  # "Omitted if the app has not been uninstalled"
}
EXPORT_FIELDS: frozenset[str] = frozenset(_EXTRACTORS)


@dataclass(frozen=True)
class ExportRequest:
    """A validated `/users/export/segment` body."""

    segment: Segment
    fields: tuple[str, ...]  # in export-object order
    # Custom attributes are exported when "custom_attributes" is in `fields`: all of them when
    # this is None, else only these names.
    custom_attributes: tuple[str, ...] | None
    output_format: str  # zip | gzip
    callback_endpoint: str | None


def parse_export_request(
    body: Mapping[str, Any], segments: Mapping[str, Segment]
) -> ExportRequest | str:
    """The validated request, or the 400 message naming what is wrong.

    Braze does not document these answers (UNCONFIRMED, reference §8.3); the sandbox refuses
    each problem with a message that names the parameter.
    """
    segment_id = body.get("segment_id")
    if segment_id is None:
        return "'segment_id' is required"
    segment = segments.get(segment_id) if isinstance(segment_id, str) else None
    if segment is None or segment.archived:
        return "segment_id must be a string of the Segment api identifier"

    fields = body.get("fields_to_export")
    if fields is None:
        return "'fields_to_export' is required: a list of user fields such as ['external_id']"
    if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
        return "'fields_to_export' must be a non-empty array of field names"
    unknown = [f for f in fields if f not in EXPORT_FIELDS]
    if unknown:
        names = ", ".join(repr(f) for f in unknown)
        return f"'fields_to_export' contains unknown field(s): {names}"

    custom = body.get("custom_attributes_to_export")
    if custom is not None:
        if not isinstance(custom, list) or not all(isinstance(c, str) for c in custom):
            return "'custom_attributes_to_export' must be an array of custom attribute names"
        if len(custom) > MAX_CUSTOM_ATTRIBUTES:
            return f"'custom_attributes_to_export' may name at most {MAX_CUSTOM_ATTRIBUTES}"

    output_format = body.get("output_format", "zip")
    if output_format is None:
        output_format = "zip"
    if output_format not in OUTPUT_FORMATS:
        return f"'output_format' must be 'zip' or 'gzip', got {output_format!r}"

    callback = body.get("callback_endpoint")
    if callback is not None and not isinstance(callback, str):
        return "'callback_endpoint' must be a string (a URL)"

    requested = set(fields)
    # "If custom_attributes is included in fields_to_export, all custom attributes are exported
    # regardless of what is in custom_attributes_to_export."
    named = None if "custom_attributes" in requested or custom is None else tuple(custom)
    if named is not None:
        requested.add("custom_attributes")
    ordered = tuple(name for name in _EXTRACTORS if name in requested)
    return ExportRequest(segment, ordered, named, output_format, callback or None)


def render_user(user: User, request: ExportRequest) -> dict[str, Any]:
    """The exported object: only requested fields, fields without data omitted."""
    result: dict[str, Any] = {}
    for name in request.fields:
        if name == "custom_attributes" and request.custom_attributes is not None:
            value: Any = {k: user.custom[k] for k in request.custom_attributes if k in user.custom}
        else:
            value = _EXTRACTORS[name](user)
        if value is None or value == [] or value == {}:
            continue
        result[name] = value
    return result


def render_line(user: User, request: ExportRequest) -> bytes:
    """One JSON line (without the newline) for `user`."""
    return orjson.dumps(render_user(user, request))


def pack(lines: Iterable[bytes], output_format: str, member_name: str, *, level: int = 6) -> bytes:
    """A file of JSON lines: gzip, or a zip with one `.txt` member (Braze's readers want `.txt`)."""
    payload = b"".join(line + b"\n" for line in lines)
    if output_format == "gzip":
        return gzip.compress(payload, compresslevel=level, mtime=0)
    buffer = io.BytesIO()
    with zipfile.ZipFile(
        buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level
    ) as archive:
        archive.writestr(member_name, payload)
    return buffer.getvalue()
