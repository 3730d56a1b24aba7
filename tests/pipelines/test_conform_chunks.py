"""pipelines.ingest.conform_chunks: a file read with its dataset's YAML and conformed."""

from __future__ import annotations

import dataclasses
import json

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


def test_a_large_ndjson_is_checked_in_pieces_and_later_fields_are_reported(
    tmp_path, monkeypatch
) -> None:
    from connectors.formats import chunks
    from pipelines.ingest import check_file

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 64 * 1024)
    spec = spec_by_name("cvr_companies")
    lines = []
    for i in range(3_000):
        record = {
            "cvrNummer": "10000009",  # one company delivered 3,000 times: repeats across pieces
            "navn": f"Demo {i} ApS",
            "branchekode": "620100",
            "adresseId": "0a3f50a0-75eb-32b8-e044-0003ba298018",
            "startdato": "2020-01-02",
        }
        if i == 2_900:
            record["nytFelt"] = "kun her"  # a field only a late piece has
        lines.append(json.dumps(record))
    path = tmp_path / "virksomheder.ndjson"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert path.stat().st_size > 3 * chunks.CHUNK_BYTES
    result = check_file(spec, path)
    assert (result.rows_in, result.rows_valid, result.rows_quarantined) == (3_000, 1, 2_999)
    assert result.extra_columns == ("nytFelt",)
