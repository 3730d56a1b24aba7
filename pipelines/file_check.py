"""`kommunelake check`: a delivered file validated against its dataset's contract without
loading anything, with what a sender needs to fix it (the failing rows by check, total rows,
accounting negatives, a fixed-width trailer read as data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from lake.frames import detached
from lake.privacy import shown_name
from lake.validation import FAILURE_SCHEMA, SOURCE_ROW, concat_failures, duplicate_failures
from pipelines.ingest import Tally, conform_chunks, repeated_rows
from pipelines.specs import DatasetSpec
from pipelines.total_rows import TrailingTotals
from pipelines.trailer_record import ShortLastLine


@dataclass(frozen=True)
class CheckReport:
    """What `kommunelake check` says about a file: a load's counts, and up to
    `EXAMPLES` failing rows per (column, check) to show where."""

    rows_in: int
    rows_valid: int
    rows_quarantined: int
    counts: tuple[tuple[str, str, int], ...]  # (column, check, rows), most rows first
    examples: pl.DataFrame  # FAILURE_SCHEMA rows, the first in source order per check
    extra_columns: tuple[str, ...] = ()
    added_columns: tuple[str, ...] = ()
    # Rows holding a total label (`I alt`) as a value: (source row, the file's header,
    # value), the first few. A total row that types loads as data; others fail as numbers.
    total_rows: tuple[tuple[int, str, str], ...] = ()
    rows_skipped: int = 0  # left out by `skip_rows_matching`, in none of the counts above
    # The first accounting negative (`(1.234,50)`) failing per numeric column, wherever it
    # is in the file: such a value is rarely among a column's first few failures.
    accounting: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FAILURE_SCHEMA))
    # A fixed-width file's last line read as data that looks like its trailer record.
    trailer_line: int | None = None

    EXAMPLES = 3


def check_file(spec: DatasetSpec, path: Path) -> CheckReport:
    """Validate a file against a dataset's contract without loading anything.

    A chunk at a time, like a load. Kept across chunks: counts, a few example failures per
    check and the key columns (for keys repeated across chunks), so a vendor can check a
    600 MB export on a laptop even when every row of it fails."""
    tally = Tally()
    keys: list[pl.DataFrame] = []
    examples: list[pl.DataFrame] = []
    accounting: list[pl.DataFrame] = []
    totals = TrailingTotals()
    trailer = ShortLastLine(spec)

    def look(raw: pl.DataFrame) -> None:
        totals.look(raw)
        trailer.look(raw)

    for conformed in conform_chunks(
        spec, path, shown_name(path.name), look=look, count_skipped=tally.skipped
    ):
        tally.add(conformed)
        examples.append(detached(_first_per_check(concat_failures([conformed.failures]))))
        accounting.append(detached(accounting_negatives(conformed.failures)))
        if spec.batch_keys:
            keys.append(detached(conformed.valid.select(*spec.batch_keys, SOURCE_ROW)))
    if len(keys) > 1:
        repeats = duplicate_failures(
            repeated_rows(spec.batch_keys, keys), spec.batch_keys, spec.contract
        )
        tally.add_repeats(repeats)
        examples.append(_first_per_check(repeats))
    return CheckReport(
        rows_in=tally.rows_in,
        rows_valid=tally.rows_valid,
        rows_quarantined=tally.rows_quarantined,
        counts=tally.failure_counts(),
        examples=_first_per_check(concat_failures(examples)),
        extra_columns=tally.extra_columns,
        added_columns=tally.added_columns,
        total_rows=totals.rows(),
        rows_skipped=tally.rows_skipped,
        accounting=accounting_negatives(concat_failures(accounting)),
        trailer_line=trailer.line(),
    )


# Accounting's negative, `(1.234,50)` for -1234.50 (Excel's accounting formats export it so),
# or with the minus after the number, `1.234,50-` (SAP and other ERP systems' lists); digits
# may be masked to N in a personal column. Not `5,-` (five kroner even, as prices are written).
_DIGITS = r"[\dN](?:[\dN.,'\s\u00a0\u202f\u2009]*[\dN])?"
_ACCOUNTING_NEGATIVE = rf"^(\(\s*{_DIGITS}\s*\)|{_DIGITS}\s*-)$"
NUMERIC_CHECKS = ("type:Float", "type:Int", "type:UInt", "type:Decimal")


def accounting_negatives(failures: pl.DataFrame) -> pl.DataFrame:
    """The first (by source row) failure per column that is a number written as an
    accounting negative."""
    if not failures.height:
        return failures
    numeric = pl.any_horizontal(pl.col("check").str.starts_with(p) for p in NUMERIC_CHECKS)
    negative = pl.col("value").str.contains(_ACCOUNTING_NEGATIVE).fill_null(False)
    found = failures.filter(numeric & negative).sort(SOURCE_ROW, maintain_order=True)
    return found.group_by("column", maintain_order=True).head(1)


def _first_per_check(failures: pl.DataFrame) -> pl.DataFrame:
    return failures.group_by("column", "check", maintain_order=True).head(CheckReport.EXAMPLES)


__all__ = ["NUMERIC_CHECKS", "CheckReport", "accounting_negatives", "check_file"]
