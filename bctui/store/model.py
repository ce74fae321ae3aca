"""The store's value types: a profile as read, a write to apply, and what applying it did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from bctui.store.values import MergeError, Scalar

PERMISSION_LEVELS: Final = ("DO_NOT_TRACK", "ANONYMOUS", "PERSONAL")
"""Lowest to highest; a profile's level is stored as its index here so that order is numeric."""

DEFAULT_PERMISSION: Final = "ANONYMOUS"

Outcome = Literal["created", "updated", "unchanged", "skipped", "failed"]
"""`skipped`: no profile matched and the write did not allow creation; `failed`: a merge error."""

Identifier = tuple[str, Scalar]
"""(property, value): a profile has it when any of its values equals it (numbers numerically)."""


def permission_rank(level: str) -> int:
    """The stored number of a permission level; raises ValueError naming the valid levels."""
    try:
        return PERMISSION_LEVELS.index(level)
    except ValueError:
        raise ValueError(
            f'unknown permission level "{level}"; use one of {", ".join(PERMISSION_LEVELS)}'
        ) from None


@dataclass(frozen=True, slots=True)
class Profile:
    """One customer profile as stored."""

    id: str
    properties: dict[str, list[Scalar]]
    permission_level: str
    interactions_viewed: list[str]
    created_at: datetime
    updated_at: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class ProfileWrite:
    """A change to one profile: which profile, and the property updates to merge into it.

    The profile is found by `profile_id` when given (and created with that id if missing), else by
    `match`: an OR of AND-groups of identifiers, the first group that some profile satisfies wins,
    and when several profiles satisfy it the oldest is used. With no profile found, a new one is
    created (with a new time-ordered UUID unless `profile_id` names it) when `create` is true.

    `updates` are (property, strategy, incoming) triples applied in order; `interactions_viewed`
    are added to the profile's list (no duplicates, order kept).
    """

    profile_id: str | None = None
    updates: Sequence[tuple[str, str, object]] = ()
    permission_level: str | None = None
    interactions_viewed: Sequence[str] = ()
    match: Sequence[Sequence[Identifier]] = ()
    create: bool = True

    def __post_init__(self) -> None:
        if self.permission_level is not None:
            permission_rank(self.permission_level)
        if self.profile_id is not None and (not self.profile_id or "\x00" in self.profile_id):
            raise ValueError("a profile id must be a non-empty text without NUL characters")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What applying one `ProfileWrite` did."""

    outcome: Outcome
    profile_id: str | None
    errors: tuple[MergeError, ...] = ()
    ambiguous: bool = False
    """True when the matching identifier group found several profiles (the oldest was used)."""
    seq: int | None = None
    """The profile's change sequence after the write (None when nothing was found or created)."""
