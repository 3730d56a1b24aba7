"""Fixed-width reading: layouts, record types, header/trailer records, short lines, encodings."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from connectors.formats import FormatError, iter_table, read_table
from tests.formats.builders import PIECES_PROPERTY, assert_contract

# A CPR-style extract: start record 000, person records 001, address records 002, trailer 999.
LAYOUT = [
    {"name": "type", "start": 1, "length": 3},
    {"name": "cpr", "start": 4, "length": 10},
    {"name": "navn", "start": 14, "end": 33},
    {"name": "foedselsaar", "start": 8, "length": 2},  # overlaps `cpr`, as layouts allow
    {"name": "status", "start": 34, "length": 2},
]
RECORD = "{type:3}{cpr:10}{navn:<20}{status:2}"


def line(type_: str, cpr: str, navn: str, status: str) -> str:
    return RECORD.format(type=type_, cpr=cpr, navn=navn, status=status)


EXTRACT = (
    "000UDTRÆK 2026-01-31\r\n"
    + line("001", "0101901234", "Søren Ærø", "01")
    + "\r\n"
    + line("002", "0101901234", "Østergade 1", "")
    + "\r\n"
    + "\r\n"
    + line("001", "0202851234", "  Åse Øst", "  ")
    + "\r\n"
    + "999000002\r\n"
)


def read(data: bytes, **options: Any) -> pl.DataFrame:
    frame = read_table(
        data,
        {"type": "fixed_width", "encoding": "cp865", "columns": LAYOUT, **options},
        source_name="cpr.txt",
    )
    assert_contract(frame)
    return frame


def read_error(data: bytes, **options: Any) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read(data, **options)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("cpr.txt")
    return caught.value


def test_record_type_header_and_trailer_give_the_person_records() -> None:
    frame = read(
        EXTRACT.encode("cp865"),
        record_type={"start": 1, "length": 3, "value": "001"},
        skip_header_lines=1,
        skip_footer_lines=1,
    )
    assert frame.columns == ["type", "cpr", "navn", "foedselsaar", "status", "_source_row"]
    assert frame.rows() == [
        ("001", "0101901234", "Søren Ærø", "90", "01", 2),
        ("001", "0202851234", "Åse Øst", "85", None, 5),  # stripped; blank field is null
    ]


@pytest.mark.parametrize(
    ("extract", "line_number"),
    [
        (EXTRACT.removesuffix("999000002\r\n"), 5),  # the trailer is missing
        (EXTRACT.split("\r\n", 1)[1], 1),  # the start record is missing
    ],
)
def test_a_data_record_is_never_skipped_as_start_or_trailer(extract, line_number) -> None:
    error = read_error(
        extract.encode("cp865"),
        record_type={"start": 1, "length": 3, "value": "001"},
        skip_header_lines=1,
        skip_footer_lines=1,
    )
    assert error.line == line_number and "'001' data record" in error.cause


def test_a_byte_order_mark_where_two_extracts_were_joined_shifts_no_record() -> None:
    # Two UTF-8 extracts joined into one: the second one's BOM shifted its first record by
    # one position, so it no longer had record type 001 and was left out without a word.
    person = line("001", "0202851234", "Åse Øst", "02")
    data = b"".join(
        codecs.BOM_UTF8 + text.encode() for text in (EXTRACT.split("999")[0], person + "\r\n")
    )
    frame = read(data, encoding="utf-8", record_type={"start": 1, "length": 3, "value": "001"})
    assert frame["cpr"].to_list() == ["0101901234", "0202851234", "0202851234"]
    assert frame["_source_row"].to_list()[-1] == 6


def test_a_cp865_extract_with_only_lower_case_letters_declared_cp1252_is_refused() -> None:
    # No header to mismatch and no Å or Ø (bytes cp1252 lacks): the names loaded as "S‘by".
    data = (line("001", "0101901234", "Bjørn Sæby", "01") + "\r\n").encode("cp865")
    error = read_error(data, encoding="cp1252")
    assert error.line == 1 and "'›' inside a word in cp1252" in error.cause
    assert read(data)["navn"].to_list() == ["Bjørn Sæby"]


def test_a_wrong_single_byte_code_page_is_refused() -> None:
    # cp865 bytes read as latin-1 are C1 controls (Æ is 0x92); latin-1 read as cp865 is box
    # drawing (Æ is 0xc6, ╞): both would load names no one can search for.
    wrong = read_error(EXTRACT.encode("cp865"), encoding="latin-1")
    assert wrong.line == 1 and "U+0092 in latin-1" in wrong.cause
    assert "'╞' in cp865" in read_error(EXTRACT.encode("latin-1")).cause


def test_without_a_record_type_short_records_are_reported_with_their_line() -> None:
    error = read_error(EXTRACT.encode("cp865"))
    assert error.line == 1
    assert "the line has 20 characters but the layout reaches position 35; 1 more line is" in (
        str(error)
    )
    assert "set `allow_short_lines: true`" in str(error)


def test_a_short_start_and_trailer_record_point_at_skipping_them() -> None:
    # The start record (line 1) and trailer (line 6) are the short ones: the hint named
    # trimmed blanks and the encoding, not the records around the data.
    error = read_error(EXTRACT.encode("cp865"))
    assert error.hint.startswith(
        "If the first or last line is a header or trailer record, leave it out with"
        " `skip_header_lines: 1` and `skip_footer_lines: 1` in the dataset YAML; otherwise"
    )
    trailer = read_error(EXTRACT.encode("cp865"), skip_header_lines=1)
    assert trailer.line == 6 and "with `skip_footer_lines: 1` in" in trailer.hint
    assert read(EXTRACT.encode("cp865"), skip_header_lines=1, skip_footer_lines=1).height == 3
    # A short line amid the data is no such record.
    middle = read_error(EXTRACT.replace("Østergade 1", "Øst").strip().encode("cp865") + b"x")
    assert "header or trailer" not in middle.hint


def test_allow_short_lines_makes_missing_fields_null() -> None:
    frame = read(EXTRACT.encode("cp865"), allow_short_lines=True)
    assert frame["_source_row"].to_list() == [1, 2, 3, 5, 6]  # the blank line 4 is skipped
    assert frame.row(0) == ("000", "UDTRÆK 202", "6-01-31", "ÆK", None, 1)
    assert frame.row(-1) == ("999", "000002", None, "02", None, 6)


def test_end_is_inclusive_and_encodings_decide_the_characters() -> None:
    data = "001Æble\n002Øre \n".encode("cp1252")
    frame = read_table(
        data,
        {
            "type": "fixed_width",
            "encoding": "cp1252",
            "columns": [{"name": "t", "start": 1, "end": 3}, {"name": "v", "start": 4, "end": 7}],
        },
        source_name="f.txt",
    )
    assert frame.rows() == [("001", "Æble", 1), ("002", "Øre", 2)]


def test_utf8_declared_as_a_code_page_is_refused() -> None:
    error = read_error(EXTRACT.encode("utf-8"))
    assert "`encoding` is cp865 but the file is UTF-8" in str(error)


def _padded_to_bytes(name: str) -> bytes:
    """A record as a program padding each field to its length in bytes writes it."""
    field = name.encode("utf-8")
    return b"001" + field + b" " * (12 - len(field)) + b"  42" + b"FILLER"


def test_utf8_fields_padded_to_bytes_are_refused_not_read_shifted(tmp_path: Path) -> None:
    # `Søren Æbø` is 12 bytes but 9 characters: read by characters, the name took the
    # amount's blanks and the amount one digit of the filler, with no type failure.
    data = b"\n".join(_padded_to_bytes(n) for n in ("Anna", "Søren Æbø", "Carl")) + b"\n"
    options = {
        "type": "fixed_width",
        "encoding": "utf-8",
        "columns": [
            {"name": "navn", "start": 4, "length": 12},
            {"name": "antal", "start": 16, "length": 4},
        ],
    }
    with pytest.raises(FormatError) as caught:
        read_table(data, options, source_name="f.txt")
    assert caught.value.line == 2
    assert "25 bytes long, as long as the lines without æ, ø, å" in caught.value.cause
    assert "has only 22 characters" in caught.value.cause
    assert "padded to a number of characters" in caught.value.hint
    # In pieces too, with the plain record in another piece than the one with æ, ø, å.
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    with pytest.raises(FormatError) as in_pieces:
        list(iter_table(path, options, source_name="f.txt", chunk_bytes=20))
    assert in_pieces.value.line == 2
    # Padded to characters, the same names read whole.
    chars = "".join(f"001{n:<12}  42FILLER\n" for n in ("Anna", "Søren Æbø", "Carl"))
    frame = read_table(chars.encode("utf-8"), options, source_name="f.txt")
    assert frame["navn"].to_list() == ["Anna", "Søren Æbø", "Carl"]
    assert frame["antal"].to_list() == ["42"] * 3
    # Records of varying length (text past the layout) may match one another by chance: a
    # record 25 bytes long beside an ASCII one of 25 characters is no sign there.
    ragged = "001Anna          42FILLER\n001Søren Æbø     42FILL\n001Carl          42FILLERS\n"
    assert read_table(ragged.encode("utf-8"), options, source_name="f.txt").height == 3


def test_bytes_invalid_in_the_declared_encoding_give_the_line() -> None:
    data = b"001abc\n002\xff\xfe\n"
    with pytest.raises(FormatError) as caught:
        read_table(
            data,
            {"type": "fixed_width", "encoding": "utf-8", "columns": LAYOUT[:1]},
            source_name="f.txt",
        )
    assert caught.value.line == 2


def test_a_record_type_no_line_has_lists_what_is_there() -> None:
    error = read_error(EXTRACT.encode("cp865"), record_type={"start": 1, "value": "005"})
    assert "no line has record type '005' at positions 1-3; found '001' (2 lines)" in str(error)


@pytest.mark.parametrize(
    ("options", "cause"),
    [
        ({"encoding": None}, "`encoding` is required for type fixed_width"),
        ({"columns": []}, "`columns` must be a non-empty list"),
        ({"columns": [{"name": "a", "start": 0, "length": 1}]}, "`start` must be a whole number"),
        ({"columns": [{"name": "a", "start": 1}]}, "needs exactly one of `length` and `end`"),
        (
            {"columns": [{"name": "a", "start": 1, "length": 1, "end": 1}]},
            "needs exactly one of `length` and `end`",
        ),
        ({"columns": [{"name": "a", "start": 5, "end": 4}]}, "`end` 4 is before `start` 5"),
        ({"columns": [{"start": 1, "length": 1}]}, "`columns` entry 1 has no `name`"),
        ({"columns": [{"name": "a", "start": 1, "len": 1}]}, "unknown key `len`"),
        ({"columns": ["a"]}, "`columns` entry 1 is not a mapping"),
        (
            {"columns": [{"name": "a", "start": 1, "length": 1}] * 2},
            "duplicate column names in `columns`: 'a'",
        ),
        ({"record_type": {"start": 1, "value": 1}}, "`value` must be quoted text, got 1"),
        (
            {"record_type": {"start": 1, "length": 2, "value": "001"}},
            "`value` '001' is 3 characters but `length` is 2",
        ),
        ({"record_type": "001"}, "`record_type` is not a mapping"),
        ({"allow_short_lines": "yes"}, "`allow_short_lines` must be true or false"),
        ({"skip_header_lines": -1}, "`skip_header_lines` must be a whole number >= 0"),
        ({"skip_header_lines": 99}, "`skip_header_lines` is 99 but the file has only 6 lines"),
        ({"header_row": 1}, "unknown `format:` option `header_row` for type fixed_width"),
        ({"encoding": "nope"}, "unknown encoding `nope`"),
    ],
)
def test_layout_and_option_errors(options: dict[str, Any], cause: str) -> None:
    assert cause in str(read_error(EXTRACT.encode("cp865"), **options))


def test_empty_and_cr_only_files() -> None:
    assert "the file is empty" in str(read_error(b"  \r\n"))
    assert "bare carriage return" in str(read_error(b"001abc\r002def\r"))


@pytest.mark.parametrize(
    ("glue", "line_number", "what"),
    [
        ("\r", 2, "a carriage return (CR) that does not end it at position 36"),
        ("\x00", 2, "a NUL byte at position 36"),
        ("\r\n\x0c", 3, "the control character U+000C at position 1"),  # a page break
    ],
)
def test_control_characters_that_shift_fields_are_refused(
    glue: str, line_number: int, what: str
) -> None:
    # A bare CR glued the next record onto this line: it was silently lost.
    first, second = line("001", "0101901234", "Søren", "01"), line("001", "0202851234", "Åse", "")
    data = (first + "\r\n" + second + glue + second + "\r\n").encode("cp865")
    for options in ({}, {"record_type": TYPE_001}):
        error = read_error(data, **options)
        assert error.line == line_number and what in error.cause
    assert read((first + "\t\r\n").encode("cp865"), allow_short_lines=True).height == 1


def test_a_dos_end_of_file_mark_ends_the_file(tmp_path: Path) -> None:
    # DOS-era exports end with ^Z (0x1a), after the last line ending or right after the
    # trailer record, some with several; it was a line of its own, refused as a control
    # character, and the whole extract went to rejected/.
    options = {"record_type": TYPE_001, "skip_header_lines": 1, "skip_footer_lines": 1}
    expected = read(EXTRACT.encode("cp865"), **options)
    for text, mark in ((EXTRACT, b"\x1a"), (EXTRACT, b"\x1a" * 3), (EXTRACT[:-2], b"\x1a")):
        data = text.encode("cp865") + mark
        for chunk in (16, 10_000):  # in pieces, and whole
            whole, pieces = both(tmp_path, data, options, chunk)
            assert isinstance(whole, pl.DataFrame), str(whole)
            assert isinstance(pieces, pl.DataFrame), str(pieces)
            assert_frame_equal(whole, expected)
            assert_frame_equal(pieces, expected)
    # Anywhere else it still shifts the fields after it.
    inside = EXTRACT.replace("\r\n\r\n", "\r\n\x1a\r\n").encode("cp865")
    assert "U+001A" in read_error(inside, **options).cause


def test_a_million_lines_read_whole() -> None:
    person = line("001", "0101901234", "Søren Ærø", "01") + "\n"
    frame = read((person * 1_000_000).encode("cp865"), record_type={"start": 1, "value": "001"})
    assert frame.height == 1_000_000 and frame["_source_row"][-1] == 1_000_000
    assert frame.row(0) == ("001", "0101901234", "Søren Ærø", "90", "01", 1)


# In pieces: a big extract is read a few lines at a time (chunk_bytes is made tiny) and must
# give what reading it whole gives, or be refused too.

TYPE_001 = {"start": 1, "length": 3, "value": "001"}


def both(
    tmp_path: Path, data: bytes, options: dict[str, Any], chunk: int
) -> tuple[pl.DataFrame | FormatError, pl.DataFrame | FormatError]:
    """(whole, pieces): each a frame or the FormatError raised."""
    path = tmp_path / "cpr.txt"
    path.write_bytes(data)
    options = {"type": "fixed_width", "encoding": "cp865", "columns": LAYOUT, **options}
    results: list[pl.DataFrame | FormatError] = []
    for reading in (
        lambda: [read_table(data, options, source_name="cpr.txt")],
        lambda: list(iter_table(path, options, source_name="cpr.txt", chunk_bytes=chunk)),
    ):
        try:
            frames = reading()
        except FormatError as error:
            results.append(error)
            continue
        for frame in frames:
            assert_contract(frame)
        results.append(pl.concat(frames))
    return results[0], results[1]


lines = st.lists(
    st.one_of(
        st.builds(
            line,
            st.sampled_from(["000", "001", "001", "002", "999"]),
            st.from_regex(r"[0-9]{10}", fullmatch=True),
            st.text("abcÆØÅæøå -", max_size=20),
            st.sampled_from(["01", "  ", "90"]),
        ),
        st.sampled_from(["", "   ", "001short", "999000002", "001" + "x" * 40, "001\x0c1\r2"]),
    ),
    max_size=40,
)


@PIECES_PROPERTY
@given(
    lines,
    st.sampled_from(["\n", "\r\n"]),
    st.fixed_dictionaries(
        {},
        optional={
            "record_type": st.just(TYPE_001),
            "skip_header_lines": st.integers(0, 2),
            "skip_footer_lines": st.integers(0, 2),
            "allow_short_lines": st.booleans(),
        },
    ),
    st.sampled_from(["cp865", "utf-8"]),
    st.integers(8, 120),
)
def test_pieces_read_as_the_whole_file_reads(
    tmp_path: Path, text_lines, newline, options, encoding, chunk
) -> None:
    data = newline.join(text_lines).encode(encoding)
    whole, pieces = both(tmp_path, data, {**options, "encoding": encoding}, chunk)
    if isinstance(whole, FormatError):
        # Refused both ways; reading front to back may meet another problem first.
        assert isinstance(pieces, FormatError), str(whole)
    else:
        assert isinstance(pieces, pl.DataFrame), str(pieces)
        assert_frame_equal(pieces, whole)


def test_a_cpr_extract_in_pieces_keeps_its_lines_start_and_trailer(tmp_path: Path) -> None:
    body = []
    for i in range(120):
        body.append(line("001", f"{i:010d}", f"Ærø {i}", "01"))
        if i % 7 == 3:
            body.append(line("002", f"{i:010d}", "Østergade 1", ""))
    data = "\r\n".join(["000UDTRÆK 2026-01-31", *body, "999000120", ""]).encode("cp865")
    options = {"record_type": TYPE_001, "skip_header_lines": 1, "skip_footer_lines": 1}
    for chunk in (37, 64, 500, 4096):  # the trailer alone, or cut from its records
        whole, pieces = both(tmp_path, data, options, chunk)
        assert isinstance(pieces, pl.DataFrame)
        assert_frame_equal(pieces, whole)
        assert pieces.height == 120 and pieces["_source_row"][0] == 2
    # Without its trailer, the last person record would be skipped in its place: refused.
    cut = data.removesuffix(b"999000120\r\n")
    _, pieces = both(tmp_path, cut, options, 64)
    assert isinstance(pieces, FormatError) and "'001' data record" in pieces.cause
    assert pieces.line == cut.count(b"\n")


def test_in_pieces_a_missing_record_type_counts_every_piece(tmp_path: Path) -> None:
    data = "".join(line("002", f"{i:010d}", "x", "") + "\n" for i in range(300)).encode()
    _, pieces = both(tmp_path, data, {"record_type": TYPE_001}, 200)
    assert isinstance(pieces, FormatError)
    assert "no line has record type '001' at positions 1-3; found '002' (300 lines)" in str(pieces)


def test_in_pieces_errors_name_the_files_own_line(tmp_path: Path) -> None:
    good = line("001", "0101901234", "Soren", "01")
    rows = [good] * 200
    short = [*rows, "001short", *rows]
    _, pieces = both(tmp_path, "\n".join(short).encode("cp865"), {}, 300)
    assert isinstance(pieces, FormatError) and pieces.line == 201
    # cp865 read as latin-1: Æ (0x92) is a C1 control, named at its line and place in it.
    wrong = [*rows, line("001", "0101901234", "  Æble", "01"), *rows]
    _, pieces = both(tmp_path, "\n".join(wrong).encode("cp865"), {"encoding": "latin-1"}, 300)
    assert isinstance(pieces, FormatError) and pieces.line == 201
    assert "byte 0x92 (byte 16 of the line) becomes the control character U+0092" in str(pieces)
    # UTF-8 declared as a code page, found in a later piece.
    _, pieces = both(tmp_path, "\n".join(wrong).encode("utf-8"), {}, 300)
    assert isinstance(pieces, FormatError) and "but the file is UTF-8" in pieces.cause
    # A byte the declared encoding does not have.
    data = "\n".join(rows).encode() + b"\n001\xff\n" + "\n".join(rows).encode()
    _, pieces = both(tmp_path, data, {"encoding": "utf-8"}, 300)
    assert isinstance(pieces, FormatError) and pieces.line == 201
    assert f"at offset {data.index(bytes([255]))} is not valid utf-8" in pieces.cause
