"""The private channel between ingest fronts and the process that owns the store.

A front (``front.py``) answers HTTP and parses POST bodies in its own process;
it sends each batch here as one frame and answers its client once the reply
says the batch is committed. Parsing and committing then run on two cores:
in one process they share the GIL, and DuckDB takes it back many times per
statement, so a busy event loop stretches every commit several-fold.

Frames, both ways: a fixed header, then ``length`` bytes.
- request:  ``!QIIc`` (id, events, length, kind) then the payload: kind ``A``,
  an Arrow IPC stream of the events' rows (``Rows``); kind ``P``, orjson
  ``[texts, rows]`` (a ``Prepared`` with events SQL must decide); kind ``T``,
  the body as UTF-8 text, for SQL to split (see ``event_texts``).
- reply: ``!QI`` (id, length) then orjson ``{"loaded", "duplicates",
  "rejected": [[rec, reason], ...]}`` or ``{"error": status, "message"}``.
The socket lives in a directory only this user can open; its payloads are
JSON, never code.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct

import orjson

from raceway_core import arrowipc
from raceway_core.loading.batch import LineResult, Prepared, Rows
from raceway_core.server.http import internal_reply

log = logging.getLogger("raceway.server")

REQUEST = struct.Struct("!QIIc")
REPLY = struct.Struct("!QI")


class ChannelClosed(ConnectionError):
    """The store's process went away: nothing more can be committed."""


def encode_batch(payload: Prepared | str) -> tuple[bytes, bytes]:
    """(kind, bytes) of what ``event_batch`` made of a body: its Arrow rows when
    every event has one (the store then inserts them as they are), else JSON."""
    if isinstance(payload, Prepared):
        rows = Rows.of(payload)
        if rows is None:
            return b"P", orjson.dumps([payload.texts, payload.rows])
        return b"A", arrowipc.to_bytes(rows.table.replace_schema_metadata({"chars": str(rows.chars)}))
    return b"T", payload.encode("utf-8", "surrogatepass")


def decode_batch(kind: bytes, data: bytes) -> Prepared | Rows | str:
    if kind == b"A":
        table = arrowipc.from_bytes(data)
        chars = int(table.schema.metadata[b"chars"])
        return Rows(table.replace_schema_metadata(None), chars)
    if kind == b"P":
        texts, rows = orjson.loads(data)
        return Prepared(texts, rows)
    if kind == b"T":
        return data.decode("utf-8", "surrogatepass")
    raise ValueError(f"unknown batch kind {kind!r}")


def result_reply(result: LineResult) -> dict:
    return {"loaded": result.loaded, "duplicates": len(result.duplicates),
            "rejected": [[rec, reason] for rec, reason in result.rejected]}


# -- the store's side ------------------------------------------------------------------


async def serve_channel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, commit) -> None:
    """Answer one front's frames until it disconnects. ``commit(payload, events)``
    is a coroutine giving the reply dict; frames are handled concurrently, so
    one front's batches share a group commit."""
    tasks: set[asyncio.Task] = set()

    async def one(req_id: int, events: int, kind: bytes, data: bytes) -> None:
        try:
            reply = await commit(decode_batch(kind, data), events)
        except Exception as exc:  # a malformed frame: its batch fails, the channel stays
            reply = internal_reply(f"ingest channel: batch {req_id}", exc)
        body = orjson.dumps(reply)
        if not writer.is_closing():
            writer.write(REPLY.pack(req_id, len(body)) + body)

    try:
        while True:
            try:
                head = await reader.readexactly(REQUEST.size)
            except asyncio.IncompleteReadError:
                break  # the front closed the channel
            req_id, events, length, kind = REQUEST.unpack(head)
            data = await reader.readexactly(length)
            task = asyncio.create_task(one(req_id, events, kind, data))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:  # answer what was sent before the front left
            await asyncio.gather(*tasks, return_exceptions=True)
    except (ConnectionError, asyncio.IncompleteReadError) as exc:
        log.warning("ingest channel closed: %s", exc)
    finally:
        writer.close()


# -- a front's side ------------------------------------------------------------------


class ChannelClient:
    """One connection to the store's process, shared by a front's requests."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None
        self.closed = asyncio.Event()

    async def connect(self, path: str) -> None:
        reader, self._writer = await asyncio.open_unix_connection(path)
        self._reader_task = asyncio.create_task(self._replies(reader))

    async def _replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                req_id, length = REPLY.unpack(await reader.readexactly(REPLY.size))
                reply = orjson.loads(await reader.readexactly(length))
                fut = self._pending.pop(req_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the store's process went away: fail what waits, below
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ChannelClosed("the server's store process went away"))
            self._pending.clear()
            self.closed.set()

    async def commit(self, payload: Prepared | str, events: int) -> dict:
        """Send one batch; the reply once it is committed (or why not)."""
        if self._writer is None or self.closed.is_set():
            raise ChannelClosed("the server's store process went away")
        kind, data = encode_batch(payload)
        req_id = next(self._ids)
        fut = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        self._writer.write(REQUEST.pack(req_id, events, len(data), kind))
        self._writer.write(data)
        await self._writer.drain()
        return await fut

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
