"""The typed model of `connections.toml`: plain frozen dataclasses, built only by `config.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from bctui.store.segments import SegmentDef

BRAZE_IDENTIFIERS: Final = ("external_id", "user_alias", "braze_id", "email", "phone")
PRIMARY_IDENTIFIERS: Final = ("external_id", "user_alias", "braze_id")
EXPORT_SOURCES: Final = (
    "property",
    "profile_id",
    "segments",
    "interactions_viewed",
    "permission_level",
    "static",
)
# The JSON type an export mapping sends (`ExportMapping.type`); see bctui/engine/runs/types.py.
EXPORT_TYPES: Final = ("string", "number", "boolean", "time", "array")
ON_BUDGET: Final = ("refuse", "partial")
NOTIFY_WHEN: Final = ("always", "failure", "never")
SMTP_SECURITY: Final = ("starttls", "ssl", "none")
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE_KINDS: Final = (
    "manual",
    "times_per_day",
    "days_of_week",
    "day_of_month",
    "weekday_of_month",
    "cron",
)

# Top-level fields of the Braze user export object (reference §8.3); an import mapping reads one of
# these, or a path below one (`custom_attributes.loyalty_points`).
BRAZE_EXPORT_FIELDS: Final = (
    "apps",
    "attributed_campaign",
    "attributed_source",
    "attributed_adgroup",
    "attributed_ad",
    "push_subscribe",
    "email_subscribe",
    "braze_id",
    "country",
    "created_at",
    "created_from",
    "custom_attributes",
    "custom_events",
    "devices",
    "dob",
    "email",
    "external_id",
    "first_name",
    "gender",
    "home_city",
    "language",
    "last_coordinates",
    "last_name",
    "phone",
    "purchases",
    "push_tokens",
    "random_bucket",
    "time_zone",
    "total_revenue",
    "uninstalled_at",
    "user_aliases",
    "campaigns_received",
    "canvases_received",
    "cards_clicked",
)


@dataclass(frozen=True)
class StoreSettings:
    """Where the profile store lives."""

    url: str = "sqlite:///profiles.db"
    password: str = ""  # "secret:NAME" or "env:VAR", PostgreSQL only; else libpq's own ways


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server that sends run notifications (the `[smtp]` table)."""

    host: str
    sender: str  # "ops@example.com" or "bctui <ops@example.com>"
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    user: str = ""
    password: str = ""  # "secret:NAME" or "env:VAR"; set exactly when `user` is
    timeout_seconds: float = 15.0


@dataclass(frozen=True)
class Notify:
    """Who gets an e-mail after a run, and when."""

    emails: tuple[str, ...] = ()
    when: Literal["always", "failure", "never"] = "failure"


@dataclass(frozen=True)
class Schedule:
    """When a connection runs by itself (only while it is switched on)."""

    kind: str = "manual"
    times: int = 0  # times_per_day
    days: tuple[str, ...] = ()  # days_of_week
    day: int | str = 0  # day_of_month (1-31) / weekday_of_month ("mon".."sun")
    week: int | str = 0  # weekday_of_month: 1-4 or "last"
    at: str = ""  # "HH:MM"
    expr: str = ""  # cron
    timezone: str = ""  # IANA name; empty = the server's local time


@dataclass(frozen=True)
class BrazeSettings:
    """The Braze REST endpoint and a reference to the API key."""

    endpoint: str
    api_key: str  # "secret:NAME" or "env:VAR"


@dataclass(frozen=True)
class S3Settings:
    """The bucket Braze writes segment exports to, and how to reach it."""

    access_key_id: str  # literal, "secret:NAME" or "env:VAR"
    secret_access_key: str  # "secret:NAME" or "env:VAR"
    bucket: str
    root: str = ""
    region: str = "us-east-1"
    endpoint_url: str = ""


@dataclass(frozen=True)
class IdentifierPair:
    """One Braze identifier matched with one profile property."""

    braze: str
    property: str
    label: str = ""  # the alias label, for braze = "user_alias"


IdentifierRules = tuple[tuple[IdentifierPair, ...], ...]  # OR of AND-groups


@dataclass(frozen=True)
class Audience:
    """The Braze segment an import reads, optionally narrowed to receivers of campaigns."""

    segment_id: str
    name: str = ""
    campaign_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportMapping:
    """Braze field → profile property, with a merge strategy."""

    braze: str
    property: str
    strategy: str = "set"


@dataclass(frozen=True)
class Remaining:
    """'Add remaining fields': unmapped Braze fields become prefixed profile properties."""

    enabled: bool = False
    prefix: str = "braze_"
    strategy: str = "set"


@dataclass(frozen=True)
class WaitSettings:
    """How an import decides that Braze has finished writing its export files."""

    poll_seconds: float = 10.0
    quiet_seconds: float = 30.0
    timeout_minutes: float = 60.0


@dataclass(frozen=True)
class ImportGoal:
    """Braze → store."""

    name: str
    audience: Audience
    identifiers: IdentifierRules
    mappings: tuple[ImportMapping, ...] = ()
    enabled: bool = True
    allow_create: bool = False
    remaining: Remaining = field(default_factory=Remaining)
    wait: WaitSettings = field(default_factory=WaitSettings)
    type: Literal["import"] = "import"


@dataclass(frozen=True)
class ExportMapping:
    """Profile source → Braze attribute."""

    source: str
    braze: str
    value: str = ""  # the property name (source = property) or the text (source = static)
    type: str = ""  # one of EXPORT_TYPES; "" = the source's own (inferred once for a property)


@dataclass(frozen=True)
class ExportGoal:
    """Store → Braze."""

    name: str
    segment: str
    identifiers: IdentifierRules
    mappings: tuple[ExportMapping, ...] = ()
    enabled: bool = True
    allow_create: bool = False
    all_attributes: bool = False
    min_permission_level: str = "ANONYMOUS"
    type: Literal["export"] = "export"
    # Data points one run of this goal may send, and what happens to a delta that costs more.
    max_data_points: int | None = None
    on_budget: Literal["refuse", "partial"] = "refuse"


Goal = ImportGoal | ExportGoal


@dataclass(frozen=True)
class Connection:
    """One Braze link with its goals."""

    name: str
    braze: BrazeSettings
    s3: S3Settings | None = None
    goals: tuple[Goal, ...] = ()
    enabled: bool = False
    favorite: bool = False
    labels: tuple[str, ...] = ()
    description: str = ""
    notify: Notify = field(default_factory=Notify)
    schedule: Schedule = field(default_factory=Schedule)
    # Data points one run may send over all its export goals, shared in goal order.
    max_data_points: int | None = None
    on_budget: Literal["refuse", "partial"] = "refuse"

    def goal(self, name: str) -> Goal | None:
        """The goal with that name (case-insensitive), if any."""
        folded = name.casefold()
        return next((g for g in self.goals if g.name.casefold() == folded), None)


@dataclass(frozen=True)
class Retention:
    """How much run history (rows and log files) is kept per connection (`[retention]`)."""

    days: int = 90  # runs that started longer ago are pruned
    runs: int = 500  # beyond a connection's newest `runs`, older ones are pruned


@dataclass(frozen=True)
class Config:
    """The whole of `connections.toml`."""

    store: StoreSettings = field(default_factory=StoreSettings)
    segments: tuple[SegmentDef, ...] = ()
    connections: tuple[Connection, ...] = ()
    smtp: SmtpSettings | None = None
    retention: Retention = Retention()

    def connection(self, name: str) -> Connection | None:
        """The connection with that name (case-insensitive), if any."""
        folded = name.casefold()
        return next((c for c in self.connections if c.name.casefold() == folded), None)

    def segment(self, name: str) -> SegmentDef | None:
        """The local segment with that name (case-insensitive), if any."""
        folded = name.casefold()
        return next((s for s in self.segments if s.name.casefold() == folded), None)
