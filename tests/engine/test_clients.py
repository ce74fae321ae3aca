"""Clients built from a connection: secrets resolved in one place, against the sandbox and moto."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bctui.braze import BrazeClient
from bctui.engine.clients import braze_client, braze_key, s3_access, s3_access_for
from bctui.engine.models import BrazeSettings, Connection, S3Settings
from bctui.engine.secrets import SecretError, SecretsFile
from bctui.errors import BctuiError
from bctui.s3 import S3BucketNotFound
from bctui.sandbox import Sandbox
from bctui.secret import Secret


def connection(box: Sandbox, *, s3: bool = True, bucket: str = "") -> Connection:
    settings = S3Settings(
        access_key_id=box.aws_access_key_id,
        secret_access_key="secret:s3",
        bucket=bucket or box.bucket,
        region=box.region,
        endpoint_url=box.s3_endpoint,
    )
    return Connection(
        name="Sandbox",
        braze=BrazeSettings(endpoint=box.braze_url, api_key="secret:braze"),
        s3=settings if s3 else None,
    )


@pytest.fixture
def secrets(tmp_path: Path, sandbox: Sandbox) -> SecretsFile:
    file = SecretsFile(tmp_path / "secrets.toml")
    file.set("braze", Secret(sandbox.api_key))
    file.set("s3", Secret(sandbox.aws_secret_access_key))
    return file


def test_braze_key_and_client_come_from_the_connection(
    sandbox: Sandbox, secrets: SecretsFile
) -> None:
    conn = connection(sandbox)
    assert braze_key(conn, secrets) == Secret(sandbox.api_key)
    client = braze_client(conn, secrets, timeout=7.0)
    assert isinstance(client, BrazeClient) and client.timeout == 7.0

    async def segments() -> int:
        async with client:
            return len(await client.list_segments())

    assert asyncio.run(segments()) == len(
        [s for s in sandbox.sim.catalog.segments if not s.archived]
    )


def test_an_unresolvable_key_names_the_connection_and_the_fix(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    empty = SecretsFile(tmp_path / "none.toml")
    with pytest.raises(SecretError) as caught:
        braze_client(connection(sandbox), empty)
    assert caught.value.where == 'connection "Sandbox" braze.api_key'
    assert "bctui secrets set braze" in caught.value.fix
    with pytest.raises(SecretError) as s3_caught:
        s3_access(connection(sandbox), empty)
    assert s3_caught.value.where == 'connection "Sandbox" s3.secret_access_key'


def test_s3_access_lists_the_sandbox_bucket(sandbox: Sandbox, secrets: SecretsFile) -> None:
    access = s3_access(connection(sandbox), secrets)
    access.check_bucket(sandbox.bucket)
    assert sandbox.bucket in access.list_buckets()
    assert access.endpoint_url == sandbox.s3_endpoint and access.region == sandbox.region
    with pytest.raises(S3BucketNotFound):
        s3_access(connection(sandbox, bucket="absent"), secrets).check_bucket("absent")


def test_s3_access_for_bare_settings(sandbox: Sandbox, secrets: SecretsFile) -> None:
    settings = connection(sandbox).s3
    assert settings is not None
    s3_access_for(settings, secrets).check_bucket(sandbox.bucket)
    with pytest.raises(SecretError) as caught:
        s3_access_for(settings, SecretsFile(Path("/nonexistent/secrets.toml")), where="here")
    assert caught.value.where == "here s3.secret_access_key"


def test_a_connection_without_s3_settings_says_how_to_add_them(
    sandbox: Sandbox, secrets: SecretsFile
) -> None:
    with pytest.raises(BctuiError) as caught:
        s3_access(connection(sandbox, s3=False), secrets)
    assert caught.value.where == 'connection "Sandbox"'
    assert "[connection.s3]" in caught.value.fix


def test_importing_the_clients_module_loads_neither_httpx_nor_boto3() -> None:
    import subprocess
    import sys

    code = (
        "import sys, bctui.engine.clients, bctui.engine.check, bctui.engine.lookups, "
        "bctui.engine.summary, bctui.engine.schedule\n"
        "print(sorted(m for m in ('httpx', 'boto3', 'botocore') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
