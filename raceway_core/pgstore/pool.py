"""A few PostgreSQL connections shared by threads (psycopg connections are
not used by two threads at once). A connection that failed is dropped, so a
restarted database is reconnected to on the next use."""

from __future__ import annotations

import contextlib
import queue
import threading

from raceway_core.errors import StoreError


class Pool:
    def __init__(self, url: str, size: int = 4, connect_timeout: float = 10.0) -> None:
        self.url = url
        self.size = size
        self.connect_timeout = connect_timeout
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._open = 0
        self._lock = threading.Lock()

    def connect(self):
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=int(self.connect_timeout),
                                   application_name="raceway-tui")
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {redact(self.url)}: {str(exc).strip()}") from exc

    @contextlib.contextmanager
    def connection(self):
        conn = None
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                grow = self._open < self.size
                if grow:
                    self._open += 1
            if grow:
                try:
                    conn = self.connect()
                except BaseException:
                    with self._lock:
                        self._open -= 1
                    raise
            else:
                conn = self._idle.get()
        ok = False
        try:
            yield conn
            ok = not conn.closed and conn.info.transaction_status.name == "IDLE"
        except Exception as exc:
            import psycopg

            if conn.broken or isinstance(exc, psycopg.OperationalError):
                self._drop_idle()  # a lost connection: the idle ones were most likely cut too (a restart)
            raise
        finally:
            if ok:
                self._idle.put(conn)
            else:
                conn.close()
                with self._lock:
                    self._open -= 1

    def _drop_idle(self) -> None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            conn.close()
            with self._lock:
                self._open -= 1

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
