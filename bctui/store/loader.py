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
import gc
import gzip
import itertools
import operator
import os
import pickle
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final, cast

import orjson

from bctui.errors import BctuiError, InputError
from bctui.store.base import Store, StoreTransaction
from bctui.store.dump import DUMP_KEYS
from bctui.store.merge import STRATEGIES
from bctui.store.model import PERMISSION_LEVELS, Identifier, ProfileWrite
from bctui.store.values import MergeError, normalize
from bctui.store.writes import (
    PreparedWrite,
    WriteLike,
    gc_paused,
    new_profile_id,
    prepared_props,
)

MAX_REPORTED_ERRORS: Final = 1000
# Batches are applied in one transaction for about this long before it commits: each commit
# writes every page it changed, so fewer, larger commits write less, while another process
# (a run) never waits long for the write lock.
COMMIT_SECONDS: Final = 1.0
RESERVED: Final = ("_id", "_permission_level", "_interactions_viewed")
JSON_SUFFIXES: Final = (".jsonl", ".ndjson", ".json")
# A JSON-lines file at least this large is read, parsed and merged into "new profile" form by a
# second process while this one writes (each process about half the work); below it, starting
# that process costs more than it saves.
PARALLEL_BYTES: Final = 8 * 1024 * 1024
_NOTHING_KNOWN: Final[dict[str, Any]] = {}
_LOADED: Final = frozenset(("created", "updated", "unchanged"))
_OUTCOME: Final = operator.attrgetter("outcome")
_AMBIGUOUS: Final = operator.attrgetter("ambiguous")


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
    store: Store,
    path: str | Path,
    *,
    match: str | None = None,
    strategy: str = "set",
    batch_size: int = 2000,
    progress: Callable[[LoadReport], None] | None = None,
    parallel: bool | None = None,
) -> LoadReport:
    """Load a JSON-lines or CSV file (`.gz` files are decompressed; `-` is stdin) into the
    store in batched transactions; returns the report.

    `parallel`: read a JSON-lines file in a second process (None: when it is large and the
    machine has another core); the store is written by this process alone either way.
    """
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
    prepared = False
    with _open(path) as stream:
        lines = _Lines(stream, name)
        if _is_csv(name, lines):
            loader.load(_csv_records(lines, name, report))
        elif _parallel(store, path, lines, parallel):
            prepared = True  # read again, from the start, by the reading process
        else:
            loader.load(_json_records(lines, report))
    if prepared:
        loader.load_prepared(path, name)
    report.elapsed = time.perf_counter() - started
    return report


class _Loader:
    """Turns records into writes and applies them batch by batch."""

    def __init__(self, store: Store, report: LoadReport, match: str | None, strategy: str,
                 batch_size: int, progress: Callable[[LoadReport], None] | None) -> None:
        self._store = store
        self._report = report
        self._match = match
        self._strategy = strategy
        self._batch_size = batch_size
        self._progress = progress
        self._write = _Writes(match, strategy).write

    def load(self, records: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Apply the records batch by batch; commit about once a second (and at the end)."""
        self._run(self._batches(records))

    def load_prepared(self, path: str | Path, name: str) -> None:
        """`load` of a JSON-lines file that a second process reads and prepares meanwhile."""
        self._run(self._prepared(path, name))

    def _run(self, batches: Generator[list[tuple[int, WriteLike]], None, None]) -> None:
        # Closed at once on an error too: a reading process stops now, not when the
        # traceback is gone.
        with contextlib.closing(batches):
            while True:
                # Reading and merging allocate many short-lived objects and no cycles: the
                # cycle collector waits until the transaction is committed and they are gone.
                with gc_paused():
                    if not self._commit_some(batches):
                        break
                if self._progress is not None:
                    self._progress(self._report)

    def _commit_some(self, batches: Iterator[list[tuple[int, WriteLike]]]) -> bool:
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
    ) -> Generator[list[tuple[int, WriteLike]], None, None]:
        pending: list[tuple[int, WriteLike]] = []
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

    def _prepared(
        self, path: str | Path, name: str
    ) -> Generator[list[tuple[int, WriteLike]], None, None]:
        """The batches a reading process sends (see `_read_and_prepare`), as writes."""
        # A fresh interpreter, not a fork (the caller may run threads) nor multiprocessing's
        # spawn (which runs the caller's main module again).
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        arguments = pickle.dumps((str(path), name, self._match, self._strategy,
                                  self._batch_size))
        # A pipe of its own (not its stdout, which a library might print to).
        pipe_read, pipe_write = os.pipe()
        try:
            reader = subprocess.Popen(
                [sys.executable, "-c",
                 "from bctui.store.loader import _reader_main; _reader_main()",
                 arguments.hex(), str(pipe_write)],
                stdin=subprocess.DEVNULL, env=env, pass_fds=(pipe_write,),
            )
        except BaseException:
            os.close(pipe_read)
            raise
        finally:
            os.close(pipe_write)  # the reader's end: our reads end (EOF) when it exits
        receive = _Frames(os.fdopen(pipe_read, "rb"))
        report = self._report
        write = self._write
        loads = orjson.loads

        def updates(raw: bytes) -> Sequence[tuple[str, str, object]]:
            return write(loads(raw)).updates

        try:
            while True:
                try:
                    message = pickle.loads(receive.read())
                except (EOFError, pickle.UnpicklingError, ValueError):
                    raise BctuiError("the process reading the file stopped unexpectedly",
                                     where=name,
                                     fix="try again; check the system's memory") from None
                if message[0] == "batch":
                    _, lines, errors, items = message
                    report.lines += lines
                    for line, reason in errors:
                        report.reject(line, reason)
                    batch: list[tuple[int, WriteLike]] = [
                        (number, write(loads(raw)) if props_json is None else
                         PreparedWrite(profile_id, level, interactions, groups, props_json,
                                       names, known, new_id, raw, updates))
                        for number, raw, profile_id, level, interactions, groups, props_json,
                        names, known, new_id in items
                    ]
                    if batch:
                        yield batch
                elif message[0] == "error":
                    _, kind, text, where, fix = message
                    error = InputError if kind == "InputError" else BctuiError
                    raise error(text, where=where, fix=fix)
                elif message[0] == "end":
                    return
                else:
                    raise BctuiError(f"the process reading the file sent {message[0]!r}",
                                     where=name, fix="report this as a bug")
        finally:
            receive.close()
            if reader.poll() is None:
                reader.terminate()
            reader.wait()

    def _apply(self, tx: StoreTransaction, pending: list[tuple[int, WriteLike]]) -> None:
        report = self._report
        results = tx.apply_many([write for _, write in pending])
        # Counted in C; only the rare failed, skipped or ambiguous results are looked at one
        # by one.
        outcomes = Counter(map(_OUTCOME, results))
        report.created += outcomes.pop("created", 0)
        report.updated += outcomes.pop("updated", 0)
        report.unchanged += outcomes.pop("unchanged", 0)
        if outcomes:
            for (line, _), result in zip(pending, results, strict=True):
                if result.outcome not in _LOADED:
                    report.reject(line, "; ".join(str(e) for e in result.errors)
                                  or result.outcome)
        if any(map(_AMBIGUOUS, results)):
            report.ambiguous += sum(1 for result in results
                                    if result.ambiguous and result.outcome in _LOADED)


class _Writes:
    """Turns records into writes (the same in the loading process and in a reading one)."""

    def __init__(self, match: str | None, strategy: str) -> None:
        self._match = match
        self._strategy = strategy
        # An identifier is never summed: with `sum`, the match property's values are added.
        self._match_strategy = "add" if strategy == "sum" else strategy

    def write(self, record: dict[str, Any]) -> ProfileWrite:
        if "id" in record and isinstance(record.get("properties"), dict):
            return self._dump_write(record)
        strategy = self._strategy
        match = self._match
        profile_id: str | None = None
        level: str | None = None
        interactions: tuple[str, ...] = ()
        updates: list[tuple[str, str, object]] = []
        append = updates.append
        for key, value in record.items():
            if key and key[0] != "_" and key != match:
                append((key, strategy, value))  # the common case first
            elif key[:1] == "_":
                if key == "_id":
                    profile_id = _profile_id(key, value)
                elif key == "_permission_level":
                    level = _permission_level(key, value)
                elif key == "_interactions_viewed":
                    interactions = _interactions(key, value)
                else:
                    raise _Rejected(f'unknown reserved key "{key}" (use {", ".join(RESERVED)})')
            elif key:
                append((key, self._match_strategy, value))  # the match property
            else:
                raise _Rejected("a property name is empty")
        if profile_id is not None or match is None:
            groups: tuple[tuple[Identifier, ...], ...] = ()
        else:
            value = record.get(match)
            if type(value) is str and value and "\x00" not in value:
                groups = (((match, value),),)  # the common case, without normalize
            else:
                groups = self._groups(record)
        return ProfileWrite(profile_id, updates, level, interactions, groups)

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


def _parallel(store: Store, path: str | Path, lines: _Lines, wanted: bool | None) -> bool:
    """Whether a second process reads the file: asked for, or (None) a large file of what
    are mostly new profiles (the reader prepares records as new profiles: for records that
    update profiles, its work would be wasted, and this process's stays the same)."""
    if str(path) == "-" or wanted is False or not sys.executable:
        return False
    if wanted:
        return True
    if (os.cpu_count() or 1) < 2 or str(path).endswith(".gz"):
        return False
    try:
        size = Path(path).stat().st_size
    except OSError:
        return False
    if size < PARALLEL_BYTES:
        return False
    records = size / max(len(lines.head_line), 1)  # an estimate from the first line's length
    held = store.query("SELECT max(pid) FROM profile").fetchone()[0] or 0
    return held < records / 2


class _Collected(LoadReport):
    """The reading process's tally: every rejection kept, to be sent on and reported there."""

    def reject(self, line: int, reason: str) -> None:
        """Keep the rejection (the loading process counts and caps them)."""
        self.errors.append((line, reason))


class _Frames:
    """Length-prefixed messages over a pipe."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def read(self) -> bytes:
        """The next message; EOFError when the pipe ends before one is whole."""
        head = self._stream.read(8)
        if len(head) < 8:
            raise EOFError
        size = int.from_bytes(head, "little")
        body = self._stream.read(size)
        if len(body) < size:
            raise EOFError
        return body

    def send_bytes(self, data: bytes) -> None:
        """Write one message."""
        self._stream.write(len(data).to_bytes(8, "little"))
        self._stream.write(data)
        self._stream.flush()

    def close(self) -> None:
        """Close the pipe."""
        self._stream.close()


def _reader_main() -> None:
    """Entry point of the reading process (see `_Loader._prepared`)."""
    path, name, match, strategy, batch_size = pickle.loads(bytes.fromhex(sys.argv[1]))
    out = _Frames(os.fdopen(int(sys.argv[2]), "wb"))
    sys.stdout = sys.stderr  # anything printed goes where the user sees it, not into `out`
    # Nothing it makes is cyclic, and a collection walks every live object: never collect.
    gc.disable()
    _read_and_prepare(path, name, match, strategy, batch_size, out)


def _read_and_prepare(path: str, name: str, match: str | None, strategy: str, batch_size: int,
                      out: _Frames) -> None:
    """The reading process: parse the JSON lines, validate each record and work out its new
    profile's properties, and send them batch by batch (with the lines read and the records
    rejected meanwhile) as `_Loader._prepared` reads them; a read error ends it."""
    tally = _Collected()
    write = _Writes(match, strategy).write
    dumps = pickle.dumps
    items: list[tuple[object, ...]] = []

    def send(kind: str) -> None:
        out.send_bytes(dumps((kind, tally.lines, tally.errors, items), pickle.HIGHEST_PROTOCOL))
        tally.lines = 0
        tally.errors = []

    try:
        with _open(path) as stream:
            for number, raw, record in _json_items(_Lines(stream, name), tally):
                try:
                    made = write(record)
                except _Rejected as exc:
                    tally.reject(number, str(exc))
                    continue
                props = prepared_props(made.updates)
                if props is None:  # the loading process makes the write from the line
                    items.append((number, raw, None, None, (), (), None, (), None, ""))
                else:
                    # A new profile's id is made here too (unused when a profile matches).
                    new_id = "" if made.profile_id else new_profile_id()
                    known = {match: props[match]} if match in props else _NOTHING_KNOWN
                    items.append((number, raw, made.profile_id, made.permission_level,
                                  made.interactions_viewed, made.match,
                                  orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode(),
                                  tuple(props), known, new_id))
                if len(items) >= batch_size:
                    send("batch")
                    items = []
        send("batch")
        out.send_bytes(dumps(("end",)))
    except BctuiError as exc:
        out.send_bytes(dumps(("error", type(exc).__name__, exc.message, exc.where, exc.fix)))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the loading process is gone or stopping
    except Exception as exc:
        out.send_bytes(dumps(("error", "BctuiError", f"cannot read the file: {exc!r}", name,
                              "check that the file is complete and not corrupt")))
    finally:
        out.close()


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
        self.head_line = b""  # the first non-blank line
        for line in self._read(iter(stream)):
            if not self._head:
                line = line.removeprefix(b"\xef\xbb\xbf")
            self._head.append(line)
            if line.strip():
                self.first = line.lstrip()[:1]
                self.head_line = line
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
    for number, _, record in _json_items(lines, report):
        yield number, record


def _json_items(lines: _Lines,
                report: LoadReport) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
    """(line number, the line, its object) of each JSON-object line; rejects the others."""
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
        yield number, raw, record


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
