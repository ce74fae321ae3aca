"""`run_connection`: the one way a sync runs, for the CLI, the TUI's "Run now" and the scheduler.

It takes the connection's lock, resumes the connection's interrupted run if there is one (goals it
finished are not repeated), runs the goals in order (imports, then exports), writes every event to
the run's JSON-lines log, keeps the run's history in the store, and returns the summary.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bctui.engine.models import Config, Connection, ExportGoal, Goal, ImportGoal
from bctui.engine.paths import Paths
from bctui.engine.runs import shared
from bctui.engine.runs import state as st
from bctui.engine.runs.context import COUNT_NAMES, Cancelled, CancelToken, GoalRun
from bctui.engine.runs.events import (
    Event,
    EventLog,
    GoalFinished,
    LogLine,
    RunFinished,
    RunStarted,
)
from bctui.engine.runs.lock import Lock, run_lock
from bctui.engine.secrets import SecretsFile
from bctui.engine.stores import open_configured_store
from bctui.errors import BctuiError, NotFoundError, UsageError
from bctui.store import Store

if TYPE_CHECKING:
    from bctui.engine.runs.exporter import Exporter
    from bctui.engine.runs.importer import Importer


@dataclass(frozen=True)
class RunOptions:
    """How to run a connection."""

    goal: str | None = None
    dry_run: bool = False
    full: bool = False
    # The most requests in flight; the export keeps as many as the rate limit allows at the
    # measured latency (1,000 requests/s at 300 ms needs about 375), at most this.
    concurrency: int = 512
    # The id of the run asked for (a launcher picks it to follow the run); when an interrupted
    # run is resumed first, that one keeps its own id and the asked run gets this one after it.
    run_id: str | None = None
    started_by: str = "cli"  # one of state.STARTED_BY: cli | ui | scheduler
    # What a budgeted export's first pass may hold (`budget.hold_limit`: by default
    # $BCTUI_BUDGET_HOLD_BYTES or budget.HOLD_BYTES).
    budget_hold_bytes: int | None = None


@dataclass(frozen=True)
class RunResult:
    """What a run ended with; `summary` is what `bctui run --json` prints."""

    run_id: str
    state: str
    error: str
    summary: dict[str, Any]
    log_path: Path


RUN_ID_PATTERN = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def new_run_id() -> str:
    """Sortable and unique: `20260127-013000-3f9a1c` (UTC start time, random suffix)."""
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


def check_run_id(run_id: str) -> str:
    """`run_id` if it has new_run_id()'s form, else a UsageError."""
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise UsageError(
            f'"{run_id}" is not a run id',
            fix="a run id looks like 20260127-013000-3f9a1c (UTC date, time, 6 hex digits)",
        )
    return run_id


def check_started_by(started_by: str) -> str:
    """`started_by` if it is one of state.STARTED_BY, else a UsageError."""
    if started_by not in st.STARTED_BY:
        raise UsageError(
            f'"{started_by}" is not what starts a run',
            fix="use one of " + ", ".join(st.STARTED_BY),
        )
    return started_by


def log_path(paths: Paths, run_id: str) -> Path:
    """Where a run's event log lives."""
    return paths.runs_dir / f"{run_id}.jsonl"


def find_connection(config: Config, name: str) -> Connection:
    """The named connection, or a NotFoundError listing the names there are."""
    conn = config.connection(name)
    if conn is None:
        names = ", ".join(f'"{c.name}"' for c in config.connections) or "none are configured"
        raise NotFoundError(
            f'no connection named "{name}"',
            fix=f"use one of the connection names in connections.toml ({names})",
        )
    return conn


def select_goals(conn: Connection, only: str | None) -> list[Goal]:
    """The goals to run, imports before exports; `only` names one goal (even a disabled one)."""
    if only is not None:
        goal = conn.goal(only)
        if goal is None:
            names = ", ".join(f'"{g.name}"' for g in conn.goals) or "it has none"
            raise NotFoundError(
                f'connection "{conn.name}" has no goal named "{only}"',
                fix=f"use one of its goals ({names})",
            )
        return [goal]
    goals = [g for g in conn.goals if g.enabled]
    if not goals:
        raise BctuiError(
            f'connection "{conn.name}" has no enabled goals',
            fix="add a [[connection.goal]] or set enabled = true on one",
        )
    return [g for g in goals if g.type == "import"] + [g for g in goals if g.type == "export"]


def install_signal_handlers(cancel: CancelToken) -> Callable[[], None]:
    """SIGINT/SIGTERM cancel the run at its next safe point; returns a function that restores
    the previous handlers."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        cancel.cancel_from_signal()

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def run_connection(
    config: Config,
    paths: Paths,
    name: str,
    options: RunOptions = RunOptions(),
    *,
    listener: Callable[[Event], None] | None = None,
    cancel: CancelToken | None = None,
) -> RunResult:
    """Run (or resume) one connection; raises LockedError when another run holds it."""
    conn = find_connection(config, name)
    goals = select_goals(conn, options.goal)
    check_started_by(options.started_by)
    asked_id = check_run_id(options.run_id) if options.run_id else new_run_id()
    paths.ensure_state_dir()
    store = open_configured_store(config.store, paths)
    try:
        st.migrate(store)
        if st.run_exists(store, asked_id):
            raise UsageError(
                f"run id {asked_id} is already in the run history",
                fix="leave --run-id out (a new id is made), or give an id not used before",
            )
        cancel = cancel or CancelToken()
        # On PostgreSQL a lease: should it be lost (the server unreachable for longer than the
        # lease, and another host took over), the run stops at its next safe point.
        lock = run_lock(paths.locks_dir, conn.name, store, on_lost=cancel.cancel)
        run_id = asked_id
        lock.acquire(run_id)
        try:
            first = _Run(config, paths, conn, goals, options, store, lock, run_id, listener, cancel)
            result = first.execute()
            if first.resumed_instead and result.state == st.FINISHED and not cancel.cancelled:
                # The interrupted run came first; now the run that was asked for.
                run_id = asked_id
                lock.acquire_as(run_id)
                result = _Run(
                    config, paths, conn, goals, options, store, lock, run_id, listener, cancel
                ).execute()
            return result
        finally:
            lock.release()
    finally:
        store.close()


class _Run:
    """One run, from the lock being taken to the final event."""

    def __init__(
        self,
        config: Config,
        paths: Paths,
        conn: Connection,
        goals: list[Goal],
        options: RunOptions,
        store: Store,
        lock: Lock,
        run_id: str,
        listener: Callable[[Event], None] | None,
        cancel: CancelToken,
    ) -> None:
        self.config = config
        self.paths = paths
        self.conn = conn
        self.goals = goals
        self.options = options
        self.store = store
        self.lock = lock
        self.run_id = run_id
        self.listener = listener
        self.cancel = cancel
        self.started = time.time()
        self.notes: list[tuple[str, str]] = []
        self.states: dict[str, st.GoalState] = {}
        self.resumed_instead = False  # resumed an interrupted run that differs from the one asked

    def execute(self) -> RunResult:
        resumed = self._prepare()
        db = shared.shared_db(self.store)
        sink = shared.EventSink(db, self.run_id) if db is not None else None
        log = EventLog(log_path(self.paths, self.run_id), self.listener, sink=sink)
        try:
            log.emit(
                RunStarted(
                    run_id=self.run_id,
                    connection=self.conn.name,
                    goals=[g.name for g in self.goals],
                    pid=os.getpid(),
                    dry_run=self.options.dry_run,
                    full=self.full,
                    resumed=resumed,
                    started_by=self.options.started_by,
                )
            )
            for level, message in self.notes:
                log.emit(LogLine(level=level, message=message))
            state, error = self._run_goals(log)
            summary = self._summary(state, error)
            with self.store.transaction() as tx:
                st.finish_run(tx, self.run_id, state, error, summary)
            if not self.options.dry_run:
                self._notify(log, state, error, summary)
            log.emit(RunFinished(run_id=self.run_id, state=state, error=error, summary=summary))
        finally:
            log.close()
        return RunResult(self.run_id, state, error, summary, log_path(self.paths, self.run_id))

    @property
    def full(self) -> bool:
        return self.options.full

    def _notify(self, log: EventLog, state: str, error: str, summary: dict[str, Any]) -> None:
        """Send the connection's notification mail; a problem is logged and kept in the summary
        as "notify_error", never raised (a mail never changes the run's outcome)."""
        from bctui.engine import notify  # smtplib and email: only a run that mails needs them

        path = log_path(self.paths, self.run_id)
        report = notify.RunReport(
            connection=self.conn.name,
            run_id=self.run_id,
            state=state,
            error=error,
            started_by=self.options.started_by,
            summary=summary,
            log_tail=[
                *notify.log_tail(path, notify.LOG_TAIL_LINES - 1),
                notify.finished_line(self.run_id, state, error),
            ],
        )
        try:
            result = notify.notify_run(
                self.config, self.conn, report, SecretsFile(self.paths.secrets)
            )
        except Exception as exc:  # a bug in the mail code must not fail a finished run
            result = notify.NotifyResult(True, problem=f"internal error: {type(exc).__name__}")
        if result is None:
            return
        if result.sent_to:
            log.emit(
                LogLine(
                    level="info",
                    message="notification e-mail sent to " + ", ".join(result.sent_to),
                )
            )
        if result.problem:
            log.emit(LogLine(level="warning", message=f"notification e-mail: {result.problem}"))
            if result.due:
                summary["notify_error"] = result.problem
                with self.store.transaction() as tx:
                    st.finish_run(tx, self.run_id, state, error, summary)

    def _prepare(self) -> bool:
        """Record the run, or pick up the connection's interrupted one; True when resuming."""
        stale = self.lock.stale
        if stale is not None:
            self.notes.append(
                (
                    "warning",
                    f"cleared a stale lock left by {_on(stale.host)}PID {stale.pid} "
                    f"(run {stale.run_id}), which is gone",
                )
            )
        with self.store.transaction() as tx:
            for run in st.list_runs(self.store, self.conn.name, limit=20):
                if run.dry_run and run.state == st.RUNNING:
                    st.finish_run(tx, run.id, st.FAILED, "interrupted", run.summary)
        interrupted = (
            None if self.options.dry_run else st.interrupted_run(self.store, self.conn.name)
        )
        if interrupted is not None:
            return self._resume(interrupted)
        record = st.RunRecord(
            self.run_id,
            self.conn.name,
            self.started,
            st.RUNNING,
            dry_run=self.options.dry_run,
            full=self.full,
            goals=[g.name for g in self.goals],
            pid=os.getpid(),
            started_by=self.options.started_by,
        )
        with self.store.transaction() as tx:
            st.insert_run(tx, record, [(g.name, g.type) for g in self.goals])
        return False

    def _resume(self, interrupted: st.RunRecord) -> bool:
        """Carry on with a run whose process died: same id, same goals, same options.

        When the run asked for differs (other goals, or --full), it follows once this one ends.
        """
        asked = [g.name for g in self.goals]
        self.resumed_instead = asked != interrupted.goals or self.options.full != interrupted.full
        if self.resumed_instead:
            self.notes.append(
                (
                    "info",
                    "the run asked for ("
                    + ", ".join(asked)
                    + (", full" if self.options.full else "")
                    + ") starts when the interrupted one has finished",
                )
            )
        self.run_id = interrupted.id
        self.lock.acquire_as(self.run_id)
        # The resumed run is the one that was interrupted: its options, and what started it.
        self.options = dataclasses.replace(
            self.options,
            goal=None,
            dry_run=False,
            full=interrupted.full,
            run_id=interrupted.id,
            started_by=interrupted.started_by,
        )
        goals: list[Goal] = []
        for name in interrupted.goals:
            goal = self.conn.goal(name)
            if goal is None:
                self.notes.append(
                    (
                        "warning",
                        f'goal "{name}" of the interrupted run is no longer '
                        "in connections.toml; it is skipped",
                    )
                )
            else:
                goals.append(goal)
        self.goals = goals
        with self.store.transaction() as tx:
            st.reopen_run(tx, self.run_id, os.getpid())
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(interrupted.started_at))
        self.notes.append(
            (
                "warning",
                f"resuming run {self.run_id} (started {when}), which was "
                "interrupted; goals it finished are not repeated",
            )
        )
        return True

    def _run_goals(self, log: EventLog) -> tuple[str, str]:
        self.states.update((g.goal, g) for g in st.goal_states(self.store, self.run_id))
        run_state, run_error = st.FINISHED, ""
        for goal in self.goals:
            gs = self.states.setdefault(goal.name, st.GoalState(goal.name, goal.type))
            if gs.state == st.FINISHED:
                log.emit(
                    LogLine(
                        level="info",
                        goal=goal.name,
                        message="finished before the interruption; not repeated",
                    )
                )
                self._goal_finished(log, goal, gs)
                continue
            if self.cancel.cancelled:
                break
            state, error = self._run_goal(log, goal, gs)
            if state == st.CANCELLED:
                return st.CANCELLED, "cancelled"
            if state == st.FAILED:
                run_state = st.FAILED
                run_error = run_error or f'goal "{goal.name}": {error}'
        if self.cancel.cancelled:
            return st.CANCELLED, "cancelled"
        return run_state, run_error

    def _run_goal(self, log: EventLog, goal: Goal, gs: st.GoalState) -> tuple[str, str]:
        key = st.goal_key(self.conn.name, goal.name)
        run = GoalRun(
            self.run_id,
            self.conn,
            key,
            self.store,
            SecretsFile(self.paths.secrets),
            log.emit,
            self.cancel,
            gs,
            dry_run=self.options.dry_run,
            full=self.full,
        )
        for name in COUNT_NAMES:
            gs.counts.setdefault(name, 0)
        gs.state, gs.error = st.RUNNING, ""
        self._save(run)
        started = time.monotonic()
        base = gs.seconds
        try:
            self._goal_runner(run, goal).execute()
            gs.state = st.FINISHED
        except Cancelled:
            gs.state, gs.error = st.CANCELLED, "cancelled"
        except BctuiError as exc:
            gs.state, gs.error = st.FAILED, exc.render()
            run.log(exc.render(), "error")
        except Exception as exc:  # a bug: record it, keep the run's bookkeeping consistent
            gs.state, gs.error = st.FAILED, f"internal error: {type(exc).__name__}: {exc}"
            run.log(gs.error, "error")
            for line in traceback.format_exc().splitlines():
                run.log(line, "debug")
        gs.seconds = base + time.monotonic() - started
        self._save(run)
        self._goal_finished(log, goal, gs)
        return gs.state, gs.error

    def _goal_runner(self, run: GoalRun, goal: Goal) -> Importer | Exporter:
        # Loaded here, not at the top: they bring in httpx and boto3, which `bctui runs` and the
        # TUI's start-up do not need.
        from bctui.engine.runs.exporter import Exporter
        from bctui.engine.runs.importer import Importer

        if isinstance(goal, ImportGoal):
            return Importer(run, goal, self.config.connections)
        assert isinstance(goal, ExportGoal)
        segment = self.config.segment(goal.segment)
        if segment is None:  # validation guarantees it; kept for a config edited mid-run
            raise BctuiError(f'export goal "{goal.name}" names no existing segment')
        from bctui.engine.runs.budget import goal_budget, hold_limit

        # A connection's budget is shared in goal order: what the export goals before this one
        # spent (or, in a dry run, would send), the next cannot.
        spent = 0
        for earlier in self.goals[: self.goals.index(goal)]:
            if isinstance(earlier, ExportGoal) and earlier.name in self.states:
                spent += self.states[earlier.name].data_points
        return Exporter(
            run,
            goal,
            segment,
            self.config.segments,
            concurrency=self.options.concurrency,
            budget=goal_budget(self.conn, goal, spent),
            budget_hold=hold_limit(self.options.budget_hold_bytes),
        )

    def _save(self, run: GoalRun) -> None:
        if not self.options.dry_run:
            with self.store.transaction() as tx:
                run.save(tx)

    @staticmethod
    def _goal_finished(log: EventLog, goal: Goal, gs: st.GoalState) -> None:
        log.emit(
            GoalFinished(
                goal=goal.name,
                goal_type=goal.type,
                state=gs.state,
                counts={k: gs.counts.get(k, 0) for k in COUNT_NAMES}
                | {k: gs.counts[k] for k in st.EXTRA_COUNTS if gs.counts.get(k)},
                data_points=gs.data_points,
                seconds=round(gs.seconds, 3),
                error=gs.error,
            )
        )

    def _summary(self, state: str, error: str) -> dict[str, Any]:
        goals: dict[str, Any] = {}
        for goal in self.goals:
            gs = self.states.setdefault(goal.name, st.GoalState(goal.name, goal.type))
            goals[goal.name] = self._goal_summary(gs)
        data_points = sum(g["data_points"] for g in goals.values())
        ended = time.time()
        return {
            "id": self.run_id,
            "connection": self.conn.name,
            "state": state,
            "error": error,
            "dry_run": self.options.dry_run,
            "full": self.full,
            "started_at": _iso(self.started),
            "ended_at": _iso(ended),
            "seconds": round(ended - self.started, 3),
            "data_points": data_points,
            "goals": goals,
            "log": str(log_path(self.paths, self.run_id)),
        }

    @staticmethod
    def _goal_summary(gs: st.GoalState) -> dict[str, Any]:
        out = {
            "type": gs.type,
            "state": gs.state,
            **{k: gs.counts.get(k, 0) for k in COUNT_NAMES},
            **{k: gs.counts[k] for k in st.EXTRA_COUNTS if k in gs.counts},
            "data_points": gs.data_points,
            "seconds": round(gs.seconds, 3),
            "error": gs.error,
        }
        if gs.budget is not None:  # the estimate against the budget, and what came of it
            out["budget"] = dict(gs.budget, sent=gs.data_points)
        return out


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _on(host: str) -> str:
    return f"host {host}, " if host else ""
