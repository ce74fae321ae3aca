"""Line streaming from gzip, zip and plain bytes, however the bytes are chunked."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from collections.abc import Iterator

import pytest

from bctui.s3.stream import CorruptData, detect_format, gzip_lines, plain_lines, zip_lines

TEXT = b'{"external_id": "a"}\n\n{"external_id": "b"}\r\n   \n{"external_id": "c"}'
EXPECTED = [
    (1, b'{"external_id": "a"}'),
    (3, b'{"external_id": "b"}'),
    (5, b'{"external_id": "c"}'),
]


def chunked(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 10_000])
def test_plain_and_gzip_lines_at_every_chunking(size: int) -> None:
    assert list(plain_lines(chunked(TEXT, size))) == EXPECTED
    assert list(gzip_lines(chunked(gzip.compress(TEXT), size))) == EXPECTED


def test_concatenated_gzip_members_and_zero_padding() -> None:
    data = gzip.compress(b"one\ntw") + gzip.compress(b"o\nthree\n") + b"\x00" * 16
    assert list(gzip_lines(chunked(data, 5))) == [(1, b"one"), (2, b"two"), (3, b"three")]


def test_highly_compressed_data_is_inflated_in_bounded_steps() -> None:
    line = b'{"external_id": "same", "x": "' + b"y" * 200 + b'"}\n'
    data = gzip.compress(line * 20_000)  # 4.6 MB of text in a few kB
    numbers = []
    for number, got in gzip_lines(chunked(data, 65536)):
        numbers.append(number)
        assert got == line[:-1]
    assert numbers == list(range(1, 20_001))


@pytest.mark.parametrize(
    ("data", "says"),
    [
        # mtime=0: the ids must be the same in every pytest-xdist worker, whatever the clock says
        (gzip.compress(b"a\nb\n" * 1000, mtime=0)[:-30], "truncated"),
        (b"\x1f\x8b\x08\x00garbage-garbage-garbage", "not valid gzip"),
        (gzip.compress(b"a\n", mtime=0) + b"trailing junk", "not valid gzip"),
    ],
    ids=["truncated", "garbage", "trailing-junk"],
)
def test_corrupt_gzip(data: bytes, says: str) -> None:
    with pytest.raises(CorruptData, match=says):
        list(gzip_lines(chunked(data, 16)))


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_zip_reads_the_txt_members_in_order_with_running_numbers() -> None:
    data = _zip({"b.txt": b"b1\nb2", "notes.md": b"ignored\n", "a.txt": b"a1\n\na2\n"})
    assert list(zip_lines(chunked(data, 100))) == [
        (1, b"b1"), (2, b"b2"), (3, b"a1"), (5, b"a2"),
    ]  # fmt: skip


def test_zip_without_txt_members_reads_every_member() -> None:
    data = _zip({"part-0.json": b"x\n", "dir/": b"", "part-1": b"y\n"})
    assert list(zip_lines([data])) == [(1, b"x"), (2, b"y")]


def test_corrupt_zip() -> None:
    data = bytearray(_zip({"a.txt": b"hello\n" * 1000}))
    data[60:80] = b"\x00" * 20  # inside the compressed member
    with pytest.raises(CorruptData, match="not a valid zip"):
        list(zip_lines([bytes(data)]))
    with pytest.raises(CorruptData, match="not a valid zip"):
        list(zip_lines([b"PK\x03\x04 not really a zip"]))


def test_detect_format() -> None:
    assert detect_format("x.gz", b"\x1f\x8b\x08") == "gzip"
    assert detect_format("x.zip", b"PK\x03\x04") == "zip"
    assert detect_format("x.bin", b"\x1f\x8b") == "gzip"  # the bytes win over the name
    assert detect_format("x.gz", b"{") == "gzip"  # a .gz that is not gzip fails as corrupt
    assert detect_format("x.json", b"{") == "plain"
    assert detect_format("x.gz", b"") == "plain"  # empty: no lines


def test_raw_deflate_is_not_mistaken_for_gzip() -> None:
    with pytest.raises(CorruptData):
        list(gzip_lines([zlib.compress(b"a\n")]))
