"""pipelines.ingest.conform_chunks: a file read with its dataset's YAML and conformed."""

from __future__ import annotations

import dataclasses

import xlsxwriter

from lake.validation import ParseOptions
from pipelines.ingest import conform_chunks
from pipelines.specs import spec_by_name

HEADER = [
    "Fravær-ID",
    "Medarbejdernr",
    "CPR",
    "Afdeling",
    "Fraværstype",
    "Startdato",
    "Slutdato",
    "Fraværsdage",
    "Timer",
]


def test_numeric_cells_of_a_workbook_read_under_danish_number_settings(tmp_path) -> None:
    # Numbers render as 2.5 from a numeric cell; with `.` as the thousands separator that was
    # 25. The reader is told to render them with the dataset's decimal comma instead.
    spec = dataclasses.replace(
        spec_by_name("sick_leave"),
        format={"type": "excel"},
        parse=ParseOptions(date_formats=("%d-%m-%Y",), decimal_comma=True, thousands_separator="."),
    )
    path = tmp_path / "fravaer.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Fravær")
    sheet.write_row(0, 0, HEADER)
    row = ["F1", "17", "0101901234", "Jobcenter", "Egen sygdom", "02-03-2026", "04-03-2026"]
    sheet.write_row(1, 0, [*row, 2.5, "1.234,5"])  # a number cell, and text as typed
    sheet.write_row(2, 0, ["F2", *row[1:], 12.75, 7])
    book.close()
    [conformed] = conform_chunks(spec, path, path.name)
    assert conformed.rows_quarantined == 0
    assert conformed.valid.select("days", "hours").rows() == [(2.5, 1234.5), (12.75, 7.0)]
