"""The one place that resolves a connection's secrets and builds its Braze and S3 clients.

The client classes are imported inside the functions: they pull in httpx and boto3, and the
TUI's start-up must stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bctui.engine.models import Connection, S3Settings
from bctui.engine.secrets import SecretsFile, resolve
from bctui.errors import BctuiError
from bctui.secret import Secret

if TYPE_CHECKING:
    from bctui.braze import BrazeClient
    from bctui.s3 import S3Access


def _where(conn: Connection) -> str:
    return f'connection "{conn.name}"'


def braze_key(conn: Connection, secrets: SecretsFile) -> Secret:
    """The connection's Braze REST API key (SecretError when its reference cannot be resolved)."""
    return resolve(conn.braze.api_key, secrets, where=f"{_where(conn)} braze.api_key")


def braze_client(conn: Connection, secrets: SecretsFile, **kwargs: Any) -> BrazeClient:
    """A BrazeClient for the connection's endpoint and key; `kwargs` go to BrazeClient."""
    from bctui.braze import BrazeClient

    return BrazeClient(conn.braze.endpoint, braze_key(conn, secrets), **kwargs)


def s3_access(conn: Connection, secrets: SecretsFile) -> S3Access:
    """S3 access with the connection's credentials; BctuiError when it has no S3 settings."""
    if conn.s3 is None:
        raise BctuiError(
            "the connection has no S3 settings",
            where=_where(conn),
            fix="add a [connection.s3] table with access_key_id, secret_access_key and bucket "
            "(import goals read Braze's segment exports from that bucket)",
        )
    return s3_access_for(conn.s3, secrets, where=_where(conn))


def s3_access_for(settings: S3Settings, secrets: SecretsFile, *, where: str = "") -> S3Access:
    """S3 access for these settings (their secret references resolved); `where` names the owner."""
    from bctui.s3 import S3Access

    prefix = f"{where} " if where else ""
    key_id = resolve(settings.access_key_id, secrets, where=f"{prefix}s3.access_key_id")
    secret = resolve(settings.secret_access_key, secrets, where=f"{prefix}s3.secret_access_key")
    return S3Access(
        key_id.reveal(),
        secret,
        region=settings.region,
        endpoint_url=settings.endpoint_url or None,
    )
