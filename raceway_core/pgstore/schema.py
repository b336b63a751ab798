"""The tables in PostgreSQL, versioned: ``raceway_schema`` records each migration
applied; the first server to start creates them (under an advisory lock, as
several may start at once), and a database newer than this code is refused."""

from __future__ import annotations

from raceway_core.errors import StoreError

LOCK_KEY = 0x5261636577617901  # pg_advisory_xact_lock key: schema changes one at a time

# version -> statements. Never edit a released step: add the next one.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE raceway_meta (key text PRIMARY KEY, value text NOT NULL)",
        # xid: the writing transaction, for the feed's horizon (see feed.py)
        """CREATE TABLE raceway_events (
            seq bigint GENERATED ALWAYS AS IDENTITY,
            xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
            id text NOT NULL,
            trace_id text NOT NULL,
            ts_ns bigint NOT NULL,
            received_at timestamptz NOT NULL DEFAULT now(),
            raw text NOT NULL,
            CONSTRAINT raceway_events_pkey PRIMARY KEY (id))""",
        "CREATE INDEX raceway_events_feed ON raceway_events (xid, seq)",
        "CREATE INDEX raceway_events_trace ON raceway_events (trace_id, ts_ns)",
        """CREATE TABLE raceway_rejects (
            received_at timestamptz NOT NULL DEFAULT now(),
            server text,
            rec integer,
            reason text NOT NULL,
            raw text)""",
        "INSERT INTO raceway_meta VALUES ('store_id', gen_random_uuid()::text)",
    ),
}
LATEST = max(MIGRATIONS)


def current_version(conn) -> int:
    exists = conn.execute("SELECT to_regclass('raceway_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM raceway_schema").fetchone()[0]


def migrate(conn, where: str) -> int:
    """Bring the tables to ``LATEST`` (creating them on first start); the version.
    StoreError when the database was written by a newer raceway-tui."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
        version = current_version(conn)
        if version > LATEST:
            raise StoreError(
                f"the database {where} has raceway schema version {version}, newer than this raceway-tui "
                f"understands ({LATEST}): upgrade raceway-tui on this host to the version the other servers run")
        if version == 0:
            conn.execute("CREATE TABLE raceway_schema (version integer PRIMARY KEY, "
                         "applied_at timestamptz NOT NULL DEFAULT now())")
        for v in range(version + 1, LATEST + 1):
            for stmt in MIGRATIONS[v]:
                conn.execute(stmt)
            conn.execute("INSERT INTO raceway_schema (version) VALUES (%s)", [v])
    return LATEST
