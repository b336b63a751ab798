"""`raceway-tui web` as a real process, and a real browser on it: the system's Chromium
driven by Playwright (never a browser of Playwright's own). What a page shows is read by
replaying the terminal bytes it received in a terminal emulator (pyte): the page draws
them on a canvas, where no DOM query can read them."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_traces"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The system's Chromium (Debian's package), or RACEWAY_CHROMIUM."""
    for candidate in (os.environ.get("RACEWAY_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_browser() -> str | None:
    """Why no browser test can run here (None: they can)."""
    try:
        import playwright.sync_api  # noqa: F401
        import pyte  # noqa: F401
    except ImportError as exc:
        return f"Python package {exc.name} missing: `make install-test` installs it (pyproject test extras)"
    if chromium_path() is None:
        return ("no Chromium: /usr/bin/chromium not found (Debian: apt-get install chromium; "
                ".ci/run installs it when it runs as root with apt)")
    return None


def launch(playwright):
    """Headless Chromium on a fresh profile (Playwright makes a new user-data-dir per launch)."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


class WebProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.args = [sys.executable, "-m", "raceway_tui.cli", "web", "--port", "0", *args]
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.output: list[str] = []

    def start(self, timeout: float = 30.0) -> "WebProcess":
        env = {k: v for k, v in os.environ.items() if k != "RACEWAY_API_KEY"}
        env.update(self.env)
        self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        found = threading.Event()

        def pump() -> None:
            for line in self.proc.stdout:
                self.output.append(line)
                m = re.search(r"serving the explorer on (http://\S+)", line)
                if m and not found.is_set():
                    self.url = m.group(1)
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout):
            self.stop()
            raise RuntimeError("raceway-tui web did not start:\n" + "".join(self.output))
        return self

    def children(self) -> list[int]:
        """The app processes: the web server's children."""
        return children(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "WebProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


class Screen:
    """The terminal a page shows, rebuilt from the websocket frames it received."""

    def __init__(self, page) -> None:
        import pyte

        self.page = page
        self.screen = pyte.Screen(80, 24)
        self.stream = pyte.ByteStream(self.screen)
        self.sockets = 0
        self.opened: float | None = None  # time.perf_counter() of the websocket's opening (benchmark)
        self.first_frame: float | None = None  # and of the app's first bytes
        page.on("websocket", self._socket)

    def _socket(self, ws) -> None:
        self.sockets += 1
        self.opened = time.perf_counter()
        q = parse_qs(urlparse(ws.url).query)
        self.screen.resize(int(q.get("height", ["24"])[0]), int(q.get("width", ["80"])[0]))
        ws.on("framereceived", self._received)
        ws.on("framesent", self._sent)

    def _received(self, payload) -> None:
        if isinstance(payload, bytes):
            if self.first_frame is None:
                self.first_frame = time.perf_counter()
            self.stream.feed(payload)

    def _sent(self, payload) -> None:
        if isinstance(payload, str) and payload.startswith('["resize"'):
            size = json.loads(payload)[1]
            self.screen.resize(size["height"], size["width"])

    def text(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, pattern: str, timeout: float = 60.0) -> str:
        """Wait (letting Playwright deliver events) until the screen matches ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if rx.search(self.text()):
                return self.text()
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the page never showed {pattern!r}; it shows:\n{self.text()}")

    def press(self, *keys: str) -> None:
        self.page.focus(".xterm-helper-textarea")  # xterm.js takes keys through its textarea
        for key in keys:
            self.page.keyboard.press(key)


def tmpdir() -> str:
    return tempfile.mkdtemp(prefix="raceway-web-test-")
