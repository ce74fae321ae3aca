"""Edit `connections.toml` from the UI without reformatting it.

`ConfigDocument` (in `config_document`) remembers the exact bytes it read. Its `save` refuses to
write when the file changed since, applies only the difference between the model read and the new
model to a tomlkit document of the original text (so comments, blank lines, key order, quoting and
the inline or standard form of every untouched table survive), validates the result strictly and
replaces the file atomically.

How a difference is applied: connections, goals and segments are matched by name (following
the renames the caller gives), and updated key by key against the plain-dict form of
`config_write`; a key the file leaves out stays out unless its value changes. New tables are
appended in the documented layout, deleted ones removed with what is inside them, and arrays of
tables reordered to the new model's order. A comment block directly above a table header (no
blank line between) belongs to that table and moves with it.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Comment, InlineTable, Item, Key, Null, Table, Whitespace

from bctui.engine import config_write as cw
from bctui.engine.config_document import ConfigChangedOnDisk, ConfigDocument
from bctui.engine.models import Config

_Parent = Container | Table
_BOM = "\ufeff"

__all__ = ["ConfigChangedOnDisk", "ConfigDocument", "Unsupported", "edit_text"]


def edit_text(
    text: str,
    old: Config,
    new: Config,
    *,
    renamed_connections: Mapping[str, str],
    renamed_goals: Mapping[tuple[str, str], str],
    renamed_segments: Mapping[str, str],
) -> str:
    """`text` (which reads as `old`) changed to read as `new`, keeping everything else as is."""
    bom = _BOM if text.startswith(_BOM) else ""
    doc = tomlkit.parse(text.removeprefix(_BOM))
    _adopt_comments(doc, doc)

    _update_entries(
        doc,
        {"store": cw.store_dict(old.store)},
        {"store": cw.store_dict(new.store)},
        tables=("store",),
    )
    _sync_tables(
        doc,
        "segment",
        [cw.segment_dict(s) for s in old.segments],
        [cw.segment_dict(s) for s in new.segments],
        renamed_segments,
        create=lambda d: _snippet_table(cw.segment_toml(d), "segment"),
        update=_update_entries,
        before_key="connection",
    )

    def update_connection(conn: Table, before: dict[str, Any], after: dict[str, Any]) -> None:
        old_goals, new_goals = before.pop("goal", []), after.pop("goal", [])
        _update_entries(conn, before, after, tables=cw.CONNECTION_TABLES)
        name = str(after["name"]).casefold()
        renames = {g: n for (c, g), n in renamed_goals.items() if c.casefold() == name}
        _sync_tables(
            conn,
            "goal",
            old_goals,
            new_goals,
            renames,
            create=lambda d: _snippet_table(cw.goal_toml(d), "connection", "goal"),
            update=_update_entries,
        )

    _sync_tables(
        doc,
        "connection",
        [cw.connection_dict(c) for c in old.connections],
        [cw.connection_dict(c) for c in new.connections],
        renamed_connections,
        create=lambda d: _snippet_table(cw.connection_toml(d), "connection"),
        update=update_connection,
    )
    out = doc.as_string()
    # Moving tables can leave blank lines at the very end; keep the file's own ending.
    ending = text[len(text.rstrip("\n")) :] or "\n"
    out = out.rstrip("\n") + ending
    if "\r\n" in text:  # new lines in the file's own line ending
        out = out.replace("\r\n", "\n").replace("\n", "\r\n")
    return bom + out


# -- reading -----------------------------------------------------------------------------------


# -- key-by-key updates ------------------------------------------------------------------------


def _update_entries(
    parent: _Parent,
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    tables: tuple[str, ...] = (),
) -> None:
    """Change the entries of `parent` whose value differs between `old` and `new`.

    `tables` names the dict-valued keys written as standard tables when they are new here.
    """
    for key in old:
        if key not in new and key in parent:
            del parent[key]
    for key, value in new.items():
        if key in old and old[key] == value:
            continue
        before = old.get(key)
        existing = _entry(parent, key)
        if isinstance(value, Mapping) and isinstance(existing, Table) and _is_header(existing):
            _update_entries(existing, before if isinstance(before, Mapping) else {}, value)
        elif isinstance(value, Mapping) and isinstance(existing, InlineTable):
            parent[key] = _parse_value(
                _inline_text(existing, before if isinstance(before, Mapping) else {}, value)
            )
        elif existing is not None:
            parent[key] = _parse_value(cw.toml_value(value, indent=_indent_of(existing)))
        elif isinstance(value, Mapping) and key in tables:
            _insert_table(parent, key, value)
        else:
            _insert_value(parent, key, _parse_value(cw.toml_value(value)), list(new))


def _inline_text(existing: InlineTable, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The inline table `existing` with the changes from `old` to `new`, as TOML text."""
    parts: list[str] = []
    seen: set[str] = set()
    for key, item in existing.value.body:
        if key is None or isinstance(item, Null):
            continue
        name = key.key
        seen.add(name)
        if name not in new:
            if name not in old:  # a key the model leaves out (an empty list, say): kept
                parts.append(f"{key.as_string().strip()} = {item.as_string().strip()}")
            continue
        value = new[name]
        if name in old and old[name] == value:
            text = item.as_string().strip()
        elif isinstance(value, Mapping) and isinstance(item, InlineTable):
            before = old.get(name)
            text = _inline_text(item, before if isinstance(before, Mapping) else {}, value)
        else:
            text = cw.toml_value(value)
        parts.append(f"{key.as_string().strip()} = {text}")
    parts += [f"{cw.toml_key(k)} = {cw.toml_value(v)}" for k, v in new.items() if k not in seen]
    if not parts:
        return "{}"
    pad = "" if re.match(r"^\{[^\s}]", existing.as_string().strip()) else " "
    return "{" + pad + ", ".join(parts) + pad + "}"


def _parse_value(text: str) -> Item:
    """A tomlkit item of exactly this text."""
    item = tomlkit.parse(f"v = {text}\n").item("v")
    assert isinstance(item, Item)
    return item


def _indent_of(item: Item) -> str:
    """The item indentation of a multi-line array (two spaces otherwise)."""
    found = re.search(r"\n([ \t]+)\S", item.as_string())
    return found.group(1) if found else "  "


def _entry(parent: _Parent, key: str) -> Item | None:
    """The item at `key` (not its plain value), or None."""
    if key not in parent:
        return None
    item = parent.item(key)
    if not isinstance(item, Item):  # a table split over several places (dotted keys, say)
        raise Unsupported(key)
    return item


def _insert_value(parent: _Parent, key: str, item: Item, order: list[str]) -> None:
    """Add a plain `key = value` after the key that precedes it in `order` (or the last one)."""
    body = _container(parent).body
    positions = {
        k.key: i
        for i, (k, v) in enumerate(body)
        if k is not None and not isinstance(v, Table | AoT | Null)
    }
    earlier = [positions[k] for k in order[: order.index(key)] if k in positions]
    later = [positions[k] for k in order[order.index(key) + 1 :] if k in positions]
    if earlier:
        index = max(earlier) + 1
    elif later:
        index = min(later)
    else:
        index = max(positions.values(), default=-1) + 1
    _insert_at(parent, index, key, item)


def _insert_table(parent: _Parent, key: str, value: Mapping[str, Any]) -> None:
    """Add a new standard table, after the other tables and before any array of tables."""
    prefix = "connection." if key in cw.CONNECTION_TABLES else ""
    snippet = f"[{prefix}{key}]\n" + cw.table_body(value)
    table = _snippet_table(snippet, *(["connection"] if prefix else []), key)
    body = _container(parent).body
    index = next(
        (i for i, (k, v) in enumerate(body) if k is not None and isinstance(v, AoT)), len(body)
    )
    _insert_at(parent, index, key, table)
    table.trivia.indent = ""  # tomlkit adds a newline of its own when appending
    _ensure_blank_before(parent, index, table)
    _ensure_blank_after(table)


def _insert_at(parent: _Parent, index: int, key: str, item: Item) -> None:
    container = _container(parent)
    if index >= len(container.body):
        container.append(key, item)
    else:
        container._insert_at(index, key, item)
    if isinstance(parent, Table):
        dict.__setitem__(parent, key, item)  # the Table's mapping view of its container


# -- arrays of tables --------------------------------------------------------------------------


def _sync_tables(
    parent: _Parent,
    key: str,
    old_items: list[dict[str, Any]],
    new_items: list[dict[str, Any]],
    renames: Mapping[str, str],
    *,
    create: Callable[[dict[str, Any]], Table],
    update: Callable[[Table, dict[str, Any], dict[str, Any]], None],
    before_key: str | None = None,
) -> None:
    """Make the array of tables `parent[key]` hold `new_items`, matched by name to `old_items`."""
    if old_items == new_items:
        return
    aot = _entry(parent, key) if old_items else None
    old_tables: list[Table] = list(aot.body) if isinstance(aot, AoT) else []
    if len(old_tables) != len(old_items):
        raise Unsupported(key)
    by_name = {
        renames.get(item["name"], item["name"]).casefold(): index
        for index, item in enumerate(old_items)
    }
    tables: list[Table] = []
    used: set[int] = set()
    for item in new_items:
        index = by_name.get(str(item["name"]).casefold())
        if index is None or index in used:
            tables.append(create(item))
            continue
        used.add(index)
        update(old_tables[index], dict(old_items[index]), dict(item))
        tables.append(old_tables[index])
    if len(tables) == len(old_tables) and all(map(operator.is_, tables, old_tables)):
        return
    if not tables:
        del parent[key]
        if isinstance(parent, Table):
            _ensure_blank_after(parent)  # what followed the last table now follows the parent
        return
    indents = [t.trivia.indent for t in tables]
    if isinstance(aot, AoT):
        del aot[:]
        for table in tables:
            aot.append(table)
    else:
        aot = tomlkit.aot()
        for table in tables:
            aot.append(table)
        body = _container(parent).body
        index = next(
            (i for i, (k, _) in enumerate(body) if k is not None and k.key == before_key),
            len(body),
        )
        _insert_at(parent, index, key, aot)
    for table, indent in zip(tables, indents, strict=True):
        table.trivia.indent = indent  # tomlkit adds newlines of its own when appending
    for table in tables:
        _ensure_blank_after(table)
    if not old_tables or old_tables[0] is not tables[0]:
        body = _container(parent).body
        index = next(i for i, (_, v) in enumerate(body) if v is aot)
        _ensure_blank_before(parent, index, tables[0])


def _snippet_table(text: str, *path: str) -> Table:
    """The table at `path` of the TOML `text` (an array of tables' first element)."""
    item: Any = tomlkit.parse(text)
    for part in path:
        item = item[part]
    if isinstance(item, AoT):
        item = item[0]
    assert isinstance(item, Table)
    return item


class Unsupported(Exception):
    """The file's layout is one the in-place edit does not handle."""


# -- comments and blank lines ------------------------------------------------------------------


def _adopt_comments(container: Container, tail: Container) -> Container:
    """Move each comment block that sits directly above a table header into that header's indent.

    tomlkit keeps such a comment at the end of whatever precedes the header; moved there, it
    travels with its table when tables are reordered or deleted. The text is unchanged. Returns
    the container whose end is the end of what was walked.
    """
    for key, item in list(container.body):
        if key is None or key.is_dotted() or not isinstance(item, Table | AoT):
            continue
        for table in [item] if isinstance(item, Table) else list(item.body):
            if isinstance(item, Table) and table.is_super_table():
                tail = _adopt_comments(table.value, tail)  # renders no header of its own
                continue
            table.trivia.indent = _split_comments(tail, container, key) + table.trivia.indent
            tail = _adopt_comments(table.value, table.value)
    return tail


def _split_comments(tail: Container, owner: Container, key: Key) -> str:
    """Remove the comment lines right above `key`'s header (no blank line between) from `tail`."""
    body = tail.body
    end = len(body)
    if tail is owner:  # the header follows plain entries of the same container
        end = next(i for i, (k, _) in enumerate(body) if k is not None and k == key)
    start = end
    while start > 0 and body[start - 1][0] is None and isinstance(body[start - 1][1], Comment):
        start -= 1
    if start == end:
        return ""
    text = "".join(item.as_string() for _, item in body[start:end])
    for index in range(start, end):
        body[index] = (None, Null())  # keeps the container's key positions valid
    return text


def _tail(table: Table) -> Container:
    """The container whose last line is the table's last line."""
    container = table.value
    while True:
        last = next((v for k, v in reversed(container.body) if k is not None), None)
        if isinstance(last, AoT) and last.body:
            container = last.body[-1].value
        elif isinstance(last, Table):
            container = last.value
        else:
            return container


def _ensure_blank_after(table: Table) -> None:
    """End the table with a blank line, so a header that follows stands apart."""
    tail = _tail(table)
    text = tail.as_string()
    if text.endswith("\n\n"):
        return
    tail.add(tomlkit.ws("\n" if text.endswith("\n") or not text else "\n\n"))


def _ensure_blank_before(parent: _Parent, index: int, table: Table) -> None:
    """Put a blank line between the entry before `index` in `parent` and `table`'s header."""
    body = _container(parent).body
    for key, item in reversed(body[:index]):
        if isinstance(item, Null):
            continue
        if isinstance(item, AoT) and item.body:
            _ensure_blank_after(item.body[-1])
        elif isinstance(item, Table) and key is not None and not key.is_dotted():
            _ensure_blank_after(item)
        elif not (
            isinstance(item, Whitespace) and "\n" in item.as_string()
        ) and not table.trivia.indent.startswith("\n"):
            table.trivia.indent = "\n" + table.trivia.indent
        return


def _container(parent: _Parent) -> Container:
    return parent if isinstance(parent, Container) else parent.value


def _is_header(table: Table) -> bool:
    """A table written with its own `[header]` (not a dotted key or a super table)."""
    return not table.is_super_table()
