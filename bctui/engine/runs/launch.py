"""Starting a run as its own process: `bctui run` detached from the launcher (the TUI, the
scheduler), so closing the launcher, a SIGHUP or a dropped SSH session does not end the run."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bctui
from bctui.engine.paths import Paths
from bctui.engine.runs.runner import (
    RunOptions,
    check_run_id,
    check_started_by,
    log_path,
    new_run_id,
)
from bctui.errors import BctuiError

# Variables that would make the child's Rich output act as if it had a terminal.
_TERMINAL_VARIABLES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")


@dataclass(frozen=True)
class RunHandle:
    """A run started as its own process."""

    pid: int
    run_id: str  # the id of the run asked for
    connection: str
    log_path: Path  # log_path(paths, run_id)
    stderr_path: Path  # where the process's own output goes
    started_at: float = 0.0  # when it was launched (epoch seconds)


def stderr_path(paths: Paths, run_id: str) -> Path:
    """Where a launched run's own stderr goes (tracebacks, errors before its log exists)."""
    return paths.runs_dir / f"{run_id}.stderr"


def run_command(paths: Paths, connection: str, options: RunOptions, run_id: str) -> list[str]:
    """The `python -m bctui run` command line for these options."""
    argv = [
        sys.executable,
        "-m",
        "bctui",
        "--config",
        str(paths.config.absolute()),
        "--state-dir",
        str(paths.state_dir.absolute()),
        "run",
        "--run-id",
        run_id,
        "--started-by",
        options.started_by,
    ]
    if options.goal is not None:
        argv.append(f"--goal={options.goal}")  # `=`: a goal name may start with a dash
    if options.dry_run:
        argv.append("--dry-run")
    if options.full:
        argv.append("--full")
    argv += ["--concurrency", str(options.concurrency)]
    return [*argv, "--", connection]  # after `--`, a name that starts with a dash is a name


def launch_run(
    paths: Paths,
    connection: str,
    options: RunOptions = RunOptions(),  # noqa: B008 - frozen, so sharing it is safe
    *,
    started_by: str = "ui",
) -> RunHandle:
    """Start `bctui run` for the connection in a new session of its own; returns at once."""
    run_id = check_run_id(options.run_id) if options.run_id else new_run_id()
    options = dataclasses.replace(options, run_id=run_id, started_by=check_started_by(started_by))
    paths.ensure_state_dir()
    paths.runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    err_path = stderr_path(paths, run_id)
    started_at = time.time()
    try:
        with open(err_path, "ab") as err:
            process = subprocess.Popen(
                run_command(paths, connection, options, run_id),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=paths.state_dir,
                env=_child_env(),
                close_fds=True,
                start_new_session=True,  # no controlling terminal; the launcher's signals miss it
            )
    except OSError as exc:
        raise BctuiError(
            f'cannot start a run of "{connection}": {exc.strerror or exc}',
            where=sys.executable,
            fix="check that this Python can still be run",
        ) from None
    # The launcher is the parent: reap the child when it ends, or it stays a zombie that still
    # answers os.kill(pid, 0) as alive.
    threading.Thread(target=process.wait, name=f"bctui-run-{process.pid}", daemon=True).start()
    return RunHandle(
        process.pid, run_id, connection, log_path(paths, run_id), err_path, started_at
    )


def _child_env() -> dict[str, str]:
    """The launcher's environment, without what would make the child act as if on a terminal,
    and with this bctui importable (the child runs the same code as its launcher)."""
    env = {k: v for k, v in os.environ.items() if k not in _TERMINAL_VARIABLES}
    source = str(Path(bctui.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env
