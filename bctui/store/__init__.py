"""The profile store: customer profiles in SQLite, merge strategies, segments, load and dump.

Never imports Textual or Rich.
"""

from __future__ import annotations

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
from bctui.store.store import ProfileStore, open_store, store_path
from bctui.store.transaction import Transaction
from bctui.store.values import Scalar

__all__ = [
    "DEFAULT_PERMISSION",
    "OPS",
    "PERMISSION_LEVELS",
    "STRATEGIES",
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
    "Transaction",
    "WriteResult",
    "dump_line",
    "iter_dump",
    "load_file",
    "merge",
    "normalize",
    "open_store",
    "segment_sql",
    "store_path",
]
