"""Large delimited files read in pieces give exactly what reading them whole gives.

Pieces are forced small (a few KB) so that every file here is cut many times, including
inside the real open-data exports and through quoted fields that span lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from connectors.formats import FormatError, iter_table, read_table
from connectors.formats.chunks import iter_csv
from connectors.formats.csv import read_csv
from tests.formats.builders import PIECES_PROPERTY

OPENDATA = Path(__file__).parents[2].parent / "shared" / "fixtures" / "real" / "opendata"
REAL = sorted(p for p in OPENDATA.glob("*.csv") if "miljostasjoner" not in p.name)


def _both(path: Path, options: dict, chunk_bytes: int) -> tuple[pl.DataFrame, list[pl.DataFrame]]:
    whole = read_csv(path.read_bytes(), options, source_name=path.name)
    pieces = list(iter_csv(path, options, source_name=path.name, chunk_bytes=chunk_bytes))
    return whole, pieces


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name[:30])
@pytest.mark.parametrize("fraction", [3, 7])
def test_real_exports_in_pieces_equal_the_whole(path: Path, fraction: int) -> None:
    whole, pieces = _both(path, {}, max(path.stat().st_size // fraction, 512))
    assert len(pieces) >= 2
    assert pl.concat(pieces).equals(whole)


def test_quoted_line_breaks_cp1252_footer_and_totals(tmp_path: Path) -> None:
    lines = ["Navn;Beskrivelse;Beløb"]
    lines += [f'Række {i};"første linje\nanden linje {i}";{i},50' for i in range(2000)]
    lines += ["I alt;;999", "Kilde: fagsystem;;"]
    path = tmp_path / "udtræk.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    options = {"skip_footer_rows": 1, "skip_rows_matching": "^I alt"}
    for chunk_bytes in (700, 4096, 30_000):
        whole, pieces = _both(path, options, chunk_bytes)
        got = pl.concat(pieces)
        assert got.equals(whole)
        assert got.height == 2000
        assert got["_source_row"][-1] == 4000  # each record spans two physical lines
        assert got["Beskrivelse"][-1] == "første linje\nanden linje 1999"


def test_footer_rows_spread_over_several_small_pieces_are_all_dropped(tmp_path: Path) -> None:
    # Pieces of about one row: the last piece held fewer rows than `skip_footer_rows`, so
    # footer lines in the pieces before it were read as data (or refused as ragged).
    body = "".join(f"{i:05d};name {i};1,5;01-02-2024\r\n" for i in range(300))
    footers = [
        "I alt;;450;\r\n",
        '"Kilde: fagsystem X,\r\nudtrukket 2026-01-31"\r\n',  # one record, two lines
        ";;;\r\n",  # no content: not a footer row
        "\r\n",
        "Kørt af: batch\r\n",
    ]
    path = tmp_path / "f.csv"
    path.write_bytes(("Id;Navn;Belob;Dato\r\n" + body + "".join(footers)).encode("cp1252"))
    for skip in (1, 2, 3):
        for chunk_bytes in (20, 41, 64, 150):
            options = {"skip_footer_rows": skip, "encoding": "cp1252"}
            if skip < 3:  # the footer rows left over are totals and notes, skipped by pattern
                options["skip_rows_matching"] = "^(I alt|Kilde)"
            whole, pieces = _both(path, options, chunk_bytes)
            assert len(pieces) > 10, (skip, chunk_bytes)
            got = pl.concat(pieces)
            assert got.equals(whole), (skip, chunk_bytes)
            assert got.height == 300 and got["Id"][-1] == "00299"


def test_blank_lines_after_the_footer_longer_than_a_piece(tmp_path: Path) -> None:
    # The pieces cut among the blank lines hold no row at all: the footer is in one before.
    body = "".join(f"{i};navn {i}\n" for i in range(3000))
    blanks = " \r\n;\n\n" * 3000
    path = tmp_path / "blanks.csv"
    path.write_text(f"id;navn\n{body}Kilde: DST\n{blanks}", encoding="utf-8")
    whole, pieces = _both(path, {"skip_footer_rows": 1}, 4096)
    assert len(pieces) > 5
    got = pl.concat(pieces)
    assert got.equals(whole) and got.height == 3000


_CELL = st.sampled_from(["", "a", "Søren", "1,5", " x ", '"q;uo""te"', '"to\nlinjer"', ";"])
_FOOTER = st.sampled_from(["", ";", "Kilde: DST", "I alt;9", '"Note\nlang"', "x;y;z;w"])


@PIECES_PROPERTY
@given(
    columns=st.integers(1, 3),
    trailing=st.booleans(),
    rows=st.lists(st.lists(_CELL, min_size=3, max_size=3), max_size=30),
    footers=st.lists(_FOOTER, max_size=5),
    skip=st.integers(0, 4),
    newline=st.sampled_from(["\n", "\r\n"]),
    chunk=st.integers(1, 80),
)
def test_generated_files_read_in_pieces_as_whole(
    tmp_path: Path, columns, trailing, rows, footers, skip, newline, chunk
) -> None:
    # One column (a `;` in a value is text) or several, perhaps with a trailing `;` on the
    # header alone; quoted line breaks; footers of any width, some without content;
    # `skip_footer_rows` of any size against pieces of a row or two.
    header = ";".join(f"c{i}" for i in range(columns)) + (";" if trailing else "")
    lines = [header, *(";".join(row[:columns]) for row in rows), *footers]
    path = tmp_path / "gen.csv"
    path.write_bytes((newline.join(lines) + newline).encode())
    options = {"skip_footer_rows": skip}
    try:
        whole = read_csv(path.read_bytes(), options, source_name="gen.csv")
    except FormatError as error:
        whole = error
    try:
        chunk_bytes = len(header) + len(newline) + chunk
        pieces = pl.concat(iter_csv(path, options, source_name="gen.csv", chunk_bytes=chunk_bytes))
    except FormatError as error:
        pieces = error
    if isinstance(whole, FormatError):
        # Refused both ways; reading front to back may meet another problem first.
        assert isinstance(pieces, FormatError), str(whole)
    else:
        assert isinstance(pieces, pl.DataFrame), str(pieces)
        assert_frame_equal(pieces, whole)


def test_header_row_and_bom(tmp_path: Path) -> None:
    body = "".join(f"{i};navn {i}\n" for i in range(3000))
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfRapport 2025\n\nid;navn\n" + body.encode())
    whole, pieces = _both(path, {"header_row": 2}, 2048)
    assert len(pieces) > 5
    got = pl.concat(pieces)
    assert got.equals(whole) and got.columns == ["id", "navn", "_source_row"]
    assert got.row(-1) == ("2999", "navn 2999", 3003)  # header on line 3


def test_a_sep_line_in_pieces(tmp_path: Path) -> None:
    body = "".join(f"{i},navn {i}\r\n" for i in range(3000))
    path = tmp_path / "x.csv"
    path.write_bytes(b"sep=,\r\nid,navn\r\n" + body.encode())
    whole, pieces = _both(path, {}, 2048)
    assert len(pieces) > 5
    got = pl.concat(pieces)
    assert got.equals(whole) and got.columns == ["id", "navn", "_source_row"]
    assert got.row(-1) == ("2999", "navn 2999", 3002)  # header on line 2


def test_an_error_in_a_later_piece_names_the_files_line(tmp_path: Path) -> None:
    rows = [f"{i};a;b" for i in range(5000)]
    rows[4321] = "4321;a;b;extra"
    path = tmp_path / "ragged.csv"
    path.write_text("id;x;y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(FormatError) as whole:
        read_csv(path.read_bytes(), {}, source_name=path.name)
    with pytest.raises(FormatError) as pieces:
        list(iter_csv(path, {}, source_name=path.name, chunk_bytes=4096))
    assert whole.value.line == pieces.value.line == 4323


def _export(rows: list[str]) -> str:
    return "Udtræk 2026\n\nId;Navn;Belob\n" + "\n".join([*rows, "I alt;;4500"]) + "\n"


def _ragged_at(rows: list[str], at: int) -> list[str]:
    """`rows` with row `at` two fields wide, its length unchanged so the cuts stay put."""
    return [*rows[:at], rows[at].replace(";1,5", ",1,5"), *rows[at + 1 :]]


def test_a_ragged_row_in_any_piece_has_the_whole_files_message(tmp_path: Path) -> None:
    # Pieces after the first said "the header (line 1)" whatever `header_row` was, and a
    # ragged row among the last rows of any piece but the file's last got the footer hint
    # with `skip_footer_rows:` "(now 0)", which the YAML had set.
    rows = [f"{i:05d};navn {i:05d};1,5" for i in range(600)]
    path = tmp_path / "udtraek.csv"
    path.write_text(_export(rows), encoding="utf-8")
    options = {"header_row": 2, "skip_footer_rows": 1}
    ends = [int(f["Id"][-1]) for f in iter_csv(path, options, source_name="u", chunk_bytes=1024)]
    assert len(ends) > 5
    # The last row of the first and of a middle piece, one mid-piece, and the file's last
    # rows read in pieces of about a row (the last piece keeps the rows the hint names).
    cases = [(ends[0], 1024), (ends[3], 1024), (ends[3] - 7, 1024)]
    cases += [(at, 48) for at in (596, 597, 598, 599)]
    for at, chunk_bytes in cases:
        path.write_text(_export(_ragged_at(rows, at)), encoding="utf-8")
        with pytest.raises(FormatError) as whole:
            read_csv(path.read_bytes(), options, source_name=path.name)
        with pytest.raises(FormatError) as pieces:
            list(iter_csv(path, options, source_name=path.name, chunk_bytes=chunk_bytes))
        assert str(pieces.value) == str(whole.value), at
        assert whole.value.line == at + 4
        assert "the header (line 3) has 3" in whole.value.cause
        footer_hint = "set `skip_footer_rows:` (now 1)" in whole.value.hint
        assert footer_hint == (at >= 597), at


def test_an_unbalanced_quote_is_reported_not_split_around(tmp_path: Path) -> None:
    rows = [f"{i};tekst {i}" for i in range(4000)]
    rows[3000] = '3000;"aldrig lukket'
    path = tmp_path / "quote.csv"
    path.write_text("id;tekst\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match="quote"):
        list(iter_csv(path, {}, source_name=path.name, chunk_bytes=4096))


def test_a_record_longer_than_several_pieces(tmp_path: Path) -> None:
    """A quoted field of 20 KB read in 4 KB pieces: the piece grows until the record ends."""
    note = "\n".join(f"linje {i} af en lang journalnote" for i in range(700))
    rows = [f'{i};"kort {i}"' for i in range(3000)]
    rows[1500] = f'1500;"{note}"'
    path = tmp_path / "journal.csv"
    path.write_text("id;note\n" + "\n".join(rows) + "\n", encoding="utf-8")
    whole, pieces = _both(path, {}, 4096)
    got = pl.concat(pieces)
    assert got.equals(whole)
    assert got.filter(pl.col("id") == "1500")["note"].item() == note
    assert got["_source_row"][-1] == 3000 + 700  # the note's line breaks count as lines


def test_trailing_blank_lines_longer_than_a_piece(tmp_path: Path) -> None:
    path = tmp_path / "blanks.csv"
    path.write_bytes(b"id;x\n" + b"".join(b"%d;a\n" % i for i in range(2000)) + b" \r\n\t\n" * 3000)
    whole, pieces = _both(path, {}, 4096)
    got = pl.concat(pieces)
    assert got.equals(whole) and got.height == 2000


@pytest.mark.parametrize("header", ["Bemærkning", '"Bemærkning; intern"'])
def test_a_one_column_file_is_one_column_in_every_piece(tmp_path: Path, header: str) -> None:
    # The delimiter is decided once, from the header: a piece whose notes hold `;`, `,`,
    # `|` or a tab reads them as text, as the whole file does (a `;` inside the header's
    # quotes is text too).
    notes = [f"Note {i}; ring tilbage" if i % 7 else f"Note {i}, a | b\tc" for i in range(3000)]
    path = tmp_path / "noter.csv"
    path.write_bytes((header + "\r\n" + "\r\n".join(notes) + "\r\n").encode("cp1252"))
    whole, pieces = _both(path, {}, 4096)
    assert len(pieces) > 5
    got = pl.concat(pieces)
    assert got.equals(whole) and got.columns == [header.strip('"'), "_source_row"]
    assert got[header.strip('"')].to_list() == notes


@pytest.mark.parametrize("title", ["", "Udtræk 2026\n"])
def test_a_trailing_delimiter_on_the_header_alone_in_pieces(tmp_path: Path, title: str) -> None:
    options = {"header_row": title.count("\n")}
    rows = [f"{i:05d};navn {i};1,5" for i in range(3000)]
    path = tmp_path / "trailing.csv"
    path.write_text(title + "Id;Navn;Belob;\n" + "\n".join(rows) + "\n", encoding="utf-8")
    whole, pieces = _both(path, options, 4096)
    assert len(pieces) > 5
    got = pl.concat(pieces)
    assert got.equals(whole) and got.columns == ["Id", "Navn", "Belob", "_source_row"]
    assert got.height == 3000
    rows[2500] += ";glemt"  # a value under the header's unnamed field, in a later piece
    path.write_text(title + "Id;Navn;Belob;\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(FormatError) as whole_error:
        read_csv(path.read_bytes(), options, source_name=path.name)
    with pytest.raises(FormatError) as pieces_error:
        list(iter_csv(path, options, source_name=path.name, chunk_bytes=4096))
    line = 2502 + options["header_row"]
    assert whole_error.value.line == pieces_error.value.line == line
    # The hint names the file's header line, not the copy in front of the piece.
    assert str(whole_error.value) == str(pieces_error.value)


def _ascii_then_cp1252(ascii_rows: int, danish_rows: int) -> str:
    rows = [f"{i};Hansen Jensen;12,5" for i in range(ascii_rows)]
    rows += [f"{i};Søren Ærø;12,5" for i in range(ascii_rows, ascii_rows + danish_rows)]
    return "id;navn;beloeb\r\n" + "\r\n".join(rows) + "\r\n"  # an ASCII header


def test_an_ascii_start_does_not_decide_the_encoding(tmp_path: Path) -> None:
    """Only later pieces hold æøå: the encoding is detected from the first that does."""
    path = tmp_path / "sen.csv"
    path.write_bytes(_ascii_then_cp1252(600, 200).encode("cp1252"))
    whole, pieces = _both(path, {}, 4096)
    assert len(pieces) > 3
    got = pl.concat(pieces)
    assert got.equals(whole)
    assert got["navn"][-1] == "Søren Ærø"


def test_a_later_piece_in_another_encoding_names_the_files_offset(tmp_path: Path) -> None:
    text = _ascii_then_cp1252(600, 200)
    cut = text.index("Søren")
    # UTF-8 with an å in the first piece, cp1252 from the first Søren on.
    data = text[:cut].replace("Hansen", "Hånsen", 1).encode() + text[cut:].encode("cp1252")
    path = tmp_path / "blandet.csv"
    path.write_bytes(data)
    with pytest.raises(FormatError) as caught:
        list(iter_csv(path, {}, source_name=path.name, chunk_bytes=4096))
    error, offset = caught.value, data.index(b"\xf8")
    assert error.line == data[:offset].count(b"\n") + 1
    assert f"byte 0xf8 at offset {offset} is not valid utf-8" in error.cause
    assert "detected from the start of the file" in error.cause
    assert "`encoding:`" in error.hint


@pytest.mark.parametrize("header", ['Id;Navn;"Beløb\r\n(kr)"', '"Id\r\n(sag)";Navn;Beløb'])
def test_a_header_cell_with_a_line_break_still_cuts_pieces(tmp_path: Path, header: str) -> None:
    # Excel writes a wrapped header cell ("Beløb<Alt+Enter>(kr)") as a quoted line break;
    # counting quotes from inside it, no cut was ever found and the file was one piece. In
    # the first cell, it hid the delimiter from a sniffer reading the first line alone.
    rows = "".join(f"{i:06d};n{i};1,5\r\n" for i in range(3000))
    path = tmp_path / "wrapped.csv"
    path.write_bytes((header + "\r\n" + rows).encode("cp1252"))
    whole, pieces = _both(path, {"encoding": "cp1252"}, 5_000)
    assert len(pieces) > 10
    assert pl.concat(pieces).equals(whole) and len(whole.columns) == 4
    assert "Beløb (kr)" in whole.columns or "Id (sag)" in whole.columns
    assert whole["_source_row"][-1] == 3002  # the header takes two lines
    with path.open("ab") as out:  # an error in a later piece names the file's own line
        out.write(b"999999;x\r\n")
    with pytest.raises(FormatError) as caught:
        list(iter_csv(path, {"encoding": "cp1252"}, source_name="w.csv", chunk_bytes=5_000))
    assert caught.value.line == 3003


def test_one_cp865_letter_in_the_first_piece_decides_the_code_page(tmp_path: Path) -> None:
    # The first piece's only non-ASCII byte is the header's ø (0x9b, › in cp1252): the
    # pieces must settle on cp865, as the whole file does, or reject the first Ø further on.
    text = "Id;Navn;Beløb\n" + "".join(f"{i:06d};HANSEN PETER;1,5\n" for i in range(2000))
    text += "".join(f"{i:06d};ØSTERGÅRD BJØRN;2,5\n" for i in range(2000, 2600))
    path = tmp_path / "big.csv"
    path.write_bytes(text.encode("cp865"))
    whole, pieces = _both(path, {}, 20_000)
    assert len(pieces) > 2 and pl.concat(pieces).equals(whole)
    assert whole["Navn"][-1] == "ØSTERGÅRD BJØRN"


def test_a_wrong_code_page_in_a_later_piece_names_the_line_and_place(tmp_path: Path) -> None:
    body = "".join(f"{i};Hansen {i}\n" for i in range(3000))
    data = ("id;navn\n" + body + "3000;Ærø\n" + body).encode("cp865")
    path = tmp_path / "dos.csv"
    path.write_bytes(data)
    with pytest.raises(FormatError) as caught:
        list(iter_csv(path, {"encoding": "latin-1"}, source_name=path.name, chunk_bytes=4096))
    # cp865's Æ (0x92) is a C1 control in latin-1: named at the file's own line, and its
    # place in that line (a piece's own offset would point nowhere in the file).
    assert caught.value.line == 3002
    assert "byte 0x92 (byte 6 of the line) becomes the control character U+0092" in (
        caught.value.cause
    )


def test_declared_utf16_without_a_bom_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "u16.csv"
    body = "".join(f"{i};Åse {i}\r\n" for i in range(2000))
    path.write_bytes(("id;navn\r\n" + body).encode("utf-16-le"))
    whole, pieces = _both(path, {"encoding": "utf-16-le"}, 4096)
    assert len(pieces) == 1 and pieces[0].equals(whole) and whole.height == 2000


def _records_ndjson(count: int) -> bytes:
    lines = []
    for i in range(count):
        record = {"id": i, "navn": f"Søren {i}"}
        if i % 997 == 0:
            record["note"] = "sjælden"  # a field only a few records have
        lines.append(json.dumps(record, ensure_ascii=False))
        if i % 500 == 0:
            lines.append("")  # blank lines keep their numbers
    return ("\n".join(lines) + "\n").encode()


def _records_xml(count: int) -> bytes:
    records = "".join(
        f'<r id="{i}"><navn>Søren {i}</navn>'
        + ("<note>sjælden</note>" if i % 997 == 0 else "")
        + "</r>\n"
        for i in range(count)
    )
    return f"<?xml version='1.0' encoding='utf-8'?>\n<rs>\n{records}</rs>\n".encode()


@pytest.mark.parametrize(
    ("make", "options"),
    [
        (_records_ndjson, {"type": "ndjson"}),
        (_records_xml, {"type": "xml", "record_path": "rs/r"}),
    ],
)
def test_record_formats_in_pieces_equal_the_whole(make, options, tmp_path: Path) -> None:
    path = tmp_path / "records"
    path.write_bytes(make(20_000))
    whole = read_table(path.read_bytes(), options, source_name="records")
    pieces = list(iter_table(path, options, source_name="records", chunk_bytes=64 * 1024))
    assert len(pieces) > 5
    joined = pl.concat(pieces, how="diagonal_relaxed").select(whole.columns)
    assert_frame_equal(joined, whole)  # the rare field is null where a piece lacks it


def test_a_bad_ndjson_line_in_a_later_piece_names_the_files_line(tmp_path: Path) -> None:
    data = _records_ndjson(20_000).splitlines(keepends=True)
    data[15_000] = b'{"id": 1, "navn": \n'
    path = tmp_path / "records.ndjson"
    path.write_bytes(b"".join(data))
    with pytest.raises(FormatError) as caught:
        list(iter_table(path, {"type": "ndjson"}, source_name="r", chunk_bytes=64 * 1024))
    assert caught.value.line == 15_001


def test_xml_field_names_that_become_one_column_are_refused_across_pieces(tmp_path) -> None:
    # Over a MiB: the XML reader frames records per MiB it parses, whatever chunk_bytes says.
    records = "".join(f"<r><x>{i}</x></r>\n" for i in range(100_000))
    data = (
        "<?xml version='1.0' encoding='utf-8'?>\n<rs>\n<r><\u00e5>1</\u00e5></r>\n"
        + records
        + "<r><a\u030a>3</a\u030a></r>\n</rs>\n"  # the same å, decomposed (macOS tools)
    ).encode()
    path = tmp_path / "n.xml"
    path.write_bytes(data)
    options = {"type": "xml", "record_path": "rs/r"}
    for read in (
        lambda: read_table(data, options, source_name="n.xml"),
        lambda: list(iter_table(path, options, source_name="n.xml", chunk_bytes=4096)),
    ):
        with pytest.raises(FormatError, match="duplicate column names 'å'"):
            read()
