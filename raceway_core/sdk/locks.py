"""Locks that record LockAcquire/LockRelease around the real acquire/release.

The acquire event comes after the real acquire and the release event before
the real release, so the clock a releaser leaves on the lock is always there
for the next holder to merge.
"""

from __future__ import annotations

import inspect


class TrackedLock:
    """Wraps a ``threading`` lock (``with``) or an ``asyncio`` lock (``async with``)."""

    def __init__(self, client, lock, lock_id: str, lock_type: str = "Mutex") -> None:
        self.client, self.lock, self.lock_id, self.lock_type = client, lock, lock_id, lock_type

    def __enter__(self):
        if hasattr(self.lock, "acquire") and hasattr(self.lock, "release"):
            got = self.lock.acquire()
            if inspect.isawaitable(got):
                got.close()
                raise TypeError(f"{type(self.lock).__name__} is an asyncio lock: use `async with`")
        else:
            self.lock.__enter__()
        self.client.track_lock_acquire(self.lock_id, self.lock_type)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.client.track_lock_release(self.lock_id, self.lock_type)
        finally:
            if hasattr(self.lock, "release"):
                self.lock.release()
            else:
                self.lock.__exit__(*exc)

    async def __aenter__(self):
        await self.lock.acquire()
        self.client.track_lock_acquire(self.lock_id, self.lock_type)
        return self

    async def __aexit__(self, *exc) -> None:
        try:
            self.client.track_lock_release(self.lock_id, self.lock_type)
        finally:
            self.lock.release()


def tracked_lock(client, lock, lock_id: str, lock_type: str = "Mutex") -> TrackedLock:
    """The original SDK's ``tracked_lock(client, lock, lock_id)`` context manager."""
    return TrackedLock(client, lock, lock_id, lock_type)


def track_lock_acquire(client, lock_id: str, lock_type: str = "Mutex") -> None:
    client.track_lock_acquire(lock_id, lock_type)


def track_lock_release(client, lock_id: str, lock_type: str = "Mutex") -> None:
    client.track_lock_release(lock_id, lock_type)
