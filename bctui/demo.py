"""`bctui demo`: a sandboxed Braze workspace, a demo config and demo profiles, so a new user sees a
whole sync — import, export, then a delta that sends only what changed — without a Braze account.

Everything it writes goes to one directory: the config, the secrets file, the store, run logs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bctui.engine.config import load_config
from bctui.engine.fileio import atomic_write
from bctui.engine.models import Config
from bctui.engine.paths import Paths
from bctui.engine.secrets import SecretsFile
from bctui.errors import BctuiError
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret
from bctui.store import ProfileStore, ProfileWrite, load_file

CONNECTION = "Demo workspace"
_DEMO_HEADER = (
    "# The bctui demo: a local Braze simulator and S3 server (bctui sandbox) stand in for Braze."
)
BRAZE_SECRET = "demo-braze"
S3_SECRET = "demo-s3"
_COUNTRIES = ("NL", "DE", "BE", "FR", "GB", "US", "ES", "IT")
_INTERESTS = ("news", "sports", "travel", "food", "tech", "fashion", "music")


@dataclass(frozen=True)
class Demo:
    """A prepared demo: where its files are and the config that points at the sandbox."""

    paths: Paths
    config: Config
    profiles: int


def demo_settings() -> SimulatorSettings:
    """Braze answering at internet speed, exports that arrive within seconds."""
    return SimulatorSettings(latency_ms=50.0, export_delay_seconds=1.0, export_file_interval=0.2)


def prepare(directory: Path, sandbox: Sandbox, *, profiles: int) -> Demo:
    """Write the demo config and secrets for a started sandbox, and load the demo profiles."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = Paths(directory / "connections.toml", directory / "state")
    paths.ensure_state_dir()
    secrets = SecretsFile(paths.secrets)
    secrets.set(BRAZE_SECRET, Secret(sandbox.api_key))
    secrets.set(S3_SECRET, Secret(sandbox.aws_secret_access_key))
    if paths.config.exists() and not paths.config.read_text(encoding="utf-8").startswith(
        _DEMO_HEADER
    ):
        raise BctuiError(
            "this directory holds a connections.toml that is not the demo's",
            where=str(paths.config),
            fix="give `bctui demo --dir` another directory",
        )
    audience = next(s for s in sandbox.sim.catalog.segments if s.name == "All Users")
    atomic_write(paths.config, _config_text(sandbox, audience.id, audience.name).encode("utf-8"))
    config = load_config(paths.config)
    store_file = directory / "profiles.jsonl"
    with open(store_file, "wb") as handle:
        for record in demo_profiles(profiles, sandbox.users):
            handle.write(orjson.dumps(record) + b"\n")
    with ProfileStore(paths.state_dir / "profiles.db") as store:
        load_file(store, str(store_file), match="braze_external_id", strategy="set")
    return Demo(paths, config, profiles)


def demo_profiles(count: int, braze_users: int, seed: int = 11) -> Iterator[dict[str, Any]]:
    """Local profiles: most share an external id with a seeded Braze user, some are new."""
    rng = random.Random(seed)
    for index in range(count):
        known = index < int(braze_users * 0.84) and rng.random() < 0.8
        external = f"C{index + 1:07d}" if known else f"BC{index + 1:07d}"
        record: dict[str, Any] = {
            "braze_external_id": external,
            "email": f"demo.{index + 1}@example.com",
            "lifetime_value": round(rng.lognormvariate(6.3, 1.1), 2),
            "country": rng.choice(_COUNTRIES),
            "interests": rng.sample(_INTERESTS, rng.randint(1, 3)),
            "_permission_level": rng.choices(
                ("PERSONAL", "ANONYMOUS", "DO_NOT_TRACK"), (70, 25, 5)
            )[0],
        }
        if rng.random() < 0.4:
            record["_interactions_viewed"] = rng.sample(
                ["welcome-banner", "spring-sale", "app-promo", "survey"], rng.randint(1, 2)
            )
        yield record


def touch_profiles(store: ProfileStore, count: int, seed: int = 5) -> int:
    """Change `count` demo profiles (a new lifetime value), to show the next delta."""
    rng = random.Random(seed)
    changed = 0
    with store.transaction() as tx:
        for profile, _ in store.iter_profiles(batch=500):
            if changed >= count:
                break
            if rng.random() < 0.5:
                continue
            value = round(rng.uniform(1000, 9000), 2)
            tx.apply(ProfileWrite(profile.id, updates=[("lifetime_value", "set", value)]))
            changed += 1
    return changed


def _config_text(sandbox: Sandbox, segment_id: str, segment_name: str) -> str:
    return f"""\
{_DEMO_HEADER}

[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "vip"
match = "all"
rules = [{{ property = "lifetime_value", op = "gte", value = 1000 }}]

[[segment]]
name = "benelux"
match = "any"
rules = [{{ property = "country", op = "in", value = ["NL", "BE"] }}]

[[connection]]
name = "{CONNECTION}"
enabled = true
favorite = true
labels = ["demo"]
description = "Loyalty data in from Braze; VIP profiles out to Braze."
schedule = {{ kind = "times_per_day", times = 4 }}

[connection.braze]
endpoint = "{sandbox.braze_url}"
api_key = "secret:{BRAZE_SECRET}"

[connection.s3]
access_key_id = "{sandbox.aws_access_key_id}"
secret_access_key = "secret:{S3_SECRET}"
bucket = "{sandbox.bucket}"
root = "{sandbox.root}"
region = "{sandbox.region}"
endpoint_url = "{sandbox.s3_endpoint}"

[[connection.goal]]
type = "import"
name = "Loyalty from Braze"
audience = {{ segment_id = "{segment_id}", name = "{segment_name}" }}
allow_create = false
identifiers = [[{{ braze = "external_id", property = "braze_external_id" }}]]
mappings = [
  {{ braze = "first_name", property = "first_name", strategy = "set" }},
  {{ braze = "last_name", property = "last_name", strategy = "set" }},
  {{ braze = "custom_attributes.loyalty_points", property = "loyalty_points", strategy = "set" }},
  {{ braze = "custom_attributes.loyalty_tier", property = "loyalty_tier", strategy = "set" }},
  {{ braze = "custom_attributes.favorite_categories", property = "interests", strategy = "add" }},
]
remaining = {{ enabled = false }}
wait = {{ poll_seconds = 1, quiet_seconds = 3, timeout_minutes = 5 }}

[[connection.goal]]
type = "export"
name = "VIPs to Braze"
segment = "vip"
allow_create = true
min_permission_level = "ANONYMOUS"
identifiers = [[{{ property = "braze_external_id", braze = "external_id" }}]]
mappings = [
  {{ source = "property", value = "lifetime_value", braze = "lifetime_value" }},
  {{ source = "property", value = "country", braze = "country" }},
  {{ source = "property", value = "interests", braze = "bc_interests" }},
  {{ source = "profile_id", braze = "bc_profile_id" }},
  {{ source = "segments", braze = "bc_segments" }},
  {{ source = "interactions_viewed", braze = "bc_interactions" }},
  {{ source = "permission_level", braze = "bc_permission" }},
  {{ source = "static", value = "bctui demo", braze = "bc_source" }},
]
"""
