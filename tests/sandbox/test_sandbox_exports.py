"""`/users/export/segment`: request validation, S3 layout, file contents, callback (§8)."""

from __future__ import annotations

import gzip
import io
import json
import re
import threading
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import httpx
import pytest

from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.sandbox.export_format import EXPORT_FIELDS


def fast(**changes: Any) -> SimulatorSettings:
    """Settings whose exports are written at once."""
    return SimulatorSettings(export_delay_seconds=0.0, export_file_interval=0.0, **changes)


PREFIX = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-(\d{10})$"
)


class CallbackServer:
    """A tiny local HTTP server that records the callback POSTs it receives."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.received = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append((self.headers.get("Content-Type", ""), self.rfile.read(length)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.received.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/braze/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def callback_server() -> Iterator[CallbackServer]:
    server = CallbackServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fast_box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """200 users, exports written at once in files of 50 users."""
    return make_sandbox(users=200, settings=fast(export_file_users=50))


def http(box: Sandbox) -> httpx.Client:
    return httpx.Client(
        base_url=box.braze_url, headers={"Authorization": f"Bearer {box.api_key}"}, timeout=10
    )


def s3(box: Sandbox) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=box.s3_endpoint,
        aws_access_key_id=box.aws_access_key_id,
        aws_secret_access_key=box.aws_secret_access_key,
        region_name=box.region,
    )


def segment_id(box: Sandbox, name: str) -> str:
    return next(s.id for s in box.sim.catalog.segments if s.name == name)


def export(box: Sandbox, **body: Any) -> httpx.Response:
    with http(box) as client:
        return client.post("/users/export/segment", json=body)


def read_lines(box: Sandbox, key: str) -> list[dict[str, Any]]:
    data = s3(box).get_object(Bucket=box.bucket, Key=key)["Body"].read()
    if key.endswith(".gz"):
        text = gzip.decompress(data)
    else:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            (member,) = archive.namelist()
            assert member.endswith(".txt")
            text = archive.read(member)
    return [json.loads(line) for line in text.decode("utf-8").splitlines()]


def finished(box: Sandbox) -> list[str]:
    assert box.sim.wait_for_exports(30)
    (job,) = box.sim.exports
    assert job.state == "done", job.error
    return sorted(job.keys)


def test_gzip_export_layout_and_files(fast_box: Sandbox) -> None:
    seg = segment_id(fast_box, "All Users")
    response = export(
        fast_box, segment_id=seg, fields_to_export=["external_id", "braze_id"], output_format="gzip"
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"object_prefix", "url", "message"}
    assert body["url"] is None and body["message"] == "success"
    match = PREFIX.match(body["object_prefix"])
    assert match, body["object_prefix"]
    started = int(match.group(1))
    day = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%d")

    keys = finished(fast_box)
    listed = s3(fast_box).list_objects_v2(Bucket=fast_box.bucket, Prefix="segment-export/")
    assert sorted(o["Key"] for o in listed["Contents"]) == keys
    pattern = re.compile(
        rf"^segment-export/{seg}/{day}/{re.escape(body['object_prefix'])}/[0-9a-f]{{32}}\.gz$"
    )
    assert all(pattern.match(k) for k in keys), keys
    rows = [row for key in keys for row in read_lines(fast_box, key)]
    assert len(keys) == 4  # 200 users, at most 50 a file
    assert all(len(read_lines(fast_box, k)) <= 50 for k in keys)
    assert len(rows) == 200
    assert {r["braze_id"] for r in rows} == {u["braze_id"] for u in fast_box.sim.users}
    # only the requested fields; alias-only users have no external_id, so it is omitted
    assert all(set(r) <= {"external_id", "braze_id"} for r in rows)
    assert any("external_id" not in r for r in rows)


def test_zip_is_the_default_with_one_txt_member(fast_box: Sandbox) -> None:
    seg = segment_id(fast_box, "Loyalty: Gold")
    response = export(
        fast_box, segment_id=seg, fields_to_export=["external_id", "custom_attributes"]
    )
    assert response.status_code == 201
    keys = finished(fast_box)
    assert keys and all(k.endswith(".zip") for k in keys)
    rows = [row for key in keys for row in read_lines(fast_box, key)]
    assert rows
    assert all(r["custom_attributes"]["loyalty_tier"] == "gold" for r in rows)


def test_the_reference_request_examples(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=100, settings=fast())
    seg = segment_id(box, "All Users")
    first = export(
        box,
        segment_id=seg,
        callback_endpoint="",
        output_format="zip",
        fields_to_export=["first_name", "email", "purchases", "custom_attributes"],
    )
    assert first.status_code == 201
    rows = [row for key in finished(box) for row in read_lines(box, key)]
    assert all(set(r) <= {"first_name", "email", "purchases", "custom_attributes"} for r in rows)
    assert any("purchases" in r for r in rows)
    assert all(
        set(p) == {"name", "first", "last", "count"} for r in rows for p in r.get("purchases", [])
    )

    box.sim.configure(export_file_users=5000)
    track = {
        "attributes": [
            {"external_id": "C0000001", "allergies": ["nuts"], "favorite_food": "pie", "other": 1}
        ]
    }
    with http(box) as client:
        assert client.post("/users/track", json=track).status_code == 201
    second = export(
        box,
        segment_id=seg,
        output_format="zip",
        fields_to_export=["first_name", "email", "purchases"],
        custom_attributes_to_export=["allergies", "favorite_food"],
    )
    assert second.status_code == 201
    assert box.sim.wait_for_exports(30)
    job = box.sim.exports[-1]
    rows = [row for key in job.keys for row in read_lines(box, key)]
    for row in rows:
        assert set(row.get("custom_attributes", {})) <= {"allergies", "favorite_food"}
    assert {"allergies": ["nuts"], "favorite_food": "pie"} in [
        r.get("custom_attributes") for r in rows
    ]


def test_every_documented_field_renders_in_its_shape(fast_box: Sandbox) -> None:
    seg = segment_id(fast_box, "All Users")
    response = export(
        fast_box, segment_id=seg, fields_to_export=sorted(EXPORT_FIELDS), output_format="gzip"
    )
    assert response.status_code == 201
    rows = [row for key in finished(fast_box) for row in read_lines(fast_box, key)]
    # no field is ever present without data
    assert not [k for r in rows for k, v in r.items() if v in (None, [], {}, "")]
    sample = next(r for r in rows if "campaigns_received" in r and "external_id" in r)
    assert re.match(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC$", sample["created_at"])
    assert re.match(r"^[0-9a-f]{24}$", sample["braze_id"])
    received = sample["campaigns_received"][0]
    assert {"name", "api_campaign_id", "last_received", "engaged", "converted"} <= set(received)
    campaign_ids = {c.id for c in fast_box.sim.catalog.campaigns}
    assert received["api_campaign_id"] in campaign_ids
    aliased = next(r for r in rows if "user_aliases" in r)
    assert set(aliased["user_aliases"][0]) == {"alias_name", "alias_label"}
    located = next(r for r in rows if "last_coordinates" in r)
    assert len(located["last_coordinates"]) == 2
    assert any(isinstance(r.get("custom_attributes", {}).get("preferences"), dict) for r in rows)


def test_callback_is_posted_when_done(fast_box: Sandbox, callback_server: CallbackServer) -> None:
    seg = segment_id(fast_box, "Newsletter Subscribers")
    response = export(
        fast_box,
        segment_id=seg,
        fields_to_export=["email"],
        callback_endpoint=callback_server.url,
        output_format="gzip",
    )
    assert response.status_code == 201
    assert callback_server.received.wait(30)
    ((content_type, body),) = callback_server.bodies
    assert content_type.startswith("application/json")
    assert json.loads(body) == {"success": True}
    finished(fast_box)
    assert fast_box.sim.exports[0].callback_status == 200


def test_no_callback_when_disabled(
    make_sandbox: Callable[..., Sandbox], callback_server: CallbackServer
) -> None:
    box = make_sandbox(users=20, settings=fast(callback=False))
    response = export(
        box,
        segment_id=segment_id(box, "All Users"),
        fields_to_export=["email"],
        callback_endpoint=callback_server.url,
    )
    assert response.status_code == 201
    finished(box)
    assert callback_server.bodies == []


def test_a_second_export_of_a_running_segment_is_429(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    # the first export waits an hour before writing, so it is certainly still running
    box = make_sandbox(users=20, settings=SimulatorSettings(export_delay_seconds=3600))
    seg = segment_id(box, "All Users")
    assert export(box, segment_id=seg, fields_to_export=["email"]).status_code == 201
    second = export(box, segment_id=seg, fields_to_export=["email"])
    assert second.status_code == 429
    assert seg in second.json()["message"]
    other = export(box, segment_id=segment_id(box, "Loyalty: Gold"), fields_to_export=["email"])
    assert other.status_code == 201


def test_an_empty_segment_writes_no_files_but_calls_back(
    fast_box: Sandbox, callback_server: CallbackServer
) -> None:
    seg = segment_id(fast_box, "Empty: Antarctica")
    response = export(
        fast_box, segment_id=seg, fields_to_export=["email"], callback_endpoint=callback_server.url
    )
    assert response.status_code == 201
    assert finished(fast_box) == []
    assert callback_server.received.wait(30)


def test_the_snapshot_is_taken_at_request_time(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=10, settings=SimulatorSettings(export_delay_seconds=0.5))
    with http(box) as client:
        body = {"attributes": [{"external_id": "snap", "first_name": "Before"}]}
        assert client.post("/users/track", json=body).status_code == 201
        seg = segment_id(box, "All Users")
        response = client.post(
            "/users/export/segment",
            json={"segment_id": seg, "fields_to_export": ["external_id", "first_name"]},
        )
        assert response.status_code == 201
        body = {
            "attributes": [
                {"external_id": "snap", "first_name": "After"},
                {"external_id": "late", "first_name": "Late"},
            ]
        }
        assert client.post("/users/track", json=body).status_code == 201
    rows = [row for key in finished(box) for row in read_lines(box, key)]
    assert {"external_id": "snap", "first_name": "Before"} in rows
    assert not any(r.get("external_id") == "late" for r in rows)
    assert len(rows) == 11


def test_users_created_by_track_are_in_matching_segments(fast_box: Sandbox) -> None:
    with http(fast_box) as client:
        body = {"attributes": [{"external_id": "nl-new", "country": "NL"}]}
        assert client.post("/users/track", json=body).status_code == 201
    response = export(
        fast_box,
        segment_id=segment_id(fast_box, "Country: Netherlands"),
        fields_to_export=["external_id", "country"],
    )
    assert response.status_code == 201
    rows = [row for key in finished(fast_box) for row in read_lines(fast_box, key)]
    assert {"external_id": "nl-new", "country": "NL"} in rows
    assert all(r["country"] == "NL" for r in rows)


def test_root_folder_prefixes_every_key(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=10, root="/braze/exports/", settings=fast())
    response = export(box, segment_id=segment_id(box, "All Users"), fields_to_export=["email"])
    assert response.status_code == 201
    keys = finished(box)
    assert keys and all(k.startswith("braze/exports/segment-export/") for k in keys)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"fields_to_export": ["email"]}, "segment_id"),
        ({"segment_id": "nope", "fields_to_export": ["email"]}, "segment_id"),
        ({"segment_id": "ALL"}, "fields_to_export"),
        ({"segment_id": "ALL", "fields_to_export": []}, "fields_to_export"),
        ({"segment_id": "ALL", "fields_to_export": ["email", "shoe_size"]}, "'shoe_size'"),
        (
            {"segment_id": "ALL", "fields_to_export": ["email"], "output_format": "csv"},
            "output_format",
        ),
        (
            {
                "segment_id": "ALL",
                "fields_to_export": ["email"],
                "custom_attributes_to_export": "a",
            },
            "custom_attributes_to_export",
        ),
    ],
)
def test_bad_export_requests_are_400_naming_the_problem(
    sandbox: Sandbox, client: httpx.Client, body: dict[str, Any], fragment: str
) -> None:
    if body.get("segment_id") == "ALL":
        body = {**body, "segment_id": segment_id(sandbox, "All Users")}
    response = client.post("/users/export/segment", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert sandbox.sim.exports == []


def test_archived_segments_cannot_be_exported(sandbox: Sandbox, client: httpx.Client) -> None:
    archived = next(s for s in sandbox.sim.catalog.segments if s.archived)
    response = client.post(
        "/users/export/segment", json={"segment_id": archived.id, "fields_to_export": ["email"]}
    )
    assert response.status_code == 400


def test_bench_mode_exports_generated_users(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=3000, settings=fast(bench_mode=True, export_file_users=1000))
    response = export(
        box,
        segment_id=segment_id(box, "All Users"),
        fields_to_export=["external_id", "braze_id", "email"],
        output_format="gzip",
    )
    assert response.status_code == 201
    keys = finished(box)
    rows = [row for key in keys for row in read_lines(box, key)]
    assert len(keys) == 3 and len(rows) == 3000
    assert len({r["braze_id"] for r in rows}) == 3000
    emails = [r["email"] for r in rows if "email" in r]
    assert len(set(emails)) == len(emails)
