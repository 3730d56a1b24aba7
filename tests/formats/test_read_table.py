"""The public surface: dispatch on `type`, and FormatError's one-line shape."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile

import polars as pl
import pytest

from connectors.formats import FormatError, read_table


@pytest.mark.parametrize("options", [{}, {"type": "yaml"}, {"type": None}])
def test_unknown_or_missing_type(options: dict[str, object]) -> None:
    with pytest.raises(FormatError) as caught:
        read_table(b"a\n1\n", options, source_name="f.txt")
    assert "csv, excel, json, ndjson, xml, fixed_width, parquet" in str(caught.value)


def test_format_error_is_one_line_with_location_cause_and_hint() -> None:
    error = FormatError(
        "bbr.xlsx", "bad\nthing.", "Set `sheet:` in the dataset YAML.", line=7, sheet="Ark 1"
    )
    assert (
        str(error) == "bbr.xlsx, sheet Ark 1, row 7: bad thing. Set `sheet:` in the dataset YAML."
    )
    assert (error.file, error.cause, error.line, error.sheet) == (
        "bbr.xlsx",
        "bad thing",
        7,
        "Ark 1",
    )
    assert str(FormatError("a.csv", "empty", "Check it")) == "a.csv: empty. Check it"


def test_format_error_survives_pickling() -> None:
    error = FormatError("a.csv", "cause", "hint", line=3)
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and copy.line == 3


def test_csv_and_ndjson_give_the_same_frame_for_the_same_records() -> None:
    csv_frame = read_table("id;navn\n1;Åse\n".encode(), {"type": "csv"}, source_name="a.csv")
    ndjson = read_table('{"id": 1, "navn": "Åse"}\n'.encode(), {"type": "ndjson"}, source_name="a")
    assert csv_frame.schema == ndjson.schema
    assert csv_frame.drop("_source_row").rows() == ndjson.drop("_source_row").rows()


def test_every_format_gives_the_same_frame_for_the_same_records() -> None:
    records = [("0101901234", "Søren Ærø"), ("0202851234", "Åse")]
    csv = "cpr;navn\n" + "".join(f"{c};{n}\n" for c, n in records)
    xml = "<a>" + "".join(f"<r><cpr>{c}</cpr><navn>{n}</navn></r>" for c, n in records) + "</a>"
    fixed = "".join(f"{c}{n:<10}\n" for c, n in records)
    parquet = io.BytesIO()
    pl.DataFrame(records, schema=["cpr", "navn"], orient="row").write_parquet(parquet)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("udtraek/borgere.csv", csv)
    layout = [{"name": "cpr", "start": 1, "length": 10}, {"name": "navn", "start": 11, "end": 20}]

    deliveries = [
        (csv.encode(), {"type": "csv"}),
        (xml.encode(), {"type": "xml", "record_path": "r"}),
        (fixed.encode("cp865"), {"type": "fixed_width", "encoding": "cp865", "columns": layout}),
        (parquet.getvalue(), {"type": "parquet"}),
        (archive.getvalue(), {"type": "csv", "container": "zip", "member": "*.csv"}),
        (gzip.compress(xml.encode()), {"type": "xml", "record_path": "a/r", "container": "auto"}),
    ]
    for data, options in deliveries:
        frame = read_table(data, options, source_name="levering")
        assert frame.schema == pl.Schema(
            {"cpr": pl.String, "navn": pl.String, "_source_row": pl.Int64}
        ), options
        assert frame.drop("_source_row").rows() == records, options
