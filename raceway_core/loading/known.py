"""Which event ids a store may already hold: the duplicate check of appends without
scanning the events table.

Holds 64-bit hashes of the stored ids (8 bytes an id in a sorted numpy array,
plus a set for the ones added since the last fold), so it answers "maybe" or
"certainly not". A "maybe" is settled by looking the id up in the table, which
only happens for real repeats (retries) and the rare hash collision. The set may
hold more than the table (a rolled-back append, a deleted event): that only costs
a look-up. It must never hold less: whatever adds events other than through it
(file loads) drops it, and it is rebuilt from the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

_FOLD_AT = 1 << 16  # recent hashes kept in a set before they are merged into the array


def id_hash(eid: str) -> int:
    # Python's own string hash: 64 bits, fast, and the same for the life of the
    # process, which is all a set rebuilt at every start needs.
    return hash(eid)


class KnownIds:
    def __init__(self, hashes: np.ndarray | None = None) -> None:
        self._base = np.unique(hashes) if hashes is not None else np.empty(0, np.int64)
        self._recent: set[int] = set()

    @classmethod
    def from_store(cls, conn) -> "KnownIds":
        """Hashes of every id in ``events`` (about 0.1 s a million)."""
        rel = conn.sql("SELECT id FROM events")
        reader = (getattr(rel, "to_arrow_reader", None) or rel.fetch_arrow_reader)(1 << 18)  # DuckDB 2.x / 1.x
        parts = [np.fromiter(map(id_hash, b.column(0).to_pylist()), np.int64, b.num_rows) for b in reader]
        return cls(np.concatenate(parts) if parts else None)

    @property
    def nbytes(self) -> int:
        """About what it holds in memory."""
        return self._base.nbytes + len(self._recent) * 60  # int object + set slot

    def candidates(self, hashes: Sequence[int]) -> set[int]:
        """Those of ``hashes`` an id stored may have."""
        out = self._recent.intersection(hashes)
        base = self._base
        if len(base) and hashes:
            a = np.fromiter(hashes, np.int64, len(hashes))
            hit = base[np.minimum(np.searchsorted(base, a), len(base) - 1)] == a
            if hit.any():
                out.update(a[hit].tolist())
        return out

    def add(self, hashes: Iterable[int]) -> None:
        self._recent.update(hashes)
        if len(self._recent) >= _FOLD_AT:
            self._fold()

    def _fold(self) -> None:
        new = np.unique(np.fromiter(self._recent, np.int64, len(self._recent)))
        base = self._base
        if len(base):
            pos = np.searchsorted(base, new)
            new = new[base[np.minimum(pos, len(base) - 1)] != new]
        # a merge of sorted arrays (one copy), not a sort of everything
        self._base = np.insert(base, np.searchsorted(base, new), new)
        self._recent = set()
