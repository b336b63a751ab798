"""The ingest fronts of a server: started, watched and stopped by the store's process.

The public listening socket is made here and handed to the fronts, which all
accept on it; this process keeps no copy, so once the fronts stop nobody
accepts and new connections are refused rather than left hanging.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import orjson

from raceway_core.server.proc import KEYS_ENV

log = logging.getLogger("raceway.server")


def default_fronts() -> int:
    """One front on a machine with a second core; none (one process) without."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


class Fronts:
    def __init__(self, count: int, listener: socket.socket, core_socket: str, channel_socket: str,
                 api_keys: tuple[str, ...], max_body: int, log_level: str,
                 cors_origins: tuple[str, ...] = (), client_timeout: float = 10.0,
                 max_connections: int = 10_000) -> None:
        self.count = count
        self.listener = listener
        self.core_socket = core_socket
        self.channel_socket = channel_socket
        self.api_keys = api_keys
        self.max_body = max_body
        self.log_level = log_level
        self.cors_origins = cors_origins
        self.client_timeout = client_timeout
        self.max_connections = max_connections
        self.procs: list[subprocess.Popen] = []
        self.stopping = False
        self.failure: str | None = None  # why a front stopped on its own
        self.on_failure: Callable[[], None] | None = None

    def start(self) -> None:
        """Start the fronts (the channel must be listening); they inherit the socket."""
        fd = self.listener.fileno()
        env = {**os.environ, KEYS_ENV: orjson.dumps(list(self.api_keys)).decode()}
        cmd = [sys.executable, "-m", "raceway_core.server.front", "--fd", str(fd), "--core", self.core_socket,
               "--channel", self.channel_socket, "--parent", str(os.getpid()), "--max-body", str(self.max_body),
               "--log-level", self.log_level, "--client-timeout", str(self.client_timeout),
               "--max-connections", str(self.max_connections), *[a for o in self.cors_origins for a in ("--cors-origin", o)]]
        try:
            for _ in range(self.count):
                # its own session: a Ctrl-C in the terminal reaches this process only,
                # which stops the fronts in order (they finish their POSTs first)
                self.procs.append(subprocess.Popen(cmd, pass_fds=(fd,), env=env, start_new_session=True))
        finally:
            self.listener.close()
        for proc in self.procs:
            threading.Thread(target=self._watch, args=(proc,), name="raceway-front-watch", daemon=True).start()

    def _watch(self, proc: subprocess.Popen) -> None:
        code = proc.wait()
        if self.stopping:
            return
        self.failure = f"an ingest front (pid {proc.pid}) exited unexpectedly with code {code}"
        log.error("%s; stopping the server", self.failure)
        if self.on_failure is not None:
            self.on_failure()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the fronts and wait: they answer their POSTs in flight first,
        so the channel and the writer must still be running meanwhile."""
        self.stopping = True
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("ingest front %d did not stop within %.0f s; killing it", proc.pid, timeout)
                proc.kill()
                proc.wait()
