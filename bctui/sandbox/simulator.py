"""The simulated Braze workspace: users, catalog, API keys, limits, exports and statistics."""

from __future__ import annotations

import copy
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from bctui.sandbox.catalog import (
    Reply,
    campaign_details,
    campaigns_list,
    segment_details,
    segments_list,
)
from bctui.sandbox.export_format import parse_export_request, render_line
from bctui.sandbox.exports import ExportJob, ExportManager, ExportPacing, S3Config
from bctui.sandbox.model import User, UserStore
from bctui.sandbox.permissions import ALL_PERMISSIONS, SHARED, TRACK, check_permissions
from bctui.sandbox.ratelimit import FixedWindowLimiter, LimitDecision
from bctui.sandbox.seed import build_catalog, generate_users, virtual_users
from bctui.sandbox.settings import SimulatorSettings
from bctui.sandbox.track import TrackOutcome, TrackRules, process_track

Clock = Callable[[], float]


class Simulator:
    """A Braze workspace's state and behaviour, independent of HTTP.

    Thread-safe: the HTTP server, export threads and test code may call it concurrently.
    In bench mode it keeps no per-user state: /users/track is validated and counted, and the
    seeded users are generated on demand when a segment is exported.
    """

    def __init__(
        self,
        settings: SimulatorSettings | None = None,
        s3_config: S3Config | None = None,
        *,
        users: int = 0,
        clock: Clock = time.time,
    ) -> None:
        self._lock = threading.RLock()
        self._settings = settings or SimulatorSettings()
        self.s3_config = s3_config
        self.clock = clock
        seed = self._settings.seed
        self.catalog = build_catalog(seed)
        self._segments = {s.id: s for s in self.catalog.segments}
        self._campaigns = {c.id: c for c in self.catalog.campaigns}
        self._store = UserStore()
        self._seeded = 0
        self._ids = random.Random(f"{seed}:braze-ids")
        self._key_ids = random.Random(f"{seed}:api-keys")
        self._faults = random.Random(f"{seed}:faults")
        self._keys: dict[str, frozenset[str]] = {}
        self._limiters: dict[str, FixedWindowLimiter] = {}
        self._reset_limiters()
        self._exports = ExportManager(s3_config)
        self._counters: Counter[str] = Counter()
        self._requests: dict[str, Counter[str]] = {}
        # Set to a list to keep every /users/track body received (tests that compare exact
        # payloads); None keeps nothing.
        self.track_bodies: list[dict[str, Any]] | None = None
        self.full_key = self.add_key(ALL_PERMISSIONS)
        if users:
            self.seed_users(users)

    # -- configuration ---------------------------------------------------------------------

    @property
    def settings(self) -> SimulatorSettings:
        """The current settings."""
        return self._settings

    def configure(self, **changes: Any) -> SimulatorSettings:
        """Change settings at run time (faults, latency, limits, export pacing, …)."""
        with self._lock:
            new = self._settings.updated(changes)
            if new.bench_mode != self._settings.bench_mode:
                raise ValueError("bench_mode cannot change while the simulator runs")
            if new.seed != self._settings.seed:
                raise ValueError("seed cannot change while the simulator runs")
            limits_changed = (new.track_rate_limit, new.shared_rate_limit) != (
                self._settings.track_rate_limit,
                self._settings.shared_rate_limit,
            )
            self._settings = new
            if limits_changed:
                self._reset_limiters()
            return new

    def _reset_limiters(self) -> None:
        self._limiters = {
            TRACK: FixedWindowLimiter(*self._settings.track_rate_limit),
            SHARED: FixedWindowLimiter(*self._settings.shared_rate_limit),
        }

    # -- API keys ----------------------------------------------------------------------------

    def add_key(self, permissions: Iterable[str]) -> str:
        """A new REST API key (a UUID, as Braze's are) with exactly these permissions."""
        chosen = check_permissions(permissions)
        with self._lock:
            key = str(uuid.UUID(int=self._key_ids.getrandbits(128), version=4))
            self._keys[key] = chosen
            return key

    def key_permissions(self, key: str) -> frozenset[str] | None:
        """The key's permissions, or None for an unknown key."""
        with self._lock:
            return self._keys.get(key)

    # -- users ---------------------------------------------------------------------------------

    def seed_users(self, count: int) -> None:
        """Add the first `count` seeded users (in bench mode: only remember how many)."""
        with self._lock:
            if self._seeded:
                raise RuntimeError("the simulator has already been seeded")
            self._seeded = count
            if not self._settings.bench_mode:
                for user in generate_users(self._settings.seed, count, self.catalog):
                    self._store.add(user)

    def _seeded_users(self) -> Iterator[User]:
        return virtual_users(self._settings.seed, self._seeded, self.catalog)

    @property
    def users(self) -> Iterator[dict[str, Any]]:
        """Every user as a dict (bench mode: the seeded users, generated on demand)."""
        if self._settings.bench_mode:
            return (u.as_dict() for u in self._seeded_users())
        with self._lock:
            snapshot = [u.as_dict() for u in self._store]
        return iter(snapshot)

    @property
    def user_count(self) -> int:
        """How many users the workspace has (bench mode: how many were seeded)."""
        with self._lock:
            return self._seeded if self._settings.bench_mode else len(self._store)

    def user(
        self,
        *,
        external_id: str | None = None,
        braze_id: str | None = None,
        alias: tuple[str, str] | None = None,
        email: str | None = None,
    ) -> dict[str, Any] | None:
        """The stored user found by one identifier (alias is `(name, label)`), or None.

        Bench mode keeps no users, so this is always None there.
        """
        given = [v for v in (external_id, braze_id, alias, email) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of external_id, braze_id, alias or email")
        with self._lock:
            found: User | None
            if external_id is not None:
                found = self._store.by_external_id(external_id)
            elif braze_id is not None:
                found = self._store.by_braze_id(braze_id)
            elif alias is not None:
                found = self._store.by_alias(*alias)
            else:
                assert email is not None
                found = self._store.by_email(email)
            return found.as_dict() if found is not None else None

    def _new_braze_id(self) -> str:
        while True:
            candidate = f"{self._ids.getrandbits(96):024x}"
            if self._store.by_braze_id(candidate) is None:
                return candidate

    # -- statistics ----------------------------------------------------------------------------

    def record(self, endpoint: str, status: int | str) -> None:
        """Count one answered request (status may be "drop")."""
        with self._lock:
            self._requests.setdefault(endpoint, Counter())[str(status)] += 1

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter in the stats."""
        with self._lock:
            self._counters[name] += amount

    @property
    def stats(self) -> dict[str, Any]:
        """Requests by endpoint and status, objects processed, data points, 429s, rejections…"""
        with self._lock:
            counters = self._counters
            data: dict[str, Any] = {
                "requests": {k: dict(v) for k, v in sorted(self._requests.items())},
                "attributes_processed": counters["attributes_processed"],
                "events_processed": counters["events_processed"],
                "purchases_processed": counters["purchases_processed"],
                "data_points": counters["data_points"],
                "rejected_objects": counters["rejected_objects"],
                "users_created": counters["users_created"],
                "update_only_skipped": counters["update_only_skipped"],
                "rate_limited": counters["rate_limited"],
                "faults": {
                    "429": counters["fault_429"],
                    "500": counters["fault_500"],
                    "drop": counters["fault_drop"],
                },
                "users": self._seeded if self._settings.bench_mode else len(self._store),
                "bench_mode": self._settings.bench_mode,
            }
        data["responses_429"] = sum(c["429"] for c in self._requests_copy().values())
        data.update(self._exports.stats())
        return data

    def _requests_copy(self) -> dict[str, Counter[str]]:
        with self._lock:
            return {k: Counter(v) for k, v in self._requests.items()}

    def reset_stats(self) -> None:
        """Zero every counter (users and exports are kept)."""
        with self._lock:
            self._counters.clear()
            self._requests.clear()

    # -- limits and faults -------------------------------------------------------------------

    def rate_limit(self, kind: str) -> LimitDecision:
        """Count one request against the TRACK or SHARED limit."""
        with self._lock:
            decision = self._limiters[kind].hit(self.clock())
            if not decision.allowed:
                self._counters["rate_limited"] += 1
            return decision

    def draw_fault(self) -> str | None:
        """The injected fault for this request ("429", "500", "drop") or None."""
        settings = self._settings
        if not (settings.fault_429 or settings.fault_500 or settings.fault_drop):
            return None
        with self._lock:
            roll = self._faults.random()
        if roll < settings.fault_429:
            fault = "429"
        elif roll < settings.fault_429 + settings.fault_500:
            fault = "500"
        elif roll < settings.fault_429 + settings.fault_500 + settings.fault_drop:
            fault = "drop"
        else:
            return None
        self.count(f"fault_{fault}")
        return fault

    # -- endpoints ---------------------------------------------------------------------------

    def track(self, body: Mapping[str, Any]) -> Reply:
        """`POST /users/track` with a parsed body."""
        settings = self._settings
        rules = TrackRules(
            max_objects=settings.max_objects,
            per_array=settings.object_limit_mode == "legacy75PerArray",
            max_array_length=settings.max_array_length,
        )
        with self._lock:
            if self.track_bodies is not None:
                self.track_bodies.append(copy.deepcopy(dict(body)))
            outcome: TrackOutcome = process_track(
                dict(body),
                store=None if settings.bench_mode else self._store,
                now=self.clock(),
                new_braze_id=self._new_braze_id,
                rules=rules,
            )
            counters = self._counters
            for name, n in outcome.processed.items():
                counters[f"{name}_processed"] += n
            counters["data_points"] += outcome.data_points
            counters["rejected_objects"] += outcome.rejected
            counters["users_created"] += outcome.created
            counters["update_only_skipped"] += outcome.skipped_update_only
        return outcome.status, outcome.body

    def export_segment(self, body: Mapping[str, Any]) -> Reply:
        """`POST /users/export/segment`: validate, snapshot the segment, start writing files."""
        if self.s3_config is None:
            return 400, {
                "message": "This sandbox workspace has no Amazon S3 integration to export to"
            }
        request = parse_export_request(body, self._segments)
        if isinstance(request, str):
            return 400, {"message": request}
        settings = self._settings
        with self._lock:
            busy = self._exports.busy_reason(request.segment.id)
            if busy:
                return 429, {"message": busy}
            predicate = request.segment.predicate
            lines: Iterable[bytes]
            if settings.bench_mode:
                # Seeded users never change in bench mode, so generating them later is the
                # same snapshot as taking it now.
                lines = (render_line(u, request) for u in self._seeded_users() if predicate(u))
            else:
                # The snapshot is taken at request time: users changed afterwards are exported
                # as they were when the export was requested.
                lines = [render_line(u, request) for u in self._store if predicate(u)]
            job = self._exports.start(
                request.segment.id,
                request.output_format,
                request.callback_endpoint,
                lines,
                ExportPacing(
                    delay_seconds=settings.export_delay_seconds,
                    file_interval=settings.export_file_interval,
                    file_users=settings.export_file_users,
                    callback=settings.callback,
                    compress_level=1 if settings.bench_mode else 6,
                ),
                self.clock(),
            )
        # 201 as observed in 2015 (the current status is UNCONFIRMED); `url` is null because
        # the workspace has an S3 integration.
        return 201, {"object_prefix": job.object_prefix, "url": None, "message": "success"}

    def segments_list(self, query: Mapping[str, str]) -> Reply:
        """`GET /segments/list`."""
        return segments_list(self.catalog.segments, query)

    def segment_details(self, query: Mapping[str, str]) -> Reply:
        """`GET /segments/details`."""
        return segment_details(self._segments, query)

    def campaigns_list(self, query: Mapping[str, str]) -> Reply:
        """`GET /campaigns/list`."""
        return campaigns_list(self.catalog.campaigns, query)

    def campaign_details(self, query: Mapping[str, str]) -> Reply:
        """`GET /campaigns/details`."""
        return campaign_details(self._campaigns, query)

    # -- exports --------------------------------------------------------------------------------

    @property
    def exports(self) -> list[ExportJob]:
        """Every export job started, oldest first."""
        with self._lock:
            return list(self._exports.jobs)

    def wait_for_exports(self, timeout: float | None = None) -> bool:
        """Block until every export job has finished; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.exports:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job.wait(remaining):
                return False
        return True

    def close(self) -> None:
        """Cancel pending exports and wait for their threads."""
        self._exports.close()
