"""The engine's own tables in the store: run history, per-goal progress, watermarks, import jobs
and the files they applied, what each export goal last sent, and the profiles it must retry.

Keeping them in the profile store means an import file's profile writes and the record that the
file was applied commit in one transaction, and an export batch's "last sent" values commit with
the watermark that passes them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from bctui.store import ProfileStore
from bctui.store.transaction import Transaction

COMPONENT: Final = "engine"

MIGRATIONS: Final = (
    (
        """CREATE TABLE run (
            id TEXT PRIMARY KEY,
            connection TEXT NOT NULL,
            started_at REAL NOT NULL,
            ended_at REAL,
            state TEXT NOT NULL,
            dry_run INTEGER NOT NULL DEFAULT 0,
            full INTEGER NOT NULL DEFAULT 0,
            goals TEXT NOT NULL DEFAULT '[]',
            pid INTEGER NOT NULL DEFAULT 0,
            error TEXT NOT NULL DEFAULT '',
            summary TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX run_connection ON run (connection, started_at)",
        # One row per goal of a run: its state, counts so far and, for exports, how far the
        # in-order delivered prefix of the delta has come (`cursor`, a change sequence).
        """CREATE TABLE run_goal (
            run_id TEXT NOT NULL,
            goal TEXT NOT NULL,
            position INTEGER NOT NULL,
            type TEXT NOT NULL,
            state TEXT NOT NULL,
            counts TEXT NOT NULL DEFAULT '{}',
            data_points INTEGER NOT NULL DEFAULT 0,
            seconds REAL NOT NULL DEFAULT 0,
            error TEXT NOT NULL DEFAULT '',
            cursor INTEGER,
            upper INTEGER,
            PRIMARY KEY (run_id, goal)
        )""",
        "CREATE TABLE watermark (goal_key TEXT PRIMARY KEY, seq INTEGER NOT NULL, updated_at REAL)",
        # An import's export request, kept until the goal finishes so a rerun resumes it.
        """CREATE TABLE import_job (
            goal_key TEXT PRIMARY KEY,
            segment_id TEXT NOT NULL,
            object_prefix TEXT NOT NULL,
            requested_at REAL NOT NULL,
            fields TEXT NOT NULL,
            first_file_at REAL,
            files_seen INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE import_file (
            object_prefix TEXT NOT NULL,
            key TEXT NOT NULL,
            goal_key TEXT NOT NULL,
            applied_at REAL NOT NULL,
            counts TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (object_prefix, key)
        ) WITHOUT ROWID""",
        """CREATE TABLE export_sent (
            goal_key TEXT NOT NULL,
            profile_id TEXT NOT NULL,
            attrs BLOB NOT NULL,
            PRIMARY KEY (goal_key, profile_id)
        ) WITHOUT ROWID""",
        """CREATE TABLE export_failure (
            goal_key TEXT NOT NULL,
            profile_id TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1,
            run_id TEXT NOT NULL,
            PRIMARY KEY (goal_key, profile_id)
        ) WITHOUT ROWID""",
    ),
    (
        # The Braze identifiers each profile was last sent under: when they change, Braze knows
        # the profile as another user, who has none of the attributes sent before.
        "ALTER TABLE export_sent ADD COLUMN ids BLOB",
    ),
)

RUNNING: Final = "RUNNING"
FINISHED: Final = "FINISHED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
PENDING: Final = "PENDING"
TERMINAL: Final = (FINISHED, FAILED, CANCELLED)


def migrate(store: ProfileStore) -> None:
    """Create or update the engine's tables."""
    store.migrate(COMPONENT, MIGRATIONS)


def goal_key(connection: str, goal: str) -> str:
    """Watermarks and sent values belong to one goal of one connection."""
    return f"{connection.casefold()}\x1f{goal.casefold()}"


# -- runs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """One row of run history."""

    id: str
    connection: str
    started_at: float
    state: str
    ended_at: float | None = None
    dry_run: bool = False
    full: bool = False
    goals: list[str] = field(default_factory=list)
    pid: int = 0
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


_RUN_COLUMNS: Final = (
    "id, connection, started_at, state, ended_at, dry_run, full, goals, pid, error, summary"
)


def _run(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        bool(row[5]),
        bool(row[6]),
        orjson.loads(row[7]),
        row[8],
        row[9],
        orjson.loads(row[10]),
    )


def insert_run(tx: Transaction, run: RunRecord, goals: Sequence[tuple[str, str]]) -> None:
    """Record a new run and its goals (name, type) as PENDING."""
    tx.execute(
        f"INSERT INTO run ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run.id,
            run.connection,
            run.started_at,
            run.state,
            run.ended_at,
            run.dry_run,
            run.full,
            orjson.dumps(run.goals),
            run.pid,
            run.error,
            orjson.dumps(run.summary),
        ),
    )
    tx.executemany(
        "INSERT INTO run_goal (run_id, goal, position, type, state) VALUES (?, ?, ?, ?, ?)",
        [(run.id, name, i, kind, PENDING) for i, (name, kind) in enumerate(goals)],
    )


def reopen_run(tx: Transaction, run_id: str, pid: int) -> None:
    """Mark an interrupted run as running again, under a new process."""
    tx.execute(
        "UPDATE run SET state = ?, pid = ?, ended_at = NULL WHERE id = ?", (RUNNING, pid, run_id)
    )


def finish_run(
    tx: Transaction, run_id: str, state: str, error: str, summary: dict[str, Any]
) -> None:
    """The run's final state and summary."""
    tx.execute(
        "UPDATE run SET state = ?, error = ?, summary = ?, ended_at = ? WHERE id = ?",
        (state, error, orjson.dumps(summary), time.time(), run_id),
    )


def get_run(store: ProfileStore, run_id: str) -> RunRecord | None:
    """A run by id, or by a unique prefix of its id."""
    rows = store.query(
        f"SELECT {_RUN_COLUMNS} FROM run WHERE id = ? OR id LIKE ? ESCAPE '\\' "
        "ORDER BY started_at DESC LIMIT 2",
        (run_id, _like_prefix(run_id)),
    ).fetchall()
    exact = [r for r in rows if r[0] == run_id]
    if exact:
        return _run(exact[0])
    return _run(rows[0]) if len(rows) == 1 else None


def list_runs(
    store: ProfileStore, connection: str | None = None, limit: int = 50
) -> list[RunRecord]:
    """Newest first."""
    if connection is None:
        rows = store.query(
            f"SELECT {_RUN_COLUMNS} FROM run ORDER BY started_at DESC LIMIT ?", (limit,)
        )
    else:
        rows = store.query(
            f"SELECT {_RUN_COLUMNS} FROM run WHERE connection = ? ORDER BY started_at DESC LIMIT ?",
            (connection, limit),
        )
    return [_run(r) for r in rows.fetchall()]


def interrupted_run(store: ProfileStore, connection: str) -> RunRecord | None:
    """The connection's latest real (not dry) run, if it never reached a final state.

    Only called while holding the connection's lock, so a RUNNING row here belongs to a process
    that died.
    """
    row = store.query(
        f"SELECT {_RUN_COLUMNS} FROM run WHERE connection = ? AND dry_run = 0 "
        "ORDER BY started_at DESC LIMIT 1",
        (connection,),
    ).fetchone()
    if row is None:
        return None
    run = _run(row)
    return run if run.state == RUNNING else None


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


# -- per-goal progress ------------------------------------------------------------------------


@dataclass
class GoalState:
    """A goal's progress within a run, persisted so a resumed run carries on from it."""

    goal: str
    type: str
    state: str = PENDING
    counts: dict[str, int] = field(default_factory=dict)
    data_points: int = 0
    seconds: float = 0.0
    error: str = ""
    cursor: int | None = None
    upper: int | None = None


def goal_states(store: ProfileStore, run_id: str) -> list[GoalState]:
    """A run's goals in order."""
    rows = store.query(
        "SELECT goal, type, state, counts, data_points, seconds, error, cursor, "
        "upper FROM run_goal WHERE run_id = ? ORDER BY position",
        (run_id,),
    )
    return [
        GoalState(r[0], r[1], r[2], orjson.loads(r[3]), r[4], r[5], r[6], r[7], r[8])
        for r in rows.fetchall()
    ]


def save_goal(tx: Transaction, run_id: str, state: GoalState) -> None:
    """Persist a goal's progress (inside the caller's transaction)."""
    tx.execute(
        "UPDATE run_goal SET state = ?, counts = ?, data_points = ?, seconds = ?, error = ?, "
        "cursor = ?, upper = ? WHERE run_id = ? AND goal = ?",
        (
            state.state,
            orjson.dumps(state.counts),
            state.data_points,
            state.seconds,
            state.error,
            state.cursor,
            state.upper,
            run_id,
            state.goal,
        ),
    )


# -- watermarks -------------------------------------------------------------------------------


def watermark(store: ProfileStore, key: str) -> int:
    """The change sequence an export goal has delivered up to (0: never ran)."""
    row = store.query("SELECT seq FROM watermark WHERE goal_key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def set_watermark(tx: Transaction, key: str, seq: int) -> None:
    """Move the watermark forward (never back)."""
    tx.execute(
        "INSERT INTO watermark (goal_key, seq, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (goal_key) DO UPDATE SET seq = max(seq, excluded.seq), "
        "updated_at = excluded.updated_at",
        (key, seq, time.time()),
    )


# -- import jobs and applied files ---------------------------------------------------------------


@dataclass(frozen=True)
class ImportJob:
    """A segment export Braze was asked for, not yet fully applied."""

    goal_key: str
    segment_id: str
    object_prefix: str
    requested_at: float
    fields: list[str]
    first_file_at: float | None = None
    files_seen: int = 0


def import_job(store: ProfileStore, key: str) -> ImportJob | None:
    """The goal's unfinished export request, if any."""
    row = store.query(
        "SELECT goal_key, segment_id, object_prefix, requested_at, fields, "
        "first_file_at, files_seen FROM import_job WHERE goal_key = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    return ImportJob(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5], row[6])


def save_import_job(tx: Transaction, job: ImportJob) -> None:
    """Record (or update) the goal's export request."""
    tx.execute(
        "INSERT INTO import_job (goal_key, segment_id, object_prefix, requested_at, fields, "
        "first_file_at, files_seen) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (goal_key) DO UPDATE "
        "SET segment_id = excluded.segment_id, object_prefix = excluded.object_prefix, "
        "requested_at = excluded.requested_at, fields = excluded.fields, "
        "first_file_at = excluded.first_file_at, files_seen = excluded.files_seen",
        (
            job.goal_key,
            job.segment_id,
            job.object_prefix,
            job.requested_at,
            orjson.dumps(job.fields),
            job.first_file_at,
            job.files_seen,
        ),
    )


def clear_import_job(tx: Transaction, key: str) -> None:
    """The goal's import is complete: the next run requests a new export."""
    tx.execute("DELETE FROM import_job WHERE goal_key = ?", (key,))


def applied_files(store: ProfileStore, object_prefix: str) -> set[str]:
    """Keys of the export files already applied for this export."""
    rows = store.query("SELECT key FROM import_file WHERE object_prefix = ?", (object_prefix,))
    return {r[0] for r in rows.fetchall()}


def mark_file_applied(
    tx: Transaction, key: str, object_prefix: str, file_key: str, counts: dict[str, int]
) -> None:
    """Record, in the transaction that applied it, that a file was applied."""
    tx.execute(
        "INSERT INTO import_file (object_prefix, key, goal_key, applied_at, counts) "
        "VALUES (?, ?, ?, ?, ?)",
        (object_prefix, file_key, key, time.time(), orjson.dumps(counts)),
    )


# -- what exports last sent, and what they must retry ------------------------------------------


@dataclass(frozen=True)
class Sent:
    """What an export goal last delivered for one profile: every mapped attribute's value, and
    the identifiers it went under (None for deliveries recorded before identifiers were)."""

    attrs: dict[str, Any]
    ids: dict[str, Any] | None


def sent_attributes(store: ProfileStore, key: str, profile_ids: Sequence[str]) -> dict[str, Sent]:
    """For each profile that was sent before, what this goal last sent it."""
    out: dict[str, Sent] = {}
    for start in range(0, len(profile_ids), 500):
        chunk = profile_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = store.query(
            f"SELECT profile_id, attrs, ids FROM export_sent WHERE goal_key = ? "
            f"AND profile_id IN ({marks})",
            (key, *chunk),
        )
        out.update(
            (pid, Sent(orjson.loads(attrs), None if ids is None else orjson.loads(ids)))
            for pid, attrs, ids in rows.fetchall()
        )
    return out


def record_sent(
    tx: Transaction, key: str, sent: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]
) -> None:
    """Remember the full attribute values now in Braze for these profiles, and the identifiers
    they were sent under."""
    sort = orjson.OPT_SORT_KEYS
    # A generator, not a list: each orjson result holds a ~4 KiB buffer, so encoding a whole
    # checkpoint's rows up front would cost hundreds of MiB.
    tx.executemany(
        "INSERT INTO export_sent (goal_key, profile_id, attrs, ids) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (goal_key, profile_id) DO UPDATE SET attrs = excluded.attrs, "
        "ids = excluded.ids",
        (
            (key, pid, orjson.dumps(attrs, option=sort), orjson.dumps(ids, option=sort))
            for pid, attrs, ids in sent
        ),
    )


def failed_profiles(store: ProfileStore, key: str, run_id: str) -> list[str]:
    """Profiles whose last delivery to this goal was rejected by an earlier run, to retry.

    Rejections of run `run_id` itself (recorded before it was interrupted and resumed) wait for
    the next run, as they would had it not been interrupted.
    """
    rows = store.query(
        "SELECT profile_id FROM export_failure WHERE goal_key = ? AND run_id != ? "
        "ORDER BY profile_id",
        (key, run_id),
    )
    return [r[0] for r in rows.fetchall()]


def record_failures(
    tx: Transaction, key: str, run_id: str, failures: Iterable[tuple[str, str]]
) -> None:
    """Profiles Braze rejected, with its reason."""
    tx.executemany(
        "INSERT INTO export_failure (goal_key, profile_id, error, attempts, run_id) "
        "VALUES (?, ?, ?, 1, ?) ON CONFLICT (goal_key, profile_id) DO UPDATE SET "
        "error = excluded.error, attempts = attempts + 1, run_id = excluded.run_id",
        [(key, pid, error, run_id) for pid, error in failures],
    )


def clear_failures(tx: Transaction, key: str, profile_ids: Iterable[str]) -> None:
    """These profiles were delivered (or no longer qualify): stop retrying them."""
    tx.executemany(
        "DELETE FROM export_failure WHERE goal_key = ? AND profile_id = ?",
        [(key, pid) for pid in profile_ids],
    )


def failure_reasons(store: ProfileStore, key: str, limit: int = 20) -> list[tuple[str, str, int]]:
    """Some of the goal's outstanding failures: (profile id, reason, attempts)."""
    rows = store.query(
        "SELECT profile_id, error, attempts FROM export_failure WHERE goal_key = ? "
        "ORDER BY attempts DESC, profile_id LIMIT ?",
        (key, limit),
    )
    return [(r[0], r[1], r[2]) for r in rows.fetchall()]
