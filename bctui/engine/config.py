"""Read and strictly validate `connections.toml` into the typed model of `models.py`.

Every problem is collected (not just the first) and reported with the file, the line, the key path
and the fix. Unknown keys are refused, with a suggestion when one is close.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bctui.braze.instances import validate_endpoint
from bctui.engine import tomlpos
from bctui.engine.models import (
    BRAZE_EXPORT_FIELDS,
    BRAZE_IDENTIFIERS,
    EXPORT_SOURCES,
    EXPORT_TYPES,
    NOTIFY_WHEN,
    ON_BUDGET,
    PRIMARY_IDENTIFIERS,
    SCHEDULE_KINDS,
    SMTP_SECURITY,
    WEEKDAYS,
    Audience,
    BrazeSettings,
    Config,
    Connection,
    ExportGoal,
    ExportMapping,
    Goal,
    IdentifierPair,
    IdentifierRules,
    ImportGoal,
    ImportMapping,
    Notify,
    Remaining,
    Retention,
    S3Settings,
    Schedule,
    SmtpSettings,
    StoreSettings,
    WaitSettings,
)
from bctui.engine.schedule import describe_schedule as describe_schedule  # its old home
from bctui.errors import BctuiError, ExitCode
from bctui.store.merge import STRATEGIES
from bctui.store.model import PERMISSION_LEVELS
from bctui.store.segments import OPS, Rule, SegmentDef

Path_ = tuple[str | int, ...]
T = TypeVar("T")

SECRET_REF: Final = re.compile(r"^(secret|env):([A-Za-z_][A-Za-z0-9_.-]*)$")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MISSING: Final = object()


@dataclass(frozen=True)
class Issue:
    """One problem in the config: where it is, what is wrong, how to fix it."""

    path: Path_
    message: str
    fix: str = ""
    line: int | None = None

    @property
    def key(self) -> str:
        """The key path as a user reads it: `connection[0].goal[1].mappings[2].strategy`."""
        text = ""
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
        return text or "(top level)"

    def render(self, file: Path | str) -> str:
        """`file:line: key: message — fix`."""
        where = f"{file}:{self.line}" if self.line else str(file)
        text = f"{where}: {self.key}: {self.message}"
        return f"{text} — {self.fix}" if self.fix else text


class ConfigError(BctuiError):
    """`connections.toml` is missing, malformed or invalid; `issues` lists every problem."""

    exit_code = ExitCode.CONFIG

    def __init__(self, file: Path | str, issues: list[Issue]) -> None:
        self.file = Path(file)
        self.issues = sorted(issues, key=lambda i: i.line or 0)
        count = len(issues)
        summary = f"{count} problem{'s' if count != 1 else ''} in {file}"
        super().__init__(summary + "\n" + "\n".join(i.render(file) for i in self.issues))

    def render(self) -> str:
        """All issues, one per line."""
        return self.message


# -- entry points ------------------------------------------------------------------------------


def load_config(path: Path) -> Config:
    """Read and validate the config file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path,
            [Issue((), "the config file does not exist", _missing_file_fix(path))],
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            path, [Issue((), "the file is not UTF-8 text", "save it as UTF-8 and try again")]
        ) from None
    except OSError as exc:
        raise ConfigError(
            path,
            [
                Issue(
                    (),
                    f"cannot read the file: {exc.strerror}",
                    "check that it is a readable file (not a directory) and its permissions",
                )
            ],
        ) from None
    return parse_config(text, path)


def parse_config(text: str, file: Path | str = "connections.toml") -> Config:
    """Parse and validate TOML text; `file` is only used in messages."""
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors add
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, [_syntax_issue(exc)]) from None
    reader = _Reader(tomlpos.locate(text))
    config = reader.config(raw)
    if reader.issues:
        raise ConfigError(file, reader.issues)
    return config


def is_secret_ref(value: str) -> bool:
    """True for `secret:NAME` and `env:VAR`."""
    return SECRET_REF.match(value) is not None


def _missing_file_fix(path: Path) -> str:
    return (
        f"create {path.name} (the repository's connections.toml is a working example), or point "
        "--config / BCTUI_CONFIG at an existing file"
    )


def _syntax_issue(exc: tomllib.TOMLDecodeError) -> Issue:
    """Turn tomllib's '… (at line 3, column 7)' into an Issue with a line."""
    text = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)", text)
    line = int(match.group(1)) if match else None
    message = text[: match.start()].strip() if match else text
    return Issue((), f"not valid TOML: {message}", "fix the syntax on that line", line)


# -- the validating reader ---------------------------------------------------------------------


class _Reader:
    """Walks the parsed TOML, building the model and collecting issues."""

    def __init__(self, lines: dict[Path_, int]) -> None:
        self.lines = lines
        self.issues: list[Issue] = []

    def issue(self, path: Path_, message: str, fix: str = "") -> None:
        found = Issue(path, message, fix, tomlpos.line_of(self.lines, path))
        if found not in self.issues:
            self.issues.append(found)

    # -- primitives --

    def table(self, value: Any, path: Path_, allowed: Iterable[str]) -> dict[str, Any] | None:
        """Check that `value` is a table with only `allowed` keys."""
        if not isinstance(value, dict):
            self.issue(path, f"expected a table, got {_kind(value)}", "see DESIGN §7 for the shape")
            return None
        allowed = tuple(allowed)
        for key in value:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f'did you mean "{close[0]}"?' if close else f"allowed: {', '.join(allowed)}"
                self.issue((*path, key), f'unknown key "{key}"', f"remove it; {hint}")
        return value

    def field(
        self,
        table: Mapping[str, Any],
        path: Path_,
        key: str,
        kind: type[T] | tuple[type, ...],
        default: Any = _MISSING,
        *,
        what: str = "",
    ) -> Any:
        """Read `table[key]` of type `kind`; a missing required key or a wrong type is an issue."""
        value = table.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                self.issue((*path, key), f'"{key}" is required', f"add {key} = {what or '…'}")
                return None
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
        if not ok:
            expected = " or ".join(_type_name(k) for k in kinds)
            self.issue(
                (*path, key),
                f"expected {expected}, got {_kind(value)}",
                f"write {key} = {what or _example(kinds[0])}",
            )
            return None if default is _MISSING else default
        return value

    def text(
        self,
        table: Mapping[str, Any],
        path: Path_,
        key: str,
        default: Any = _MISSING,
        *,
        what: str = "",
        nonempty: bool = False,
    ) -> str | None:
        value = self.field(table, path, key, str, default, what=what)
        if nonempty and isinstance(value, str) and not value.strip():
            self.issue((*path, key), f'"{key}" must not be empty', f"write {key} = {what or '…'}")
            return None
        return value  # type: ignore[no-any-return]

    def choice(
        self,
        table: Mapping[str, Any],
        path: Path_,
        key: str,
        options: Iterable[str],
        default: Any = _MISSING,
    ) -> str | None:
        options = tuple(options)
        value = self.text(table, path, key, default, what=f'"{options[0]}"')
        if isinstance(value, str) and value not in options:
            self.issue(
                (*path, key), f'unknown value "{value}"', f"use one of: {', '.join(options)}"
            )
            return None
        return value

    def flag(self, table: Mapping[str, Any], path: Path_, key: str, default: bool) -> bool:
        value = self.field(table, path, key, bool, default, what="true")
        return bool(value)

    def number(
        self,
        table: Mapping[str, Any],
        path: Path_,
        key: str,
        default: float,
        *,
        minimum: float,
        maximum: float,
    ) -> float:
        value = self.field(table, path, key, (int, float), default, what=str(default))
        if not isinstance(value, (int, float)):
            return default
        if not (math.isfinite(value) and minimum <= value <= maximum):
            self.issue(
                (*path, key),
                f"{value:g} is out of range",
                f"use a number from {minimum:g} to {maximum:g} (default {default:g})",
            )
            return default
        return float(value)

    def strings(self, table: Mapping[str, Any], path: Path_, key: str) -> tuple[str, ...]:
        value = self.field(table, path, key, list, [], what='["…"]')
        if not isinstance(value, list):
            return ()
        out: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.issue(
                    (*path, key, index), f"expected a string, got {_kind(item)}", "quote the value"
                )
        return tuple(out)

    def items(self, table: Mapping[str, Any], path: Path_, key: str) -> list[tuple[Path_, Any]]:
        """The elements of an array (of tables) with their paths."""
        if isinstance(table.get(key), dict):
            header = ".".join(str(p) for p in path if isinstance(p, str)) + ("." if path else "")
            self.issue(
                (*path, key),
                f"[{header}{key}] is a single table here",
                f"use double brackets, [[{header}{key}]]: each entry is one of a list",
            )
            return []
        value = self.field(table, path, key, list, [], what="[ … ]")
        if not isinstance(value, list):
            return []
        return [((*path, key, index), item) for index, item in enumerate(value)]

    def secret_ref(
        self,
        table: Mapping[str, Any],
        path: Path_,
        key: str,
        name_hint: str,
        *,
        literal_ok: bool = False,
    ) -> str | None:
        # The value is never echoed: it may be a real key pasted in by mistake.
        value = self.field(table, path, key, str, what=f'"secret:{name_hint}"')
        if not isinstance(value, str):
            return None
        if is_secret_ref(value) or (literal_ok and value and ":" not in value):
            return value
        if value.startswith(("secret:", "env:")):
            self.issue(
                (*path, key),
                "malformed secret reference",
                f'write {key} = "secret:{name_hint}" (letters, digits, _ . -) or "env:VAR"',
            )
        else:
            self.issue(
                (*path, key),
                "a literal secret is not allowed in connections.toml",
                f"store it with `bctui secrets set {name_hint}` and write "
                f'{key} = "secret:{name_hint}" (or "env:VAR" to read an environment variable)',
            )
        return None

    # -- sections --

    def config(self, raw: dict[str, Any]) -> Config:
        self.table(raw, (), ("store", "segment", "connection", "smtp", "retention"))
        store = self.store(raw.get("store", {}))
        retention = self.retention(raw.get("retention", {}))
        smtp = self.smtp(raw["smtp"]) if "smtp" in raw else None
        segments: list[tuple[Path_, SegmentDef]] = []
        for path, item in self.items(raw, (), "segment"):
            segment = self.segment(path, item)
            if segment is not None:
                segments.append((path, segment))
        self.unique([(p, s.name) for p, s in segments], "segment")
        good_segments = tuple(s for _, s in segments)
        # A segment with a bad rule is still a segment: goals naming it get no second error.
        names = {
            item["name"].casefold()
            for _, item in self.items(raw, (), "segment")
            if isinstance(item, dict) and isinstance(item.get("name"), str)
        }
        connections = []
        for path, item in self.items(raw, (), "connection"):
            conn = self.connection(path, item, names)
            if conn is not None:
                connections.append((path, conn))
        self.unique([(p, c.name) for p, c in connections], "connection")
        return Config(
            store, good_segments, tuple(c for _, c in connections), smtp=smtp, retention=retention
        )

    def unique(self, named: list[tuple[Path_, str]], what: str) -> None:
        seen: dict[str, Path_] = {}
        for path, name in named:
            first = seen.setdefault(name.casefold(), path)
            if first != path:
                self.issue(
                    (*path, "name"),
                    f'duplicate {what} name "{name}" (also at {_key(first)})',
                    f"give each {what} a unique name (names are compared ignoring case)",
                )

    def store(self, raw: Any) -> StoreSettings:
        table = self.table(raw, ("store",), ("url", "password"))
        if table is None:
            return StoreSettings()
        url = self.text(table, ("store",), "url", StoreSettings.url)
        fix = (
            'use "sqlite:///profiles.db" (relative to the state directory), '
            '"sqlite:////absolute/path.db" or "postgresql://user@host:port/database"'
        )
        postgres = False
        if isinstance(url, str) and url.split("://", 1)[0].lower() in ("postgresql", "postgres"):
            postgres = True
            url = self._postgres_url(url, fix)
        elif isinstance(url, str) and not url.startswith("sqlite:///"):
            scheme = url.split(":", 1)[0] if ":" in url else url
            self.issue(("store", "url"), f'unsupported store URL scheme "{scheme}"', fix)
            url = None
        elif isinstance(url, str):
            name = url.removeprefix("sqlite:///")
            if not name.strip("/") or name.strip("/") == ":memory:":
                self.issue(
                    ("store", "url"),
                    "the store URL names no database file",
                    'use "sqlite:///profiles.db" (a file in the state directory) or '
                    '"sqlite:////absolute/path.db"',
                )
                url = None
        password = ""
        if "password" in table:
            password = self.secret_ref(table, ("store",), "password", "pg") or ""
            if not postgres and password:
                self.issue(
                    ("store", "password"),
                    "a password for a SQLite store",
                    "remove password (only a postgresql:// store takes one)",
                )
                password = ""
        return StoreSettings(url or StoreSettings.url, password)

    def _postgres_url(self, url: str, fix: str) -> str | None:
        """A `postgresql://` store URL checked: a database named, no password in it."""
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
        except ValueError:
            self.issue(("store", "url"), "the PostgreSQL URL cannot be read", fix)
            return None
        if parts.password is not None:
            self.issue(
                ("store", "url"),
                "the store URL contains a password (connections.toml must hold no secrets)",
                'remove it from the URL and add password = "secret:pg" (stored with '
                "`bctui secrets set pg`), or use PGPASSWORD / ~/.pgpass",
            )
            return None
        if not parts.path.strip("/"):
            self.issue(
                ("store", "url"),
                "the PostgreSQL URL names no database",
                'add the database: "postgresql://user@host:port/database"',
            )
            return None
        return url

    def retention(self, raw: Any) -> Retention:
        """The `[retention]` table: how many days and runs of history each connection keeps."""
        path: Path_ = ("retention",)
        table = self.table(raw, path, ("days", "runs"))
        if table is None:
            return Retention()
        values: dict[str, int] = {}
        for key in ("days", "runs"):
            default = getattr(Retention, key)
            value = self.field(table, path, key, int, default, what=str(default))
            if isinstance(value, int) and value >= 1:
                values[key] = value
            elif isinstance(value, int):
                self.issue(
                    (*path, key),
                    f"{key} = {value} would keep nothing",
                    f"use a whole number of at least 1 (default {default})",
                )
        return Retention(**values)

    def smtp(self, raw: Any) -> SmtpSettings | None:
        """The `[smtp]` table: the mail server for run notifications."""
        path: Path_ = ("smtp",)
        keys = ("host", "port", "security", "user", "password", "sender", "timeout_seconds")
        table = self.table(raw, path, keys)
        if table is None:
            return None
        before = len(self.issues)
        host = self.text(table, path, "host", what='"smtp.example.com"', nonempty=True)
        if isinstance(host, str) and host.strip() and not _host_name(host):
            self.issue(
                (*path, "host"),
                f'"{host}" is not a host name',
                'give only the server\'s name or address, e.g. "smtp.example.com"; '
                "the port goes in port",
            )
        security = self.choice(table, path, "security", SMTP_SECURITY, "starttls")
        if security == "none" and isinstance(host, str) and not _is_loopback(host):
            self.issue(
                (*path, "security"),
                "an unencrypted SMTP connection is only allowed on loopback: the password and "
                "the mails would cross the network in clear text",
                'use security = "starttls" (port 587) or "ssl" (port 465)',
            )
        default_port = 465 if security == "ssl" else 587
        port = self.field(table, path, "port", int, default_port, what=str(default_port))
        if isinstance(port, int) and not 1 <= port <= 65535:
            self.issue(
                (*path, "port"),
                f"port {port} is out of range",
                f"use 1 to 65535 (587 for STARTTLS, 465 for SSL; default {default_port})",
            )
        user = self.text(table, path, "user", "") or ""
        password = ""
        if "password" in table:
            password = self.secret_ref(table, path, "password", "smtp") or ""
            if not user:
                self.issue(
                    (*path, "password"),
                    "a password without a user",
                    'add user = "…" (the SMTP login), or remove password',
                )
        elif user:
            self.issue(
                (*path, "user"),
                "a user needs a password",
                'add password = "secret:smtp" (stored with `bctui secrets set smtp`) or '
                '"env:VAR"; remove user for a server that needs no login',
            )
        sender = self.text(table, path, "sender", what='"bctui@example.com"', nonempty=True)
        if isinstance(sender, str) and sender.strip() and not _EMAIL.match(parseaddr(sender)[1]):
            self.issue(
                (*path, "sender"),
                f'"{sender}" is not an e-mail address',
                'write it as "bctui@example.com" or "bctui <bctui@example.com>"',
            )
        timeout = self.number(
            table, path, "timeout_seconds", SmtpSettings.timeout_seconds, minimum=1, maximum=300
        )
        if len(self.issues) > before or not host or not sender or security is None:
            return None
        return SmtpSettings(
            host=host.strip(),
            sender=sender.strip(),
            port=port,
            security=security,  # type: ignore[arg-type]
            user=user,
            password=password,
            timeout_seconds=timeout,
        )

    def segment(self, path: Path_, raw: Any) -> SegmentDef | None:
        table = self.table(raw, path, ("name", "description", "match", "rules"))
        if table is None:
            return None
        before = len(self.issues)
        name = self.text(table, path, "name", what='"vip"', nonempty=True)
        match = self.choice(table, path, "match", ("all", "any"), "all")
        rules = [self.rule(p, item) for p, item in self.items(table, path, "rules")]
        self.text(table, path, "description", "")
        if len(self.issues) > before or name is None or match is None:
            return None
        return SegmentDef(name, match, tuple(r for r in rules if r is not None))  # type: ignore[arg-type]

    def rule(self, path: Path_, raw: Any) -> Rule | None:
        table = self.table(raw, path, ("property", "op", "value"))
        if table is None:
            return None
        prop = self.text(table, path, "property", what='"country"', nonempty=True)
        op = self.choice(table, path, "op", OPS)
        if op is None or prop is None:
            return None
        value = table.get("value", _MISSING)
        if op == "exists":
            if value is not _MISSING:
                self.issue((*path, "value"), '"exists" takes no value', "remove value")
                return None
            return Rule(prop, op, None)
        if value is _MISSING:
            self.issue((*path, "value"), f'op "{op}" needs a value', "add value = … to the rule")
            return None
        if op == "in":
            if not isinstance(value, list) or not value:
                self.issue(
                    (*path, "value"), '"in" needs a non-empty list', 'write value = ["NL", "DE"]'
                )
                return None
            scalars = [self.scalar((*path, "value", i), v) for i, v in enumerate(value)]
            if any(s is None for s in scalars):
                return None
            return Rule(prop, op, tuple(s for s in scalars if s is not None))
        scalar = self.scalar((*path, "value"), value)
        return None if scalar is None else Rule(prop, op, scalar)

    def scalar(self, path: Path_, value: Any) -> str | int | float | None:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float) and not math.isfinite(value):
            self.issue(
                path,
                f"{value} is not a value a profile can hold",
                "use a finite number or a string",
            )
            return None
        if isinstance(value, (str, int, float)):
            return value
        self.issue(
            path,
            f"expected a string or a number, got {_kind(value)}",
            "use a single string or number",
        )
        return None

    def connection(self, path: Path_, raw: Any, segments: set[str]) -> Connection | None:
        table = self.table(
            raw,
            path,
            (
                "name",
                "enabled",
                "favorite",
                "labels",
                "description",
                "notify",
                "schedule",
                "max_data_points",
                "on_budget",
                "braze",
                "s3",
                "goal",
            ),
        )
        if table is None:
            return None
        before = len(self.issues)
        name = self.text(table, path, "name", what='"Braze main"', nonempty=True)
        hint = _secret_hint(name or "braze")
        enabled = self.flag(table, path, "enabled", False)
        favorite = self.flag(table, path, "favorite", False)
        labels = self.strings(table, path, "labels")
        description = self.text(table, path, "description", "") or ""
        notify = self.notify((*path, "notify"), table.get("notify", {}))
        schedule = self.schedule((*path, "schedule"), table.get("schedule", {"kind": "manual"}))
        budget, on_budget = self.budget(table, path, f'connection "{name}"')
        braze = self.braze((*path, "braze"), table.get("braze", _MISSING), hint)
        s3 = self.s3((*path, "s3"), table["s3"], hint) if "s3" in table else None
        goals: list[tuple[Path_, Goal]] = []
        for goal_path, item in self.items(table, path, "goal"):
            goal = self.goal(goal_path, item, segments)
            if goal is not None:
                goals.append((goal_path, goal))
        self.unique([(p, g.name) for p, g in goals], "goal")
        for goal_path, goal in goals:
            if isinstance(goal, ImportGoal) and s3 is None and "s3" not in table:
                self.issue(
                    goal_path,
                    f'import goal "{goal.name}" needs the connection\'s S3 '
                    "settings (Braze delivers segment exports through S3)",
                    "add a [connection.s3] table to this connection",
                )
        if len(self.issues) > before or name is None or braze is None:
            return None
        return Connection(
            name=name,
            braze=braze,
            s3=s3,
            goals=tuple(g for _, g in goals),
            enabled=enabled,
            favorite=favorite,
            labels=labels,
            description=description,
            notify=notify,
            schedule=schedule,
            max_data_points=budget,
            on_budget=on_budget,
        )

    def budget(
        self, table: Mapping[str, Any], path: Path_, owner: str
    ) -> tuple[int | None, Literal["refuse", "partial"]]:
        """`max_data_points` (a positive whole number) and `on_budget` beside it."""
        limit = table.get("max_data_points")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            number = isinstance(limit, int | float) and not isinstance(limit, bool)
            self.issue(
                (*path, "max_data_points"),
                f"{owner}: max_data_points must be a positive whole number, got "
                + (repr(limit) if number else _kind(limit)),
                "write max_data_points = 500000 (the data points one run may send), or remove it",
            )
            limit = None
        mode = self.choice(table, path, "on_budget", ON_BUDGET, "refuse")
        if "on_budget" in table and "max_data_points" not in table:
            self.issue(
                (*path, "on_budget"),
                f"{owner}: on_budget has no max_data_points beside it",
                "add max_data_points = N next to it, or remove on_budget",
            )
        return limit, "partial" if mode == "partial" else "refuse"

    def notify(self, path: Path_, raw: Any) -> Notify:
        table = self.table(raw, path, ("emails", "when"))
        if table is None:
            return Notify()
        emails = self.strings(table, path, "emails")
        for index, email in enumerate(emails):
            if not _EMAIL.match(email):
                self.issue(
                    (*path, "emails", index),
                    f'"{email}" is not an e-mail address',
                    'write it as "name@example.com"',
                )
        when = self.choice(table, path, "when", NOTIFY_WHEN, "failure")
        return Notify(emails, when or "failure")  # type: ignore[arg-type]

    def schedule(self, path: Path_, raw: Any) -> Schedule:
        keys = ("kind", "times", "days", "day", "week", "at", "expr", "timezone")
        table = self.table(raw, path, keys)
        if table is None:
            return Schedule()
        kind = self.choice(table, path, "kind", SCHEDULE_KINDS, "manual") or "manual"
        needs = {
            "manual": (),
            "times_per_day": ("times",),
            "days_of_week": ("days", "at"),
            "day_of_month": ("day", "at"),
            "weekday_of_month": ("week", "day", "at"),
            "cron": ("expr",),
        }[kind]
        for key in table:
            if key not in (*needs, "kind", "timezone") and key in keys:
                self.issue(
                    (*path, key),
                    f'"{key}" does not apply to schedules of kind "{kind}"',
                    "remove it, or use a kind that takes it",
                )
        values: dict[str, Any] = {"kind": kind}
        timezone = self.text(table, path, "timezone", "") or ""
        if timezone:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a folder
                self.issue(
                    (*path, "timezone"),
                    f'unknown time zone "{timezone}"',
                    'use an IANA name such as "Europe/Amsterdam" or "UTC"',
                )
        values["timezone"] = timezone
        if "at" in needs:
            at = self.text(table, path, "at", what='"01:30"')
            if isinstance(at, str) and not _TIME.match(at):
                self.issue(
                    (*path, "at"),
                    f'"{at}" is not a time of day',
                    'write it as 24-hour "HH:MM", e.g. "01:30"',
                )
            values["at"] = at or ""
        if kind == "times_per_day":
            times = self.field(table, path, "times", int, what="4")
            if isinstance(times, int) and not 1 <= times <= 24:
                self.issue(
                    (*path, "times"),
                    f"{times} runs a day is out of range",
                    "use a number from 1 to 24",
                )
            values["times"] = times or 0
        elif kind == "days_of_week":
            days = self.strings(table, path, "days")
            if not days and "days" in table:
                self.issue((*path, "days"), "no days given", 'write days = ["mon", "fri"]')
            self.weekdays(path, "days", days)
            values["days"] = days
        elif kind == "day_of_month":
            day = self.field(table, path, "day", int, what="1")
            if isinstance(day, int) and not 1 <= day <= 31:
                self.issue(
                    (*path, "day"),
                    f"day {day} is not a day of the month",
                    "use 1 to 31 (a later day than the month has runs on its last day)",
                )
            values["day"] = day or 0
        elif kind == "weekday_of_month":
            week = self.field(table, path, "week", (int, str), what="2")
            if (
                week is not None
                and week != "last"
                and (not isinstance(week, int) or not 1 <= week <= 4)
            ):
                self.issue(
                    (*path, "week"),
                    f'week {week!r} is not 1-4 or "last"',
                    'write week = 2 for the second, or week = "last"',
                )
            day_name = self.text(table, path, "day", what='"tue"')
            if isinstance(day_name, str):
                self.weekdays(path, "day", (day_name,))
            values.update(week=week or 0, day=day_name or "")
        elif kind == "cron":
            expr = self.text(table, path, "expr", what='"30 1 * * mon,fri"', nonempty=True)
            if isinstance(expr, str) and expr.strip():
                problem = cron_problem(expr)
                if problem:
                    self.issue(
                        (*path, "expr"),
                        problem,
                        "write five fields: minute hour day-of-month month day-of-week, "
                        'e.g. "30 1 * * mon,fri"',
                    )
            values["expr"] = expr or ""
        return Schedule(**values)

    def weekdays(self, path: Path_, key: str, days: Iterable[str]) -> None:
        seen: set[str] = set()
        for index, day in enumerate(days):
            if day in seen:
                self.issue((*path, key, index), f'"{day}" is listed twice', "list each day once")
            seen.add(day)
            if day not in WEEKDAYS:
                where = (*path, key, index) if key == "days" else (*path, key)
                self.issue(where, f'"{day}" is not a weekday', f"use {', '.join(WEEKDAYS)}")

    def braze(self, path: Path_, raw: Any, hint: str) -> BrazeSettings | None:
        if raw is _MISSING:
            self.issue(
                path,
                "the connection has no Braze settings",
                f'add [connection.braze] with endpoint and api_key = "secret:{hint}"',
            )
            return None
        table = self.table(raw, path, ("endpoint", "api_key"))
        if table is None:
            return None
        endpoint = self.text(
            table, path, "endpoint", what='"https://rest.iad-01.braze.com"', nonempty=True
        )
        if isinstance(endpoint, str) and endpoint.strip():
            try:
                endpoint = validate_endpoint(endpoint)
            except BctuiError as exc:
                self.issue((*path, "endpoint"), exc.message, exc.fix)
                endpoint = None
            if endpoint and urlsplit(endpoint).path.strip("/"):
                self.issue(
                    (*path, "endpoint"),
                    f'"{endpoint}" has a path',
                    "give only the REST endpoint, e.g. https://rest.iad-01.braze.com",
                )
                endpoint = None
        api_key = self.secret_ref(table, path, "api_key", hint)
        if endpoint is None or api_key is None:
            return None
        return BrazeSettings(endpoint, api_key)

    def s3(self, path: Path_, raw: Any, hint: str) -> S3Settings | None:
        keys = ("access_key_id", "secret_access_key", "bucket", "root", "region", "endpoint_url")
        table = self.table(raw, path, keys)
        if table is None:
            return None
        key_id = self.secret_ref(table, path, "access_key_id", f"{hint}-s3-key-id", literal_ok=True)
        secret = self.secret_ref(table, path, "secret_access_key", f"{hint}-s3")
        bucket = self.text(table, path, "bucket", what='"my-braze-exports"', nonempty=True)
        root = self.text(table, path, "root", "") or ""
        region = self.text(table, path, "region", "us-east-1") or "us-east-1"
        endpoint_url = self.text(table, path, "endpoint_url", "") or ""
        if endpoint_url:
            problem = _s3_endpoint_problem(endpoint_url)
            if problem:
                self.issue(
                    (*path, "endpoint_url"),
                    problem,
                    'write e.g. "https://s3.example.com" (plain http only on loopback), '
                    "or leave it empty for AWS",
                )
        if isinstance(bucket, str) and not re.fullmatch(r"[a-z0-9][a-z0-9.\-_]{1,254}", bucket):
            self.issue(
                (*path, "bucket"),
                f'"{bucket}" is not a bucket name',
                'give only the name, e.g. "my-braze-exports"; a folder goes in root',
            )
            bucket = None
        if key_id is None or secret is None or bucket is None:
            return None
        return S3Settings(key_id, secret, bucket, root.strip("/"), region, endpoint_url)

    def goal(self, path: Path_, raw: Any, segments: set[str]) -> Goal | None:
        if not isinstance(raw, dict):
            self.table(raw, path, ())
            return None
        kind = self.choice(raw, path, "type", ("import", "export"))
        if kind == "import":
            return self.import_goal(path, raw)
        if kind == "export":
            return self.export_goal(path, raw, segments)
        return None

    def import_goal(self, path: Path_, raw: dict[str, Any]) -> ImportGoal | None:
        table = self.table(
            raw,
            path,
            (
                "type",
                "name",
                "enabled",
                "audience",
                "allow_create",
                "identifiers",
                "mappings",
                "remaining",
                "wait",
            ),
        )
        assert table is not None
        before = len(self.issues)
        name = self.text(table, path, "name", what='"Braze test users"', nonempty=True)
        enabled = self.flag(table, path, "enabled", True)
        audience = self.audience((*path, "audience"), table.get("audience", _MISSING))
        allow_create = self.flag(table, path, "allow_create", False)
        identifiers = self.identifiers(path, table, braze_first=True)
        mappings: list[ImportMapping] = []
        for map_path, item in self.items(table, path, "mappings"):
            mapping = self.import_mapping(map_path, item)
            if mapping is not None:
                mappings.append(mapping)
        remaining = self.remaining((*path, "remaining"), table.get("remaining", {}))
        wait = self.wait((*path, "wait"), table.get("wait", {}))
        if len(self.issues) > before or name is None or audience is None:
            return None
        return ImportGoal(
            name=name,
            audience=audience,
            identifiers=identifiers,
            mappings=tuple(mappings),
            enabled=enabled,
            allow_create=allow_create,
            remaining=remaining,
            wait=wait,
        )

    def audience(self, path: Path_, raw: Any) -> Audience | None:
        if raw is _MISSING:
            self.issue(
                path,
                "an import goal needs an audience",
                'add audience = { segment_id = "…", name = "…" } (see `bctui check`)',
            )
            return None
        table = self.table(raw, path, ("segment_id", "name", "campaign_ids"))
        if table is None:
            return None
        segment_id = self.text(
            table, path, "segment_id", what='"<Braze segment API id>"', nonempty=True
        )
        name = self.text(table, path, "name", "") or ""
        campaigns = self.strings(table, path, "campaign_ids")
        return None if segment_id is None else Audience(segment_id, name, campaigns)

    def identifiers(
        self, path: Path_, table: Mapping[str, Any], *, braze_first: bool
    ) -> IdentifierRules:
        """OR of AND-groups: identifiers = [[{braze, property}, …], …]."""
        example = 'identifiers = [[{ braze = "external_id", property = "braze_external_id" }]]'
        raw = table.get("identifiers", _MISSING)
        if raw is _MISSING or raw == []:
            self.issue(
                (*path, "identifiers"),
                "at least one identifier group is required",
                f"write {example}",
            )
            return ()
        if not isinstance(raw, list):
            self.issue(
                (*path, "identifiers"),
                f"expected a list of lists, got {_kind(raw)}",
                f"write {example}",
            )
            return ()
        groups: list[tuple[IdentifierPair, ...]] = []
        for g_index, group in enumerate(raw):
            g_path = (*path, "identifiers", g_index)
            if isinstance(group, dict):
                group = [group]  # a single pair is a group of one
            if not isinstance(group, list) or not group:
                self.issue(
                    g_path, "each identifier group is a non-empty list of pairs", f"write {example}"
                )
                continue
            pairs = [self.identifier_pair((*g_path, i), p) for i, p in enumerate(group)]
            good = tuple(p for p in pairs if p is not None)
            primaries = [p.braze for p in good if p.braze in PRIMARY_IDENTIFIERS]
            if len(primaries) > 1:
                self.issue(
                    g_path,
                    f"a group may hold at most one of external_id, user_alias, "
                    f"braze_id (Braze rejects objects with several); found "
                    f"{', '.join(primaries)}",
                    "split them into separate groups (groups are tried in order)",
                )
            if len(good) == len(pairs):
                groups.append(good)
        return tuple(groups)

    def identifier_pair(self, path: Path_, raw: Any) -> IdentifierPair | None:
        table = self.table(raw, path, ("braze", "property", "label"))
        if table is None:
            return None
        braze = self.choice(table, path, "braze", BRAZE_IDENTIFIERS)
        prop = self.text(table, path, "property", what='"braze_external_id"', nonempty=True)
        label = self.text(table, path, "label", "") or ""
        if braze == "user_alias" and not label:
            self.issue(
                (*path, "label"),
                "a user_alias identifier needs the alias label",
                'add label = "<alias_label>"',
            )
            return None
        if braze and braze != "user_alias" and label:
            self.issue((*path, "label"), 'only braze = "user_alias" takes a label', "remove label")
            return None
        if braze is None or prop is None:
            return None
        return IdentifierPair(braze, prop, label)

    def import_mapping(self, path: Path_, raw: Any) -> ImportMapping | None:
        table = self.table(raw, path, ("braze", "property", "strategy"))
        if table is None:
            return None
        braze = self.text(table, path, "braze", what='"first_name"', nonempty=True)
        prop = self.text(table, path, "property", what='"first_name"', nonempty=True)
        strategy = self.choice(table, path, "strategy", STRATEGIES, "set")
        if isinstance(braze, str) and braze and "" in braze.split("."):
            self.issue(
                (*path, "braze"),
                f'"{braze}" has an empty part',
                'write e.g. "custom_attributes.loyalty_points"',
            )
            return None
        if isinstance(braze, str) and braze:
            head = braze.split(".", 1)[0]
            if head not in BRAZE_EXPORT_FIELDS:
                close = difflib.get_close_matches(head, BRAZE_EXPORT_FIELDS, n=1)
                hint = f'did you mean "{close[0]}"? ' if close else ""
                self.issue(
                    (*path, "braze"),
                    f'"{head}" is not a Braze export field',
                    f"{hint}use a field of Braze's user export (first_name, email, …) or "
                    '"custom_attributes.NAME" for a custom attribute',
                )
                return None
        if braze is None or prop is None or strategy is None:
            return None
        return ImportMapping(braze, prop, strategy)

    def remaining(self, path: Path_, raw: Any) -> Remaining:
        table = self.table(raw, path, ("enabled", "prefix", "strategy"))
        if table is None:
            return Remaining()
        enabled = self.flag(table, path, "enabled", False)
        prefix = self.text(table, path, "prefix", Remaining.prefix)
        strategy = self.choice(table, path, "strategy", STRATEGIES, Remaining.strategy)
        return Remaining(
            enabled,
            prefix if prefix is not None else Remaining.prefix,
            strategy or Remaining.strategy,
        )

    def wait(self, path: Path_, raw: Any) -> WaitSettings:
        table = self.table(raw, path, ("poll_seconds", "quiet_seconds", "timeout_minutes"))
        if table is None:
            return WaitSettings()
        default = WaitSettings()
        return WaitSettings(
            self.number(
                table, path, "poll_seconds", default.poll_seconds, minimum=0.05, maximum=3600
            ),
            self.number(
                table, path, "quiet_seconds", default.quiet_seconds, minimum=0, maximum=86400
            ),
            self.number(
                table,
                path,
                "timeout_minutes",
                default.timeout_minutes,
                minimum=0.01,
                maximum=24 * 60,
            ),
        )

    def export_goal(
        self, path: Path_, raw: dict[str, Any], segments: set[str]
    ) -> ExportGoal | None:
        table = self.table(
            raw,
            path,
            (
                "type",
                "name",
                "enabled",
                "segment",
                "allow_create",
                "all_attributes",
                "min_permission_level",
                "identifiers",
                "mappings",
                "max_data_points",
                "on_budget",
            ),
        )
        assert table is not None
        before = len(self.issues)
        name = self.text(table, path, "name", what='"VIPs to Braze"', nonempty=True)
        enabled = self.flag(table, path, "enabled", True)
        segment = self.text(table, path, "segment", what='"vip"', nonempty=True)
        if isinstance(segment, str) and segment and segment.casefold() not in segments:
            known = ", ".join(sorted(segments)) or "none are defined"
            self.issue(
                (*path, "segment"),
                f'no [[segment]] named "{segment}"',
                f"define it in a [[segment]] table, or use an existing one ({known})",
            )
        allow_create = self.flag(table, path, "allow_create", False)
        all_attributes = self.flag(table, path, "all_attributes", False)
        level = self.choice(table, path, "min_permission_level", PERMISSION_LEVELS, "ANONYMOUS")
        budget, on_budget = self.budget(table, path, f'export goal "{name}"')
        identifiers = self.identifiers(path, table, braze_first=False)
        mappings: list[tuple[Path_, ExportMapping]] = []
        for map_path, item in self.items(table, path, "mappings"):
            mapping = self.export_mapping(map_path, item, name)
            if mapping is not None:
                mappings.append((map_path, mapping))
        seen: dict[str, Path_] = {}
        for map_path, mapping in mappings:
            first = seen.setdefault(mapping.braze, map_path)
            if first != map_path:
                self.issue(
                    (*map_path, "braze"),
                    f'Braze attribute "{mapping.braze}" is mapped twice (also at {_key(first)})',
                    "map each attribute once",
                )
        if len(self.issues) > before or name is None or segment is None:
            return None
        return ExportGoal(
            name=name,
            segment=segment,
            identifiers=identifiers,
            mappings=tuple(m for _, m in mappings),
            enabled=enabled,
            allow_create=allow_create,
            all_attributes=all_attributes,
            min_permission_level=level or "ANONYMOUS",
            max_data_points=budget,
            on_budget=on_budget,
        )

    def export_mapping(self, path: Path_, raw: Any, goal: str | None) -> ExportMapping | None:
        table = self.table(raw, path, ("source", "value", "braze", "type"))
        if table is None:
            return None
        source = self.choice(table, path, "source", EXPORT_SOURCES)
        braze = self.text(table, path, "braze", what='"bc_segments"', nonempty=True)
        if source is None or braze is None:
            return None
        if source in ("property", "static"):
            what = '"email"' if source == "property" else '"bctui"'
            value = self.text(table, path, "value", what=what, nonempty=source == "property")
            if value is None:
                return None
        else:
            if "value" in table:
                self.issue((*path, "value"), f'source "{source}" takes no value', "remove value")
                return None
            value = ""
        if braze in PRIMARY_IDENTIFIERS or braze.startswith("_"):
            self.issue(
                (*path, "braze"),
                f'"{braze}" is an identifier or a Braze control field, not an attribute',
                "set identifiers in the goal's identifiers rules",
            )
            return None
        kind = self.export_type(table, path, source, braze, goal)
        if kind is None:
            return None
        return ExportMapping(source, braze, value, kind)

    def export_type(
        self, table: Mapping[str, Any], path: Path_, source: str, braze: str, goal: str | None
    ) -> str | None:
        """A mapping's `type` ("" when absent); a source other than a property has one type."""
        kind = self.text(table, path, "type", "", what='"string"')
        if not kind:
            return kind  # absent (""), or not text (None, an issue already)
        which = f'mapping "{braze}" of goal "{goal}"' if goal else f'mapping "{braze}"'
        if kind not in EXPORT_TYPES:
            self.issue((*path, "type"), f'unknown type "{kind}" for {which}',
                       f"use one of: {', '.join(EXPORT_TYPES)} (or leave type out)")
            return None
        natural = "array" if source in ("segments", "interactions_viewed") else "string"
        if source != "property" and kind != natural:
            self.issue((*path, "type"),
                       f'{which}: source "{source}" always sends a{"n" * (natural == "array")} '
                       f'{natural}, not a{"n" * (kind == "array")} {kind}',
                       f'remove type, or write type = "{natural}"')
            return None
        return kind


# -- helpers -----------------------------------------------------------------------------------


_CRON_FIELDS: Final = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_CRON_NAMES: Final = {
    3: {
        m: i + 1
        for i, m in enumerate(
            ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
        )
    },
    4: {d: (i + 1) % 7 for i, d in enumerate(WEEKDAYS)},
}


def cron_problem(expr: str) -> str:
    """What is wrong with a five-field cron expression, or '' when it is fine.

    `cronsim`, which computes the run times, decides; when it refuses, a field-by-field reading
    names the field and the value at fault.
    """
    from cronsim.cronsim import CronSim, CronSimError, Field

    fields = expr.split()
    if len(fields) != 5:
        return f"a cron expression has 5 fields, this one has {len(fields)}"
    try:
        CronSim(expr, datetime(2000, 1, 1))
    except CronSimError as exc:
        friendly = _cron_field_problem(fields)
        if not friendly and str(exc) == Field.DAY.msg():
            friendly = "that day of the month never comes in the months given"
        return friendly or f"not a valid cron expression ({exc})"
    return ""


def _cron_field_problem(fields: list[str]) -> str:
    """A friendly word on the first field cronsim would refuse, or ''."""
    for index, (text, (label, low, high)) in enumerate(zip(fields, _CRON_FIELDS, strict=True)):
        names = _CRON_NAMES.get(index, {})
        for part in text.split(","):
            base, _, step = part.partition("/")
            if step and (not step.isdigit() or int(step) == 0):
                return f'bad step "{step}" in the {label} field'
            if base == "*":
                continue
            values: list[int] = []
            for bound in base.split("-", 1):
                value = names.get(bound.lower()) if not bound.isdigit() else int(bound)
                if value is None or not low <= value <= high:
                    return f'"{bound}" is not a valid {label} ({low}-{high})'
                values.append(value)
            if len(values) == 2 and values[0] > values[1]:
                return (
                    f'the range "{base}" in the {label} field runs backwards '
                    "(write the smaller value first)"
                )
    return ""


def _s3_endpoint_problem(url: str) -> str:
    """What is wrong with an S3 endpoint URL, or ''."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f'"{url}" is not an http(s) URL'
    if parts.username or parts.password:
        return "the URL carries credentials; they belong in access_key_id / secret_access_key"
    if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "::1", "localhost"):
        return (
            "plain http is only allowed on loopback: credentials and data would cross the "
            "network unencrypted"
        )
    return ""


def _host_name(host: str) -> bool:
    """Whether `host` is a bare host name or IP address (no scheme, port or path)."""
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host) is not None


def _is_loopback(host: str) -> bool:
    """Whether `host` is this machine (where an unencrypted connection is safe)."""
    if host.casefold() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret_hint(name: str) -> str:
    """A secret name derived from the connection name: 'Braze main' → 'braze-main'."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "braze"


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _type_name(kind: type) -> str:
    return {
        bool: "true/false",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(kind, kind.__name__)


def _example(kind: type) -> str:
    return {bool: "true", int: "1", float: "1.0", str: '"…"', list: "[ … ]"}.get(kind, "…")


def _key(path: Path_) -> str:
    return Issue(path, "").key
