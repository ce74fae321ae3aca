"""Key, bucket and connection checks against the Braze sandbox and moto (with and without IAM)."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bctui.braze import PermissionReport, PermissionState
from bctui.engine.check import (
    CAMPAIGN_FILTER,
    NEEDED,
    check_bucket,
    check_connection,
    check_key,
    list_buckets,
    needed_permissions,
)
from bctui.engine.models import (
    Audience,
    BrazeSettings,
    Connection,
    ExportGoal,
    IdentifierPair,
    ImportGoal,
    S3Settings,
)
from bctui.engine.secrets import SecretsFile
from bctui.s3 import S3CredentialsError, S3Unreachable
from bctui.sandbox import Sandbox
from bctui.secret import Secret

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "s3"))
from s3_standin import MotoWithAuth

if TYPE_CHECKING:
    from bctui.engine.models import Goal

IDS = ((IdentifierPair("external_id", "ext"),),)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def import_goal(campaigns: tuple[str, ...] = ()) -> ImportGoal:
    return ImportGoal("in", Audience("seg", campaign_ids=campaigns), IDS)


def connection(
    box: Sandbox, *goals: Goal, key: str = "secret:braze", s3: bool = True
) -> Connection:
    settings = S3Settings(
        access_key_id=box.aws_access_key_id,
        secret_access_key="secret:s3",
        bucket=box.bucket,
        region=box.region,
        endpoint_url=box.s3_endpoint,
    )
    return Connection(
        name="Sandbox",
        braze=BrazeSettings(endpoint=box.braze_url, api_key=key),
        s3=settings if s3 else None,
        goals=goals,
    )


@pytest.fixture
def secrets(tmp_path: Path, sandbox: Sandbox) -> SecretsFile:
    file = SecretsFile(tmp_path / "secrets.toml")
    file.set("braze", Secret(sandbox.api_key))
    file.set("s3", Secret(sandbox.aws_secret_access_key))
    return file


@pytest.fixture(scope="module")
def moto_auth() -> Iterator[MotoWithAuth]:
    server = MotoWithAuth()
    try:
        yield server
    finally:
        server.close()


def test_needed_permissions_follow_the_goals() -> None:
    braze = BrazeSettings("https://rest.iad-01.braze.com", "env:K")
    export = ExportGoal("out", "vip", IDS)
    assert needed_permissions(Connection("c", braze)) == set()
    assert needed_permissions(Connection("c", braze, goals=(export,))) == {"users.track"}
    both = Connection("c", braze, goals=(import_goal(), export))
    assert needed_permissions(both) == {*NEEDED["import"], "users.track"}
    filtered = Connection("c", braze, goals=(import_goal(("camp-1",)),))
    assert needed_permissions(filtered) == {*NEEDED["import"], *CAMPAIGN_FILTER}


def test_check_key_per_permission(sandbox: Sandbox) -> None:
    full = check_key(sandbox.braze_url, Secret(sandbox.api_key))
    assert full.ok and not full.key_invalid and len(full.checks) == 6
    limited = check_key(sandbox.braze_url, Secret(sandbox.key_with("users.track")))
    assert limited.state("users.track") is PermissionState.OK
    assert limited.state("segments.list") is PermissionState.MISSING
    bogus = check_key(sandbox.braze_url, Secret("bogus-key-0123456789abcdef"))
    assert bogus.key_invalid and "bogus-key" not in " ".join(bogus.lines())
    gone = check_key(f"http://127.0.0.1:{closed_port()}", Secret("x" * 20))
    assert gone.unreachable


def test_check_key_from_a_worker_thread(sandbox: Sandbox) -> None:
    found: list[PermissionReport] = []
    worker = threading.Thread(
        target=lambda: found.append(check_key(sandbox.braze_url, Secret(sandbox.api_key)))
    )
    worker.start()
    worker.join(timeout=30)
    assert found and found[0].ok


def test_check_bucket_answers_and_never_raises(
    tmp_path: Path, sandbox: Sandbox, secrets: SecretsFile
) -> None:
    settings = connection(sandbox).s3
    assert settings is not None
    assert check_bucket(settings, secrets) == (
        True,
        f"bucket {sandbox.bucket} is reachable and can be listed",
    )
    ok, message = check_bucket(S3Settings(**{**vars(settings), "bucket": "absent"}), secrets)
    assert not ok and "'absent'" in message and "does not exist" in message
    ok, message = check_bucket(settings, SecretsFile(tmp_path / "none.toml"), where="conn")
    assert not ok and "conn s3.secret_access_key" in message and "bctui secrets set s3" in message


def test_list_buckets_for_the_bucket_picker(sandbox: Sandbox, moto_auth: MotoWithAuth) -> None:
    names = list_buckets(
        sandbox.aws_access_key_id,
        Secret(sandbox.aws_secret_access_key),
        region=sandbox.region,
        endpoint_url=sandbox.s3_endpoint,
    )
    assert sandbox.bucket in names and names == sorted(names)
    wrong = "Wrong/Secret/Key/That/Is/Long/Enough0000"
    with pytest.raises(S3CredentialsError) as caught:
        list_buckets(moto_auth.key_id, Secret(wrong), endpoint_url=moto_auth.url)
    assert "secret access key" in caught.value.fix and wrong not in str(caught.value)
    with pytest.raises(S3Unreachable):
        list_buckets("AKIA", Secret("x" * 20), endpoint_url=f"http://127.0.0.1:{closed_port()}")


def test_check_connection_full_key(sandbox: Sandbox, secrets: SecretsFile) -> None:
    result = check_connection(connection(sandbox, import_goal()), secrets)
    assert result.usable and result.braze_ok and result.s3_ok
    assert result.needed == set(NEEDED["import"]) and result.lacking == []
    assert result.report.ok


def test_check_connection_lacking_permissions(sandbox: Sandbox, secrets: SecretsFile) -> None:
    secrets.set("limited", Secret(sandbox.key_with("users.track", "segments.list")))
    conn = connection(sandbox, import_goal(), key="secret:limited")
    result = check_connection(conn, secrets)
    assert not result.usable and result.s3_ok
    assert sorted(result.lacking) == ["segments.details", "users.export.segment"]


def test_check_connection_without_s3_and_with_a_broken_bucket(
    sandbox: Sandbox, secrets: SecretsFile
) -> None:
    exports_only = connection(sandbox, ExportGoal("out", "vip", IDS), s3=False)
    result = check_connection(exports_only, secrets)
    assert result.usable and result.s3_ok and "not configured" in result.s3_message
    moto = connection(sandbox, import_goal())
    assert moto.s3 is not None
    broken = Connection(
        "Sandbox",
        moto.braze,
        s3=S3Settings(**{**vars(moto.s3), "bucket": "absent"}),
        goals=moto.goals,
    )
    result = check_connection(broken, secrets)
    assert result.braze_ok and not result.s3_ok and not result.usable
    assert "'absent'" in result.s3_message
