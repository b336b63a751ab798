"""One browser tab's explorer: the `raceway-tui open` process textual-serve runs for it."""

from __future__ import annotations

import asyncio
import logging
import re

from textual_serve.app_service import AppService

log = logging.getLogger("raceway-tui.web")

STDERR_KEEP = 16_384  # bytes of an app process's stderr kept (the end: the error is there)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")


class AppProcess(AppService):
    """textual-serve's AppService, plus: the environment we choose (the key never on a
    command line), the app's stderr and exit code kept for its page (not printed), and an
    end that does not wait forever for an app that does not quit."""

    def __init__(self, command: str, env: dict[str, str], **kw) -> None:
        super().__init__(command, **kw)
        self._env = env
        self.stderr = bytearray()
        self.returncode: int | None = None
        self.started = asyncio.Event()  # the app said it is a Textual app (its prelude)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        env = super()._build_environment(width, height)
        env.pop("RACEWAY_API_KEY", None)
        env.update(self._env)
        return env

    async def run(self) -> None:  # textual-serve's loop, keeping stderr instead of printing it
        process = self._process
        assert process is not None and process.stdout is not None and process.stderr is not None
        stdout, stderr = process.stdout, process.stderr

        async def read_stderr() -> None:
            while data := await stderr.read(4096):
                self.stderr += data
                del self.stderr[:-STDERR_KEEP]

        errors = asyncio.create_task(read_stderr())
        try:
            for _ in range(10):  # the prelude: anything else first is not the app (an error, say)
                line = await stdout.readline()
                if not line:
                    break
                if line == b"__GANGLION__\n":
                    self.started.set()
                    break
            while True:
                kind = await stdout.readexactly(1)
                size = int.from_bytes(await stdout.readexactly(4), "big")
                payload = await stdout.readexactly(size)
                if kind == b"D":
                    await self.on_data(payload)
                elif kind == b"M":
                    await self.on_meta(payload)
                elif kind == b"P":
                    await self.on_packed(payload)
        except (asyncio.IncompleteReadError, ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception:  # noqa: BLE001 - the browser's end of it failed: the session ends
            log.exception("session app pid %s: relaying its output failed", process.pid)
        finally:
            self.returncode = await process.wait()
            await asyncio.wait_for(errors, 5.0)

    async def end(self, grace: float) -> None:
        """Ask the app to quit (as textual-serve does), then SIGTERM, then SIGKILL."""
        process = self._process
        if process is None:
            return
        if process.returncode is None:
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)
            await self.send_meta({"type": "quit"})
            for signal_it in (None, process.terminate, process.kill):
                if signal_it is not None:
                    try:
                        signal_it()
                    except ProcessLookupError:
                        break
                try:
                    await asyncio.wait_for(asyncio.shield(process.wait()), grace)
                    break
                except asyncio.TimeoutError:
                    log.warning("session app pid %s did not quit in %.0f s", process.pid, grace)
        if self._task is not None:
            await self._task
            self._task = None

    def reason(self) -> tuple[str, str]:
        """Why the app ended, for its page: a title and the end of its error output, literally."""
        text = _ANSI.sub("", self.stderr.decode("utf-8", "replace")).strip()
        if self.returncode == 0:
            return "The explorer was closed.", text
        return f"The explorer stopped (exit code {self.returncode}).", text or "(no error output)"
