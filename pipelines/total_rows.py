"""Total rows at the end of a delivered file (`I alt`, `Sum`): found while a file is read,
for the load's log and `kommunelake check`. They are no data: loaded, one adds itself to
every sum; failing, they look like a number or date problem."""

from __future__ import annotations

import re
from collections.abc import Sequence

import polars as pl

from connectors.formats.frame import LINEAGE_NAMES
from lake.privacy import redact
from lake.validation import SOURCE_ROW
from pipelines.specs import DatasetSpec

EXAMPLES = 3  # total rows named in a hint


# What a total row of a Danish or Norwegian export says in its label cell.
TOTAL_LABEL = r"(?i)^(i alt|totalt?|sum|summa|samlet)\s*:?$"


class TrailingTotals:
    """The rows at the end of a file that hold a total label as a whole value (`I alt`), seen
    chunk by chunk as read (before the contract: a total row failing on its empty fields
    counts too). The rows `skip_rows_matching` is for; whether they load or fail, and on
    which column, depends on the rest of them. Only at the end: in a statistics table
    (`Hele landet;I alt;2024K1;5961249`) `I alt` is a category like any other."""

    def __init__(self) -> None:
        self._trailing: list[tuple[int, str, str]] = []  # (source row, file header, value)
        self._data_before = False  # a row without a label came before them

    def look(self, raw: pl.DataFrame) -> None:
        text = [
            n for n, dtype in raw.schema.items() if dtype == pl.String and n not in LINEAGE_NAMES
        ]
        if not raw.height or not text:
            return
        # One pass over the chunk; only the few rows found are looked at cell by cell.
        labelled = raw.select(
            pl.any_horizontal(pl.col(text).str.contains(TOTAL_LABEL).fill_null(False))
        ).to_series()
        unlabelled = (~labelled).arg_true()
        run = raw.height if not unlabelled.len() else raw.height - 1 - unlabelled[-1]
        rows = raw.slice(raw.height - run, min(run, EXAMPLES))
        found = _labels(rows.select(SOURCE_ROW, *text), text)
        if run < raw.height:  # this chunk has data: the run so far did not end the file
            self._trailing, self._data_before = found, True
        else:
            self._trailing = (self._trailing + found)[:EXAMPLES]

    def rows(self) -> tuple[tuple[int, str, str], ...]:
        """The first of the file's trailing total rows; none in a file of totals only."""
        return tuple(self._trailing) if self._data_before else ()


def total_rows_hint(spec: DatasetSpec, rows: Sequence[tuple[int, str, str]]) -> str:
    """Where a file ends in total rows (`I alt`), which are no data: loaded, one adds itself
    to every sum; failing, it read as a number or date problem, the type hint's fault."""
    where = ", ".join(f"row {row} ({value!r} in {redact(column)})" for row, column, value in rows)
    labels = sorted({value for _, _, value in rows})  # letters and blanks: nothing to escape
    wanted = labels[0] if len(labels) == 1 else f"({'|'.join(labels)})"
    pattern = spec.format.get("skip_rows_matching")
    now = f" (now {pattern!r})" if pattern else ""
    return (
        f"the last rows look like totals, e.g. {where}: totals are not data; leave them out"
        f" with `skip_rows_matching: '^{wanted}$'` under `format:` in the dataset YAML{now}"
    )


def _labels(rows: pl.DataFrame, text: list[str]) -> list[tuple[int, str, str]]:
    """(source row, column, value) of each row's leftmost total label."""
    label = re.compile(TOTAL_LABEL)
    found = []
    for row in rows.iter_rows(named=True):
        name = next((name for name in text if label.match(row[name] or "")), None)
        if name is not None:  # polars and `re` agree on the pattern; no row is lost on that
            found.append((row[SOURCE_ROW], name, row[name]))
    return found
