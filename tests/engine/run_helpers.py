"""Helpers for the run tests: a state directory and `connections.toml` wired to a sandbox, profile
loading, simulator setup, runs in-process and as `python -m bctui` processes, snapshots of both
sides for comparisons, and a polling wait with a deadline."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import tomli_w

from bctui.engine.config import load_config
from bctui.engine.models import Config
from bctui.engine.paths import Paths
from bctui.engine.runs import state as st
from bctui.engine.runs.events import Event, read_events
from bctui.engine.runs.lock import Holder, run_lock
from bctui.engine.runs.runner import RunOptions, RunResult, log_path, run_connection
from bctui.engine.secrets import SecretsFile
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret
from bctui.store import ProfileWrite, Store, open_store

T = TypeVar("T")

CONNECTION = "c"
BRAZE_SECRET = "braze"
S3_SECRET = "s3"
FAST_WAIT: dict[str, float] = {"poll_seconds": 0.1, "quiet_seconds": 0.5, "timeout_minutes": 1}
EVERYONE: dict[str, Any] = {
    "name": "everyone", "match": "all", "rules": [{"property": "member", "op": "exists"}],
}
VIP: dict[str, Any] = {
    "name": "vip", "match": "all", "rules": [{"property": "vip", "op": "eq", "value": "yes"}],
}
REPO = Path(__file__).resolve().parents[2]
SQLITE_URL = "sqlite:///profiles.db"
PG_SECRET = "pg"

# Set (by tests/engine/conftest.py) while a test runs on PostgreSQL: each call gives a new empty
# database's URL (without its password) and password, so every Workspace has a store of its own.
pg_database: Callable[[], tuple[str, str]] | None = None

# Sandbox fields that differ between two runs that did the same thing (ids Braze assigns in
# arrival order, clocks, per-user billing that counts resends).
_VOLATILE_USER_FIELDS = ("braze_id", "created_at", "updated_at", "random_bucket", "data_points")


def fast_settings(**changes: Any) -> SimulatorSettings:
    """Simulator settings whose exports start and finish within a fraction of a second."""
    base = {"export_delay_seconds": 0.05, "export_file_interval": 0.05}
    return SimulatorSettings(**{**base, **changes})


def wait_for(predicate: Callable[[], T | None], *, timeout: float = 20.0,
             what: str = "a condition", interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# -- config pieces ---------------------------------------------------------------------------


def ident(braze: str, prop: str, label: str = "") -> dict[str, str]:
    """One identifier pair."""
    pair = {"braze": braze, "property": prop}
    if label:
        pair["label"] = label
    return pair


def import_goal(segment_id: str, *, name: str = "import",
                mappings: Sequence[Mapping[str, Any]] = (),
                identifiers: Sequence[Sequence[Mapping[str, str]]] | None = None,
                allow_create: bool = True, remaining: Mapping[str, Any] | None = None,
                campaign_ids: Sequence[str] = (), wait: Mapping[str, float] | None = None,
                enabled: bool = True) -> dict[str, Any]:
    """An `[[connection.goal]]` table of type import."""
    return {
        "type": "import", "name": name, "enabled": enabled,
        "audience": {"segment_id": segment_id, "name": "", "campaign_ids": list(campaign_ids)},
        "allow_create": allow_create,
        "identifiers": [list(g) for g in identifiers or [[ident("external_id", "ext")]]],
        "mappings": [dict(m) for m in mappings],
        "remaining": dict(remaining or {"enabled": False}),
        "wait": dict(wait or FAST_WAIT),
    }


def export_goal(*, name: str = "export", segment: str = "everyone",
                mappings: Sequence[Mapping[str, Any]] = (),
                identifiers: Sequence[Sequence[Mapping[str, str]]] | None = None,
                allow_create: bool = True, all_attributes: bool = False,
                min_permission_level: str = "ANONYMOUS", enabled: bool = True) -> dict[str, Any]:
    """An `[[connection.goal]]` table of type export."""
    return {
        "type": "export", "name": name, "enabled": enabled, "segment": segment,
        "allow_create": allow_create, "all_attributes": all_attributes,
        "min_permission_level": min_permission_level,
        "identifiers": [list(g) for g in identifiers or [[ident("external_id", "ext")]]],
        "mappings": [dict(m) for m in mappings],
    }


def mapping(braze: str, prop: str, strategy: str = "set") -> dict[str, str]:
    """An import mapping."""
    return {"braze": braze, "property": prop, "strategy": strategy}


def source(kind: str, braze: str, value: str | None = None) -> dict[str, str]:
    """An export mapping."""
    out = {"source": kind, "braze": braze}
    if value is not None:
        out["value"] = value
    return out


def member(pid: str, *, level: str = "PERSONAL", interactions: Sequence[str] = (),
           **properties: Any) -> dict[str, Any]:
    """A profile record in the `everyone` segment."""
    return {"_id": pid, "_permission_level": level, "_interactions_viewed": list(interactions),
            "member": "yes", **properties}


def braze_segment_id(sandbox: Sandbox, name: str) -> str:
    """The API id of one of the simulator's seeded segments."""
    return next(s.id for s in sandbox.sim.catalog.segments if s.name == name)


def braze_track(sandbox: Sandbox, objects: Sequence[Mapping[str, Any]]) -> None:
    """Set up simulator users through its own /users/track logic (75 objects at a time)."""
    for start in range(0, len(objects), 75):
        status, body = sandbox.sim.track({"attributes": list(objects[start:start + 75])})
        assert status == 201 and not body.get("errors"), body


def braze_users(sandbox: Sandbox) -> dict[str, dict[str, Any]]:
    """Every simulator user with an external id, by external id, without volatile fields."""
    out: dict[str, dict[str, Any]] = {}
    for user in sandbox.sim.users:
        if user.get("external_id"):
            out[user["external_id"]] = {k: v for k, v in user.items()
                                        if k not in _VOLATILE_USER_FIELDS}
    return out


def track_requests(sandbox: Sandbox) -> int:
    """How many /users/track requests the simulator answered (any status)."""
    return sum(sandbox.sim.stats["requests"].get("/users/track", {}).values())


def export_requests(sandbox: Sandbox) -> int:
    """How many segment exports the simulator accepted."""
    return int(sandbox.sim.stats["requests"].get("/users/export/segment", {}).get("201", 0))


# -- a state directory wired to a sandbox --------------------------------------------------------


@dataclass
class Workspace:
    """A config file and a state directory for one connection `c` on one sandbox."""

    sandbox: Sandbox
    paths: Paths
    store_url: str = SQLITE_URL
    store_password: str = ""

    @classmethod
    def create(cls, root: Path, sandbox: Sandbox, goals: Sequence[Mapping[str, Any]],
               segments: Sequence[Mapping[str, Any]] = (EVERYONE,),
               store_url: str | None = None) -> Workspace:
        """Write secrets and `connections.toml` under `root`; the store is SQLite's, or a new
        PostgreSQL database while the test runs on PostgreSQL (or `store_url`'s, shared)."""
        paths = Paths(root / "connections.toml", root / "state")
        paths.ensure_state_dir()
        secrets = SecretsFile(paths.secrets)
        secrets.set(BRAZE_SECRET, Secret(sandbox.api_key))
        secrets.set(S3_SECRET, Secret(sandbox.aws_secret_access_key))
        url, password = SQLITE_URL, ""
        if store_url is not None:
            url, _, password = store_url.partition("#")
        elif pg_database is not None:
            url, password = pg_database()
        if password:
            secrets.set(PG_SECRET, Secret(password))
        workspace = cls(sandbox, paths, url, password)
        workspace.write_config(goals, segments)
        return workspace

    def write_config(self, goals: Sequence[Mapping[str, Any]],
                     segments: Sequence[Mapping[str, Any]] = (EVERYONE,)) -> None:
        """(Re)write `connections.toml` with these goals and segments."""
        box = self.sandbox
        document = {
            "store": {"url": self.store_url,
                      **({"password": f"secret:{PG_SECRET}"} if self.store_password else {})},
            "segment": [dict(s) for s in segments],
            "connection": [{
                "name": CONNECTION,
                "enabled": True,
                "braze": {"endpoint": box.braze_url, "api_key": f"secret:{BRAZE_SECRET}"},
                "s3": {"access_key_id": box.aws_access_key_id,
                       "secret_access_key": f"secret:{S3_SECRET}", "bucket": box.bucket,
                       "root": box.root, "region": box.region, "endpoint_url": box.s3_endpoint},
                "goal": [dict(g) for g in goals],
            }],
        }
        self.paths.config.write_text(tomli_w.dumps(document), encoding="utf-8")

    @property
    def config(self) -> Config:
        """The validated config."""
        return load_config(self.paths.config)

    # -- running -------------------------------------------------------------------------------

    def run(self, *, goal: str | None = None, dry_run: bool = False, full: bool = False,
            concurrency: int = 16, listener: Callable[[Event], None] | None = None,
            budget_hold_bytes: int | None = None) -> RunResult:
        """Run the connection in this process (`budget_hold_bytes`: see RunOptions)."""
        options = RunOptions(goal, dry_run, full, concurrency,
                             budget_hold_bytes=budget_hold_bytes)
        return run_connection(self.config, self.paths, CONNECTION, options, listener=listener)

    def command(self, *args: str) -> list[str]:
        """`python -m bctui --config … --state-dir … ARGS`."""
        return [sys.executable, "-m", "bctui", "--config", str(self.paths.config),
                "--state-dir", str(self.paths.state_dir), *args]

    def cli(self, *args: str, env: Mapping[str, str] | None = None,
            timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        """Run a bctui command in a child process and wait for it."""
        return subprocess.run(self.command(*args), capture_output=True, text=True,
                              env=child_env(env), timeout=timeout, cwd=REPO, check=False)

    def start_cli(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """Start a bctui command in a child process (stdout and stderr piped)."""
        return subprocess.Popen(self.command(*args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=child_env(env), cwd=REPO)

    def lock_holder(self) -> Holder | None:
        """Who holds the connection's run lock right now."""
        with self.store() as store:
            return run_lock(self.paths.locks_dir, CONNECTION, store).holder()

    @property
    def postgres(self) -> bool:
        """Whether the workspace's store is a PostgreSQL database."""
        return self.store_url.startswith("postgresql")

    @property
    def shared_store(self) -> str:
        """The store as `create(store_url=…)` takes it, for another workspace on the same one."""
        return f"{self.store_url}#{self.store_password}"

    def events(self, run_id: str) -> list[Event]:
        """Every complete event of a run's log."""
        return list(read_events(log_path(self.paths, run_id)))

    def store_events(self, run_id: str) -> list[Event]:
        """A run's events as its store holds them (PostgreSQL) or its log file (SQLite)."""
        from bctui.engine.runs import history

        with self.store() as store:
            return list(history.run_events(self.paths, run_id, store))

    def log_kinds(self, run_id: str) -> list[str]:
        """The event types of a run's log, in order."""
        path = log_path(self.paths, run_id)
        return [e.kind for e in read_events(path)] if path.exists() else []

    # -- the store -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        """The workspace's profile store, with the engine's tables."""
        with open_store(self.store_url, self.paths.state_dir,
                        password=self.store_password or None) as opened:
            st.migrate(opened)
            yield opened

    def load(self, records: Iterable[Mapping[str, Any]], strategy: str = "set") -> None:
        """Write profile records: `_id`, `_permission_level`, `_interactions_viewed`, and
        properties merged with `strategy`."""
        writes = [_write(r, strategy) for r in records]
        with self.store() as store:
            for start in range(0, len(writes), 5000):
                with store.transaction() as tx:
                    tx.apply_many(writes[start:start + 5000])

    def profiles(self) -> dict[str, dict[str, Any]]:
        """Every profile by id: properties, permission level, interactions."""
        with self.store() as store:
            return {p.id: {"properties": p.properties, "permission_level": p.permission_level,
                           "interactions_viewed": p.interactions_viewed}
                    for p, _ in store.iter_profiles()}

    def properties_by(self, prop: str) -> dict[Any, dict[str, list[Any]]]:
        """Properties of every profile that has `prop`, by its first value (ids differ between
        state directories for created profiles; identifiers do not)."""
        out: dict[Any, dict[str, list[Any]]] = {}
        for profile in self.profiles().values():
            values = profile["properties"].get(prop)
            if values:
                out[values[0]] = profile["properties"]
        return out

    def max_seq(self) -> int:
        """The store's change sequence."""
        with self.store() as store:
            return store.max_seq()

    def watermark(self, goal: str = "export") -> int:
        """An export goal's watermark (0 when it never advanced)."""
        with self.store() as store:
            return st.watermark(store, st.goal_key(CONNECTION, goal))

    def watermark_row(self, goal: str = "export") -> bool:
        """Whether the goal has a watermark row at all."""
        with self.store() as store:
            row = store.query("SELECT 1 FROM watermark WHERE goal_key = ?",
                              (st.goal_key(CONNECTION, goal),)).fetchone()
            return row is not None

    def failures(self, goal: str = "export") -> dict[str, str]:
        """The goal's export_failure rows: profile id → Braze's reason."""
        with self.store() as store:
            rows = store.query("SELECT profile_id, error FROM export_failure WHERE goal_key = ?",
                               (st.goal_key(CONNECTION, goal),)).fetchall()
        return {r[0]: r[1] for r in rows}

    def failure_attempts(self, goal: str = "export") -> dict[str, tuple[str, int]]:
        """The goal's export_failure rows: profile id → (reason, how often it was rejected)."""
        with self.store() as store:
            rows = store.query("SELECT profile_id, error, attempts FROM export_failure "
                               "WHERE goal_key = ?", (st.goal_key(CONNECTION, goal),)).fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def runs(self) -> list[st.RunRecord]:
        """Run history, newest first."""
        with self.store() as store:
            return st.list_runs(store, CONNECTION)

    def engine_rows(self, table: str) -> int:
        """How many rows one of the engine's tables holds."""
        with self.store() as store:
            return int(store.query(f"SELECT count(*) FROM {table}").fetchone()[0])


def _write(record: Mapping[str, Any], strategy: str) -> ProfileWrite:
    props = {k: v for k, v in record.items() if not k.startswith("_")}
    return ProfileWrite(
        profile_id=record.get("_id"),
        updates=[(k, strategy, v) for k, v in props.items()],
        permission_level=record.get("_permission_level"),
        interactions_viewed=tuple(record.get("_interactions_viewed", ())),
    )


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child bctui: ours, without BCTUI_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BCTUI_")}
    env.update(extra or {})
    return env


def finish(process: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """Wait for a child; its exit code, stdout and stderr (killed if it overstays)."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the child did not finish within {timeout:g} s:\n{err}") from None
    return process.returncode, out, err


def kill(process: subprocess.Popen[str], sig: signal.Signals = signal.SIGKILL) -> None:
    """Send a signal to a child we started (only if it still runs)."""
    if process.poll() is None:
        process.send_signal(sig)
