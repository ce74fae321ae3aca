"""Line-by-line reading of export files from a stream of byte chunks, in constant memory."""

from __future__ import annotations

import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
# Most output one decompression step may produce, so a small chunk never balloons in memory.
MAX_STEP_OUTPUT = 1 << 15
READ_SIZE = 1 << 16


class CorruptData(Exception):
    """The bytes are not a valid (or complete) gzip or zip file."""


class LineSplitter:
    """Cuts bytes into lines, numbering every line (1-based) and yielding the non-blank ones."""

    def __init__(self) -> None:
        self.number = 0
        self._pending: list[bytes] = []

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """Lines completed by `data`."""
        if b"\n" not in data:
            if data:
                self._pending.append(data)
            return
        if self._pending:
            self._pending.append(data)
            data = b"".join(self._pending)
            self._pending = []
        lines = data.split(b"\n")
        tail = lines.pop()
        if tail:
            self._pending.append(tail)
        for line in lines:
            yield from self._emit(line)

    def finish(self) -> Iterator[tuple[int, bytes]]:
        """The last line, if the data did not end with a newline."""
        if self._pending:
            line = b"".join(self._pending)
            self._pending = []
            yield from self._emit(line)

    def _emit(self, line: bytes) -> Iterator[tuple[int, bytes]]:
        self.number += 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if line.strip():
            yield self.number, line


def detect_format(key: str, head: bytes) -> str:
    """`gzip`, `zip` or `plain`, from the first bytes (the key's suffix when they say nothing)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return "zip"
    lowered = key.lower()
    if lowered.endswith(".gz") and head:
        return "gzip"  # not gzip magic: will fail as corrupt with a clear message
    if lowered.endswith(".zip") and head:
        return "zip"
    return "plain"


def plain_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Lines of uncompressed data."""
    splitter = LineSplitter()
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.finish()


def gzip_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Lines of gzip data (several concatenated members allowed), decompressed incrementally."""
    splitter = LineSplitter()
    inflater = zlib.decompressobj(wbits=31)
    started = False
    try:
        for chunk in chunks:
            data = chunk
            while data:
                if inflater.eof:
                    if not data.strip(b"\x00"):
                        break  # zero padding after the last member
                    inflater = zlib.decompressobj(wbits=31)
                started = True
                yield from splitter.feed(inflater.decompress(data, MAX_STEP_OUTPUT))
                data = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            # Output held back by the step limit, with no input left to push it out.
            while not inflater.eof and inflater.unconsumed_tail == b"":
                out = inflater.decompress(b"", MAX_STEP_OUTPUT)
                if not out:
                    break
                yield from splitter.feed(out)
        if started and not inflater.eof:
            raise CorruptData("the gzip stream ends early (truncated file)")
    except zlib.error as exc:
        raise CorruptData(f"not valid gzip data ({exc})") from None
    yield from splitter.finish()


def zip_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """Lines of the `.txt` members of a zip (every member if none is `.txt`), in archive order.

    A zip is read from its end, so the data is first spooled to a temporary file. Line numbers run
    on across members.
    """
    with tempfile.TemporaryFile(prefix="bctui-zip-") as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        yield from _zip_members(spool)


def _zip_members(spool: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    splitter = LineSplitter()
    try:
        with zipfile.ZipFile(spool) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            texts = [info for info in members if ".txt" in info.filename.lower()]
            for info in texts or members:
                with archive.open(info) as member:
                    while block := member.read(READ_SIZE):
                        yield from splitter.feed(block)
                yield from splitter.finish()
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise CorruptData(f"not a valid zip file ({exc})") from None
