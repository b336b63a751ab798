"""Run `raceway-tui serve` as a real process on 127.0.0.1 (a free port) for tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent

# How the server runs: behind an ingest front process (the default on two or
# more cores) or as one process; tests of behaviour both share run in both.
MODES = {"front": ("--ingest-workers", "1"), "one-process": ("--ingest-workers", "0")}


class ServerProcess:
    def __init__(self, db: str | Path = ":memory:", api_keys: tuple[str, ...] = (), extra: tuple[str, ...] = (),
                 port: int = 0, mode: str = "front"):
        self.db = str(db)
        self.args = [sys.executable, "-m", "raceway_tui.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--db", self.db, *[a for k in api_keys for a in ("--api-key", k)], *MODES[mode], *extra]
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.output: list[str] = []
        self.env: dict[str, str] = {}  # added to the server's environment

    def start(self, timeout: float = 20.0) -> "ServerProcess":
        env = {k: v for k, v in os.environ.items() if k != "RACEWAY_API_KEY"}
        env["COLUMNS"] = "200"
        env.update(self.env)
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        found = threading.Event()

        def pump() -> None:  # keep reading so the pipe never fills
            for line in self.proc.stdout:
                self.output.append(line)
                m = re.search(r"listening on (http://\S+)", line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout):
            self.kill()
            raise RuntimeError("server did not start:\n" + "".join(self.output))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("server never became healthy:\n" + "".join(self.output))

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, as a service manager would; the exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        """SIGKILL: no chance to flush or close anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            self.kill()
