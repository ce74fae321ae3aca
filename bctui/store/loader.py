"""Loading profiles from JSON lines or CSV, streamed, in batched transactions.

Each record is one profile: property names to values (a scalar or a list), plus the reserved keys
`_id`, `_permission_level` and `_interactions_viewed`. A dump line (`{"id": …, "properties": {…},
…}`, as `iter_dump` writes it) is read as the same profile. A record goes to the profile with its
`_id` (created with that id if missing); else, with `match`, to the oldest profile having the
record's value of that property (created if none has it); else to a new profile. Every property
is merged with the load's strategy, except that the match property is never summed (with `sum`
its values are added). A bad record is reported with its line number and skipped; the rest
loads.

The format is JSON lines for `.jsonl`, `.ndjson` and `.json` files, CSV for `.csv` files, and
otherwise CSV unless the first non-blank character is `{`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final, cast

import orjson

from bctui.errors import BctuiError, InputError
from bctui.store.dump import DUMP_KEYS
from bctui.store.merge import STRATEGIES
from bctui.store.model import PERMISSION_LEVELS, Identifier, ProfileWrite
from bctui.store.store import ProfileStore
from bctui.store.transaction import Transaction
from bctui.store.values import MergeError, normalize
from bctui.store.writes import gc_paused

MAX_REPORTED_ERRORS: Final = 1000
# Batches are applied in one transaction for about this long before it commits: each commit
# writes every page it changed, so fewer, larger commits write less, while another process
# (a run) never waits long for the write lock.
COMMIT_SECONDS: Final = 1.0
RESERVED: Final = ("_id", "_permission_level", "_interactions_viewed")
JSON_SUFFIXES: Final = (".jsonl", ".ndjson", ".json")


@dataclass
class LoadReport:
    """What a load did. `lines` counts records read (blank lines are not records)."""

    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    ambiguous: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    """(line number, reason) of the first `MAX_REPORTED_ERRORS` rejected records."""
    errors_omitted: int = 0
    elapsed: float = 0.0

    def reject(self, line: int, reason: str) -> None:
        """Count a rejected record, keeping its reason while the list is short."""
        self.rejected += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((line, reason))
        else:
            self.errors_omitted += 1

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        data = asdict(self)
        data["errors"] = [{"line": line, "reason": reason} for line, reason in self.errors]
        return data


class _Rejected(Exception):
    """A record that cannot be loaded; the message is the reason."""


def load_file(
    store: ProfileStore,
    path: str | Path,
    *,
    match: str | None = None,
    strategy: str = "set",
    batch_size: int = 2000,
    progress: Callable[[LoadReport], None] | None = None,
) -> LoadReport:
    """Load a JSON-lines or CSV file (`.gz` files are decompressed; `-` is stdin) into the
    store in batched transactions; returns the report."""
    if strategy not in STRATEGIES:
        raise BctuiError(f'unknown merge strategy "{strategy}"',
                         fix=f"use one of {', '.join(STRATEGIES)}")
    if match is not None and (not match or match.startswith("_")):
        raise BctuiError(f'cannot match on "{match}"',
                         fix="name a property such as email (records with _id match by id)")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    name = "stdin" if str(path) == "-" else str(path)
    report = LoadReport()
    started = time.perf_counter()
    loader = _Loader(store, report, match, strategy, batch_size, progress)
    with _open(path) as stream:
        lines = _Lines(stream, name)
        if _is_csv(name, lines):
            loader.load(_csv_records(lines, name, report))
        else:
            loader.load(_json_records(lines, report))
    report.elapsed = time.perf_counter() - started
    return report


class _Loader:
    """Turns records into writes and applies them batch by batch."""

    def __init__(self, store: ProfileStore, report: LoadReport, match: str | None, strategy: str,
                 batch_size: int, progress: Callable[[LoadReport], None] | None) -> None:
        self._store = store
        self._report = report
        self._match = match
        self._strategy = strategy
        self._batch_size = batch_size
        self._progress = progress
        # An identifier is never summed: with `sum`, the match property's values are added.
        self._match_strategy = "add" if strategy == "sum" else strategy

    def load(self, records: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Apply the records batch by batch; commit about once a second (and at the end)."""
        batches = self._batches(records)
        while True:
            # Reading and merging allocate many short-lived objects and no cycles: the cycle
            # collector waits until the transaction is committed and they are gone again.
            with gc_paused():
                if not self._commit_some(batches):
                    break
            if self._progress is not None:
                self._progress(self._report)

    def _commit_some(self, batches: Iterator[list[tuple[int, ProfileWrite]]]) -> bool:
        """Apply batches in one transaction for about `COMMIT_SECONDS`; False when none was
        left."""
        first = next(batches, None)
        if first is None:
            return False
        with self._store.transaction() as tx:
            opened = time.monotonic()
            self._apply(tx, first)
            while time.monotonic() - opened < COMMIT_SECONDS:
                batch = next(batches, None)
                if batch is None:
                    break
                self._apply(tx, batch)
        return True

    def _batches(
        self, records: Iterable[tuple[int, dict[str, Any]]]
    ) -> Iterator[list[tuple[int, ProfileWrite]]]:
        pending: list[tuple[int, ProfileWrite]] = []
        for line, record in records:
            try:
                pending.append((line, self._write(record)))
            except _Rejected as exc:
                self._report.reject(line, str(exc))
                continue
            if len(pending) >= self._batch_size:
                yield pending
                pending = []
        if pending:
            yield pending

    def _apply(self, tx: Transaction, pending: list[tuple[int, ProfileWrite]]) -> None:
        report = self._report
        results = tx.apply_many([write for _, write in pending])
        for (line, _), result in zip(pending, results, strict=True):
            outcome = result.outcome
            if outcome == "created":
                report.created += 1
            elif outcome == "updated":
                report.updated += 1
            elif outcome == "unchanged":
                report.unchanged += 1
            else:
                report.reject(line, "; ".join(str(e) for e in result.errors) or outcome)
                continue
            if result.ambiguous:
                report.ambiguous += 1

    def _write(self, record: dict[str, Any]) -> ProfileWrite:
        if "id" in record and isinstance(record.get("properties"), dict):
            return self._dump_write(record)
        strategy = self._strategy
        profile_id: str | None = None
        level: str | None = None
        interactions: tuple[str, ...] = ()
        updates: list[tuple[str, str, object]] = []
        for key, value in record.items():
            if key[:1] == "_":
                if key == "_id":
                    profile_id = _profile_id(key, value)
                elif key == "_permission_level":
                    level = _permission_level(key, value)
                elif key == "_interactions_viewed":
                    interactions = _interactions(key, value)
                else:
                    raise _Rejected(f'unknown reserved key "{key}" (use {", ".join(RESERVED)})')
            elif key == self._match:
                updates.append((key, self._match_strategy, value))
            elif key:
                updates.append((key, strategy, value))
            else:
                raise _Rejected("a property name is empty")
        return ProfileWrite(profile_id, updates, level, interactions,
                            self._groups(record) if profile_id is None else ())

    def _dump_write(self, record: dict[str, Any]) -> ProfileWrite:
        extra = [key for key in record if key not in DUMP_KEYS]
        if extra:
            raise _Rejected(f'unexpected key "{extra[0]}" in a dump line '
                            f"(a dump line has {', '.join(DUMP_KEYS)})")
        profile_id = _profile_id("id", record["id"])
        if profile_id is None:
            raise _Rejected('"id" is empty')
        strategy = self._strategy
        updates: list[tuple[str, str, object]] = []
        for name, values in record["properties"].items():
            if not name:
                raise _Rejected("a property name is empty")
            updates.append((name, strategy, values))
        return ProfileWrite(profile_id, updates,
                            _permission_level("permission_level", record.get("permission_level")),
                            _interactions("interactions_viewed",
                                          record.get("interactions_viewed")))

    def _groups(self, record: dict[str, Any]) -> tuple[tuple[Identifier, ...], ...]:
        """One identifier group per value of the match property: the first that matches wins."""
        if self._match is None:
            return ()
        try:
            values = normalize(record.get(self._match))
        except MergeError:
            return ()  # the merge of that property reports the value
        return tuple(((self._match, value),) for value in values)


def _profile_id(key: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Rejected(f'"{key}" must be a profile id (a non-empty string)')
    return value.strip()


def _permission_level(key: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    level = value.strip().upper() if isinstance(value, str) else None
    if level not in PERMISSION_LEVELS:
        raise _Rejected(f'"{key}" is {value!r}; use one of {", ".join(PERMISSION_LEVELS)}')
    return level


def _interactions(key: str, value: object) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if item is None or item == "":
            continue
        if not isinstance(item, str):
            raise _Rejected(f'"{key}" must hold interaction ids (strings), not {item!r}')
        out.append(item)
    return tuple(out)


# -- reading --------------------------------------------------------------------------------


@contextlib.contextmanager
def _open(path: str | Path) -> Iterator[IO[bytes]]:
    if str(path) == "-":
        yield sys.stdin.buffer
        return
    target = Path(path)
    try:
        raw: IO[bytes] = open(target, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", where=str(target),
                         fix="check the path and the file's permissions") from exc
    stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw)) if target.suffix == ".gz" else raw
    with raw, stream:
        yield stream


class _Lines:
    """Numbered byte lines of the input, with the first non-blank one peeked for sniffing."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        self._name = name
        self._head: list[bytes] = []
        self.first = b""
        for line in self._read(iter(stream)):
            if not self._head:
                line = line.removeprefix(b"\xef\xbb\xbf")
            self._head.append(line)
            if line.strip():
                self.first = line.lstrip()[:1]
                break

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        rest = self._read(iter(self._stream))
        return enumerate(itertools.chain(self._head, rest), start=1)

    def _read(self, lines: Iterator[bytes]) -> Iterator[bytes]:
        count = len(self._head)
        while True:
            try:
                line = next(lines)
            except StopIteration:
                return
            except (OSError, EOFError) as exc:
                raise InputError(f"cannot read past line {count}: {exc}", where=self._name,
                                 fix="check that the file is complete and not corrupt") from exc
            count += 1
            yield line


def _is_csv(name: str, lines: _Lines) -> bool:
    suffix = Path(name.removesuffix(".gz")).suffix.lower()
    if suffix == ".csv":
        return True
    if lines.first == b"[":
        raise InputError("the file holds a JSON array, not JSON lines", where=name,
                         fix="write one JSON object per line (e.g. with `jq -c '.[]'`)")
    if suffix in JSON_SUFFIXES:
        return False
    return bool(lines.first) and lines.first != b"{"


def _json_records(lines: _Lines, report: LoadReport) -> Iterator[tuple[int, dict[str, Any]]]:
    loads = orjson.loads
    for number, raw in lines:
        if not raw.strip():
            continue
        report.lines += 1
        try:
            record = loads(raw)
        except orjson.JSONDecodeError as exc:
            report.reject(number, f"invalid JSON at column {exc.colno}: {exc.msg}")
            continue
        if type(record) is not dict:
            report.reject(number, f"expected a JSON object, found {_json_kind(record)}")
            continue
        yield number, record


def _csv_records(lines: _Lines, name: str, report: LoadReport) -> Iterator[tuple[int,
                                                                                  dict[str, Any]]]:
    bad: set[int] = set()

    def text() -> Iterator[str]:
        for number, raw in lines:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.add(number)
                yield raw.decode("utf-8", "replace")

    reader = csv.reader(text())
    header: list[str] = []
    header_line = 0
    for row in _rows(reader, report):
        if row[1]:
            header_line, header = row[0], [cell.strip() for cell in row[1]]
            break
    if not header:
        return
    unknown = [h for h in header if h.startswith("_") and h not in RESERVED]
    if unknown:
        raise InputError(f'unknown reserved column "{unknown[0]}"', where=f"{name}:{header_line}",
                         fix=f"rename the column; the reserved ones are {', '.join(RESERVED)}")
    width = len(header)
    repeated = {h for h in header if header.count(h) > 1}
    for (start, end), cells in _numbered(reader, report):
        if not cells:
            continue
        report.lines += 1
        if len(cells) != width:
            report.reject(start, f"expected {width} cells (one per header column), "
                                 f"found {len(cells)}")
            continue
        if bad and any(n in bad for n in range(start, end + 1)):
            report.reject(start, "the line is not valid UTF-8")
            continue
        record: dict[str, Any] = {}
        try:
            for column, cell in zip(header, cells, strict=True):
                if cell == "":
                    continue
                if not column:
                    raise _Rejected(f'a value ("{cell}") is in a column with no header')
                if column in repeated:
                    record.setdefault(column, []).append(cell)
                else:
                    record[column] = cell
        except _Rejected as exc:
            report.reject(start, str(exc))
            continue
        yield start, record


def _rows(reader: Any, report: LoadReport) -> Iterator[tuple[int, list[str]]]:
    for (start, _end), cells in _numbered(reader, report):
        yield start, cells


def _numbered(reader: Any, report: LoadReport) -> Iterator[tuple[tuple[int, int], list[str]]]:
    """CSV rows with the first and last physical line each spans."""
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            report.lines += 1
            report.reject(start, f"malformed CSV: {exc}")
            continue
        yield (start, reader.line_num), cells


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
