"""One server's view of the shared PostgreSQL database."""

from __future__ import annotations

import logging

from raceway_core.errors import StoreError
from raceway_core.pgstore import feed, schema
from raceway_core.pgstore.follower import Follower
from raceway_core.pgstore.ingest import PgIngest
from raceway_core.pgstore.pool import Pool, redact
from raceway_core.store import Store

log = logging.getLogger("raceway.pgstore")


def is_database_url(text: str | None) -> bool:
    return bool(text) and text.startswith(("postgresql://", "postgres://"))


class SharedStore:
    def __init__(self, pool: Pool, cache: Store, server: str | None = None) -> None:
        self.pool = pool
        self.cache = cache
        self.where = redact(pool.url)
        with pool.connection() as conn:
            schema.migrate(conn, self.where)
            self.store_id = conn.execute("SELECT value FROM raceway_meta WHERE key = 'store_id'").fetchone()[0]
        self.follower = Follower(pool, cache, self.store_id)
        # not woken by its own commits: reads catch up anyway, and a catch-up per
        # commit cost 30% more CPU per event at one POST per commit (bench/ingest.py)
        self.ingest = PgIngest(pool, server)

    @classmethod
    def open(cls, url: str, cache: Store, server: str | None = None, connections: int = 6) -> "SharedStore":
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise StoreError("a PostgreSQL store needs psycopg: pip install 'raceway-tui[pg]'") from exc
        return cls(Pool(url, size=connections), cache, server)

    def start(self) -> None:
        self.follower.catch_up()
        self.follower.start()

    def stop(self) -> None:
        self.follower.stop()
        self.pool.close()

    def feed(self, after: str | None, limit: int) -> feed.FeedPage:
        with self.pool.connection() as conn:
            return feed.page(conn, after, limit)

    def catch_up(self) -> None:
        """Before a read: the cache holds what was committed. With the database
        away, the read answers from the cache as it is (the follower says why in the log)."""
        try:
            self.follower.catch_up()
        except Exception as exc:
            log.warning("reading from the cache without catching up: %s", exc)

    def rejected(self) -> int:
        with self.pool.connection() as conn:
            return conn.execute("SELECT count(*) FROM raceway_rejects").fetchone()[0]
