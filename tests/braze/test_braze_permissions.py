"""check_permissions: which of the six permissions a key has, found without writing anything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from braze_standin import Reply, Seen, StandIn, closed_port

from bctui.braze import PERMISSIONS, BrazeClient, PermissionReport, PermissionState
from bctui.braze.permissions import check_permissions
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret


def _check(url: str, key: str) -> PermissionReport:
    async def call() -> PermissionReport:
        async with BrazeClient(url, Secret(key)) as braze:
            return await braze.check_permissions()

    return asyncio.run(call())


def _nothing_written(box: Sandbox) -> None:
    stats = box.sim.stats
    assert stats["attributes_processed"] == 0
    assert stats["users_created"] == 0
    assert box.sim.exports == []


def test_a_full_key_has_all_six(sandbox: Sandbox) -> None:
    report = _check(sandbox.braze_url, sandbox.api_key)
    assert report.ok and not report.key_invalid and not report.unreachable
    assert [c.permission for c in report.checks] == list(PERMISSIONS)
    assert report.missing == []
    assert report.lines()[0].endswith("all 6 permissions present")
    _nothing_written(sandbox)


@pytest.mark.parametrize("status", [403, 401])
def test_a_key_lacking_each_permission(make_sandbox: Callable[..., Sandbox], status: int) -> None:
    box = make_sandbox(users=5, settings=SimulatorSettings(missing_permission_status=status))
    for lacking in PERMISSIONS:
        key = box.key_with(*(p for p in PERMISSIONS if p != lacking))
        report = _check(box.braze_url, key)
        assert report.missing == [lacking], lacking
        assert not report.key_invalid
        for check in report.checks:
            expected = (
                PermissionState.MISSING if check.permission == lacking else PermissionState.OK
            )
            assert check.state is expected, (lacking, check)
        assert lacking in report.lines()[0]
    _nothing_written(box)


@pytest.mark.parametrize("status", [403, 401])
def test_a_valid_key_without_any_of_the_six(
    make_sandbox: Callable[..., Sandbox], status: int
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(missing_permission_status=status))
    report = _check(box.braze_url, box.key_with("users.export.ids"))
    assert report.missing == list(PERMISSIONS)
    assert not report.key_invalid


def test_an_invalid_key(sandbox: Sandbox) -> None:
    key = "00000000-1111-2222-3333-444444444444"
    report = _check(sandbox.braze_url, key)
    assert report.key_invalid and not report.ok
    assert {c.state for c in report.checks} == {PermissionState.ERROR}
    assert "refused the key on every endpoint" in report.message
    assert key not in "\n".join(report.lines()) + repr(report)


def test_an_unreachable_endpoint() -> None:
    report = _check(f"http://127.0.0.1:{closed_port()}", "k" * 20)
    assert report.unreachable and not report.ok
    assert "unreachable" in report.lines()[0]
    assert "ConnectError" in report.message


def test_plain_401s_next_to_accepted_calls_are_missing_permissions(standin: StandIn) -> None:
    # A stand-in that answers 401 "Unauthorized" (no word about permissions) where the key
    # lacks the permission: the key works elsewhere, so those are missing permissions.
    def script(seen: Seen) -> Reply:
        if seen.path.startswith("/segments/list"):
            return Reply(200, {"segments": [{"id": "seg-1", "name": "A"}], "message": "success"})
        if seen.path.startswith("/segments/details"):
            return Reply(200, {"name": "A", "message": "success"})
        return Reply(401, {"message": "Unauthorized"})

    standin.script = script
    report = _check(standin.url, "k" * 20)
    assert not report.key_invalid
    assert report.missing == [
        "users.track", "users.export.segment", "campaigns.list", "campaigns.details",
    ]  # fmt: skip
    # The details probe used the id the listing returned; the others used a made-up one.
    paths = sorted(seen.path for seen in standin.seen)
    assert "/segments/details?segment_id=seg-1" in paths
    assert "/campaigns/details?campaign_id=bctui-permission-check" in paths
    assert {seen.body for seen in standin.seen if seen.method == "POST"} == {
        b'{"attributes":[]}',
        b"{}",
    }


def test_only_the_asked_permissions_are_reported(sandbox: Sandbox) -> None:
    async def call(*wanted: str) -> PermissionReport:
        async with BrazeClient(sandbox.braze_url, Secret(sandbox.api_key)) as braze:
            return await check_permissions(braze, wanted)

    report = asyncio.run(call("segments.list", "users.track"))
    assert [c.permission for c in report.checks] == ["users.track", "segments.list"]
    assert report.state("segments.list") is PermissionState.OK
    with pytest.raises(KeyError):
        report.state("campaigns.list")
    with pytest.raises(ValueError, match=r"users\.delete"):
        asyncio.run(call("users.delete"))
