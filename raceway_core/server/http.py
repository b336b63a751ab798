"""HTTP plumbing for the server: the response envelope, API keys, request bodies."""

from __future__ import annotations

import hmac
import json
import logging
import zlib

import orjson
from starlette.requests import Request
from starlette.responses import Response

from raceway_core.loading.batch import Prepared, event_texts, prepare
from raceway_core.schema import REC_BITS

log = logging.getLogger("raceway.server")

JSON = "application/json"
OPEN_PATHS = frozenset({"/health", "/openapi.json"})  # answered without an API key


class HttpError(Exception):
    """An answer other than success, with the envelope's error message."""

    def __init__(self, status: int, message: str, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


def ok(data, status: int = 200, **extra) -> Response:
    return Response(orjson.dumps({"success": True, "data": data, "error": None, **extra}), status, media_type=JSON)


def fail(status: int, message: str, **extra) -> Response:
    body = orjson.dumps({"success": False, "data": None, "error": message, **extra})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(body, status, headers=headers, media_type=JSON)


def ok_with_raw(before: dict, key: str, raws: list[str], after: dict | None = None) -> Response:
    """A success envelope whose data holds ``key``: a list of raw JSON texts, spliced in unparsed."""
    parts = [b'{"success":true,"data":', orjson.dumps(before)[:-1]]
    if before:
        parts.append(b",")
    parts += [orjson.dumps(key), b":[", ",".join(raws).encode(), b"]"]
    if after:
        parts += [b",", orjson.dumps(after)[1:-1]]
    parts.append(b'},"error":null}')
    return Response(b"".join(parts), 200, media_type=JSON)


# -- API keys ------------------------------------------------------------------------


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The key a request presents: ``Authorization: Bearer KEY`` or ``X-Raceway-Key: KEY``."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
        elif name == b"x-raceway-key" and value.strip():
            return value.decode("latin-1").strip()
    return None


class ApiKeyAuth:
    """ASGI middleware: with keys configured, every path but ``open_paths`` needs one."""

    def __init__(self, app, keys: tuple[str, ...], open_paths: frozenset[str]) -> None:
        self.app = app
        self.keys = tuple(k.encode() for k in keys)
        self.open_paths = open_paths

    def allowed(self, key: str | None) -> bool:
        if key is None:
            return False
        given = key.encode("latin-1", "replace")
        match = False
        for k in self.keys:  # compare with every key, in constant time each
            match |= hmac.compare_digest(given, k)
        return match

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] != "http" or not self.keys or scope["path"] in self.open_paths
                or scope["method"] == "OPTIONS"):
            await self.app(scope, receive, send)
            return
        if self.allowed(presented_key(scope["headers"])):
            await self.app(scope, receive, send)
            return
        await fail(401, "Unauthorized")(scope, receive, send)


# -- request bodies ------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed when gzip; 413 past ``limit`` bytes (either way)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, f"invalid Content-Length header {declared!r}")
        if int(declared) > limit:
            raise HttpError(413, f"request body of {int(declared):,} bytes exceeds the limit of {limit:,} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, f"request body exceeds the limit of {limit:,} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        d = zlib.decompressobj(wbits=31)
        try:
            body = d.decompress(body, limit + 1)
        except zlib.error as exc:
            raise HttpError(400, f"request body is not valid gzip: {exc}") from exc
        if len(body) > limit or d.unconsumed_tail:
            raise HttpError(413, f"decompressed request body exceeds the limit of {limit:,} bytes")
    elif encoding not in ("identity", ""):
        raise HttpError(415, f"unsupported Content-Encoding {encoding!r} (identity or gzip)")
    return body


_TYPE = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number",
         bool: "a boolean", type(None): "null"}


def event_batch(body: bytes) -> tuple[Prepared | str, int]:
    """The events of a POST body and how many there are; 400 naming the problem.

    Accepts ``{"events": [...]}`` (what the SDKs send) and a bare array. The
    events come back as their JSON texts and rows (``prepare``), or as the body
    text when splitting it could change a value (see ``event_texts``).
    """
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    if not body.strip():
        raise HttpError(400, 'empty request body: expected {"events": [...]}')
    try:
        doc, exact = orjson.loads(body), True
    except orjson.JSONDecodeError as exc:
        try:  # JSON orjson will not read (numbers past a double, lone surrogates): SQL decides per event
            doc, exact = json.loads(body.decode("utf-8")), False
        except (ValueError, RecursionError):  # UnicodeDecodeError included; nesting past the parser
            raise HttpError(400, f"malformed JSON in request body: {exc}") from exc
    if isinstance(doc, list):
        events = doc
    elif isinstance(doc, dict):
        if "events" not in doc:
            raise HttpError(400, "request body has no 'events' field: expected {\"events\": [...]}")
        events = doc["events"]
        if not isinstance(events, list):
            raise HttpError(400, f"field 'events' must be an array, got {_TYPE.get(type(events), 'a value')}")
    else:
        raise HttpError(400, f'request body must be {{"events": [...]}}, got {_TYPE.get(type(doc), "a value")}')
    texts = event_texts(events, body) if exact else None
    return (prepare(events, texts) if texts is not None else body.decode("utf-8")), len(events)


def ingest_batch(body: bytes) -> tuple[Prepared | str, int]:
    """``event_batch``, refusing batches too big to number (413)."""
    payload, n = event_batch(body)
    if n >= 1 << REC_BITS:
        raise HttpError(413, f"{n:,} events in one batch; send at most {(1 << REC_BITS) - 1:,}")
    return payload, n


def plain_ingest(scope, keys: ApiKeyAuth) -> bool:
    """A POST /events the fast path may answer: no browser (Origin: CORS) and,
    with keys configured, one the key check accepts; the rest take the full stack."""
    return (scope["type"] == "http" and scope["path"] == "/events" and scope["method"] == "POST"
            and not any(name == b"origin" for name, _ in scope["headers"])
            and (not keys.keys or keys.allowed(presented_key(scope["headers"]))))


async def ingest_response(request: Request, max_body: int, commit) -> Response:
    """The answer to POST /events. ``await commit(payload, n)`` stores the parsed
    batch and gives ``{"loaded", "duplicates", "rejected": [[index, reason]...]}``
    once committed, or ``{"error": status, "message"}``."""
    payload, n = ingest_batch(await read_body(request, max_body))
    if n == 0:
        return ok("Ingested 0 events", ingested=0, duplicates=0, rejected=[])
    reply = await commit(payload, n)
    if "error" in reply:
        return fail(reply["error"], reply["message"])
    loaded, duplicates = reply["loaded"], reply["duplicates"]
    rejected = [{"index": rec, "reason": why} for rec, why in reply["rejected"]]
    extra = {"ingested": loaded, "duplicates": duplicates, "rejected": rejected}
    if not rejected:
        return ok(f"Ingested {loaded} events", **extra)
    if loaded or duplicates:  # the original answers 206 when some events failed
        return ok(f"Ingested {loaded} events, {len(rejected)} errors", 206, **extra)
    return fail(422, f"all {len(rejected)} events were rejected; first: {rejected[0]['reason']}", **extra)


async def answer_ingest(scope, receive, send, max_body: int, commit) -> None:
    """``ingest_response`` sent straight, around routing and middleware (see
    ``plain_ingest``): errors become the envelope, the unexpected a logged 500."""
    try:
        response = await ingest_response(Request(scope, receive), max_body, commit)
    except HttpError as exc:
        response = fail(exc.status, exc.message, **exc.extra)
    except Exception as exc:
        log.exception("unexpected error on POST /events")
        response = fail(500, f"internal error: {type(exc).__name__}: {exc}")
    await response(scope, receive, send)
