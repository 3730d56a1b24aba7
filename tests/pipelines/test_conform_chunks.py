"""pipelines.ingest.conform_chunks: a file read with its dataset's YAML and conformed."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import polars as pl
import pytest
import xlsxwriter
import yaml

from lake.validation import ParseOptions, SchemaBreak
from pipelines.ingest import conform_chunks
from pipelines.specs import DATASETS_DIR, load_spec, spec_by_name

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


@pytest.mark.parametrize("kind", ["json", "ndjson", "parquet"])
def test_numbers_a_file_types_read_under_danish_number_settings(tmp_path, kind) -> None:
    # A JSON or Parquet number was rendered with `.`: under a `.` thousands separator 2.125
    # loaded as 2125 and 18.750 as 18750, and under a decimal comma alone 12.75 failed.
    spec = dataclasses.replace(
        spec_by_name("sick_leave"),
        format={"type": kind},
        parse=ParseOptions(date_formats=("%d-%m-%Y",), decimal_comma=True, thousands_separator="."),
    )
    values = ["F1", "17", "0101901234", "Jobcenter", "Egen sygdom", "02-03-2026"]
    row = dict(zip(HEADER[:6], values, strict=True))
    first = {**row, "Slutdato": "04-03-2026", "Fraværsdage": 2.125}
    second = {**row, "Fravær-ID": "F2", "Slutdato": None, "Fraværsdage": 12.75}
    path = tmp_path / f"fravaer.{kind}"
    if kind == "parquet":  # a float column and a decimal one, each typed by the file
        hours = pl.Series([Decimal("18.750"), Decimal("7.000")], dtype=pl.Decimal(10, 3))
        pl.DataFrame([first, second]).with_columns(Timer=hours).write_parquet(path)
    else:  # a number and a text the sender wrote in the Danish notation
        records = [{**first, "Timer": 18.75}, {**second, "Timer": "7,0"}]
        lines = [json.dumps(r) for r in records]
        path.write_text("\n".join(lines) if kind == "ndjson" else f"[{','.join(lines)}]")
    [conformed] = conform_chunks(spec, path, path.name)
    assert conformed.rows_quarantined == 0
    assert conformed.valid.select("days", "hours").rows() == [(2.125, 18.75), (12.75, 7.0)]


def test_a_large_ndjson_is_checked_in_pieces_and_later_fields_are_reported(
    tmp_path, monkeypatch
) -> None:
    from connectors.formats import chunks
    from pipelines.file_check import check_file

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


def _absence(number: int) -> dict[str, object]:
    return {
        "FravaerID": f"F{number}",
        "Medarbejdernr": "17",
        "CPR": "0101901234",
        "Afdeling": "Jobcenter",
        "Fravaerstype": "Egen sygdom",
        "Startdato": "2026-03-02",
        "Dage": 1,
        "Timer": 7.4,
    }


def _record_spec(kind: str) -> object:
    return dataclasses.replace(
        spec_by_name("sick_leave"),
        format={"type": kind, **({"record_path": "items"} if kind == "json" else {})},
        columns={
            "FravaerID": "absence_id",
            "Medarbejdernr": "employee_no",
            "CPR": "cpr",
            "Afdeling": "department",
            "Fravaerstype": "absence_type",
            "Startdato": "start_date",
            "Dage": "days",
            "Timer": "hours",
        },
        parse=ParseOptions(date_formats=("%Y-%m-%d",)),
    )


def _write_records(path, kind: str, records: list[dict[str, object]]) -> None:
    if kind == "json":
        path.write_text(json.dumps({"items": records}), encoding="utf-8")
    else:
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_required_field_one_piece_leaves_out_fails_its_rows_as_read_whole(
    tmp_path, monkeypatch, kind: str
) -> None:
    # Writers leave out null keys: records whose `Afdeling` is null have no such key. When
    # a whole piece of a large file had none, that piece rejected the file as missing the
    # column ("the file has only the headers ..."), though read whole its rows fail as null.
    from connectors.formats import chunks

    records = [_absence(i) for i in range(600)]
    for record in records[300:]:
        del record["Afdeling"]
    path = tmp_path / f"fravaer.{kind}"
    _write_records(path, kind, records)
    spec = _record_spec(kind)
    whole = list(conform_chunks(spec, path, path.name))
    monkeypatch.setattr(chunks, "CHUNK_BYTES", 4096)
    pieces = list(conform_chunks(spec, path, path.name))
    assert len(whole) == 1 and len(pieces) > 2
    for conformed in (whole, pieces):
        assert sum(c.rows_in for c in conformed) == 600
        assert sum(c.rows_quarantined for c in conformed) == 300
        failures = pl.concat([c.failures for c in conformed])
        assert set(failures["column"]) == {"department"}


@pytest.mark.parametrize("chunk_bytes", [None, 4096])
def test_a_required_field_no_record_has_rejects_the_file_whole_and_in_pieces(
    tmp_path, monkeypatch, chunk_bytes: int | None
) -> None:
    from connectors.formats import chunks

    if chunk_bytes:
        monkeypatch.setattr(chunks, "CHUNK_BYTES", chunk_bytes)
    records = [_absence(i) for i in range(600)]
    for record in records:
        del record["Afdeling"]
    path = tmp_path / "fravaer.ndjson"
    _write_records(path, "ndjson", records)
    with pytest.raises(
        SchemaBreak, match=r"fravaer.ndjson: missing required column\(s\) department"
    ):
        list(conform_chunks(_record_spec("ndjson"), path, path.name))


@pytest.mark.parametrize("chunk_bytes", [None, 4096])
def test_a_key_recased_in_some_records_only_is_named_not_loaded_as_null(
    tmp_path, monkeypatch, chunk_bytes: int | None
) -> None:
    # Two systems' exports put together: `Slutdato` in some records, `slutdato` in others.
    # The field was there, so the file passed, and the re-cased records' end dates loaded
    # as null beside a drift column `slutdato`; `check` reported 0 failing rows.
    from connectors.formats import chunks

    if chunk_bytes:
        monkeypatch.setattr(chunks, "CHUNK_BYTES", chunk_bytes)
    records = [_absence(i) | {"Slutdato": "2026-03-04"} for i in range(600)]
    for record in records[::3]:
        record["slutdato"] = record.pop("Slutdato")
    path = tmp_path / "fravaer.ndjson"
    _write_records(path, "ndjson", records)
    spec = _record_spec("ndjson")
    spec = dataclasses.replace(spec, columns={**spec.columns, "Slutdato": "end_date"})
    with pytest.raises(SchemaBreak) as caught:
        list(conform_chunks(spec, path, path.name))
    assert str(caught.value) == (
        "fravaer.ndjson: some records have the key 'slutdato' and others 'Slutdato', which is"
        " read as end_date: the values under 'slutdato' would load as an empty end_date. Ask"
        " the sender to write the key one way ('Slutdato') in every record"
    )


@pytest.mark.parametrize("kind", ["json", "xml", "csv"])
def test_a_header_recased_by_the_sender_is_named_not_loaded_as_null(tmp_path, kind) -> None:
    # `Slutdato` sent as `slutdato`: a JSON or XML record without the key is a null end date,
    # so every end date loaded as null (the new key ignored as drift), and `check` passed.
    spec = dataclasses.replace(spec_by_name("sick_leave"), format={"type": kind})
    values = ["F1", "17", "0101901234", "Jobcenter", "Egen sygdom", "02-03-2026", "04-03-2026"]
    record = dict(zip([*HEADER[:6], "slutdato"], values, strict=True))
    record |= {"Fraværsdage": "2,5", "Timer": "18,75"}
    path = tmp_path / f"fravaer.{kind}"
    if kind == "json":
        path.write_text(json.dumps([record]))
    elif kind == "xml":
        fields = "".join(f"<{k}>{v}</{k}>" for k, v in record.items())
        path.write_text(f"<Udtraek><Fravaer>{fields}</Fravaer></Udtraek>")
        spec = dataclasses.replace(spec, format={"type": "xml", "record_path": "Fravaer"})
    else:
        path.write_text(";".join(record) + "\n" + ";".join(record.values()) + "\n")
        spec = dataclasses.replace(spec, format={"type": "csv", "delimiter": ";"})
    with pytest.raises(SchemaBreak) as caught:
        list(conform_chunks(spec, path, path.name))
    assert str(caught.value) == (
        f"fravaer.{kind}: the header 'slutdato' differs only in case or spacing from"
        " 'Slutdato', which is read as end_date, so end_date is missing; map 'slutdato' under"
        " `columns:` in the dataset YAML, or ask the sender for the agreed header"
    )


def test_a_yaml_key_with_the_line_break_of_a_wrapped_excel_header_maps_it(tmp_path) -> None:
    # Readers name the header "Fraværs- dage"; the YAML key copied from the cell,
    # "Fraværs-\ndage", matched nothing and the file was refused.
    raw = yaml.safe_load((DATASETS_DIR / "sick_leave.yaml").read_text(encoding="utf-8"))
    raw["columns"] = {
        k.replace("Fraværsdage", "Fraværs-\ndage"): v for k, v in raw["columns"].items()
    }
    raw["format"] = {"type": "excel"}
    (tmp_path / "sick_leave.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    spec = load_spec(tmp_path / "sick_leave.yaml")
    path = tmp_path / "fravaer.xlsx"
    with xlsxwriter.Workbook(path) as book:
        sheet = book.add_worksheet("Fravær")
        sheet.write_row(0, 0, [h.replace("Fraværsdage", "Fraværs-\ndage") for h in HEADER])
        row = ["F1", "17", "0101901234", "Jobcenter", "Egen sygdom", "02-03-2026", "04-03-2026"]
        sheet.write_row(1, 0, [*row, 2.5, 18.75])
    [conformed] = conform_chunks(spec, path, path.name)
    assert conformed.valid.select("days", "hours").rows() == [(2.5, 18.75)]
