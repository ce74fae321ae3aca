"""Export goals (store → Braze): the segment's changed profiles, their changed attributes, sent as
/users/track batches of 75, concurrently, paced by Braze's rate-limit headers.

Bookkeeping: what each delivered profile now holds in Braze, and the identifiers it went under,
is recorded with the goal (`export_sent`), rejected profiles go to a retry list
(`export_failure`), and the watermark only moves past a profile once every profile before it in
change order was delivered or rejected. Batches finish out of order, so the watermark follows the
longest finished prefix. A crash loses at most the bookkeeping of the last checkpoint interval:
those profiles are sent again by the resumed run. Attribute writes are idempotent, so Braze ends
up the same; only their data points are spent twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from bctui.braze import RetryPolicy, TrackResult, WaitEvent
from bctui.engine.clients import braze_client
from bctui.engine.models import ExportGoal, ExportMapping, IdentifierRules
from bctui.engine.runs import state as st
from bctui.engine.runs.context import Cancelled, GoalRun
from bctui.engine.runs.events import BatchSent, RateLimitWait
from bctui.engine.runs.faults import crash_point
from bctui.store import Profile
from bctui.store.model import permission_rank
from bctui.store.segments import SegmentDef, segment_sql

BATCH_SIZE: Final = 75
CHECKPOINT_SECONDS: Final = 1.0
LOOKUP_PAGE: Final = 500
# One batch of a long export may meet a run of 5xx answers or dropped connections: with the
# client's default six tries, one unlucky batch in a few thousand would fail the whole goal at
# 10-20% errors. Twelve tries (backoff capped at 30 s) ride out a few minutes of trouble.
EXPORT_RETRY: Final = RetryPolicy(max_attempts=12)


@dataclass
class Planned:
    """One profile's attribute object, with what is needed to record its delivery."""

    profile_id: str
    attrs: dict[str, Any]  # every mapped attribute's current value (None = empty)
    ids: dict[str, Any]  # the Braze identifiers it is sent under
    first_time: bool  # never delivered to this goal before
    data_points: int


class ExportBatch(list[dict[str, Any]]):
    """The attribute objects of one request, and the profiles they belong to (same order)."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number
        self.planned: list[Planned] = []
        self.upto = 0  # every profile up to this change sequence is settled once this batch is
        self.started = 0.0


def attribute_values(
    profile: Profile, segments: list[str], mappings: Iterable[ExportMapping]
) -> dict[str, Any]:
    """The Braze value of every mapped attribute for a profile (None when it has none).

    A property with one value is sent as that value, with several as an array; segments and
    viewed interactions are always arrays.
    """
    out: dict[str, Any] = {}
    for mapping in mappings:
        value: Any
        match mapping.source:
            case "property":
                values = profile.properties.get(mapping.value) or []
                value = values[0] if len(values) == 1 else (list(values) or None)
            case "profile_id":
                value = profile.id
            case "segments":
                value = sorted(segments) or None
            case "interactions_viewed":
                value = list(profile.interactions_viewed) or None
            case "permission_level":
                value = profile.permission_level
            case _:  # static
                value = mapping.value
        out[mapping.braze] = value
    return out


def identifiers_of(profile: Profile, rules: IdentifierRules) -> dict[str, Any] | None:
    """Braze identifiers from the first group whose properties all have a value, else None."""
    for group in rules:
        found: dict[str, Any] = {}
        for pair in group:
            values = profile.properties.get(pair.property)
            if not values:
                break
            value = str(values[0])
            if pair.braze == "user_alias":
                found["user_alias"] = {"alias_name": value, "alias_label": pair.label}
            else:
                found[pair.braze] = value
        else:
            return found
    return None


def changed_attributes(
    attrs: dict[str, Any], last: dict[str, Any] | None, *, everything: bool
) -> dict[str, Any]:
    """What to send: attributes whose value differs from what was last sent (all with
    `everything`); an attribute that became empty is sent as null so Braze removes it."""
    last = last or {}
    if everything:
        return {k: v for k, v in attrs.items() if v is not None or last.get(k) is not None}
    return {k: v for k, v in attrs.items() if v != last.get(k)}


@dataclass
class _Settled:
    """Delivery results waiting for the next checkpoint."""

    sent: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # retries that no longer qualify


class Exporter:
    """Runs one export goal."""

    def __init__(
        self,
        run: GoalRun,
        goal: ExportGoal,
        segment: SegmentDef,
        all_segments: tuple[SegmentDef, ...],
        *,
        concurrency: int = 192,
    ) -> None:
        self.run = run
        self.goal = goal
        self.segment = segment
        self.needs_segments = any(m.source == "segments" for m in goal.mappings)
        self.all_segments = all_segments if self.needs_segments else ()
        self.concurrency = concurrency
        self.min_rank = permission_rank(goal.min_permission_level)
        self.everything = run.full or goal.all_attributes
        self.update_only = not goal.allow_create
        self.examined = 0
        self.total = 0
        self.batch_number = 0
        self.unresolved: dict[int, int] = {}  # batch number → its `upto`, in send order
        self.finished: set[int] = set()
        self.settled = _Settled()
        self.last_checkpoint = time.monotonic()
        self.retry_ids: set[str] = set()
        self.has_failure_row: set[str] = set()
        self.resolved = 0  # every profile up to this change sequence is delivered or rejected
        self.last_seq = 0  # the change sequence of the last delta profile examined

    # -- the goal ------------------------------------------------------------------------------

    def execute(self) -> None:
        """Select, diff, send and record; resumable from the goal's persisted cursor."""
        run, gs = self.run, self.run.state
        if gs.cursor is None:
            gs.cursor = 0 if run.full else st.watermark(run.store, run.key)
            gs.upper = run.store.max_seq()
        else:
            run.log(f"resuming the export after change {gs.cursor} (of {gs.upper})")
        assert gs.upper is not None
        self.resolved = self.last_seq = gs.cursor
        run.phase("selecting", "full resync" if run.full else f"changes after {gs.cursor}")
        self.retry_ids = set(st.failed_profiles(run.store, run.key, run.run_id))
        # Every profile with a failure row (this run's too): delivering one clears its row.
        self.has_failure_row = set(st.failed_profiles(run.store, run.key, run_id=""))
        self.total = self._count_delta(gs.cursor, gs.upper) + len(self.retry_ids)
        run.log(
            f"{self.total:,} profile{'s' if self.total != 1 else ''} to check"
            + (f" ({len(self.retry_ids):,} rejected last time, retried)" if self.retry_ids else "")
        )
        if run.dry_run:
            for batch in self._plan():
                for planned in batch.planned:
                    self._count_delivered(planned)
            self.run.progress(self.examined, self.total)
            return
        try:
            asyncio.run(self._send_all())
        finally:
            self._checkpoint()  # keep what was delivered, whatever stopped the sending
        self.resolved = gs.upper
        self._checkpoint(final=True)
        crash_point("export.completed")

    def _count_delta(self, since: int, upper: int) -> int:
        sql, params = segment_sql(self.segment, correlated=True)
        row = self.run.store.query(
            f"SELECT count(*) FROM profile p WHERE p.seq > ? AND p.seq <= ? AND {sql}",
            (since, upper, *params),
        ).fetchone()
        return int(row[0])

    async def _send_all(self) -> None:
        braze = braze_client(
            self.run.connection,
            self.run.secrets,
            on_wait=self._on_wait,
            max_connections=self.concurrency,
            retry=EXPORT_RETRY,
        )
        main = asyncio.current_task()
        assert main is not None
        watcher = asyncio.create_task(self._watch_cancel(main))
        self.run.phase("sending", f"batches of up to {BATCH_SIZE}")
        try:
            async with braze as client:
                results = client.track_batches(self._abatches(), concurrency=self.concurrency)
                async with contextlib.aclosing(results):
                    async for batch, result in results:
                        self._settle(batch, result)
                        if time.monotonic() - self.last_checkpoint >= CHECKPOINT_SECONDS:
                            self._checkpoint()
        except asyncio.CancelledError:
            if self.run.cancel.cancelled:
                raise Cancelled() from None
            raise
        finally:
            watcher.cancel()

    async def _watch_cancel(self, main: asyncio.Task[Any]) -> None:
        while not self.run.cancel.cancelled:
            await asyncio.sleep(0.1)
        main.cancel()

    def _on_wait(self, event: WaitEvent) -> None:
        self.run.emit(
            RateLimitWait(
                goal=self.run.name, seconds=round(event.seconds, 3), reason=str(event.reason)
            )
        )

    async def _abatches(self) -> AsyncIterator[ExportBatch]:
        for batch in self._plan():
            batch.started = time.monotonic()
            yield batch
            await asyncio.sleep(0)

    # -- planning ------------------------------------------------------------------------------

    def _plan(self) -> Iterable[ExportBatch]:
        """Batches in change order: first the profiles rejected last time, then the delta."""
        run, gs = self.run, self.run.state
        assert gs.cursor is not None and gs.upper is not None
        batch = self._new_batch()
        for page in self._pages():
            lookups = st.sent_attributes(run.store, run.key, [p.id for p, _, _ in page])
            for profile, segments, is_retry in page:
                run.cancel.check()
                if not is_retry:
                    self.last_seq = profile.seq
                plan = self._plan_profile(profile, segments, lookups.get(profile.id), is_retry)
                if plan is None:
                    if not is_retry and not batch.planned and not self.unresolved:
                        self.resolved = max(self.resolved, profile.seq)
                    continue
                planned, obj = plan
                batch.append(obj)
                batch.planned.append(planned)
                if len(batch) == BATCH_SIZE:
                    yield self._close(batch)
                    batch = self._new_batch()
        if batch.planned:
            yield self._close(batch)

    def _pages(self) -> Iterable[list[tuple[Profile, list[str], bool]]]:
        """Pages of (profile, its segments, is a retry), retries first."""
        run, gs = self.run, self.run.state
        retries: list[tuple[Profile, list[str], bool]] = []
        for profile_id in sorted(self.retry_ids):
            profile = run.store.get(profile_id)
            if profile is None or not run.store.in_segment(profile_id, self.segment):
                self.settled.dropped.append(profile_id)
                continue
            names = [s.name for s in self.all_segments if run.store.in_segment(profile_id, s)]
            retries.append((profile, names, True))
            if len(retries) == LOOKUP_PAGE:
                yield retries
                retries = []
        if retries:
            yield retries
        page: list[tuple[Profile, list[str], bool]] = []
        profiles = run.store.iter_profiles(
            segment=self.segment,
            since_seq=gs.cursor or 0,
            segments_of=self.all_segments,
            batch=LOOKUP_PAGE,
        )
        for profile, names in profiles:
            if profile.seq > (gs.upper or 0):
                profiles.close()  # changed after this run began: the next delta has it
                break
            if profile.id in self.retry_ids:
                continue
            page.append((profile, names, False))
            if len(page) == LOOKUP_PAGE:
                yield page
                page = []
        if page:
            yield page

    def _plan_profile(
        self, profile: Profile, segments: list[str], last: st.Sent | None, is_retry: bool
    ) -> tuple[Planned, dict[str, Any]] | None:
        run = self.run
        self.examined += 1
        run.count("checked")
        if permission_rank(profile.permission_level) < self.min_rank:
            run.count("skipped")
            if is_retry:
                self.settled.dropped.append(profile.id)
            return None
        ids = identifiers_of(profile, self.goal.identifiers)
        if ids is None:
            run.count("skipped")
            if is_retry:
                self.settled.dropped.append(profile.id)
            return None
        attrs = attribute_values(profile, segments, self.goal.mappings)
        previous = None if last is None else last.attrs
        if last is not None and last.ids is not None and last.ids != ids:
            previous = None  # Braze knows the profile as another user now: send it everything
        changed = changed_attributes(attrs, previous, everything=self.everything)
        if not changed and not is_retry:
            run.count("unchanged")
            return None
        obj: dict[str, Any] = {**changed, **ids, "_update_existing_only": self.update_only}
        return Planned(profile.id, attrs, ids, last is None, len(changed)), obj

    def _new_batch(self) -> ExportBatch:
        self.batch_number += 1
        return ExportBatch(self.batch_number)

    def _close(self, batch: ExportBatch) -> ExportBatch:
        # Everything examined so far is settled once this batch and those before it are.
        batch.upto = max(self.last_seq, self.resolved)
        self.unresolved[batch.number] = batch.upto
        return batch

    # -- results and checkpoints ---------------------------------------------------------------

    def _settle(self, batch: ExportBatch, result: TrackResult) -> None:
        """Attribute each object's fate to its profile."""
        failures = result.failures("attributes", size=len(batch))
        for index, planned in enumerate(batch.planned):
            reason = failures.get(index)
            if reason is None:
                self.settled.sent.append((planned.profile_id, planned.attrs, planned.ids))
                if planned.profile_id in self.has_failure_row:
                    self.settled.delivered.append(planned.profile_id)
                self._count_delivered(planned)
            else:
                self.settled.failed.append((planned.profile_id, reason))
                self.run.count("failed")
        for error in result.unattributed():
            self.run.log(f"Braze reported an error it did not attribute: {error.type}", "warning")
        self.finished.add(batch.number)
        while self.unresolved:
            head = next(iter(self.unresolved))
            if head not in self.finished:
                break
            self.resolved = max(self.resolved, self.unresolved.pop(head))
            self.finished.discard(head)
        self.run.emit(
            BatchSent(
                goal=self.run.name,
                number=batch.number,
                size=len(batch),
                failed=len(failures),
                status=result.status,
                seconds=round(time.monotonic() - batch.started, 3),
            )
        )
        self.run.progress(self.examined, self.total)
        crash_point("export.batch_settled")

    def _count_delivered(self, planned: Planned) -> None:
        self.run.count("created" if planned.first_time else "updated")
        self.run.state.data_points += planned.data_points

    def _checkpoint(self, *, final: bool = False) -> None:
        """Commit delivered values, failures and the watermark, together; the final checkpoint
        also marks the goal finished."""
        run, gs = self.run, self.run.state
        if run.dry_run:
            return
        settled = self.settled
        previous = gs.cursor
        gs.cursor = max(gs.cursor or 0, self.resolved)
        try:
            with run.store.transaction() as tx:
                st.record_sent(tx, run.key, settled.sent)
                st.clear_failures(tx, run.key, settled.delivered + settled.dropped)
                st.record_failures(tx, run.key, run.run_id, settled.failed)
                st.set_watermark(tx, run.key, gs.cursor or 0)
                if final:
                    run.finish(tx)
                else:
                    run.save(tx)
        except BaseException:
            # Nothing was committed: keep the results for the next checkpoint, and the cursor
            # where the store has it, so no rejection is lost behind a moved watermark.
            gs.cursor = previous
            raise
        self.settled = _Settled()
        self.last_checkpoint = time.monotonic()
        crash_point("export.checkpoint")
