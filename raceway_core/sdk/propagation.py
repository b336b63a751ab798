"""Distributed propagation headers: W3C ``traceparent`` and ``raceway-clock``.

``traceparent``: ``00-<32 hex trace id>-<16 hex span id of the caller>-01``.
``raceway-clock``: ``v1;`` + base64url (unpadded) of the JSON object
``{trace_id, span_id, parent_span_id, service, instance, clock}`` where
``span_id`` is the sender's span, ``parent_span_id`` the sender's own upstream
span and ``clock`` the sender's vector ``[[component, counter], ...]``.
Services also return a ``raceway-clock`` on responses (same encoding) so the
caller's next event can carry the callee's clock.

Parsing never raises: a malformed header is ignored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
RACEWAY_CLOCK = "raceway-clock"
CLOCK_PREFIX = "v1;"

_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass
class Incoming:
    """What a request's headers say about its caller."""

    trace_id: str | None = None
    upstream_span_id: str | None = None
    tracestate: str | None = None
    clock: list[tuple[str, int]] = field(default_factory=list)
    service: str | None = None
    instance: str | None = None

    @property
    def distributed(self) -> bool:
        return self.trace_id is not None


def trace_hex(trace_id: str) -> str:
    """32 hex digits for traceparent: the UUID's digits, else a stable hash of the id."""
    try:
        return uuid.UUID(trace_id).hex
    except (ValueError, AttributeError, TypeError):
        return hashlib.sha256(str(trace_id).encode()).hexdigest()[:32]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_clock(*, trace_id: str, span_id: str, parent_span_id: str | None, service: str,
                 instance: str, clock: Iterable[tuple[str, int]]) -> str:
    payload = {"trace_id": trace_id, "span_id": span_id, "parent_span_id": parent_span_id,
               "service": service, "instance": instance, "clock": [[c, n] for c, n in clock]}
    return CLOCK_PREFIX + _b64encode(json.dumps(payload, separators=(",", ":")).encode())


def decode_clock(value: str) -> dict | None:
    """The raceway-clock payload, with ``clock`` as a list of (component, counter); None if malformed."""
    if not isinstance(value, str) or not value.startswith(CLOCK_PREFIX):
        return None
    try:
        payload = json.loads(_b64decode(value[len(CLOCK_PREFIX):].strip()))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict):
        return None
    clock = []
    for item in payload.get("clock") or ():
        if (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)
                and isinstance(item[1], int) and not isinstance(item[1], bool) and item[1] >= 0):
            clock.append((item[0], item[1]))
    payload["clock"] = clock
    for key in ("trace_id", "span_id", "parent_span_id", "service", "instance"):
        if not isinstance(payload.get(key), str):
            payload[key] = None
    return payload


def build_headers(*, trace_id: str, span_id: str, parent_span_id: str | None, tracestate: str | None,
                  service: str, instance: str, clock: Iterable[tuple[str, int]]) -> dict[str, str]:
    headers = {
        TRACEPARENT: f"00-{trace_hex(trace_id)}-{span_id}-01",
        RACEWAY_CLOCK: encode_clock(trace_id=trace_id, span_id=span_id, parent_span_id=parent_span_id,
                                    service=service, instance=instance, clock=clock),
    }
    if tracestate:
        headers[TRACESTATE] = tracestate
    return headers


def _lower(headers) -> dict[str, str]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) or hasattr(headers, "items") else headers
    out = {}
    for k, v in items:
        if isinstance(k, bytes):
            k = k.decode("latin-1")
        if isinstance(v, bytes):
            v = v.decode("latin-1")
        out.setdefault(str(k).lower(), str(v))
    return out


def parse_headers(headers) -> Incoming:
    """Read traceparent / tracestate / raceway-clock from any header mapping or pair list."""
    h = _lower(headers)
    inc = Incoming(tracestate=h.get(TRACESTATE))
    m = _TRACEPARENT_RE.match(h.get(TRACEPARENT, "").strip().lower())
    if m and m.group(1) != "ff" and set(m.group(2)) != {"0"} and set(m.group(3)) != {"0"}:
        inc.trace_id = str(uuid.UUID(m.group(2)))
        inc.upstream_span_id = m.group(3)
    payload = decode_clock(h.get(RACEWAY_CLOCK, ""))
    if payload is not None:
        # The payload keeps the exact trace id (it need not be a UUID).
        if payload["trace_id"] and (inc.trace_id is None or trace_hex(payload["trace_id"]) == m.group(2)):
            inc.trace_id = payload["trace_id"]
        inc.upstream_span_id = inc.upstream_span_id or payload["span_id"]
        inc.clock = payload["clock"]
        inc.service, inc.instance = payload["service"], payload["instance"]
    return inc
