"""The profile store: customer profiles in SQLite, merge strategies, segments, load and dump.

Never imports Textual or Rich. Submodules load on first use (reading `bctui.store.X`), so that
importing one light part (say the segment model) does not load the loader and the writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bctui.lazy import lazy_attributes

if TYPE_CHECKING:
    from bctui.store.base import Cursor, Store, StoreTransaction
    from bctui.store.dump import dump_line, iter_dump
    from bctui.store.loader import LoadReport, load_file
    from bctui.store.merge import STRATEGIES, MergeError, merge, normalize
    from bctui.store.model import (
        DEFAULT_PERMISSION,
        PERMISSION_LEVELS,
        Identifier,
        Outcome,
        Profile,
        ProfileWrite,
        WriteResult,
    )
    from bctui.store.schema import Migration
    from bctui.store.segments import OPS, Rule, SegmentDef, segment_sql
    from bctui.store.store import ProfileStore, is_postgres_url, open_store, store_path
    from bctui.store.transaction import Transaction
    from bctui.store.values import Scalar

_EXPORTS = {
    "Cursor": "bctui.store.base",
    "Store": "bctui.store.base",
    "StoreTransaction": "bctui.store.base",
    "dump_line": "bctui.store.dump",
    "iter_dump": "bctui.store.dump",
    "LoadReport": "bctui.store.loader",
    "load_file": "bctui.store.loader",
    "STRATEGIES": "bctui.store.merge",
    "MergeError": "bctui.store.merge",
    "merge": "bctui.store.merge",
    "normalize": "bctui.store.merge",
    "DEFAULT_PERMISSION": "bctui.store.model",
    "PERMISSION_LEVELS": "bctui.store.model",
    "Identifier": "bctui.store.model",
    "Outcome": "bctui.store.model",
    "Profile": "bctui.store.model",
    "ProfileWrite": "bctui.store.model",
    "WriteResult": "bctui.store.model",
    "Migration": "bctui.store.schema",
    "OPS": "bctui.store.segments",
    "Rule": "bctui.store.segments",
    "SegmentDef": "bctui.store.segments",
    "segment_sql": "bctui.store.segments",
    "ProfileStore": "bctui.store.store",
    "open_store": "bctui.store.store",
    "is_postgres_url": "bctui.store.store",
    "store_path": "bctui.store.store",
    "Transaction": "bctui.store.transaction",
    "Scalar": "bctui.store.values",
}

__all__ = [
    "DEFAULT_PERMISSION",
    "OPS",
    "PERMISSION_LEVELS",
    "STRATEGIES",
    "Cursor",
    "Identifier",
    "LoadReport",
    "MergeError",
    "Migration",
    "Outcome",
    "Profile",
    "ProfileStore",
    "ProfileWrite",
    "Rule",
    "Scalar",
    "SegmentDef",
    "Store",
    "StoreTransaction",
    "Transaction",
    "WriteResult",
    "dump_line",
    "is_postgres_url",
    "iter_dump",
    "load_file",
    "merge",
    "normalize",
    "open_store",
    "segment_sql",
    "store_path",
]


__getattr__ = lazy_attributes(__name__, _EXPORTS)
