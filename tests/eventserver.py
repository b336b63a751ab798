"""A minimal Raceway-compatible event receiver for the HTTP sink tests.

It speaks the part of the server API the SDK uses (``POST /events`` with
``{"events": [...]}``, answered ``{"success": true, "data": "Ingested N events"}``)
and records each attempt. To run the sink tests against the project's own
server (``raceway-tui serve``) instead, replace ``start_event_server`` with one
that starts it on a free port and reads events back from its API; the tests
only use ``url``, ``events()``, ``attempts`` and ``fail_next()``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EventServer:
    def __init__(self) -> None:
        self.attempts: list[dict] = []  # every POST: time, status, headers, body
        self._failures: list[int] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with server._lock:
                    status = server._failures.pop(0) if server._failures else 200
                    server.attempts.append({"t": time.monotonic(), "status": status, "path": self.path,
                                            "headers": dict(self.headers), "body": body})
                if status == 200:
                    n = len(json.loads(body)["events"])
                    reply = {"success": True, "data": f"Ingested {n} events", "error": None}
                else:
                    reply = {"success": False, "data": None, "error": f"status {status}"}
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def fail_next(self, *statuses: int) -> None:
        """Answer the next POSTs with these statuses (then 200 again)."""
        with self._lock:
            self._failures.extend(statuses)

    def accepted(self) -> list[dict]:
        with self._lock:
            return [a for a in self.attempts if a["status"] == 200]

    def events(self) -> list[dict]:
        return [e for a in self.accepted() for e in json.loads(a["body"])["events"]]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def start_event_server() -> EventServer:
    return EventServer()
