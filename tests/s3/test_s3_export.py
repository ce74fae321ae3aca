"""A 20,000-user segment export through the sandbox: layout, files of ≤ 5,000, constant memory."""

from __future__ import annotations

import asyncio
import re
import tracemalloc
from collections import Counter
from collections.abc import Callable

import orjson

from bctui.braze import BrazeClient, ExportStarted, Segment
from bctui.s3 import ExportFile, S3Access
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret

USERS = 20_000
FIELDS = ["external_id", "braze_id", "email", "first_name", "last_name", "custom_attributes"]


def _export(box: Sandbox) -> tuple[Segment, ExportStarted]:
    async def call() -> tuple[Segment, ExportStarted]:
        async with BrazeClient(box.braze_url, Secret(box.api_key)) as braze:
            segment = next(s for s in await braze.list_segments() if s.name == "All Users")
            return segment, await braze.export_segment(segment.id, FIELDS)

    return asyncio.run(call())


def test_a_20000_user_export_streams_back_in_constant_memory(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    settings = SimulatorSettings(export_delay_seconds=0, export_file_interval=0)
    box = make_sandbox(users=USERS, settings=settings, root="/braze/exports/")
    segment, started = _export(box)
    assert box.sim.wait_for_exports(timeout=120)

    access = S3Access(
        box.aws_access_key_id, Secret(box.aws_secret_access_key), endpoint_url=box.s3_endpoint
    )
    files = access.find_export_files(box.bucket, box.root, segment.id, started.object_prefix)
    layout = re.compile(
        rf"^braze/exports/segment-export/{re.escape(segment.id)}/\d{{4}}-\d{{2}}-\d{{2}}/"
        rf"{re.escape(started.object_prefix)}/[0-9a-f]{{32}}\.gz$"
    )
    assert len(files) >= USERS // 5000
    assert all(layout.match(f.key) for f in files), [f.key for f in files]

    # First pass: every user exactly once, at most 5,000 per file.
    per_file: Counter[str] = Counter()
    ids: set[str] = set()
    data_size = 0
    for item in files:
        for _, line in access.iter_lines(box.bucket, item.key):
            user = orjson.loads(line)
            ids.add(user["braze_id"])
            per_file[item.key] += 1
            data_size += len(line) + 1
    assert len(ids) == sum(per_file.values()) == USERS
    assert max(per_file.values()) <= 5000

    # Traced passes: reading must hold a chunk at a time, never the data. The figures include
    # moto's own copy of the object it is serving (it runs in this process).
    first_file, users = _peak_growth(access, box.bucket, files[:1])
    assert users == per_file[files[0].key]
    every_file, users = _peak_growth(access, box.bucket, files)
    assert users == USERS
    print(f"{data_size:,} bytes of JSON lines read with a peak growth of {every_file:,} bytes")
    assert every_file < data_size / 8
    assert every_file < first_file * 1.5  # four times the data, about the same memory


def _peak_growth(access: S3Access, bucket: str, files: list[ExportFile]) -> tuple[int, int]:
    """Peak traced-memory growth while streaming `files`, and the users read."""
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        users = 0
        for item in files:
            for _, line in access.iter_lines(bucket, item.key):
                users += line.count(b'"braze_id"')
        growth = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    return growth, users
