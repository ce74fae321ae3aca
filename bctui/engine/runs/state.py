"""The engine's own tables in the store: run history, per-goal progress, watermarks, import jobs
and the files they applied, what each export goal last sent, and the profiles it must retry.

Keeping them in the profile store means an import file's profile writes and the record that the
file was applied commit in one transaction, and an export batch's "last sent" values commit with
the watermark that passes them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from bctui.store import Migration, Store
from bctui.store.base import StoreTransaction
from bctui.store.rows import Joined

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
    (
        # What started each run: the CLI, the TUI (a detached `bctui run`) or the scheduler.
        "ALTER TABLE run ADD COLUMN started_by TEXT NOT NULL DEFAULT 'cli'",
    ),
    (
        # The scheduler's last slot handled per connection (its folded name): every scheduled
        # time up to `slot` was run, skipped or predates the connection; `schedule` is the
        # schedule that slot belongs to, so an edited schedule starts afresh.
        """CREATE TABLE schedule_slot (
            connection TEXT PRIMARY KEY,
            slot REAL NOT NULL,
            handled_at REAL,
            schedule TEXT NOT NULL DEFAULT ''
        )""",
    ),
    (
        # The JSON type each property mapping of an export goal sends, decided at the goal's
        # first run (explicit, or inferred from the data) and kept, so it never flips with the
        # data; `property` is the property it was decided for (another one decides afresh).
        """CREATE TABLE export_type (
            goal_key TEXT NOT NULL,
            braze TEXT NOT NULL,
            property TEXT NOT NULL,
            type TEXT NOT NULL,
            decided_at REAL NOT NULL,
            PRIMARY KEY (goal_key, braze)
        ) WITHOUT ROWID""",
    ),
)

RUNNING: Final = "RUNNING"
FINISHED: Final = "FINISHED"
FAILED: Final = "FAILED"
CANCELLED: Final = "CANCELLED"
PENDING: Final = "PENDING"
TERMINAL: Final = (FINISHED, FAILED, CANCELLED)
COUNT_NAMES: Final = ("checked", "created", "updated", "unchanged", "skipped", "failed")
# Counts only some goals have, reported when they do: values a two-way import kept from being
# exported back (see `echo`).
EXTRA_COUNTS: Final = ("echo_suppressed",)
STARTED_BY: Final = ("cli", "ui", "scheduler")


def migrate(store: Store) -> None:
    """Create or update the engine's tables."""
    store.migrate(COMPONENT, MIGRATIONS if store.dialect == "sqlite" else _postgres(MIGRATIONS))
    from bctui.engine.runs import shared  # the lease and event tables, on PostgreSQL only

    shared.migrate(store)


def _postgres(steps: Sequence[Migration]) -> tuple[Migration, ...]:
    """The steps for PostgreSQL: the store translates SQLite's types; `full` needs quotes."""
    return tuple(
        tuple(
            re.sub(r"\bfull INTEGER\b", '"full" INTEGER', s) if isinstance(s, str) else s
            for s in step
        )
        for step in steps
    )


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
    started_by: str = "cli"  # one of STARTED_BY


# "full" is quoted: a reserved word in PostgreSQL.
_RUN_COLUMNS: Final = (
    'id, connection, started_at, state, ended_at, dry_run, "full", goals, pid, error, summary, '
    "started_by"
)


def _text(value: Any) -> str:
    """A JSON column's value as text (PostgreSQL takes no bytes for a TEXT column)."""
    return orjson.dumps(value).decode()


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
        row[11],
    )


def insert_run(tx: StoreTransaction, run: RunRecord, goals: Sequence[tuple[str, str]]) -> None:
    """Record a new run and its goals (name, type) as PENDING."""
    tx.execute(
        f"INSERT INTO run ({_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            run.id,
            run.connection,
            run.started_at,
            run.state,
            run.ended_at,
            int(run.dry_run),
            int(run.full),
            _text(run.goals),
            run.pid,
            run.error,
            _text(run.summary),
            run.started_by,
        ),
    )
    tx.executemany(
        "INSERT INTO run_goal (run_id, goal, position, type, state) VALUES (?, ?, ?, ?, ?)",
        [(run.id, name, i, kind, PENDING) for i, (name, kind) in enumerate(goals)],
    )


def reopen_run(tx: StoreTransaction, run_id: str, pid: int) -> None:
    """Mark an interrupted run as running again, under a new process."""
    tx.execute(
        "UPDATE run SET state = ?, pid = ?, ended_at = NULL WHERE id = ?", (RUNNING, pid, run_id)
    )


def finish_run(
    tx: StoreTransaction, run_id: str, state: str, error: str, summary: dict[str, Any]
) -> None:
    """The run's final state and summary."""
    tx.execute(
        "UPDATE run SET state = ?, error = ?, summary = ?, ended_at = ? WHERE id = ?",
        (state, error, _text(summary), time.time(), run_id),
    )


def get_run(store: Store, run_id: str) -> RunRecord | None:
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


def run_exists(store: Store, run_id: str) -> bool:
    """Whether history has a run with exactly this id."""
    return store.query("SELECT 1 FROM run WHERE id = ?", (run_id,)).fetchone() is not None


def latest_runs(store: Store) -> dict[str, RunRecord]:
    """Each connection's newest run, by connection name as recorded (one query)."""
    rows = store.query(
        f"SELECT {', '.join('run.' + c.strip() for c in _RUN_COLUMNS.split(','))} FROM run "
        "JOIN (SELECT connection AS name, max(started_at) AS newest FROM run "
        "GROUP BY connection) latest "
        "ON run.connection = latest.name AND run.started_at = latest.newest "
        "ORDER BY run.id"
    ).fetchall()
    # Two runs of one connection started in the same instant: the later id (sorts last) wins.
    return {record.connection: record for record in map(_run, rows)}


def list_runs(
    store: Store, connection: str | None = None, limit: int = 50
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


def interrupted_run(store: Store, connection: str) -> RunRecord | None:
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
    # An export's data-point budget in this run, as the summary reports it (not persisted).
    budget: dict[str, Any] | None = None


def goal_states(store: Store, run_id: str) -> list[GoalState]:
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


def reported_goal_states(store: Store, run: RunRecord) -> list[GoalState]:
    """A run's goals as people read them. A dry run writes no progress to the store, so its
    goals come from its summary once it has ended."""
    goals = run.summary.get("goals") if run.dry_run else None
    if not isinstance(goals, dict) or not goals:
        return goal_states(store, run.id)
    return [
        GoalState(
            name,
            str(g.get("type", "")),
            str(g.get("state", PENDING)),
            {k: int(v) for k, v in g.items()
             if (k in COUNT_NAMES or k in EXTRA_COUNTS) and isinstance(v, int)},
            int(g.get("data_points", 0)),
            float(g.get("seconds", 0.0)),
            str(g.get("error", "")),
        )
        for name, g in goals.items()
        if isinstance(g, dict)
    ]


def save_goal(tx: StoreTransaction, run_id: str, state: GoalState) -> None:
    """Persist a goal's progress (inside the caller's transaction)."""
    tx.execute(
        "UPDATE run_goal SET state = ?, counts = ?, data_points = ?, seconds = ?, error = ?, "
        "cursor = ?, upper = ? WHERE run_id = ? AND goal = ?",
        (
            state.state,
            _text(state.counts),
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


def watermark(store: Store, key: str) -> int:
    """The change sequence an export goal has delivered up to (0: never ran)."""
    row = store.query("SELECT seq FROM watermark WHERE goal_key = ?", (key,)).fetchone()
    return int(row[0]) if row else 0


def set_watermark(tx: StoreTransaction, key: str, seq: int) -> None:
    """Move the watermark forward (never back)."""
    tx.execute(
        "INSERT INTO watermark (goal_key, seq, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (goal_key) DO UPDATE SET seq = CASE WHEN excluded.seq > watermark.seq "
        "THEN excluded.seq ELSE watermark.seq END, "
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


def import_job(store: Store, key: str) -> ImportJob | None:
    """The goal's unfinished export request, if any."""
    row = store.query(
        "SELECT goal_key, segment_id, object_prefix, requested_at, fields, "
        "first_file_at, files_seen FROM import_job WHERE goal_key = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    return ImportJob(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5], row[6])


def save_import_job(tx: StoreTransaction, job: ImportJob) -> None:
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
            _text(job.fields),
            job.first_file_at,
            job.files_seen,
        ),
    )


def clear_import_job(tx: StoreTransaction, key: str) -> None:
    """The goal's import is complete: the next run requests a new export."""
    tx.execute("DELETE FROM import_job WHERE goal_key = ?", (key,))


def applied_files(store: Store, object_prefix: str) -> set[str]:
    """Keys of the export files already applied for this export."""
    rows = store.query("SELECT key FROM import_file WHERE object_prefix = ?", (object_prefix,))
    return {r[0] for r in rows.fetchall()}


def mark_file_applied(
    tx: StoreTransaction, key: str, object_prefix: str, file_key: str, counts: dict[str, int]
) -> None:
    """Record, in the transaction that applied it, that a file was applied."""
    tx.execute(
        "INSERT INTO import_file (object_prefix, key, goal_key, applied_at, counts) "
        "VALUES (?, ?, ?, ?, ?)",
        (object_prefix, file_key, key, time.time(), _text(counts)),
    )


# -- what exports last sent, and what they must retry ------------------------------------------


SENT_JOIN_WIDTH: Final = 2


def sent_join(key: str) -> Joined:
    """What the goal last sent each profile (attrs and ids as stored, NULL when never), joined to
    the export's rows: `SENT_JOIN_WIDTH` columns."""
    return Joined(
        "LEFT JOIN export_sent s ON s.goal_key = ? AND s.profile_id = p.id", "s.attrs, s.ids",
        (key,),
    )


def encode_sent(sent: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]) -> bytes:
    """Delivered values (profile id, attributes, identifiers) as a JSON array, a batch at a time:
    small to keep until a checkpoint, and no Python left for the writer to do per row."""
    rows = [[pid, attrs, ids] for pid, attrs, ids in sent]
    return orjson.dumps(rows, option=orjson.OPT_SORT_KEYS)


def join_sent(chunks: Sequence[bytes], per_document: int = 32) -> list[str]:
    """`encode_sent` arrays joined into documents for `record_sent`, `per_document` arrays each
    (a few thousand rows: few statements, and little memory for SQLite to parse each)."""
    documents = []
    for start in range(0, len(chunks), per_document):
        group = chunks[start:start + per_document]
        joined = b",".join(chunk[1:-1] for chunk in group if len(chunk) > 2)
        if joined:
            documents.append((b"[" + joined + b"]").decode())
    return documents


def record_sent(
    tx: StoreTransaction, key: str, documents: Iterable[str], dialect: str = "sqlite"
) -> None:
    """Remember the full attribute values now in Braze for these profiles (`join_sent`), and
    the identifiers they were sent under.

    One statement per document: SQLite unpacks it itself, so a thread writing a checkpoint
    holds the GIL for none of its rows. `->` gives each value back as the compact JSON orjson
    wrote. On PostgreSQL, `json` (not jsonb) keeps each value's text as written; a profile
    twice in one document keeps its last values.
    """
    if dialect == "postgresql":
        tx.executemany(
            "INSERT INTO export_sent (goal_key, profile_id, attrs, ids) "
            "SELECT DISTINCT ON (e.value ->> 0) ?, e.value ->> 0, "
            "convert_to((e.value -> 1)::text, 'UTF8'), convert_to((e.value -> 2)::text, 'UTF8') "
            "FROM json_array_elements(?::json) WITH ORDINALITY AS e (value, n) "
            "ORDER BY e.value ->> 0, e.n DESC "
            "ON CONFLICT (goal_key, profile_id) DO UPDATE SET attrs = excluded.attrs, "
            "ids = excluded.ids",
            ((key, document) for document in documents),
        )
        return
    tx.executemany(
        "INSERT INTO export_sent (goal_key, profile_id, attrs, ids) "
        "SELECT ?, e.value ->> 0, CAST(e.value -> 1 AS BLOB), CAST(e.value -> 2 AS BLOB) "
        "FROM json_each(?) AS e WHERE true "
        "ON CONFLICT (goal_key, profile_id) DO UPDATE SET attrs = excluded.attrs, "
        "ids = excluded.ids",
        ((key, document) for document in documents),
    )


def failed_profiles(store: Store, key: str, run_id: str) -> list[str]:
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
    tx: StoreTransaction, key: str, run_id: str, failures: Iterable[tuple[str, str]]
) -> None:
    """Profiles Braze rejected, with its reason."""
    tx.executemany(
        "INSERT INTO export_failure (goal_key, profile_id, error, attempts, run_id) "
        "VALUES (?, ?, ?, 1, ?) ON CONFLICT (goal_key, profile_id) DO UPDATE SET "
        "error = excluded.error, attempts = export_failure.attempts + 1, run_id = excluded.run_id",
        [(key, pid, error, run_id) for pid, error in failures],
    )


def clear_failures(tx: StoreTransaction, key: str, profile_ids: Iterable[str]) -> None:
    """These profiles were delivered (or no longer qualify): stop retrying them."""
    tx.executemany(
        "DELETE FROM export_failure WHERE goal_key = ? AND profile_id = ?",
        [(key, pid) for pid in profile_ids],
    )


def failure_reasons(store: Store, key: str, limit: int = 20) -> list[tuple[str, str, int]]:
    """Some of the goal's outstanding failures: (profile id, reason, attempts)."""
    rows = store.query(
        "SELECT profile_id, error, attempts FROM export_failure WHERE goal_key = ? "
        "ORDER BY attempts DESC, profile_id LIMIT ?",
        (key, limit),
    )
    return [(r[0], r[1], r[2]) for r in rows.fetchall()]


def export_types(store: Store, key: str) -> dict[str, tuple[str, str]]:
    """The goal's kept mapping types: Braze attribute → (property, type)."""
    rows = store.query("SELECT braze, property, type FROM export_type WHERE goal_key = ?", (key,))
    return {r[0]: (r[1], r[2]) for r in rows.fetchall()}


def save_export_types(
    tx: StoreTransaction, key: str, types: Iterable[tuple[str, str, str]]
) -> None:
    """Keep these (Braze attribute, property, type) decisions for the goal."""
    now = time.time()
    tx.executemany(
        "INSERT INTO export_type (goal_key, braze, property, type, decided_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (goal_key, braze) DO UPDATE SET "
        "property = excluded.property, type = excluded.type, decided_at = excluded.decided_at",
        [(key, braze, prop, kind, now) for braze, prop, kind in types],
    )


# -- renames ---------------------------------------------------------------------------------
# A connection's and a goal's history is keyed by their names (run.connection, run_goal.goal)
# and by goal_key(); a rename moves those keys, inside the caller's one transaction.

GOAL_KEY_TABLES: Final = ("watermark", "import_job", "import_file", "export_sent", "export_failure",
                          "export_type")
_KEY_SEPARATOR: Final = "\x1f"


def recorded_names(store: Store, connection: str) -> list[str]:
    """The spellings of this connection's name in run history (names compare ignoring case)."""
    folded = connection.casefold()
    rows = store.query("SELECT DISTINCT connection FROM run").fetchall()
    return [r[0] for r in rows if str(r[0]).casefold() == folded]


def _key_range(connection: str) -> tuple[str, str]:
    """Every goal key of a connection lies in [low, high): its folded name, then the separator."""
    folded = connection.casefold()
    return folded + _KEY_SEPARATOR, folded + chr(ord(_KEY_SEPARATOR) + 1)


def connection_has_history(store: Store, connection: str) -> bool:
    """Whether runs, watermarks or any goal's records exist under this connection name."""
    if recorded_names(store, connection):
        return True
    low, high = _key_range(connection)
    return any(
        store.query(
            f"SELECT 1 FROM {table} WHERE goal_key >= ? AND goal_key < ? LIMIT 1", (low, high)
        ).fetchone()
        for table in GOAL_KEY_TABLES
    )


def goal_has_history(store: Store, connection: str, goal: str) -> bool:
    """Whether any run of the connection had this goal, or the goal has records."""
    key = goal_key(connection, goal)
    if any(
        store.query(f"SELECT 1 FROM {table} WHERE goal_key = ? LIMIT 1", (key,)).fetchone()
        for table in GOAL_KEY_TABLES
    ):
        return True
    return bool(_run_goal_rows(store, connection, goal))


def _run_goal_rows(store: Store, connection: str, goal: str) -> list[tuple[str, str]]:
    """(run id, goal name as recorded) of the connection's runs that had this goal."""
    names = recorded_names(store, connection)
    if not names:
        return []
    marks = ",".join("?" * len(names))
    rows = store.query(
        f"SELECT rg.run_id, rg.goal FROM run_goal rg JOIN run r ON r.id = rg.run_id "
        f"WHERE r.connection IN ({marks})",
        names,
    ).fetchall()
    folded = goal.casefold()
    return [(r[0], r[1]) for r in rows if str(r[1]).casefold() == folded]


def rename_connection_rows(tx: StoreTransaction, store: Store, old: str, new: str) -> None:
    """Move run history and every goal key of connection `old` to `new`."""
    names = recorded_names(store, old)
    if names:
        marks = ",".join("?" * len(names))
        tx.execute(f"UPDATE run SET connection = ? WHERE connection IN ({marks})", (new, *names))
    low, high = _key_range(old)
    new_prefix, _ = _key_range(new)
    if low == new_prefix:
        return  # a change of case only: goal keys are folded, so they stay as they are
    for table in GOAL_KEY_TABLES:
        tx.execute(
            f"UPDATE {table} SET goal_key = ? || substr(goal_key, ?) "
            "WHERE goal_key >= ? AND goal_key < ?",
            (new_prefix, len(low) + 1, low, high),
        )


def rename_goal_rows(
    tx: StoreTransaction, store: Store, connection: str, old: str, new: str
) -> None:
    """Move goal `old` of a connection to `new`: its goal key and its rows in run history."""
    old_key, new_key = goal_key(connection, old), goal_key(connection, new)
    if old_key != new_key:
        for table in GOAL_KEY_TABLES:
            tx.execute(f"UPDATE {table} SET goal_key = ? WHERE goal_key = ?", (new_key, old_key))
    rows = _run_goal_rows(store, connection, old)
    tx.executemany(
        "UPDATE run_goal SET goal = ? WHERE run_id = ? AND goal = ?",
        [(new, run_id, name) for run_id, name in rows],
    )
    folded = old.casefold()
    for run_id in {run_id for run_id, _ in rows}:
        row = store.query("SELECT goals FROM run WHERE id = ?", (run_id,)).fetchone()
        goals = [new if str(g).casefold() == folded else g for g in orjson.loads(row[0])]
        tx.execute("UPDATE run SET goals = ? WHERE id = ?", (_text(goals), run_id))


# -- what an import of the same workspace read (two-way sync, see `echo`) ------------------------


def _chunks(items: Iterable[str], size: int = 500) -> Iterator[list[str]]:
    """`items` in lists of at most `size`: bound parameters per statement on both backends."""
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _marks(count: int) -> str:
    return ",".join("?" * count)


def last_known(
    tx: StoreTransaction, keys: Sequence[str], profile_ids: Iterable[str]
) -> dict[str, tuple[str, dict[str, tuple[bytes, bytes | None]]]]:
    """Each profile's stored properties (JSON text) and, per export goal key, its `export_sent`
    row (attrs, ids) if any: a few queries for a chunk of an import's profiles, in its
    transaction (plain parameter lists, which both backends plan as index lookups)."""
    out: dict[str, tuple[str, dict[str, tuple[bytes, bytes | None]]]] = {}
    for ids_chunk in _chunks(profile_ids):
        rows = tx.execute(
            "SELECT p.id, p.properties, s.goal_key, s.attrs, s.ids FROM profile p "
            "LEFT JOIN export_sent s ON s.profile_id = p.id "
            f"AND s.goal_key IN ({_marks(len(keys))}) "
            f"WHERE p.id IN ({_marks(len(ids_chunk))})",
            (*keys, *ids_chunk),
        ).fetchall()
        for pid, props, key, attrs, ids in rows:
            found = out.setdefault(pid, (props, {}))
            if key is not None:
                found[1][key] = (bytes(attrs), None if ids is None else bytes(ids))
    return out


def stored_properties(tx: StoreTransaction, profile_ids: Iterable[str]) -> dict[str, str]:
    """Profiles' properties as stored (JSON text), by id, read in the caller's transaction."""
    out: dict[str, str] = {}
    for chunk in _chunks(profile_ids):
        rows = tx.execute(
            f"SELECT id, properties FROM profile WHERE id IN ({_marks(len(chunk))})", chunk
        ).fetchall()
        out.update((r[0], r[1]) for r in rows)
    return out


def record_known(tx: StoreTransaction, rows: Iterable[tuple[str, str, bytes, bytes]]) -> None:
    """(goal key, profile id, attrs, ids): what Braze holds for these profiles as an import
    read it, written into the export goals' `export_sent` records (encoded as `record_sent`)."""
    tx.executemany(
        "INSERT INTO export_sent (goal_key, profile_id, attrs, ids) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (goal_key, profile_id) DO UPDATE SET attrs = excluded.attrs, "
        "ids = excluded.ids",
        rows,
    )
