"""A throwaway PostgreSQL server on loopback for the tests: `initdb` in a temporary directory.

CI runs as root and `initdb` refuses root, so the cluster then belongs to the `postgres` user
(Debian's package creates it) and its programs run through `runuser`.
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

PASSWORD = "bctui-test-pw"
"""The password of the `bctui` role the tests connect as (not a secret: a throwaway cluster)."""


def pg_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (`initdb`, `pg_ctl`), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One PostgreSQL cluster: password login over TCP on 127.0.0.1, a role `bctui` (not a
    superuser, allowed to create databases), and one fresh database per `create_database`."""

    def __init__(self) -> None:
        bin_dir = pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL's server programs (initdb) are not installed")
        self._bin = bin_dir
        self._as_root = os.geteuid() == 0
        self._dir = Path(tempfile.mkdtemp(prefix="bctui-pg-", dir="/tmp"))
        self._data = self._dir / "data"
        self.port = _free_port()
        self.host = "127.0.0.1"
        self._owner = "postgres" if self._as_root else getpass.getuser()
        if self._as_root:
            shutil.chown(self._dir, user="postgres")
        self._dir.chmod(0o700)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self._bin / args[0]), *args[1:]]
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        """initdb, start the server and create the `bctui` role."""
        pwfile = self._dir / "pw"
        pwfile.write_text(PASSWORD)
        if self._as_root:
            shutil.chown(pwfile, user="postgres")
        self._run(
            "initdb", "-D", str(self._data), "-U", self._owner, "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} "
            f"-c unix_socket_directories={self._dir} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB"
        )
        self._run(
            "pg_ctl", "-D", str(self._data), "-o", options, "-l", str(self._dir / "log"),
            "-w", "start",
        )  # fmt: skip
        self.admin(f"CREATE ROLE bctui LOGIN CREATEDB PASSWORD '{PASSWORD}'")

    def stop(self) -> None:
        """Stop the server (immediately) and remove its files."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self._dir, ignore_errors=True)

    def admin(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the cluster's superuser over the Unix socket; psql's output."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return self._run(
                    "psql",
                    "-h", str(self._dir), "-p", str(self.port), "-U", self._owner,
                    "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql,
                ).stdout  # fmt: skip
            except FileNotFoundError:
                raise
            except subprocess.CalledProcessError as exc:
                if "starting up" not in exc.stderr or time.monotonic() > deadline:
                    raise RuntimeError(f"psql failed: {exc.stderr.strip()}") from exc
                time.sleep(0.1)

    def url(self, database: str, *, password: bool = True, user: str = "bctui") -> str:
        """A libpq URL for `database` as `user` (with the password in it unless told not)."""
        auth = f"{user}:{PASSWORD}" if password else user
        return f"postgresql://{auth}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str = "") -> str:
        """A new empty database owned by `bctui`; its name."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self.admin(f"CREATE DATABASE {name} OWNER bctui")
        return name
