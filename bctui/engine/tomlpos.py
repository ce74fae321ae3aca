"""Line numbers for key paths in a TOML document, so validation errors can say where.

`tomllib` gives positions only for syntax errors. This scanner walks a document that `tomllib` has
already accepted and records the line where each key, array element and inline-table entry starts,
keyed by the same paths the validator uses, such as
``("connection", 0, "goal", 1, "mappings", 2, "strategy")``.
It is deliberately forgiving: anything it cannot follow is simply left without a line.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Scanner:
    """A cursor over the text with just enough TOML to skip values and read keys."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[Path, int] = {}

    # -- low level -----------------------------------------------------------------------------

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        chunk = self.text[self.pos : self.pos + count]
        self.line += chunk.count("\n")
        self.pos += count

    def skip_blank(self, *, newlines: bool) -> None:
        """Skip spaces, comments and (optionally) newlines."""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.advance()
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.advance((end if end >= 0 else len(self.text)) - self.pos)
            else:
                return

    def skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.advance((end + 1 if end >= 0 else len(self.text)) - self.pos)

    # -- keys and strings ----------------------------------------------------------------------

    def read_string(self) -> str:
        """Read a basic or literal string (single- or multi-line); return its raw content."""
        quote = self.peek()
        triple = self.text.startswith(quote * 3, self.pos)
        delim = quote * 3 if triple else quote
        self.advance(len(delim))
        start = self.pos
        while self.pos < len(self.text):
            if quote == '"' and self.peek() == "\\":
                self.advance(2)
                continue
            if self.text.startswith(delim, self.pos):
                content = self.text[start : self.pos]
                self.advance(len(delim))
                # A multi-line string may end with up to two extra quotes.
                while triple and self.peek() == quote:
                    self.advance()
                return content
            self.advance()
        return self.text[start:]

    def read_key(self) -> list[str]:
        """Read a dotted key: bare or quoted parts separated by dots."""
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            if self.peek() in "\"'":
                parts.append(self.read_string())
            else:
                match = _BARE_KEY.match(self.text, self.pos)
                if not match:
                    return parts
                parts.append(match.group())
                self.advance(len(match.group()))
            self.skip_blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.advance()

    # -- values --------------------------------------------------------------------------------

    def read_value(self, path: Path) -> None:
        """Skip one value, recording the lines of array elements and inline-table keys in it."""
        char = self.peek()
        if char in "\"'":
            self.read_string()
        elif char == "[":
            self.read_array(path)
        elif char == "{":
            self.read_inline_table(path)
        else:
            while self.pos < len(self.text) and self.peek() not in ",]}\n#":
                self.advance()

    def read_array(self, path: Path) -> None:
        self.advance()  # [
        index = 0
        while self.pos < len(self.text):
            self.skip_blank(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            self.lines.setdefault((*path, index), self.line)
            self.read_value((*path, index))
            index += 1
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()

    def read_inline_table(self, path: Path) -> None:
        self.advance()  # {
        while self.pos < len(self.text):
            self.skip_blank(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            line = self.line
            key = self.read_key()
            if not key:
                return
            full = (*path, *key)
            self.lines.setdefault(full, line)
            self.skip_blank(newlines=False)
            if self.peek() == "=":
                self.advance()
            self.skip_blank(newlines=False)
            self.read_value(full)
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()


def locate(text: str) -> dict[Path, int]:
    """Map each key path in `text` to the (1-based) line where it starts."""
    scanner = _Scanner(text)
    table: Path = ()
    counters: dict[tuple[str, ...], int] = {}  # array-of-tables name path → current index
    while scanner.pos < len(text):
        scanner.skip_blank(newlines=True)
        if scanner.pos >= len(text):
            break
        line = scanner.line
        if scanner.peek() == "[":
            is_array = text.startswith("[[", scanner.pos)
            scanner.advance(2 if is_array else 1)
            names = scanner.read_key()
            table = _table_path(names, counters, is_array=is_array)
            scanner.lines.setdefault(table, line)
            scanner.skip_line()
            continue
        key = scanner.read_key()
        if not key:
            scanner.skip_line()
            continue
        full = (*table, *key)
        scanner.lines.setdefault(full, line)
        scanner.skip_blank(newlines=False)
        if scanner.peek() == "=":
            scanner.advance()
        scanner.skip_blank(newlines=False)
        scanner.read_value(full)
    return scanner.lines


def _table_path(names: list[str], counters: dict[tuple[str, ...], int], *, is_array: bool) -> Path:
    """Turn a header's names into a path with the indices of the arrays of tables it passes."""
    path: list[str | int] = []
    for depth, name in enumerate(names):
        path.append(name)
        prefix = tuple(names[: depth + 1])
        last = depth == len(names) - 1
        if last and is_array:
            counters[prefix] = counters.get(prefix, -1) + 1
            # A new element starts its own sub-arrays afresh.
            for other in [
                k for k in counters if len(k) > len(prefix) and k[: len(prefix)] == prefix
            ]:
                del counters[other]
            path.append(counters[prefix])
        elif prefix in counters:
            path.append(counters[prefix])
    return tuple(path)


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    for end in range(len(path), 0, -1):
        found = lines.get(path[:end])
        if found is not None:
            return found
    return None
