"""`kommunelake check`: what it prints about a file's columns, without a home or a load."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

import pipelines.specs
from pipelines.cli import main

HEADER = "Fravær-ID;Medarbejdernr;CPR;Afdeling;Fraværstype;Startdato;Slutdato;Fraværsdage;Timer"
ROW = "F1;17;0101901234;Jobcenter;Egen sygdom;02-03-2026;04-03-2026;2,5;18,75"


@pytest.mark.parametrize(
    ("drift", "said"),
    [
        ("ignore", "columns not in the contract (ignored): Afdelings-kode"),
        ("evolve", "(a load adds them, schema_drift: evolve): Afdelings-kode as afdelings_kode"),
    ],
)
def test_check_says_what_a_load_would_do_with_new_columns(
    drift, said, tmp_path, monkeypatch, capsys
) -> None:
    spec = dataclasses.replace(pipelines.specs.spec_by_name("sick_leave"), schema_drift=drift)
    monkeypatch.setattr(pipelines.specs, "spec_by_name", lambda name: spec)
    export = tmp_path / "fravaer.csv"
    export.write_bytes(f"{HEADER};Afdelings-kode\r\n{ROW};Ø-2\r\n".encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 0
    out = capsys.readouterr().out
    assert "1 rows, 1 valid, 0 failing" in out and said in out


def test_a_record_format_may_leave_out_null_keys_and_be_empty(tmp_path, capsys) -> None:
    # NDJSON from a CVR-like service leaves out `ophoersdato` (end_date, nullable) while a
    # company is active; an empty delivery is zero rows, not a missing-column rejection.
    record = (
        '{"cvrNummer": "10000009", "navn": "Demo ApS", "branchekode": "620100",'
        ' "adresseId": "0a3f50a0-75eb-32b8-e044-0003ba298018", "startdato": "2020-01-02"}'
    )
    active = tmp_path / "virksomheder.ndjson"
    active.write_text(record + "\n", encoding="utf-8")
    assert main(["check", "--dataset", "cvr_companies", str(active)]) == 0
    assert "1 rows, 1 valid, 0 failing" in capsys.readouterr().out
    empty = tmp_path / "tom.ndjson"
    empty.write_text("", encoding="utf-8")
    assert main(["check", "--dataset", "cvr_companies", str(empty)]) == 0
    assert "0 rows, 0 valid, 0 failing" in capsys.readouterr().out


def test_a_file_where_every_row_fails_is_counted_and_shown_by_a_few_examples(
    tmp_path, monkeypatch, capsys
) -> None:
    # Dates in another format than the YAML's fail every row: check counts them all but
    # keeps only the first rows of each check to show, not every failing row of the file.
    from connectors.formats import chunks
    from pipelines.file_check import check_file

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 16 * 1024)
    rows = [ROW.replace("F1", f"F{i}").replace("-03-2026", "/03/2026") for i in range(2_000)]
    export = tmp_path / "fravaer.csv"
    export.write_bytes("\r\n".join([HEADER, *rows, ""]).encode("cp1252"))
    assert export.stat().st_size > 8 * chunks.CHUNK_BYTES
    report = check_file(pipelines.specs.spec_by_name("sick_leave"), export)
    assert (report.rows_in, report.rows_valid, report.rows_quarantined) == (2_000, 0, 2_000)
    assert {(column, rows) for column, _, rows in report.counts} == {
        ("start_date", 2_000),
        ("end_date", 2_000),
    }
    assert sorted(report.examples["_source_row"].to_list()) == [2, 2, 3, 3, 4, 4]
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "2,000 rows, 0 valid, 2,000 failing" in out
    shown = "start_date: type:Date: 2,000 row(s), e.g. row 2 ('NN/NN/NNNN'), row 3 ('NN/NN/NNNN'),"
    assert f"{shown} row 4 ('NN/NN/NNNN')\n" in out  # dates of a person's absence: masked
    # What to change is said too: the formats the YAML reads dates with.
    assert "dates are read as '%d-%m-%Y', '%Y-%m-%d': if the file writes them" in out
    assert "numbers are read" not in out


def test_numbers_written_another_way_are_told_how_they_are_read(tmp_path, capsys) -> None:
    export = tmp_path / "fravaer.csv"
    rows = [ROW.replace("F1", f"F{i}").replace("2,5;18,75", "2.5;18.75") for i in range(3)]
    export.write_bytes("\r\n".join([HEADER, *rows, ""]).encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "3 rows, 0 valid, 3 failing" in out
    assert "numbers are read with a decimal comma and no thousands separator: if" in out
    assert "dates are read" not in out


def test_a_missing_value_marker_is_pointed_to_null_values(tmp_path, capsys) -> None:
    export = tmp_path / "fravaer.csv"
    row = ROW.replace("04-03-2026", "..")
    export.write_bytes("\r\n".join([HEADER, row, ""]).encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    assert '`parse: null_values: [".."]`' in capsys.readouterr().out


def test_an_em_dash_for_no_value_is_pointed_to_null_values(tmp_path, capsys) -> None:
    # `-` and `–` were named; `—`, as an em dash autocorrected from `--`, was not.
    export = tmp_path / "fravaer.csv"
    export.write_bytes("\r\n".join([HEADER, ROW.replace("04-03-2026", "—"), ""]).encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    assert '`parse: null_values: ["—"]`' in capsys.readouterr().out


@pytest.mark.parametrize(
    "total",
    [
        "I alt;;;;;;;5;37,5",  # fails on its empty fields, not where its label is
        "Sum;17;0101901234;Jobcenter;Egen sygdom;I alt;;5;37,5",  # fails as a date
        "I alt;17;0101901234;Jobcenter;Egen sygdom;02-03-2026;;5;37,5",  # valid: loads as data
    ],
)
def test_a_total_row_is_pointed_to_skip_rows_matching(total, tmp_path, monkeypatch, capsys) -> None:
    export = tmp_path / "fravaer.csv"
    export.write_bytes("\r\n".join([HEADER, ROW, total, ""]).encode("cp1252"))
    main(["check", "--dataset", "sick_leave", str(export)])
    out = capsys.readouterr().out
    label = total.split(";")[0]
    assert f"the last rows look like totals, e.g. row 3 ('{label}' in Fravær-ID)" in out
    assert f"`skip_rows_matching: '^{label}$'` under `format:`" in out

    spec = pipelines.specs.spec_by_name("sick_leave")
    skipping = {**spec.format, "skip_rows_matching": "^(I alt|Sum)$"}
    spec = dataclasses.replace(spec, format=skipping)
    monkeypatch.setattr(pipelines.specs, "spec_by_name", lambda name: spec)
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 0
    out = capsys.readouterr().out
    assert "1 rows, 1 valid, 0 failing" in out and "`skip_rows_matching: '" not in out
    assert "  1 row(s) matching `skip_rows_matching` skipped (not in rows_in)\n" in out


def test_only_total_rows_at_the_end_of_a_file_read_in_pieces_are_named(
    tmp_path, monkeypatch
) -> None:
    from connectors.formats import chunks
    from pipelines.file_check import check_file

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 2 * 1024)
    spec = pipelines.specs.spec_by_name("sick_leave")
    rows = [ROW.replace("F1", f"F{i}") for i in range(300)]
    # `I alt` in a row among the data is a category, as in a statistics table; not a total.
    rows[1] = rows[1].replace("Jobcenter", "I alt")
    totals = ["I alt;;;;;;;5;37,5", "Samlet;;;;;;;5;37,5"]
    export = tmp_path / "fravaer.csv"
    export.write_bytes("\r\n".join([HEADER, *rows, *totals, ""]).encode("cp1252"))
    assert export.stat().st_size > 8 * chunks.CHUNK_BYTES
    report = check_file(spec, export)
    assert report.total_rows == ((302, "Fravær-ID", "I alt"), (303, "Fravær-ID", "Samlet"))
    # A file of totals only has nothing they could be the totals of.
    export.write_bytes("\r\n".join([HEADER, totals[0], ""]).encode("cp1252"))
    assert check_file(spec, export).total_rows == ()


def test_total_rows_continue_across_chunks_and_end_where_data_follows() -> None:
    from pipelines.total_rows import TrailingTotals

    def chunk(first: int, *labels: str) -> pl.DataFrame:
        rows = range(first, first + len(labels))
        return pl.DataFrame({"Område": list(labels), "_source_row": list(rows)})

    totals = TrailingTotals()
    for piece in (chunk(2, "Nord", "I alt"), chunk(4, "Syd", "Sum"), chunk(6, "I alt:")):
        totals.look(piece)
    assert totals.rows() == ((5, "Område", "Sum"), (6, "Område", "I alt:"))
    totals.look(chunk(7, "Vest"))
    assert totals.rows() == ()


def test_a_long_read_says_how_far_it_is(tmp_path, monkeypatch) -> None:
    import logging

    from connectors.formats import chunks
    from pipelines.file_check import check_file
    from pipelines.ingest import Progress

    monkeypatch.setattr(chunks, "CHUNK_BYTES", 16 * 1024)
    monkeypatch.setattr(Progress, "EVERY_SECONDS", 0.0)
    rows = [ROW.replace("F1", f"F{i}") for i in range(1_000)]
    rows[500] = rows[500].replace("02-03-2026", "2026/03/02")
    export = tmp_path / "fravaer_0101901234.csv"  # a name with a CPR number in it
    export.write_bytes("\r\n".join([HEADER, *rows, ""]).encode("cp1252"))
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("kommunelake.ingest")
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "level", logging.INFO)
    try:
        check_file(pipelines.specs.spec_by_name("sick_leave"), export)
    finally:
        logger.removeHandler(handler)
    progress = [line for line in said if "rows read so far" in line]
    assert len(progress) > 4
    assert progress[-1].startswith("sick_leave: fravaer_NNNNNNNNNN.csv: 1,000 rows read so far,")
    assert ", 999 of them valid (" in progress[-1]


def test_check_of_a_folder_says_so(tmp_path, capsys) -> None:
    assert main(["check", "--dataset", "sick_leave", str(tmp_path)]) != 0
    assert "is a folder: give one file to check" in capsys.readouterr().err


def test_step_failures_are_told_without_python_class_paths() -> None:
    from dagster._utils.error import SerializableErrorInfo

    from pipelines.cli import _error_text

    error = SerializableErrorInfo(
        "lake.errors.LakeError: the key repeats: fix it\n", [], "LakeError"
    )
    assert _error_text(error) == "the key repeats: fix it"
    plain = SerializableErrorInfo("disk full: /tmp\n", [], "OSError")
    assert _error_text(plain) == "disk full: /tmp"


@pytest.mark.parametrize("blank", ["", "\r\n"], ids=["title", "title-and-blank-line"])
def test_a_title_read_as_the_one_column_header_points_at_the_line_of_the_headers(
    blank, tmp_path, monkeypatch, capsys
) -> None:
    # Without `delimiter:`, a title line without one is a one-column header: every contract
    # column is missing, and the line holding them is named with the `header_row` to set.
    spec = pipelines.specs.spec_by_name("sick_leave")
    spec = dataclasses.replace(spec, format={**spec.format, "delimiter": None})
    monkeypatch.setattr(pipelines.specs, "spec_by_name", lambda name: spec)
    export = tmp_path / "fravaer.csv"
    export.write_bytes(
        f"Udtræk fra Sag 2026-01-01\r\n{blank}{HEADER}\r\n{ROW}\r\n".encode("cp1252")
    )
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    line = 3 if blank else 2
    out = capsys.readouterr().out
    assert out.startswith(f"REJECTED {export}: fravaer.csv: missing required column(s) absence_id,")
    assert out.endswith(
        f"Line {line} holds the missing column names: if the lines above it are a title, set"
        f" `header_row: {line - 1}` (0-based) under `format:` in the dataset YAML\n"
    )
    fixed = {**spec.format, "header_row": line - 1}
    monkeypatch.setattr(
        pipelines.specs, "spec_by_name", lambda name: dataclasses.replace(spec, format=fixed)
    )
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 0


@pytest.mark.parametrize("sheets", [None, "*"])
def test_a_title_row_of_a_sheet_is_named_as_a_row(sheets, tmp_path, monkeypatch, capsys) -> None:
    # The hint said "Line 2 ... the lines above it" of a workbook, whose rows Excel numbers.
    import xlsxwriter

    spec = pipelines.specs.spec_by_name("meal_delivery_list")
    layout = {"type": "excel", "sheets": sheets} if sheets else {"type": "excel"}
    monkeypatch.setattr(
        pipelines.specs, "spec_by_name", lambda name: dataclasses.replace(spec, format=layout)
    )
    export = tmp_path / "madliste.xlsx"
    with xlsxwriter.Workbook(export) as book:
        sheet = book.add_worksheet("Modtagere")
        sheet.write_row(
            0, 0, ["Madudbringning", "liste", "fra", "Demo", "Kommune", "uge", "7", "."]
        )
        sheet.write_row(1, 0, list(spec.columns))
        sheet.write_row(
            2, 0, ["Bo", "0101901234", "Vej 1", "8000", "Aarhus", "Normal", "01-02-2026"]
        )
    assert main(["check", "--dataset", "meal_delivery_list", str(export)]) == 1
    where = "Row 2" + (" of sheet 'Modtagere'" if sheets else "")
    assert capsys.readouterr().out.endswith(
        f"{where} holds the missing column names: if the rows above it are a title, set"
        " `header_row: 1` (0-based) under `format:` in the dataset YAML\n"
    )


def test_missing_columns_without_their_names_further_down_keep_the_mapping_hint(
    tmp_path, capsys
) -> None:
    export = tmp_path / "fravaer.csv"
    renamed = HEADER.replace("Timer", "Antal timer")
    export.write_bytes(f"{renamed}\r\n{ROW}\r\n".encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "missing required column(s) hours; the file has the headers Antal timer" in out
    assert "Map a renamed header under `columns:`" in out and "header_row" not in out


CPR_HEADER = "PNR;FORNAVN;EFTERNAVN;FOEDSELSDATO;KOEN;CIVILSTAND;ADRESSE_ID;TILFLYTNINGSDATO"


def test_a_header_only_file_for_a_snapshot_dataset_is_rejected(tmp_path, capsys) -> None:
    # A failed export that wrote its header only: loaded into a snapshot dataset it would mark
    # every person deleted, so the load refuses it, and check must not call it fine.
    export = tmp_path / "cpr_personer.csv"
    export.write_text(CPR_HEADER + "\n", encoding="utf-8")
    assert main(["check", "--dataset", "cpr_persons", str(export)]) == 1
    assert capsys.readouterr().out == (
        f"REJECTED {export}: cpr_personer.csv: the file has no rows; as a snapshot it would"
        " replace every row of silver.cpr_persons with none. A load refuses it once silver"
        " holds rows, keeping the last snapshot: ask the sender for the complete export\n"
    )
    # Every row failing: the failures are shown, and that a load refuses the file.
    export.write_text(CPR_HEADER + "\nx;Bo;Ek;1990-13-01;M;U;a;2020-01-01\n", encoding="utf-8")
    assert main(["check", "--dataset", "cpr_persons", str(export)]) == 1
    out = capsys.readouterr().out
    assert "1 rows, 0 valid, 1 failing" in out
    assert (
        "  the file has no row that meets the contract (all 1 would be quarantined); as a"
        " snapshot it would replace every row of silver.cpr_persons with none: a load refuses"
        " it (once silver.cpr_persons holds rows)\n"
    ) in out


def test_a_header_only_file_for_a_merge_dataset_is_zero_rows(tmp_path, capsys) -> None:
    export = tmp_path / "fravaer.csv"  # sick_leave merges: an empty batch changes nothing
    export.write_bytes(f"{HEADER}\r\n".encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 0
    out = capsys.readouterr().out
    assert "0 rows, 0 valid, 0 failing" in out and "snapshot" not in out


def test_accounting_negatives_are_named_with_their_column_and_row(tmp_path, capsys) -> None:
    # Excel's accounting format exports -1234.50 as `(1.234,50)`: a type failure like any
    # other, unless check says what the parentheses mean and what the sender should change.
    export = tmp_path / "fravaer.csv"
    rows = [ROW, ROW.replace("F1", "F2").replace("18,75", "(1.218,75)")]
    rows.append(ROW.replace("F1", "F3").replace("18,75", "(7,5)").replace(";2,5;", ";(2,5);"))
    export.write_bytes("\r\n".join([HEADER, *rows, ""]).encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "3 rows, 1 valid, 2 failing" in out
    advice = (
        "an accounting negative (a minus written as parentheses), which is no number: ask the"
        " sender to export negative numbers with a minus sign (-1.234,50)\n"
    )
    # Hours of a person's absence are sensitive: the value is shown masked, as in the counts.
    assert f"  hours: row 3 holds '(N.NNN,NN)', {advice}" in out
    assert f"  days: row 4 holds '(N,N)', {advice}" in out
    assert out.count("accounting negative") == 2  # once per column, at its first row


def test_a_minus_after_the_number_is_named_as_a_negative(tmp_path, capsys) -> None:
    # SAP and other ERP lists write -1218.75 as `1.218,75-`: it failed as a number, and the
    # only hint was the generic one about decimal commas, which were set right.
    export = tmp_path / "fravaer.csv"
    rows = [ROW, ROW.replace("F1", "F2").replace("18,75", "1.218,75-")]
    rows.append(ROW.replace("F1", "F3").replace(";2,5;", ";2,5 -;"))
    export.write_bytes("\r\n".join([HEADER, *rows, ""]).encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    advice = (
        "an accounting negative (a minus written after the number, as SAP lists do), which is"
        " no number: ask the sender to export negative numbers with a minus sign (-1.234,50)\n"
    )
    assert f"  hours: row 3 holds 'N.NNN,NN-', {advice}" in out
    assert f"  days: row 4 holds 'N,N -', {advice}" in out


def test_an_accounting_negative_after_other_failures_is_named(tmp_path, capsys) -> None:
    # Only the first three failures per check were looked at: a fourth went unexplained.
    export = tmp_path / "fravaer.csv"
    hours = ["mange", "x", "?", "(7,5)"]
    rows = [ROW.replace("F1", f"F{i}").replace("18,75", h) for i, h in enumerate(hours)]
    export.write_bytes("\r\n".join([HEADER, *rows, ""]).encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "hours: type:Float64: 4 row(s)" in out
    assert "  hours: row 5 holds '(N,N)', an accounting negative" in out


def test_excel_serial_numbers_as_dates_are_named(tmp_path, capsys) -> None:
    # A date column not formatted as a date in Excel saves as days since 1899-12-30: the
    # date hint said to add a date format, and none reads 46083.
    export = tmp_path / "fravaer.csv"
    export.write_bytes(f"{HEADER}\r\n{ROW.replace('02-03-2026', '46083')}\r\n".encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert (
        "  start_date: row 2 holds 'NNNNN', which looks like an Excel date serial number (days"
        " since 1899-12-30), which no date format reads: ask the sender to format the column"
        " as a date before saving the file\n"
    ) in out


def test_a_cpr_number_without_its_leading_zero_is_named(tmp_path, capsys) -> None:
    # 0101901234 kept as a number in Excel is 101901234: it failed as invalid, masked to
    # nine Ns, with nothing to say why.
    export = tmp_path / "fravaer.csv"
    export.write_bytes(
        f"{HEADER}\r\n{ROW.replace(';0101901234;', ';101901234;')}\r\n".encode("cp1252")
    )
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "101901234" not in out
    assert (
        "  cpr: values such as 'NNNNNNNNN' have nine digits: a CPR number that lost its leading"
        " zero, stored as a number in Excel; ask the sender to format the column as text, or"
        " with the custom format 0000000000, before exporting\n"
    ) in out


@pytest.mark.parametrize("value", ["2,5 %", "€2,5", "2,5 €", "kr. 2,5", "2,5 DKK", "NOK 2,5"])
def test_a_number_with_its_unit_is_named(value, tmp_path, capsys) -> None:
    # `12,5 %` or `kr. 1.234,50` from a formatted report: the hint spoke of decimal commas.
    # A sensitive column's values are shown masked, `kr.` as `aa.` and DKK as `aaa`: only
    # the signs were recognised there.
    export = tmp_path / "fravaer.csv"
    export.write_bytes(f"{HEADER}\r\n{ROW.replace(';2,5;', f';{value};')}\r\n".encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "  days: row 2 holds " in out and "a number with its unit (" in out
    assert "ask the sender to export the number alone" in out


def test_a_number_failing_otherwise_gets_no_accounting_advice(tmp_path, capsys) -> None:
    export = tmp_path / "fravaer.csv"
    export.write_bytes(f"{HEADER}\r\n{ROW.replace('18,75', 'mange')}\r\n".encode("cp1252"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "hours: type:Float64: 1 row(s)" in out and "accounting" not in out


def test_excel_error_values_are_named_as_failing_formulas(tmp_path, monkeypatch, capsys) -> None:
    # A formula's error (#DIV/0!, #N/A) reads as its text and fails as a number, masked to
    # '#aaa/N!' in a sensitive column: the only hint spoke of decimal commas.
    import xlsxwriter

    spec = pipelines.specs.spec_by_name("sick_leave")
    monkeypatch.setattr(
        pipelines.specs,
        "spec_by_name",
        lambda name: dataclasses.replace(spec, format={"type": "excel"}),
    )
    export = tmp_path / "fravaer.xlsx"
    with xlsxwriter.Workbook(export) as book:
        sheet = book.add_worksheet("Fravær")
        sheet.write_row(0, 0, HEADER.split(";"))
        for row, (days, hours) in enumerate([("=1/0", "#DIV/0!"), ("=NA()", "#N/A")], start=1):
            sheet.write_row(row, 0, [f"F{row}", *ROW.split(";")[1:7]])
            sheet.write_formula(row, 7, days, None, hours)
            sheet.write_number(row, 8, 7.5)
        # A lookup that failed in a text column: no typing would catch it.
        sheet.write_row(3, 0, ["F3", *ROW.split(";")[1:3]])
        sheet.write_formula(3, 3, "=VLOOKUP(1,Z1:Z2,1,FALSE)", None, "#N/A")
        sheet.write_row(3, 4, [*ROW.split(";")[4:7], 1, 7.5])
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1
    out = capsys.readouterr().out
    assert "days: type:Float64: 2 row(s), e.g. row 2 ('#aaa/N!'), row 3 ('#a/a')" in out
    assert (
        "  days: row 2 holds '#aaa/N!', an Excel error value (#DIV/0!, #N/A, #REF!, ...): the"
        " formula behind the cell fails in the sender's workbook; ask the sender to fix it, or"
        " to leave the cell empty where there is no value\n"
    ) in out
    assert "department: excel_error: 1 row(s), e.g. row 4 ('#N/A')" in out
    assert (
        "  department: row 4 holds '#N/A', an Excel error value (#DIV/0!, #N/A, #REF!, ...):"
        " the formula behind the cell fails in the sender's workbook; ask the sender to fix"
        " it, or to leave the cell empty where there is no value; or, to load it as empty,"
        " list it under `parse: null_values`\n"
    ) in out


WIDTHS = [6, 6, 10, 20, 16, 10, 10, 4, 6]


def _fixed_width(tmp_path, monkeypatch, last: str) -> None:
    """`check` of a fixed-width sick-leave extract (short lines allowed) ending in `last`."""
    layout, start = [], 1
    for name, width in zip(HEADER.split(";"), WIDTHS, strict=True):
        layout.append({"name": name, "start": start, "length": width})
        start += width
    spec = dataclasses.replace(
        pipelines.specs.spec_by_name("sick_leave"),
        format={
            "type": "fixed_width",
            "encoding": "cp865",
            "allow_short_lines": True,
            "columns": layout,
        },
    )
    monkeypatch.setattr(pipelines.specs, "spec_by_name", lambda name: spec)
    rows = [ROW.replace("F1", f"F{i}").split(";") for i in (1, 2)]
    lines = ["".join(v.ljust(w) for v, w in zip(r, WIDTHS, strict=True)) for r in rows]
    export = tmp_path / "fravaer.txt"
    export.write_bytes("\r\n".join([*lines, last, ""]).encode("cp865"))
    assert main(["check", "--dataset", "sick_leave", str(export)]) == 1


def test_a_trailer_record_read_as_data_is_pointed_to_skip_footer_lines(
    tmp_path, monkeypatch, capsys
) -> None:
    # With `allow_short_lines: true` the trailer (`999` and a count) is no short-line error:
    # it failed as a row of empty fields, and nothing named `skip_footer_lines`.
    _fixed_width(tmp_path, monkeypatch, "999000002")
    out = capsys.readouterr().out
    assert "3 rows, 2 valid, 1 failing" in out
    assert out.endswith(
        "  line 3, the file's last, leaves more fields empty than any line before it: if it is"
        " the extract's trailer record (a record count), leave it out with"
        " `skip_footer_lines: 1` under `format:` in the dataset YAML\n"
    )


def test_a_last_row_without_its_optional_fields_is_no_trailer(
    tmp_path, monkeypatch, capsys
) -> None:
    # A row leaving out its end date, days and hours: three of nine fields, not a trailer.
    values = ROW.replace("F1", "F3").split(";")[:6]
    last = "".join(v.ljust(w) for v, w in zip(values, WIDTHS[:6], strict=True))
    _fixed_width(tmp_path, monkeypatch, last)
    out = capsys.readouterr().out
    assert "3 rows, 2 valid, 1 failing" in out and "trailer" not in out


def test_date_times_failing_their_type_get_a_hint_naming_date_formats() -> None:
    # Only date fields had a hint: a date-time column failing by the thousand said nothing
    # of how it is read, nor that a UTC field needs the offset in the format.
    from lake.validation import ParseOptions
    from pipelines.cli import _parse_hints

    hints = _parse_hints(
        ParseOptions(date_formats=("%d-%m-%Y",)),
        ["type:Datetime(time_unit='us', time_zone='UTC')"],
    )
    assert hints == [
        "date-times are read as ISO 8601 ('2024-02-01T13:45:00'), '%d-%m-%Y': if the file"
        " writes them another way, add its format to `parse: date_formats:` in the dataset"
        " YAML (e.g. '%d.%m.%Y %H:%M'); a field in UTC takes only formats with an offset"
        " (%z), as a time without one is the sender's local time"
    ]


def test_a_date_of_zeros_is_pointed_to_null_values() -> None:
    # Fagsystemer write `00-00-0000` for no date: the date hint said to add a date format,
    # and no format reads the day 0 of month 0. (In a personal or sensitive column the
    # digits are masked, so there the zeros cannot be told from a date.)
    from pipelines.cli import _zero_dates

    datetime = "type:Datetime(time_unit='us', time_zone=None)"
    examples = pl.DataFrame(
        {
            "_source_row": [2, 3, 4, 5],
            "column": ["closed", "closed", "changed_at", "opened"],
            "check": ["type:Date", "type:Date", datetime, "type:Date"],
            "value": ["00-00-0000", "0000-00-00", "0000-00-00 00:00:00", "31-02-2024"],
        }
    )
    assert _zero_dates(examples) == [
        "closed: row 2 holds '00-00-0000', a date of zeros, as fagsystemer write no date: list"
        ' it under `parse: null_values: ["00-00-0000"]` in the dataset YAML to read it as null'
        " (a field that may not be null then fails as such)",
        "changed_at: row 4 holds '0000-00-00 00:00:00', a date of zeros, as fagsystemer write"
        ' no date: list it under `parse: null_values: ["0000-00-00 00:00:00"]` in the dataset'
        " YAML to read it as null (a field that may not be null then fails as such)",
    ]
