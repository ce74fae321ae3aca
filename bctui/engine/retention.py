"""Run history retention: which runs are old enough (or far enough back) to forget, and removing
their history rows and log files together. `bctui runs prune` and the scheduler share it.

A run still recorded as running (live, or interrupted and waiting to be resumed) is never
pruned: the next run of its connection needs its rows to carry on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bctui.engine.models import Retention
from bctui.engine.paths import Paths
from bctui.engine.runs import state as st
from bctui.engine.runs.launch import stderr_path
from bctui.engine.runs.runner import RUN_ID_PATTERN, log_path
from bctui.store import Store

DAY: Final = 86400.0
_CHUNK: Final = 500  # ids per DELETE statement (well under SQLite's variable limit)


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed (or, for a dry run, would remove)."""

    runs: tuple[str, ...] = ()  # run ids whose history rows go
    files: tuple[Path, ...] = ()  # run logs and stderr files that go (with orphans)
    bytes: int = 0  # their size
    dry_run: bool = False
    by_connection: dict[str, int] = field(default_factory=dict)  # runs pruned per connection

    def describe(self) -> str:
        """'pruned 12 runs (3 connections), 24 files, 1.2 MB' (or 'would prune …')."""
        verb = "would prune" if self.dry_run else "pruned"
        if not self.runs and not self.files:
            return "nothing to prune"
        conns = len(self.by_connection)
        return (
            f"{verb} {_plural(len(self.runs), 'run')} "
            f"({_plural(conns, 'connection')}), {_plural(len(self.files), 'file')}, "
            f"{_size(self.bytes)}"
        )


def prunable_runs(
    store: Store, retention: Retention, *, now: float | None = None
) -> list[st.RunRecord]:
    """Runs past the retention: started more than `days` ago, or older than the newest `runs`
    of their connection; never one recorded as running."""
    st.migrate(store)
    now = time.time() if now is None else now
    cutoff = now - retention.days * DAY
    rows = store.query(
        "SELECT id, connection, started_at, state FROM run ORDER BY connection, started_at DESC, "
        "id DESC"
    ).fetchall()
    out: list[st.RunRecord] = []
    rank: dict[str, int] = {}
    for run_id, connection, started_at, state in rows:
        position = rank.get(connection, 0)
        rank[connection] = position + 1
        if state == st.RUNNING:
            continue
        if position >= retention.runs or started_at < cutoff:
            out.append(st.RunRecord(run_id, connection, started_at, state))
    return out


def prune(
    paths: Paths,
    store: Store,
    retention: Retention,
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> PruneReport:
    """Delete the history rows (run, run_goal) and the log files of runs past the retention,
    and run files no history row knows that are older than `days`."""
    now = time.time() if now is None else now
    doomed = prunable_runs(store, retention, now=now)
    ids = [r.id for r in doomed]
    if ids and not dry_run:
        deleted = _delete_rows(store, ids)
        doomed = [r for r in doomed if r.id in deleted]
        ids = [r.id for r in doomed]
    files = [p for run_id in ids for p in _run_files(paths, run_id) if p.exists()]
    files += _orphans(paths, store, set(ids), now - retention.days * DAY)
    size = 0
    for path in files:
        with contextlib.suppress(OSError):
            size += path.stat().st_size
            if not dry_run:
                path.unlink()
    counts: dict[str, int] = {}
    for record in doomed:
        counts[record.connection] = counts.get(record.connection, 0) + 1
    return PruneReport(tuple(ids), tuple(files), size, dry_run, counts)


def _delete_rows(store: Store, ids: Sequence[str]) -> set[str]:
    """Delete the runs' rows in one transaction; the ids actually deleted (a run resumed since
    it was chosen is running again, and stays)."""
    deleted: set[str] = set()
    with store.transaction() as tx:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = tx.execute(
                f"SELECT id FROM run WHERE id IN ({marks}) AND state != ?", (*chunk, st.RUNNING)
            ).fetchall()
            gone = [r[0] for r in rows]
            if not gone:
                continue
            marks = ",".join("?" * len(gone))
            tx.execute(f"DELETE FROM run_goal WHERE run_id IN ({marks})", gone)
            tx.execute(f"DELETE FROM run WHERE id IN ({marks})", gone)
            deleted.update(gone)
    return deleted


def _run_files(paths: Paths, run_id: str) -> list[Path]:
    return [log_path(paths, run_id), stderr_path(paths, run_id)]


def _orphans(paths: Paths, store: Store, skip: set[str], cutoff: float) -> list[Path]:
    """Run files (`<run id>.jsonl` / `.stderr`) with no history row, untouched since `cutoff`:
    left by a run whose rows went, or that failed before recording itself."""
    if not paths.runs_dir.is_dir():
        return []
    known = {r[0] for r in store.query("SELECT id FROM run").fetchall()}
    out: list[Path] = []
    for path in sorted(paths.runs_dir.iterdir()):
        run_id, _, suffix = path.name.partition(".")
        if suffix not in ("jsonl", "stderr") or not RUN_ID_PATTERN.fullmatch(run_id):
            continue
        if run_id in known or run_id in skip:
            continue
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                out.append(path)
    return out


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _size(count: int) -> str:
    if count < 1000:
        return f"{count} bytes"
    value = float(count)
    for unit in ("kB", "MB"):
        value /= 1000
        if value < 1000:
            return f"{value:.1f} {unit}"
    return f"{value / 1000:.1f} GB"
