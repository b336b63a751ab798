"""Read one input (plain or gzip) into chunks of records, as Arrow tables.

Two shapes come out of here, both ``(line int32, rec int32, text string)``:

* line mode, for NDJSON (and one-line documents): every non-blank line is a
  record; lines are split with numpy on 32 MB blocks and handed to Arrow without
  copying. A line may still be a batch (``{"events": [...]}``); SQL expands it.
* document mode, for pretty-printed documents: the tolerant walker finds the
  events, and each becomes a record with the line where it starts.

Problems that stop a record before SQL sees it (invalid UTF-8, broken JSON in a
document) are returned as ``Problem``s; problems with the whole file as notes.
"""

from __future__ import annotations

import bisect
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.loading import guard
from raceway_core.loading.walker import NoEvents, walk

if TYPE_CHECKING:  # formats imports loading: only for the annotation
    from raceway_core.formats import ImportOptions

BLOCK = 32 << 20  # bytes of input per chunk
BATCH_ROWS = 16_384  # rows per Arrow record batch: lets DuckDB use both cores
MAX_RECORD = 32 << 20  # default longest record (line) read; the server's body limit too
_RAW_KEPT = 1024  # bytes of an oversized record kept in its reject
CHUNK_SCHEMA = pa.schema([("line", pa.int32()), ("rec", pa.int32()), ("text", pa.string())])
# Lines handed over as arrow.json: DuckDB stores them in the raw column as they are,
# without parsing them once more to check (a record that is not JSON never gets there:
# the fast path parses every one). pyarrow before 19 has no such type.
JSON_TEXT = pa.json_() if hasattr(pa, "json_") else None


@dataclass(frozen=True, slots=True)
class Problem:
    """A record rejected before SQL: where it is, why, and its text."""

    line: int | None
    rec: int | None
    reason: str
    raw: str


@dataclass
class Chunk:
    table: pa.Table
    expand: bool  # line mode: a line may be a batch or an array of events
    records: int | None = None  # non-blank records, when known without asking SQL


@dataclass
class Source:
    """One input being read; ``chunks()`` fills ``problems`` and ``notes`` as it goes."""

    path: Path
    name: str
    mode: str = "?"  # "ndjson" | "json" (+ ".gz")
    bytes_read: int = 0
    lines: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: str | None = None
    gz: bool = False
    options: ImportOptions | None = None
    # line mode on a plain file: give each line's byte offset (column ``file_at``), so the
    # store can read the line back instead of holding its text (see rawtext)
    offsets: bool = False
    crc: int = 0  # zlib.crc32 of the bytes read (a plain file)
    crc_marks: dict[int, int | None] = field(default_factory=dict)  # size -> crc32 of that prefix

    def chunks(self) -> Iterator[Chunk]:
        try:
            raw = _open_blocks(self.path, self)
            first = next(raw, b"")
        except OSError as exc:
            self.fatal = _os_reason(exc)
            return
        importer = self._importer(first)
        # a log whose lines start with '[' may be read either way (the JSON importers
        # sniff keys of their own and need the whole document)
        if (importer is not None and importer.name == "shiviz" and not self._forced()
                and first.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"[", b"{")):
            importer = self._reads_better(importer, first)
        if importer is not None or self.gz:
            self.offsets = False
        if importer is not None:
            yield from self._imported(importer, first + b"".join(raw))
            return
        if self.fatal:
            return
        body = first.lstrip(b"\xef\xbb\xbf \t\r\n")
        if not body:
            rest = b"".join(raw).strip()
            self.offsets = False  # the text no longer starts at the file's offset 0
            if not rest:
                self.notes.append("empty file")
                self.mode = "empty"
                return
            first, body = rest, rest
        if _is_document(body):
            self.offsets = False
            self.mode = "json"
            yield from self._document(first + b"".join(raw))
        else:
            self.mode = "ndjson"
            yield from self._lines(first, raw)
        if self.gz:
            self.mode += ".gz"

    # -- other tools' formats ----------------------------------------------
    def _forced(self) -> bool:
        return bool(self.options and (self.options.format or self.options.regex))

    def _reads_better(self, importer, first: bytes):
        """``importer`` when it reads more events of the head than Raceway JSON does
        (a log whose lines start with '[' may be either), else None; says which."""
        from raceway_core.formats import ImportOptions

        head = first[:_HEAD]
        if len(first) > _HEAD:
            head = head[: head.rfind(b"\n") + 1]
        native = max(_line_records(head), _document_records(head))
        options = replace(self.options or ImportOptions(), source=self.path.name.removesuffix(".gz"))
        try:
            found = len(importer.convert(head.decode("utf-8", "replace"), options).events)
        except ValueError:
            found = 0
        if found <= native:
            return None
        self.notes.append(f"read as {importer.name}: it reads {found:,} events of the first "
                          f"{len(head):,} bytes, Raceway JSON {native:,}")
        return importer

    def _importer(self, first: bytes):
        from raceway_core import formats

        forced = self.options.format if self.options else None
        if not forced and self.options and self.options.regex:
            forced = "shiviz"  # a parser regex only makes sense for a ShiViz log
        if forced and forced != "raceway":
            imp = formats.by_name(forced)
            if imp is None:
                self.fatal = f"unknown format {forced!r} (known: {', '.join(formats.names())})"
            return imp
        if forced == "raceway":
            return None
        head = first[: 1 << 16].decode("utf-8", "replace")
        return formats.detect(head)

    def _imported(self, importer, data: bytes) -> Iterator[Chunk]:
        from raceway_core.formats import ImportOptions

        text = data.decode("utf-8", "replace")
        options = replace(self.options or ImportOptions(), source=self.path.name.removesuffix(".gz"))
        try:
            conv = importer.convert(text, options)
        except ValueError as exc:  # the importer could not read the input at all
            self.fatal = f"{importer.name}: {exc}"
            return
        self.mode = (conv.format or importer.name) + (".gz" if self.gz else "")
        self.lines = text.count("\n") + 1
        self.problems.extend(conv.problems)
        self.notes.extend(conv.notes)
        if not conv.events:
            return
        per_line: dict[int | None, int] = {}
        recs = []
        for line in conv.lines:  # events sharing a line get increasing rec numbers
            recs.append(per_line.get(line, 0))
            per_line[line] = recs[-1] + 1
        table = pa.Table.from_arrays(
            [pa.array([ln if ln is not None else 0 for ln in conv.lines], pa.int32()),
             pa.array(recs, pa.int32()),
             pa.array([orjson.dumps(e).decode() for e in conv.events], pa.string())],
            schema=CHUNK_SCHEMA)
        yield Chunk(_batched(table), expand=False)

    # -- line mode -------------------------------------------------------
    @property
    def max_record(self) -> int:
        limit = getattr(self.options, "max_record", None)
        return limit if limit else MAX_RECORD

    def _lines(self, first: bytes, rest: Iterator[bytes]) -> Iterator[Chunk]:
        carry = b""
        line_no = 0
        limit = self.max_record
        skipped = 0  # bytes of an oversized line dropped so far (0: not inside one)
        head = b""  # the start of that line, kept for the reject
        pos = 0  # file offset of the next block
        for block in _chain_first(first, rest):
            start, pos = pos, pos + len(block)
            if skipped:  # inside a line past the limit: drop bytes up to its end
                nl = block.find(b"\n")
                if nl < 0:
                    skipped += len(block)
                    continue
                line_no += 1
                self._oversized(line_no, head, skipped + nl)
                skipped, block, start = 0, block[nl + 1:], start + nl + 1
            data = carry + block if carry else block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                if len(carry) > limit:  # no end in sight: stop holding it
                    skipped, head, carry = len(carry), carry[:_RAW_KEPT], b""
                continue
            at = start - len(carry)  # file offset of data[0]
            carry = data[cut:]
            chunk, n = self._split(data, line_no, cut, at)  # the first cut bytes: no copy
            line_no += n
            if chunk is not None:
                yield chunk
            if len(carry) > limit:
                skipped, head, carry = len(carry), carry[:_RAW_KEPT], b""
        if skipped:
            line_no += 1
            self._oversized(line_no, head, skipped)
        elif carry.strip():
            chunk, n = self._split(carry + b"\n", line_no, None, pos - len(carry))
            line_no += n
            if chunk is not None:
                yield chunk
        self.lines = line_no

    def _oversized(self, line: int, head: bytes, size: int) -> None:
        self.problems.append(Problem(line, None, _too_big(size, self.max_record),
                                     head.decode("utf-8", "replace") + " …"))

    def _split(self, data: bytes, line_no: int, end: int | None = None,
               at: int = 0) -> tuple[Chunk | None, int]:
        """Records of ``data[:end]`` (ends with a newline) whose first line is line_no + 1;
        ``at``: the file offset of data[0] (for ``offsets``)."""
        arr = np.frombuffer(data, dtype=np.uint8, count=-1 if end is None else end)
        ends = np.flatnonzero(arr == 10) + 1
        n = len(ends)
        offsets = np.empty(n + 1, dtype=np.int32)
        offsets[0] = 0
        offsets[1:] = ends
        lines = pa.array(np.arange(line_no + 1, line_no + n + 1, dtype=np.int32))
        buf = pa.py_buffer(data)
        binary = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), buf])
        records = None
        try:
            # each line without its newline (a copy in C++): the text is then the raw
            # column as it is, where SQL cut it per row (unicode-aware, 0.7 s a million)
            text = pc.binary_slice(binary, 0, -1).cast(pa.string())
            if data.find(b"\r", 0, len(arr)) >= 0:  # CRLF line ends: the record is what comes before
                text = pc.utf8_rtrim(text, "\r")
            if JSON_TEXT is not None:
                text = pa.ExtensionArray.from_storage(JSON_TEXT, text)
            records = _non_blank(data, arr, offsets)
        except pa.ArrowInvalid:
            lines, text = self._decode_slowly(binary, line_no)
        recs = pa.nulls(len(text), pa.int32())
        table = pa.Table.from_arrays([lines, recs, text], names=CHUNK_SCHEMA.names)
        big = np.flatnonzero(np.diff(offsets) > self.max_record + 1)  # + its newline
        if len(big):
            table = self._reject_oversized(table, data, offsets, big.tolist(), line_no)
            records = None
        bad = guard.non_finite_lines(data, arr, offsets)
        if len(big):
            bad = sorted(set(bad) - set(big.tolist()))
        if bad:
            table = self._reject_non_finite(table, data, offsets, bad, line_no)
            records = None
        # batch lines ({"events": [...]}, arrays) need SQL to count and expand them
        batches = data.find(b'"events"', 0, len(arr)) >= 0 or bool(np.any(arr[offsets[:-1]] == ord("[")))
        if self.offsets and not batches:
            table = _with_offsets(table, offsets, line_no, at)
        if batches or records is None:
            return Chunk(_batched(table), expand=True), n
        return Chunk(_batched(table), expand=False, records=records), n

    def _reject_oversized(self, table: pa.Table, data: bytes, offsets: np.ndarray, big: list[int],
                          line_no: int) -> pa.Table:
        for i in big:
            self._oversized(line_no + i + 1, data[offsets[i]:offsets[i] + _RAW_KEPT], int(offsets[i + 1] - offsets[i]) - 1)
        drop = pa.array([line_no + i + 1 for i in big], pa.int32())
        return table.filter(pc.invert(pc.is_in(table.column("line"), drop)))

    def _reject_non_finite(self, table: pa.Table, data: bytes, offsets: np.ndarray, bad: list[int],
                           line_no: int) -> pa.Table:
        """``table`` less the lines holding NaN, Infinity or 1e400, which become
        rejects; a batch line is split so that only its bad events are rejected."""
        drop = {line_no + i + 1 for i in bad}
        keep = pc.invert(pc.is_in(table.column("line"), pa.array(sorted(drop), pa.int32())))
        extra_line, extra_rec, extra_text = [], [], []
        for i in bad:
            line = line_no + i + 1
            raw = data[offsets[i]:offsets[i + 1]].decode("utf-8", "replace").rstrip("\r\n")
            events = guard.split_batch(raw) if raw.lstrip()[:1] == "[" or '"events"' in raw else None
            if events is None:
                self.problems.append(Problem(line, None, guard.NON_FINITE_REASON, raw))
                continue
            for rec, ev in enumerate(events):
                if guard.non_finite(ev):
                    self.problems.append(Problem(line, rec, guard.NON_FINITE_REASON, ev))
                else:
                    extra_line.append(line)
                    extra_rec.append(rec)
                    extra_text.append(ev)
        table = table.filter(keep)
        if extra_text:
            text = pa.array(extra_text, pa.string())
            if table.schema.field("text").type == JSON_TEXT:
                text = pa.ExtensionArray.from_storage(JSON_TEXT, text)
            table = pa.concat_tables([table, pa.Table.from_arrays(
                [pa.array(extra_line, pa.int32()), pa.array(extra_rec, pa.int32()), text], schema=table.schema)])
        return table

    def _decode_slowly(self, binary: pa.Array, line_no: int) -> tuple[pa.Array, pa.Array]:
        """Per-line UTF-8 check, used only when a block holds invalid UTF-8."""
        keep_lines, keep_text = [], []
        for i, value in enumerate(binary.to_pylist()):
            try:
                keep_text.append(value.decode("utf-8"))
                keep_lines.append(line_no + i + 1)
            except UnicodeDecodeError as exc:
                self.problems.append(Problem(line_no + i + 1, None,
                                             f"invalid UTF-8 at column {exc.start + 1}",
                                             value.decode("utf-8", "replace").rstrip("\r\n")))
        return pa.array(keep_lines, pa.int32()), pa.array(keep_text, pa.string())

    # -- document mode ---------------------------------------------------
    def _document(self, data: bytes) -> Iterator[Chunk]:
        text = data.decode("utf-8", "surrogateescape")
        newlines = _newline_offsets(text)
        try:
            result = walk(text)
        except NoEvents as exc:
            self.fatal = f"no events found: {exc}"
            return
        self.notes.extend(result.notes)
        self.lines = text.count("\n") + 1
        rows_line, rows_rec, rows_text = [], [], []
        for el in result.elements:
            line = _line_of(text, el.pos, newlines)
            if el.error is None and guard.non_finite(el.text):
                self.problems.append(Problem(line, el.index, guard.NON_FINITE_REASON, el.text))
                continue
            if el.error is None:
                try:
                    el.text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    self.problems.append(Problem(line, el.index, f"invalid UTF-8 at offset {exc.start}",
                                                 el.text.encode("utf-8", "surrogateescape")
                                                 .decode("utf-8", "replace")))
                    continue
                rows_line.append(line)
                rows_rec.append(el.index)
                rows_text.append(el.text)
            else:
                raw = el.text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                why = guard.NON_FINITE_REASON if guard.non_finite(raw) else el.error  # nan, inf: not Python's
                self.problems.append(Problem(line, el.index, why, raw))
        if rows_text:
            table = pa.Table.from_arrays(
                [pa.array(rows_line, pa.int32()), pa.array(rows_rec, pa.int32()),
                 pa.array(rows_text, pa.string())], schema=CHUNK_SCHEMA)
            yield Chunk(_batched(table), expand=False)


def parse_size(text: str) -> int:
    """Bytes in '32M', '1G', '512k', '1000' (binary units)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    try:
        n = float(t[:-1] if scale > 1 else t) * scale
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 32M, 1G)") from None
    if not 1 <= n < 1 << 40:
        raise ValueError(f"size out of range: {text!r}")
    return int(n)


def _too_big(size: int, limit: int) -> str:
    return f"record of {size:,} bytes is larger than the limit of {limit:,} bytes (--max-record-size)"


def records_from_text(text: str) -> tuple[list[tuple[int | None, str]], list[tuple[int | None, str, str]], list[str]]:
    """Salvage a broken one-line container: (rec, text) records, (rec, reason, raw) rejects, notes."""
    try:
        result = walk(text)
    except NoEvents as exc:
        return [], [(None, f"no events found: {exc}", text)], []
    good = [(el.index, el.text) for el in result.elements if el.error is None]
    bad = [(el.index, el.error, el.text) for el in result.elements if el.error is not None]
    return good, bad, result.notes


def json_error_reason(text: str) -> str:
    """Why ``text`` is not JSON, in words a user can act on."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        stripped = text.rstrip()
        if exc.pos >= len(stripped) or "end of data" in exc.msg or "EOF" in exc.msg:
            return f"truncated JSON (line ends at column {len(stripped)} inside a value)"
        return f"not valid JSON: {exc.msg} at column {exc.colno}"
    return "not valid JSON"


def _with_offsets(table: pa.Table, offsets: np.ndarray, line_no: int, at: int) -> pa.Table:
    """``table`` with ``file_at``: where each whole line starts in the file (NULL for an event
    cut out of a line, whose text is not a line of the file)."""
    idx = table.column("line").to_numpy() - (line_no + 1)
    starts = pa.array(offsets[idx].astype(np.int64) + at)
    rec = table.column("rec")
    if rec.null_count < len(rec):
        starts = pc.if_else(pc.is_null(rec), starts, pa.nulls(len(rec), pa.int64()))
    return table.append_column("file_at", starts)


def _batched(table: pa.Table) -> pa.Table:
    return pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), schema=table.schema)


def _chain_first(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _newline_offsets(text: str) -> list[int]:
    out, i = [], text.find("\n")
    while i >= 0:
        out.append(i)
        i = text.find("\n", i + 1)
    return out


def _line_of(text: str, pos: int, newlines: list[int]) -> int:
    return bisect.bisect_left(newlines, pos) + 1


_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 13, 32]] = True


def _non_blank(data: bytes, arr: np.ndarray, offsets: np.ndarray) -> int | None:
    """Lines holding something other than whitespace; None when a line starts with
    whitespace and might hide a '[' (then SQL decides)."""
    starts = offsets[:-1]
    first_ws = _WS[arr[starts]]
    count = int(np.count_nonzero(~first_ws))
    for i in np.flatnonzero(first_ws).tolist():  # rare: blank lines, indented records
        stripped = data[offsets[i]:offsets[i + 1]].strip()
        if stripped[:1] == b"[":
            return None
        count += bool(stripped)
    return count


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


_HEAD = 1 << 20  # bytes of a file that decide its mode when its first line does not parse


def _is_document(body: bytes) -> bool:
    """True when the input is one pretty-printed JSON document, not NDJSON.

    NDJSON when the first line is JSON on its own. Otherwise both readings are
    tried on the head of the file and the one finding more valid records wins;
    a tie keeps lines unless line 1 merely opens a container (``[``, ``{"events": [``).
    Nothing is dropped either way in line mode: each bad line is a reject.
    """
    if body[:1] not in (b"[", b"{"):
        return False
    first_end = body.find(b"\n")
    first = body if first_end < 0 else body[:first_end]
    if _parses(first):
        return False
    rest = body[first_end + 1:] if first_end >= 0 else b""
    if not rest.strip():
        return False  # one line: line mode handles it (and salvages a broken one)
    head = body[:_HEAD]
    cut = head.rfind(b"\n") if len(body) > _HEAD else len(head)
    as_lines = _line_records(head[:cut])
    as_document = _document_records(head)
    if as_document != as_lines:
        return as_document > as_lines
    return _opens_container(first)


def _line_records(data: bytes) -> int:
    """Valid records line mode finds in ``data``: events of lines that parse, and
    those a broken batch line still gives (as ``records_from_text`` salvages them)."""
    n = 0
    for line in data.split(b"\n"):
        line = line.strip()
        if line[:1] not in (b"{", b"["):
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            if line[:1] == b"[" or b'"events"' in line[:4096]:  # what line mode salvages
                n += _document_records(line)
            continue
        if isinstance(value, dict):
            events = value.get("events")
            n += sum(isinstance(e, dict) for e in events) if isinstance(events, list) else 1
        elif isinstance(value, list):
            n += sum(isinstance(e, dict) for e in value)
    return n


def _document_records(data: bytes) -> int:
    """Valid records the tolerant walker finds in ``data`` read as one document."""
    try:
        result = walk(data.decode("utf-8", "replace"))
    except (NoEvents, RecursionError):
        return 0
    return sum(el.error is None and el.text[:1] == "{" for el in result.elements)  # events are objects


def _opens_container(line: bytes) -> bool:
    """A first line that only opens what the next lines fill: short, brackets left open."""
    line = line.strip()
    if len(line) > 256:
        return False
    depth, in_str, esc = 0, False, False
    for ch in line.decode("utf-8", "replace"):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
            continue
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth > 0 and not in_str


def _open_blocks(path: Path, src: Source) -> Iterator[bytes]:
    """Blocks of the (decompressed) input; notes a truncated or corrupt gzip."""
    f = open(path, "rb")  # raises OSError for the caller to report
    magic = f.read(2)
    f.seek(0)
    if magic == b"\x1f\x8b":
        src.gz = True
        return _gunzip_blocks(f, src)
    return _plain_blocks(f, src)


def _plain_blocks(f, src: Source) -> Iterator[bytes]:
    with f:
        while block := f.read(BLOCK):
            for mark, got in src.crc_marks.items():  # a file read before: did it only grow?
                if got is None and src.bytes_read < mark <= src.bytes_read + len(block):
                    src.crc_marks[mark] = zlib.crc32(block[:mark - src.bytes_read], src.crc)
            src.crc = zlib.crc32(block, src.crc)  # 4 GB/s: 1% of a load
            src.bytes_read += len(block)
            yield block


def _gunzip_blocks(f, src: Source) -> Iterator[bytes]:
    """Decompressed blocks of about BLOCK bytes; a gzip bomb is read a block at a
    time (``max_length``), never inflated whole."""
    with f:
        d = zlib.decompressobj(wbits=31)
        out: list[bytes] = []
        size = 0
        produced = 0
        pending = b""  # compressed input not yet fed
        corrupt = False
        while True:
            if not pending and not d.unconsumed_tail:
                pending = f.read(1 << 20)
                src.bytes_read += len(pending)
                if not pending:
                    break
            try:
                if d.unconsumed_tail:
                    data = d.decompress(d.unconsumed_tail, BLOCK)
                else:
                    data, pending = d.decompress(pending, BLOCK), b""
                if d.eof and d.unused_data:  # multi-member gzip
                    pending = d.unused_data + pending
                    d = zlib.decompressobj(wbits=31)
            except zlib.error as exc:
                src.notes.append(f"corrupt gzip data after {produced + size:,} bytes ({exc}); kept what came before")
                corrupt = True
                break
            if data:
                out.append(data)
                size += len(data)
            if size >= BLOCK:
                produced += size
                yield b"".join(out)
                out, size = [], 0
        if not d.eof and not corrupt:
            src.notes.append(f"truncated gzip: the stream ends after {produced + size:,} bytes "
                             "of data; kept the complete records before the cut")
        if out:
            yield b"".join(out)


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return exc.strerror or str(exc)


def display_name(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return rel if not rel.startswith("..") else str(path)
