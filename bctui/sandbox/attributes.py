"""User attribute semantics of /users/track: standard fields, custom attributes, data points."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Iterable
from datetime import date
from typing import Any

from bctui.sandbox.model import User, UserStore

PRIMARY_IDENTIFIERS: tuple[str, ...] = ("external_id", "user_alias", "braze_id")
# Keys of an attributes object that steer processing instead of setting anything.
CONTROL_KEYS = frozenset(
    {*PRIMARY_IDENTIFIERS, "_update_existing_only", "push_token_import", "_merge_objects"}
)
# Standard fields Braze does not bill (reference §13: subscription states, push tokens, ...).
FREE_FIELDS = frozenset(
    {
        "email_subscribe",
        "push_subscribe",
        "subscription_groups",
        "push_tokens",
        "email_open_tracking_disabled",
        "email_click_tracking_disabled",
        "marked_email_as_spam_at",
        "alias_name",
        "alias_label",
    }
)
BILLABLE_FIELDS = frozenset(
    {
        "first_name",
        "last_name",
        "email",
        "phone",
        "gender",
        "country",
        "language",
        "home_city",
        "dob",
        "time_zone",
        "current_location",
        "date_of_first_session",
        "date_of_last_session",
        "facebook",
        "twitter",
        "bio",
    }
)
STANDARD_FIELDS = FREE_FIELDS | BILLABLE_FIELDS
_FREE_KEYS = CONTROL_KEYS | FREE_FIELDS
# Keys whose values validate_standard_fields checks.
_VALIDATED_KEYS = frozenset(
    {
        "email_subscription_info",
        "email",
        "email_subscribe",
        "push_subscribe",
        "current_location",
        "subscription_groups",
        "push_tokens",
        "push_token_import",
    }
)
SUBSCRIBE_STATES = frozenset({"opted_in", "unsubscribed", "subscribed"})

# The documented /users/track error codes (reference §7.8), as the `type` text of an error item.
# How Braze renders a code inside an item is UNCONFIRMED; the documented sentence is used.
ERRORS = {
    "BAD_DEVICE_ID": "The 'device_id' for a token import must be between 8 and 255 bytes.",
    "BAD_EMAIL_SUBSCRIPTION_STATE": (
        "'email_subscribe' must be 'subscribed', 'unsubscribed', or 'opted_in'."
    ),
    "BAD_LOCATION_UPDATE": (
        "'current_location' must be an object containing 'longitude' and 'latitude'."
    ),
    "BAD_PUSH_SUBSCRIPTION_STATE": (
        "'push_subscribe' must be 'subscribed', 'unsubscribed', or 'opted_in'."
    ),
    "BAD_PUSH_TOKEN_IMPORT": (
        "Token imports must include tokens and exclude 'external_id' and 'braze_id'."
    ),
    "BAD_PUSH_TOKEN_STRING": "The 'token' value in a token import must be a string.",
    "BAD_PUSH_TOKEN_VALUE": "'push_tokens' must be an array of objects.",
    "BAD_SUBSCRIPTION_GROUP_ARRAY": "'subscription_groups' must be an array.",
    "BAD_SUBSCRIPTION_GROUP_HASH": (
        "Each item in the 'subscription_groups' array must be a JSON object with "
        "'subscription_group_id' and 'subscription_state' keys."
    ),
    "BAD_SUBSCRIPTION_GROUP_ID": "'subscription_group_id' must be a valid subscription group id.",
    "BAD_SUBSCRIPTION_GROUP_STATE": (
        "'subscription_state' for a subscription group must be 'subscribed' or 'unsubscribed'."
    ),
    "EMAIL_BAD_FORMAT": "The value provided for 'email' is not a valid email address.",
    "EXTERNAL_USER_ID_TOO_LARGE": (
        "The 'external_id' exceeds the maximum allowed length of 987 bytes."
    ),
    "INVALID_ATTRIBUTE_EMAIL_SUBSCRIPTION_INFO": (
        "'email_subscription_info' is not a valid attribute."
    ),
}

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_EMAIL = re.compile(rf"^[^@\s\"(),:;<>\[\\\]]+@{_LABEL}(?:\.{_LABEL})+$")
_PHONE = re.compile(r"^\+?[0-9 ().-]{7,20}$")
_DOB = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LANGUAGE = re.compile(r"^([A-Za-z]{2})(?:[-_][A-Za-z0-9]+)*$")
_GENDERS = {
    "m": "M",
    "male": "M",
    "f": "F",
    "female": "F",
    "o": "O",
    "other": "O",
    "n": "N",
    "not_applicable": "N",
    "p": "P",
    "prefer_not_to_say": "P",
}
# A best-effort country-name mapping, as Braze does ("Australia" -> "AU"); not exhaustive.
_COUNTRY_NAMES = {
    "australia": "AU",
    "austria": "AT",
    "belgium": "BE",
    "brazil": "BR",
    "canada": "CA",
    "denmark": "DK",
    "france": "FR",
    "germany": "DE",
    "india": "IN",
    "ireland": "IE",
    "italy": "IT",
    "japan": "JP",
    "mexico": "MX",
    "netherlands": "NL",
    "the netherlands": "NL",
    "new zealand": "NZ",
    "norway": "NO",
    "poland": "PL",
    "portugal": "PT",
    "spain": "ES",
    "sweden": "SE",
    "switzerland": "CH",
    "united kingdom": "GB",
    "uk": "GB",
    "united states": "US",
    "united states of america": "US",
    "usa": "US",
}


def is_valid_email(value: object) -> bool:
    """Whether `value` looks like an email address Braze would accept."""
    if not isinstance(value, str) or len(value) > 255:
        return False
    return _EMAIL.match(value.strip()) is not None


def is_valid_phone(value: object) -> bool:
    """Whether `value` looks like a phone number (E.164 recommended; 7–15 digits)."""
    if not isinstance(value, str) or not _PHONE.match(value.strip()):
        return False
    digits = sum(ch.isdigit() for ch in value)
    return 7 <= digits <= 15


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_standard_fields(obj: dict[str, Any]) -> str | None:
    """The error code for the first invalid standard field of an attributes object, else None."""
    present = obj.keys() & _VALIDATED_KEYS
    if not present:
        return None
    if "email_subscription_info" in present:
        return "INVALID_ATTRIBUTE_EMAIL_SUBSCRIPTION_INFO"
    if "email" in present:
        email = obj["email"]
        if email is not None and not is_valid_email(email):
            return "EMAIL_BAD_FORMAT"
        if len(present) == 1:
            return None
    for name, code in (
        ("email_subscribe", "BAD_EMAIL_SUBSCRIPTION_STATE"),
        ("push_subscribe", "BAD_PUSH_SUBSCRIPTION_STATE"),
    ):
        state = obj.get(name)
        if state is not None and state not in SUBSCRIBE_STATES:
            return code
    location = obj.get("current_location")
    if location is not None and not _valid_location(location):
        return "BAD_LOCATION_UPDATE"
    if "subscription_groups" in present:
        problem = _subscription_groups_problem(obj["subscription_groups"])
        if problem:
            return problem
    if "push_tokens" in present or obj.get("push_token_import") is True:
        problem = _push_tokens_problem(obj)
        if problem:
            return problem
    return None


def _valid_location(location: object) -> bool:
    if not isinstance(location, dict):
        return False
    return all(
        isinstance(location.get(k), int | float) and not isinstance(location.get(k), bool)
        for k in ("longitude", "latitude")
    )


def _subscription_groups_problem(groups: object) -> str | None:
    if not isinstance(groups, list):
        return "BAD_SUBSCRIPTION_GROUP_ARRAY"
    for group in groups:
        if (
            not isinstance(group, dict)
            or not {
                "subscription_group_id",
                "subscription_state",
            }
            <= group.keys()
        ):
            return "BAD_SUBSCRIPTION_GROUP_HASH"
        group_id = group["subscription_group_id"]
        # The sandbox has no subscription groups of its own, so any non-empty id is accepted.
        if not isinstance(group_id, str) or not group_id.strip():
            return "BAD_SUBSCRIPTION_GROUP_ID"
        if group["subscription_state"] not in ("subscribed", "unsubscribed"):
            return "BAD_SUBSCRIPTION_GROUP_STATE"
    return None


def _push_tokens_problem(obj: dict[str, Any]) -> str | None:
    tokens = obj.get("push_tokens")
    importing = obj.get("push_token_import") is True
    if importing and (
        obj.get("external_id") is not None or obj.get("braze_id") is not None or not tokens
    ):
        return "BAD_PUSH_TOKEN_IMPORT"
    if tokens is None:
        return None
    if not isinstance(tokens, list) or not all(isinstance(t, dict) for t in tokens):
        return "BAD_PUSH_TOKEN_VALUE"
    for token in tokens:
        if not isinstance(token.get("token"), str):
            return "BAD_PUSH_TOKEN_STRING"
        device_id = token.get("device_id")
        if importing and device_id is not None and not 8 <= len(str(device_id).encode()) <= 255:
            return "BAD_DEVICE_ID"
    return None


def attribute_points(key: str, value: Any) -> int:
    """Data points one attribute of an attributes object costs (reference §13).

    Identifiers and control flags are free; so are subscription states and push tokens. A custom
    attribute costs one; `add`/`remove` cost one per value (removal counted like addition — the
    reference only says so for `add`); array-of-object operators one per item; a nested object one
    per leaf key.
    """
    if key in CONTROL_KEYS or key in FREE_FIELDS:
        return 0
    if key in STANDARD_FIELDS or not isinstance(value, dict):
        return 1
    keys = value.keys()
    if keys and keys <= {"add", "remove"}:
        return sum(len(v) if isinstance(v, list) else 1 for v in value.values())
    if keys and keys <= {"$add", "$remove", "$update"}:
        return sum(len(v) if isinstance(v, list) else 1 for v in value.values())
    if keys == {"inc"}:
        return 1
    return max(1, _leaf_count(value))


def _leaf_count(value: dict[str, Any]) -> int:
    return sum(_leaf_count(v) if isinstance(v, dict) and v else 1 for v in value.values())


def object_points(
    obj: dict[str, Any], *, email_is_identifier: bool, phone_is_identifier: bool
) -> int:
    """Data points an attributes object costs when it is written (same rules as above)."""
    # Hot path: one point per key, minus the free keys, corrected for object values.
    total = len(obj) - len(obj.keys() & _FREE_KEYS)
    if email_is_identifier and "email" in obj:
        total -= 1  # a lookup identifier, not an attribute write
    if phone_is_identifier and "phone" in obj:
        total -= 1
    if dict in map(type, obj.values()):
        for key, value in obj.items():
            if value.__class__ is dict and key not in STANDARD_FIELDS and key not in _FREE_KEYS:
                total += attribute_points(key, value) - 1
    return total


def apply_attributes(
    store: UserStore,
    user: User,
    obj: dict[str, Any],
    *,
    max_array_length: int,
) -> None:
    """Write every non-control key of a (validated) attributes object onto `user`."""
    merge_objects = obj.get("_merge_objects") is True
    custom, fields = user.custom, user.fields
    for key, value in obj.items():
        if key in CONTROL_KEYS:
            continue
        if key in STANDARD_FIELDS:
            if key in _PLAIN_FIELDS and value is not None:
                fields[key] = value
            else:
                _apply_standard(store, user, key, value)
        elif value.__class__ in _SCALARS:
            custom[key] = value  # the common case, kept inline for speed
        else:
            apply_custom(
                user.custom,
                key,
                value,
                merge_objects=merge_objects,
                max_array_length=max_array_length,
            )


# Standard fields stored as sent, and the JSON scalar types.
_PLAIN_FIELDS = frozenset({"first_name", "last_name", "home_city", "bio"})
_SCALARS = frozenset({str, int, float, bool})


def _apply_standard(store: UserStore, user: User, key: str, value: Any) -> None:
    fields = user.fields
    if key == "email":
        store.set_email(user, value.strip() if isinstance(value, str) else None)
    elif key == "phone":
        store.set_phone(user, value if isinstance(value, str) else None)
    elif key == "country":
        _put(fields, key, _country(value))
    elif key == "language":
        if value is None:
            fields.pop(key, None)
        elif isinstance(value, str) and (match := _LANGUAGE.match(value.strip())):
            fields[key] = match.group(1).lower()
        # anything else is not an ISO-639-1 code and is not set
    elif key == "gender":
        if value is None:
            fields.pop(key, None)
        elif isinstance(value, str) and value.strip().lower() in _GENDERS:
            fields[key] = _GENDERS[value.strip().lower()]
    elif key == "dob":
        if value is None:
            fields.pop(key, None)
        elif _valid_dob(value):
            fields[key] = value
    elif key == "time_zone":
        if value is None:
            fields.pop(key, None)
        elif isinstance(value, str) and value in _time_zones():
            fields[key] = value  # "invalid values not set" (reference §7.5)
    elif key == "subscription_groups":
        for group in value or ():
            user.subscription_groups[group["subscription_group_id"]] = group["subscription_state"]
    elif key == "push_tokens":
        _merge_push_tokens(user, value or ())
    elif key in ("alias_name", "alias_label"):
        pass  # only meaningful inside `user_alias`
    else:
        _put(fields, key, value)


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value


def _country(value: Any) -> str | None:
    """ISO-3166-1 alpha-2, mapped from a name where possible; unmappable values become NULL."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    return _COUNTRY_NAMES.get(text.lower())


def _valid_dob(value: Any) -> bool:
    if not isinstance(value, str) or not _DOB.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _merge_push_tokens(user: User, tokens: Iterable[dict[str, Any]]) -> None:
    by_token = {t["token"]: t for t in user.push_tokens}
    for token in tokens:
        entry: dict[str, Any] = {"app": token.get("app_id"), "token": token["token"]}
        if token.get("device_id") is not None:
            entry["device_id"] = token["device_id"]
        entry["notifications_enabled"] = True
        by_token[token["token"]] = entry
    user.push_tokens = list(by_token.values())


def apply_custom(
    custom: dict[str, Any],
    key: str,
    value: Any,
    *,
    merge_objects: bool,
    max_array_length: int,
) -> None:
    """Apply one custom attribute write: set, remove (null), array ops, `inc`, nested objects."""
    if value is None:
        custom.pop(key, None)
    elif isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            custom[key] = value  # an array of objects: no element limit, no de-duplication
        else:
            custom[key] = _cap(_unique(value), max_array_length)
    elif isinstance(value, dict):
        keys = value.keys()
        if keys and keys <= {"add", "remove"}:
            _array_ops(custom, key, value, max_array_length)
        elif keys == {"inc"}:
            _increment(custom, key, value["inc"])
        elif keys and keys <= {"$add", "$remove", "$update"}:
            _object_array_ops(custom, key, value)
        elif merge_objects and isinstance(custom.get(key), dict):
            custom[key] = _deep_merge(custom[key], value)
        else:
            custom[key] = value  # nested objects are overwritten unless `_merge_objects` is true
    else:
        custom[key] = value


def _unique(values: list[Any]) -> list[Any]:
    """Values without repeats, first occurrence kept (`['hotdog','hotdog','pizza']` -> two)."""
    try:
        if len(set(values)) == len(values):
            return list(values)  # already unique (1 and True would collide, so no false pass)
    except TypeError:
        pass
    result: list[Any] = []
    seen: set[tuple[type, Any]] = set()
    for value in values:
        try:
            marker = (type(value), value)
            if marker in seen:
                continue
            seen.add(marker)
        except TypeError:  # unhashable (a nested list or object): compare by equality
            if value in result:
                continue
        result.append(value)
    return result


def _cap(values: list[Any], limit: int) -> list[Any]:
    """Arrays hold at most `limit` values; the oldest (front) are dropped.

    UNCONFIRMED in the reference (it gives the default maximum of 25 but not what happens over it):
    the sandbox truncates rather than rejects, keeping the most recent values.
    """
    return values[-limit:] if len(values) > limit else values


def _array_ops(custom: dict[str, Any], key: str, ops: dict[str, Any], limit: int) -> None:
    """`{"add": [...], "remove": [...]}`: add (moving present values to the end), then remove."""
    current = custom.get(key)
    # Adding to a value that is not an array starts a new array (UNCONFIRMED).
    values: list[Any] = list(current) if isinstance(current, list) else []
    for value in _as_list(ops.get("add")):
        if value in values:
            values.remove(value)
        values.append(value)
    removals = _as_list(ops.get("remove"))
    values = [v for v in values if v not in removals]
    custom[key] = _cap(values, limit)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _increment(custom: dict[str, Any], key: str, amount: Any) -> None:
    # A non-numeric `inc` is dropped silently: Braze validates it asynchronously, after the 201.
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        return
    current = custom.get(key)
    base = current if isinstance(current, int | float) and not isinstance(current, bool) else 0
    custom[key] = base + amount


def _object_array_ops(custom: dict[str, Any], key: str, ops: dict[str, Any]) -> None:
    current = custom.get(key)
    items: list[Any] = list(current) if isinstance(current, list) else []
    for new in _as_list(ops.get("$add")):
        if isinstance(new, dict):
            items.append(new)
    for selector in _as_list(ops.get("$remove")):
        if isinstance(selector, dict):
            items = [i for i in items if not _selected(i, selector)]
    for change in _as_list(ops.get("$update")):
        if isinstance(change, dict) and isinstance(change.get("$new_object"), dict):
            items = [
                _deep_merge(i, change["$new_object"]) if _selected(i, change) else i for i in items
            ]
    custom[key] = items


def _selected(item: Any, selector: dict[str, Any]) -> bool:
    field_name = selector.get("$identifier_key")
    return (
        isinstance(item, dict)
        and isinstance(field_name, str)
        and item.get(field_name) == selector.get("$identifier_value")
    )


def _deep_merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        elif value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
