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
