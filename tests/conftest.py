import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from raceway_core.store import Store  # noqa: E402


@pytest.fixture(params=["front", "one-process"])
def server_mode(request) -> str:
    """Each way `raceway-tui serve` can run (see server_proc.MODES)."""
    return request.param


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def rows(store: Store, sql: str, params=None) -> list[dict]:
    return store.sql(sql, params).to_pylist()


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server for the session (see pgserver.py); skipped
    with the reason when no server binaries are installed."""
    from pgserver import PgServer, find_binaries

    bin_dir, where = find_binaries()
    if bin_dir is None:
        pytest.skip(where)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install -e '.[test]'")
    server = PgServer(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL of a fresh, empty database for one test."""
    return pg_server.new_database()
