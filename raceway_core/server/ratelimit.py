"""Rate limiting as the original Raceway server: so many requests per minute per API
key, else per client address (a burst of that many at once, then one every 60/rpm
seconds: governor's Quota::per_minute, here as GCRA). Over the limit: 429 with a
Retry-After header, in the usual envelope. Unlike the original, /health and
/openapi.json are not counted (a load balancer's probes must not be refused).

The client address is the connection's peer. X-Forwarded-For is believed only from
a configured trusted proxy (the original believes it from anyone, which lets a
client pick its own bucket): the client is then the rightmost address of the
header that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time

from raceway_core.server.http import OPEN_PATHS, ApiKeyAuth, fail, presented_key

MAX_BUCKETS = 100_000  # past this, buckets that are full again are forgotten


class Limiter:
    def __init__(self, rpm: int, clock=time.monotonic) -> None:
        self.interval = 60.0 / rpm
        self.tolerance = (rpm - 1) * self.interval  # rpm requests at once
        self.clock = clock
        self._tat: dict[str, float] = {}  # theoretical arrival time per key
        self._lock = threading.Lock()

    def check(self, key: str) -> float:
        """0 when the request may go, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tat = max(self._tat.get(key, now), now)
            wait = tat - self.tolerance - now
            if wait > 0:
                return wait
            self._tat[key] = tat + self.interval
            if len(self._tat) > MAX_BUCKETS:
                self._tat = {k: t for k, t in self._tat.items() if t > now}
            return 0.0


def _parse_networks(items) -> list:
    return [ipaddress.ip_network(x, strict=False) for x in items]


class ClientAddress:
    """Who a request comes from, believing X-Forwarded-For only from trusted proxies."""

    def __init__(self, trusted_proxies=()) -> None:
        self.trusted = _parse_networks(trusted_proxies)

    def _is_trusted(self, text: str) -> bool:
        try:
            ip = ipaddress.ip_address(text.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in n for n in self.trusted)

    def of(self, scope) -> str:
        peer = (scope.get("client") or ("unknown", 0))[0]
        if not self.trusted or not self._is_trusted(peer):
            return peer
        hops = []
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                hops += [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._is_trusted(hop):
                return hop
        return hops[0] if hops else peer


class RateLimit:
    """ASGI middleware: one bucket per accepted API key, else per client address."""

    def __init__(self, app, rpm: int, auth: ApiKeyAuth, trusted_proxies=(), clock=time.monotonic) -> None:
        self.app = app
        self.limiter = Limiter(rpm, clock)
        self.auth = auth
        self.address = ClientAddress(trusted_proxies)

    def bucket(self, scope) -> str:
        key = presented_key(scope["headers"])
        # a key counts only when accepted: unknown keys would each get a fresh bucket
        if key is not None and self.auth.keys and self.auth.allowed(key):
            return "key:" + key
        return "addr:" + self.address.of(scope)

    async def __call__(self, scope, receive, send) -> None:
        # liveness probes (/health) and CORS preflights are not counted
        if scope["type"] != "http" or scope["method"] == "OPTIONS" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        wait = self.limiter.check(self.bucket(scope))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        response = fail(429, "Too Many Requests")
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        await response(scope, receive, send)


def wrap(app, rpm: int, auth: ApiKeyAuth, trusted_proxies=()):
    """``app`` behind the limiter; unchanged when rpm is 0 (no limit)."""
    return RateLimit(app, rpm, auth, trusted_proxies) if rpm else app
