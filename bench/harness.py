"""Shared pieces of the bench/ scripts: the sandbox in its own process, a bench config, data files,
`bctui …` children measured (wall, CPU-seconds, peak RSS) and tables of medians.

Every figure comes from a child process: `os.wait4` gives its user+sys CPU-seconds and its peak RSS
(the largest of it and the children it waited for), a sampler adds the peak RSS summed over its
process tree, and /proc/<pid>/stat of the sandbox gives the sandbox's own CPU-seconds over the same
span, because it shares the two cores with bctui. With `--store postgresql` a throwaway PostgreSQL
server (tests/pg_cluster.py's PgCluster) holds the store, and the CPU-seconds of its processes over
the span are a column of their own, for the same reason.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import orjson

# Braze's /users/track ceiling: 3,000 requests per 3 s, 75 objects each.
CEILING_PROFILES_PER_S = 3_000 / 3 * 75
QUIET_SECONDS = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIB = 1024 * 1024
REPO = Path(__file__).resolve().parent.parent


# -- the sandbox ---------------------------------------------------------------------------------


class Sandbox:
    """`python -m bctui.sandbox --bench` in a child process, with the endpoints it printed."""

    PATTERNS: ClassVar[dict[str, str]] = {
        "braze": r"Braze REST endpoint\s+(\S+)",
        "key": r"Braze API key\s+(\S+)",
        "s3": r"S3 endpoint\s+(\S+)",
        "bucket": r"S3 bucket\s+(\S+)",
        "secret": r"AWS secret key\s+(\S+)",
        "key_id": r"AWS access key id\s+(\S+)",
    }

    def __init__(self, users: int, latency_ms: float) -> None:
        self.users = users
        self.latency_ms = latency_ms
        self.process: subprocess.Popen[str] | None = None
        self.endpoints: dict[str, str] = {}

    def __enter__(self) -> Sandbox:
        command = [sys.executable, "-m", "bctui.sandbox", "--bench", "--users", str(self.users)]
        command += ["--latency-ms", str(self.latency_ms)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 120
        for line in self.process.stdout:
            for name, pattern in self.PATTERNS.items():
                if match := re.match(pattern, line):
                    self.endpoints[name] = match.group(1)
            if len(self.endpoints) == len(self.PATTERNS) or time.monotonic() > deadline:
                break
        if len(self.endpoints) != len(self.PATTERNS):
            self.__exit__()
            raise RuntimeError(f"the sandbox did not start: got {self.endpoints}")
        # Keep reading what it prints so a full pipe never blocks it.
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    @property
    def pid(self) -> int:
        """The sandbox's process id."""
        assert self.process is not None
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User+sys CPU-seconds the sandbox process has used so far (all its threads)."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the sandbox's unauthenticated admin API (`/_sandbox/…`)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.endpoints['braze']}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def segment_id(self, name: str = "All Users") -> str:
        """The id of a seeded Braze segment, by name."""
        request = urllib.request.Request(
            f"{self.endpoints['braze']}/segments/list?page=0",
            headers={"Authorization": f"Bearer {self.endpoints['key']}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            segments = json.loads(response.read())["segments"]
        return str(next(s["id"] for s in segments if s["name"] == name))


# -- PostgreSQL ----------------------------------------------------------------------------------

STORES = ("sqlite", "postgresql")


def _pg_cluster_module() -> ModuleType:
    """tests/pg_cluster.py, imported by path (the tests import it as a top-level module)."""
    spec = importlib.util.spec_from_file_location("pg_cluster", REPO / "tests" / "pg_cluster.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _proc_cpu(pid: int, *, reaped: bool = False) -> float:
    """User+sys CPU-seconds of `pid` (with `reaped`, also of the children it has waited for)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / CLOCK_TICKS


class PgServer:
    """A throwaway PostgreSQL server for a bench (fsync off, 64 MB shared buffers: the tests')."""

    def __init__(self) -> None:
        module = _pg_cluster_module()
        self.password: str = module.PASSWORD
        self.cluster: Any = module.PgCluster()
        self.empty_bytes = 0

    def __enter__(self) -> PgServer:
        self.cluster.start()
        # What a database holds before bctui's schema (template1's catalogs, ~7.5 MB): left out
        # of a store's size, as SQLite's file has no such part.
        name = self.create_database()
        self.empty_bytes = self.database_bytes(name)
        self.drop_database(name)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cluster.stop()

    def postmaster(self) -> int:
        """The postmaster's process id (first line of postmaster.pid)."""
        data = Path(self.cluster._data)
        return int((data / "postmaster.pid").read_text().split("\n", 1)[0])

    def cpu_seconds(self) -> float:
        """CPU-seconds of every server process so far: the postmaster with the backends it has
        reaped (cutime) plus the live ones (a backend's CPU moves from live to reaped on exit)."""
        root = self.postmaster()
        total = _proc_cpu(root, reaped=True)
        try:
            children = Path(f"/proc/{root}/task/{root}/children").read_text().split()
        except OSError:
            children = []
        return total + sum(_proc_cpu(int(c)) for c in children)

    def create_database(self, template: str = "") -> str:
        """A new database owned by `bctui` (a copy of `template` when given); its name."""
        if not template:
            return str(self.cluster.create_database())
        name = f"t_{os.urandom(6).hex()}"
        self.cluster.admin(f"CREATE DATABASE {name} TEMPLATE {template} OWNER bctui")
        return name

    def drop_database(self, name: str) -> None:
        """Drop `name` (its connections are gone: the bctui children have exited)."""
        self.cluster.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def database_bytes(self, name: str) -> int:
        """`pg_database_size` of `name`."""
        return int(self.cluster.admin(f"SELECT pg_database_size('{name}')").strip())

    def url(self, name: str) -> str:
        """The store URL of `name`, without its password."""
        return str(self.cluster.url(name, password=False))


# -- measuring a child ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What one child process cost: wall time, CPU-seconds, memory, and the sandbox's CPU."""

    wall: float
    user: float
    sys: float
    max_rss_mib: float
    tree_rss_mib: float
    sandbox_cpu: float = float("nan")
    machine_cpu: float = float("nan")
    pg_cpu: float = float("nan")

    @property
    def cpu(self) -> float:
        """User + sys CPU-seconds of the child and the children it waited for."""
        return self.user + self.sys


@dataclass(frozen=True)
class Child:
    """A finished child: its usage and what it printed."""

    usage: Usage
    stdout: str
    stderr: str


def machine_cpu_seconds() -> float:
    """CPU-seconds every process on the machine has used (busy time of all cores) so far."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def _tree_rss(pid: int) -> int:
    """Resident bytes of `pid` and every descendant (0 once it has gone)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += int(Path(f"/proc/{current}/statm").read_text().split()[1]) * PAGE_SIZE
            for task in Path(f"/proc/{current}/task").iterdir():
                pending.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


class _TreeSampler(threading.Thread):
    """Samples the summed RSS of a process tree every `interval` seconds; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak = pid, interval, 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            self.peak = max(self.peak, _tree_rss(self.pid))


# A child's ru_maxrss starts at the RSS of the process that forked it (Linux keeps the high-water
# mark of the old memory map across exec), so children are started by this small, long-lived
# spawner rather than by the harness, whose own RSS grows with the data it prepares.
SPAWNER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["stdout"], "wb") as out, open(job["stderr"], "wb") as err:
        started = time.perf_counter()
        child = subprocess.Popen(job["argv"], stdout=out, stderr=err, env=job["env"],
                                 cwd=job["cwd"])
        print(json.dumps({"pid": child.pid}), flush=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps({"returncode": child.returncode, "wall": wall, "user": usage.ru_utime,
                      "sys": usage.ru_stime, "maxrss_kib": usage.ru_maxrss}), flush=True)
"""
_spawner: subprocess.Popen[str] | None = None


def _spawn() -> subprocess.Popen[str]:
    global _spawner
    if _spawner is None or _spawner.poll() is not None:
        _spawner = subprocess.Popen(
            [sys.executable, "-c", SPAWNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    return _spawner


def run_child(
    command: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    sandbox: Sandbox | None = None,
    accept: Sequence[int] = (0,),
    pg: PgServer | None = None,
) -> Child:
    """Run `command` to its end and measure it; raises if its exit code is not in `accept`."""
    spawner = _spawn()
    assert spawner.stdin is not None and spawner.stdout is not None
    with tempfile.TemporaryDirectory(prefix="bctui-bench-child-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        job = {"argv": list(command), "env": dict(os.environ if env is None else env)}
        job |= {"cwd": str(REPO), "stdout": str(out), "stderr": str(err)}
        before = sandbox.cpu_seconds() if sandbox else float("nan")
        pg_before = pg.cpu_seconds() if pg else float("nan")
        machine_before = machine_cpu_seconds()
        spawner.stdin.write(json.dumps(job) + "\n")
        spawner.stdin.flush()
        sampler = _TreeSampler(json.loads(spawner.stdout.readline())["pid"])
        sampler.start()
        result = json.loads(spawner.stdout.readline())
        sandbox_cpu = sandbox.cpu_seconds() - before if sandbox else float("nan")
        pg_cpu = pg.cpu_seconds() - pg_before if pg else float("nan")
        machine_cpu = machine_cpu_seconds() - machine_before
        sampler.done.set()
        sampler.join()
        stdout = out.read_text(errors="replace")
        stderr = err.read_text(errors="replace")
    if result["returncode"] not in accept:
        raise RuntimeError(
            f"{' '.join(command)} failed ({result['returncode']}):\n{stderr[-4000:]}"
        )
    usage = Usage(
        wall=result["wall"],
        user=result["user"],
        sys=result["sys"],
        max_rss_mib=result["maxrss_kib"] / 1024,
        tree_rss_mib=max(sampler.peak / MIB, result["maxrss_kib"] / 1024),
        sandbox_cpu=sandbox_cpu,
        machine_cpu=machine_cpu,
        pg_cpu=pg_cpu,
    )
    return Child(usage, stdout, stderr)


# -- a bench workspace ---------------------------------------------------------------------------

EXPORT_ATTRIBUTES = 8  # property mappings; with the profile id and a static text: 10 attributes


def write_config(path: Path, box: Sandbox, audience: str, store_url: str = "") -> None:
    """A connection to the sandbox with an import goal (5 mappings) and an export goal (10); the
    store is SQLite in the state directory, or `store_url` (its password from BENCH_PG_PASSWORD)."""
    ends = box.endpoints
    mappings = "\n".join(
        f'  {{ source = "property", value = "attr_{k}", braze = "bench_attr_{k}" }},'
        for k in range(EXPORT_ATTRIBUTES)
    )
    store = ""
    if store_url:
        store = f'[store]\nurl = "{store_url}"\npassword = "env:BENCH_PG_PASSWORD"\n'
    path.write_text(f"""{store}
[[segment]]
name = "everyone"
match = "all"
rules = []

[[connection]]
name = "Bench"
[connection.braze]
endpoint = "{ends["braze"]}"
api_key = "env:BENCH_BRAZE_KEY"
[connection.s3]
access_key_id = "{ends["key_id"]}"
secret_access_key = "env:BENCH_S3_SECRET"
bucket = "{ends["bucket"]}"
endpoint_url = "{ends["s3"]}"

[[connection.goal]]
type = "import"
name = "import"
audience = {{ segment_id = "{audience}", name = "All Users" }}
allow_create = true
identifiers = [[{{ braze = "external_id", property = "external_id" }}]]
mappings = [
  {{ braze = "first_name", property = "first_name", strategy = "set" }},
  {{ braze = "email", property = "email", strategy = "set" }},
  {{ braze = "country", property = "country", strategy = "set" }},
  {{ braze = "custom_attributes.loyalty_points", property = "points", strategy = "sum" }},
  {{ braze = "custom_attributes.favorite_categories", property = "interests", strategy = "add" }},
]
wait = {{ poll_seconds = 0.5, quiet_seconds = {QUIET_SECONDS}, timeout_minutes = 30 }}

[[connection.goal]]
type = "export"
name = "export"
segment = "everyone"
allow_create = true
identifiers = [[{{ property = "external_id", braze = "external_id" }}]]
mappings = [
{mappings}
  {{ source = "profile_id", braze = "bc_profile_id" }},
  {{ source = "static", value = "bench", braze = "bc_source" }},
]
""")


def export_records(count: int, prefix: str, seed: int) -> Iterator[dict[str, Any]]:
    """Profiles for the export goal: an external id and `attr_0`…`attr_7` (text and numbers)."""
    rng = random.Random(seed)
    for i in range(count):
        record: dict[str, Any] = {"external_id": f"{prefix}{i:08d}"}
        for k in range(EXPORT_ATTRIBUTES):
            record[f"attr_{k}"] = rng.randrange(1_000_000) if k % 2 else f"v{rng.random():.6f}"
        yield record


FIRST = ["anna", "bram", "chloe", "daan", "emma", "finn", "greta", "hugo", "iris", "jens"]
FIRST += ["katja", "lars", "mila", "noah", "olga", "piet", "quinn", "rosa", "sven", "tess"]
LAST = ["jansen", "de vries", "bakker", "visser", "smit", "meyer", "schmidt", "müller", "dubois"]
LAST += ["martin", "rossi", "garcía", "novak", "kowalski", "nielsen", "berg"]
COUNTRIES = ["NL", "DE", "BE", "FR", "GB", "US", "ES", "IT", "PL", "SE"]
CITIES = [f"city-{i:02d}" for i in range(50)]
INTERESTS = ["running", "cycling", "cooking", "travel", "music", "film", "gaming", "books"]
INTERESTS += ["fashion", "tech", "gardening", "photography"]
TAGS = ["vip", "newsletter", "b2b", "churn-risk", "app-user", "store-visitor", "loyalty", "new"]


def load_records(count: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    """Profiles for `profiles load`: e-mail, names, place, numbers, a date, a flag, 2 lists.

    Nine single values plus one to three interests and up to two tags: about 12 values each.
    """
    rng = random.Random(seed)
    for i in range(count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        yield {
            "email": f"{first}.{last.replace(' ', '')}.{i}@example.com",
            "first_name": first.title(),
            "last_name": last.title(),
            "country": rng.choice(COUNTRIES),
            "city": rng.choice(CITIES),
            "lifetime_value": round(rng.uniform(0, 5000), 2),
            "orders": rng.randint(0, 80),
            "signup_date": f"20{rng.randint(15, 25)}-{rng.randint(1, 12):02d}-"
            f"{rng.randint(1, 28):02d}",
            "newsletter": rng.random() < 0.4,
            "interests": rng.sample(INTERESTS, rng.randint(1, 3)),
            "tags": rng.sample(TAGS, rng.randint(0, 2)),
        }


def write_jsonl(path: Path, records: Iterator[dict[str, Any]]) -> Path:
    """Write records as JSON lines; returns `path`."""
    with path.open("wb") as out:
        chunk: list[bytes] = []
        for record in records:
            chunk.append(orjson.dumps(record))
            if len(chunk) == 10_000:
                out.write(b"\n".join(chunk) + b"\n")
                chunk = []
        if chunk:
            out.write(b"\n".join(chunk) + b"\n")
    return path


@dataclass
class Workspace:
    """A temporary directory with a bench config for `box` and a state directory; the store is
    SQLite in it, or, with `pg`, a new database of that server."""

    root: Path
    box: Sandbox
    pg: PgServer | None = None
    state: Path = field(init=False)
    config: Path = field(init=False)
    env: dict[str, str] = field(init=False)
    database: str = field(init=False, default="")

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state, self.config = self.root / "state", self.root / "connections.toml"
        self.env = {
            **os.environ,
            "BENCH_BRAZE_KEY": self.box.endpoints["key"],
            "BENCH_S3_SECRET": self.box.endpoints["secret"],
        }
        if self.pg is not None:
            self.database = self.pg.create_database()
            self.env["BENCH_PG_PASSWORD"] = self.pg.password
        self._write_config()

    def _write_config(self) -> None:
        url = self.pg.url(self.database) if self.pg is not None else ""
        write_config(self.config, self.box, self.box.segment_id("All Users"), url)

    @property
    def store(self) -> str:
        """The store's kind: "sqlite" or "postgresql"."""
        return "sqlite" if self.pg is None else "postgresql"

    def drop(self) -> None:
        """Remove the workspace and its store (the PostgreSQL database too)."""
        if self.pg is not None and self.database:
            self.pg.drop_database(self.database)
        shutil.rmtree(self.root, ignore_errors=True)

    def bctui(self, *args: str, accept: Sequence[int] = (0,)) -> Child:
        """Run `bctui --config … --state-dir … ARGS` as a measured child."""
        command = [sys.executable, "-m", "bctui", "--config", str(self.config)]
        command += ["--state-dir", str(self.state), *args]
        return run_child(command, env=self.env, sandbox=self.box, accept=accept, pg=self.pg)

    def load(self, data: Path, match: str = "external_id") -> Child:
        """`bctui profiles load DATA --match MATCH --json`."""
        return self.bctui("profiles", "load", str(data), "--match", match, "--json")

    def run_goal(
        self, goal: str, *extra: str, accept: Sequence[int] = (0,)
    ) -> tuple[Child, dict[str, Any], dict[str, Any]]:
        """`bctui run Bench --goal GOAL --json`: the child, the goal's counts, the summary."""
        child = self.bctui("run", "Bench", "--goal", goal, "--json", *extra, accept=accept)
        summary = json.loads(child.stdout)
        return child, summary["goals"][goal], summary

    def use_state(self, template: Workspace) -> None:
        """Replace the state (directory, and PostgreSQL database: `CREATE DATABASE … TEMPLATE`)
        with a copy of `template`'s, a store prepared once."""
        shutil.rmtree(self.state, ignore_errors=True)
        shutil.copytree(template.state, self.state)
        if self.pg is not None:
            self.pg.drop_database(self.database)
            self.database = self.pg.create_database(template=template.database)
            self._write_config()

    def store_bytes(self) -> int:
        """Bytes of the store: the SQLite db file plus its -wal, or `pg_database_size`."""
        if self.pg is not None:
            return self.pg.database_bytes(self.database) - self.pg.empty_bytes
        db = self.state / "profiles.db"
        return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())


@contextmanager
def scratch(prefix: str = "bctui-bench-") -> Iterator[Path]:
    """A temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def merge_window(log: Path, goal: str = "import") -> float:
    """Seconds from the first file being merged to the goal's end, less the quiet period."""
    first = end = 0.0
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "phase" and event.get("phase") == "merging" and not first:
            first = event["ts"]
        if event["type"] == "goal_finished" and event.get("goal") == goal:
            end = event["ts"]
    return end - first - QUIET_SECONDS if first and end else float("nan")


# -- figures -------------------------------------------------------------------------------------


def figures(usage: Usage, count: int, seconds: float | None = None) -> dict[str, float]:
    """The common columns of one row: seconds, rate, CPU (total and per 1M), RSS, sandbox CPU.

    `seconds` is the time the rate is computed over (a goal's own time); the process wall time
    (with Python's start-up) is a column of its own.
    """
    seconds = usage.wall if seconds is None else seconds
    return {
        "s": seconds,
        "wall s": usage.wall,
        "/s": count / seconds if seconds > 0 else float("nan"),
        "CPU-s": usage.cpu,
        "CPU-s/1M": usage.cpu / count * 1_000_000 if count else float("nan"),
        "RSS MiB": usage.max_rss_mib,
        "tree RSS MiB": usage.tree_rss_mib,
        "sandbox CPU-s": usage.sandbox_cpu,
        "PG CPU-s": usage.pg_cpu,
        # Cores busy over the run, bctui, the sandbox and PostgreSQL together: near 2.0 the
        # machine bounds it.
        "cores": (usage.cpu + _or_zero(usage.sandbox_cpu) + _or_zero(usage.pg_cpu)) / usage.wall,
        # Cores busy on the whole machine: above `cores`, other work shared the two cores.
        "machine": usage.machine_cpu / usage.wall,
    }


def _or_zero(value: float) -> float:
    return 0.0 if math.isnan(value) else value


FORMATS = {
    "s": "{:.2f}",
    "merge s": "{:.2f}",
    "wall s": "{:.2f}",
    "/s": "{:,.0f}",
    "merge /s": "{:,.0f}",
    "% ceiling": "{:.1f}%",
    "CPU-s": "{:.2f}",
    "CPU-s/1M": "{:.1f}",
    "RSS MiB": "{:.0f}",
    "tree RSS MiB": "{:.0f}",
    "sandbox CPU-s": "{:.2f}",
    "PG CPU-s": "{:.2f}",
    "cores": "{:.2f}",
    "machine": "{:.2f}",
    "store MB/1M": "{:.0f}",
    "429s": "{:,.0f}",
    "ratio": "{:.1f}x",
    "passes": "{:.0f}",
    "data points": "{:,.0f}",
}


class Table:
    """Rows of figures collected over repeats; prints each run and the medians side by side."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.rows: dict[str, list[dict[str, float]]] = {}

    def add(self, label: str, row: dict[str, float], *, echo: bool = True) -> None:
        """Record one run of row `label` (printed at once when `echo`)."""
        self.rows.setdefault(label, []).append(row)
        if echo:
            cells = ", ".join(f"{k} {_cell(k, v)}" for k, v in row.items())
            print(f"  [{label} run {len(self.rows[label])}] {cells}", file=sys.stderr, flush=True)

    def medians(self) -> dict[str, dict[str, float]]:
        """The median of every column of every row."""
        result: dict[str, dict[str, float]] = {}
        for label, runs in self.rows.items():
            columns = dict.fromkeys(k for run in runs for k in run)
            result[label] = {
                k: statistics.median(r[k] for r in runs if k in r and r[k] == r[k])
                if any(k in r and r[k] == r[k] for r in runs)
                else float("nan")
                for k in columns
            }
        return result

    def print(self) -> None:
        """Print the medians as a table on stdout."""
        medians = self.medians()
        columns = list(dict.fromkeys(k for row in medians.values() for k in row))
        cells = {label: [_cell(c, row.get(c)) for c in columns] for label, row in medians.items()}
        widths = [
            max(len(c), *(len(r[i]) for r in cells.values())) + 2 for i, c in enumerate(columns)
        ]
        first = max(len(label) for label in medians) + 1
        runs = max(len(r) for r in self.rows.values())
        print(f"\n{self.title} (median of {runs} run{'s' if runs > 1 else ''})")
        print(" " * first + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)))
        for label, row in cells.items():
            line = "".join(f"{v:>{w}}" for v, w in zip(row, widths, strict=True))
            print(f"{label:<{first}}{line}")
        sys.stdout.flush()


def _cell(column: str, value: float | None) -> str:
    if value is None or value != value:
        return "-"
    return FORMATS.get(column, "{:,.2f}").format(value)


def common_arguments(
    parser: argparse.ArgumentParser, *, profiles: int, latencies: Sequence[float], repeat: int
) -> None:
    """--profiles, --latency-ms and --repeat, the options every script takes."""
    parser.add_argument(
        "--profiles", type=int, nargs="+", default=[profiles], help=f"sizes (default {profiles})"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        nargs="+",
        default=list(latencies),
        help=f"latencies the sandbox adds to each answer (default {' '.join(map(str, latencies))})",
    )
    parser.add_argument("--repeat", type=int, default=repeat, help=f"runs (default {repeat})")
    store_argument(parser)


def store_argument(parser: argparse.ArgumentParser) -> None:
    """--store sqlite|postgresql (several: run side by side, alternating)."""
    parser.add_argument(
        "--store",
        nargs="+",
        choices=STORES,
        default=["sqlite"],
        help="stores to run on, alternating (default sqlite; postgresql starts a throwaway server)",
    )


@contextmanager
def pg_server(stores: Sequence[str]) -> Iterator[PgServer | None]:
    """A throwaway PostgreSQL server when `stores` names postgresql, else None."""
    if "postgresql" not in stores:
        yield None
        return
    with PgServer() as server:
        yield server


def machine() -> str:
    """One line about the machine and the code: cores, CPU, Python, git commit."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({model}), Python {sys.version.split()[0]}, "
        f"bctui at {commit or '?'}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
