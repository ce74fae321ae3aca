"""Import goals (Braze → store): request a segment export, wait for its files in S3, and merge
each file into the store in one transaction together with the record that it was applied.

A rerun after a crash finds the goal's unfinished export in `import_job` and carries on with the
same `object_prefix`, skipping the files already applied, so `sum` and `add` are never applied
twice. Only when those files are gone (Braze deletes them after about four hours) does it start
afresh, and it says so in the run log.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from bctui.braze import ExportAlreadyRunning
from bctui.engine.clients import braze_client, s3_access_for
from bctui.engine.models import Connection, ImportGoal, S3Settings
from bctui.engine.runs import state as st
from bctui.engine.runs.context import GoalRun
from bctui.engine.runs.echo import EchoGuard, accumulating, two_way_fields
from bctui.engine.runs.faults import crash_point
from bctui.errors import BctuiError
from bctui.s3 import ExportFile, S3Access, S3CorruptObject
from bctui.store import ProfileWrite
from bctui.store.writes import gc_paused

# Braze deletes export files about four hours after writing them (reference §8.4).
FILE_LIFETIME_SECONDS: Final = 4 * 3600

# Standard fields "add remaining fields" brings in (scalars and lists of scalars); nested lists of
# objects (devices, apps, purchases, campaigns_received…) are only imported through a mapping.
REMAINING_FIELDS: Final = (
    "braze_id",
    "country",
    "created_at",
    "dob",
    "email",
    "email_subscribe",
    "external_id",
    "first_name",
    "gender",
    "home_city",
    "language",
    "last_name",
    "phone",
    "push_subscribe",
    "random_bucket",
    "time_zone",
    "total_revenue",
)

# The export field that carries each kind of Braze identifier.
IDENTIFIER_FIELDS: Final = {
    "external_id": "external_id",
    "braze_id": "braze_id",
    "email": "email",
    "phone": "phone",
    "user_alias": "user_aliases",
}

APPLY_CHUNK: Final = 1000
MAX_LOGGED_BAD_LINES: Final = 20


class ImportFailed(BctuiError):
    """The import goal could not complete."""


@dataclass(frozen=True)
class ExportRequest:
    """What to ask Braze to export for a goal."""

    fields: list[str]
    custom_attributes: list[str]


def export_request(goal: ImportGoal) -> ExportRequest:
    """Only the fields the identifier rules, mappings, remaining fields and campaign filter need.

    Single custom attributes are asked for by name (`custom_attributes_to_export`); all of them
    only when "add remaining fields" is on.
    """
    fields: set[str] = set()
    custom: set[str] = set()
    for group in goal.identifiers:
        fields.update(IDENTIFIER_FIELDS[pair.braze] for pair in group)
    for mapping in goal.mappings:
        head, _, rest = mapping.braze.partition(".")
        if head == "custom_attributes" and rest:
            custom.add(rest.split(".", 1)[0])
        else:
            fields.add(head)
    if goal.remaining.enabled:
        fields.update(REMAINING_FIELDS)
        fields.add("custom_attributes")
        custom.clear()
    if goal.audience.campaign_ids:
        fields.add("campaigns_received")
    return ExportRequest(sorted(fields), sorted(custom))


def field_value(user: dict[str, Any], path: str) -> Any:
    """The value at a dotted path in an exported user (None when any step is missing)."""
    value: Any = user
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def identifier_value(user: dict[str, Any], braze: str, label: str) -> Any:
    """The user's value for one kind of Braze identifier."""
    if braze == "user_alias":
        for alias in user.get("user_aliases") or ():
            if isinstance(alias, dict) and alias.get("alias_label") == label:
                return alias.get("alias_name")
        return None
    return user.get(IDENTIFIER_FIELDS[braze])


class UserMapper:
    """Turns one exported Braze user into a `ProfileWrite` for a goal."""

    def __init__(self, goal: ImportGoal) -> None:
        self.goal = goal
        self.campaigns = frozenset(goal.audience.campaign_ids)
        mapped = {m.braze for m in goal.mappings}
        self.mapped_custom = {
            m.partition(".")[2] for m in mapped if m.startswith("custom_attributes.")
        }
        self.mapped_fields = {m for m in mapped if "." not in m}
        self.identifier_pairs = [p for g in goal.identifiers for p in g]
        # Worked out once per goal rather than per user: (property, kind, alias label, export
        # field, or None for an alias) per identifier, the dotted paths of the mappings split.
        self._identifier_groups = [
            [(p.property, p.braze, p.label,
              None if p.braze == "user_alias" else IDENTIFIER_FIELDS[p.braze]) for p in group]
            for group in goal.identifiers
        ]
        self._paths = [
            (m.property, m.strategy, m.braze.split(".")[0], tuple(m.braze.split(".")[1:]))
            for m in goal.mappings
        ]

    def in_audience(self, user: dict[str, Any]) -> bool:
        """The campaign filter: users who received at least one of the chosen campaigns."""
        if not self.campaigns:
            return True
        received = user.get("campaigns_received") or ()
        return any(
            isinstance(c, dict) and c.get("api_campaign_id") in self.campaigns for c in received
        )

    def write(self, user: dict[str, Any]) -> ProfileWrite | None:
        """The write for this user, or None when it has no value for any identifier group."""
        groups: list[list[tuple[str, Any]]] = []
        for group in self._identifier_groups:
            pairs: list[tuple[str, Any]] = []
            complete = True
            for prop, braze, label, field in group:
                value = (identifier_value(user, braze, label) if field is None
                         else user.get(field))
                if value is None or value == "" or value == []:
                    complete = False
                    continue  # the group is unusable, but every value it has is checked
                kind = type(value)
                if kind is not str and kind is not int and kind is not float and (
                    isinstance(value, bool) or not isinstance(value, (str, int, float))
                ):
                    raise ValueError(f"{braze} is not a single value")
                pairs.append((prop, value))
            if complete:
                groups.append(pairs)
        if not groups:
            return None
        # Identifier properties are filled where empty, so a created profile matches next time.
        updates: list[tuple[str, str, object]] = [
            (prop, "set_if_empty", value) for pairs in groups for prop, value in pairs
        ]
        for prop, strategy, head, rest in self._paths:
            # An absent field is an empty one (Braze omits empty fields), which `clear` clears.
            value = user.get(head)
            for part in rest:
                value = value.get(part) if isinstance(value, dict) else None
            updates.append((prop, strategy, value))
        if self.goal.remaining.enabled:
            updates.extend(self._remaining(user))
        return ProfileWrite(updates=updates, match=groups, create=self.goal.allow_create)

    def _remaining(self, user: dict[str, Any]) -> Iterator[tuple[str, str, object]]:
        prefix, strategy = self.goal.remaining.prefix, self.goal.remaining.strategy
        for name, value in user.items():
            if name == "custom_attributes" and isinstance(value, dict):
                for attribute, attr_value in value.items():
                    if attribute not in self.mapped_custom:
                        yield f"{prefix}{attribute}", strategy, attr_value
            elif name in REMAINING_FIELDS and name not in self.mapped_fields:
                yield f"{prefix}{name}", strategy, value


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


class Importer:
    """Runs one import goal."""

    def __init__(self, run: GoalRun, goal: ImportGoal,
                 connections: Sequence[Connection] = ()) -> None:
        """`connections`: the config's, where export goals of the same workspace are found."""
        if run.connection.s3 is None:
            raise ImportFailed(
                "the connection has no S3 settings",
                fix="add [connection.s3] (Braze delivers exports through S3)",
            )
        self.run = run
        self.goal = goal
        self.s3_settings: S3Settings = run.connection.s3
        self.mapper = UserMapper(goal)
        self.request = export_request(goal)
        self.users_done = 0
        self.bad_lines_logged = 0
        self.two_way = two_way_fields(run.connection, goal, connections or (run.connection,),
                                      run.secrets)
        self.echo = EchoGuard.build(self.two_way)
        # A Braze value is known for a profile only if the export names the same user: the
        # export's identifiers are read too.
        extra = {IDENTIFIER_FIELDS[p.braze] for f in self.two_way for g in f.goal.identifiers
                 for p in g} - set(self.request.fields)
        if extra:
            self.request = ExportRequest(sorted({*self.request.fields, *extra}),
                                         self.request.custom_attributes)

    # -- the goal ------------------------------------------------------------------------------

    def execute(self) -> None:
        """Request (or resume) the export, apply its files as they arrive, finish when complete."""
        run = self.run
        s3 = self._s3()
        self._describe_two_way()
        job = st.import_job(run.store, run.key)
        lost_request = False
        if job is not None and not run.dry_run:
            if job.object_prefix:
                job = self._resume(s3, job)
            else:
                # The previous run asked Braze for an export and died before recording the
                # answer: that export may still be running, and Braze refuses a second one.
                lost_request, job = True, None
        if job is None or run.dry_run:
            job = self._request(lost_request=lost_request)
        self._apply_until_complete(s3, job)

    def _describe_two_way(self) -> None:
        """Say which fields are synced both ways, and warn of those that accumulate."""
        if not self.two_way:
            return
        listed = ", ".join(sorted({f'{f.mapping.braze} (export goal "{f.goal.name}")'
                                   for f in self.two_way}))
        self.run.log(f"two-way fields: {listed}; Braze's value is applied only when it changed "
                     "since last known, and values read are not exported back")
        for found in self.two_way:
            if found.mapping.strategy in ("sum", "add"):
                self.run.log(accumulating(found), "warning")

    def _s3(self) -> S3Access:
        return s3_access_for(
            self.s3_settings, self.run.secrets, where=f'connection "{self.run.connection.name}"'
        )

    def _resume(self, s3: S3Access, job: st.ImportJob) -> st.ImportJob | None:
        """Carry on with an unfinished export, unless its files are gone."""
        files = s3.find_export_files(
            self.s3_settings.bucket, self.s3_settings.root, job.segment_id, job.object_prefix
        )
        age = time.time() - job.requested_at
        gone = not files and (job.files_seen > 0 or age > FILE_LIFETIME_SECONDS)
        missing = sorted(set(self._requested_fields()) - set(job.fields))
        if gone or job.segment_id != self.goal.audience.segment_id or missing:
            if gone:
                reason = (
                    "its files are gone (Braze deletes export files about 4 hours after "
                    "writing them); files already applied are applied again"
                )
            elif missing:
                reason = (
                    f"the goal now needs fields that export lacks ({', '.join(missing)}); "
                    "files already applied are applied again"
                )
            else:
                reason = "the goal's audience changed"
            self.run.log(
                f"an interrupted import's export {job.object_prefix} cannot be resumed: "
                f"{reason}; requesting a new export",
                "warning",
            )
            with self.run.store.transaction() as tx:
                st.clear_import_job(tx, self.run.key)
            return None
        applied = len(st.applied_files(self.run.store, job.object_prefix))
        self.run.log(
            f"resuming the interrupted import of export {job.object_prefix} "
            f"({applied} file{'s' if applied != 1 else ''} already applied)"
        )
        return job

    def _requested_fields(self) -> list[str]:
        """Everything the export was asked for: fields, and single custom attributes."""
        return [
            *self.request.fields,
            *(f"custom_attributes.{name}" for name in self.request.custom_attributes),
        ]

    def _request(self, *, lost_request: bool = False) -> st.ImportJob:
        run = self.run
        audience = self.goal.audience
        if not run.dry_run:
            # Recorded before asking, so a crash before the answer is recorded is recognised.
            intent = st.ImportJob(
                run.key, audience.segment_id, "", time.time(), self._requested_fields()
            )
            with run.store.transaction() as tx:
                st.save_import_job(tx, intent)
        label = (
            f'"{audience.name}" ({audience.segment_id})' if audience.name else audience.segment_id
        )
        run.phase("requesting", f"export of Braze segment {label}")
        fields = ", ".join(self.request.fields)
        custom = ", ".join(self.request.custom_attributes)
        run.log(
            f"requesting an export of segment {label}: fields {fields}"
            + (f"; custom attributes {custom}" if custom else "")
        )
        started = self._export_segment_waiting(lost_request=lost_request)
        crash_point("import.answered")
        job = st.ImportJob(
            run.key,
            audience.segment_id,
            started.object_prefix,
            time.time(),
            self._requested_fields(),
        )
        if not run.dry_run:
            with run.store.transaction() as tx:
                st.save_import_job(tx, job)
        crash_point("import.requested")
        run.log(f"Braze accepted the export: object prefix {started.object_prefix}")
        return job

    def _export_segment_waiting(self, *, lost_request: bool) -> Any:
        """Ask for the export. Braze runs one export per segment at a time: while another is
        running (a crashed run's whose answer was lost, a dry run's, another tool's) wait for it,
        up to the goal's timeout, then fail with a clear message."""
        wait = self.goal.wait
        deadline = time.monotonic() + wait.timeout_minutes * 60
        logged = False
        while True:
            try:
                return asyncio.run(self._export_segment())
            except ImportFailed as exc:
                if not isinstance(exc.__cause__, ExportAlreadyRunning):
                    raise
                if time.monotonic() > deadline:
                    raise
                if not logged:
                    whose = (
                        "the interrupted run's export, whose answer was lost,"
                        if lost_request
                        else "another export of this segment"
                    )
                    self.run.log(
                        f"{whose} is still running at Braze, which runs one export per "
                        f"segment at a time; waiting up to {wait.timeout_minutes:g} min "
                        "for it to finish",
                        "warning",
                    )
                    logged = True
                self.run.cancel.sleep(wait.poll_seconds)

    async def _export_segment(self) -> Any:
        async with braze_client(self.run.connection, self.run.secrets) as client:
            try:
                return await client.export_segment(
                    self.goal.audience.segment_id,
                    self.request.fields,
                    custom_attributes_to_export=self.request.custom_attributes or None,
                    output_format="gzip",
                )
            except ExportAlreadyRunning as exc:
                raise ImportFailed(
                    f"Braze is already exporting segment {self.goal.audience.segment_id} "
                    "(it runs one export per segment at a time)",
                    fix="wait until that export finishes (another tool, or a run whose state "
                    "was lost, started it), then run again",
                ) from exc

    # -- waiting and applying -----------------------------------------------------------------

    def _apply_until_complete(self, s3: S3Access, job: st.ImportJob) -> None:
        """Poll the bucket; apply new files at once; complete after a quiet period."""
        run, wait = self.run, self.goal.wait
        bucket, root = self.s3_settings.bucket, self.s3_settings.root
        applied = set() if run.dry_run else st.applied_files(run.store, job.object_prefix)
        # Counted from now, not from the request: a run that resumes an export Braze is still
        # writing (after a timeout or a crash) waits for it again instead of failing at once.
        deadline = time.time() + wait.timeout_minutes * 60
        run.phase("waiting", f"for export files under {job.object_prefix}")
        run.log(
            f"completion rule: the export counts as complete when no new file has appeared "
            f"for {wait.quiet_seconds:g} s after the first one (polling every "
            f"{wait.poll_seconds:g} s, giving up after {wait.timeout_minutes:g} min)"
        )
        seen: set[str] = set()
        last_change = time.monotonic()
        while True:
            run.cancel.check()
            files = s3.find_export_files(bucket, root, job.segment_id, job.object_prefix)
            new_keys = {f.key for f in files} - seen
            if new_keys:
                seen.update(new_keys)
                last_change = time.monotonic()
                job = self._note_files(job, len(seen))
            pending = [f for f in files if f.key not in applied]
            # The next file downloads (and inflates) in the background while one merges: S3
            # answers in tens of milliseconds, a merge takes about as long as a download.
            following = _Download(s3, bucket, pending[0].key) if pending else None
            for position, file in enumerate(pending):
                assert following is not None
                current = following
                following = (_Download(s3, bucket, pending[position + 1].key)
                             if position + 1 < len(pending) else None)
                self._apply_file(file, current, job, index=len(applied) + 1)
                applied.add(file.key)
            if pending:
                continue  # applying took time: list again before judging the quiet period
            if seen and time.monotonic() - last_change >= wait.quiet_seconds:
                break
            if not seen and time.time() > deadline:
                raise ImportFailed(
                    f"no export files arrived under {job.object_prefix} within "
                    f"{wait.timeout_minutes:g} minutes",
                    fix="check Braze's S3 settings (bucket and folder must match this "
                    "connection's), whether the segment is empty, or raise wait.timeout_minutes",
                )
            run.cancel.sleep(wait.poll_seconds)
        run.log(
            f"export complete: {len(seen)} file{'s' if len(seen) != 1 else ''}, no new file "
            f"for {wait.quiet_seconds:g} s"
        )
        if self.echo is not None and self.echo.conflicts:
            count, examples = self.echo.conflicts, self.echo.examples
            more = ", …" if count > len(examples) else ""
            run.log(
                f"{count:,} two-way value{'s' if count != 1 else ''} changed both here and in "
                "Braze since last known; Braze's value was applied (profiles "
                f"{', '.join(examples)}{more})",
                "warning",
            )
        if not run.dry_run:
            with run.store.transaction() as tx:
                st.clear_import_job(tx, run.key)
                run.finish(tx)
        crash_point("import.completed")

    def _note_files(self, job: st.ImportJob, count: int) -> st.ImportJob:
        """Remember that files appeared (so a later resume can tell "gone" from "not yet")."""
        first = job.first_file_at or time.time()
        job = st.ImportJob(
            job.goal_key,
            job.segment_id,
            job.object_prefix,
            job.requested_at,
            job.fields,
            first,
            max(job.files_seen, count),
        )
        if not self.run.dry_run:
            with self.run.store.transaction() as tx:
                st.save_import_job(tx, job)
        return job

    def _apply_file(
        self, file: ExportFile, download: _Download, job: st.ImportJob, index: int
    ) -> None:
        """Read one file whole (≤ ~5,000 users), then merge it in one transaction."""
        # The cycle collector waits until the file's objects are gone again (see gc_paused).
        with gc_paused():
            self._merge_file(file, download, job, index)

    def _merge_file(
        self, file: ExportFile, download: _Download, job: st.ImportJob, index: int
    ) -> None:
        run = self.run
        name = file.key.rsplit("/", 1)[-1]
        run.phase("merging", f"file {index}: {name}")
        identities: list[dict[str, Any]] | None = [] if self.echo is not None else None
        writes, lines, tally = self._read_file(download, name, identities)
        run.cancel.check()
        try:
            with run.store.transaction() as tx:
                for start in range(0, len(writes), APPLY_CHUNK):
                    chunk = writes[start : start + APPLY_CHUNK]
                    if self.echo is None or identities is None:
                        results = tx.apply_many(chunk)
                    else:
                        results, suppressed = self.echo.apply(
                            tx, chunk, identities[start : start + APPLY_CHUNK])
                        tally["echo_suppressed"] = tally.get("echo_suppressed", 0) + suppressed
                    for line, result in zip(lines[start:], results, strict=False):
                        tally[result.outcome] = tally.get(result.outcome, 0) + 1
                        if result.errors:
                            self._bad_line(name, line, "; ".join(str(e) for e in result.errors))
                for outcome, amount in tally.items():
                    run.count(outcome, amount)
                crash_point("import.before_commit")
                if run.dry_run:
                    raise _DryRunRollback
                st.mark_file_applied(tx, run.key, job.object_prefix, file.key, tally)
                run.save(tx)
        except _DryRunRollback:
            pass
        crash_point("import.file_applied")
        self.users_done += tally.get("checked", 0)
        run.progress(self.users_done, unit="users")

    def _read_file(
        self, numbered: Iterable[tuple[int, bytes]], name: str,
        identities: list[dict[str, Any]] | None = None,
    ) -> tuple[list[ProfileWrite], list[int], dict[str, int]]:
        """The file's writes with their line numbers, and counts of what was not written.

        `checked` counts every line examined (users outside the campaign filter are not part of
        the audience and are not counted); bad lines are `failed`, users without a value for any
        identifier group `skipped`. `identities` (for two-way fields) gets each write's user's
        identifiers.
        """
        writes: list[ProfileWrite] = []
        lines: list[int] = []
        tally = {"checked": 0}
        try:
            self._parse_lines(iter(numbered), name, writes, lines, tally, identities)
        except S3CorruptObject as exc:
            # A corrupt file never becomes readable: keep the users read before the damage,
            # count the rest as one failure, and let the file be recorded as applied so it does
            # not block every later run.
            self.run.log(
                f"{name}: {exc.message}; the {tally['checked']:,} users read before "
                "the damage are applied, the rest of the file is skipped",
                "error",
            )
            tally["failed"] = tally.get("failed", 0) + 1
        return writes, lines, tally

    def _parse_lines(
        self,
        numbered: Iterator[tuple[int, bytes]],
        name: str,
        writes: list[ProfileWrite],
        lines: list[int],
        tally: dict[str, int],
        identities: list[dict[str, Any]] | None = None,
    ) -> None:
        """Parse numbered lines into `writes` (see `_read_file` for the counting)."""
        seen_users: set[str] = set()
        for number, raw in numbered:
            try:
                user = orjson.loads(raw)
                if not isinstance(user, dict):
                    raise ValueError("not a JSON object")
            except (orjson.JSONDecodeError, ValueError) as exc:
                reason = (
                    str(exc)
                    if not isinstance(exc, orjson.JSONDecodeError)
                    else f"not valid JSON ({exc})"
                )
                self._bad_line(name, number, reason)
                tally["checked"] += 1
                tally["failed"] = tally.get("failed", 0) + 1
                continue
            try:
                if not self.mapper.in_audience(user):
                    continue
                write = self.mapper.write(user)
            except (TypeError, ValueError, AttributeError) as exc:
                # Valid JSON of an unexpected shape (say `"user_aliases": 5`): one bad line.
                self._bad_line(name, number, f"unexpected shape: {exc}")
                tally["checked"] += 1
                tally["failed"] = tally.get("failed", 0) + 1
                continue
            # Braze can, rarely, list a user twice in one export: apply it once.
            identity = str(user.get("braze_id") or user.get("external_id") or "")
            if identity:
                if identity in seen_users:
                    continue
                seen_users.add(identity)
            tally["checked"] += 1
            if write is None:
                tally["skipped"] = tally.get("skipped", 0) + 1
                continue
            writes.append(write)
            lines.append(number)
            if identities is not None:
                identities.append(EchoGuard.identity(user))

    def _bad_line(self, name: str, line: int, reason: str) -> None:
        if self.bad_lines_logged < MAX_LOGGED_BAD_LINES:
            self.run.log(f"{name}:{line}: {reason}", "warning")
        elif self.bad_lines_logged == MAX_LOGGED_BAD_LINES:
            self.run.log(
                f"more bad lines follow; only the first {MAX_LOGGED_BAD_LINES} are logged",
                "warning",
            )
        self.bad_lines_logged += 1


class _Download:
    """One export file's numbered lines, read by a thread of its own as soon as it is made.

    Iterating waits for the thread, then gives the lines and, if the read failed part way, raises
    its error after the lines read before it (as reading in place would).
    """

    def __init__(self, s3: S3Access, bucket: str, key: str) -> None:
        self._lines: list[tuple[int, bytes]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._read, args=(s3, bucket, key), name="bctui-s3-read", daemon=True
        )
        self._thread.start()

    def _read(self, s3: S3Access, bucket: str, key: str) -> None:
        try:
            self._lines.extend(s3.iter_lines(bucket, key))
        except BaseException as exc:  # handed to the reader, raised where it reads
            self._error = exc

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        self._thread.join()
        yield from self._lines
        if self._error is not None:
            raise self._error


class _DryRunRollback(Exception):
    """Raised inside a dry run's transaction so that nothing it did is committed."""
