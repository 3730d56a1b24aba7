"""The byte-count fast path of the CSV reader (`_read_plain`) against the general path.

Wherever the fast path answers, its frame must equal the general path's, on the real
open-data exports and on inputs built to sit at its edges; where it cannot prove the file
is simple, it must decline (None) so the general path gives its messages.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from connectors.formats import FormatError
from connectors.formats.csv import CsvOptions, _read_general, _read_plain, count_byte, read_csv

OPENDATA = Path(__file__).parents[2].parent / "shared" / "fixtures" / "real" / "opendata"
REAL = sorted(OPENDATA.glob("*.csv"))


def _both(data: bytes, options: dict | None = None):
    opts = CsvOptions.parse(options or {}, "t.csv")
    return _read_plain(data, opts, "t.csv"), _read_general(data, opts, "t.csv")


def _general_or_error(data: bytes, opts: CsvOptions):
    try:
        return _read_general(data, opts, "t.csv")
    except FormatError as error:
        return error


@given(st.binary(max_size=64), st.sampled_from([b"\n", b";", b"\r", b"\x00", b"\xff"]))
def test_count_byte_counts_like_bytes_count_across_its_blocks(data: bytes, byte: bytes) -> None:
    assert count_byte(data, byte, block=7) == data.count(byte)  # block edges inside the data
    assert count_byte(data, byte) == data.count(byte)


def test_the_real_exports_are_here() -> None:
    assert len(REAL) >= 5


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name[:40])
def test_real_exports_read_the_same_both_ways(path: Path) -> None:
    opts = CsvOptions.parse({}, path.name)
    plain = _read_plain(path.read_bytes(), opts, path.name)
    general = _general_or_error(path.read_bytes(), opts)
    if isinstance(general, FormatError):
        assert plain is None, f"the fast path accepted what the general path refuses: {general}"
    elif plain is not None:
        assert_frame_equal(plain, general)


def test_a_plain_export_takes_the_fast_path_and_keeps_line_numbers() -> None:
    data = "Navn;Beløb;Dato\r\nÅse;1.234,50;01-02-2023\r\n Ib ;  ;02-02-2023\r\n".encode()
    plain, general = _both(data)
    assert plain is not None
    assert_frame_equal(plain, general)
    assert plain["_source_row"].to_list() == [2, 3]
    assert plain.row(1) == ("Ib", None, "02-02-2023", 3)  # stripped, blank → null


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "cp865", "utf-8-sig"])
def test_declared_code_pages_are_transcoded_the_same(encoding: str) -> None:
    data = "Navn;By\nØrnestein Gårdsbarnehage;Haugåsstubben\n".encode(encoding)
    plain, general = _both(data, {"encoding": encoding})
    assert plain is not None
    assert_frame_equal(plain, general)
    assert plain["Navn"][0] == "Ørnestein Gårdsbarnehage"


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b'a;b\n1;"x;y"\n', "a quote character"),
        (b"a;b;c\n1;2\n", "a short row"),
        (b"a;b\n1;2\n\n3;4\n", "a blank line"),
        (b"a;b\n1;2;3\n4\n", "rows wider and shorter than the header, same total"),
        (b"a;b\n1;2\rx;y\n", "a bare carriage return"),
        ("a;b\n1;æ\n".encode("cp1252"), "not UTF-8 and nothing declared"),
        (codecs.BOM_UTF16_LE + "a;b\n1;2\n".encode("utf-16-le"), "UTF-16"),
        (b"\na;b\n1;2\n", "an empty header line"),
    ],
)
def test_what_the_fast_path_cannot_prove_goes_the_general_way(data: bytes, why: str) -> None:
    opts = CsvOptions.parse({}, "t.csv")
    assert _read_plain(data, opts, "t.csv") is None, why


def test_a_one_column_file_takes_the_fast_path_with_its_delimiters_as_text() -> None:
    notes = [f"Note {i}" for i in range(30)]
    notes[25] = "Ring tilbage; borger ikke hjemme"
    plain, general = _both(("Bemærkning\n" + "\n".join(notes) + "\n").encode())
    assert plain is not None
    assert_frame_equal(plain, general)
    assert plain["Bemærkning"].to_list() == notes


def test_footers_and_header_rows_are_left_to_the_general_path() -> None:
    data = b"title\na;b\n1;2\nI alt;2\n"
    for options in ({"header_row": 1}, {"skip_footer_rows": 1}):
        assert _read_plain(data, CsvOptions.parse(options, "t.csv"), "t.csv") is None
    frame = read_csv(data, {"header_row": 1, "skip_footer_rows": 1}, source_name="t.csv")
    assert frame.rows() == [("1", "2", 3)]


_CELL = st.text(alphabet=st.sampled_from(list("ab1 ,.-æøÅ\t\"'")), max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(_CELL, min_size=1, max_size=4), min_size=1, max_size=6),
    newline=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)
def test_generated_files_read_the_same_both_ways(
    rows: list[list[str]], newline: str, final_newline: bool
) -> None:
    header = ";".join(f"c{i}" for i in range(len(rows[0])))
    text = newline.join([header, *(";".join(row) for row in rows)])
    data = (text + (newline if final_newline else "")).encode()
    opts = CsvOptions.parse({}, "t.csv")
    plain = _read_plain(data, opts, "t.csv")
    general = _general_or_error(data, opts)
    if isinstance(general, FormatError):
        assert plain is None, f"the fast path accepted what the general path refuses: {general}"
    elif plain is not None:
        assert_frame_equal(plain, general)


@pytest.mark.parametrize(
    ("data", "options", "why"),
    [
        (b"a;b\n1;x\x00y\n", {}, "a NUL byte"),
        ("a;b\n1;Søren\n".encode(), {"encoding": "cp1252"}, "UTF-8 declared as cp1252"),
        ("a;b\n1;Søren\n".encode("cp865"), {"encoding": "latin-1"}, "cp865 declared as latin-1"),
    ],
)
def test_what_the_general_path_refuses_the_fast_path_declines(
    data: bytes, options: dict, why: str
) -> None:
    opts = CsvOptions.parse(options, "t.csv")
    assert _read_plain(data, opts, "t.csv") is None, why
    assert isinstance(_general_or_error(data, opts), FormatError), why


def test_skip_rows_matching_looks_at_every_field_on_both_paths() -> None:
    data = "id;navn;beløb\n1;Søren;12,5\n;I alt;12,5\nTotal;;\n2;Åse;1\n".encode()
    plain, general = _both(data, {"skip_rows_matching": "^(I alt|Total)$"})
    assert plain is not None
    assert_frame_equal(plain, general)
    assert plain.select("id", "_source_row").rows() == [("1", 2), ("2", 5)]
