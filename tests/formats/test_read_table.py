"""The public surface: dispatch on `type`, and FormatError's one-line shape."""

from __future__ import annotations

import pickle

import pytest

from connectors.formats import FormatError, read_table


@pytest.mark.parametrize("options", [{}, {"type": "xml"}, {"type": None}])
def test_unknown_or_missing_type(options: dict[str, object]) -> None:
    with pytest.raises(FormatError) as caught:
        read_table(b"a\n1\n", options, source_name="f.txt")
    assert "csv, excel, json, ndjson" in str(caught.value)


def test_format_error_is_one_line_with_location_cause_and_hint() -> None:
    error = FormatError(
        "bbr.xlsx", "bad\nthing.", "Set `sheet:` in the dataset YAML.", line=7, sheet="Ark 1"
    )
    assert (
        str(error) == "bbr.xlsx, sheet Ark 1, line 7: bad thing. Set `sheet:` in the dataset YAML."
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
