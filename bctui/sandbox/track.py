"""`POST /users/track`: validation, identifier resolution, writes and data points (reference §7)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bctui.sandbox.attributes import (
    ERRORS,
    apply_attributes,
    is_valid_email,
    is_valid_phone,
    object_points,
    validate_standard_fields,
)
from bctui.sandbox.model import User, UserStore
from bctui.sandbox.times import iso_millis, parse_event_time

ARRAYS: tuple[str, ...] = ("attributes", "events", "purchases")
NOTHING_VALID = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
ID_REQUIRED = "'external_id', 'braze_id', 'user_alias', 'email' or 'phone' is required"
# Error texts follow the observed style ("'quantity' is not valid"); apart from ID_REQUIRED and
# that one, the wording is UNCONFIRMED. The reference documents the rule behind ONE_PRIMARY
# ("only one primary identifier ... rejected"), not its text.
ONE_PRIMARY = "only one of 'external_id', 'braze_id' or 'user_alias' may be provided"
MAX_EXTERNAL_ID_BYTES = 987
MAX_NAME_LENGTH = 255
RESERVED_EVENT_PROPERTIES = frozenset({"time", "event_name"})


@dataclass(frozen=True)
class Identity:
    """How one request object finds its user."""

    kind: str  # external_id | braze_id | user_alias | email | phone
    value: Any  # a string, or (alias_name, alias_label)
    update_only: bool


@dataclass
class TrackOutcome:
    """The HTTP answer to one /users/track request plus the counts the stats need."""

    status: int
    body: dict[str, Any]
    processed: dict[str, int] = field(default_factory=dict)
    data_points: int = 0
    rejected: int = 0
    created: int = 0
    skipped_update_only: int = 0


@dataclass
class TrackRules:
    """The workspace's limits for /users/track."""

    max_objects: int = 75
    per_array: bool = False  # legacy rate limits: 75 per array instead of 75 combined
    max_array_length: int = 25


def object_limit_error(body: dict[str, Any], rules: TrackRules) -> str | None:
    """The 400 message when the request holds too many objects, else None.

    Braze calls this error "Max Input Length Exceeded"; its exact body is UNCONFIRMED.
    """
    sizes = [len(body.get(name) or ()) for name in ARRAYS]
    if rules.per_array:
        if max(sizes) > rules.max_objects:
            return (
                "Max Input Length Exceeded: at most "
                f"{rules.max_objects} objects per 'attributes', 'events' and 'purchases' array"
            )
    elif sum(sizes) > rules.max_objects:
        return (
            f"Max Input Length Exceeded: at most {rules.max_objects} objects combined across "
            f"'attributes', 'events' and 'purchases' ({sum(sizes)} sent)"
        )
    return None


def process_track(
    body: dict[str, Any],
    *,
    store: UserStore | None,
    now: float,
    new_braze_id: Callable[[], str],
    rules: TrackRules,
) -> TrackOutcome:
    """Validate and apply one /users/track body; `store=None` only validates and counts (bench).

    Unknown top-level keys (`partner`, the obsolete `app_group_id`) are accepted and ignored, as
    is the `X-Braze-Bulk` header (its effect is UNCONFIRMED).
    """
    for name in ARRAYS:
        value = body.get(name)
        if value is not None and not isinstance(value, list):
            return TrackOutcome(400, {"message": f"'{name}' must be an array of objects"})
    limit_error = object_limit_error(body, rules)
    if limit_error:
        return TrackOutcome(400, {"message": limit_error})

    outcome = TrackOutcome(201, {})
    errors: list[dict[str, Any]] = []
    processor = _Processor(store, now, new_braze_id, rules, outcome)
    handlers = {
        "attributes": processor.attributes,
        "events": processor.event,
        "purchases": processor.purchase,
    }
    # Braze processes attributes, then events, then purchases (reference §5.1).
    for name in ARRAYS:
        count = 0
        for index, obj in enumerate(body.get(name) or ()):
            problem = (
                handlers[name](obj) if isinstance(obj, dict) else f"'{name}' items must be objects"
            )
            if problem is None:
                count += 1
            else:
                errors.append({"type": problem, "input_array": name, "index": index})
        if count:
            outcome.processed[name] = count
    outcome.rejected = len(errors)

    if not outcome.processed:
        outcome.status = 400
        outcome.body = {"message": NOTHING_VALID, "errors": errors}
        return outcome
    response: dict[str, Any] = {f"{name}_processed": n for name, n in outcome.processed.items()}
    response["message"] = "success"
    if errors:
        response["errors"] = errors
    outcome.body = response
    return outcome


class _Processor:
    """Validates one object at a time and, with a store, writes it."""

    def __init__(
        self,
        store: UserStore | None,
        now: float,
        new_braze_id: Callable[[], str],
        rules: TrackRules,
        outcome: TrackOutcome,
    ) -> None:
        self.store = store
        self.now = now
        self.new_braze_id = new_braze_id
        self.rules = rules
        self.outcome = outcome

    def attributes(self, obj: dict[str, Any]) -> str | None:
        """Handle one attributes object; the error `type` text when it is rejected."""
        identity = _identity(obj, alias_always_update_only=False)
        if isinstance(identity, str):
            return identity
        code = validate_standard_fields(obj)
        if code:
            return ERRORS[code]
        points = object_points(
            obj,
            email_is_identifier=identity.kind == "email",
            phone_is_identifier=identity.kind == "phone",
        )
        if self.store is None:
            self.outcome.data_points += points
            return None
        user = self._resolve(identity)
        if user is None:
            return None
        apply_attributes(self.store, user, obj, max_array_length=self.rules.max_array_length)
        self._charge(user, points)
        return None

    def event(self, obj: dict[str, Any]) -> str | None:
        """Handle one event object; the error `type` text when it is rejected."""
        identity = _identity(obj, alias_always_update_only=True)
        if isinstance(identity, str):
            return identity
        name = obj.get("name")
        if name is None:
            return "'name' is required"
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            return "'name' is not valid"
        when = _event_time(obj, self.now)
        if isinstance(when, str):
            return when
        problem = _properties_problem(obj)
        if problem:
            return problem
        if self.store is None:
            self.outcome.data_points += 1
            return None
        user = self._resolve(identity)
        if user is not None:
            _summarise(user.events, name, when, 1)
            self._charge(user, 1)
        return None

    def purchase(self, obj: dict[str, Any]) -> str | None:
        """Handle one purchase object; the error `type` text when it is rejected."""
        identity = _identity(obj, alias_always_update_only=True)
        if isinstance(identity, str):
            return identity
        product_id = obj.get("product_id")
        if product_id is None:
            return "'product_id' is required"
        if not isinstance(product_id, str) or not product_id.strip() or len(product_id) > 255:
            return "'product_id' is not valid"
        currency = obj.get("currency")
        if currency is None:
            return "'currency' is required"
        if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
            return "'currency' is not valid"
        price = obj.get("price")
        if price is None:
            return "'price' is required"
        if isinstance(price, bool) or not isinstance(price, int | float):
            return "'price' is not valid"
        quantity = obj.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 100:
            return "'quantity' is not valid"
        when = _event_time(obj, self.now)
        if isinstance(when, str):
            return when
        problem = _properties_problem(obj)
        if problem:
            return problem
        # Braze treats quantity X as X purchases of quantity 1, so each is a data point.
        if self.store is None:
            self.outcome.data_points += quantity
            return None
        user = self._resolve(identity)
        if user is not None:
            _summarise(user.purchases, product_id, when, quantity)
            user.total_revenue = round(user.total_revenue + price * quantity, 2)
            self._charge(user, quantity)
        return None

    def _resolve(self, identity: Identity) -> User | None:
        """The user this object addresses, created when allowed; None when update-only misses.

        A miss under `_update_existing_only` is not an error: Braze accepts the object (it is
        counted as processed) and drops it while processing asynchronously.
        """
        store = self.store
        assert store is not None
        user = _lookup(store, identity)
        if user is not None:
            return user
        if identity.update_only or identity.kind == "braze_id":
            # braze_ids are assigned by Braze, so an unknown one can never create a user.
            self.outcome.skipped_update_only += 1
            return None
        braze_id = self.new_braze_id()
        user = User(
            braze_id=braze_id,
            created_at=self.now,
            updated_at=self.now,
            random_bucket=int(braze_id[-8:], 16) % 10000,  # Braze assigns 0–9999 at creation
        )
        if identity.kind == "external_id":
            user.external_id = identity.value
        elif identity.kind == "user_alias":
            name, label = identity.value
            user.aliases[label] = name
        store.add(user)
        if identity.kind == "email":
            store.set_email(user, identity.value.strip())
        elif identity.kind == "phone":
            store.set_phone(user, identity.value)
        self.outcome.created += 1
        return user

    def _charge(self, user: User, points: int) -> None:
        assert self.store is not None
        user.data_points += points
        self.outcome.data_points += points
        self.store.touch(user, self.now)


def _identity(obj: dict[str, Any], *, alias_always_update_only: bool) -> Identity | str:
    """The object's identity, or the `type` text of the error that rejects it."""
    external_id = obj.get("external_id")
    user_alias = obj.get("user_alias")
    braze_id = obj.get("braze_id")
    update_only = obj.get("_update_existing_only")
    if update_only is not None and update_only.__class__ is not bool:
        return "'_update_existing_only' must be a boolean"
    primaries = (external_id is not None) + (user_alias is not None) + (braze_id is not None)
    if primaries > 1:
        return ONE_PRIMARY
    if external_id is not None:
        if external_id.__class__ is not str or not external_id:
            return "'external_id' must be a non-empty string"
        # 987 bytes; UTF-8 needs at most 4 bytes a character, so short ids need no encoding.
        if len(external_id) > 246 and len(external_id.encode()) > MAX_EXTERNAL_ID_BYTES:
            return ERRORS["EXTERNAL_USER_ID_TOO_LARGE"]
        return Identity("external_id", external_id, update_only is True)
    if braze_id is not None:
        if braze_id.__class__ is not str or not braze_id:
            return "'braze_id' must be a non-empty string"
        return Identity("braze_id", braze_id, update_only is True)
    if user_alias is not None:
        if not (
            isinstance(user_alias, dict)
            and isinstance(user_alias.get("alias_name"), str)
            and isinstance(user_alias.get("alias_label"), str)
            and user_alias["alias_name"]
            and user_alias["alias_label"]
        ):
            return "'user_alias' must be an object with 'alias_name' and 'alias_label'"
        # With a user_alias "Update Only" defaults to true for attributes and is always true
        # for events and purchases (reference §7.4).
        if alias_always_update_only or update_only is None:
            update_only = True
        alias = (user_alias["alias_name"], user_alias["alias_label"])
        return Identity("user_alias", alias, update_only is True)
    email, phone = obj.get("email"), obj.get("phone")
    if email is not None:  # with both and no primary identifier, email wins
        if not is_valid_email(email):
            return ERRORS["EMAIL_BAD_FORMAT"]
        return Identity("email", email, update_only is True)
    if phone is not None:
        if not is_valid_phone(phone):
            return "'phone' is not a valid phone number"
        return Identity("phone", phone, update_only is True)
    return ID_REQUIRED


def _lookup(store: UserStore, identity: Identity) -> User | None:
    if identity.kind == "external_id":
        return store.by_external_id(identity.value)
    if identity.kind == "braze_id":
        return store.by_braze_id(identity.value)
    if identity.kind == "user_alias":
        return store.by_alias(*identity.value)
    if identity.kind == "email":
        return store.by_email(identity.value)
    return store.by_phone(identity.value)


def _event_time(obj: dict[str, Any], now: float) -> float | str:
    raw = obj.get("time")
    if raw is None:
        return "'time' is required"
    when = parse_event_time(raw)
    if when is None:
        return "'time' is not valid"
    # "Events with timestamps in the future will default to the current time."
    return min(when, now)


def _properties_problem(obj: dict[str, Any]) -> str | None:
    properties = obj.get("properties")
    if properties is None:
        return None
    if not isinstance(properties, dict):
        return "'properties' must be an object"
    for key in properties:
        if not key or len(key) > MAX_NAME_LENGTH or key.startswith("$"):
            return f"property name {key!r} is not valid"
        if key in RESERVED_EVENT_PROPERTIES:
            return f"property name {key!r} is reserved"
    return None


def _summarise(summary: dict[str, dict[str, Any]], name: str, when: float, count: int) -> None:
    stamp = iso_millis(when)
    entry = summary.get(name)
    if entry is None:
        summary[name] = {"first": stamp, "last": stamp, "count": count}
        return
    entry["first"] = min(entry["first"], stamp)
    entry["last"] = max(entry["last"], stamp)
    entry["count"] += count
