"""The Braze REST client: one keep-alive connection pool, pacing, retries and typed errors."""

from __future__ import annotations

import asyncio
import re
import ssl
import time
import urllib.request
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Collection,
    Generator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import orjson

from bctui import __version__
from bctui.braze import campaigns, permissions, segments, users
from bctui.braze.errors import (
    BadRequest,
    BrazeError,
    BrazeHttpError,
    BrazeTimeout,
    BrazeTlsError,
    BrazeUnreachable,
    ExportAlreadyRunning,
    InvalidApiKey,
    MissingPermission,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    ServerError,
    UnexpectedResponse,
    UnsupportedMediaType,
    redact,
)
from bctui.braze.instances import validate_endpoint
from bctui.braze.ratelimit import (
    SHARED_GROUP,
    TRACK_GROUP,
    OnWait,
    Pacer,
    RateLimitInfo,
    WaitEvent,
    WaitReason,
    WaitTooLong,
    group_for,
    parse_rate_limit,
)
from bctui.braze.retry import RetryPolicy
from bctui.braze.transport import FastTransport
from bctui.secret import Secret

if TYPE_CHECKING:
    from bctui.braze.campaigns import Campaign, CampaignDetails
    from bctui.braze.permissions import PermissionReport
    from bctui.braze.segments import Segment, SegmentDetails
    from bctui.braze.users import ExportStarted, TrackResult

B = TypeVar("B", bound=Sequence[Mapping[str, Any]])

EXPORT_PATH = users.EXPORT_PATH

# A 401 body that talks about permissions means "valid key, missing permission" (Braze's newer
# errors page lists insufficient permissions as a 401 cause too).
_PERMISSION_TEXT = re.compile(
    r"permission|access denied|not (?:allowed|authorized|permitted)|forbidden|insufficient",
    re.IGNORECASE,
)
# A 429 body from /users/export/segment that says an export is under way.
_EXPORT_RUNNING_TEXT = re.compile(r"already|running|in progress|concurrent|ongoing", re.IGNORECASE)
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class BrazeResponse:
    """An accepted response: status, parsed JSON body, rate-limit headers, Braze's message."""

    status: int
    data: Any
    rate: RateLimitInfo = field(default_factory=RateLimitInfo)
    message: str = ""


@dataclass
class ClientStats:
    """Counters over the client's lifetime (requests are HTTP attempts, retries included)."""

    requests: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    retries: int = 0


class _BearerAuth(httpx.Auth):
    """Adds the key at send time, so it lives in no default header and no client repr."""

    def __init__(self, key: Secret) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Set `Authorization: Bearer <key>` on the outgoing request."""
        request.headers["Authorization"] = f"Bearer {self._key.reveal()}"
        yield request


class BrazeClient:
    """An async client for the Braze REST API; use it as `async with BrazeClient(...) as braze`.

    Every request passes through the pacer of its rate-limit pool (/users/track, or the shared
    pool) and is retried under one `RetryPolicy` on 429, 5xx and transport errors. Failures are
    raised as the typed errors of `bctui.braze.errors`; the key never appears in any of them.
    """

    def __init__(
        self,
        endpoint: str,
        api_key: Secret,
        *,
        timeout: float = 30.0,
        max_connections: int = 64,
        retry: RetryPolicy | None = None,
        on_wait: OnWait | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not isinstance(api_key, Secret):
            raise TypeError("api_key must be a bctui.secret.Secret")
        self.endpoint = validate_endpoint(endpoint)
        self.timeout = timeout
        self.max_connections = max_connections
        self.retry = retry or RetryPolicy()
        self.on_wait = on_wait
        self.stats = ClientStats()
        self._key = api_key
        self._urls: dict[str, httpx.URL] = {}
        self._pacers = {
            group: Pacer(group, self._report, max_wait=self.retry.max_wait)
            for group in (TRACK_GROUP, SHARED_GROUP)
        }
        if transport is None and not _proxied(self.endpoint):
            transport = FastTransport(max_connections=max_connections)
        self._http = httpx.AsyncClient(
            base_url=self.endpoint,
            auth=_BearerAuth(api_key),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"bctui/{__version__}",
            },
            # A request waiting for a free pooled connection is queued by us, not failed.
            timeout=httpx.Timeout(timeout, pool=None),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"BrazeClient({self.endpoint!r})"

    async def __aenter__(self) -> BrazeClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def pacer(self, path: str) -> Pacer:
        """The pacer the requests to `path` go through."""
        return self._pacers[group_for(path)]

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int | bool] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
        retry: RetryPolicy | None = None,
    ) -> BrazeResponse:
        """Send one API call, paced and retried; return the 2xx (or `accept`ed) response.

        `json` is serialised with orjson; `content` sends raw bytes instead, and `headers` override
        the defaults (both exist to exercise Braze's own checks). Raises a `BrazeError` subclass.
        """
        policy = retry or self.retry
        pacer = self.pacer(path)
        url = self._url(path)
        body = content if content is not None else (None if json is None else orjson.dumps(json))
        query = _query(params)
        failures = 0
        limited = 0
        lost = False  # an earlier attempt may have reached Braze without us seeing the answer
        while True:
            try:
                await pacer.acquire(path)
            except WaitTooLong as exc:
                raise RateLimited(
                    path=path,
                    endpoint=self.endpoint,
                    braze_message=f"{exc.reason}; the window resets in {exc.seconds:.0f} s",
                    retry_after=exc.seconds,
                    attempts=limited,
                ) from None
            info: RateLimitInfo | None = None
            try:
                self.stats.requests += 1
                sent_at = time.monotonic()
                response = await self._http.request(
                    method, url, params=query, content=body, headers=headers
                )
                pacer.observe_latency(time.monotonic() - sent_at)
                info = parse_rate_limit(response.headers)
            except httpx.TransportError as exc:
                failures += 1
                error, reason, sent = self._transport_failure(exc, path, failures)
                lost = lost or sent
            else:
                status = response.status_code
                if 200 <= status < 300 or status in accept:
                    data = self._parse_body(response, path)
                    message, _ = self._message_of(data, response)
                    return BrazeResponse(status, data, info, message)
                if status == 429:
                    limited += 1
                    self._rate_limited(response, info, path, pacer, policy, limited, lost)
                    continue
                if status < 500:
                    raise self.error_for(response, path)
                failures += 1
                self.stats.server_errors += 1
                lost = True
                error = ServerError(
                    path=path,
                    endpoint=self.endpoint,
                    braze_message=self._message(response)[0],
                    status=status,
                    attempts=failures,
                )
                reason = WaitReason.SERVER_ERROR
            finally:
                pacer.release(info)
            if failures >= policy.max_attempts:
                raise error
            delay = policy.backoff(failures)
            self.stats.retries += 1
            self._report(WaitEvent(delay, reason, path, f"{error.message}; retry {failures}"))
            await asyncio.sleep(delay)

    def _transport_failure(
        self, exc: httpx.TransportError, path: str, failures: int
    ) -> tuple[BrazeError, WaitReason, bool]:
        """The retryable error for a transport failure, and whether the request may have arrived.

        Raises at once for failures a retry cannot heal (bad URL scheme, untrusted certificate).
        """
        detail = _describe(exc)
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            raise BrazeUnreachable(
                path=path, endpoint=self.endpoint, detail=detail, attempts=failures
            ) from None
        if _tls_failure(exc):
            raise BrazeTlsError(path=path, endpoint=self.endpoint, detail=detail) from None
        self.stats.transport_errors += 1
        not_sent = httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout
        error: BrazeError
        if isinstance(exc, httpx.TimeoutException):
            error = BrazeTimeout(
                path=path, endpoint=self.endpoint, timeout=self.timeout, attempts=failures
            )
        else:
            error = BrazeUnreachable(
                path=path, endpoint=self.endpoint, detail=detail, attempts=failures
            )
        return error, WaitReason.TRANSPORT, not isinstance(exc, not_sent)

    def _rate_limited(
        self,
        response: httpx.Response,
        info: RateLimitInfo,
        path: str,
        pacer: Pacer,
        policy: RetryPolicy,
        limited: int,
        lost: bool,
    ) -> None:
        """After a 429: pause every sender of the pool, or raise when retrying is pointless."""
        self.stats.rate_limited += 1
        message, _ = self._message(response)
        if path == EXPORT_PATH and _export_running(info, message):
            raise ExportAlreadyRunning(
                path=path, endpoint=self.endpoint, braze_message=message, after_lost_response=lost
            )
        hint = info.wait_hint
        if limited > policy.max_rate_limited or (hint is not None and hint > policy.max_wait):
            raise RateLimited(
                path=path,
                endpoint=self.endpoint,
                braze_message=message,
                retry_after=hint,
                attempts=limited,
            )
        if hint:
            pacer.pause(hint, path, detail=_wait_detail(info), window_ends=True)
        else:
            # No usable header: back off with jitter, still pausing every sender.
            pacer.pause(max(0.05, policy.backoff(limited)), path, detail="no header")
        self.stats.retries += 1

    def _url(self, path: str) -> httpx.URL:
        """The absolute URL of an API path, parsed once (parsing is a visible per-request cost)."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.endpoint + "/" + path.lstrip("/"))
        return url

    def error_for(self, response: httpx.Response, path: str) -> BrazeHttpError:
        """The typed error for a non-2xx response (the key redacted from Braze's text)."""
        status = response.status_code
        message, errors = self._message(response)
        ep = self.endpoint
        if status == 401:
            if _PERMISSION_TEXT.search(message):
                return MissingPermission(path=path, endpoint=ep, braze_message=message, status=401)
            return InvalidApiKey(path=path, endpoint=ep, braze_message=message)
        if status == 403:
            return MissingPermission(path=path, endpoint=ep, braze_message=message)
        if status == 400:
            return BadRequest(path=path, endpoint=ep, braze_message=message, errors=errors)
        if status == 404:
            return NotFound(path=path, endpoint=ep, braze_message=message)
        if status == 413:
            return PayloadTooLarge(path=path, endpoint=ep, braze_message=message)
        if status == 415:
            return UnsupportedMediaType(path=path, endpoint=ep, braze_message=message)
        if 300 <= status < 400:
            target = response.headers.get("location", "elsewhere")
            return UnexpectedResponse(
                f"redirected to {target}", path=path, endpoint=ep, status=status
            )
        if status == 429:
            return RateLimited(
                path=path, endpoint=ep, braze_message=message, retry_after=None, attempts=1
            )
        if status >= 500:
            return ServerError(
                path=path, endpoint=ep, braze_message=message, status=status, attempts=1
            )
        return BrazeHttpError(
            f"Braze refused the request (HTTP {status}: {message or response.reason_phrase})",
            path=path,
            endpoint=ep,
            status=status,
            braze_message=message,
            fix="see Braze's message",
        )

    def redact(self, text: str) -> str:
        """`text` with this client's API key (and any key Braze echoes) removed."""
        return redact(text, self._key)

    def _message(self, response: httpx.Response) -> tuple[str, list[Any]]:
        """Braze's message text and `errors[]` of an error response, key redacted."""
        try:
            data = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            data = None
        return self._message_of(data, response)

    def _message_of(self, data: Any, response: httpx.Response) -> tuple[str, list[Any]]:
        text = ""
        errors: list[Any] = []
        if isinstance(data, dict):
            # Braze writes `message`; its newer errors page shows `error` for parse failures.
            value = data.get("message") or data.get("error") or ""
            text = value if isinstance(value, str) else orjson.dumps(value).decode()
            if isinstance(data.get("errors"), list):
                errors = data["errors"]
        elif isinstance(data, str):
            text = data
        elif data is None and "html" not in response.headers.get("content-type", ""):
            text = response.text
        text = " ".join(self.redact(text).split())
        if len(text) > _MAX_MESSAGE:
            text = text[: _MAX_MESSAGE - 1] + "…"
        if errors:
            errors = orjson.loads(self.redact(orjson.dumps(errors).decode()))
        return text, errors

    def _parse_body(self, response: httpx.Response, path: str) -> Any:
        if not response.content:
            return None
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            snippet = " ".join(self.redact(response.text[:80]).split())
            raise UnexpectedResponse(
                f"the body is not JSON ({snippet!r})",
                path=path,
                endpoint=self.endpoint,
                status=response.status_code,
            ) from None

    def _report(self, event: WaitEvent) -> None:
        if self.on_wait is not None:
            self.on_wait(event)

    # The API, by area; each method is implemented in the module of its area.

    async def track(
        self,
        *,
        attributes: Sequence[Mapping[str, Any]] = (),
        events: Sequence[Mapping[str, Any]] = (),
        purchases: Sequence[Mapping[str, Any]] = (),
    ) -> TrackResult:
        """POST /users/track with at most 75 objects in all (see `users.track`)."""
        return await users.track(self, attributes=attributes, events=events, purchases=purchases)

    def track_many(
        self,
        attribute_objects: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        concurrency: int | None = None,
        batch_size: int = users.MAX_OBJECTS,
    ) -> AsyncGenerator[tuple[list[Mapping[str, Any]], TrackResult], None]:
        """Send attribute objects in concurrent batches of 75 (see `users.track_many`)."""
        return users.track_many(
            self, attribute_objects, concurrency=concurrency, batch_size=batch_size
        )

    def track_batches(
        self, batches: Iterable[B] | AsyncIterable[B], *, concurrency: int | None = None
    ) -> AsyncGenerator[tuple[B, TrackResult], None]:
        """Send caller-made batches of attribute objects (see `users.track_batches`)."""
        return users.track_batches(self, batches, concurrency=concurrency)

    async def export_segment(
        self,
        segment_id: str,
        fields_to_export: Sequence[str],
        custom_attributes_to_export: Sequence[str] | None = None,
        output_format: Literal["gzip", "zip"] = "gzip",
        callback_endpoint: str | None = None,
    ) -> ExportStarted:
        """POST /users/export/segment (see `users.export_segment`)."""
        return await users.export_segment(
            self,
            segment_id,
            fields_to_export,
            custom_attributes_to_export=custom_attributes_to_export,
            output_format=output_format,
            callback_endpoint=callback_endpoint,
        )

    async def list_segments(
        self, *, sort_direction: Literal["asc", "desc"] | None = None
    ) -> list[Segment]:
        """Every segment, all pages of GET /segments/list."""
        return await segments.list_segments(self, sort_direction=sort_direction)

    async def segment_details(self, segment_id: str) -> SegmentDetails:
        """GET /segments/details for one segment."""
        return await segments.segment_details(self, segment_id)

    async def list_campaigns(
        self,
        include_archived: bool = False,
        *,
        sort_direction: Literal["asc", "desc"] | None = None,
        last_edited_after: str | None = None,
    ) -> list[Campaign]:
        """Every campaign, all pages of GET /campaigns/list."""
        return await campaigns.list_campaigns(
            self,
            include_archived=include_archived,
            sort_direction=sort_direction,
            last_edited_after=last_edited_after,
        )

    async def campaign_details(self, campaign_id: str) -> CampaignDetails:
        """GET /campaigns/details for one campaign."""
        return await campaigns.campaign_details(self, campaign_id)

    async def check_permissions(self) -> PermissionReport:
        """Which of the six permissions bctui uses this key has (see `permissions`)."""
        return await permissions.check_permissions(self)


def _query(params: Mapping[str, str | int | bool] | None) -> dict[str, str] | None:
    if not params:
        return None
    return {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in params.items()
    }


def _proxied(endpoint: str) -> bool:
    """True when the environment routes this endpoint through a proxy (httpx's transport then)."""
    host = httpx.URL(endpoint).host
    proxies = urllib.request.getproxies()
    scheme = httpx.URL(endpoint).scheme
    return bool(proxies.get(scheme) or proxies.get("all")) and not urllib.request.proxy_bypass(host)


def _export_running(info: RateLimitInfo, message: str) -> bool:
    """Is a 429 from /users/export/segment "export already running" rather than a rate limit?

    Braze documents the 429 for a second export of a running segment but not its body. Its text
    decides when it says so; otherwise a retry-after header or an exhausted `remaining` marks a real
    rate limit, and anything else is taken as the running export (never retried blindly).
    """
    if _EXPORT_RUNNING_TEXT.search(message):
        return True
    return not (info.retry_after is not None or info.remaining == 0)


def _wait_detail(info: RateLimitInfo) -> str:
    if info.retry_after is not None:
        return f"retry after {info.retry_after:.2f} s"
    return f"window resets in {info.reset_in or 0:.2f} s"


def _tls_failure(exc: BaseException) -> bool:
    """True when a transport error comes from a certificate that could not be verified."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: httpx.HTTPError) -> str:
    """A short, key-free description of a transport error."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
