"""Validate and extract chunks of records in DuckDB, then append to the store.

Per chunk (an Arrow table of ``line, rec, text``):

1. fast path, one parallel INSERT: each record is parsed once by
   ``json_transform`` into JSON fragments whose first character gives the type;
   records passing every check go straight to ``events``;
2. only when fewer events went in than the chunk holds, the records that did
   not are examined again with exact ``json_type`` checks: each gets the first
   reason that applies and goes to ``rejects`` (or, when the fast checks were
   merely stricter than the rules, to ``events``);
3. records that are not JSON come back to Python for a precise message, and a
   broken one-line batch is walked to salvage the complete events in it.

Duplicated ids are removed after a whole source is in (``dedupe``): the first
appearance (lowest ``seq``) wins and the others are counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from raceway_core.loading.fields import (
    ACCESS_TYPES, ARR, ID, INDEX, INT, KIND, KNOWN_VARIANTS, NUM, OBJ, PATHS, STR, TOP_FIELDS,
    TOP_STRUCT, TOP_TYPE, VARIANT_FIELDS, Field,
)
from raceway_core.loading.guard import DEPTH_REASON, MAX_DEPTH
from raceway_core.loading.reading import CHUNK_SCHEMA, JSON_TEXT, Problem, json_error_reason, records_from_text
from raceway_core.schema import REC_BITS

_EXPECTED = {STR: "a string", INT: "an integer", NUM: "a number", OBJ: "an object",
             ARR: "an array", KIND: "an object", ID: "a string"}


def _q(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _list(items) -> str:
    return "[" + ", ".join(_q(p) for p in items) + "]"


_KNOWN = ", ".join(_q(v) for v in KNOWN_VARIANTS)

# -- exact checks (slow path): json_type of every path ---------------------------


def _ty(label: str) -> str:
    return f"ty[{INDEX[label]}]"


def _sv(label: str) -> str:
    return f"s[{INDEX[label]}]"


def _field_checks(f: Field) -> list[str]:
    t = _ty(f.label)
    guard = f"variant = {_q(f.variant)} AND " if f.variant else ""
    name = f.label.replace("'", "''")
    out = []
    if f.required:
        out.append(f"WHEN {guard}{t} IS NULL THEN 'missing ''{name}'''")
        out.append(f"WHEN {guard}{t} = 'NULL' THEN 'field ''{name}'' is null'")
    allowed = ", ".join(_q(x) for x in f.types + ("NULL",))
    out.append(
        f"WHEN {guard}{t} IS NOT NULL AND {t} NOT IN ({allowed}) "
        f"THEN 'field ''{name}'' must be {_EXPECTED[f.types]}, got ' || rw_type_name({t})"
    )
    return out


def _reason_sql() -> str:
    cv, ls = "x.causality_vector", "x.lock_set"
    access = _sv("kind.StateChange.access_type")
    checks = [
        "WHEN NOT ok THEN '!json'",
        "WHEN ty[1] <> 'OBJECT' THEN 'not an event object (got ' || rw_type_name(ty[1]) || ')'",
        f"WHEN too_deep THEN {_q(DEPTH_REASON)}",
    ]
    for f in TOP_FIELDS[:4]:
        checks += _field_checks(f)
    checks += [
        f"WHEN ts IS NULL OR NOT isfinite(ts) THEN 'field ''timestamp'' is not a valid timestamp: ' || {_sv('timestamp')}",
        f"WHEN NOT ts_zone_ok THEN 'field ''timestamp'' has an invalid UTC offset (hours 00-23, minutes 00-59): ' "
        f"|| {_sv('timestamp')}",
        f"WHEN NOT ts_in_range THEN 'field ''timestamp'' is out of range (the store holds {TS_RANGE}): ' "
        f"|| {_sv('timestamp')}",
        "WHEN variant IS NULL THEN 'field ''kind'' must hold exactly one variant, got ' "
        "|| coalesce(len(kkeys), 0) || ' keys'",
    ]
    for f in TOP_FIELDS[4:]:
        checks += _field_checks(f)
    for f in VARIANT_FIELDS:
        checks += _field_checks(f)
    checks += [
        f"WHEN variant = 'StateChange' AND {access} NOT IN ({', '.join(_q(a) for a in ACCESS_TYPES)}) "
        f"THEN 'field ''kind.StateChange.access_type'' must be one of {', '.join(ACCESS_TYPES)}; got ' || {access}",
        f"WHEN TRY_CAST({_sv('metadata.duration_ns')} AS DOUBLE) < 0 THEN 'field ''metadata.duration_ns'' is negative'",
        f"WHEN NOT {_DURATION_DOUBLE} BETWEEN 0 AND {MAX_DURATION_NS} THEN 'duration out of range (negative or over 100 years)'",
        f"WHEN {cv} IS NOT NULL AND NOT coalesce(list_bool_and(list_transform(json_transform({cv}, '[[\"VARCHAR\"]]'), "
        "lambda p: p IS NOT NULL AND len(p) = 2 AND TRY_CAST(p[2] AS UBIGINT) IS NOT NULL)), true) "
        "THEN 'field ''causality_vector'' must be a list of [component, counter] pairs'",
        f"WHEN {cv} IS NOT NULL AND len(list_filter(json_type({cv}, '$[*][0]'), lambda t: t <> 'VARCHAR')) > 0 "
        "THEN 'field ''causality_vector'' must name components with strings'",
        f"WHEN {ls} IS NOT NULL AND len(list_filter(json_type({ls}, '$[*]'), lambda t: t <> 'VARCHAR')) > 0 "
        "THEN 'field ''lock_set'' must be a list of strings'",
    ]
    return "CASE\n  " + "\n  ".join(checks) + "\nEND"


# -- fast checks: JSON fragments, whose first character is their type ------------
_STR_RE = r'"(?:[^"\\]|\\.)*"'
_CV_RE = rf"\[(?:\[{_STR_RE},[0-9]{{1,18}}\](?:,\[{_STR_RE},[0-9]{{1,18}}\])*)?\]"
_LS_RE = rf"\[(?:{_STR_RE}(?:,{_STR_RE})*)?\]"
_TYPE_TEST = {
    STR: "prefix({f}, '\"')",
    OBJ: "prefix({f}, '{{')",
    ARR: "prefix({f}, '[')",
    INT: "regexp_full_match({f}, '-?[0-9]+')",
    NUM: "regexp_full_match({f}, '-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?')",
    ID: "(prefix({f}, '\"') OR regexp_full_match({f}, '-?[0-9]+'))",
    KIND: "(prefix({f}, '{{') OR prefix({f}, '\"'))",
}


def _frag(f: Field) -> str:
    return f"x.kind.{f.variant}.{f.name}" if f.variant else "x." + f.label


def _fast_test(f: Field) -> str:
    frag = _frag(f)
    test = _TYPE_TEST[f.types].format(f=frag)
    return f"({frag} IS NOT NULL AND {test})" if f.required else f"({frag} IS NULL OR {test})"


def _fast_ok_sql() -> str:
    skip = ("kind", "metadata", "causality_vector", "lock_set")
    tests = ["x.id IS NOT NULL", "ts IS NOT NULL", "isfinite(ts)", "ts_in_range", "ts_zone_ok", "NOT too_deep",
             "nknown = 1",
             "prefix(x.metadata.thread_id, '\"')",  # also proves metadata was an object
             f"{_DURATION_DOUBLE} BETWEEN 0 AND {MAX_DURATION_NS}",
             f"(x.causality_vector IS NULL OR regexp_full_match(x.causality_vector, {_q(_CV_RE)}))",
             f"(x.lock_set IS NULL OR regexp_full_match(x.lock_set, {_q(_LS_RE)}))"]
    tests += [_fast_test(f) for f in TOP_FIELDS if f.label not in skip]
    by_variant: dict[str, list[str]] = {}
    for f in VARIANT_FIELDS:
        if f.label.count(".") == 2:
            by_variant.setdefault(f.variant, []).append(_fast_test(f))
    by_variant["StateChange"].append(
        "x.kind.StateChange.access_type IN (" + ", ".join(_q(f'"{a}"') for a in ACCESS_TYPES) + ")")
    cases = " ".join(f"WHEN {_q(v)} THEN ({' AND '.join(t)})" for v, t in by_variant.items())
    tests.append(f"(CASE kind {cases} ELSE true END)")
    return "\n    AND ".join(tests)


# -- the events columns, from the fragments ---------------------------------------


def _s(frag: str) -> str:
    """The value of a fragment the fast checks proved to be a string.

    ``esc`` says whether the record has a backslash anywhere; without one every
    string fragment is its text between the quotes. ``substr`` takes it at half
    the CPU of ``[2:-2]`` (a slice counts and copies more), -10% of the insert.
    """
    return f"(CASE WHEN esc THEN json_extract_string({frag}, '$') ELSE substr({frag}, 2, length({frag}) - 2) END)"


def _k(variant: str, field: str) -> str:
    return f"x.kind.{variant}.{field}"


def _ks(variants: tuple[str, ...], field: str) -> str:
    """A string field of the event's variant (only one variant struct is set)."""
    frags = [_k(v, field) for v in variants]
    return _s(frags[0] if len(frags) == 1 else f"coalesce({', '.join(frags)})")


_LOCATION = (
    f"coalesce({_ks(('StateChange', 'LockAcquire', 'LockRelease', 'MemoryFence'), 'location')}, "
    f"{_ks(('FunctionCall',), 'file')} || coalesce(':' || {_k('FunctionCall', 'line')}, ''), "
    f"{_ks(('AsyncAwait',), 'awaited_at')})"
)
_DURATION_DOUBLE = (
    "coalesce(TRY_CAST(x.metadata.duration_ns AS DOUBLE), TRY_CAST(coalesce("
    f"{_k('HttpResponse', 'duration_ms')}, {_k('DatabaseQuery', 'duration_ms')}) AS DOUBLE) * 1e6, 0)"
)
MAX_DURATION_NS = 3.2e18  # about 100 years: anything longer is a broken clock
_DURATION = (
    "TRY_CAST(round(coalesce(TRY_CAST(x.metadata.duration_ns AS DOUBLE), TRY_CAST(coalesce("
    f"{_k('HttpResponse', 'duration_ms')}, {_k('DatabaseQuery', 'duration_ms')}) AS DOUBLE) * 1e6)) AS BIGINT)"
)
# Sub-microsecond digits, which TIMESTAMPTZ drops: keeps ns order exact.
_NS_EXTRA = (
    "coalesce(TRY_CAST(rpad(regexp_extract(x.timestamp, '\\.\\d{6}(\\d{1,3})', 1), 3, '0') AS BIGINT), 0)"
)

_COLUMNS = f"""
    ((CAST(? AS BIGINT) + line) << {REC_BITS}) + coalesce(rec, 0) AS seq,
    {_s('x.id')} AS id,
    {_s('x.trace_id')} AS trace_id,
    {_s('x.parent_id')} AS parent_id,
    ts AS timestamp,
    CASE WHEN ts_in_range THEN epoch_us(ts) * 1000 + {_NS_EXTRA} END AS ts_ns,
    {_s('x.metadata.thread_id')} AS thread_id,
    {_s('x.metadata.service_name')} AS service,
    {_s('x.metadata.instance_id')} AS instance_id,
    {_s('x.metadata.distributed_span_id')} AS span_id,
    {_s('x.metadata.upstream_span_id')} AS upstream_span_id,
    {_DURATION} AS duration_ns,
    kind,
    {_ks(('StateChange',), 'variable')} AS variable,
    {_ks(('StateChange',), 'access_type')} AS access,
    CASE WHEN kind = 'StateChange' THEN coalesce({_k('StateChange', 'old_value')}, 'null') END AS old_value,
    CASE WHEN kind = 'StateChange' THEN coalesce({_k('StateChange', 'new_value')}, 'null') END AS new_value,
    {_LOCATION} AS location,
    {_ks(('LockAcquire', 'LockRelease'), 'lock_id')} AS lock_id,
    {_ks(('FunctionCall',), 'function_name')} AS function_name,
    rw_unq({_k('AsyncSpawn', 'task_id')}) AS task_id,
    rw_unq({_k('AsyncAwait', 'future_id')}) AS future_id,
    {_ks(('HttpRequest',), 'method')} AS http_method,
    TRY_CAST({_k('HttpResponse', 'status')} AS INTEGER) AS http_status,
    CASE WHEN x.causality_vector IS NOT NULL THEN TRY(list_transform(
        json_transform(x.causality_vector, '[["VARCHAR"]]'),
        lambda c: struct_pack(c := c[1], n := TRY_CAST(c[2] AS BIGINT)))) END AS clock,
    CASE WHEN x.lock_set IS NOT NULL THEN
        TRY(CAST(json_transform(x.lock_set, '["VARCHAR"]') AS VARCHAR[])) END AS lock_set,
    __RAW__ AS raw,
    CAST(? AS VARCHAR) AS source,
    line,
    rec,
    __KEPT__"""

# ts_ns is ns since the epoch in a BIGINT (+ up to 999 ns of extra digits)
MIN_EPOCH_US, MAX_EPOCH_US = -(2**63 // 1000), (2**63 - 1) // 1000 - 1
TS_RANGE = "1677-09-21 to 2262-04-11"
# the UTC offset of a timestamp with a time of day: sign, hours, minutes
_ZONE_RE = r"[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]*)?)?\s*([+-])([0-9]{2}):?([0-9]{2})?$"
_TSS = "x.timestamp"  # the JSON fragment: its text ends as the string does, plus the quote
# UTC ('Z', '+00:00') skips the regex: nearly every timestamp is
_ZONE_OK = (  # CASE, not OR: a projection evaluates both sides of an OR on every row
    f"CASE WHEN suffix({_TSS}, 'Z\"') OR suffix({_TSS}, '+00:00\"') THEN true ELSE "
    f"coalesce(TRY_CAST(regexp_extract({_s(_TSS)}, {_q(_ZONE_RE)}, 2) AS INTEGER), 0) <= 23 AND "
    f"coalesce(TRY_CAST(regexp_extract({_s(_TSS)}, {_q(_ZONE_RE)}, 3) AS INTEGER), 0) <= 59 END"
)

# Values nested deeper than MAX_DEPTH break every reader after (orjson writes 254
# levels): counted, in SQL, for long records and long values, where they can hide.
_TOO_DEEP = (  # CASE: rw_depth only for the few long records (an AND would run it on all)
    f"CASE WHEN strlen(text) > 8192 OR strlen({_k('StateChange', 'old_value')}) > {MAX_DEPTH} "
    f"OR strlen({_k('StateChange', 'new_value')}) > {MAX_DEPTH} THEN rw_depth(text) > {MAX_DEPTH} ELSE false END"
)

# -- the records of a chunk ---------------------------------------------------------
_BLANK = "regexp_full_match(text, '[ \t\r\n]*')"
_RECS_PLAIN = f"""
recs AS (SELECT line, rec, text __AT__ FROM _chunk WHERE NOT {_BLANK})"""

# Line mode with batch lines ({"events": [...]}, server responses, arrays): their events.
_RECS_EXPAND = f"""
rb AS (
    SELECT line, rec, text,
        CASE WHEN regexp_matches(text, '^[ \t\r\n\ufeff]*\\[') AND json_valid(text) THEN text
             WHEN contains(text, '"events"') THEN
                 TRY(coalesce(json_extract(text, '$.events'), json_extract(text, '$.data.events'))) END AS items
    FROM _chunk WHERE NOT {_BLANK}
), recs AS (
    SELECT line, rec, text FROM rb WHERE items IS NULL OR json_type(items) <> 'ARRAY'
    UNION ALL
    SELECT line, CAST(generate_subscripts(arr, 1) - 1 AS INTEGER) AS rec, CAST(unnest(arr) AS VARCHAR) AS text
    FROM (SELECT line, json_extract(items, '$[*]') AS arr FROM rb WHERE json_type(items) = 'ARRAY')
)"""

HAS_BATCHES = """
SELECT count(*) FROM _chunk
WHERE contains(text, '"events"') OR regexp_matches(text, '^[ \t\r\n\ufeff]*\\[')
"""

# Everything the checks and columns need, from one json_transform per record
# (TRY: a record that is not JSON gets NULL here and an exact reason later).
_KNOWN_SET = "[" + _KNOWN + "]"
_NKNOWN = " + ".join(f"CAST({_k(v, '')[:-1]} IS NOT NULL AS INTEGER)" for v in KNOWN_VARIANTS)
_VARIANT = "CASE " + " ".join(f"WHEN {_k(v, '')[:-1]} IS NOT NULL THEN {_q(v)}" for v in KNOWN_VARIANTS) + " END"

# Everything the checks and columns need, from one json_transform per record
# (TRY: a record that is not JSON gets NULL here and an exact reason later).
_PIPELINE = f"""
a AS (
    SELECT line, rec, text __AT__, contains(text, chr(92)) AS esc,
        TRY(CAST(json_transform(text, {_q(TOP_STRUCT)}) AS {TOP_TYPE})) AS x
    FROM recs __ONLY__
), e AS (
    SELECT *,
        TRY_CAST({_s('x.timestamp')} AS TIMESTAMPTZ) AS ts,
        {_ZONE_OK} AS ts_zone_ok,
        {_NKNOWN} AS nknown,
        {_TOO_DEEP} AS too_deep,
        {_VARIANT} AS kind
    FROM a
), e2 AS (
    SELECT *, coalesce(epoch_us(ts) BETWEEN {MIN_EPOCH_US} AND {MAX_EPOCH_US}, false) AS ts_in_range FROM e
), f AS (
    SELECT *, coalesce({_fast_ok_sql()}, false) AS fast_ok FROM e2
)"""

FAST_INSERT = f"""
INSERT INTO events BY NAME
WITH __RECS__, {_PIPELINE.replace('__ONLY__', '')}
SELECT {_COLUMNS} FROM f WHERE fast_ok
"""

COUNT = """
WITH __RECS__ SELECT count(*) FROM recs
"""

# The records the fast path did not take, with exact reasons.
_NOT_LOADED = """
        ANTI JOIN (SELECT line, rec FROM events
                   WHERE source = $source AND seq >= $first_seq AND seq >= $seq_lo AND seq < $seq_hi) done
        ON recs.line = done.line AND recs.rec IS NOT DISTINCT FROM done.rec"""
SLOW_PARSE = f"""
CREATE OR REPLACE TEMP TABLE _slow AS
WITH __RECS__, {_PIPELINE.replace('__ONLY__', _NOT_LOADED)}, g AS (
    SELECT * EXCLUDE (kind), json_valid(text) AS ok FROM f
), h AS (
    SELECT *,
        CASE WHEN ok THEN json_type(text, {_list(PATHS)}) END AS ty,
        CASE WHEN ok THEN json_extract_string(text, {_list(PATHS)}) END AS s,
        CASE WHEN ok AND json_type(text, '$.kind') = 'OBJECT' THEN json_keys(text, '$.kind') END AS kkeys
    FROM g
), i AS (
    -- the variant: the one known key (others are ignored), else the only key, else a plain string
    SELECT *,
        CASE WHEN ty[{INDEX['kind']}] = 'VARCHAR' THEN s[{INDEX['kind']}]
             WHEN len(list_filter(kkeys, lambda k: list_contains({_KNOWN_SET}, k))) = 1
                 THEN list_filter(kkeys, lambda k: list_contains({_KNOWN_SET}, k))[1]
             WHEN len(kkeys) = 1 THEN kkeys[1] END AS variant
    FROM h
), j AS (
    SELECT *, CASE WHEN variant IN ({_KNOWN}) THEN variant ELSE 'Unknown(' || variant || ')' END AS kind
    FROM i
)
SELECT {_COLUMNS.replace('CAST(? AS BIGINT)', 'CAST($line_base AS BIGINT)').replace('CAST(? AS VARCHAR)', 'CAST($source AS VARCHAR)')},
    {_reason_sql()} AS reason
FROM j
"""


# The record's text without its line end. A chunk whose text is typed JSON (the
# reader's lines, already cut) goes in as it is: a VARCHAR would be parsed once more
# by the cast into the JSON column, a tenth of the insert.
_RAW_TRIMMED = """CASE WHEN suffix(text, chr(13) || chr(10)) THEN left(text, -2)
         WHEN suffix(text, chr(10)) OR suffix(text, chr(13)) THEN left(text, -1) ELSE text END"""


# Lazy raw (a chunk of whole lines with their file offsets ``at``): an event keeps no
# text, only where its line is, plus what queries read from raw on every row. Events
# carrying span tags (span_critical_path reads them) keep their text.
_LAZY = "(file_at IS NOT NULL AND NOT coalesce(contains(x.metadata.tags, '\"span.'), false))"


def _jv(frag: str) -> str:
    """``raw->>path`` from the fragment of that path."""
    return f"(CASE WHEN {frag} = 'null' THEN NULL ELSE rw_unq({frag}) END)"


# browse.NOTE, from the fragments (the fast path takes only the known kinds)
_NOTE = f"""CASE kind
        WHEN 'HttpRequest' THEN {_jv(_k('HttpRequest', 'url'))}
        WHEN 'DatabaseQuery' THEN {_jv(_k('DatabaseQuery', 'query'))}
        WHEN 'DatabaseResult' THEN 'rows ' || coalesce({_jv(_k('DatabaseResult', 'rows_affected'))}, '?')
        WHEN 'Error' THEN coalesce({_jv(_k('Error', 'error_type'))}, 'Error') || ': '
                          || coalesce({_jv(_k('Error', 'message'))}, '')
        WHEN 'Custom' THEN {_jv(_k('Custom', 'name'))}
        WHEN 'MemoryFence' THEN {_jv(_k('MemoryFence', 'ordering'))} END"""
_KEPT_LAZY = f"""CASE WHEN {_LAZY} THEN {_NOTE} END AS note,
    CASE WHEN {_LAZY} THEN {_jv('x.metadata.environment')} END AS environment,
    CASE WHEN {_LAZY} THEN file_at END AS raw_at"""
_KEPT_TEXT = "CAST(NULL AS VARCHAR) AS note, CAST(NULL AS VARCHAR) AS environment, CAST(NULL AS BIGINT) AS raw_at"


def with_recs(sql: str, expand: bool, json_text: bool = False, lazy: bool = False) -> str:
    """``sql`` for a chunk of plain records or of lines that may be batches;
    ``json_text``: the chunk's text is typed JSON and ends without a line end;
    ``lazy``: such a chunk of whole lines with their offsets (``file_at``), whose events
    keep the offset instead of the text."""
    lazy = lazy and json_text and not expand
    raw = "text" if json_text and not expand else _RAW_TRIMMED
    sql = sql.replace("__RAW__", f"CASE WHEN NOT {_LAZY} THEN text END" if lazy else raw)
    sql = sql.replace("__KEPT__", _KEPT_LAZY if lazy else _KEPT_TEXT)
    sql = sql.replace("__RECS__", _RECS_EXPAND if expand else _RECS_PLAIN)
    return sql.replace("__AT__", ", file_at" if lazy else "")


@dataclass
class Counts:
    records: int = 0
    loaded: int = 0
    rejected: int = 0
    duplicates: int = 0


class Ingestor:
    """Appends the chunks of one source to the store, on one connection."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, load_id: int, source: str, line_base: int,
                 first_seq: int | None = None):
        self.conn = conn
        self.load_id = load_id
        self.source = source
        self.line_base = line_base
        # Lowest seq this source can produce; callers numbering lines absolutely
        # (line_base 0) pass it so the checks below only look at their own rows.
        self.first_seq = line_base << REC_BITS if first_seq is None else first_seq
        self.counts = Counts()
        self.notes: list[str] = []
        self._salvaged: list[pa.Table] = []  # events recovered from broken batch lines

    def chunk(self, table: pa.Table, expand: bool, records: int | None = None) -> None:
        """Append one chunk; ``records`` (non-blank, no batch lines) saves a counting pass."""
        conn = self.conn
        conn.register("_chunk", table)
        json_text = table.schema.field("text").type == JSON_TEXT
        lazy = "file_at" in table.schema.names
        try:
            if records is None:
                expand = expand and conn.execute(HAS_BATCHES).fetchall()[0][0] > 0
            inserted = conn.execute(with_recs(FAST_INSERT, expand, json_text, lazy),
                                    [self.line_base, self.source]).fetchall()[0][0]
            total = records if records is not None else conn.execute(with_recs(COUNT, expand)).fetchall()[0][0]
            self.counts.records += total
            self.counts.loaded += inserted
            if inserted < total:
                lo, hi = (v.as_py() for v in pc.min_max(table.column("line")).values())
                self._slow(expand, lo, hi, json_text)
        finally:
            conn.unregister("_chunk")
        while self._salvaged:
            self.chunk(self._salvaged.pop(), expand=False)

    def _slow(self, expand: bool, lo: int, hi: int, json_text: bool = False) -> None:
        """Exact reasons for the records of the chunk (lines lo..hi) the fast path left out."""
        conn = self.conn
        # only this chunk's seq range is compared (zone maps skip the rest): the
        # whole source's rows made each chunk with a bad record cost more than the last
        seq_lo, seq_hi = (self.line_base + lo) << REC_BITS, (self.line_base + hi + 1) << REC_BITS
        conn.execute(with_recs(SLOW_PARSE, expand, json_text),
                     {"source": self.source, "first_seq": self.first_seq, "line_base": self.line_base,
                      "seq_lo": seq_lo, "seq_hi": seq_hi}).fetchall()
        loaded = conn.execute("INSERT INTO events BY NAME SELECT * EXCLUDE (reason) FROM _slow "
                              "WHERE reason IS NULL").fetchall()[0][0]
        rejected = conn.execute(
            "INSERT INTO rejects SELECT ?, source, line, rec, reason, raw FROM _slow "
            "WHERE reason IS NOT NULL AND reason <> '!json'", [self.load_id]).fetchall()[0][0]
        bad_json = conn.execute(
            "SELECT line, rec, raw FROM _slow WHERE reason = '!json' ORDER BY line, rec").fetchall()
        self.counts.loaded += loaded
        self.counts.rejected += rejected
        self.counts.records -= len(bad_json)  # recounted by _not_json
        if bad_json:
            self._not_json(bad_json)

    def problems(self, problems: list[Problem]) -> None:
        """Record rejects found before SQL (invalid UTF-8, broken documents)."""
        if not problems:
            return
        table = pa.table({
            "line": pa.array([p.line for p in problems], pa.int32()),
            "rec": pa.array([p.rec for p in problems], pa.int32()),
            "reason": pa.array([p.reason for p in problems], pa.string()),
            "raw": pa.array([p.raw for p in problems], pa.string()),
        })
        self.conn.register("_problems", table)
        try:
            self.conn.execute("INSERT INTO rejects SELECT ?, ?, line, rec, reason, raw FROM _problems",
                              [self.load_id, self.source]).fetchall()
        finally:
            self.conn.unregister("_problems")
        self.counts.records += len(problems)
        self.counts.rejected += len(problems)

    def _not_json(self, rows: list[tuple]) -> None:
        """Reasons for records that are not JSON; salvage events from broken one-line batches."""
        lines, recs, texts = [], [], []
        problems = []
        for line, rec, text in rows:
            head = text.lstrip()[:4096]
            if rec is None and (head[:1] == "[" or (head[:1] == "{" and '"events"' in head)):
                good, bad, notes = records_from_text(text)
                if good:
                    for idx, t in good:
                        lines.append(line)
                        recs.append(idx)
                        texts.append(t)
                    problems += [Problem(line, idx, reason, raw) for idx, reason, raw in bad]
                    self.notes += [f"line {line}: {n}" for n in notes]
                    continue
            problems.append(Problem(line, rec, json_error_reason(text), text))
        self.problems(problems)
        if texts:
            self._salvaged.append(pa.Table.from_arrays(
                [pa.array(lines, pa.int32()), pa.array(recs, pa.int32()), pa.array(texts, pa.string())],
                schema=CHUNK_SCHEMA))

    def undo(self) -> None:
        """Remove what this load added (after a failure half-way)."""
        self.conn.execute("DELETE FROM events WHERE source = ? AND seq >= ?", [self.source, self.first_seq]).fetchall()
        self.conn.execute("DELETE FROM rejects WHERE load_id = ? AND source = ?", [self.load_id, self.source]).fetchall()

    def dedupe(self) -> None:
        """Drop this source's events whose id appeared earlier (lower seq) in the store."""
        # ids seen more than once, by a hash aggregate (usually none); only their rows are ranked
        removed = self.conn.execute("""
            DELETE FROM events WHERE seq IN (
                SELECT seq FROM (
                    SELECT seq, source, row_number() OVER (PARTITION BY id ORDER BY seq) AS rn
                    FROM events
                    WHERE id IN (
                        SELECT id FROM events
                        WHERE id IN (SELECT id FROM events WHERE source = ? AND seq >= ?)
                        GROUP BY id HAVING count(*) > 1)
                ) WHERE rn > 1 AND source = ?)
        """, [self.source, self.first_seq, self.source]).fetchall()[0][0]
        self.counts.loaded -= removed
        self.counts.duplicates += removed
