"""GET a Raceway server's JSON API (raceway-tui serve or the original), for the
command-line client: one request per call, the envelope's ``data`` or an error
that says what went wrong and carries an exit code a script can test.
"""

from __future__ import annotations

import os
from urllib.parse import quote

import orjson

from typing import TYPE_CHECKING

from raceway_core.errors import RemoteError

if TYPE_CHECKING:
    import httpx

DEFAULT_SERVER = "http://127.0.0.1:8080"

# exit codes of the command-line client (README: "Querying a server")
EXIT_UNREACHABLE = 3  # no connection, timeout, not a Raceway server
EXIT_UNAUTHORIZED = 4  # 401: no key, or a key the server refused
EXIT_NOT_FOUND = 5  # 404 (no such trace), 400 (malformed trace id)
EXIT_SERVER = 6  # any other error answer (429, 5xx, ...)


class ApiError(RemoteError):
    def __init__(self, message: str, exit_code: int, status: int | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.status = status


def segment(text: str) -> str:
    """A path segment (a trace id, a service name) with every reserved character escaped."""
    return quote(text, safe="")


class RemoteApi:
    def __init__(self, url: str | None = None, api_key: str | None = None, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("RACEWAY_SERVER") or DEFAULT_SERVER).rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise ApiError(f"invalid server URL {self.url!r}: expected http://HOST:PORT", 2)
        key = api_key if api_key is not None else os.environ.get("RACEWAY_API_KEY") or None
        self.has_key = key is not None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = timeout
        import httpx  # here: the CLI registers these commands at start, and httpx takes ~0.1 s to import

        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "RemoteApi":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def raw(self, path: str, params: dict | None = None) -> "httpx.Response":
        """The response to GET ``path``; ApiError when there is none or it is an error."""
        import httpx

        try:
            r = self._http.get(path, params={k: v for k, v in (params or {}).items() if v is not None})
        except httpx.TimeoutException as exc:
            raise ApiError(f"{self.url} did not answer within {self.timeout:g} s", EXIT_UNREACHABLE) from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            if "refused" in reason.lower():
                reason = "connection refused (is the server running?)"
            raise ApiError(f"cannot reach {self.url}: {reason}", EXIT_UNREACHABLE) from exc
        if r.is_success:
            return r
        try:
            detail = orjson.loads(r.content).get("error")
        except (orjson.JSONDecodeError, AttributeError):
            detail = None
        detail = detail or r.text[:200].strip() or r.reason_phrase
        where = f"{self.url}{path}"
        if r.status_code == 401:
            hint = ("the key in RACEWAY_API_KEY / --api-key was refused" if self.has_key
                    else "the server needs an API key: set RACEWAY_API_KEY or pass --api-key")
            raise ApiError(f"{where}: HTTP 401 {detail}: {hint}", EXIT_UNAUTHORIZED, 401)
        if r.status_code in (400, 404):
            raise ApiError(f"{where}: HTTP {r.status_code} {detail}", EXIT_NOT_FOUND, r.status_code)
        retry = r.headers.get("retry-after")
        tail = f" (retry after {retry} s)" if retry else ""
        raise ApiError(f"{where}: HTTP {r.status_code} {detail}{tail}", EXIT_SERVER, r.status_code)

    def get(self, path: str, params: dict | None = None):
        """The ``data`` of the JSON envelope of GET ``path``."""
        r = self.raw(path, params)
        try:
            doc = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict) or "data" not in doc:
            raise ApiError(f"{self.url}{path} did not answer with a Raceway JSON envelope: {r.text[:120]!r}",
                           EXIT_UNREACHABLE)
        if doc.get("success") is False:
            raise ApiError(f"{self.url}{path} reported an error: {doc.get('error')}", EXIT_SERVER)
        return doc["data"]
