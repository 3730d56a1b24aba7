"""JSON and NDJSON reading: record paths, value rendering, positions and errors."""

from __future__ import annotations

import json
from typing import Any

import polars as pl
import pytest

from connectors.formats import FormatError, read_table


def read(data: bytes, kind: str = "json", **options: Any) -> pl.DataFrame:
    return read_table(data, {"type": kind, **options}, source_name="cvr.json")


def read_error(data: bytes, kind: str = "json", **options: Any) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read(data, kind, **options)
    assert "\n" not in str(caught.value)
    return caught.value


DOCUMENT = {
    "meta": {"antal": 3},
    "data": {
        "items": [
            {
                "cvr": 12345678,
                "navn": " Ærø Æbler ApS ",
                "aktiv": True,
                "ansatte": 4000.0,
                "andel": 18.75,
                "adresse": {"vej": "Østergade", "nr": 1},
                "brancher": ["01.24", "46.31"],
                "ophoert": None,
            },
            {},  # nothing in it: dropped like an empty spreadsheet row
            {"cvr": 87654321, "navn": "Å", "aktiv": False, "stiftet": "2020-02-29", "andel": ""},
        ]
    },
}


def test_record_path_and_value_rendering() -> None:
    data = json.dumps(DOCUMENT, ensure_ascii=False, indent=2).encode()

    frame = read(data, record_path="data.items")

    assert frame.columns == [
        "cvr", "navn", "aktiv", "ansatte", "andel", "adresse", "brancher", "ophoert", "stiftet",
        "_source_row",
    ]  # fmt: skip
    assert all(dtype == pl.String for dtype in frame.dtypes[:-1])
    assert frame.rows(named=True) == [
        {
            "cvr": "12345678",
            "navn": "Ærø Æbler ApS",
            "aktiv": "true",
            "ansatte": "4000",
            "andel": "18.75",
            "adresse": '{"vej":"Østergade","nr":1}',
            "brancher": '["01.24","46.31"]',
            "ophoert": None,
            "stiftet": None,
            "_source_row": 1,
        },
        {
            "cvr": "87654321",
            "navn": "Å",
            "aktiv": "false",
            "ansatte": None,
            "andel": None,
            "adresse": None,
            "brancher": None,
            "ophoert": None,
            "stiftet": "2020-02-29",
            "_source_row": 3,
        },
    ]


def test_document_that_is_the_array() -> None:
    frame = read(b'[{"a": 1}, {"a": 2.5}]')
    assert frame.rows() == [("1", 1), ("2.5", 2)]


def test_missing_record_path_names_what_is_there() -> None:
    data = json.dumps(DOCUMENT).encode()
    error = read_error(data, record_path="data.enheder")
    assert "'data.enheder'" in str(error) and "'items'" in str(error)
    assert "not an array" in str(read_error(data, record_path="meta"))
    assert "not an array" in str(read_error(data))


def test_records_must_be_objects() -> None:
    assert "record 2" in str(read_error(b'[{"a": 1}, [1, 2]]'))


def test_invalid_json_names_the_line() -> None:
    error = read_error(b'[\n  {"a": 1},\n  {"a": 2,}\n]')
    assert error.line == 3
    assert str(error).startswith("cvr.json, line 3: not valid JSON")


def test_ndjson_positions_are_line_numbers() -> None:
    data = '{"id": 1, "by": "Køge"}\n\n{"id": 2, "ny": [1]}\r\n{"id": 3}\n'.encode()
    frame = read(data, "ndjson")
    assert frame.rows() == [("1", "Køge", None, 1), ("2", None, "[1]", 3), ("3", None, None, 4)]


def test_ndjson_broken_line_is_an_error_with_its_line() -> None:
    data = b'{"id": 1}\n{"id": 2}\n{"id": 3\n{"id": 4}\n'
    error = read_error(data, "ndjson")
    assert error.line == 3
    assert str(error).startswith("cvr.json, line 3: not valid JSON")
    assert "not a JSON object" in str(read_error(b'{"id": 1}\n[2]\n', "ndjson"))


def test_unknown_json_option() -> None:
    assert "`recordpath`" in str(read_error(b"[]", recordpath="x"))
