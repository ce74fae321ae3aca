"""Deterministic sample data: users, segments and campaigns (same seed, same data)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bctui.sandbox.catalog import Campaign, Segment
from bctui.sandbox.model import User
from bctui.sandbox.times import iso_millis

CHUNK = 1000  # users are generated in chunks with their own random stream
_START = 1609459200.0  # 2021-01-01T00:00:00Z: seeded data is dated, never "now", to stay stable
_END = 1751241600.0  # 2025-06-30T00:00:00Z
BC_ALIAS_LABEL = "bc_profile_id"

_FIRST = (
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Mia",
    "Finn",
    "Sophie",
    "Daan",
    "Julia",
    "Milan",
    "Lotte",
    "Sem",
    "Anna",
    "Jonas",
    "Lena",
    "Paul",
    "Marie",
    "Felix",
    "Chloe",
    "Hugo",
    "Alice",
    "Louis",
    "Grace",
    "Oscar",
    "Isla",
    "Leo",
    "Yuki",
    "Haruto",
    "Sofia",
    "Mateo",
    "Giulia",
    "Marco",
    "Lucia",
    "Pablo",
    "Ruby",
    "Jack",
    "Zoe",
    "Max",
)
_LAST = (
    "Jansen",
    "deVries",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "Muller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Martin",
    "Bernard",
    "Dubois",
    "Durand",
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Wilson",
    "Garcia",
    "Rodriguez",
    "Lopez",
    "Rossi",
    "Russo",
    "Ferrari",
    "Tanaka",
    "Suzuki",
    "Sato",
    "Peeters",
    "Maes",
    "Jacobs",
    "Nguyen",
    "Kelly",
    "Walsh",
    "Murphy",
    "Novak",
    "Costa",
    "Silva",
)
_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com")
# country -> (weight, languages, time zone, cities, phone country code)
_COUNTRIES: dict[str, tuple[int, tuple[str, ...], str, tuple[str, ...], str]] = {
    "US": (30, ("en",), "America/New_York", ("New York", "Chicago", "Austin", "Seattle"), "1"),
    "NL": (15, ("nl",), "Europe/Amsterdam", ("Amsterdam", "Utrecht", "Rotterdam", "Ghent"), "31"),
    "DE": (12, ("de",), "Europe/Berlin", ("Berlin", "Hamburg", "Munich", "Cologne"), "49"),
    "GB": (10, ("en",), "Europe/London", ("London", "Leeds", "Bristol", "Glasgow"), "44"),
    "FR": (8, ("fr",), "Europe/Paris", ("Paris", "Lyon", "Nantes", "Lille"), "33"),
    "BE": (5, ("nl", "fr"), "Europe/Brussels", ("Brussels", "Antwerp", "Ghent", "Liege"), "32"),
    "ES": (5, ("es",), "Europe/Madrid", ("Madrid", "Barcelona", "Valencia", "Seville"), "34"),
    "IT": (5, ("it",), "Europe/Rome", ("Rome", "Milan", "Turin", "Bologna"), "39"),
    "AU": (5, ("en",), "Australia/Sydney", ("Sydney", "Melbourne", "Perth", "Brisbane"), "61"),
    "JP": (5, ("ja",), "Asia/Tokyo", ("Tokyo", "Osaka", "Kyoto", "Sapporo"), "81"),
}
_COUNTRY_CODES = tuple(_COUNTRIES)
_COUNTRY_WEIGHTS = tuple(v[0] for v in _COUNTRIES.values())
_CATEGORIES = ("shoes", "outdoor", "electronics", "books", "kitchen", "beauty", "toys", "garden")
_EVENTS = ("viewed_product", "added_to_cart", "app_opened", "searched", "shared_item")
_PRODUCTS = ("sku-1001", "sku-1002", "sku-2040", "sku-3300", "sku-4711", "sku-5150")
_TIERS = ("bronze", "silver", "gold", "platinum")
_TIER_WEIGHTS = (50, 30, 15, 5)

_CAMPAIGN_THEMES = (
    "Welcome Series", "Spring Sale", "Summer Sale", "Black Friday", "Cart Abandonment",
    "Win-back", "Loyalty Gold Upgrade", "Birthday Offer", "Weekly Newsletter", "Product Launch",
    "Re-engagement", "App Onboarding", "Price Drop Alert", "Back in Stock", "Customer Survey",
    "Holiday Greetings", "Referral Program", "Webinar Invite", "Order Follow-up", "VIP Preview",
)  # fmt: skip
_CHANNELS = ("email", "ios_push", "android_push", "webhook", "content_cards", "sms")
_TAGS = ("lifecycle", "promo", "transactional", "loyalty", "blueconic", "test", "q4", "retention")
_TEAMS = ("Marketing", "CRM", "Growth")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
POPULAR_CAMPAIGNS = 20  # users receive campaigns from the first N sent campaigns


@dataclass(frozen=True)
class Catalog:
    """The workspace's segments and campaigns."""

    segments: tuple[Segment, ...]
    campaigns: tuple[Campaign, ...]

    def received_pool(self) -> tuple[Campaign, ...]:
        """Campaigns that users of the seeded data have received."""
        sent = [c for c in self.campaigns if c.first_sent is not None and not c.draft]
        return tuple(sent[:POPULAR_CAMPAIGNS])


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _dates(rng: random.Random, count: int, start: float, end: float) -> list[float]:
    return sorted(float(int(rng.uniform(start, end))) for _ in range(count))


def build_catalog(seed: int) -> Catalog:
    """The seeded segments and campaigns."""
    campaigns = _campaigns(random.Random(f"{seed}:campaigns"))
    segments = _segments(random.Random(f"{seed}:segments"), campaigns)
    return Catalog(tuple(segments), tuple(campaigns))


def _segments(rng: random.Random, campaigns: Sequence[Campaign]) -> list[Segment]:
    sent = [c for c in campaigns if c.first_sent is not None and not c.draft]
    spring = next((c for c in sent[:POPULAR_CAMPAIGNS] if "Spring" in c.name), sent[0])
    named: list[tuple[str, Any, str, str, tuple[str, ...], bool]] = [
        ("All Users", lambda u: True, "All users", "Everyone in the workspace", ("core",), True),
        (
            "BlueConic Test Users",
            lambda u: u.custom.get("bc_test_user") is True,
            "Custom attribute bc_test_user is true",
            "Test profiles synced from BlueConic",
            ("blueconic", "test"),
            False,
        ),
        (
            "Loyalty: Gold",
            lambda u: u.custom.get("loyalty_tier") == "gold",
            "Custom attribute loyalty_tier equals gold",
            "Gold tier loyalty members",
            ("loyalty",),
            True,
        ),
        (
            "Loyalty: Platinum",
            lambda u: u.custom.get("loyalty_tier") == "platinum",
            "Custom attribute loyalty_tier equals platinum",
            "Platinum tier loyalty members",
            ("loyalty",),
            True,
        ),
        (
            "Country: Netherlands",
            lambda u: u.fields.get("country") == "NL",
            "Country is Netherlands",
            "",
            ("geo",),
            False,
        ),
        (
            "Country: Germany",
            lambda u: u.fields.get("country") == "DE",
            "Country is Germany",
            "",
            ("geo",),
            False,
        ),
        (
            "Newsletter Subscribers",
            lambda u: u.custom.get("newsletter") is True,
            "Custom attribute newsletter is true",
            "Opted in to the weekly newsletter",
            ("email",),
            True,
        ),
        (
            "High Value Customers",
            lambda u: _number(u.custom.get("lifetime_value")) >= 1000,
            "Custom attribute lifetime_value is at least 1000",
            "Customers with a lifetime value of 1,000 or more",
            ("vip",),
            True,
        ),
        (
            "Alias-only Users",
            lambda u: u.external_id is None and bool(u.aliases),
            "External user ID is blank and user alias bc_profile_id exists",
            "Anonymous BlueConic profiles known by alias",
            ("blueconic",),
            False,
        ),
        (
            f"Received: {spring.name}",
            lambda u, cid=spring.id: any(c.get("api_campaign_id") == cid for c in u.campaigns),
            f"Received campaign {spring.name}",
            "",
            ("campaigns",),
            False,
        ),
        (
            "Empty: Antarctica",
            lambda u: u.fields.get("country") == "AQ",
            "Country is Antarctica",
            "A segment nobody is in",
            ("test",),
            False,
        ),
    ]
    # Filler cohorts over the random bucket (0–9999), so /segments/list has more than one page.
    fillers = 112
    archived_every = 14
    total = len(named) + fillers
    created = _dates(rng, total, _START, _END - 86400 * 30)
    segments: list[Segment] = []
    for index, (name, predicate, description, text, tags, tracked) in enumerate(named):
        segments.append(
            Segment(
                id=_uuid(rng),
                name=name,
                predicate=predicate,
                description=description,
                text_description=text,
                tags=tags,
                teams=(_TEAMS[index % len(_TEAMS)],),
                analytics_tracking_enabled=tracked,
                created_at=created[index],
                updated_at=created[index] + rng.randint(0, 86400 * 30),
            )
        )
    for number in range(fillers):
        low = (number * 89) % 9900
        high = low + 100
        index = len(named) + number
        segments.append(
            Segment(
                id=_uuid(rng),
                name=f"Random Bucket Cohort {number + 1:03d}",
                predicate=_bucket_between(low, high),
                description=f"Random bucket number is between {low} and {high - 1}",
                tags=("cohort",),
                created_at=created[index],
                updated_at=created[index] + rng.randint(0, 86400 * 30),
                archived=number % archived_every == archived_every - 1,
            )
        )
    return segments


def _bucket_between(low: int, high: int) -> Callable[[User], bool]:
    return lambda user: low <= user.random_bucket < high


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


def _campaigns(rng: random.Random) -> list[Campaign]:
    count = 140
    created = _dates(rng, count, _START, _END - 86400 * 60)
    names: set[str] = set()
    campaigns: list[Campaign] = []
    for index in range(count):
        theme = _CAMPAIGN_THEMES[index % len(_CAMPAIGN_THEMES)]
        stamp = created[index]
        year = 2021 + int((stamp - _START) // (365.25 * 86400))
        month = _MONTHS[int((stamp - _START) / (30.44 * 86400)) % 12]
        name = f"{theme} {month} {year}"
        while name in names:
            name += " (copy)"
        names.add(name)
        archived = index % 9 == 8
        draft = not archived and index % 13 == 12
        channels = tuple(sorted(rng.sample(_CHANNELS, rng.choice((1, 1, 2)))))
        multivariate = rng.random() < 0.3
        messages: dict[str, dict[str, Any]] = {}
        variations = rng.choice((2, 3)) if multivariate else 1
        for number in range(variations):
            channel = channels[number % len(channels)]
            messages[_uuid(rng)] = _message(rng, channel, f"Variation {number + 1}", theme)
        if multivariate:
            messages[_uuid(rng)] = {"channel": channels[0], "type": "control"}
        last_edited = stamp + rng.randint(3600, 86400 * 40)
        first_sent = None if draft else stamp + rng.randint(3600, 86400 * 7)
        last_sent = None if first_sent is None else first_sent + rng.randint(0, 86400 * 50)
        has_draft = not draft and rng.random() < 0.1
        draft_messages = (
            {
                vid: {**msg, "name": f"{msg.get('name', 'Control')} (draft)"}
                for vid, msg in messages.items()
            }
            if has_draft
            else {}
        )
        campaigns.append(
            Campaign(
                id=_uuid(rng),
                name=name,
                created_at=stamp,
                last_edited=last_edited,
                description=f"{theme} campaign",
                archived=archived,
                draft=draft,
                enabled=not archived and not draft and rng.random() < 0.8,
                has_post_launch_draft=has_draft,
                is_api_campaign=rng.random() < 0.2,
                schedule_type=rng.choice(("date", "action_based", "api_triggered")),
                channels=channels,
                first_sent=first_sent,
                last_sent=last_sent,
                tags=tuple(sorted(rng.sample(_TAGS, rng.randint(0, 2)))),
                teams=(rng.choice(_TEAMS),),
                messages=messages,
                draft_messages=draft_messages,
                conversion_behaviors=_conversions(rng),
            )
        )
    return campaigns


def _message(rng: random.Random, channel: str, name: str, theme: str) -> dict[str, Any]:
    if channel == "email":
        return {
            "channel": "email",
            "name": name,
            "extras": [],
            "subject": f"{theme}: something for you",
            "body": f"<html><body><h1>{theme}</h1><p>Hi {{{{${{first_name}}}}}}</p></body></html>",
            "from": "Bright Shop <news@example.com>",
            "reply_to": "support@example.com",
            "title": theme,
            "amp_body": None,
            "preheader": "Open for details",
            "custom_plain_text": False,
            "should_inline_css": True,
            "should_whitespace_header": False,
            "email_headers": [],
        }
    if channel in ("ios_push", "android_push"):
        return {
            "channel": channel,
            "name": name,
            "alert": f"{theme} starts now",
            "extras": {"deep_link": "brightshop://home"},
            "title": theme,
            "action": "open_app",
        }
    if channel == "webhook":
        return {
            "channel": "webhook",
            "name": name,
            "url": "https://hooks.example.com/braze",
            "body": '{"event": "' + theme + '"}',
            "type": "raw_text",
            "headers": {"Content-Type": "application/json"},
            "method": "POST",
        }
    if channel == "sms":
        return {
            "channel": "sms",
            "name": name,
            "body": f"{theme}: reply STOP to opt out",
            "from": "+15555550100",
            "subscription_group_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        }
    return {"channel": "content_cards", "name": name}


def _conversions(rng: random.Random) -> list[dict[str, Any]]:
    behaviors: list[dict[str, Any]] = [{"type": "Opens Email", "window": 86400 * 3}]
    if rng.random() < 0.5:
        behaviors.append({"type": "Makes Any Purchase", "window": 86400 * 7})
    if rng.random() < 0.3:
        behaviors.append(
            {"type": "Performs Custom Event", "window": 86400, "custom_event_name": "added_to_cart"}
        )
    return behaviors


def generate_users(seed: int, count: int, catalog: Catalog) -> Iterator[User]:
    """`count` seeded users, in index order; user N is the same for the same seed."""
    pool = catalog.received_pool()
    for chunk_start in range(0, count, CHUNK):
        rng = random.Random(f"{seed}:users:{chunk_start // CHUNK}")
        for index in range(chunk_start, min(count, chunk_start + CHUNK)):
            yield _user(rng, index, pool)


def _user(rng: random.Random, index: int, pool: Sequence[Campaign]) -> User:
    roll = rng.random()
    created = float(int(rng.uniform(_START, _END)))
    user = User(
        braze_id=f"{rng.getrandbits(96):024x}",
        created_at=created,
        updated_at=created,
        created_from=rng.choice(("CSV Import", "SDK", "SDK", "REST API")),
        random_bucket=rng.randrange(10000),
    )
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    if roll < 0.84:
        user.external_id = f"C{index + 1:07d}"
        if rng.random() < 0.3:
            user.aliases[BC_ALIAS_LABEL] = _uuid(rng)
    elif roll < 0.94:
        user.aliases[BC_ALIAS_LABEL] = _uuid(rng)
    # else: an email-only user (created through an email lookup)
    fields = user.fields
    fields["first_name"] = first
    fields["last_name"] = last
    has_email = roll >= 0.94 or rng.random() < 0.9
    if has_email:
        fields["email"] = f"{first}.{last}.{index + 1}@{rng.choice(_DOMAINS)}".lower()
        fields["email_subscribe"] = rng.choices(
            ("subscribed", "opted_in", "unsubscribed"), (5, 2, 3)
        )[0]
    country = rng.choices(_COUNTRY_CODES, _COUNTRY_WEIGHTS)[0]
    _, languages, zone, cities, dial = _COUNTRIES[country]
    if rng.random() < 0.95:
        fields["country"] = country
        fields["language"] = rng.choice(languages)
        fields["home_city"] = rng.choice(cities)
        fields["time_zone"] = zone
    if rng.random() < 0.4:
        fields["phone"] = f"+{dial}{rng.randrange(10**8, 10**9)}"
    fields["gender"] = rng.choices(("F", "M", "O", "N", "P"), (45, 45, 4, 3, 3))[0]
    if rng.random() < 0.7:
        fields["dob"] = (
            f"{rng.randint(1950, 2006)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        )
    if rng.random() < 0.2:
        fields["current_location"] = {
            "longitude": round(rng.uniform(-120, 140), 6),
            "latitude": round(rng.uniform(-40, 60), 6),
        }
    if rng.random() < 0.1:
        fields["attributed_source"] = rng.choice(("google", "facebook", "tiktok"))
        fields["attributed_campaign"] = f"acq_{rng.randint(2021, 2025)}"
    _custom_attributes(rng, user)
    _activity(rng, user, pool)
    return user


def _custom_attributes(rng: random.Random, user: User) -> None:
    custom = user.custom
    custom["loyalty_tier"] = rng.choices(_TIERS, _TIER_WEIGHTS)[0]
    custom["loyalty_points"] = rng.randrange(0, 20000)
    custom["lifetime_value"] = round(rng.lognormvariate(5.5, 1.0), 2)
    custom["newsletter"] = rng.random() < 0.6
    custom["favorite_categories"] = rng.sample(_CATEGORIES, rng.randint(1, 4))
    if rng.random() < 0.7:
        custom["last_order_at"] = iso_millis(float(int(rng.uniform(_START, _END))))
    if rng.random() < 0.5:
        custom["preferences"] = {
            "channel": rng.choice(("email", "push", "sms")),
            "frequency": rng.choice(("daily", "weekly", "monthly")),
        }
    if rng.random() < 0.3:
        custom["address"] = {
            "city": user.fields.get("home_city", "Amsterdam"),
            "postcode": f"{rng.randint(1000, 9999)}",
        }
    if rng.random() < 0.02:
        custom["bc_test_user"] = True


def _activity(rng: random.Random, user: User, pool: Sequence[Campaign]) -> None:
    for name in rng.sample(_EVENTS, rng.randint(0, 3)):
        first = rng.uniform(user.created_at, _END)
        user.events[name] = {
            "first": iso_millis(first),
            "last": iso_millis(rng.uniform(first, _END)),
            "count": rng.randint(1, 40),
        }
    for product in rng.sample(_PRODUCTS, rng.choice((0, 0, 1, 2))):
        first = rng.uniform(user.created_at, _END)
        count = rng.randint(1, 5)
        user.purchases[product] = {
            "first": iso_millis(first),
            "last": iso_millis(rng.uniform(first, _END)),
            "count": count,
        }
        user.total_revenue = round(user.total_revenue + count * rng.choice((19.99, 49.5, 120.0)), 2)
    if pool:
        for campaign in rng.sample(list(pool), rng.choice((0, 1, 1, 2, 3))):
            user.campaigns.append(_received(rng, campaign))
    if rng.random() < 0.35:
        platform = rng.choice(("iOS", "Android"))
        device_id = _uuid(rng)
        user.apps.append(
            {
                "name": "Bright Shop",
                "platform": platform,
                "version": f"3.{rng.randint(0, 30)}.0",
                "sessions": rng.randint(1, 2000),
                "first_used": iso_millis(user.created_at),
                "last_used": iso_millis(rng.uniform(user.created_at, _END)),
            }
        )
        user.devices.append(
            {
                "model": "iPhone 15" if platform == "iOS" else "Pixel 8",
                "os": "iOS 17.4" if platform == "iOS" else "Android (U)",
                "carrier": None,
                "device_id": device_id,
                "ad_tracking_enabled": rng.random() < 0.5,
            }
        )
        user.push_tokens.append(
            {
                "app": "Bright Shop",
                "platform": platform,
                "token": f"{rng.getrandbits(128):032x}",
                "device_id": device_id,
                "notifications_enabled": rng.random() < 0.7,
            }
        )
        user.fields["push_subscribe"] = rng.choice(("opted_in", "subscribed", "unsubscribed"))


def _received(rng: random.Random, campaign: Campaign) -> dict[str, Any]:
    start = campaign.first_sent or campaign.created_at
    end = campaign.last_sent or start
    item: dict[str, Any] = {
        "name": campaign.name,
        "api_campaign_id": campaign.id,
        "last_received": iso_millis(rng.uniform(start, end)),
        "engaged": {"opened_email": rng.random() < 0.4, "clicked_email": rng.random() < 0.1},
        "converted": rng.random() < 0.1,
    }
    variations = [(vid, msg) for vid, msg in campaign.messages.items()]
    if len(variations) > 1:  # a multivariate campaign
        vid, message = rng.choice(variations)
        control = message.get("type") == "control"
        item["variation_name"] = "Control" if control else message.get("name", "Variation 1")
        item["variation_api_id"] = vid
        item["in_control"] = control
    return item


_ID_MULTIPLIER = 0x9E3779B97F4A7C15F39CC061  # odd, so index -> id is a bijection mod 2**96
VIRTUAL_POOL = 2000


def virtual_users(seed: int, count: int, catalog: Catalog) -> Iterator[User]:
    """Fast stand-ins for `generate_users`, for bench mode's large exports.

    Identifiers (braze_id, external_id, alias, email) are unique per index; the rest of each
    profile cycles through a pool of generated profiles, so a million users export in seconds.
    """
    pool = list(generate_users(seed, min(count, VIRTUAL_POOL), catalog))
    offset = random.Random(f"{seed}:virtual").getrandbits(96)
    for index in range(count):
        template = pool[index % len(pool)] if index >= len(pool) else None
        if template is None:
            yield pool[index]
            continue
        user = User(
            braze_id=f"{(index * _ID_MULTIPLIER + offset) % (1 << 96):024x}",
            fields=dict(template.fields),
            custom=template.custom,
            events=template.events,
            purchases=template.purchases,
            total_revenue=template.total_revenue,
            campaigns=template.campaigns,
            devices=template.devices,
            apps=template.apps,
            push_tokens=template.push_tokens,
            created_at=template.created_at,
            updated_at=template.updated_at,
            created_from=template.created_from,
            random_bucket=(index * 7919 + seed) % 10000,
        )
        if template.external_id is not None:
            user.external_id = f"C{index + 1:07d}"
        if template.aliases:
            alias = uuid.UUID(int=(index * _ID_MULTIPLIER) % (1 << 128), version=4)
            user.aliases = {BC_ALIAS_LABEL: str(alias)}
        email = template.fields.get("email")
        if isinstance(email, str):
            local, _, domain = email.rpartition("@")
            stem = local.rsplit(".", 1)[0]
            user.fields["email"] = f"{stem}.{index + 1}@{domain}"
        yield user
