import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from raceway_core.store import Store  # noqa: E402


@pytest.fixture
def store():
    s = Store()
    yield s
    s.close()


def rows(store: Store, sql: str, params=None) -> list[dict]:
    return store.sql(sql, params).to_pylist()
