"""Excel reading: cell rendering per cell type, sheet row numbers, sheets, trimming, errors."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter

from connectors.formats import FormatError, read_table
from connectors.formats.excel import SPARSE_CELLS, _check_size
from connectors.formats.workbook_package import SheetScan
from connectors.formats.xls_cells import xls_scans
from tests.formats.builders import (
    ods_cell,
    ods_row,
    ods_table,
    ods_workbook,
    xls_biff5,
    xls_cells,
    xls_shared_records,
    xls_workbook,
    xlsb_workbook,
)


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
        # "Sidst" has a time elsewhere in the column: its midnight keeps the time too.
        (
            "0202851234",
            "Åse Østergård",
            "31-09-2026",
            "12",
            "0.1",
            "false",
            "2026-02-02 00:00:00",
            6,
        ),
        ("0303751234", "Bo", None, "-3", "1e-07", None, None, 8),
    ]


def test_without_footer_option_the_footers_are_rows(report: bytes) -> None:
    frame = read(report, sheet="Borgere", header_row=3)
    assert frame["_source_row"].to_list() == [5, 6, 8, 9, 10]
    assert frame.row(3) == (None, "I alt", None, "4009", None, None, None, 9)
    dropped = read(report, header_row=3, skip_rows_matching="^Kilde")
    assert dropped["_source_row"].to_list() == [5, 6, 8, 9]
    # Any column, as in CSV: the total's label sits in the second one.
    totals = read(report, header_row=3, skip_rows_matching="^(Kilde|I alt)")
    assert totals["_source_row"].to_list() == [5, 6, 8]


def test_a_total_row_is_skipped_whatever_its_unnamed_columns_hold(tmp_path: Path) -> None:
    # A print-style report: the row labels' column has no header, and the total row puts
    # "I alt" there, or a count in the unnamed column beside it. The row the YAML skips
    # refused the file for "column 1 has values but no header text", and a label in an
    # unnamed column was not matched at all; CSV skips both.
    path = tmp_path / "rapport.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("Rapport")
    sheet.write_row(0, 0, [None, "Id", None, "Beløb"])
    sheet.write_row(1, 0, [None, "1", None, 2])
    sheet.write_row(2, 0, [None, "2", None, 3])
    sheet.write_row(3, 0, ["I alt", None, 2, 5])
    sheet.write_row(4, 0, [None, "Total", 2, 5])
    book.close()
    frame = read(path.read_bytes(), skip_rows_matching="^(I alt|Total)$")
    assert frame.rows() == [("1", "2", 2), ("2", "3", 3)]
    assert frame.columns == ["Id", "Beløb", "_source_row"]
    skipped: list[int] = []  # told to the caller, for the load's record
    options = {"type": "excel", "skip_rows_matching": "^(I alt|Total)$"}
    read_table(path.read_bytes(), options, source_name="x", count_skipped=skipped.append)
    assert skipped == [2]


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
    assert str(error).startswith("udtraek.xlsx, sheet Borgere, row 2:")
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


def test_a_number_too_negative_to_be_a_date_does_not_break_the_sheet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # calamine panics converting -1e12 (days) to a datetime, printing a Rust backtrace: the
    # cell is loaded as 0 from a copy of the workbook and given its number back.
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
        ("2026-01-16", "2.5", 3),
    ]
    assert "panicked" not in capfd.readouterr().err


# -- header_rows, columns_range, sheets -----------------------------------------------------


def workbook(tmp_path: Path, sheets: dict[str, list[list[Any]]], name: str = "book") -> bytes:
    """One sheet per entry; None leaves a cell empty."""
    path = tmp_path / f"{name}.xlsx"
    with xlsxwriter.Workbook(path) as book:
        for sheet_name, rows in sheets.items():
            sheet = book.add_worksheet(sheet_name)
            for r, row in enumerate(rows):
                for c, value in enumerate(row):
                    if value is not None:
                        sheet.write(r, c, value)
    return path.read_bytes()


@pytest.fixture
def visits(tmp_path: Path) -> bytes:
    """Two header rows with merged group cells, notes to the right, a footer."""
    path = tmp_path / "visits.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Besøg")
        center = book.add_format({"align": "center"})
        sheet.write(0, 0, "Besøgsrapport")  # row 1: title
        sheet.merge_range(1, 0, 2, 0, "CPR", center)  # A2:A3, one name over two rows
        sheet.merge_range(1, 1, 1, 2, "Besøg", center)  # B2:C2 over Dato, Varighed
        sheet.merge_range(1, 3, 1, 5, "Medarbejder", center)  # D2:F2 over three
        sheet.write_row(2, 1, ["Dato", "Varighed", "Navn", " Rolle\n", "Team"])
        sheet.write_row(3, 0, ["0101901234", "2026-01-15", 30, "Åse", "SSA", "Nord"])
        sheet.write_row(4, 0, ["0202851234", "2026-01-16", 45, "Bo", "SSH", "Syd"])
        sheet.write(5, 0, "I alt")
        sheet.write(3, 7, "Note: tal er foreløbige")  # H4, beside the table
    return path.read_bytes()


VISIT_COLUMNS = [
    "CPR",
    "Besøg / Dato",
    "Besøg / Varighed",
    "Medarbejder / Navn",
    "Medarbejder / Rolle",
    "Medarbejder / Team",
]


def test_two_header_rows_combine_merged_cells(visits: bytes) -> None:
    frame = read(visits, header_row=1, header_rows=2, skip_footer_rows=1, columns_range="A:F")
    assert frame.columns == [*VISIT_COLUMNS, "_source_row"]
    assert frame.rows() == [
        ("0101901234", "2026-01-15", "30", "Åse", "SSA", "Nord", 4),
        ("0202851234", "2026-01-16", "45", "Bo", "SSH", "Syd", 5),
    ]


def test_without_columns_range_a_note_beside_the_table_is_an_error(visits: bytes) -> None:
    error = read_error(visits, header_row=1, header_rows=2, skip_footer_rows=1)
    assert error.line == 4 and error.cause == "column 8 has values but no header text"


def test_three_header_rows_carry_within_their_group(tmp_path: Path) -> None:
    path = tmp_path / "three.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        blank = book.add_format()
        sheet.merge_range(0, 1, 0, 4, "2026", blank)  # B1:E1
        sheet.merge_range(1, 1, 1, 2, "Q1", blank)  # B2:C2
        sheet.merge_range(1, 3, 1, 4, "Q2", blank)  # D2:E2
        sheet.write(0, 5, "2027")  # F1: a new group; F2 must not inherit Q2
        sheet.write_row(2, 0, ["Kommune", "Jan", "Feb", "Apr", "Maj", "Jan"])
        sheet.write_row(3, 0, ["Aarhus", 1, 2, 3, 4, 5])
    frame = read(path.read_bytes(), header_rows=3)
    assert frame.columns == [
        "Kommune",
        "2026 / Q1 / Jan",
        "2026 / Q1 / Feb",
        "2026 / Q2 / Apr",
        "2026 / Q2 / Maj",
        "2027 / Jan",
        "_source_row",
    ]
    assert frame.rows() == [("Aarhus", "1", "2", "3", "4", "5", 4)]


def test_the_lowest_header_row_is_not_carried(tmp_path: Path) -> None:
    # An empty bottom cell under a group names no column; with no values it is dropped.
    path = tmp_path / "lowest.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.merge_range(0, 0, 0, 2, "Grp", book.add_format())  # A1:C1
        sheet.write_row(1, 0, ["a", "b"])
        sheet.write_row(2, 0, [1, 2])
    assert read(path.read_bytes(), header_rows=2).columns == ["Grp / a", "Grp / b", "_source_row"]


def test_duplicate_combined_header_names_are_an_error(tmp_path: Path) -> None:
    rows: list[list[Any]] = [["Besøg", None, "Besøg", None], ["Dato", "Tid", "Dato", "Sted"], []]
    rows[2] = ["2026-01-01", "10:00", "2026-01-02", "Hjemme"]
    error = read_error(workbook(tmp_path, {"Ark1": rows}), header_rows=2)
    assert "duplicate column names 'Besøg / Dato'" in str(error)
    assert error.line == 1


def test_header_rows_beyond_the_sheet_and_bad_values(visits: bytes) -> None:
    error = read_error(visits, header_row=4, header_rows=3)
    assert "`header_row` is 4 with `header_rows` 3 but the last used row is row 6" in str(error)
    for bad in (0, -1, True, "2", 1.5):
        assert "`header_rows` must be a whole number > 0" in str(
            read_error(visits, header_rows=bad)
        )


def test_header_rows_one_is_the_old_behaviour(report: bytes) -> None:
    assert read(report, header_row=3, header_rows=1).equals(read(report, header_row=3))


def test_columns_range_reads_part_of_the_sheet_with_true_rows(report: bytes) -> None:
    # The "Kilde" footer sits in column A only: within B:D it is an empty row, already
    # dropped, so one footer row is left to skip.
    frame = read(report, header_row=3, skip_footer_rows=1, columns_range="B:D")
    assert frame.columns == ["Navn", "Start dato", "Timer", "_source_row"]
    assert frame.rows() == [
        ("Søren Ærø", "2026-01-15", "4000", 5),
        ("Åse Østergård", "31-09-2026", "12", 6),
        ("Bo", None, "-3", 8),
    ]
    assert read(report, header_row=3, columns_range=" f : g ").columns == [
        "Aktiv",
        "Sidst",
        "_source_row",
    ]


def test_columns_range_counts_from_column_a_when_the_sheet_starts_later(tmp_path: Path) -> None:
    # calamine's range starts at C here; D must still mean the sheet's column D.
    path = tmp_path / "offset.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.write_row(1, 2, ["kode", "tekst", "note"])
        sheet.write_row(2, 2, ["007", "første", "x"])
    data = path.read_bytes()
    assert read(data, header_row=1, columns_range="D:D").rows() == [("første", 3)]
    assert read(data, header_row=1, columns_range="A:D").rows() == [("007", "første", 3)]
    assert read(data, header_row=1, columns_range="D:ZZ").columns == [
        "tekst",
        "note",
        "_source_row",
    ]
    error = read_error(data, columns_range="A:B")
    assert "`columns_range` A:B holds no cells; the used columns are C:E" in str(error)


@pytest.mark.parametrize("bad", ["H:B", "B", "B:", "1:3", "A1:C9", "B:XFE", 3, ["B", "H"]])
def test_bad_columns_range(report: bytes, bad: object) -> None:
    error = read_error(report, columns_range=bad)
    assert "`columns_range` must be Excel column letters" in str(error)


@pytest.fixture
def districts(tmp_path: Path) -> bytes:
    """Same table on three sheets (one with its columns in another order), and a note sheet."""
    title = ["Hjemmepleje pr. distrikt", None]
    return workbook(
        tmp_path,
        {
            "Nord": [title, ["CPR", "Timer"], ["0101901234", 4], [None, None], ["0202", 2]],
            "Syd": [title, ["CPR", "Timer"], ["0303751234", 7]],
            "Vest": [title, ["Timer", "CPR"], [1, "0404"]],
            "Noter": [["Kilde"], ["Fagsystem X"]],
        },
    )


def test_several_sheets_into_one_frame(districts: bytes) -> None:
    frame = read(districts, sheets=["Nord", 1, "Vest"], header_row=1)
    assert frame.columns == ["CPR", "Timer", "_sheet", "_source_row"]
    assert frame.schema["_sheet"] == pl.String
    assert frame.rows() == [
        ("0101901234", "4", "Nord", 3),
        ("0202", "2", "Nord", 5),
        ("0303751234", "7", "Syd", 3),
        ("0404", "1", "Vest", 3),
    ]
    single = read(districts, sheets=["Syd"], header_row=1)
    assert single.rows() == [("0303751234", "7", "Syd", 3)]


def test_all_sheets_must_share_the_headers(districts: bytes) -> None:
    error = read_error(districts, sheets="*", header_row=1)
    assert error.sheet == "Noter"
    assert "headers differ from those of sheet 'Nord'" in str(error)
    assert "missing 'CPR', 'Timer'; extra 'Fagsystem X'" in str(error)


def test_differing_headers_name_the_sheet_and_the_names(tmp_path: Path) -> None:
    data = workbook(
        tmp_path,
        {"A": [["id", "navn"], [1, "x"]], "B": [["id", "Navn", "ekstra"], [2, "y", "z"]]},
    )
    error = read_error(data, sheets="*")
    assert str(error).startswith("udtraek.xlsx, sheet B, row 1:")
    assert "missing 'navn'; extra 'Navn', 'ekstra'" in str(error)
    assert read(data, sheets=["A"]).rows() == [("1", "x", "A", 2)]


def test_sheets_option_errors(districts: bytes, tmp_path: Path) -> None:
    both = read_error(districts, sheet="Nord", sheets=["Syd"])
    assert "both `sheet` and `sheets` are set" in str(both)
    missing = read_error(districts, sheets=["Nord", "Øst"])
    assert "there is no sheet 'Øst'" in str(missing) and "`sheets:`" in str(missing)
    assert "more than once" in str(read_error(districts, sheets=["Nord", 0]))
    for bad in ([], "Nord", 0, {"a": 1}):
        assert "`sheets` must be" in str(read_error(districts, sheets=bad))
    clash = workbook(tmp_path, {"A": [["id", "_sheet"], [1, "x"]]}, name="clash")
    error = read_error(clash, sheets="*")
    assert "column named '_sheet'" in str(error) and error.sheet == "A"
    # Without `sheets:` too: the load would take it for its own lineage column.
    assert "column named '_sheet'" in str(read_error(clash))


def test_an_empty_sheet_is_left_out_of_all_sheets_but_named_when_listed(tmp_path: Path) -> None:
    # A new workbook's untouched sheet ("Ark3") rejected the whole export under "*".
    path = tmp_path / "tom.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Data").write_row(0, 0, ["id"])
        book.worksheets()[0].write_row(1, 0, ["7"])
        book.add_worksheet("Tom")
    assert read(path.read_bytes(), sheets="*").rows() == [("7", "Data", 2)]
    error = read_error(path.read_bytes(), sheets=["Data", "Tom"])
    assert "the sheet is empty" in str(error) and error.sheet == "Tom"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Ark1")
        book.add_worksheet("Ark2")
    assert "every visible sheet is empty" in str(read_error(path.read_bytes(), sheets="*"))


def test_all_new_options_together(tmp_path: Path) -> None:
    path = tmp_path / "all.xlsx"
    with xlsxwriter.Workbook(path) as book:
        blank = book.add_format()
        for name, hours in (("Jan", 3), ("Feb", 5)):
            sheet = book.add_worksheet(name)
            sheet.write(0, 0, "noter her")
            sheet.merge_range(1, 1, 1, 2, "Besøg", blank)
            sheet.write_row(2, 1, ["Dato", "Timer"])
            sheet.write_row(3, 1, [f"2026-{name}", hours])
            sheet.write(3, 4, "kommentar uden for tabellen")
            sheet.write_row(4, 1, ["Total", hours])
    frame = read(
        path.read_bytes(),
        sheets="*",
        header_row=1,
        header_rows=2,
        columns_range="B:C",
        skip_rows_matching="^Total$",
    )
    assert frame.rows() == [("2026-Jan", "3", "Jan", 4), ("2026-Feb", "5", "Feb", 4)]
    assert frame.columns == ["Besøg / Dato", "Besøg / Timer", "_sheet", "_source_row"]


# -- values, names and sheets that the probe found read wrong -------------------------------


def rewritten(data: bytes, member: str, edit: Callable[[bytes], bytes]) -> bytes:
    """The workbook with one zip member's bytes changed (for XML xlsxwriter will not write)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(info.filename, edit(content) if info.filename == member else content)
    return out.getvalue()


def test_decimal_comma_renders_numbers_with_a_comma(tmp_path: Path) -> None:
    rows = [["beloeb", "tekst"], [1234.56, "1.234,56"], [2.5, None], [7, None], [1.5e-05, None]]
    data = workbook(tmp_path, {"Ark1": rows})
    frame = read(data, decimal_comma=True)
    assert frame["beloeb"].to_list() == ["1234,56", "2,5", "7", "1,5e-05"]
    assert frame["tekst"].to_list() == ["1.234,56", None, None, None]  # text stays as typed
    assert read(data)["beloeb"].to_list() == ["1234.56", "2.5", "7", "1.5e-05"]
    assert "`decimal_comma` must be true or false" in str(read_error(data, decimal_comma="ja"))


def test_datetimes_keep_midnight_and_times_of_day_drop_zero_seconds(tmp_path: Path) -> None:
    path = tmp_path / "times.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        stamp = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
        date = book.add_format({"num_format": "dd-mm-yyyy"})
        clock = book.add_format({"num_format": "hh:mm"})
        sheet.write_row(0, 0, ["tidspunkt", "dato", "start"])
        sheet.write_datetime(1, 0, dt.datetime(2024, 2, 1), stamp)
        sheet.write_datetime(2, 0, dt.datetime(2024, 2, 1, 0, 1), stamp)
        sheet.write_datetime(1, 1, dt.datetime(2024, 2, 1), date)
        sheet.write_datetime(2, 1, dt.datetime(2024, 2, 2), date)
        sheet.write_datetime(1, 2, dt.time(8, 30), clock)
        sheet.write_datetime(2, 2, dt.time(8, 30, 15), clock)
    assert read(path.read_bytes()).rows() == [
        ("2024-02-01 00:00:00", "2024-02-01", "08:30", 2),
        ("2024-02-01 00:01:00", "2024-02-02", "08:30:15", 3),
    ]


def test_a_group_label_covers_only_its_merged_range(tmp_path: Path) -> None:
    path = tmp_path / "flat.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.merge_range("B1:C1", "Periode", book.add_format())
        sheet.write_row(1, 0, ["ID", "Fra", "Til", "Antal"])
        sheet.write_row(2, 0, ["0001", "01-02-2024", "02-02-2024", 3])
    frame = read(path.read_bytes(), header_rows=2)
    assert frame.columns == ["ID", "Periode / Fra", "Periode / Til", "Antal", "_source_row"]


# -- group labels in .xls and .ods: the file's merged ranges, as in .xlsx -------------------

# "CPR" merged over A1:A2, "Besøg" over B1:C1, "Medarbejder" over D1:F1; "Antal" is a
# column of its own, named in the lower row only.
_GROUPED: list[list[Any]] = [
    ["CPR", "Besøg", None, "Medarbejder", None, None, None],
    [None, "Dato", "Varighed", "Navn", "Rolle", "Team", "Antal"],
    ["0101901234", "2026-01-15", 30, "Åse", "SSA", "Nord", 2],
]
_GROUPED_MERGES = [(0, 0, 1, 0), (0, 1, 0, 2), (0, 3, 0, 5)]  # top, left, bottom, right
_GROUPED_COLUMNS = [
    "CPR",
    "Besøg / Dato",
    "Besøg / Varighed",
    "Medarbejder / Navn",
    "Medarbejder / Rolle",
    "Medarbejder / Team",
    "Antal",
    "_source_row",
]


def merged_workbook(
    kind: str, rows: list[list[Any]], merges: list[tuple[int, int, int, int]], tmp_path: Path
) -> bytes:
    """One sheet "Data" of these rows with these merged ranges, as an .xlsx, .xls or .ods."""
    if kind == "xls":
        return xls_workbook(rows, merges=merges)
    if kind == "ods":
        return ods_workbook({"Data": ods_table(rows, merges)})
    path = tmp_path / "merged.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Data")
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    sheet.write(r, c, value)
        for top, left, bottom, right in merges:
            sheet.merge_range(top, left, bottom, right, rows[top][left], book.add_format())
    return path.read_bytes()


@pytest.mark.parametrize("kind", ["xlsx", "xls", "ods"])
def test_a_group_label_covers_its_merged_range_in_every_format(tmp_path: Path, kind: str) -> None:
    # .xls and .ods carried "Medarbejder" right onto "Antal" (no merged ranges were read).
    data = merged_workbook(kind, _GROUPED, _GROUPED_MERGES, tmp_path)
    frame = read(data, header_rows=2)
    assert frame.columns == _GROUPED_COLUMNS
    assert frame.rows() == [("0101901234", "2026-01-15", "30", "Åse", "SSA", "Nord", "2", 3)]


@pytest.mark.parametrize("kind", ["xlsx", "xls", "ods"])
def test_columns_range_starting_inside_a_merged_group_keeps_its_label(
    tmp_path: Path, kind: str
) -> None:
    # "Besøg" is merged over B1:C1, its text in B1, left of C:G: it still names Varighed.
    data = merged_workbook(kind, _GROUPED, _GROUPED_MERGES, tmp_path)
    frame = read(data, header_rows=2, columns_range="C:G")
    assert frame.columns == _GROUPED_COLUMNS[2:]
    assert frame.rows() == [("30", "Åse", "SSA", "Nord", "2", 3)]
    assert read(data, header_rows=2, columns_range="E:E").columns == [
        "Medarbejder / Rolle",
        "_source_row",
    ]


def test_a_group_label_left_of_columns_range_reads_as_within_it(tmp_path: Path) -> None:
    # A date as the label (a month over its weeks) renders as in the loaded cells.
    path = tmp_path / "month.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        month = book.add_format({"num_format": "mmm yyyy"})
        sheet.merge_range("B1:D1", None, month)
        sheet.write_datetime(0, 1, dt.datetime(2026, 1, 1), month)
        sheet.write_row(1, 0, ["Kommune", "Uge 1", "Uge 2", "Uge 3"])
        sheet.write_row(2, 0, ["Aarhus", 1, 2, 3])
    data = path.read_bytes()
    whole = read(data, header_rows=2)
    assert whole.columns[1:3] == ["2026-01-01 / Uge 1", "2026-01-01 / Uge 2"]
    assert read(data, header_rows=2, columns_range="C:D").columns == [
        *whole.columns[2:4],
        "_source_row",
    ]


def test_xls_merged_ranges_after_an_embedded_chart_are_read() -> None:
    # Excel writes MERGEDCELLS after the substreams of charts embedded in the sheet (their
    # own BOF and EOF), where calamine has stopped reading the sheet.
    data = xls_workbook(_GROUPED, merges=_GROUPED_MERGES, chart=True)
    assert read(data, header_rows=2).columns == _GROUPED_COLUMNS


def test_ods_merged_cells_in_repeated_rows_start_in_each() -> None:
    # Two equal header rows, each with a cell spanning A:B, written as one repeated row.
    label = (
        '<table:table-cell table:number-columns-spanned="2" office:value-type="string">'
        "<text:p>Periode</text:p></table:table-cell><table:covered-table-cell/>"
    )
    table = (
        f'<table:table-row table:number-rows-repeated="2">{label}</table:table-row>'
        + ods_row(["Fra", "Til", "Antal"])
        + ods_row(["01-02-2024", "02-02-2024", 3])
    )
    frame = read(ods_workbook({"Data": table}), header_rows=3)
    assert frame.columns == [
        "Periode / Periode / Fra",
        "Periode / Periode / Til",
        "Antal",
        "_source_row",
    ]


@pytest.mark.parametrize("kind", ["xlsx", "xls", "ods"])
def test_a_title_read_as_the_header_points_at_header_row_in_rows(tmp_path: Path, kind: str) -> None:
    # The hint said "line 1 is used as the header" and nothing of the title.
    rows = [["Udtræk fra Sag", "2026-01-01"], [None], ["Besøg", "Distrikt", "Minutter"]]
    data = merged_workbook(kind, [*rows, ["B-1", "Nord", 30]], [], tmp_path)
    error = read_error(data)
    assert (error.sheet, error.line) == ("Data", 3)
    assert error.hint == (
        "The header (row 1) holds two values, probably a title above the column names: if"
        " row 3 holds them, set `header_row: 2` (0-based) under `format:` in the dataset YAML"
    )
    assert read(data, header_row=2)["Distrikt"].to_list() == ["Nord"]


@pytest.mark.parametrize("kind", ["xlsx", "xls", "ods"])
def test_a_repeated_header_row_is_refused(tmp_path: Path, kind: str) -> None:
    rows = [["Besøg", "Distrikt"], ["B-1", "Nord"], ["Besøg", "Distrikt"], ["B-2", "Syd"]]
    error = read_error(merged_workbook(kind, rows, [], tmp_path))
    assert (error.sheet, error.line) == ("Data", 3)
    assert error.cause.startswith("the row repeats the header")


_DISTRICTS = [
    ["Besøg", "Distrikt", "Minutter"],
    ["B-1", "Nord", 30],
    ["B-2", None, 15],
    ["B-3", None, 20],
    ["B-4", "Syd", 45],
]


@pytest.mark.parametrize("kind", ["xlsx", "xls", "ods"])
def test_cells_merged_down_over_data_rows_are_refused(tmp_path: Path, kind: str) -> None:
    # "Nord" merged over B2:B4 is every visit's district to a reader; B-2 and B-3 loaded
    # with no district at all.
    data = merged_workbook(kind, _DISTRICTS, [(1, 1, 3, 1)], tmp_path)
    error = read_error(data)
    assert (error.sheet, error.line) == ("Data", 2)
    assert "cells B2:B4 are merged over 3 rows" in error.cause
    assert "fill the value into each row" in error.hint
    # Outside the columns read, and merged in the header rows only, nothing is lost.
    assert read(data, columns_range="A:A")["Besøg"].to_list() == ["B-1", "B-2", "B-3", "B-4"]
    header = merged_workbook(
        kind, [["Besøg", "Tid"], [None, "Min"], ["B-1", 30]], [(0, 0, 1, 0)], tmp_path
    )
    assert read(header, header_rows=2).columns == ["Besøg", "Tid / Min", "_source_row"]


def test_an_xls_older_than_excel_97_carries_group_labels_right() -> None:
    # BIFF5 had no merged cells: a label is carried right over empty cells, up to the next.
    rows: list[list[str | float | None]] = [
        ["Besøg", None, "Medarbejder", None, None],
        ["Dato", "Varighed", "Navn", "Rolle", None],
        ["2026-01-15", 30, "Åse", "SSA", None],
    ]
    data = xls_biff5(rows)
    assert not xls_scans(data).sheets[0][1].merges_known
    frame = read(data, header_rows=2)
    assert frame.columns == [
        "Besøg / Dato",
        "Besøg / Varighed",
        "Medarbejder / Navn",
        "Medarbejder / Rolle",
        "_source_row",
    ]
    assert frame.rows() == [("2026-01-15", "30", "Åse", "SSA", 3)]


def test_decomposed_unicode_sheet_and_header_names_match(tmp_path: Path) -> None:
    nfd = "Ma\u030aned"  # "Måned" as macOS tools write it: a + combining ring above
    data = workbook(tmp_path, {nfd: [["ID", f"Dato for {nfd}"], ["0001", "01-02-2024"]]})
    frame = read(data, sheet="Måned")
    assert frame.columns == ["ID", "Dato for Måned", "_source_row"]
    assert read(data, sheets=["Måned"])["_sheet"].to_list() == [nfd]


def test_a_sheet_is_found_whatever_its_case_and_surrounding_blanks(tmp_path: Path) -> None:
    # A sender renaming the tab `Data` to `DATA ` made every delivery a rejection, though
    # Excel itself takes sheet names regardless of case and the blank cannot be seen.
    data = workbook(tmp_path, {"Noter": [["x"], ["y"]], "DATA ": [["ID"], ["0001"]]})
    assert read(data, sheet="Data").rows() == [("0001", 2)]
    assert read(data, sheets=["data"])["_sheet"].to_list() == ["DATA "]
    # Only one loose match is taken: with two, the YAML must name one exactly.
    two = workbook(tmp_path, {"Data": [["ID"], ["1"]], "DATA ": [["ID"], ["2"]]})
    assert read(two, sheet="DATA ").rows() == [("2", 2)]
    assert "there is no sheet 'data'" in str(read_error(two, sheet="data"))


def test_column_names_in_another_order_further_down_are_refused(tmp_path: Path) -> None:
    # Two exports pasted into one sheet, the second with its columns swapped.
    rows = [["ID", "Beløb", "Antal"], ["1", 12.5, 3], ["ID", "Antal", "Beløb"], ["2", 4, 7.5]]
    data = workbook(tmp_path, {"Ark1": rows})
    for options in ({}, {"skip_rows_matching": "^ID$"}):
        error = read_error(data, **options)
        assert str(error).startswith("udtraek.xlsx, sheet Ark1, row 3: the row holds the column")
        assert "('Antal' where the header has 'Beløb')" in str(error)


def test_formulas_saved_without_their_result_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "formulas.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Data")
        sheet.write_row(0, 0, ["id", "sum", "tom"])
        sheet.write_row(1, 0, ["0001"])
        sheet.write_formula(1, 1, "=1+2", None, 3)
        sheet.write_formula(1, 2, '=IF(A2="","x","")', None, "")
    data = path.read_bytes()
    # An empty-text result (t="str" with an empty value) is a stored result.
    assert read(data).rows() == [("0001", "3", None, 2)]

    # As openpyxl writes them: the formula and an empty value, never calculated.
    uncalculated = rewritten(
        data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"<v>3</v>", b"<v />")
    )
    error = read_error(uncalculated)
    assert "formula cells without a stored result (e.g. B2)" in str(error)
    assert error.sheet == "Data" and "Open and save the file in Excel" in str(error)


def test_all_sheets_leaves_out_hidden_ones(tmp_path: Path) -> None:
    path = tmp_path / "hidden.xlsx"
    with xlsxwriter.Workbook(path) as book:
        for name in ("Januar", "Skabelon"):
            sheet = book.add_worksheet(name)
            sheet.write_row(0, 0, ["id", "antal"])
            sheet.write_row(1, 0, [name, 1])
        sheet.hide()
    data = path.read_bytes()
    assert read(data, sheets="*")["_sheet"].to_list() == ["Januar"]
    assert read(data, sheets=["Januar", "Skabelon"])["_sheet"].to_list() == ["Januar", "Skabelon"]


def test_without_sheet_the_first_visible_sheet_is_read(tmp_path: Path) -> None:
    # Excel opens on a visible sheet; a hidden first one (a template, a lookup list) was read
    # instead, and the file refused over columns the sender never saw.
    path = tmp_path / "hidden_first.xlsx"
    with xlsxwriter.Workbook(path) as book:
        lookup = book.add_worksheet("Opslag")
        lookup.write_row(0, 0, ["kode", "tekst"])
        data_sheet = book.add_worksheet("Data")
        data_sheet.write_row(0, 0, ["id", "antal"])
        data_sheet.write_row(1, 0, ["a", 1])
        data_sheet.activate()
        lookup.hide()
    data = path.read_bytes()
    assert read(data).columns == ["id", "antal", "_source_row"]
    assert read(data, sheet=0).columns == ["kode", "tekst", "_source_row"]


def test_a_chart_sheet_is_passed_over_or_named_as_such(tmp_path: Path) -> None:
    # A diagram first, then the data: without `sheet:` the chart sheet was read and the
    # file refused as "the sheet is empty".
    path = tmp_path / "diagram_first.xlsx"
    with xlsxwriter.Workbook(path) as book:
        charts = book.add_chartsheet("Diagram")
        for name in ("Nord", "Syd"):
            sheet = book.add_worksheet(name)
            sheet.write_row(0, 0, ["id", "antal"])
            sheet.write_row(1, 0, [name, 1])
        chart = book.add_chart({"type": "column"})
        chart.add_series({"values": "=Nord!$B$2:$B$2"})
        charts.set_chart(chart)
    data = path.read_bytes()
    assert read(data)["id"].to_list() == ["Nord"]
    assert read(data, sheets="*")["_sheet"].to_list() == ["Nord", "Syd"]
    err = read_error(data, sheet=0)
    assert err.sheet == "Diagram" and "chart sheet" in str(err)


def test_a_stray_cell_far_right_is_refused_or_left_out_with_columns_range(tmp_path: Path) -> None:
    path = tmp_path / "stray.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Data")
        sheet.write_row(0, 0, ["id", "antal"])
        for r in range(1, 51):
            sheet.write_row(r, 0, [f"{r:04}", r])
        sheet.write(10, 16383, "x")  # XFD11
    data = path.read_bytes()
    error = read_error(data)
    assert "used range is A1:XFD51, 16384 columns wide, more than 1000" in str(error)
    assert "`columns_range`" in str(error) and error.sheet == "Data"
    assert read(data, columns_range="A:B").height == 50


def test_header_names_in_messages_are_cut_short(tmp_path: Path) -> None:
    long = "x" * 500
    data = workbook(tmp_path, {"A": [["id"], [1]], "B": [["id", long], [2, 3]]})
    message = str(read_error(data, sheets="*"))
    assert f"extra '{'x' * 80}…'" in message and long not in message


def test_an_encrypted_workbook_is_named_as_such() -> None:
    data = (
        bytes.fromhex("d0cf11e0a1b11ae1") + b"\x00" * 500 + "EncryptedPackage".encode("utf-16-le")
    )
    error = read_error(data)
    assert "the workbook is password-protected (encrypted)" in str(error)
    assert "unprotected copy" in str(error)


def test_an_xlsb_workbook_is_refused_before_calamine_opens_it() -> None:
    # calamine reads .xlsb, but no size check can: a 1 KB one with a cell at XFD1048576
    # aborted the process asking for 512 GiB. A small one shows the refusal safely.
    data = xlsb_workbook([["Navn", "Antal"], ["Åse", 4.0]])
    err = read_error(data)
    assert ".xlsb" in str(err) and "Save it as an Excel workbook (.xlsx)" in str(err)


def test_an_empty_sheet_hint_names_the_option_used(tmp_path: Path) -> None:
    path = tmp_path / "tom.xlsx"
    with xlsxwriter.Workbook(path) as book:
        book.add_worksheet("Tom")
    assert "Set `sheets:`" in str(read_error(path.read_bytes(), sheets=["Tom"]))
    assert "Set `sheet:`" in str(read_error(path.read_bytes()))


def test_cells_without_references_are_placed_as_calamine_places_them(tmp_path: Path) -> None:
    # No `r="B3"` on the cells: each follows the one before in its row (the slow path).
    data = workbook(tmp_path, {"Data": [["id"], [1]]})
    far = b'<row r="1048576">' + b"<c><v>1</v></c>" * 20 + b"</row></sheetData>"
    error = read_error(
        rewritten(data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"</sheetData>", far))
    )
    assert "used range is A1:T1048576 (1048576 rows x 20 columns)" in str(error)


@pytest.mark.parametrize(
    ("empty_rows", "used"),
    [
        (b'<row r="1048575"/>', "A1:T1048576 (1048576 rows x 20 columns)"),
        (b"<row/>" * 100_000, "A1:T100003 (100003 rows x 20 columns)"),
    ],
)
def test_empty_rows_before_cells_without_references_count_as_calamine_counts_them(
    tmp_path: Path, empty_rows: bytes, used: str
) -> None:
    # calamine moves on a row for an empty `<row/>` (to its `r` when it has one) and places
    # the next row's unreferenced cells there: a 2 KB file asked for a grid of gigabytes.
    data = workbook(tmp_path, {"Data": [["id"], [1]]})
    far = empty_rows + b"<row>" + b"<c><v>1</v></c>" * 20 + b"</row></sheetData>"
    error = read_error(
        rewritten(data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"</sheetData>", far))
    )
    assert f"used range is {used}" in str(error)


@pytest.mark.parametrize("attribute", [b"rr:id", b"id"])
def test_the_sheet_scan_finds_the_sheet_whatever_the_relationship_prefix(
    tmp_path: Path, attribute: bytes
) -> None:
    # calamine takes any attribute named `id` on <sheet>; the scan must find the same part.
    data = workbook(tmp_path, {"Data": [["id", "sum"], ["0001", 7]]})
    relationships = (
        b'xmlns:rr="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    )
    data = rewritten(
        data,
        "xl/workbook.xml",
        lambda xml: xml.replace(b"r:id=", attribute + b"=").replace(
            b"<workbook ", b"<workbook " + relationships + b" "
        ),
    )
    assert read(data).rows() == [("0001", "7", 2)]
    uncalculated = rewritten(
        data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"<v>7</v>", b"<f>1+1</f>")
    )
    assert "formula cells without a stored result (e.g. B2)" in str(read_error(uncalculated))
    corner = rewritten(
        data,
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(
            b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'
        ),
    )
    assert "used range is A1:XFD1048576" in str(read_error(corner))


# -- .xls: cell positions checked before calamine builds the grid ---------------------------


def test_an_xls_sheet_reads_like_an_xlsx_one() -> None:
    data = xls_workbook([["ID", "Antal"], ["0001", 3.5], ["0002", 4]])
    assert read(data).rows() == [("0001", "3.5", 2), ("0002", "4", 3)]


def test_an_xls_workbook_in_the_1904_date_system_reads_times_and_dates() -> None:
    # Mac Excel's date system (the DATEMODE record): calamine shifts the dates itself, but
    # times of day read as 1904-01-01 12:00:00.
    def serial(day: dt.datetime) -> float:
        return (day - dt.datetime(1904, 1, 1)) / dt.timedelta(days=1)

    clock = _days(hours=7, minutes=26, seconds=24)
    data = xls_workbook(
        [
            ["dato", "start"],
            [(serial(dt.datetime(2024, 1, 2)), 14), (_days(hours=12), 20)],  # 14, 20: built-in
            [(serial(dt.datetime(2024, 1, 3, 7, 30)), 22), (clock, "hh:mm:ss")],
            [(-1, 14), None],  # before 1904-01-01: no date in this system
        ],
        date_1904=True,
    )
    assert read(data).rows() == [
        ("2024-01-02 00:00:00", "12:00", 2),
        ("2024-01-03 07:30:00", "07:26:24", 3),
        ("-1", None, 4),
    ]


@pytest.mark.parametrize("rk", [False, True])
def test_xls_number_formats_keep_leading_zeros_and_show_durations(rk: bool) -> None:
    # As in .xlsx: the FORMAT and XF records say which number cells are CPR numbers or
    # postcodes formatted 0000000000 / 0000, and which are durations ([h]:mm).
    data = xls_workbook(
        [
            ["cpr", "postnr", "varighed", "indbygget"],  # 46: the built-in [h]:mm:ss
            [(101451234, "0000000000"), (800, "0000"), (1.5, "[h]:mm"), (1.5, 46)],
            [(12.5, "0000000000"), 800, (_days(minutes=90), "[mm]:ss"), (0.5, 20)],
            [(2503401234, "0000000000"), (7, "0000"), (-0.25, "[h]:mm"), None],
        ],
        rk=rk,
    )
    assert read(data).rows() == [
        ("0101451234", "0800", "36:00", "36:00", 2),
        ("12.5", "800", "90:00", "12:00", 3),  # not whole, or no format: as it is
        ("2503401234", "0007", "-0.25", None, 4),  # a negative duration is ##### in Excel
    ]


def test_an_xls_cell_beyond_the_biff_columns_is_refused_before_loading() -> None:
    # calamine does not bound BIFF columns: this 5 KB file asked for 137 GB and aborted.
    data = xls_cells([(0, 0, "ID"), (1, 0, "0001"), (65535, 65535, "x")])
    error = read_error(data)
    assert "used range is A1:CRXP65536 (65536 rows x 65536 columns)" in str(error)
    assert error.sheet == "Data"


@pytest.mark.parametrize(
    ("apart", "cause"), [(0, "two sheets start at the same record"), (1, "records overlap")]
)
def test_xls_sheets_sharing_records_are_refused(apart: int, cause: str) -> None:
    # Each sheet's records would be walked once per sheet (test_malicious times it).
    error = read_error(xls_shared_records(3, 5, apart=apart))
    assert "not a readable .xls workbook" in str(error) and cause in str(error)


_DIMENSIONS = b"\x00\x02\x0e\x00\x00\x00\x00\x00"  # its header, then the first row


@pytest.mark.parametrize(
    ("edit", "cause"),
    [
        # DIMENSIONS' first row 0xD6000000: calamine reserved 694 GB for it.
        (lambda d: d.replace(_DIMENSIONS, _DIMENSIONS[:-1] + b"\xd6"), "DIMENSIONS"),
        # The FAT sector count's high byte: calamine reserved 14 GB for it.
        (lambda d: d[:0x2F] + b"\xd0" + d[0x30:], "counts more sectors than the file holds"),
    ],
)
def test_xls_sizes_that_make_calamine_allocate_are_checked(
    edit: Callable[[bytes], bytes], cause: str
) -> None:
    error = read_error(edit(xls_workbook([["ID"], ["0001"]])))
    assert "not a readable .xls workbook" in str(error) and cause in str(error)


@pytest.mark.parametrize("name", ["udtraek.xlsx", "udtraek.ods"])
def test_a_zip_needing_an_unsupported_version_is_a_format_error(tmp_path: Path, name: str) -> None:
    # Central directory "version needed to extract" 23.5: zipfile raises NotImplementedError.
    data = bytearray(workbook(tmp_path, {"Data": [["id"], [1]]}))
    central = data.find(b"PK\x01\x02")
    data[central + 6 : central + 8] = (235).to_bytes(2, "little")
    with pytest.raises(FormatError) as caught:
        read_table(bytes(data), {"type": "excel"}, source_name=name)
    assert str(caught.value).startswith(f"{name}: the workbook's zip package cannot be read")
    assert "zip file version 23.5" in str(caught.value)


# -- used ranges far larger than the cells written ------------------------------------------


def _stray_row(data: bytes, cell: bytes) -> bytes:
    """The xlsxwriter workbook with one more row, 1048576, holding `cell`."""
    row = b'<row r="1048576">' + cell + b"</row></sheetData>"
    return rewritten(
        data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(b"</sheetData>", row)
    )


@pytest.mark.parametrize("columns_range", [None, "A:C"])
def test_one_stray_cell_far_down_is_refused_before_loading(
    tmp_path: Path, columns_range: str | None
) -> None:
    # C1048576 loaded 3M cells (312 MB); S1048576 took 6 s and 1.9 GB, A:C or not.
    rows: list[list[Any]] = [["ID", "Antal"], *([f"{i:04}", i] for i in range(1, 51))]
    for cell in (b'<c r="C1048576"><v>1</v></c>', b'<c r="S1048576"><v>1</v></c>'):
        data = _stray_row(workbook(tmp_path, {"Data": rows}), cell)
        options = {"columns_range": columns_range} if columns_range else {}
        error = read_error(data, **options)
        assert "used range is A1:" in str(error) and "written in the file" in str(error)
        assert "fewer than 1 in 50" in str(error) and error.sheet == "Data"


def test_an_xls_stray_cell_at_the_last_biff_cell_is_refused_before_loading() -> None:
    # IV65536 is a legal BIFF8 cell: 16.7M cells, 5-12 s and 2.6 GB before it was refused.
    data = xls_cells([(0, 0, "ID"), (1, 0, "0001"), (65535, 255, "x")])
    error = read_error(data)
    assert "used range is A1:IV65536 (65536 rows x 256 columns)" in str(error)
    assert "only 3 written in the file, fewer than 1 in 50" in str(error)


def test_the_sparse_rule_keeps_dense_and_small_sheets() -> None:
    def scan(rows: int, columns: int, cells: int) -> SheetScan:
        found = SheetScan(cells=cells)
        found.add(0, 0)
        found.add(rows - 1, columns - 1)
        return found

    _check_size(scan(1_000_000, 20, 20_000_000), "Data", "udtraek.xlsx")  # a real export
    _check_size(scan(1_000_000, 20, 400_000), "Data", "udtraek.xlsx")  # 1 in 50 written
    _check_size(scan(SPARSE_CELLS, 1, 2), "Data", "udtraek.xlsx")  # small enough to load
    with pytest.raises(FormatError, match="fewer than 1 in 50"):
        _check_size(scan(1_000_000, 20, 399_999), "Data", "udtraek.xlsx")


_HEADER = ods_row(["ID", "Antal"])
_DATA = "".join(ods_row([f"{i:04}", i]) for i in range(1, 51))
_EMPTY_TAIL = (  # how LibreOffice ends every row and table
    '<table:table-row table:number-rows-repeated="1048524">'
    '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
)


def read_ods(tables: dict[str, str], **options: Any) -> pl.DataFrame:
    return read_table(ods_workbook(tables), {"type": "excel", **options}, source_name="b.ods")


def test_ods_line_breaks_and_tabs_in_a_cell_are_kept() -> None:
    # LibreOffice writes Shift+Enter in a cell as <text:line-break/>; calamine drops it,
    # gluing "Hovedgade 1" and "2. tv." into "Hovedgade 12. tv.".
    rows = ods_row(["Adresse", "Bemærkning"]) + ods_row(
        ["Hovedgade 1<text:line-break/>2. tv.", "ring<text:tab/>først"]
    )
    header = ods_row(["Beløb<text:line-break/>(kr)"]) + ods_row(["1"])
    assert read_ods({"Data": rows}).rows() == [("Hovedgade 1\n2. tv.", "ring\tførst", 2)]
    assert read_ods({"Data": header}).columns == ["Beløb (kr)", "_source_row"]


def test_ods_error_cells_keep_their_text_as_in_xlsx() -> None:
    # LibreOffice saves a formula's error with an empty string value and the error as its
    # text; calamine read the empty value, so #DIV/0! was an empty cell, not an error.
    def error(formula: str, shown: str) -> str:
        return (
            f'<table:table-cell table:formula="of:={formula}" office:value-type="string"'
            ' office:string-value="" calcext:value-type="error"'
            f"><text:p>{shown}</text:p></table:table-cell>"
        )

    rows = ods_row(["id", "timer"]) + "".join(
        f"<table:table-row>{ods_cell(name)}{error(formula, shown)}</table:table-row>"
        for name, formula, shown in [
            ("a", "1/0", "#DIV/0!"),
            ("b", "NA()", "#N/A"),
            ("c", "SQRT(-1)", "Err:502"),
        ]
    )
    assert read_ods({"Data": rows}).rows() == [
        ("a", "#DIV/0!", 2),
        ("b", "#N/A", 3),
        ("c", "Err:502", 4),
    ]


def test_an_ods_with_libreoffice_repeated_empty_rows_and_cells_loads() -> None:
    empty = '<table:table-cell table:number-columns-repeated="1022"/>'
    rows = _HEADER + "".join(ods_row([f"{i:04}", i], extra=empty) for i in range(1, 51))
    frame = read_ods({"Data": rows + _EMPTY_TAIL})
    assert frame.height == 50 and frame.columns == ["ID", "Antal", "_source_row"]


@pytest.mark.parametrize(
    ("bomb", "used"),
    [
        # A value repeated over 16384 columns: 5-10 s and 3 GB (53 s and 9 GB at 3000 rows).
        (ods_row([], extra=ods_cell("x", 16384), repeated=1000), "A1:XFD1051"),
        # A value repeated over a million rows: 1.5 KB loaded as 1M rows.
        (ods_row([1, 1], repeated=1_048_000), "A1:B1048051"),
    ],
)
def test_ods_repeated_values_are_refused_before_loading(bomb: str, used: str) -> None:
    with pytest.raises(FormatError) as caught:
        read_ods({"Data": _HEADER + _DATA + bomb + _EMPTY_TAIL})
    assert f"used range is {used}" in str(caught.value) and "fewer than 1 in 50" in str(
        caught.value
    )


def test_every_ods_table_is_checked_even_one_whose_name_comes_again() -> None:
    # calamine builds both tables named Data on opening the file, then keeps the second.
    bomb = ods_row([1], repeated=3_000_000)
    data = ods_workbook([("Data", _HEADER + _DATA + bomb), ("Data", _HEADER + _DATA)])
    error = read_error(data)
    assert "used range is A1:B3000051" in str(error) and error.sheet == "Data"


def test_the_ods_scan_reads_past_a_formula_holding_a_greater_than_sign() -> None:
    formula = '<table:table-cell table:formula="of:=[.B2]>0" office:value-type="float"'
    stray = f'{formula} office:value="1" table:number-columns-repeated="16000"/>'
    # 2000 rows x 16002 columns: only the scan before calamine says "cells to load".
    rows = _HEADER + ods_row(["0001", 1], extra=stray, repeated=2000)
    error = read_error(ods_workbook({"Data": rows}))
    assert "used range is A1:WQL2001 (2001 rows x 16002 columns), more than" in str(error)


def test_a_date_cell_beyond_excels_dates_reads_as_its_number(tmp_path: Path) -> None:
    # Excel shows ##### for these; as dates they read as +87109-03-16, 18:00, or broke the
    # file. As their number, the typing step quarantines their row alone.
    path = tmp_path / "dates.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        date = book.add_format({"num_format": "dd-mm-yyyy"})
        sheet.write_row(0, 0, ["dato", "n"])
        for row, value in enumerate([45292, 31122024, -0.25, 1e12, 0.5], start=1):
            sheet.write_number(row, 0, value, date)
            sheet.write_number(row, 1, row)
    assert read(path.read_bytes())["dato"].to_list() == [
        "2024-01-01",
        "31122024",
        "-0.25",
        "1000000000000",
        "12:00",
    ]
    assert read(path.read_bytes(), decimal_comma=True)["dato"][2] == "-0,25"


def test_times_of_day_in_a_1904_workbook_read_as_times(tmp_path: Path) -> None:
    path = tmp_path / "mac.xlsx"
    with xlsxwriter.Workbook(path, {"date_1904": True}) as book:
        sheet = book.add_worksheet()
        clock = book.add_format({"num_format": "hh:mm"})
        date = book.add_format({"num_format": "dd-mm-yyyy"})
        sheet.write_row(0, 0, ["dato", "start"])
        sheet.write_datetime(1, 0, dt.datetime(2024, 1, 2), date)
        sheet.write_datetime(1, 1, dt.time(7, 26, 24), clock)
        sheet.write_datetime(2, 0, dt.datetime(2024, 1, 3), date)
        sheet.write_datetime(2, 1, dt.time(12, 0), clock)
        sheet.write_number(3, 0, -1, date)  # before 1904-01-01: no date in this system
    assert read(path.read_bytes()).rows() == [
        ("2024-01-02", "07:26:24", 2),
        ("2024-01-03", "12:00", 3),
        ("-1", None, 4),
    ]


def _days(**duration: float) -> float:
    """A duration as Excel stores it: a number of days."""
    return dt.timedelta(**duration) / dt.timedelta(days=1)


def test_elapsed_time_formats_read_as_durations_not_dates(tmp_path: Path) -> None:
    # Excel shows 1.5 days formatted [h]:mm as 36:00; calamine took it for 1900-01-01 12:00.
    path = tmp_path / "durations.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        formats = ["[h]:mm", "[mm]:ss", "[ss]", 46, "hh:mm", "dd-mm-yyyy"]  # 46: [h]:mm:ss
        styles = [book.add_format({"num_format": code}) for code in formats]
        sheet.write_row(0, 0, ["timer", "minutter", "sekunder", "indbygget", "start", "dato"])
        rows = [
            [_days(hours=36), _days(minutes=90), _days(seconds=5), _days(hours=36, seconds=15)],
            [_days(hours=606), _days(hours=36), _days(hours=36), _days(hours=24)],
            [_days(hours=6), _days(seconds=0), _days(minutes=2), _days(hours=-12)],
        ]
        for r, row in enumerate(rows, start=1):
            for c, value in enumerate(row):
                sheet.write_number(r, c, value, styles[c])
            sheet.write_datetime(r, 4, dt.time(7 + r, 30), styles[4])
            sheet.write_datetime(r, 5, dt.datetime(2024, 1, r), styles[5])
        sheet.write_number(4, 0, 3e6, styles[0])  # past 9999-12-31: Excel shows #####
    assert read(path.read_bytes()).rows() == [
        ("36:00", "90:00", "05", "36:00:15", "08:30", "2024-01-01", 2),
        ("606:00", "2160:00", "129600", "24:00", "09:30", "2024-01-02", 3),
        # A negative duration is ##### in the 1900 system: its number, for the typing step.
        ("06:00", "00:00", "120", "-0.5", "10:30", "2024-01-03", 4),
        ("3000000", None, None, None, None, None, 5),
    ]


def test_durations_on_excels_29_february_1900_are_not_a_day_short(tmp_path: Path) -> None:
    # calamine reads serials 60 to 61 (a day that never was) as the moments of 59 to 60, so
    # 1,440:00 read as 1416:00: wrong hours, without a word.
    path = tmp_path / "leap.xlsx"
    hours = [1416, 1439.5, 1440, 1452, 1463.75, 1464, 1476]
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        style = book.add_format({"num_format": "[h]:mm"})
        sheet.write_row(0, 0, ["timer", "tekst"])
        for row, value in enumerate(hours, start=1):
            sheet.write_number(row, 0, _days(hours=value), style)
            sheet.write_string(row, 1, "x")
    assert read(path.read_bytes())["timer"].to_list() == [
        "1416:00",
        "1439:30",
        "1440:00",
        "1452:00",
        "1463:45",
        "1464:00",
        "1476:00",
    ]


@pytest.mark.parametrize("rk", [False, True])
def test_xls_durations_on_excels_29_february_1900_are_not_a_day_short(rk: bool) -> None:
    # The same as in .xlsx, read off the NUMBER, RK and MULRK records (whole days as RK).
    hours = [1416, 1440, 1452, 1464]
    data = xls_workbook(
        [["timer", "tekst"], *([(_days(hours=h), "[h]:mm"), "x"] for h in hours)], rk=rk
    )
    assert read(data)["timer"].to_list() == ["1416:00", "1440:00", "1452:00", "1464:00"]


def test_elapsed_times_in_a_1904_workbook_may_be_negative(tmp_path: Path) -> None:
    path = tmp_path / "mac.xlsx"
    with xlsxwriter.Workbook(path, {"date_1904": True}) as book:
        sheet = book.add_worksheet()
        hours = book.add_format({"num_format": "[h]:mm"})
        date = book.add_format({"num_format": "dd-mm-yyyy"})
        sheet.write_row(0, 0, ["varighed", "dato"])
        sheet.write_number(1, 0, _days(hours=36), hours)
        sheet.write_datetime(1, 1, dt.datetime(2024, 1, 2), date)
        sheet.write_number(2, 0, _days(hours=-36, minutes=-30), hours)  # Excel: -36:30
        sheet.write_datetime(2, 1, dt.datetime(1904, 1, 2), date)
    assert read(path.read_bytes()).rows() == [
        ("36:00", "2024-01-02", 2),
        ("-36:30", "1904-01-02", 3),
    ]


@pytest.mark.parametrize("date_1904", [False, True])
def test_a_time_of_day_cell_holding_a_date_reads_as_its_time(
    tmp_path: Path, date_1904: bool
) -> None:
    # Excel shows a date and time (1.5, or 2024-01-02 06:00) in an hh:mm cell as the time
    # only, 12:00 and 06:00; it read as 1900-01-01 12:00:00. With a date in the format, the
    # same values stay dates and times.
    path = tmp_path / "clock.xlsx"
    with xlsxwriter.Workbook(path, {"date_1904": date_1904}) as book:
        sheet = book.add_worksheet()
        clock = book.add_format({"num_format": "hh:mm"})
        am_pm = book.add_format({"num_format": "[$-406]h:mm:ss AM/PM;@"})
        stamp = book.add_format({"num_format": "dd-mm-yyyy hh:mm"})
        date = book.add_format({"num_format": "dd-mm-yyyy"})
        sheet.write_row(0, 0, ["start", "slut", "tidspunkt", "dato"])
        sheet.write_number(1, 0, 1.5, clock)
        sheet.write_datetime(1, 1, dt.datetime(2024, 1, 2, 6, 0, 15), am_pm)
        sheet.write_number(1, 2, 1.5, stamp)
        sheet.write_datetime(1, 3, dt.datetime(2024, 1, 2), date)
        sheet.write_number(2, 0, 0.25, clock)
        sheet.write_datetime(2, 1, dt.datetime(2024, 1, 2, 18, 0), clock)
    first_day = "1904-01-02" if date_1904 else "1900-01-01"
    assert read(path.read_bytes()).rows() == [
        ("12:00", "06:00:15", f"{first_day} 12:00:00", "2024-01-02", 2),
        ("06:00", "18:00", None, None, 3),
    ]


def test_an_xls_time_of_day_cell_holding_a_date_reads_as_its_time() -> None:
    data = xls_workbook(
        [
            ["start", "slut"],  # 20 and 21: Excel's built-in h:mm and h:mm:ss
            [(1.5, 20), (45292.25, "hh:mm")],
            [(0.75, 21), (45292.25, 22)],  # 22: m/d/yy h:mm, a date and time
        ]
    )
    assert read(data).rows() == [("12:00", "06:00", 2), ("18:00", "2024-01-01 06:00:00", 3)]


def test_ods_time_cells_read_like_xlsx_times() -> None:
    def time(iso: str) -> str:
        return (
            f'<table:table-cell office:value-type="time" office:time-value="{iso}">'
            f"<text:p>{iso}</text:p></table:table-cell>"
        )

    text = '<table:table-cell office:value-type="string"><text:p>{}</text:p></table:table-cell>'
    rows = [
        [text.format("id"), text.format("start")],
        [text.format("a"), time("PT01H30M00S")],
        [text.format("b"), time("PT13H45M15S")],
        [text.format("c"), time("P1DT12H00M00S")],  # a duration past a day, as [h]:mm
    ]
    data = ods_workbook(
        {"Data": "".join(f"<table:table-row>{''.join(row)}</table:table-row>" for row in rows)}
    )
    assert read(data).rows() == [("a", "01:30", 2), ("b", "13:45:15", 3), ("c", "36:00", 4)]


def test_zero_padded_number_formats_keep_their_leading_zeros(tmp_path: Path) -> None:
    # A CPR or postcode typed as a number in a cell formatted 0000000000 / 0000: Excel shows
    # 0101451234 and 0800, and so must the reader, or cpr_valid fails every such row.
    path = tmp_path / "meals.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        cpr = book.add_format({"num_format": "0000000000"})
        post = book.add_format({"num_format": "0000"})
        sheet.write_row(0, 0, ["cpr", "postnr"])
        sheet.write_number(1, 0, 101451234, cpr)
        sheet.write_number(1, 1, 800, post)
        sheet.write_number(2, 0, 2503401234, cpr)
        sheet.write_string(2, 1, "800", post)  # text shows as typed, whatever the format
        sheet.write_number(3, 0, 12.5, cpr)  # not whole: left as is
        sheet.write_number(3, 1, 800)  # no format
    assert read(path.read_bytes()).rows() == [
        ("0101451234", "0800", 2),
        ("2503401234", "800", 3),
        ("12.5", "800", 4),
    ]


def test_number_formats_apply_to_cells_written_without_references(tmp_path: Path) -> None:
    # Some writers leave out `r="B2"`: each cell follows the one before in its row, an empty
    # `<c/>` too. The format must still find its cell, or a CPR loses its leading zero.
    path = tmp_path / "refless.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        cpr = book.add_format({"num_format": "0000000000"})
        duration = book.add_format({"num_format": "[h]:mm"})
        sheet.write_row(0, 0, ["note", "cpr", "varighed"])
        sheet.write_blank(1, 0, None, cpr)
        sheet.write_number(1, 1, 101451234, cpr)
        sheet.write_number(1, 2, 1.5, duration)
        sheet.write_string(2, 0, "x")
        sheet.write_number(2, 1, 2503401234, cpr)
        sheet.write_number(2, 2, 0.25, duration)
    data = rewritten(
        path.read_bytes(),
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(rb'(<c[^>]*?) r="[A-Z]+[0-9]+"', rb"\1", xml),
    )
    assert b' r="B2"' not in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    assert read(data).rows() == [(None, "0101451234", "36:00", 2), ("x", "2503401234", "06:00", 3)]


def test_ods_number_styles_with_integer_digits_keep_their_leading_zeros() -> None:
    # LibreOffice's format 0000000000 is a number style of ten integer digits; a cell takes
    # its own style, else its row's or its column's default, which may inherit the number
    # style from a named style in styles.xml.
    def number_style(name: str, attributes: str) -> str:
        return (
            f'<number:number-style style:name="{name}">'
            f"<number:number {attributes}/></number:number-style>"
        )

    def cell_style(name: str, attributes: str) -> str:
        return f'<style:style style:name="{name}" style:family="table-cell" {attributes}/>'

    styles = "".join(
        [
            number_style("N10", 'number:decimal-places="0" number:min-integer-digits="10"'),
            number_style("N4", 'number:min-integer-digits="4"'),
            number_style("N4D2", 'number:decimal-places="2" number:min-integer-digits="4"'),
            cell_style("ce1", 'style:parent-style-name="Default" style:data-style-name="N10"'),
            cell_style("ce2", 'style:data-style-name="N4"'),
            cell_style("ce3", 'style:data-style-name="N4D2"'),  # 0000.00: not zeros only
            cell_style("ce4", 'style:parent-style-name="Kode"'),
        ]
    )
    named = number_style("N3", 'number:min-integer-digits="3"') + cell_style(
        "Kode", 'style:data-style-name="N3"'
    )

    def number(value: float, style: str = "", columns: int = 1) -> str:
        styled = f' table:style-name="{style}"' if style else ""
        repeated = f' table:number-columns-repeated="{columns}"' if columns > 1 else ""
        return (
            f'<table:table-cell office:value-type="float" office:value="{value}"{styled}'
            f"{repeated}/>"
        )

    table = (
        '<table:table-column table:default-cell-style-name="ce1"/>'
        '<table:table-column table:number-columns-repeated="2"'
        ' table:default-cell-style-name="ce2"/>'
        + ods_row(["cpr", "postnr", "kode"])
        + f"<table:table-row>{number(101451234)}{number(800)}{number(7, 'ce4')}</table:table-row>"
        + f"<table:table-row>{number(12.5)}{ods_cell('800')}{number(7, 'ce3')}</table:table-row>"
        + '<table:table-row table:number-rows-repeated="2">'
        + f"{number(2503401234, 'ce1')}{number(9, columns=2)}</table:table-row>"
    )
    data = ods_workbook({"Data": table}, styles=styles, named_styles=named)
    assert read(data).rows() == [
        ("0101451234", "0800", "007", 2),
        ("12.5", "800", "7", 3),  # not whole, text, or not a zeros-only format: as it is
        ("2503401234", "0009", "0009", 4),
        ("2503401234", "0009", "0009", 5),
    ]


def test_an_excel_365_error_value_names_its_cell(tmp_path: Path) -> None:
    path = tmp_path / "spill.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        sheet.write_row(0, 0, ["a", "b"])
        sheet.write_number(1, 0, 1)
        sheet.write_formula(2, 1, "=SEQUENCE(2)", None, "#SPILL!")
    source = zipfile.ZipFile(path)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            part = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                part = part.replace(b'r="B3" cm="1" t="str"', b'r="B3" cm="1" t="e"')
                assert b't="e"' in part
            target.writestr(info, part)
    error = read_error(out.getvalue())
    assert "cell B3 holds the Excel error value #SPILL!" in str(error)
    assert "sheet Sheet1" in str(error)
    assert "replace the formulas by their values" in str(error)


def test_a_date_cell_too_low_for_calamine_reads_as_its_number(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # calamine panics converting -2e11 days in a date cell, in every load that converts it;
    # like other serials beyond Excel's dates (#####) it reads as its number, for the typing
    # step to quarantine its row, and no Rust backtrace reaches stderr.
    path = tmp_path / "huge.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet()
        date = book.add_format({"num_format": "dd-mm-yyyy"})
        zeros = book.add_format({"num_format": "0000000000000"})
        sheet.write_row(0, 2, ["n", "dato", "kode"])  # from column C: positions count from there
        sheet.write_number(1, 2, 1)
        sheet.write_number(1, 3, 45292, date)
        sheet.write_number(2, 3, -2e11, date)
        sheet.write_number(2, 4, -2.5e11, zeros)  # its format still applies: -0250000000000
        sheet.write_number(3, 3, -1.5e300, date)
        sheet.write_string(3, 4, "-2e11")  # text that looks like one stays text
    data = path.read_bytes()
    assert read(data).rows() == [
        ("1", "2024-01-01", None, 2),
        (None, "-200000000000", "-0250000000000", 3),
        (None, "-1.5e+300", "-2e11", 4),
    ]
    assert read(data, decimal_comma=True)["dato"][2] == "-1,5e+300"
    assert "panicked" not in capfd.readouterr().err


@pytest.mark.parametrize("rk", [False, True])  # a NUMBER record, or Excel's compact RK
def test_an_xls_number_too_low_for_calamine_prints_no_panic(
    rk: bool, capfd: pytest.CaptureFixture[str]
) -> None:
    # calamine panics turning a number below about -1.07e11 into a date, printing the
    # panic (with RUST_BACKTRACE, a backtrace) on stderr: in the datetime load for any such
    # number (a budget in øre), in every load for a date cell. The .xls records are read
    # before calamine: the number keeps its value, the date cell is named, and no load tries
    # either as a date. (-2**37 fits an RK, as -2e11 does not.)
    low = -(2.0**37)
    budget = xls_workbook([["n", "beloeb"], [1.0, low], [2.0, (45292.0, 14)]], rk=rk)
    # The date in that column is calamine's text of it: that column has no datetime load.
    assert read(budget).rows() == [("1", "-137438953472", 2), ("2", "2024-01-01 00:00:00", 3)]
    assert read(budget, columns_range="B:B").rows() == [
        ("-137438953472", 2),
        ("2024-01-01 00:00:00", 3),
    ]
    dated = xls_workbook([["n", "dato"], [1.0, (45292.0, 14)], [2.0, (low, 14)]], rk=rk)
    error = read_error(dated)
    assert error.line == 3 and error.sheet == "Data"
    assert "the date cell in column B holds -137438953472" in error.cause
    assert "panicked" not in capfd.readouterr().err


def test_an_ods_number_too_low_for_calamine_prints_no_panic(
    capfd: pytest.CaptureFixture[str],
) -> None:
    rows = ods_row(["n", "beloeb", "note"]) + ods_row([1.0, -2e11, "x"]) + ods_row([2.0, 5.0, "y"])
    assert read(ods_workbook({"Data": rows})).rows() == [
        ("1", "-200000000000", "x", 2),
        ("2", "5", "y", 3),
    ]
    assert "panicked" not in capfd.readouterr().err
