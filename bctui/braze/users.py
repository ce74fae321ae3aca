"""/users/track (one request, batching, concurrent sending) and /users/export/segment."""

from __future__ import annotations

import asyncio
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from bctui.braze.errors import BadRequest, BrazeHttpError, PayloadTooLarge, UnexpectedResponse

if TYPE_CHECKING:
    from bctui.braze.client import BrazeClient

T = TypeVar("T")
B = TypeVar("B", bound=Sequence[Mapping[str, Any]])

TRACK_PATH = "/users/track"
EXPORT_PATH = "/users/export/segment"
# Braze's current rule: 75 objects per request in total across attributes, events and purchases
# (legacy contracts allow 75 per array; the combined rule is the one that is always safe).
MAX_OBJECTS = 75
# Braze: "most endpoints accept bodies up to 4 MB"; over it, 413 or 400 (reference §4.2). Whether
# that is 4,000,000 or 4,194,304 bytes is not said: the smaller one is always safe.
MAX_BODY_BYTES = 4_000_000
# `EXTERNAL_USER_ID_TOO_LARGE`: "The `external_id` exceeds the maximum allowed length of 987 bytes."
MAX_EXTERNAL_ID_BYTES = 987
ARRAYS = ("attributes", "events", "purchases")
EXPORT_FORMATS = ("gzip", "zip")


@dataclass(frozen=True)
class TrackError:
    """One item of Braze's `errors[]`: which object (array and 0-based index) and why.

    `index`/`input_array` are None when Braze's item does not say (it is then not attributable);
    Braze's own item is kept in `raw`.
    """

    index: int | None
    input_array: str | None
    type: str
    raw: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class TrackResult:
    """The outcome of one /users/track request: 201 (maybe partial) or 400 with `errors[]`.

    `*_processed` are Braze's counts of accepted objects and may be absent (None).
    """

    status: int
    message: str
    attributes_processed: int | None = None
    events_processed: int | None = None
    purchases_processed: int | None = None
    errors: tuple[TrackError, ...] = ()

    @property
    def accepted(self) -> bool:
        """True when Braze took the request (the objects without an error were processed)."""
        return 200 <= self.status < 300

    @property
    def refused_whole(self) -> bool:
        """True when Braze refused the request without naming any object (a 400 without
        `errors[]` indexes, such as "Max Input Length Exceeded", or a 413): its `message` is
        the reason for every object."""
        return not self.accepted and not any(item.index is not None for item in self.errors)

    def failures(self, input_array: str = "attributes", size: int | None = None) -> dict[int, str]:
        """Index → reason for the objects of `input_array` that Braze did not process.

        On a 201 these are the indexes in `errors[]`. On a 400 nothing was processed, so with
        `size` (the array's length) every index fails: those without an item carry the message.
        """
        found = {
            item.index: item.type
            for item in self.errors
            if item.index is not None
            and item.input_array == input_array
            and (size is None or 0 <= item.index < size)
        }
        if not self.accepted and size is not None:
            for index in range(size):
                found.setdefault(index, self.message or "rejected")
        return found

    def unattributed(self) -> list[TrackError]:
        """Error items that name no array or index (Braze's text only)."""
        return [e for e in self.errors if e.index is None or e.input_array is None]


@dataclass(frozen=True)
class ExportStarted:
    """Braze accepted a segment export: files will appear under `object_prefix` in the bucket."""

    object_prefix: str
    url: str | None = None
    message: str = ""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _parse_errors(items: Any, sent: Sequence[str], client: BrazeClient) -> tuple[TrackError, ...]:
    if not isinstance(items, list):
        return ()
    parsed: list[TrackError] = []
    for item in items:
        if isinstance(item, Mapping):
            index = item.get("index")
            if isinstance(index, str) and index.strip().isdigit():
                index = int(index)
            if not isinstance(index, int) or isinstance(index, bool):
                index = None
            array = item.get("input_array")
            if array not in ARRAYS:
                # With one array sent, an item that does not name its array can only mean that one.
                array = sent[0] if len(sent) == 1 else None
            reason = next(
                (item[k] for k in ("type", "message", "code", "error") if item.get(k)), None
            )
            text = reason if isinstance(reason, str) else str(dict(item))
            parsed.append(TrackError(index, array, client.redact(text), item))
        else:
            parsed.append(TrackError(None, None, client.redact(str(item)), item))
    return tuple(parsed)


async def track(
    client: BrazeClient,
    *,
    attributes: Sequence[Mapping[str, Any]] = (),
    events: Sequence[Mapping[str, Any]] = (),
    purchases: Sequence[Mapping[str, Any]] = (),
    refusals: bool = False,
) -> TrackResult:
    """POST /users/track with at most 75 objects in all.

    A 201 (full or partial success) or a 400 that lists `errors[]` is returned as a `TrackResult`,
    so each failure can be attributed to its object; a 400 without `errors[]` (bad JSON, too many
    objects) raises `BadRequest`, unless `refusals` is set: then it, and a 413 (body too large),
    come back as a `TrackResult` whose `refused_whole` is true and whose `message` is Braze's.
    Other failures raise the client's typed errors.

    Retries after a timeout or dropped connection resend the request: harmless for attribute
    sets, but an event or purchase may then be recorded twice (Braze has no idempotency key).
    """
    arrays = {"attributes": attributes, "events": events, "purchases": purchases}
    total = sum(len(objects) for objects in arrays.values())
    if total > MAX_OBJECTS:
        raise ValueError(
            f"/users/track takes at most {MAX_OBJECTS} objects per request, got {total}; "
            "split them with batches()"
        )
    if total == 0:
        raise ValueError("/users/track needs at least one attribute, event or purchase object")
    body = {name: list(objects) for name, objects in arrays.items() if objects}
    try:
        response = await client.request("POST", TRACK_PATH, json=body, accept=(400,))
    except PayloadTooLarge as exc:
        if not refusals:
            raise
        return TrackResult(status=413, message=exc.braze_message or "Request Entity Too Large")
    data = response.data if isinstance(response.data, Mapping) else {}
    errors = _parse_errors(data.get("errors"), list(body), client)
    if response.status == 400 and not errors and not refusals:
        raise BadRequest(
            path=TRACK_PATH,
            endpoint=client.endpoint,
            braze_message=response.message,
            errors=data.get("errors") or [],
        )
    return TrackResult(
        status=response.status,
        message=response.message,
        attributes_processed=_count(data.get("attributes_processed")),
        events_processed=_count(data.get("events_processed")),
        purchases_processed=_count(data.get("purchases_processed")),
        errors=errors,
    )


def batches(items: Iterable[T], size: int = MAX_OBJECTS) -> Iterator[list[T]]:
    """Split `items` into lists of at most `size` (lazily; the last list may be shorter)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def _abatches(items: AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    chunk: list[T] = []
    async for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def _aiter(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def _send(client: BrazeClient, batch: B, refusals: bool) -> tuple[B, TrackResult]:
    return batch, await track(client, attributes=batch, refusals=refusals)


async def track_batches(
    client: BrazeClient,
    batches: Iterable[B] | AsyncIterable[B],
    *,
    concurrency: int | None = None,
    refusals: bool = False,
) -> AsyncGenerator[tuple[B, TrackResult], None]:
    """Send each batch of attribute objects as one /users/track request, concurrently.

    With `refusals`, a request Braze refuses as a whole (see `track`) is yielded as a result
    rather than raised, so its objects can be recorded as rejected.

    As many requests are kept in flight as Braze's rate limit allows at the measured latency
    (`Pacer.concurrency`), at most `concurrency` (default: the client's connection limit).

    Yields `(batch, result)` as requests finish (not in input order), the batch being the very
    object passed in, so callers can attach their own bookkeeping to it. The input is consumed
    lazily. If a request fails for good (e.g. the key is refused, or retries ran out), the batches
    still in flight are cancelled, results that had already arrived are yielded, and the error is
    raised: every batch yielded was answered by Braze, every other batch must be sent again.
    Close the iterator (`contextlib.aclosing`) when leaving it early.
    """
    cap = concurrency if concurrency is not None else client.max_connections
    if cap < 1:
        raise ValueError("concurrency must be at least 1")
    pacer = client.pacer(TRACK_PATH)
    source = _aiter(batches)
    pending: set[asyncio.Task[tuple[B, TrackResult]]] = set()
    exhausted = False
    try:
        while True:
            # Sized afresh as answers come: the allowed rate times the measured latency.
            limit = pacer.concurrency(cap)
            while not exhausted and len(pending) < limit:
                try:
                    batch = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                if len(batch):
                    pending.add(asyncio.create_task(_send(client, batch, refusals)))
            if not pending:
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            failure: BaseException | None = None
            for task in done:
                if task.exception() is None:
                    yield task.result()
                elif failure is None:
                    failure = task.exception()
            if failure is not None:
                for task in pending:
                    task.cancel()
                settled = await asyncio.gather(*pending, return_exceptions=True)
                pending = set()
                for outcome in settled:
                    if isinstance(outcome, tuple):
                        yield outcome
                raise failure
    finally:
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def track_many(
    client: BrazeClient,
    attribute_objects: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
    *,
    concurrency: int | None = None,
    batch_size: int = MAX_OBJECTS,
) -> AsyncGenerator[tuple[list[Mapping[str, Any]], TrackResult], None]:
    """Batch attribute objects by `batch_size` (≤ 75) and send them through `track_batches`."""
    if not 1 <= batch_size <= MAX_OBJECTS:
        raise ValueError(f"batch_size must be between 1 and {MAX_OBJECTS}")
    grouped: Iterable[list[Mapping[str, Any]]] | AsyncIterable[list[Mapping[str, Any]]]
    if isinstance(attribute_objects, AsyncIterable):
        grouped = _abatches(attribute_objects, batch_size)
    else:
        grouped = batches(attribute_objects, batch_size)
    return track_batches(client, grouped, concurrency=concurrency)


async def export_segment(
    client: BrazeClient,
    segment_id: str,
    fields_to_export: Sequence[str],
    custom_attributes_to_export: Sequence[str] | None = None,
    output_format: Literal["gzip", "zip"] = "gzip",
    callback_endpoint: str | None = None,
) -> ExportStarted:
    """POST /users/export/segment: start an export of a segment into the workspace's bucket.

    Raises `ExportAlreadyRunning` when Braze says an export of that segment is under way (its
    429 is never retried blindly).
    """
    if not segment_id:
        raise ValueError("segment_id is required")
    if isinstance(fields_to_export, str) or not fields_to_export:
        raise ValueError("fields_to_export must be a non-empty list of field names")
    if output_format not in EXPORT_FORMATS:
        raise ValueError(f"output_format must be one of {EXPORT_FORMATS}, not {output_format!r}")
    body: dict[str, Any] = {
        "segment_id": segment_id,
        "fields_to_export": list(fields_to_export),
        "output_format": output_format,
    }
    if custom_attributes_to_export:
        body["custom_attributes_to_export"] = list(custom_attributes_to_export)
    if callback_endpoint:
        body["callback_endpoint"] = callback_endpoint
    response = await client.request("POST", EXPORT_PATH, json=body)
    data = response.data if isinstance(response.data, Mapping) else {}
    prefix = data.get("object_prefix")
    url = data.get("url") if isinstance(data.get("url"), str) else None
    if isinstance(prefix, str) and prefix.strip("/"):
        return ExportStarted(prefix.strip("/"), url or None, response.message)
    if url:
        raise BrazeHttpError(
            "Braze answered with a download URL and no object_prefix: the workspace has no "
            "Amazon S3 export bucket, so the export will not reach the connection's bucket",
            path=EXPORT_PATH,
            endpoint=client.endpoint,
            status=response.status,
            braze_message=response.message,
            fix=(
                "set up the Amazon S3 data export integration in Braze (Partner Integrations > "
                "Technology Partners > Amazon S3) with this connection's bucket"
            ),
        )
    raise UnexpectedResponse(
        "the export was accepted but the answer has no object_prefix",
        path=EXPORT_PATH,
        endpoint=client.endpoint,
        status=response.status,
    )
