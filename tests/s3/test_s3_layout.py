"""Where Braze writes segment exports: the key layout."""

from __future__ import annotations

import datetime as dt

import pytest

from bctui.s3 import export_prefix, segment_root
from bctui.s3.layout import is_date_folder, is_export_file, requested_on

SEGMENT = "00290937-c037-4d82-9874-34f51977be32"
PREFIX = "833042b9-de14-419b-b1f9-2ec63a86e1a3-1736813469"


@pytest.mark.parametrize("root", ["", None, "/", "//"])
def test_prefix_without_root(root: str | None) -> None:
    assert export_prefix(root, SEGMENT, dt.date(2025, 1, 14), PREFIX) == (
        f"segment-export/{SEGMENT}/2025-01-14/{PREFIX}/"
    )


@pytest.mark.parametrize(
    "root", ["braze/exports", "/braze/exports/", "braze//exports/", "/braze/exports"]
)
def test_prefix_with_root_with_or_without_slashes(root: str) -> None:
    assert export_prefix(root, SEGMENT, "2025-01-14", f"/{PREFIX}/") == (
        f"braze/exports/segment-export/{SEGMENT}/2025-01-14/{PREFIX}/"
    )


def test_date_forms() -> None:
    aware = dt.datetime(2025, 1, 14, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    assert export_prefix("", "s", aware, "p").endswith("/2025-01-15/p/")  # UTC day
    assert export_prefix("", "s", dt.datetime(2025, 1, 14, 23, 30), "p").endswith("/2025-01-14/p/")
    assert segment_root("r", "s") == "r/segment-export/s/"


@pytest.mark.parametrize(
    ("segment", "date", "prefix"),
    [("", "2025-01-14", "p"), ("a/b", "2025-01-14", "p"), ("s", "14-01-2025", "p"),
     ("s", "2025-01-14", ""), ("s", "2025-01-14", "a/b")],
)  # fmt: skip
def test_bad_parts_are_refused(segment: str, date: str, prefix: str) -> None:
    with pytest.raises(ValueError):
        export_prefix("", segment, date, prefix)


def test_request_day_is_read_from_the_object_prefix() -> None:
    today = dt.date(2025, 6, 1)
    assert requested_on(PREFIX, today=today) == dt.date(2025, 1, 14)
    # Implausible times (e.g. "seconds since 2017" as the docs say, or the future) are ignored.
    assert requested_on("uuid-252000000", today=today) is None
    assert requested_on("uuid-1900000000", today=today) is None
    assert requested_on("no-timestamp", today=today) is None


def test_folder_and_file_names() -> None:
    assert is_date_folder("2025-01-14") and not is_date_folder("latest")
    assert is_export_file("a/b/0008ef2835610e9595291bc0b7f20568.gz")
    assert is_export_file("a/b/114f0226319130e1a4770f2602b5639a.ZIP")
    assert not is_export_file("a/b/_SUCCESS") and not is_export_file("a/b/")
