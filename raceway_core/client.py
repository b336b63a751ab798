"""Pull events from a server into a local Store.

From a raceway-tui server the client follows the incremental feed
(``/api/events?after=CURSOR``); the cursor is saved in the local store in the
same transaction as the events, so a sync never loses or repeats events, even
across restarts. From an original Raceway server it pages ``/api/traces`` and
fetches the traces that are new or changed since the last sync
(``/api/traces/{id}``, events in ``data.events``); re-fetched events are
recognised by id and stored once.

    client = RacewayClient("http://127.0.0.1:8080", store)
    result = client.sync()        # SyncResult; raises RemoteError
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import orjson
import pyarrow as pa

from raceway_core import arrowipc
from raceway_core.errors import RemoteError
from raceway_core.loading.batch import Rows, event_texts, prepare
from raceway_core.store import Store

FEED = "feed"  # a raceway-tui server
TRACES = "traces"  # an original Raceway server


@dataclass(frozen=True)
class SyncResult:
    mode: str  # FEED or TRACES
    received: int  # events received
    loaded: int  # of which new
    duplicates: int  # already stored
    rejected: int  # invalid (kept in the rejects table)
    requests: int
    seconds: float


class RacewayClient:
    def __init__(self, url: str, store: Store, *, api_key: str | None = None, timeout: float = 10.0,
                 page_size: int = 5000, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise RemoteError(f"invalid server URL {url!r}: expected http://HOST:PORT")
        self.store = store
        self.page_size = page_size
        self.timeout = timeout
        key = api_key if api_key is not None else os.environ.get("RACEWAY_API_KEY") or None
        self.has_key = key is not None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=transport)
        self.mode: str | None = None
        self.rows_feed = False  # the server's feed offers stored rows (format=arrow)
        self._load_id: int | None = None
        self._seen: dict[str, tuple[int, str]] = {}  # trace id -> (event_count, last_timestamp)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RacewayClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- HTTP -----------------------------------------------------------------------
    def _request(self, path: str, params: dict | None = None) -> httpx.Response:
        """GET ``path``; the response, or RemoteError for a failure to connect or a 401."""
        where = f"{self.url}{path}"
        try:
            r = self._http.get(path, params=params)
        except httpx.ConnectError as exc:
            raise RemoteError(f"cannot connect to {self.url}: {_reason(exc)}") from exc
        except httpx.TimeoutException as exc:
            raise RemoteError(f"{self.url} did not answer within {self.timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise RemoteError(f"request to {where} failed: {_reason(exc)}") from exc
        if r.status_code == 401:
            hint = ("the API key in RACEWAY_API_KEY was not accepted" if self.has_key
                    else "the server needs an API key: set RACEWAY_API_KEY")
            raise RemoteError(f"{self.url} refused the request (HTTP 401 Unauthorized): {hint}")
        return r

    def _get(self, path: str, params: dict | None = None) -> tuple[dict, bytes]:
        """GET a JSON envelope; its ``data`` and the body. RemoteError for any failure."""
        where = f"{self.url}{path}"
        r = self._request(path, params)
        try:
            doc = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            doc = None
        if not r.is_success:
            detail = doc.get("error") if isinstance(doc, dict) and doc.get("error") else r.text[:200].strip()
            raise RemoteError(f"{where} answered HTTP {r.status_code}: {detail or r.reason_phrase}")
        if not isinstance(doc, dict) or "data" not in doc:
            raise RemoteError(f"{where} did not answer with a Raceway JSON envelope "
                              f"({r.headers.get('content-type', 'no content type')}): {r.text[:120]!r}")
        if doc.get("success") is False:
            raise RemoteError(f"{where} reported an error: {doc.get('error')}")
        return doc["data"], r.content

    def _get_rows(self, path: str, params: dict) -> tuple[pa.Table, httpx.Headers]:
        """GET an Arrow IPC stream (the feed's ``format=arrow``); its table and the headers."""
        r = self._request(path, params)
        if not r.is_success or not r.headers.get("content-type", "").startswith(arrowipc.MEDIA_TYPE):
            raise RemoteError(f"{self.url}{path} answered HTTP {r.status_code} "
                              f"({r.headers.get('content-type', 'no content type')}), not an Arrow stream")
        try:
            return arrowipc.from_bytes(r.content), r.headers
        except pa.ArrowInvalid as exc:
            raise RemoteError(f"{self.url}{path} sent a broken Arrow stream: {exc}") from exc

    # -- syncing --------------------------------------------------------------------
    def detect(self) -> str:
        """FEED for a raceway-tui server (it says so in /status), else TRACES."""
        data, _ = self._get("/status")
        self.mode = FEED if isinstance(data, dict) and data.get("implementation") == "raceway-tui" else TRACES
        # stored rows as Arrow: no JSON text to parse and check per event (3x faster syncs)
        self.rows_feed = self.mode == FEED and "arrow" in (data.get("feed_formats") or ())
        return self.mode

    def sync(self) -> SyncResult:
        """Pull everything new; returns what was stored. Raises RemoteError."""
        started = time.perf_counter()
        detected = self.mode is None
        if detected:
            self.detect()
        if self._load_id is None:
            self._load_id = self.store.open_live(self.url, f"pull:{self.mode}", self.url)
        totals = [0, 0, 0, 0, int(detected)]  # received, loaded, duplicates, rejected, requests
        (self._sync_feed if self.mode == FEED else self._sync_traces)(totals)
        return SyncResult(self.mode, *totals, seconds=time.perf_counter() - started)

    def _append(self, events: list, body: bytes, totals: list[int], meta: dict[str, str] | None = None) -> None:
        texts = event_texts(events, body)
        # rows from the events parsed already; else the body, where SQL finds data.events
        line = prepare(events, texts) if texts is not None else body.decode("utf-8")
        self._count(self.store.append(self._load_id, self.url, [line], meta=meta), totals)

    @staticmethod
    def _count(out, totals: list[int]) -> None:
        totals[0] += out.records
        totals[1] += out.loaded
        totals[2] += out.duplicates
        totals[3] += out.rejected

    @property
    def _cursor_key(self) -> str:
        return f"feed:{self.url}"

    def _sync_feed(self, totals: list[int]) -> None:
        saved = orjson.loads(self.store.meta(self._cursor_key) or "{}")
        cursor, store_id = saved.get("cursor", ""), saved.get("store_id")
        while True:
            params = {"after": cursor, "limit": self.page_size}
            if self.rows_feed:
                table, headers = self._get_rows("/api/events", params | {"format": "arrow"})
                data = {"store_id": headers.get("x-raceway-store-id"), "has_more": headers.get("x-raceway-has-more") == "true",
                        "next_cursor": headers.get("x-raceway-next-cursor", cursor)}
            else:
                data, body = self._get("/api/events", params)
            totals[4] += 1
            if store_id is not None and data.get("store_id") != store_id and cursor:
                # another database behind the URL: its cursors mean nothing to us; start over
                # (events already stored are recognised by id)
                cursor, store_id = "", None
                continue
            store_id = data.get("store_id")
            nxt = data.get("next_cursor", cursor)
            state = {self._cursor_key: orjson.dumps({"cursor": nxt, "store_id": store_id}).decode()}
            if self.rows_feed and table.num_rows:  # events and cursor in one transaction
                self._count(self.store.append(self._load_id, self.url, [Rows.stored(table)], meta=state), totals)
            elif not self.rows_feed and data.get("events"):
                self._append(data["events"], body, totals, meta=state)
            cursor = nxt
            if not data.get("has_more"):
                break

    def _sync_traces(self, totals: list[int]) -> None:
        changed, page, pages = [], 1, 1
        while page <= pages:
            data, _ = self._get("/api/traces", {"page": page, "page_size": 100})
            totals[4] += 1
            pages = int(data.get("total_pages") or 0)
            for t in data.get("traces") or ():
                key = (t.get("event_count"), t.get("last_timestamp"))
                if self._seen.get(t["trace_id"]) != key:
                    changed.append((t["trace_id"], key))
            page += 1
        for trace_id, key in changed:
            data, body = self._get(f"/api/traces/{quote(trace_id, safe='')}")
            totals[4] += 1
            events = data.get("events") if isinstance(data, dict) else None
            if not isinstance(events, list):
                raise RemoteError(f"{self.url}/api/traces/{trace_id} answered without data.events")
            self._append(events, body, totals)
            self._seen[trace_id] = key


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    if "Connection refused" in text or "ConnectionRefused" in text:
        return "connection refused (is the server running?)"
    return text or type(exc).__name__
