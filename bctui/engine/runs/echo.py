"""Two-way sync without echoes: an import tells the export goals of the same Braze workspace what
Braze holds, so a value just imported is not sent back, and a value Braze did not change does not
overwrite a local change.

A field is *two-way* when an import goal maps Braze field F to property P and an export goal of a
connection with the same workspace (same endpoint and API key) maps P to the Braze attribute F
names (`custom_attributes.X` is custom attribute X; a standard field such as `first_name` is the
standard attribute of that name). The *last known* Braze value of such an attribute for a profile
is what the export goal's `export_sent` record holds for it: what that export delivered, or what
an import last read. Per chunk of an import file (`EchoGuard.apply`), in the file's transaction:

1. the chunk's users are matched to profiles (a probe write that only fills identifiers);
2. one query reads those profiles and their `export_sent` records;
3. a two-way field's Braze value is applied (with its strategy) only when it differs from the
   last known value; when the local value changed too, Braze wins, counted for one warning line;
4. after the merge, the Braze values are written into the export goals' records, encoded as the
   export would send them, under the identifiers the export would use (only when the Braze user
   read is the one those identifiers name), so the export's byte-equality check sees "unchanged".

`echo_suppressed` (a count of the import goal) is the number of values this leaves out of the
next export: a profile's value now equals Braze's, and the export's record did not hold it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import orjson

from bctui.engine.clients import braze_key
from bctui.engine.models import Config, Connection, ExportGoal, ImportGoal, ImportMapping
from bctui.engine.runs import state as st
from bctui.engine.secrets import SecretError, SecretsFile
from bctui.store import ProfileWrite
from bctui.store.model import WriteResult
from bctui.store.values import MergeError, normalize

if TYPE_CHECKING:
    from bctui.engine.runs.exporter import MappingPlan
    from bctui.store.base import StoreTransaction

# Standard fields that a segment export carries and /users/track sets under the same name.
TRACKED_STANDARD: Final = frozenset({
    "country", "dob", "email", "email_subscribe", "first_name", "gender", "home_city",
    "language", "last_name", "phone", "push_subscribe", "time_zone",
})
# Keys of a /users/track object that are no custom attribute.
_NOT_CUSTOM: Final = TRACKED_STANDARD | {"external_id", "braze_id", "user_alias",
                                         "_update_existing_only"}
EXAMPLES: Final = 3
_UNKNOWN: Final = object()  # no last known value


def braze_attribute(path: str) -> str | None:
    """The /users/track attribute an import field path reads back, or None when none does."""
    head, _, rest = path.partition(".")
    if head == "custom_attributes":
        return rest if rest and "." not in rest and rest not in _NOT_CUSTOM else None
    return path if path in TRACKED_STANDARD else None


def workspace_id(conn: Connection, secrets: SecretsFile) -> str | None:
    """A short hash of the connection's endpoint and API key (None when the key cannot be
    resolved): equal for two connections of the same Braze workspace, and no key in it."""
    try:
        key = braze_key(conn, secrets)
    except SecretError:
        return None
    endpoint = conn.braze.endpoint.strip().rstrip("/").casefold()
    digest = hashlib.sha256(f"{endpoint}\n{key.reveal()}".encode())
    return digest.hexdigest()[:16]


def _same_workspace(a: Connection, b: Connection, secrets: SecretsFile) -> bool:
    if a is b:
        return True
    ours, theirs = workspace_id(a, secrets), workspace_id(b, secrets)
    if ours is not None and theirs is not None:
        return ours == theirs
    # A key that cannot be resolved here: the same reference on the same endpoint is the same key.
    return (a.braze.api_key == b.braze.api_key
            and a.braze.endpoint.rstrip("/").casefold() == b.braze.endpoint.rstrip("/").casefold())


@dataclass(frozen=True)
class TwoWay:
    """One two-way field as found in the config: import mapping → export goal's attribute."""

    connection: Connection
    goal: ExportGoal
    index: int  # the mapping's position in the import goal
    mapping: ImportMapping
    attribute: str


def two_way_fields(conn: Connection, goal: ImportGoal, connections: Sequence[Connection],
                   secrets: SecretsFile) -> list[TwoWay]:
    """The import goal's fields that enabled export goals of the same workspace send back."""
    found: list[TwoWay] = []
    peers = [c for c in connections if _same_workspace(conn, c, secrets)]
    if not any(c is conn for c in peers):
        peers.insert(0, conn)
    for index, mapping in enumerate(goal.mappings):
        attribute = braze_attribute(mapping.braze)
        if attribute is None:
            continue
        for peer in peers:
            for export in peer.goals:
                if not isinstance(export, ExportGoal) or not export.enabled:
                    continue
                if any(m.source == "property" and m.value == mapping.property
                       and m.braze == attribute for m in export.mappings):
                    found.append(TwoWay(peer, export, index, mapping, attribute))
    return found


def accumulating(field_: TwoWay) -> str:
    """The warning for a two-way field imported with `sum` or `add` (with its fix)."""
    m = field_.mapping
    return (f'import mapping {m.braze} → "{m.property}" uses strategy "{m.strategy}" and export '
            f'goal "{field_.goal.name}" of connection "{field_.connection.name}" sends '
            f'"{m.property}" back to the same Braze attribute "{field_.attribute}" of the same '
            f'workspace: each run would {"add Braze" if m.strategy == "sum" else "merge Braze"}'
            f"'s value into a value Braze already holds; fix: use strategy \"set\" (or "
            f'"clear") for a field synced both ways, or export to another Braze attribute')


def config_warnings(config: Config, secrets: SecretsFile) -> list[str]:
    """Every `sum`/`add` import of a field an export of the same workspace sends back."""
    out = []
    for conn in config.connections:
        for goal in conn.goals:
            if isinstance(goal, ImportGoal):
                for found in two_way_fields(conn, goal, config.connections, secrets):
                    if found.mapping.strategy in ("sum", "add"):
                        out.append(f'connection "{conn.name}" import goal "{goal.name}": '
                                   + accumulating(found))
    return out


@dataclass(frozen=True)
class _Pair:
    index: int
    property: str
    attribute: str
    plan: MappingPlan  # the export's mapping alone: how it encodes the property's values

    def encode(self, values: object) -> Any:
        """The value the export sends for these property values."""
        props = {self.property: values} if values else {}
        return self.plan.attributes("", props, 0, None, [])[self.attribute]  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Target:
    key: str
    ids: MappingPlan  # the export's identifier rules
    pairs: tuple[_Pair, ...]


def _identity(user: dict[str, Any]) -> dict[str, Any]:
    """What of a Braze user the export's identifiers are checked against."""
    aliases = {a.get("alias_label"): a.get("alias_name")
               for a in user.get("user_aliases") or () if isinstance(a, dict)}
    return {"external_id": user.get("external_id"), "braze_id": user.get("braze_id"),
            "email": user.get("email"), "phone": user.get("phone"), "user_alias": aliases}


def _names_user(ids: dict[str, Any], identity: dict[str, Any]) -> bool:
    """Whether the export's identifiers `ids` address the Braze user the import read."""
    for kind, value in ids.items():
        if kind == "user_alias":
            if identity["user_alias"].get(value["alias_label"]) != value["alias_name"]:
                return False
        elif identity.get(kind) is None or str(identity[kind]) != value:
            return False
    return True


def _idents(write: ProfileWrite) -> int:
    """How many identifier updates lead the write's updates (see `UserMapper.write`)."""
    return sum(len(group) for group in write.match)


_Record = tuple[dict[str, Any], dict[str, Any]]  # (last known attributes, export identifiers)


@dataclass
class EchoGuard:
    """Applies an import goal's writes where some fields are two-way (see the module)."""

    targets: tuple[_Target, ...]
    conflicts: int = 0
    examples: list[str] = field(default_factory=list)
    # Import mapping position → (position of the export goal in `targets`, pair).
    by_index: dict[int, list[tuple[int, _Pair]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for position, target in enumerate(self.targets):
            for pair in target.pairs:
                self.by_index.setdefault(pair.index, []).append((position, pair))

    @classmethod
    def build(cls, fields: Sequence[TwoWay]) -> EchoGuard | None:
        """The guard for these two-way fields, or None when there are none."""
        from bctui.engine.runs.exporter import MappingPlan  # httpx: only two-way imports

        grouped: dict[str, list[TwoWay]] = {}
        for found in fields:
            grouped.setdefault(st.goal_key(found.connection.name, found.goal.name), []).append(
                found)
        targets = []
        for key, group in grouped.items():
            goal = group[0].goal
            pairs = tuple(
                _Pair(f.index, f.mapping.property, f.attribute,
                      MappingPlan([m for m in goal.mappings if m.source == "property"
                                   and m.value == f.mapping.property
                                   and m.braze == f.attribute][:1], ()))
                for f in group)
            targets.append(_Target(key, MappingPlan((), goal.identifiers), pairs))
        return cls(tuple(targets)) if targets else None

    @staticmethod
    def identity(user: dict[str, Any]) -> dict[str, Any]:
        """What `apply` needs of each user besides its write."""
        return _identity(user)

    def apply(self, tx: StoreTransaction, writes: Sequence[ProfileWrite],
              identities: Sequence[dict[str, Any]]) -> tuple[list[WriteResult], int]:
        """Apply a chunk of writes in `tx`; returns their results and the echoes suppressed."""
        probes = [ProfileWrite(updates=w.updates[:_idents(w)], match=w.match, create=False)
                  for w in writes]
        probed = tx.apply_many(probes)
        keys = [t.key for t in self.targets]
        before = st.last_known(tx, keys, {r.profile_id for r in probed if r.profile_id})
        final: list[ProfileWrite] = []
        # Per write: the profile's properties and, per export goal, its record (see `_row`).
        seen: list[tuple[dict[str, Any], list[_Record | None]] | None] = []
        for write, probe, identity in zip(writes, probed, identities, strict=True):
            found = before.get(probe.profile_id) if probe.profile_id else None
            if found is None:
                seen.append(None)
                final.append(write)
                continue
            props = orjson.loads(found[0])
            records = [self._row(t, props, found[1], identity) for t in self.targets]
            seen.append((props, records))
            drop = self._unchanged(write, probe.profile_id or "", props, records)
            if drop:
                write = ProfileWrite(
                    updates=[u for i, u in enumerate(write.updates) if i not in drop],
                    match=write.match, create=write.create)
            final.append(write)
        # A write left with its identifiers only is the probe again: the probe's result is its.
        again = [i for i, (write, probe) in enumerate(zip(final, probed, strict=True))
                 if probe.profile_id is None or len(write.updates) > _idents(write)]
        results = list(probed)
        for i, result in zip(again, tx.apply_many([final[i] for i in again]), strict=True):
            # A probe that filled an identifier did part of the write: it updated the profile.
            results[i] = (replace(result, outcome="updated") if probed[i].outcome == "updated"
                          and result.outcome == "unchanged" else result)
        # Only profiles the writes changed (or created) are read again.
        after = st.stored_properties(tx, {r.profile_id for r, known in zip(results, seen,
                                                                             strict=True)
                                          if r.profile_id and (known is None
                                                               or r.outcome == "updated")})
        rows: list[tuple[str, str, bytes, bytes]] = []
        suppressed = 0
        for write, result, known, identity in zip(writes, results, seen, identities,
                                                  strict=True):
            pid = result.profile_id
            if pid is None:
                continue
            old = before[pid][1] if pid in before else {}
            if pid in after:
                props = orjson.loads(after[pid])
                records = [self._row(t, props, old, identity) for t in self.targets]
            elif known is not None:
                props, records = known
            else:
                continue
            suppressed += self._known(write, pid, props, records, old, rows)
        if rows:
            st.record_known(tx, rows)
        return results, suppressed

    def _row(self, target: _Target, props: dict[str, Any],
             rows: dict[str, tuple[bytes, bytes | None]],
             identity: dict[str, Any]) -> _Record | None:
        """(last known attributes, export identifiers) of a profile for one export goal; None
        when the export would address another Braze user than the one read."""
        ids = target.ids.identifiers(props)
        if ids is None or not _names_user(ids, identity):
            return None
        stored = rows.get(target.key)
        if stored is None:
            return {}, ids
        attrs, sent_ids = stored
        if sent_ids is not None and orjson.loads(sent_ids) != ids:
            return {}, ids  # sent to another user: what it holds says nothing of this one
        return orjson.loads(attrs), ids

    def _unchanged(self, write: ProfileWrite, pid: str, props: dict[str, Any],
                   records: list[_Record | None]) -> set[int]:
        """Positions of the write's two-way updates whose Braze value is the last known one."""
        first = _idents(write)
        drop: set[int] = set()
        for index, pairs in self.by_index.items():
            incoming = write.updates[first + index][2]
            same = changed = conflict = False
            for position, pair in pairs:
                record = records[position]
                last = _UNKNOWN if record is None else record[0].get(pair.attribute, _UNKNOWN)
                if last is _UNKNOWN:
                    changed = True
                    continue
                try:
                    braze = pair.encode(normalize(incoming))
                except MergeError:
                    changed = True
                    continue
                if braze == last:
                    same = True
                    continue
                changed = True
                local = pair.encode(props.get(pair.property))
                conflict = conflict or (local != last and local != braze)
            if same and not changed:
                drop.add(first + index)
            if conflict:
                self.conflicts += 1
                if len(self.examples) < EXAMPLES and pid not in self.examples:
                    self.examples.append(pid)
        return drop

    def _known(self, write: ProfileWrite, pid: str, props: dict[str, Any],
               records: list[_Record | None], old: dict[str, tuple[bytes, bytes | None]],
               out: list[tuple[str, str, bytes, bytes]]) -> int:
        """Queue the Braze values read into each export goal's record; the echoes suppressed."""
        dumps, sort = orjson.dumps, orjson.OPT_SORT_KEYS
        first = _idents(write)
        suppressed = 0
        for target, record in zip(self.targets, records, strict=True):
            if record is None:
                continue
            attrs, ids = record
            previous = dict(attrs)
            for pair in target.pairs:
                try:
                    braze = pair.encode(normalize(write.updates[first + pair.index][2]))
                except MergeError:
                    attrs.pop(pair.attribute, None)  # Braze's value is not one bctui sends
                    continue
                attrs[pair.attribute] = braze
                # The export would have sent it (what it compares with lacked it), and now won't.
                if (previous.get(pair.attribute) != braze
                        and pair.encode(props.get(pair.property)) == braze):
                    suppressed += 1
            encoded, encoded_ids = dumps(attrs, option=sort), dumps(ids, option=sort)
            if old.get(target.key) != (encoded, encoded_ids):
                out.append((target.key, pid, encoded, encoded_ids))
        return suppressed
