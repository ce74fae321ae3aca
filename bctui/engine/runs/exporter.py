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
import gc
import re
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Container, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Final

import orjson

from bctui.braze import RetryPolicy, TrackResult, WaitEvent
from bctui.braze.users import MAX_BODY_BYTES, MAX_EXTERNAL_ID_BYTES, track_batches
from bctui.engine.clients import braze_client
from bctui.engine.models import ExportGoal, ExportMapping, IdentifierRules
from bctui.engine.runs import budget as bg
from bctui.engine.runs import state as st
from bctui.engine.runs import types as ty
from bctui.engine.runs.context import Cancelled, GoalRun
from bctui.engine.runs.events import BatchSent, RateLimitWait
from bctui.engine.runs.faults import crash_point
from bctui.store.model import PERMISSION_LEVELS, permission_rank
from bctui.store.rows import ROW_WIDTH, row_pages
from bctui.store.segments import SegmentDef, segment_properties

BATCH_SIZE: Final = 75
CHECKPOINT_SECONDS: Final = 1.0
LOOKUP_PAGE: Final = 500
# One batch of a long export may meet a run of 5xx answers or dropped connections: with the
# client's default six tries, one unlucky batch in a few thousand would fail the whole goal at
# 10-20% errors. Twelve tries (backoff capped at 30 s) ride out a few minutes of trouble.
EXPORT_RETRY: Final = RetryPolicy(max_attempts=12)
WRITER_CACHE_KIB: Final = 16 * 1024
# What the attribute objects of one request may take: Braze's body limit less the envelope
# `{"attributes":[...]}` (each object is counted with one comma).
BODY_ROOM: Final = MAX_BODY_BYTES - len(b'{"attributes":[]}')
# Room for the few bytes by which a value's JSON may differ from its stored spelling (a float
# written differently, a number sent as an identifier string with its quotes).
_SLACK: Final = 16
_DIGITS: Final = re.compile(r"\d+")


@dataclass(slots=True)
class Planned:
    """One profile's attribute object, with what is needed to record its delivery."""

    profile_id: str
    first_time: bool  # never delivered to this goal before
    data_points: int
    seq: int = 0  # its change sequence when planned (where a budget stops the watermark)


class ExportBatch(list[dict[str, Any]]):
    """The attribute objects of one request, and the profiles they belong to (same order)."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number
        self.planned: list[Planned] = []
        # What each profile will hold in Braze once delivered (every mapped attribute, and the
        # identifiers): kept as (id, attributes, identifiers) until the batch closes, then
        # encoded (`state.encode_sent`), so a request in flight holds bytes, not dicts.
        self.rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.sent = b""
        self.upto = 0  # every profile up to this change sequence is settled once this batch is
        self.started = 0.0
        self.room = BODY_ROOM  # bytes left after the objects measured exactly (`measured`)
        self.measured = 0
        self.packed = self.packed_planned = b""  # see `pack`

    def pack(self) -> int:
        """Hold the objects, and what records their delivery, as bytes (until `unpack`); the
        bytes the batch now holds."""
        self.packed = orjson.dumps(self)
        self.packed_planned = orjson.dumps(
            [(p.profile_id, p.first_time, p.data_points, p.seq) for p in self.planned])
        self.clear()
        self.planned = []
        return len(self.packed) + len(self.packed_planned) + len(self.sent) + _BATCH_OVERHEAD

    def unpack(self) -> None:
        """The objects again, ready to send."""
        self.extend(orjson.loads(self.packed))
        self.planned = [Planned(*row) for row in orjson.loads(self.packed_planned)]
        self.packed = self.packed_planned = b""

    def measure(self) -> int:
        """The bytes left in the request body, measuring the objects only estimated so far."""
        if self.measured < len(self):
            dumps = orjson.dumps
            self.room -= sum(len(dumps(obj)) + 1 for obj in self[self.measured:])
            self.measured = len(self)
        return self.room


# What a packed batch takes beside its bytes (the objects holding them).
_BATCH_OVERHEAD: Final = 512


# How each mapping finds its value (see `MappingPlan`): a property sent as text, a number or an
# array (values already of that type cost no call), or converted by its function.
_SCALAR, _ARRAY, _PROPERTY, _PROFILE_ID, _SEGMENTS, _VIEWED, _PERMISSION, _STATIC = range(8)
# The Python types a scalar mapping sends as they are.
_AS_IS: Final = {"string": frozenset({str}), "number": frozenset({int, float})}
_UNSENDABLE: Final[dict[str, Any]] = {}  # the attributes of a profile with a value problem
_KINDS: Final = {"property": _PROPERTY, "profile_id": _PROFILE_ID, "segments": _SEGMENTS,
                 "interactions_viewed": _VIEWED, "permission_level": _PERMISSION}


class MappingPlan:
    """A goal's mappings and identifier rules, prepared once for the per-profile loop."""

    def __init__(self, mappings: Iterable[ExportMapping], rules: IdentifierRules,
                 types: Mapping[str, str] | None = None, inferred: Container[str] = ()) -> None:
        # `types`: the JSON type of each property mapping by Braze attribute (`types.resolve`);
        # one without a type yet sends one value as it is, several as an array.
        types = types or {}
        spec = []
        for m in mappings:
            kind = _KINDS.get(m.source, _STATIC)
            convert: ty.Convert = ty.legacy
            as_is: frozenset[type] = frozenset()
            if kind == _PROPERTY and m.braze in types:
                sends = types[m.braze]
                convert = ty.converter(m.braze, sends, inferred=m.braze in inferred)
                as_is = _AS_IS.get(sends, as_is)
                kind = _ARRAY if sends == "array" else _SCALAR if as_is else _PROPERTY
            spec.append((m.braze, kind, m.value, convert, as_is))
        self.spec = tuple(spec)
        # Text sent for another JSON value may be longer than its stored JSON (see size_bound).
        self.retyped = frozenset(m.braze for m in mappings if types.get(m.braze) in ("string",
                                                                                    "time"))
        self.needs_viewed = any(kind == _VIEWED for _, kind, _, _, _ in self.spec)
        self.rules = tuple(tuple((pair.property, pair.braze, pair.label) for pair in group)
                           for group in rules)
        self.checks_external_id = any(braze == "external_id" for group in self.rules
                                      for _, braze, _ in group)

    def size_bound(self, segment_names: Iterable[str]) -> tuple[int, int, int, int]:
        """Factors of an upper bound of one object's JSON size in a request, from what the hot
        loop has for free: (per byte of the stored properties, per byte of the stored viewed
        interactions, per character of the profile id, a constant).

        A value sent is one of the stored properties re-encoded, so it is no longer than that
        property's stored JSON; a property used by several mappings (or identifiers) counts as
        often as it is used.
        """
        dumps = orjson.dumps
        uses: Counter[str] = Counter()
        fixed = len(b'{,"_update_existing_only":false}') + 1
        per_viewed = per_pid = 0
        names = sorted(segment_names)
        for braze, kind, value, _, _ in self.spec:
            fixed += len(dumps(braze)) + 2 + _SLACK
            if kind <= _PROPERTY:
                # Numbers as text gain their quotes, joined values a blank each: at most twice.
                uses[value] += 2 if braze in self.retyped else 1
            elif kind == _PROFILE_ID:
                per_pid += 6  # a control character is escaped as six bytes
                fixed += 2
            elif kind == _SEGMENTS:
                fixed += len(dumps(names))
            elif kind == _VIEWED:
                per_viewed += 1
            elif kind == _PERMISSION:
                fixed += max(len(dumps(level)) for level in PERMISSION_LEVELS)
            else:
                fixed += len(dumps(value))
        ids = 0
        id_uses: Counter[str] = Counter()  # the most any one group uses each property
        for group in self.rules:
            size = sum(len(dumps(braze)) + 4 + _SLACK for _, braze, _ in group)
            size += sum(len(b'{"alias_name":,"alias_label":}') + len(dumps(label))
                        for _, braze, label in group if braze == "user_alias")
            ids = max(ids, size)
            id_uses |= Counter(prop for prop, _, _ in group)
        uses.update(id_uses)
        per_props = max(uses.values(), default=0)
        return per_props, per_viewed, per_pid, fixed + ids

    def attributes(self, profile_id: str, props: dict[str, list[Any]], level: int,
                   viewed: list[str] | None, segments: list[str]) -> dict[str, Any]:
        """The Braze value of every mapped attribute (None when the profile has none).

        A property is sent as its mapping's type (`types`); segments and viewed interactions
        are always arrays. `segments` must be sorted. Raises `types.ValueProblem` for a value
        the type cannot send.
        """
        out: dict[str, Any] = {}
        for braze, kind, value, convert, as_is in self.spec:
            if kind == _SCALAR:  # one value already of the type is sent as it is
                values = props.get(value)
                if values:
                    first = values[0]
                    out[braze] = (first if type(first) in as_is and len(values) == 1
                                  else convert(values))
                else:
                    out[braze] = None
            elif kind == _ARRAY:
                out[braze] = props.get(value) or None
            elif kind == _PROPERTY:
                values = props.get(value)
                out[braze] = convert(values) if values else None
            elif kind == _PROFILE_ID:
                out[braze] = profile_id
            elif kind == _SEGMENTS:
                out[braze] = segments or None
            elif kind == _VIEWED:
                out[braze] = viewed or None
            elif kind == _PERMISSION:
                out[braze] = PERMISSION_LEVELS[level]
            else:
                out[braze] = value
        return out

    def identifiers(self, props: dict[str, list[Any]]) -> dict[str, Any] | None:
        """Braze identifiers from the first group whose properties all have a value, else None."""
        for group in self.rules:
            found: dict[str, Any] = {}
            for prop, braze, label in group:
                values = props.get(prop)
                if not values:
                    break
                value = str(values[0])
                if braze == "user_alias":
                    found["user_alias"] = {"alias_name": value, "alias_label": label}
                else:
                    found[braze] = value
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


def external_id_problem(external_id: str) -> str | None:
    """Why Braze would refuse this external_id (EXTERNAL_USER_ID_TOO_LARGE), or None."""
    size = len(external_id.encode())
    if size <= MAX_EXTERNAL_ID_BYTES:
        return None
    return (f"external_id too large: {size:,} bytes, Braze takes at most "
            f"{MAX_EXTERNAL_ID_BYTES:,} (EXTERNAL_USER_ID_TOO_LARGE)")


def body_problem(obj: dict[str, Any], ids: dict[str, Any], size: int) -> str:
    """Why an attribute object alone is over Braze's request body limit, naming its largest
    attribute (the one to shorten)."""
    dumps = orjson.dumps
    sizes = {k: len(dumps(v)) for k, v in obj.items() if k not in ids}
    largest = max(sizes, key=lambda k: sizes[k], default="")
    return (f"attribute object too large: {size - 1:,} bytes of JSON, over Braze's request "
            f"body limit of {MAX_BODY_BYTES:,} bytes; its largest attribute is "
            f"'{largest}' ({sizes.get(largest, 0):,} bytes)")


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often: the export allocates millions of short-lived
    dicts and no cycles, and each young-generation pass also walks every object in flight."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@dataclass
class _Settled:
    """Delivery results waiting for the next checkpoint."""

    sent: list[bytes] = field(default_factory=list)  # `state.encode_sent` arrays
    delivered: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # retries that no longer qualify


@dataclass(frozen=True)
class _Checkpoint:
    """One checkpoint's content, taken at one moment: what to record, the watermark it allows,
    and the goal's progress to save with it."""

    settled: _Settled
    sent: list[str]  # settled.sent joined for `state.record_sent`
    cursor: int
    progress: st.GoalState


class Exporter:
    """Runs one export goal."""

    def __init__(
        self,
        run: GoalRun,
        goal: ExportGoal,
        segment: SegmentDef,
        all_segments: tuple[SegmentDef, ...],
        *,
        concurrency: int = 512,
        budget: bg.Budget | None = None,
        budget_hold: int = bg.HOLD_BYTES,
    ) -> None:
        self.run = run
        self.budget = budget
        self.budget_hold = budget_hold  # see `budget.plan_within`
        self.goal = goal
        self.segment = segment
        self.needs_segments = any(m.source == "segments" for m in goal.mappings)
        self.all_segments = all_segments if self.needs_segments else ()
        self.plan = MappingPlan(goal.mappings, goal.identifiers)
        self.size_bound = self.plan.size_bound(s.name for s in self.all_segments)
        # Warnings said once, counted: key → (how often, what the line said).
        self.warned: dict[str, list[Any]] = {}
        # (row column, name) of each segment flag, by name: members' names come out sorted.
        first = ROW_WIDTH + st.SENT_JOIN_WIDTH
        self.segment_flags = sorted(
            ((first + i, s.name) for i, s in enumerate(self.all_segments)), key=lambda f: f[1])
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
        self.replaying = False  # planning again what was counted already (see `replan`)
        self.counting_only = False  # no batch planned now is sent: skip recording what it sends

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
        self._decide_types()
        self.retry_ids = set(st.failed_profiles(run.store, run.key, run.run_id))
        # Every profile with a failure row (this run's too): delivering one clears its row.
        self.has_failure_row = set(st.failed_profiles(run.store, run.key, run_id=""))
        self.total = self._count_delta(gs.cursor, gs.upper) + len(self.retry_ids)
        run.log(
            f"{self.total:,} profile{'s' if self.total != 1 else ''} to check"
            + (f" ({len(self.retry_ids):,} rejected last time, retried)" if self.retry_ids else "")
        )
        batches: Iterable[ExportBatch] = self._plan()
        cut = None
        if self.budget is not None:  # plan first: what does not fit is not sent
            cut = bg.plan_within(self, self.budget, self.budget_hold)
            batches = cut.batches
        if run.dry_run:
            if cut is not None:  # it only counted what fits
                fitted = cut.fitted
                run.count("created", fitted.created)
                run.count("updated", fitted.objects - fitted.created)
                gs.data_points += fitted.points
            for batch in batches:
                self._count_delivered(batch.planned)
            self.run.progress(self.examined, self.total)
            self._sum_up_warnings()
            if cut is not None:
                bg.report(self, cut)
            return
        try:
            # What was last sent is written in the order profiles were created (their ids sort
            # so, for bctui's own ids), so the writer needs a small cache: memory stays flat.
            with fewer_collections(), run.store.page_cache(WRITER_CACHE_KIB):
                asyncio.run(self._send_all(batches))
        finally:
            self._sum_up_warnings()
            self._checkpoint()  # keep what was delivered, whatever stopped the sending
        self.resolved = gs.upper if cut is None or cut.watermark is None else cut.watermark
        if cut is not None:
            bg.report(self, cut)
        self._checkpoint(final=True)
        crash_point("export.completed")

    def replan(self) -> Generator[ExportBatch, None, None]:
        """`_plan` again over the same changes, for its batches only: the pass before counted
        the profiles, recorded their rejections and said its warnings, and sent none of its
        batches."""
        self.unresolved.clear()
        self.resolved = self.last_seq = self.run.state.cursor or 0
        self.replaying, self.counting_only = True, False
        return self._plan()

    def _count_delta(self, since: int, upper: int) -> int:
        sql, params = self.run.store.segment_sql(self.segment, correlated=True)
        row = self.run.store.query(
            f"SELECT count(*) FROM profile p WHERE p.seq > ? AND p.seq <= ? AND {sql}",
            (since, upper, *params),
        ).fetchone()
        return int(row[0])

    async def _send_all(self, batches: Iterable[ExportBatch]) -> None:
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
        # Checkpoints are written by a thread of their own while sending goes on: SQLite lets go
        # of the GIL while it writes, and the event loop never waits for a commit. One at a
        # time, on the store's connection, which nothing else uses meanwhile.
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-checkpoint")
        writing: Future[None] | None = None
        taken: _Checkpoint | None = None
        try:
            async with braze as client:
                # A request Braze refuses as a whole rejects its profiles; it does not end the goal.
                results = track_batches(client, self._abatches(batches),
                                        concurrency=self.concurrency,
                                        refusals=True)
                async with contextlib.aclosing(results):
                    async for batch, result in results:
                        self._settle(batch, result)
                        if writing is not None and writing.done():
                            assert taken is not None
                            done, writing = writing, None
                            self._written(taken, done)
                        if (writing is None
                                and time.monotonic() - self.last_checkpoint >= CHECKPOINT_SECONDS):
                            taken = self._take()
                            writing = writer.submit(self._write, taken)
        except asyncio.CancelledError:
            if self.run.cancel.cancelled:
                raise Cancelled() from None
            raise
        finally:
            watcher.cancel()
            writer.shutdown(wait=True)
            if writing is not None:
                assert taken is not None
                # An error already on its way out is the one to report.
                self._written(taken, writing, report=sys.exc_info()[1] is None)

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

    async def _abatches(self, batches: Iterable[ExportBatch]) -> AsyncIterator[ExportBatch]:
        for batch in batches:
            batch.started = time.monotonic()
            yield batch
            await asyncio.sleep(0)

    # -- planning ------------------------------------------------------------------------------

    def _plan(self) -> Generator[ExportBatch, None, None]:
        """Batches in change order: first the profiles rejected last time, then the delta.

        The hot loop of an export: it works on raw rows, decodes only the properties (and the
        viewed interactions when mapped), and recognises a profile whose attributes and
        identifiers are byte for byte what Braze was last sent without decoding that record.
        """
        run, plan = self.run, self.plan
        attributes, identifiers = plan.attributes, plan.identifiers
        everything, update_only, min_rank = self.everything, self.update_only, self.min_rank
        needs_viewed = plan.needs_viewed
        loads, dumps, sort = orjson.loads, orjson.dumps, orjson.OPT_SORT_KEYS
        flags = self.segment_flags
        per_props, per_viewed, per_pid, fixed = self.size_bound
        check_external_id = plan.checks_external_id
        replaying = self.replaying
        batch = self._new_batch()
        room = batch.room  # bytes left in the request body, by the bound or exactly
        for rows, is_retry in self._row_pages():
            run.cancel.check()
            skipped = unchanged = rejected = 0
            for row in rows:
                profile_id, props_json, level, viewed_json, seq, last_attrs, last_ids = row[:7]
                if not is_retry:
                    self.last_seq = seq
                ids = None
                if level >= min_rank:
                    props = loads(props_json)
                    ids = identifiers(props)
                if ids is None:
                    skipped += 1
                    if is_retry and not replaying:
                        self.settled.dropped.append(profile_id)
                else:
                    try:
                        attrs = attributes(profile_id, props, level,
                                           loads(viewed_json) if needs_viewed else None,
                                           [name for column, name in flags if row[column]])
                    except ty.ValueProblem as exc:
                        attrs = _UNSENDABLE
                        rejected += 1
                        self._value_problem(profile_id, str(exc))
                    if attrs is _UNSENDABLE:
                        changed = None
                    elif last_attrs is None:  # never sent: every attribute that has a value
                        changed = {k: v for k, v in attrs.items() if v is not None}
                    elif (last_ids is not None and dumps(attrs, option=sort) == last_attrs
                          and dumps(ids, option=sort) == last_ids):
                        # Braze has exactly these values under these identifiers.
                        changed = ({k: v for k, v in attrs.items() if v is not None}
                                   if everything else {})
                    else:
                        previous = loads(last_attrs)
                        if last_ids is not None and loads(last_ids) != ids:
                            previous = None  # Braze knows the profile as another user now
                        changed = changed_attributes(attrs, previous, everything=everything)
                    if changed is None:
                        pass
                    elif changed or is_retry:
                        points = len(changed)
                        # `changed` is a dict of its own: it becomes the object sent.
                        changed.update(ids)
                        changed["_update_existing_only"] = update_only
                        problem = None
                        external_id = ids.get("external_id") if check_external_id else None
                        if external_id is not None and len(external_id) > 246:
                            problem = external_id_problem(external_id)
                        # Braze's 4 MB body limit, checked by a bound from the stored JSON's
                        # length; only when the bound says the object may not fit is it
                        # measured: it then starts the next request, or is rejected when no
                        # request can hold it.
                        size = fixed + per_props * (
                            len(props_json) if props_json.isascii() else 4 * len(props_json))
                        if per_pid:
                            size += per_pid * len(profile_id)
                        if per_viewed:
                            size += per_viewed * (len(viewed_json) if viewed_json.isascii()
                                                  else 4 * len(viewed_json))
                        if problem is None and size > room:
                            size = len(dumps(changed)) + 1
                            if size > BODY_ROOM:
                                problem = body_problem(changed, ids, size)
                            else:
                                if size > batch.measure():
                                    # This profile goes in the next request: the one closed
                                    # settles only the changes before it.
                                    yield self._close(batch, self.last_seq if is_retry
                                                      else seq - 1)
                                    batch = self._new_batch()
                                batch.measured += 1
                                batch.room -= size
                                room = batch.room + size
                        if problem is None:
                            room -= size
                            batch.append(changed)
                            batch.planned.append(
                                Planned(profile_id, last_attrs is None, points, seq))
                            batch.rows.append((profile_id, attrs, ids))
                            if len(batch) == BATCH_SIZE:
                                yield self._close(batch)
                                batch = self._new_batch()
                                room = batch.room
                            continue
                        rejected += 1
                        if not replaying:
                            self.settled.failed.append((profile_id, problem))
                            kind = problem.partition(":")[0]
                            self._warn_once(kind, f"profile {profile_id} not sent, {problem}; "
                                            "recorded as rejected and retried next run",
                                            f"profiles not sent ({kind})")
                    else:
                        unchanged += 1
                if not is_retry and not batch.planned and not self.unresolved:
                    self.resolved = max(self.resolved, seq)
            if replaying:
                continue
            self.examined += len(rows)
            run.count("checked", len(rows))
            run.count("skipped", skipped)
            run.count("unchanged", unchanged)
            if rejected:
                run.count("failed", rejected)
        if batch.planned:
            yield self._close(batch)

    def _decide_types(self) -> None:
        """The JSON type of each property mapping: the config's, else the one kept since the
        goal's first run, when it was inferred from the data (a dry run infers without keeping)."""
        run, goal = self.run, self.goal
        decided = ty.resolve(run.store, run.key, goal.mappings, self.segment, save=not run.dry_run)
        self.plan = MappingPlan(goal.mappings, goal.identifiers, decided.types, decided.inferred)
        self.size_bound = self.plan.size_bound(s.name for s in self.all_segments)
        if decided.new and not run.dry_run:  # said when kept, by the run that keeps them
            run.log("attribute types inferred from the data, kept for later runs: "
                    + ", ".join(f"{braze} {kind}" for braze, kind in decided.new.items())
                    + ' (a mapping\'s type = "…" overrides)')

    def _value_problem(self, profile_id: str, problem: str) -> None:
        """A value its mapping's type cannot send: the profile is rejected, retried next run."""
        self.settled.failed.append((profile_id, problem))
        kind = problem.partition(":")[0]
        self._warn_once(kind, f"profile {profile_id} not sent, {problem}; recorded as rejected "
                        "and retried next run", f"profiles not sent ({kind})")

    def _row_pages(self) -> Iterable[tuple[list[tuple[Any, ...]], bool]]:
        """Pages of rows (see `rows.row_pages`) and whether they are retries; retries first."""
        run, gs = self.run, self.run.state
        # Segment rules answer from the value index when it holds their properties (from
        # each row's JSON otherwise, far slower over a whole store).
        run.store.index_properties(segment_properties([self.segment, *self.all_segments]),
                                   wait=False)
        joined = st.sent_join(run.key)
        retry_ids = sorted(self.retry_ids)
        for start in range(0, len(retry_ids), LOOKUP_PAGE):
            chunk = retry_ids[start:start + LOOKUP_PAGE]
            found: set[str] = set()
            for rows in row_pages(run.store, segment=self.segment, only_ids=chunk,
                                  segments_of=self.all_segments, joined=joined):
                found.update(row[0] for row in rows)
                yield rows, True
            # No longer a profile, or no longer in the segment: nothing to retry.
            if not self.replaying:
                self.settled.dropped.extend(pid for pid in chunk if pid not in found)
        pages = row_pages(run.store, segment=self.segment, since_seq=gs.cursor or 0,
                          until_seq=gs.upper, segments_of=self.all_segments, joined=joined,
                          page=LOOKUP_PAGE)
        retrying = self.retry_ids
        for rows in pages:
            if retrying:
                rows = [row for row in rows if row[0] not in retrying]
            yield rows, False

    def _new_batch(self) -> ExportBatch:
        self.batch_number += 1
        return ExportBatch(self.batch_number)

    def _close(self, batch: ExportBatch, upto: int | None = None) -> ExportBatch:
        # Everything examined so far (or up to `upto`) is settled once this batch and those
        # before it are.
        batch.upto = max(self.last_seq if upto is None else upto, self.resolved)
        self.unresolved[batch.number] = batch.upto
        if not self.run.dry_run and not self.counting_only:
            batch.sent = st.encode_sent(batch.rows)
        batch.rows = []
        return batch

    # -- results and checkpoints ---------------------------------------------------------------

    def _settle(self, batch: ExportBatch, result: TrackResult) -> None:
        """Attribute each object's fate to its profile."""
        failures = result.failures("attributes", size=len(batch))
        if result.refused_whole:
            self._refused(batch, result, failures)
        settled, has_failure_row = self.settled, self.has_failure_row
        delivered = batch.planned
        if failures:
            delivered = []
            for index, planned in enumerate(batch.planned):
                reason = failures.get(index)
                if reason is None:
                    delivered.append(planned)
                else:
                    settled.failed.append((planned.profile_id, reason))
            self.run.count("failed", len(batch.planned) - len(delivered))
        if len(delivered) == len(batch.planned):
            settled.sent.append(batch.sent)
        elif delivered:  # drop the rejected profiles' rows
            rows = orjson.loads(batch.sent)
            settled.sent.append(st.encode_sent(
                row for index, row in enumerate(rows) if index not in failures))
        for planned in delivered:
            if planned.profile_id in has_failure_row:
                settled.delivered.append(planned.profile_id)
        self._count_delivered(delivered)
        if not result.refused_whole:
            for error in result.unattributed():
                self.run.log(f"Braze reported an error it did not attribute: {error.type}",
                             "warning")
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

    def _refused(self, batch: ExportBatch, result: TrackResult, failures: dict[int, str]) -> None:
        """A request refused as a whole (a 400 without `errors[]`, a 413): every profile in it
        is rejected with Braze's message, retried next run; said once per message, since a
        cause in what bctui sends would refuse every request the same way."""
        items = "; ".join(error.type for error in result.errors[:3])
        message = result.message or "no message"
        reason = f"Braze refused the whole request (HTTP {result.status}: {message})" + (
            f" [{items}]" if items else "")
        for index in failures:
            failures[index] = reason
        self._warn_once(
            # Braze's text may count what it got ("76 sent"): the same refusal either way.
            _DIGITS.sub("#", reason),
            f"{reason}: its {len(batch)} profiles are recorded as rejected and retried next run"
            " (when Braze refuses every request, the cause is in the requests, such as a lower "
            "object limit of the workspace, not in the profiles)",
            f"requests refused as a whole by Braze (HTTP {result.status}: {message})",
        )

    def _warn_once(self, key: str, line: str, summary: str) -> None:
        """Log `line` as a warning the first time `key` happens; later ones are only counted,
        for one `summary` line at the end."""
        seen = self.warned.get(key)
        if seen is None:
            self.warned[key] = [1, summary]
            self.run.log(line, "warning")
        else:
            seen[0] += 1

    def _sum_up_warnings(self) -> None:
        """How often each warning said once happened in all (when more than once)."""
        for count, summary in self.warned.values():
            if count > 1:
                self.run.log(f"{summary}: {count:,} in all")
        self.warned.clear()

    def _count_delivered(self, delivered: list[Planned]) -> None:
        created = sum(1 for planned in delivered if planned.first_time)
        self.run.count("created", created)
        self.run.count("updated", len(delivered) - created)
        self.run.state.data_points += sum(planned.data_points for planned in delivered)

    def _checkpoint(self, *, final: bool = False) -> None:
        """Commit delivered values, failures and the watermark, together, now; the final
        checkpoint also marks the goal finished."""
        if self.run.dry_run:
            return
        taken = self._take()
        try:
            self._write(taken, final=final)
        except BaseException:
            self._put_back(taken)
            raise
        self._committed(taken)

    def _take(self) -> _Checkpoint:
        """What the next checkpoint commits, as of now: the results settled so far, the
        watermark they allow, and the goal's progress."""
        gs = self.run.state
        self.last_checkpoint = time.monotonic()  # the next one is due a second after this
        settled, self.settled = self.settled, _Settled()
        cursor = max(gs.cursor or 0, self.resolved)
        return _Checkpoint(settled, st.join_sent(settled.sent), cursor,
                           replace(gs, counts=dict(gs.counts), cursor=cursor))

    def _write(self, taken: _Checkpoint, *, final: bool = False) -> None:
        run = self.run
        if run.dry_run:
            return
        settled = taken.settled
        with run.store.transaction() as tx:
            st.record_sent(tx, run.key, taken.sent, run.store.dialect)
            st.clear_failures(tx, run.key, settled.delivered + settled.dropped)
            st.record_failures(tx, run.key, run.run_id, settled.failed)
            st.set_watermark(tx, run.key, taken.cursor)
            if final:
                run.state.cursor = taken.cursor
                run.finish(tx)
            else:
                st.save_goal(tx, run.run_id, taken.progress)
        crash_point("export.checkpoint")

    def _written(self, taken: _Checkpoint, writing: Future[None], *, report: bool = True) -> None:
        """A checkpoint written by the thread: committed, or put back (and its error raised)."""
        error = writing.exception()
        if error is None:
            self._committed(taken)
            return
        self._put_back(taken)
        if report:
            raise error

    def _committed(self, taken: _Checkpoint) -> None:
        gs = self.run.state
        gs.cursor = max(gs.cursor or 0, taken.cursor)

    def _put_back(self, taken: _Checkpoint) -> None:
        """Nothing was committed: the results wait for the next checkpoint, and the cursor stays
        where the store has it, so no rejection is lost behind a moved watermark."""
        later, earlier = self.settled, taken.settled
        self.settled = _Settled(earlier.sent + later.sent, earlier.delivered + later.delivered,
                                earlier.failed + later.failed, earlier.dropped + later.dropped)
