"""The store's tables. One ``events`` row per event, typed for the analyses.

``seq`` is the order of appearance: (global line number << 24) | index inside the
line's batch, so events keep their input order across files and loads.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 1
REC_BITS = 24  # events per line (batch) before seq order would overlap the next line

EVENTS = """
CREATE TABLE IF NOT EXISTS events (
    seq BIGINT NOT NULL,
    id VARCHAR NOT NULL USING COMPRESSION uncompressed,  -- random ids: not worth compressing
    trace_id VARCHAR NOT NULL,
    parent_id VARCHAR USING COMPRESSION uncompressed,
    timestamp TIMESTAMPTZ NOT NULL,
    ts_ns BIGINT NOT NULL,            -- timestamp in ns since the epoch (keeps ns digits)
    thread_id VARCHAR,
    service VARCHAR,
    instance_id VARCHAR,
    span_id VARCHAR,                  -- metadata.distributed_span_id
    upstream_span_id VARCHAR,
    duration_ns BIGINT,               -- metadata.duration_ns, else the kind's duration_ms
    kind VARCHAR NOT NULL,            -- variant name, or Unknown(<name>); fields in raw.kind
    variable VARCHAR,
    access VARCHAR,                   -- Read, Write, AtomicRead, AtomicWrite, AtomicRMW
    old_value JSON,
    new_value JSON,
    location VARCHAR,
    lock_id VARCHAR,
    function_name VARCHAR,
    task_id VARCHAR,                  -- AsyncSpawn.task_id
    future_id VARCHAR,                -- AsyncAwait.future_id
    http_method VARCHAR,
    http_status INTEGER,
    clock STRUCT(c VARCHAR, n BIGINT)[],  -- causality_vector as given
    lock_set VARCHAR[],               -- lock_set as given
    raw JSON,                         -- the event's text; NULL when raw_at says where it is
    source VARCHAR NOT NULL,
    line INTEGER,
    rec INTEGER,
    -- An in-memory load of a plain JSONL file keeps no copy of its lines (the raw column
    -- was ~60% of the load's CPU and 70% of the table's memory): raw_at is the byte offset
    -- of the event's line in the file of raw_files (line_base = (seq >> 24) - line), read
    -- back by raceway_core.rawtext. What the queries take from raw on every row stays here:
    note VARCHAR,                     -- the kind's telling field (browse.NOTE), when raw is NULL
    environment VARCHAR,              -- metadata.environment, when raw is NULL
    raw_at BIGINT
)
"""

REJECTS = """
CREATE TABLE IF NOT EXISTS rejects (
    load_id INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    line INTEGER,
    rec INTEGER,
    reason VARCHAR NOT NULL,
    raw VARCHAR
)
"""

SOURCES = """
CREATE TABLE IF NOT EXISTS sources (
    load_id INTEGER NOT NULL,
    source VARCHAR NOT NULL,
    path VARCHAR,
    mode VARCHAR,
    loaded_at TIMESTAMPTZ NOT NULL,
    bytes BIGINT,
    records BIGINT NOT NULL,
    loaded BIGINT NOT NULL,
    rejected BIGINT NOT NULL,
    duplicates BIGINT NOT NULL,
    notes VARCHAR[]
)
"""

# The files whose lines events' raw_at point into, as they were when loaded.
RAW_FILES = """
CREATE TABLE IF NOT EXISTS raw_files (
    line_base BIGINT PRIMARY KEY,
    path VARCHAR NOT NULL,
    size BIGINT NOT NULL,
    mtime_ns BIGINT NOT NULL,
    crc BIGINT NOT NULL               -- zlib.crc32 of its size bytes: a reload tells growth from change
)
"""

# Stores made before raw_at keep working (their raw is always there).
_ADDED = ("note VARCHAR", "environment VARCHAR", "raw_at BIGINT")

META = """
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR)
"""

# Readable type names for the JSON types DuckDB reports.
MACROS = """
CREATE OR REPLACE TEMP MACRO rw_type_name(t) AS CASE t
    WHEN 'VARCHAR' THEN 'string' WHEN 'UBIGINT' THEN 'integer' WHEN 'BIGINT' THEN 'integer'
    WHEN 'DOUBLE' THEN 'number' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'OBJECT' THEN 'object'
    WHEN 'ARRAY' THEN 'array' WHEN 'NULL' THEN 'null' ELSE lower(t) END;
-- the value of a JSON fragment: strings unquoted, anything else as its JSON text
CREATE OR REPLACE TEMP MACRO rw_unq(f) AS CASE
    WHEN f IS NULL THEN NULL
    WHEN NOT prefix(CAST(f AS VARCHAR), '"') THEN CAST(f AS VARCHAR)
    WHEN contains(CAST(f AS VARCHAR), '\\') THEN json_extract_string(f, '$')
    ELSE substr(CAST(f AS VARCHAR), 2, length(CAST(f AS VARCHAR)) - 2) END;
-- a JSON text without its strings' contents
CREATE OR REPLACE TEMP MACRO rw_no_strings(t) AS regexp_replace(t, '"(?:[^"\\\\]|\\\\.)*"', '""', 'g');
-- how deep a JSON text nests (outside strings); (depth, max) packed in one BIGINT while folding
CREATE OR REPLACE TEMP MACRO rw_depth(t) AS list_reduce(list_prepend(CAST(0 AS BIGINT), list_transform(
    string_split(regexp_replace(rw_no_strings(t), '[^\\[\\]{}]', '', 'g'), ''),
    lambda ch: CAST(CASE WHEN ch IN ('[', '{') THEN 1 ELSE -1 END AS BIGINT))),
    lambda acc, x: ((acc // 4194304) + x) * 4194304 + greatest(acc % 4194304, (acc // 4194304) + x)) % 4194304;
"""


# A file store keeps raw with zstd: 630 MB of lines a million events -> ~60 MB, at less
# checkpoint CPU than DuckDB's default (FSST, ~280 MB). In memory DuckDB has no zstd (a
# column forced to it stays uncompressed), so there the default stays.
def events_ddl(on_disk: bool) -> str:
    return EVENTS.replace("raw JSON,", "raw JSON USING COMPRESSION zstd,") if on_disk else EVENTS


def create(conn: duckdb.DuckDBPyConnection, on_disk: bool = False) -> None:
    for ddl in (events_ddl(on_disk), REJECTS, SOURCES, RAW_FILES, META):
        conn.execute(ddl).fetchall()
    have = {r[0] for r in conn.execute(
        "SELECT column_name FROM duckdb_columns() WHERE table_name = 'events' AND schema_name = 'main' "
        "AND database_name = current_database()").fetchall()}
    for col in _ADDED:
        if col.split()[0] not in have:
            conn.execute(f"ALTER TABLE events ADD COLUMN {col}").fetchall()
    conn.execute(
        "INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [str(SCHEMA_VERSION)]
    ).fetchall()


def session_setup(conn: duckdb.DuckDBPyConnection, *, macros: bool = True) -> None:
    """Per-connection settings: UTC for the connection and the cursors it makes later
    (GLOBAL: a cursor inherits it for free), and the loader's macros (``macros``).

    The macros are TEMP, so per connection, and cost ~4 ms to create: only the
    connections that load (the ingest SQL is their only user) make them, not
    every reader's cursor (which made them a tenth of the quick tests' time)."""
    conn.execute("SET GLOBAL TimeZone = 'UTC'").fetchall()
    if macros:
        conn.execute(MACROS).fetchall()
