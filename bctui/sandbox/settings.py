"""The simulator's knobs: rate limits, object-limit mode, latency, faults, export pacing."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

ObjectLimitMode = Literal["combined75", "legacy75PerArray"]
OBJECT_LIMIT_MODES: tuple[str, ...] = ("combined75", "legacy75PerArray")


@dataclass(frozen=True)
class SimulatorSettings:
    """How the simulated Braze workspace behaves (changed at run time by `Simulator.configure`)."""

    # requests per window (seconds) for /users/track: Braze's burst limit, 3,000 per 3 s.
    track_rate_limit: tuple[int, float] = (3000, 3.0)
    # the default limit shared by the list/details/export endpoints; resets on the clock hour.
    shared_rate_limit: tuple[int, float] = (250_000, 3600.0)
    object_limit_mode: ObjectLimitMode = "combined75"
    latency_ms: float = 0.0
    fault_429: float = 0.0
    fault_500: float = 0.0
    fault_drop: float = 0.0
    export_delay_seconds: float = 1.0
    export_file_interval: float = 0.2
    export_file_users: int = 5000
    bench_mode: bool = False
    missing_permission_status: int = 403
    callback: bool = True
    seed: int = 7
    # values Braze documents but that tests may want to shrink
    max_objects: int = field(default=75)
    max_array_length: int = field(default=25)

    def __post_init__(self) -> None:
        problems = validate_settings(self)
        if problems:
            raise ValueError("invalid simulator settings: " + "; ".join(problems))

    def updated(self, changes: dict[str, Any]) -> SimulatorSettings:
        """A copy with `changes` (JSON-style values: lists become tuples); unknown names refused."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(
                f"unknown setting(s): {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        coerced: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("track_rate_limit", "shared_rate_limit"):
                if not isinstance(value, list | tuple) or len(value) != 2:
                    raise ValueError(f"{name} must be [requests, seconds], got {value!r}")
                value = (int(value[0]), float(value[1]))
            coerced[name] = value
        return dataclasses.replace(self, **coerced)

    def as_json(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict."""
        data = dataclasses.asdict(self)
        data["track_rate_limit"] = list(self.track_rate_limit)
        data["shared_rate_limit"] = list(self.shared_rate_limit)
        return data


def validate_settings(settings: SimulatorSettings) -> list[str]:
    """Every problem with `settings`, as readable sentences (empty when valid)."""
    problems: list[str] = []
    for name in ("track_rate_limit", "shared_rate_limit"):
        limit, window = getattr(settings, name)
        if not isinstance(limit, int) or limit < 1 or not window > 0:
            problems.append(f"{name} must be (requests >= 1, seconds > 0), got {(limit, window)!r}")
    if settings.object_limit_mode not in OBJECT_LIMIT_MODES:
        problems.append(
            f"object_limit_mode must be one of {', '.join(OBJECT_LIMIT_MODES)}, "
            f"got {settings.object_limit_mode!r}"
        )
    for name in ("fault_429", "fault_500", "fault_drop"):
        value = getattr(settings, name)
        if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
            problems.append(f"{name} must be a fraction between 0 and 1, got {value!r}")
    if settings.fault_429 + settings.fault_500 + settings.fault_drop > 1.0:
        problems.append("fault_429 + fault_500 + fault_drop must not exceed 1")
    for name in ("latency_ms", "export_delay_seconds", "export_file_interval"):
        value = getattr(settings, name)
        if not isinstance(value, int | float) or value < 0:
            problems.append(f"{name} must be a number >= 0, got {value!r}")
    if not isinstance(settings.export_file_users, int) or settings.export_file_users < 1:
        problems.append(f"export_file_users must be >= 1, got {settings.export_file_users!r}")
    if settings.missing_permission_status not in (401, 403):
        problems.append(
            "missing_permission_status must be 401 or 403, "
            f"got {settings.missing_permission_status!r}"
        )
    for name in ("max_objects", "max_array_length"):
        value = getattr(settings, name)
        if not isinstance(value, int) or value < 1:
            problems.append(f"{name} must be an integer >= 1, got {value!r}")
    return problems


def parse_faults(text: str) -> dict[str, float]:
    """Parse `429=0.05,500=0.05,drop=0.02` into settings names (`fault_429`, …)."""
    result: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, value = part.partition("=")
        kind = kind.strip()
        if not sep or kind not in ("429", "500", "drop"):
            raise ValueError(f"bad fault {part!r}: use 429=F, 500=F or drop=F, comma-separated")
        try:
            fraction = float(value)
        except ValueError:
            raise ValueError(f"bad fault fraction in {part!r}: not a number") from None
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"bad fault fraction in {part!r}: must be between 0 and 1")
        result[f"fault_{kind}"] = fraction
    return result
