"""Simulated Braze users and the indexes that find them by each identifier."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bctui.sandbox.times import iso_millis


@dataclass(slots=True, eq=False)
class User:
    """One simulated Braze user profile."""

    braze_id: str
    external_id: str | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # alias_label -> alias_name
    # standard profile fields, under their /users/track names
    fields: dict[str, Any] = field(default_factory=dict)
    custom: dict[str, Any] = field(default_factory=dict)  # custom attributes
    # event name / product_id -> {"first", "last", "count"}
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    purchases: dict[str, dict[str, Any]] = field(default_factory=dict)
    total_revenue: float = 0.0
    campaigns: list[dict[str, Any]] = field(default_factory=list)  # campaigns_received items
    devices: list[dict[str, Any]] = field(default_factory=list)
    apps: list[dict[str, Any]] = field(default_factory=list)
    push_tokens: list[dict[str, Any]] = field(default_factory=list)
    subscription_groups: dict[str, str] = field(default_factory=dict)  # group id -> state
    created_at: float = 0.0
    updated_at: float = 0.0
    update_seq: int = 0  # breaks ties between equal `updated_at` when picking by email
    created_from: str = "REST API"
    random_bucket: int = 0
    data_points: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Everything stored for this user, as a JSON-ready copy (the admin view)."""
        data: dict[str, Any] = {
            "braze_id": self.braze_id,
            "external_id": self.external_id,
            "user_aliases": [
                {"alias_name": name, "alias_label": label} for label, name in self.aliases.items()
            ],
            "created_at": iso_millis(self.created_at),
            "updated_at": iso_millis(self.updated_at),
            "created_from": self.created_from,
            "random_bucket": self.random_bucket,
        }
        data.update(copy.deepcopy(self.fields))
        data["custom_attributes"] = copy.deepcopy(self.custom)
        data["custom_events"] = [{"name": n, **v} for n, v in self.events.items()]
        data["purchases"] = [{"name": n, **v} for n, v in self.purchases.items()]
        data["total_revenue"] = self.total_revenue
        data["campaigns_received"] = copy.deepcopy(self.campaigns)
        data["devices"] = copy.deepcopy(self.devices)
        data["apps"] = copy.deepcopy(self.apps)
        data["push_tokens"] = copy.deepcopy(self.push_tokens)
        data["subscription_groups"] = [
            {"subscription_group_id": gid, "subscription_state": state}
            for gid, state in self.subscription_groups.items()
        ]
        data["data_points"] = self.data_points
        return data


def email_key(email: str) -> str:
    """How emails are matched: case-insensitively, ignoring surrounding blanks."""
    return email.strip().lower()


def phone_key(phone: str) -> str:
    """How phone numbers are matched: digits only, with the leading `+` kept."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    return ("+" if phone.strip().startswith("+") else "") + digits


class UserStore:
    """All users of the workspace, indexed by braze_id, external_id, alias, email and phone."""

    def __init__(self) -> None:
        self._by_braze_id: dict[str, User] = {}
        self._by_external_id: dict[str, User] = {}
        self._by_alias: dict[tuple[str, str], User] = {}  # (label, name)
        self._by_email: dict[str, list[User]] = {}
        self._by_phone: dict[str, list[User]] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._by_braze_id)

    def __iter__(self) -> Iterator[User]:
        return iter(list(self._by_braze_id.values()))

    def add(self, user: User) -> User:
        """Index a new user (its identifiers must not be taken)."""
        if user.braze_id in self._by_braze_id:
            raise ValueError(f"braze_id {user.braze_id} already exists")
        if user.external_id is not None and user.external_id in self._by_external_id:
            raise ValueError(f"external_id {user.external_id!r} already exists")
        self._by_braze_id[user.braze_id] = user
        if user.external_id is not None:
            self._by_external_id[user.external_id] = user
        for label, name in user.aliases.items():
            self._by_alias[(label, name)] = user
        if isinstance(user.fields.get("email"), str):
            self._by_email.setdefault(email_key(user.fields["email"]), []).append(user)
        if isinstance(user.fields.get("phone"), str):
            self._by_phone.setdefault(phone_key(user.fields["phone"]), []).append(user)
        self.touch(user, user.updated_at or user.created_at)
        return user

    def touch(self, user: User, now: float) -> None:
        """Record that `user` was just updated."""
        self._seq += 1
        user.updated_at = now
        user.update_seq = self._seq

    def by_braze_id(self, braze_id: str) -> User | None:
        """The user with this braze_id, if any."""
        return self._by_braze_id.get(braze_id)

    def by_external_id(self, external_id: str) -> User | None:
        """The user with this external_id, if any."""
        return self._by_external_id.get(external_id)

    def by_alias(self, name: str, label: str) -> User | None:
        """The user with this alias (name under label), if any."""
        return self._by_alias.get((label, name))

    def by_email(self, email: str) -> User | None:
        """Braze's pick among users with this email (reference §7.3).

        The most recently updated user that has an external_id, else the most recently updated.
        """
        return _most_recent(self._by_email.get(email_key(email), []))

    def by_phone(self, phone: str) -> User | None:
        """Like `by_email`, for phone numbers."""
        return _most_recent(self._by_phone.get(phone_key(phone), []))

    def set_email(self, user: User, email: str | None) -> None:
        """Change a user's email and keep the email index right."""
        if email is not None and user.fields.get("email") == email:
            return
        self._reindex(self._by_email, email_key, user, user.fields.get("email"), email)
        _set_or_drop(user.fields, "email", email)

    def set_phone(self, user: User, phone: str | None) -> None:
        """Change a user's phone and keep the phone index right."""
        self._reindex(self._by_phone, phone_key, user, user.fields.get("phone"), phone)
        _set_or_drop(user.fields, "phone", phone)

    @staticmethod
    def _reindex(
        index: dict[str, list[User]],
        key: Any,
        user: User,
        old: object,
        new: str | None,
    ) -> None:
        if isinstance(old, str):
            bucket = index.get(key(old), [])
            if user in bucket:
                bucket.remove(user)
            if not bucket:
                index.pop(key(old), None)
        if new is not None:
            index.setdefault(key(new), []).append(user)


def _most_recent(users: list[User]) -> User | None:
    with_external = [u for u in users if u.external_id is not None]
    pool = with_external or users
    return max(pool, key=lambda u: (u.updated_at, u.update_seq)) if pool else None


def _set_or_drop(target: dict[str, Any], key: str, value: object) -> None:
    if value is None:
        target.pop(key, None)
    else:
        target[key] = value
