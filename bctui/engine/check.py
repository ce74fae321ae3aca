"""Checks of a connection's credentials, shared by `bctui check` and the UI's "Test" buttons.

Every function here is synchronous and blocks on the network: the UI calls them from thread
workers, never from its event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from bctui.engine.clients import braze_key, s3_access_for
from bctui.engine.models import Connection, ImportGoal, S3Settings
from bctui.engine.secrets import SecretsFile
from bctui.errors import BctuiError
from bctui.secret import Secret

if TYPE_CHECKING:
    from bctui.braze import PermissionReport

# What each kind of goal needs of the key (reference §3; BlueConic asks for all six).
NEEDED: Final[dict[str, tuple[str, ...]]] = {
    "import": ("users.export.segment", "segments.list", "segments.details"),
    "export": ("users.track",),
}
# What an import's campaign filter needs on top.
CAMPAIGN_FILTER: Final[tuple[str, ...]] = ("campaigns.list", "campaigns.details")
S3_NOT_CONFIGURED: Final = "not configured (only import goals need it)"


def needed_permissions(conn: Connection) -> set[str]:
    """The permissions the connection's goals need."""
    needed: set[str] = set()
    for goal in conn.goals:
        needed.update(NEEDED[goal.type])
        if isinstance(goal, ImportGoal) and goal.audience.campaign_ids:
            needed.update(CAMPAIGN_FILTER)
    return needed


def check_key(endpoint: str, key: Secret) -> PermissionReport:
    """Test the key against each of the six permissions, writing nothing (blocks; not for use
    inside a running event loop)."""
    import asyncio  # only a check needs an event loop of its own

    return asyncio.run(_permissions(endpoint, key))


async def _permissions(endpoint: str, key: Secret) -> PermissionReport:
    from bctui.braze import BrazeClient, check_permissions

    async with BrazeClient(endpoint, key, timeout=10.0) as client:
        return await check_permissions(client)


def check_bucket(
    settings: S3Settings, secrets: SecretsFile, *, where: str = ""
) -> tuple[bool, str]:
    """Whether the bucket exists and can be listed, with a one-line message; S3 problems (and
    unresolvable secret references) come back as `(False, message)`, never raised."""
    try:
        s3_access_for(settings, secrets, where=where).check_bucket(settings.bucket)
    except BctuiError as exc:
        return False, exc.render()
    return True, f"bucket {settings.bucket} is reachable and can be listed"


def list_buckets(
    access_key_id: str, secret: Secret, *, region: str = "us-east-1", endpoint_url: str = ""
) -> list[str]:
    """The buckets these credentials can see, sorted, for the UI's bucket picker.

    Raises an `S3Error` subclass (credentials refused, access denied, unreachable) with a fix.
    """
    from bctui.s3 import S3Access

    access = S3Access(access_key_id, secret, region=region, endpoint_url=endpoint_url or None)
    return access.list_buckets()


@dataclass(frozen=True)
class ConnectionCheck:
    """What `check_connection` found; `usable` when the goals can run with these credentials."""

    report: PermissionReport
    needed: set[str]
    lacking: list[str]
    s3_ok: bool
    s3_message: str
    usable: bool

    @property
    def braze_ok(self) -> bool:
        """The key is valid, the endpoint answers, and no permission the goals need is missing."""
        return not (self.lacking or self.report.key_invalid or self.report.unreachable)


def check_connection(conn: Connection, secrets: SecretsFile) -> ConnectionCheck:
    """The key's permissions (all six, marked by need) and the S3 bucket of one connection.

    Raises `SecretError` when the API key's reference cannot be resolved.
    """
    from bctui.braze import PermissionState

    report = check_key(conn.braze.endpoint, braze_key(conn, secrets))
    needed = needed_permissions(conn)
    lacking = [
        c.permission
        for c in report.checks
        if c.permission in needed and c.state is not PermissionState.OK
    ]
    if conn.s3 is None:
        s3_ok, s3_message = True, S3_NOT_CONFIGURED
    else:
        s3_ok, s3_message = check_bucket(conn.s3, secrets, where=f'connection "{conn.name}"')
    braze_ok = not (lacking or report.key_invalid or report.unreachable)
    return ConnectionCheck(
        report=report,
        needed=needed,
        lacking=lacking,
        s3_ok=s3_ok,
        s3_message=s3_message,
        usable=braze_ok and s3_ok,
    )
