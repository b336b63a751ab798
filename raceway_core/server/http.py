"""HTTP plumbing for the server: the response envelope, API keys, request bodies."""

from __future__ import annotations

import hmac
import json
import logging
import os
import uuid
import zlib

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from raceway_core.errors import RacewayError
from raceway_core.loading.batch import Prepared, event_texts, prepare
from raceway_core.schema import REC_BITS

log = logging.getLogger("raceway.server")

JSON = "application/json"
OPEN_PATHS = frozenset({"/health", "/openapi.json"})  # answered without an API key


class HttpError(Exception):
    """An answer other than success, with the envelope's error message."""

    def __init__(self, status: int, message: str, headers: dict | None = None, **extra) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.extra = extra


def ok(data, status: int = 200, **extra) -> Response:
    return Response(orjson.dumps({"success": True, "data": data, "error": None, **extra}), status, media_type=JSON)


def fail(status: int, message: str, headers: dict | None = None, **extra) -> Response:
    body = orjson.dumps({"success": False, "data": None, "error": message, **extra})
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(body, status, headers=headers, media_type=JSON)


def internal_reply(what: str, exc: BaseException | None = None, status: int = 500) -> dict:
    """An unexpected failure: the detail (SQL text, paths, a traceback) goes to
    the log under a request id; the client gets the id and nothing else.
    ``{"error": status, "message", "request_id"}``, as an ingest reply."""
    rid = uuid.uuid4().hex[:16]
    if exc is not None:
        log.error("request %s: %s: %s: %s", rid, what, type(exc).__name__, exc, exc_info=exc)
    else:
        log.error("request %s: %s", rid, what)
    text = "internal error" if status == 500 else "service unavailable"
    return {"error": status, "message": f"{text} (request id {rid}; the server log has the details)",
            "request_id": rid}


def reply_response(reply: dict) -> Response:
    """The answer to an ingest reply that is an error."""
    rid = reply.get("request_id")
    return fail(reply["error"], reply["message"], {"X-Request-Id": rid} if rid else None)


def internal_error(what: str, exc: BaseException | None = None, status: int = 500) -> Response:
    return reply_response(internal_reply(what, exc, status))


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
            scheme, _, token = value.decode("latin-1").strip(_OWS).partition(" ")
            if scheme.lower() == "bearer" and token.strip(_OWS):
                return token.strip(_OWS)
        elif name == b"x-raceway-key" and value.strip(_OWS.encode()):
            return value.decode("latin-1").strip(_OWS)
    return None


# HTTP's optional whitespace: str.strip() would also take NBSP, NEL, \x1c-\x1f
# and the like, so a key followed by one of them would pass.
_OWS = " \t"


KEY_ENV = "RACEWAY_API_KEY"


def configured_keys(given: tuple[str, ...] = (), key_file: str | None = None,
                    environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The keys a server accepts: ``--api-key`` values (visible to every user in
    the process list), ``$RACEWAY_API_KEY`` and a key file (one key per line,
    blank lines and ``#`` comments skipped). A key with whitespace or a control
    character in it is refused: it could never be presented intact."""
    environ = os.environ if environ is None else environ
    keys = list(given)
    if environ.get(KEY_ENV):
        keys.append(environ[KEY_ENV])
    if key_file is not None:
        try:
            with open(key_file, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise RacewayError(f"cannot read the API key file {key_file}: {exc}") from exc
        keys += [ln.strip(_OWS) for ln in lines if ln.strip(_OWS) and not ln.lstrip().startswith("#")]
        if not keys:
            raise RacewayError(f"the API key file {key_file} holds no key")
    for k in keys:
        if not k or any(c.isspace() or not c.isprintable() for c in k):
            raise RacewayError("an API key must not be empty or hold whitespace or control characters")
    return tuple(dict.fromkeys(keys))


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


def refuse_early(scope, auth: ApiKeyAuth, limit: int) -> Response | None:
    """The answer to a request refused on its headers alone (a missing or wrong
    key, then a declared body past ``limit`` on any path), or None: given before
    a byte of the body is read."""
    if (auth.keys and scope["path"] not in auth.open_paths and scope["method"] != "OPTIONS"
            and not auth.allowed(presented_key(scope["headers"]))):
        return fail(401, "Unauthorized")
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if declared is not None:
        if not declared.isdigit():
            return fail(400, f"invalid Content-Length header {declared.decode('latin-1')!r}")
        if int(declared) > limit:
            return fail(413, f"request body of {int(declared):,} bytes exceeds the limit of {limit:,} bytes")
    return None


async def read_body(request: Request, limit: int) -> bytes:
    """The body, decompressed when gzip; 413 past ``limit`` bytes (either way)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, f"invalid Content-Length header {declared!r}")
        if int(declared) > limit:
            raise HttpError(413, f"request body of {int(declared):,} bytes exceeds the limit of {limit:,} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"request body exceeds the limit of {limit:,} bytes")
            chunks.append(chunk)
    except ClientDisconnect as exc:  # gone, or closed for keeping the server waiting: nobody to answer
        raise HttpError(400, "the connection closed before the whole body arrived") from exc
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


def require_json(content_type: str | None) -> None:
    """415 unless the body says it is JSON. A browser sends text/plain, forms or no
    type at all without asking the server first (no CORS preflight), so a web
    page could otherwise post events to a local server."""
    media = (content_type or "").partition(";")[0].strip().lower()
    if media != JSON and not (media.startswith("application/") and media.endswith("+json")):
        shown = f"{content_type!r}" if content_type else "none"
        raise HttpError(415, f"POST /events needs Content-Type: application/json (got {shown})")


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
    require_json(request.headers.get("content-type"))
    payload, n = ingest_batch(await read_body(request, max_body))
    if n == 0:
        return ok("Ingested 0 events", ingested=0, duplicates=0, rejected=[])
    reply = await commit(payload, n)
    if "error" in reply:
        return reply_response(reply)
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
        response = fail(exc.status, exc.message, exc.headers, **exc.extra)
    except Exception as exc:
        response = internal_error("POST /events", exc)
    await response(scope, receive, send)
