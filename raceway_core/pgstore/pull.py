"""Reading a shared database straight into a local DuckDB store (``open``,
``load``, ``analyze`` with ``--store``): the feed, from the cursor a --db file
kept last time, so a second pull fetches only what is new."""

from __future__ import annotations

from raceway_core.errors import StoreError
from raceway_core.pgstore import schema
from raceway_core.pgstore.follower import Follower
from raceway_core.pgstore.pool import Pool, redact
from raceway_core.store import Store


def pull(url: str, store: Store) -> int:
    """Copy the events committed in the database at ``url`` into ``store``; how many were new."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise StoreError("reading a PostgreSQL store needs psycopg: pip install 'raceway-tui[pg]'") from exc
    pool = Pool(url, size=1)
    try:
        with pool.connection() as conn:
            version = schema.current_version(conn)
            if version == 0:
                raise StoreError(f"{redact(url)} holds no raceway tables (no server has stored events there)")
            if version > schema.LATEST:
                raise StoreError(f"the database {redact(url)} has raceway schema version {version}, newer than "
                                 f"this raceway-tui understands ({schema.LATEST}): upgrade raceway-tui")
            store_id = conn.execute("SELECT value FROM raceway_meta WHERE key = 'store_id'").fetchone()[0]
        return Follower(pool, store, store_id).catch_up()
    finally:
        pool.close()
