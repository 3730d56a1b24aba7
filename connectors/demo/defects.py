"""Deliberate defects, so that validation and quarantine code has something to catch.

Rate: for every defect kind a dataset supports, ``round(defect_rate * rows)`` rows get that
defect, where ``rows`` is the number of clean records before injection; when ``defect_rate`` is
above zero and the dataset has at least 100 records, every kind gets at least one row. With the
default ``defect_rate=0.01`` that is about 1 % of the rows per kind. A row carries at most one
defect (and a defect row never also carries drift), so each manifest entry points at exactly one
problem.

Most kinds overwrite a field in place. ``duplicate_key`` instead inserts an extra row somewhere
after the row whose key it repeats, with otherwise plausible values, because overwriting would
make the original record disappear from the extract (and leave its references dangling).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

IMPOSSIBLE_DATE = "impossible_date"
DUPLICATE_KEY = "duplicate_key"
UNKNOWN_ADDRESS_ID = "unknown_address_id"
UNKNOWN_PERSON = "unknown_person"
MISSING_MANDATORY = "missing_mandatory"
INVALID_CVR = "invalid_cvr"

R = TypeVar("R")

RowNumbers = dict[str, tuple[int, ...]]


def defect_count(rows: int, rate: float) -> int:
    if rate <= 0 or rows <= 0:
        return 0
    count = round(rate * rows)
    return max(1, count) if rows >= 100 else count


class RowPlan(Generic[R]):
    """Clean records plus which of them carry a defect or drift, and pending duplicates.

    Row numbers are only known once duplicates are inserted, so they are computed in
    ``finish`` from the final order.
    """

    def __init__(self, records: list[R], kinds: Sequence[str], drift_kinds: Sequence[str] = ()):
        self.records = records
        self._kinds = tuple(kinds)
        self._drift_kinds = tuple(drift_kinds)
        self._defect: list[str | None] = [None] * len(records)
        self._drift: list[str | None] = [None] * len(records)
        self._inserted: list[tuple[int, R]] = []  # (insert before this original index, record)

    def free(self) -> list[int]:
        return [
            i
            for i in range(len(self.records))
            if self._defect[i] is None and self._drift[i] is None
        ]

    def mark(
        self, rng: random.Random, kind: str, count: int, eligible: Iterable[int] | None = None
    ) -> list[int]:
        """Tag ``count`` untagged rows (from ``eligible`` if given) with ``kind``; the caller
        then alters exactly those records."""
        free = self.free()
        if eligible is not None:
            allowed = set(eligible)
            free = [i for i in free if i in allowed]
        chosen = sorted(rng.sample(free, min(count, len(free))))
        for i in chosen:
            self._defect[i] = kind
        return chosen

    def mark_drift(self, index: int, kind: str) -> None:
        assert self._defect[index] is None and self._drift[index] is None
        self._drift[index] = kind

    def duplicate(self, rng: random.Random, count: int, make: Callable[[R], R]) -> None:
        """Insert ``count`` ``duplicate_key`` rows, each repeating the key of an earlier untagged
        row; ``make`` builds the new record from the one whose key it repeats."""
        n = len(self.records)
        free = self.free()
        window = max(1, n // 10)  # near the original, so duplicates are not all at the end
        for source in rng.sample(free, min(count, len(free))):
            position = rng.randint(source + 1, min(n, source + window))
            self._inserted.append((position, make(self.records[source])))

    def finish(self, first_row: int) -> tuple[list[R], RowNumbers, RowNumbers]:
        """The final records and, per kind, the row numbers as a person sees them; the first
        record is row ``first_row``."""
        inserted = sorted(self._inserted, key=lambda item: item[0])  # stable: keeps draw order
        out: list[R] = []
        defects: dict[str, list[int]] = {kind: [] for kind in self._kinds}
        drift: dict[str, list[int]] = {kind: [] for kind in self._drift_kinds}
        j = 0
        for i in range(len(self.records) + 1):
            while j < len(inserted) and inserted[j][0] == i:
                defects.setdefault(DUPLICATE_KEY, []).append(first_row + len(out))
                out.append(inserted[j][1])
                j += 1
            if i == len(self.records):
                break
            defect, drifted = self._defect[i], self._drift[i]
            if defect is not None:
                defects.setdefault(defect, []).append(first_row + len(out))
            if drifted is not None:
                drift.setdefault(drifted, []).append(first_row + len(out))
            out.append(self.records[i])
        return (
            out,
            {k: tuple(v) for k, v in defects.items()},
            {k: tuple(v) for k, v in drift.items()},
        )
