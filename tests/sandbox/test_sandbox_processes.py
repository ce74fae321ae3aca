"""The S3 server, the Sandbox lifecycle, and the `python -m bctui.sandbox` command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import boto3
import httpx
import pytest

from bctui.errors import BctuiError
from bctui.sandbox import S3Server, Sandbox
from bctui.sandbox.settings import parse_faults

REPO = Path(__file__).resolve().parents[2]


def s3_client(endpoint: str) -> object:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="any",
        aws_secret_access_key="any",
        region_name="us-east-1",
    )


def test_s3_endpoint_fixture_starts_empty(s3_endpoint: str) -> None:
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="left-behind")  # type: ignore[attr-defined]
    assert client.list_buckets()["Buckets"]  # type: ignore[attr-defined]


def test_s3_endpoint_fixture_resets_between_tests(s3_endpoint: str) -> None:
    client = s3_client(s3_endpoint)
    assert client.list_buckets()["Buckets"] == []  # type: ignore[attr-defined]


def test_an_own_s3_server_starts_and_stops() -> None:
    with S3Server() as server:
        assert server.endpoint_url.startswith("http://127.0.0.1:")
        client = s3_client(server.endpoint_url)
        client.create_bucket(Bucket="own")  # type: ignore[attr-defined]
        server.reset()
        assert client.list_buckets()["Buckets"] == []  # type: ignore[attr-defined]
    assert not server.running
    with pytest.raises(RuntimeError):
        server.endpoint_url  # noqa: B018


def test_a_missing_moto_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto.server", None)
    with pytest.raises(BctuiError) as caught:
        S3Server().start()
    assert "bctui[sandbox]" in caught.value.render()


def test_sandbox_with_its_own_s3_creates_the_bucket() -> None:
    with Sandbox(users=5, bucket="mine", root="folder") as box:
        client = s3_client(box.s3_endpoint)
        names = [b["Name"] for b in client.list_buckets()["Buckets"]]  # type: ignore[attr-defined]
        assert names == ["mine"]
        assert box.root == "folder" and box.region == "us-east-1"
        with httpx.Client(base_url=box.braze_url) as http:
            ok = http.get("/segments/list", headers={"Authorization": f"Bearer {box.api_key}"})
            assert ok.status_code == 200
    with pytest.raises(RuntimeError):
        box.braze_url  # noqa: B018


def test_secrets_stay_out_of_reprs(sandbox: Sandbox) -> None:
    config = sandbox.sim.s3_config
    assert config is not None
    assert sandbox.aws_secret_access_key not in repr(config)
    assert sandbox.aws_secret_access_key not in repr(sandbox)
    assert sandbox.api_key not in repr(sandbox)


def test_a_taken_port_is_a_clear_error(sandbox: Sandbox, moto_server: S3Server) -> None:
    with pytest.raises(BctuiError) as caught:
        Sandbox(users=0, braze_port=sandbox.server.port, s3=moto_server).start()
    assert "--port" in caught.value.render()


def test_fault_option_parsing() -> None:
    assert parse_faults("429=0.05,500=0.1, drop=0.02") == {
        "fault_429": 0.05,
        "fault_500": 0.1,
        "fault_drop": 0.02,
    }
    for bad in ("503=0.1", "429", "429=lots", "drop=2"):
        with pytest.raises(ValueError):
            parse_faults(bad)


def test_the_command_prints_endpoints_serves_and_stops_on_sigint() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bctui.sandbox",
            "--users",
            "20",
            "--latency-ms",
            "0",
            "--faults",
            "500=0.0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("endpoint_url"):
                break
        text = "".join(lines)
        values = {
            row.split("  ", 1)[0].strip(): row.split("  ", 1)[1].strip()
            for row in lines
            if "  " in row and not row.startswith(" ")
        }
        url = values["Braze REST endpoint"]
        key = values["Braze API key"].split()[0]
        assert 'api_key = "env:BCTUI_SANDBOX_BRAZE_API_KEY"' in text
        assert f"export BCTUI_SANDBOX_BRAZE_API_KEY={key}" in text
        assert f'endpoint = "{url}"' in text
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
            assert http.get("/segments/list").status_code == 200
            assert http.get("/_sandbox/users/count").json()["count"] == 20
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_command_refuses_bad_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bctui.sandbox", "--faults", "429=7"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "429=7" in result.stderr
