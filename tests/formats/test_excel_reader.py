"""Excel reading: cell rendering per cell type, sheet row numbers, sheets, trimming, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter

from connectors.formats import FormatError, read_table


def read(data: bytes, **options: Any) -> pl.DataFrame:
    return read_table(data, {"type": "excel", **options}, source_name="udtraek.xlsx")


def read_error(data: bytes, **options: Any) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read(data, **options)
    assert "\n" not in str(caught.value)
    return caught.value


@pytest.fixture
def report(tmp_path: Path) -> bytes:
    """A typical fagsystem export: title, blank row, note, header on row 4, data, footers."""
    path = tmp_path / "udtraek.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Borgere")
    book.add_worksheet("Noter").write(0, 0, "ingen")
    date = book.add_format({"num_format": "dd-mm-yyyy"})
    stamp = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
    kroner = book.add_format({"num_format": "#,##0.00 kr"})

    sheet.write(0, 0, "Visiterede borgere, Hjemmeplejen")  # row 1: title
    # row 2: blank
    sheet.write(2, 0, "Udtrukket 31-01-2026")  # row 3: note
    sheet.write_row(3, 0, ["CPR", "  Navn ", "Start\ndato", "Timer", "Takst", "Aktiv", "Sidst"])
    sheet.write_string(4, 0, "0101901234")
    sheet.write(4, 1, "Søren Ærø")
    sheet.write_datetime(4, 2, dt.datetime(2026, 1, 15), date)
    sheet.write_number(4, 3, 4000)
    sheet.write_number(4, 4, 18.75, kroner)
    sheet.write_boolean(4, 5, True)
    sheet.write_datetime(4, 6, dt.datetime(2026, 2, 1, 13, 30), stamp)
    sheet.write_string(5, 0, "0202851234")
    sheet.write(5, 1, "  Åse Østergård  ")
    sheet.write_string(5, 2, "31-09-2026")  # text typed into the date column
    sheet.write_number(5, 3, 12)
    sheet.write_number(5, 4, 0.1)
    sheet.write_boolean(5, 5, False)
    sheet.write_datetime(5, 6, dt.datetime(2026, 2, 2), stamp)
    # row 7: fully empty
    sheet.write_string(7, 0, "0303751234")
    sheet.write(7, 1, "Bo")
    sheet.write_number(7, 3, -3)
    sheet.write_number(7, 4, 1e-07)
    sheet.write(8, 1, "I alt")  # footer 1
    sheet.write_formula(8, 3, "=SUM(D5:D8)", None, 4009)
    sheet.write(9, 0, "Kilde: Fagsystem X")  # footer 2
    book.close()
    return path.read_bytes()


def test_report_values_and_sheet_row_numbers(report: bytes) -> None:
    frame = read(report, header_row=3, skip_footer_rows=2)

    assert frame.columns == [
        "CPR",
        "Navn",
        "Start dato",
        "Timer",
        "Takst",
        "Aktiv",
        "Sidst",
        "_source_row",
    ]
    assert all(dtype == pl.String for dtype in frame.dtypes[:-1])
    assert frame.schema["_source_row"] == pl.Int64
    assert frame.rows() == [
        (
            "0101901234",
            "Søren Ærø",
            "2026-01-15",
            "4000",
            "18.75",
            "true",
            "2026-02-01 13:30:00",
            5,
        ),
        ("0202851234", "Åse Østergård", "31-09-2026", "12", "0.1", "false", "2026-02-02", 6),
        ("0303751234", "Bo", None, "-3", "1e-07", None, None, 8),
    ]


def test_without_footer_option_the_footers_are_rows(report: bytes) -> None:
    frame = read(report, sheet="Borgere", header_row=3)
    assert frame["_source_row"].to_list() == [5, 6, 8, 9, 10]
    assert frame.row(3) == (None, "I alt", None, "4009", None, None, None, 9)
    dropped = read(report, header_row=3, skip_rows_matching="^Kilde")
    assert dropped["_source_row"].to_list() == [5, 6, 8, 9]


def test_leading_empty_rows_and_columns_keep_true_row_numbers(tmp_path: Path) -> None:
    # calamine starts a sheet's range at its first used cell (here C6); rows must not shift.
    path = tmp_path / "offset.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Data")
    sheet.write_row(5, 2, ["kode", "tekst"])
    sheet.write_row(6, 2, ["007", "første"])
    sheet.write_row(8, 2, [7, "tredje"])
    book.close()

    frame = read(path.read_bytes(), header_row=5)

    assert frame.rows() == [("007", "første", 7), ("7", "tredje", 9)]


def test_sheet_by_index_and_missing_sheet_lists_the_sheets(report: bytes) -> None:
    assert read(report, sheet=1, header_row=0).columns == ["ingen", "_source_row"]
    error = read_error(report, sheet="Ark1")
    assert "'Borgere', 'Noter'" in str(error)
    assert "`sheet:`" in str(error)
    assert "'Borgere', 'Noter'" in str(read_error(report, sheet=2))


def test_error_cells_keep_their_excel_text(tmp_path: Path) -> None:
    path = tmp_path / "errors.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["a", "b"])
    sheet.write_number(1, 0, 1)
    sheet.write_formula(1, 1, "=1/0", None, "#DIV/0!")
    book.close()
    assert read(path.read_bytes()).rows() == [("1", "#DIV/0!", 2)]


def test_header_problems_are_reported_at_the_header_row(report: bytes) -> None:
    error = read_error(report, header_row=1)  # the blank row
    assert "header row is empty" in str(error)
    assert error.line == 2 and error.sheet == "Borgere"
    assert str(error).startswith("udtraek.xlsx, sheet Borgere, line 2:")
    assert "`header_row` is 40" in str(read_error(report, header_row=40))


@pytest.mark.parametrize(
    "data",
    [b"", b"this is not a workbook" * 50, b"PK\x03\x04" + b"\x00" * 200, b"a;b\n1;2\n"],
)
def test_garbage_is_not_a_readable_workbook(data: bytes) -> None:
    error = read_error(data)
    assert "not a readable Excel workbook" in str(error)
    assert error.sheet is None


def test_empty_sheet(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    book = xlsxwriter.Workbook(path)
    book.add_worksheet("Tom")
    book.close()
    assert "the sheet is empty" in str(read_error(path.read_bytes()))


def test_a_number_too_negative_to_be_a_date_does_not_break_the_sheet(tmp_path: Path) -> None:
    # calamine panics converting -1e12 (days) to a datetime; the column is read without it.
    path = tmp_path / "budget.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        date = book.add_format({"num_format": "dd-mm-yyyy"})
        sheet.write_row(0, 0, ["beloeb_oere", "dato"])
        sheet.write_number(1, 0, -1e12)
        sheet.write_datetime(1, 1, dt.datetime(2026, 1, 15), date)
        sheet.write_datetime(2, 0, dt.datetime(2026, 1, 16), date)
        sheet.write_number(2, 1, 2.5)
    assert read(path.read_bytes()).rows() == [
        ("-1000000000000", "2026-01-15", 2),
        ("2026-01-16 00:00:00", "2.5", 3),  # a date in the panicking column: calamine's text
    ]
