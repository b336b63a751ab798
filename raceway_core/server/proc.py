"""Process-wide settings of server processes (the store's and the ingest fronts')."""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
from contextlib import contextmanager

log = logging.getLogger("raceway.server")

KEYS_ENV = "RACEWAY_FRONT_KEYS"  # a front's API keys, as a JSON list (kept off its command line)


@contextmanager
def lean_gc():
    """Each POST allocates thousands of small containers (its parsed JSON): with
    the default thresholds the collector runs every few hundred of them and keeps
    walking the long-lived objects of the imports. Moving those out of its sight
    (freeze) and collecting less often cut the CPU per event by a third."""
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), so a
    front never outlives the store it feeds and keeps the port; elsewhere the
    front still stops when the channel closes."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError) as exc:  # the channel's end stops the front instead
            log.info("no parent-death signal (%s)", exc)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(1)
