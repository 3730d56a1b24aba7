"""Serialising extracts to bytes and writing them without needless rewrites.

Extracts are rendered in memory first so that an unchanged file is left untouched (its mtime
and any watchers that react to it stay quiet) and a changed one is swapped in atomically.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

# Written into docProps/core.xml instead of "now", so the workbook bytes are reproducible.
XLSX_CREATED = datetime(2026, 11, 1, 6, 0, 0)


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write ``content`` to ``path`` unless it already holds exactly these bytes.

    Returns True when the file was (re)written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.stat().st_size == len(content) and path.read_bytes() == content:
            return False
    except FileNotFoundError:
        pass
    # Not tempfile.mkstemp: that creates 0600 files, and readers running as another user
    # (the web UI, DuckDB) must see the same permissions an ordinary write would give.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def csv_bytes(
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    delimiter: str,
    line_end: str,
    encoding: str,
) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def xlsx_bytes(fill: Callable[[Workbook], None]) -> bytes:
    """Build a workbook with ``fill`` and return its bytes, reproducibly.

    ``in_memory`` matters beyond speed: in that mode xlsxwriter stamps every zip member with
    1980-01-01 instead of temp-file mtimes, and the fixed ``created`` property removes the only
    other clock reading, so equal input gives byte-identical files.
    """
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False},
    )
    workbook.set_properties({"created": XLSX_CREATED, "author": "Demo Kommune"})
    fill(workbook)
    workbook.close()
    return buffer.getvalue()


def write_rows(
    sheet: Worksheet, rows: Iterable[Sequence[object]], first_row: int, date_format: Format
) -> None:
    """Write rows as typed cells (dates as real date cells, ints as numbers, blanks left
    empty), the way a fagsystem's Excel export stores them."""
    for r, row in enumerate(rows, start=first_row):
        for col, value in enumerate(row):
            if isinstance(value, date):
                sheet.write_datetime(r, col, value, date_format)
            elif isinstance(value, int):
                sheet.write_number(r, col, value)
            elif value:
                sheet.write_string(r, col, str(value))
