"""CSV reading: encodings, delimiters, quoting, line numbers, trimming and errors."""

from __future__ import annotations

import codecs
import csv
import io
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.formats import FormatError, iter_table, read_table
from connectors.formats.encoding import decode

DANISH = "Søren Østergård;Æblevej 3, 1. tv.;Århus;Bæk;ÆØÅæøå"


def read(data: bytes, **options: Any) -> pl.DataFrame:
    return read_table(data, {"type": "csv", **options}, source_name="export.csv")


def read_error(data: bytes, **options: Any) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read(data, **options)
    assert "\n" not in str(caught.value)
    return caught.value


# --- encodings -------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_single_byte_danish_is_detected_as_a_western_code_page(encoding: str) -> None:
    text = "navn;adresse;by;note;alle\n" + DANISH + "\nJørgen Ødegaard;Færgevej 12;Køge;;x\n"
    data = text.encode(encoding)

    frame = read(data)

    assert frame["navn"].to_list() == ["Søren Østergård", "Jørgen Ødegaard"]
    assert frame["alle"][0] == "ÆØÅæøå"
    # cp1250 would turn ø into ř and å into ĺ: the detection must never go there.
    assert decode(data, None, source_name="x").encoding in {"cp1252", "latin-1", "iso8859-1"}


def test_lowercase_norwegian_cp865_is_detected() -> None:
    # ø, å and æ are 0x9b, 0x86 and 0x91 in cp865: ›, † and ‘ in cp1252, which a general
    # detector took them for.
    data = "Id;Navn;Beløb\n001;Kjøpmann Sørensen;12\n002;Blåbær;3\n".encode("cp865")
    assert read(data)["Navn"].to_list() == ["Kjøpmann Sørensen", "Blåbær"]
    assert decode(data, None, source_name="x").encoding == "cp865"


@pytest.mark.parametrize(
    "text",
    ["Id;Temperatur\n1;20°C\n2;18°C\n", "Vare;Mængde\nLaks;1½ kg\n", "Id;Note\n1;ca. 30°\n"],
    ids=["degrees", "half", "degrees-at-the-end"],
)
@pytest.mark.parametrize("codec", ["cp865", "cp1252"])
def test_degrees_and_fractions_after_a_digit_tell_the_code_page(text: str, codec: str) -> None:
    # cp865's ° (0xf8) is cp1252's ø and its ½ (0xab) cp1252's «: with no æøå beside them,
    # a DOS export's `20°C` was read as `20øC`.
    data = text.encode(codec)
    assert decode(data, None, source_name="x").encoding == codec
    assert read(data).columns[:2] == text.split("\n")[0].split(";")
    assert "\n".join(";".join(row) for row in read(data).drop("_source_row").rows()) in text


NORDIC_WORDS = ["Søren", "Østergade", "Ærø", "Blåbær", "kjøpmann", "å", "ø", "Færgevej", "Bjørn"]
NORDIC_WORDS += ["Håkon", "Tromsø", "Ålesund", "hjemmehjælp", "SØNDERBORG", "Dragør", "fødselsår"]
NAMES = ["René", "Müller", "Göteborg", "Jönsson", "Ängelholm", "Citroën", "Zoë"]
ASCII_WORDS = ["Hansen", "Oslo", "Vej", "sag", "nr.", "1.234,50", "2024-01-31", "kr", "A/S"]
WINDOWS_ONLY = ["–", "€", "“tilbud”", "it’s", "…", "•"]  # cp1252 has them; the others do not


@pytest.mark.parametrize("seed", range(4))
def test_nordic_text_in_each_code_page_is_detected_as_written(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        codec = rng.choice(["cp1252", "latin-1", "cp865"])
        words = NORDIC_WORDS * 2 + NAMES + ASCII_WORDS * 3
        words += WINDOWS_ONLY if codec == "cp1252" else []
        lines = [
            " ".join(rng.choice(words) for _ in range(rng.randint(1, 5)))
            for _ in range(rng.randint(1, 6))
        ]
        text = "\n".join(lines) + "\n"
        if text.isascii():
            continue
        # cp1252 and latin-1 read the same letters alike: the text, not the name, must match.
        assert decode(text.encode(codec), None, source_name="x").text == text, (codec, text)


def test_binary_data_is_not_taken_for_text() -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"id": list(range(2000)), "navn": ["Søren"] * 2000}).write_parquet(buffer)
    error = read_error(buffer.getvalue())
    assert "cannot tell the text encoding" in error.cause and "`encoding:`" in error.hint


def test_cp1252_only_characters_decode() -> None:
    data = "vare;pris\nKaffe – stor;25 €\n“Særtilbud”;10 €\n".encode("cp1252")
    assert read(data)["vare"].to_list() == ["Kaffe – stor", "“Særtilbud”"]


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be"])
def test_byte_order_marks(codec: str) -> None:
    text = "navn\tby\r\nÅse Bæk\tKøge\r\n"
    if codec == "utf-16-le":
        data = b"\xff\xfe" + text.encode(codec)
    elif codec == "utf-16-be":
        data = b"\xfe\xff" + text.encode(codec)
    else:
        data = text.encode(codec)

    frame = read(data)

    assert frame.columns == ["navn", "by", "_source_row"]  # no BOM glued to "navn"
    assert frame.rows() == [("Åse Bæk", "Køge", 2)]


@pytest.mark.parametrize(
    ("bom", "codec", "what", "declared"),
    [
        (codecs.BOM_UTF16_LE, "utf-16-le", "little-endian", "cp1252"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "little-endian", "latin-1"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "little-endian", "cp865"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "big-endian", "cp1252"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "little-endian", "utf-16-be"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "big-endian", "utf-16-le"),
    ],
)
def test_a_utf16_byte_order_mark_contradicting_the_declared_encoding_is_refused(
    bom: bytes, codec: str, what: str, declared: str, tmp_path: Path
) -> None:
    # Excel's "Unicode text" under a YAML written for the old cp1252 export: loaded, it was
    # refused as binary (NUL bytes) or, as the other byte order, read as no rows at all.
    data = bom + "navn;by\r\nÅse Bæk;Køge\r\n".encode(codec)
    expected = (
        f"export.csv: the file starts with a UTF-16 {what} byte-order mark (bytes"
        f" {bom.hex(' ')}) but `encoding` is {declared}. Remove `encoding:` from the dataset"
        " YAML (the mark says the encoding), or set `encoding: utf-16`"
    )
    assert str(read_error(data, encoding=declared, delimiter=";")) == expected
    path = tmp_path / "export.csv"  # read in pieces as a large file is
    path.write_bytes(data)
    options = {"type": "csv", "encoding": declared, "delimiter": ";"}
    with pytest.raises(FormatError) as caught:
        list(iter_table(path, options, source_name="export.csv", chunk_bytes=16))
    assert str(caught.value) == expected
    for right in (codec, "utf-16", None):  # the fixes the message names
        assert read(data, encoding=right, delimiter=";").rows() == [("Åse Bæk", "Køge", 2)]


def test_cp865_when_declared_and_explicit_encoding_wins() -> None:
    data = "navn;by\nÅse Ærø;Ørsted\n".encode("cp865")
    assert read(data, encoding="cp865")["navn"].to_list() == ["Åse Ærø"]
    # Declared wrongly as latin-1, the æøå would become invisible C1 controls: refused.
    error = read_error(data, encoding="latin-1")
    assert "control character U+008F" in str(error) and "cp865" in error.hint
    assert error.line == 2
    # ...as where the bytes do not exist in the declared code page.
    assert "not valid cp1252" in str(read_error(data, encoding="cp1252"))


@pytest.mark.parametrize("word", ["Sæby", "Bjørn", "Håkon", "Bækkelund"])
def test_lower_case_cp865_letters_declared_as_cp1252_are_refused(word: str) -> None:
    # Å and Ø are bytes cp1252 lacks, so a file holding them fails to decode; æ, ø and å
    # are ‘ › † in cp1252, and a file with only those loaded as "S‘by" without a word.
    data = f"id;navn\n1;Ib\n2;{word} Hansen\n".encode("cp865")
    error = read_error(data, encoding="cp1252")
    assert error.line == 3 and "inside a word in cp1252" in error.cause
    assert error.cause.split("in cp865 it is '")[1][:3] in word  # the letters it would be
    assert "`encoding: cp865`" in error.hint
    assert read(data, encoding="cp865")["navn"][1] == f"{word} Hansen"


def test_cp1252_punctuation_beside_words_is_still_read() -> None:
    text = "id;note\n1;‘Særtilbud’ › se side 2 † 2019, „Zitat“ ‚x‘\n2;it’s rock’n’roll\n"
    data = text.encode("cp1252")
    assert read(data, encoding="cp1252")["note"].to_list() == [
        "‘Særtilbud’ › se side 2 † 2019, „Zitat“ ‚x‘",
        "it’s rock’n’roll",
    ]


def test_invalid_bytes_for_the_declared_encoding_name_the_line() -> None:
    data = "navn;by\nA;B\nSøren;Køge\n".encode("cp1252")
    error = read_error(data, encoding="utf-8")
    assert error.line == 3
    assert "export.csv, line 3:" in str(error)
    assert "`encoding:`" in str(error)


def test_mostly_utf8_with_a_stray_byte_is_an_error_not_mojibake() -> None:
    data = "navn;by\nSøren;Køge\nÅse;Ærø\n".encode() + b"J\xf8rgen;Vejle\n"
    error = read_error(data)
    assert error.line == 4
    assert "mixed encodings" in str(error)


def test_unknown_encoding_name() -> None:
    assert "unknown encoding" in str(read_error(b"a\n1\n", encoding="utf8-lossy"))


# --- delimiters --------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_delimiter_is_sniffed_from_the_header(delimiter: str) -> None:
    data = delimiter.join(["id", "navn", "beløb"]) + "\n" + delimiter.join(["1", "Bo", "12"])
    assert read(data.encode()).rows() == [("1", "Bo", "12", 2)]


def test_sniffing_ignores_delimiters_inside_quoted_headers_and_prefers_semicolon_on_ties() -> None:
    data = 'navn;"beløb, kr."\n"Hansen, Jens";1,5\n'.encode()
    assert read(data).columns == ["navn", "beløb, kr.", "_source_row"]
    tie = "navn, fornavn;by\nHansen, Jens;Køge\n".encode()
    assert read(tie).rows() == [("Hansen, Jens", "Køge", 2)]


@pytest.mark.parametrize(
    "header",
    ['"Sag\r\nnr";"Navn";"Beløb"', '"Sag\nnr";Navn;Beløb', '"Sag\n(nr, løbe-)\nnummer";Navn;Beløb'],
)
def test_a_line_break_in_the_first_header_cell_does_not_hide_the_delimiter(header: str) -> None:
    # Sniffed from the first physical line (`"Sag`), the header had no delimiter: one column
    # of "0;Bo;12,50" values, or a stray-quote error, instead of three columns.
    data = (header + "\r\n0;Bo;12,50\r\n1;Åse;3\r\n").encode("cp1252")
    frame = read(data)
    lines = header.count("\n")
    assert frame.columns[1:] == ["Navn", "Beløb", "_source_row"]
    assert frame.rows() == [("0", "Bo", "12,50", 2 + lines), ("1", "Åse", "3", 3 + lines)]


def test_explicit_delimiter_wins_and_backslash_t_means_tab() -> None:
    data = b"a;b\tc\n1;2\t3\n"
    assert read(data, delimiter="\\t").rows() == [("1;2", "3", 2)]
    assert read(data, delimiter=";").rows() == [("1", "2\t3", 2)]


def _notes(count: int, **values: str) -> list[str]:
    """`count` note rows, with the rows named `row_<index>` replaced by their value."""
    rows = [f"Note {i}" for i in range(count)]
    for key, value in values.items():
        rows[int(key.removeprefix("row_"))] = value
    return rows


def test_a_header_without_a_delimiter_is_one_column_whatever_its_values_hold() -> None:
    # Past the rows a sniffer samples, a note with a `;` rejected the whole file.
    rows = _notes(30, row_25="Ring tilbage; borger ikke hjemme", row_27="a, b | c\td")
    rows[28] = '"citeret; med\nlinjeskift"'
    frame = read(("Bemærkning\n" + "\n".join(rows) + "\n").encode())
    assert frame.columns == ["Bemærkning", "_source_row"]
    assert frame.height == 30
    assert frame.row(25) == ("Ring tilbage; borger ikke hjemme", 27)
    assert frame.row(27) == ("a, b | c\td", 29)
    assert frame.row(28) == ("citeret; med\nlinjeskift", 30)
    assert frame["_source_row"][-1] == 32  # the quoted line break counts as a line


def test_one_column_values_may_hold_a_delimiter_in_every_row() -> None:
    data = "Navn\r\nHansen, Jens\r\nSørensen, Åse\r\n".encode("cp1252")
    assert read(data).rows() == [("Hansen, Jens", 2), ("Sørensen, Åse", 3)]


def test_a_header_with_a_delimiter_is_still_sniffed_whatever_the_rows_hold() -> None:
    rows = [f"{i},Bo;Åse" for i in range(30)]
    data = ("id,navn\n" + "\n".join(rows) + "\n").encode()
    assert read(data).row(-1) == ("29", "Bo;Åse", 31)


def test_a_header_of_one_quoted_field_holding_a_delimiter_is_one_column() -> None:
    # A `;` inside quotes is text, so the header names one column: a later row holding the
    # delimiter the sampled rows lacked was a second field, refusing the whole file.
    rows = _notes(30, row_25="Ring tilbage, borger; ikke hjemme")
    frame = read(('"Bemærkning; intern"\n' + "\n".join(rows) + "\n").encode())
    assert frame.columns == ["Bemærkning; intern", "_source_row"]
    assert frame.height == 30
    assert frame.row(25) == ("Ring tilbage, borger; ikke hjemme", 27)
    # A one-column export whose rows hold every candidate, the header quoted for its `,`.
    values = ["Hansen, Jens", "Bo; Ib", "a\tb", "x | y"]
    data = ('"Navn, fornavn"\r\n' + "\r\n".join(values) + "\r\n").encode("cp1252")
    assert read(data).rows() == [(value, line) for line, value in enumerate(values, 2)]


# --- quoting, line numbers, record counts -----------------------------------------------


def test_quoted_newlines_and_delimiters_keep_records_and_line_numbers() -> None:
    data = (
        "id;tekst;beløb\r\n"
        '1;"første linje\r\nanden linje; med semikolon";10\r\n'
        '2;"citat: ""hej""";20\r\n'
        '3;"tre\nlinjer\nher";30\r\n'
        "4;slut;40\r\n"
    ).encode()

    frame = read(data)

    assert frame["id"].to_list() == ["1", "2", "3", "4"]
    assert frame["_source_row"].to_list() == [2, 4, 5, 8]
    assert frame["tekst"][0] == "første linje\r\nanden linje; med semikolon"
    assert frame["tekst"][1] == 'citat: "hej"'


def test_record_count_and_lines_reconcile_with_the_stdlib_on_a_larger_file() -> None:
    rng = random.Random(7)
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["id", "navn", "note"])
    for i in range(20_000):
        note = rng.choice(["", "kort", "to\nlinjer", 'med "citat"', "a;b", "x\r\ny\nz"])
        writer.writerow([i, rng.choice(["Søren", "Åse", "Bo"]), note])
    data = out.getvalue().encode("utf-8")

    reader = csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=";")
    next(reader)
    expected_lines, start = [], reader.line_num + 1
    for _row in reader:
        expected_lines.append(start)
        start = reader.line_num + 1

    frame = read(data)

    assert frame.height == 20_000
    assert frame["_source_row"].to_list() == expected_lines
    assert frame["id"].to_list() == [str(i) for i in range(20_000)]


def test_every_column_is_text_stripped_with_empty_as_null_and_blank_lines_dropped() -> None:
    data = b'id; navn ;beloeb\n\n 007 ;  Bo  ;\n   \n;;\n2;"";1.50\n\n'
    frame = read(data)
    assert frame.columns == ["id", "navn", "beloeb", "_source_row"]
    assert frame.schema == {
        "id": pl.String,
        "navn": pl.String,
        "beloeb": pl.String,
        "_source_row": pl.Int64,
    }
    assert frame.rows() == [("007", "Bo", None, 3), ("2", None, "1.50", 6)]


def test_quote_can_be_changed_or_switched_off() -> None:
    assert read(b"a;b\n'x;y';z\n", quote="'").rows() == [("x;y", "z", 2)]
    assert read(b'a;b\n"x;"\n', quote=None).rows() == [('"x', '"', 2)]


# --- header, footers, totals ------------------------------------------------------------


def test_header_row_skips_title_lines_and_line_numbers_stay_physical() -> None:
    data = (
        'Borgere med "hjemmehjælp"; udtræk\nKørt 2026-01-31\n\ncpr;navn\n0101901234;Åse\n'
    ).encode()
    frame = read(data, header_row=3)
    assert frame.rows() == [("0101901234", "Åse", 5)]


@pytest.mark.parametrize(
    ("above", "header_row"),
    [("Udtræk fra Sag 2026-01-01\n", 1), ("Udtræk fra Sag 2026-01-01\n\n", 2)],
    ids=["title", "title-and-blank-line"],
)
def test_a_title_read_as_the_header_points_at_header_row(above: str, header_row: int) -> None:
    data = f"{above}id;navn;by\n1;Bo;Køge\n2;Åse;Ry\n".encode()
    error = read_error(data, delimiter=";")
    assert str(error) == (
        f"export.csv, line {header_row + 1}: the row has 3 fields but the header (line 1) has"
        f" 1; 2 more rows differ. The header (line 1) holds one value, probably a title above"
        f" the column names: if line {header_row + 1} holds them, set `header_row:"
        f" {header_row}` (0-based) under `format:` in the dataset YAML"
    )
    # What the hint says to set reads the file.
    assert read(data, delimiter=";", header_row=header_row)["navn"].to_list() == ["Bo", "Åse"]


def test_a_title_and_a_date_read_as_the_header_points_at_header_row() -> None:
    # Two cells above the column names got the delimiter hint, as if the rows were wrong.
    data = "Udtræk fra Sag;2026-01-01\nid;navn;by\n1;Bo;Køge\n2;Åse;Ry\n".encode()
    error = read_error(data)
    assert error.line == 2
    assert error.hint == (
        "The header (line 1) holds 2 values, fewer than any row, probably a title above the"
        " column names: if line 2 holds them, set `header_row: 1` (0-based) under `format:`"
        " in the dataset YAML"
    )
    assert read(data, header_row=1)["navn"].to_list() == ["Bo", "Åse"]
    # A header wider than some row is no title: the rows are what to check.
    assert "header_row" not in read_error(b"id;navn\n1;Bo;x\n2;Aa\n").hint


def test_a_one_column_header_over_a_narrower_row_keeps_the_delimiter_hint() -> None:
    # A row wider than a one-value header further down is no header: no header_row hint.
    error = read_error(b"id\n1\n2\n3;4\n", delimiter=";")
    assert "header_row" not in str(error) and "Check the delimiter" in str(error)


@pytest.mark.parametrize(
    ("first_line", "encoding"),
    [("sep=;", "cp1252"), ('"sep=;"', "utf-8-sig"), ("SEP=;", "utf-16")],
)
def test_excels_sep_line_names_the_delimiter_and_is_not_the_header(
    first_line: str, encoding: str
) -> None:
    # Exporters targeting Excel write `sep=;` first; Excel reads the next line as the header.
    data = f"{first_line}\r\nId;Navn;Beløb\r\n1;Åse;12,50\r\n2;Bo, Jr.;7\r\n".encode(encoding)
    frame = read(data)
    assert frame.columns == ["Id", "Navn", "Beløb", "_source_row"]
    assert frame.rows() == [("1", "Åse", "12,50", 3), ("2", "Bo, Jr.", "7", 4)]


def test_excels_text_protection_reads_as_the_text_inside() -> None:
    # `="0800"` makes Excel show the text 0800, not the number 800; read as it stands, the
    # postcode was `="0800"` in silver and matched nothing.
    data = (
        'Postnr;Navn;Note\r\n="0800";="Bo ""Ib"" Hansen";=SUM(A1)\r\n2100;Åse;"=""x"""\r\n'
    ).encode("cp1252")
    assert read(data).rows() == [
        ("0800", 'Bo "Ib" Hansen', "=SUM(A1)", 2),
        ("2100", "Åse", "x", 3),  # quoted, it is still a formula to Excel
    ]


def test_a_sep_line_and_the_yamls_options() -> None:
    data = b"sep=,\ntitel\nId;Navn\n1;2\n"
    # A set delimiter wins; a set header_row counts the sep= line as a line of the file.
    assert read(data, delimiter=";", header_row=2).rows() == [("1", "2", 4)]


def test_total_rows_dropped_by_pattern_and_footer_rows_by_count() -> None:
    data = (
        "område;antal\n"
        "Indre By;10\n"
        "Østerbro;20\n"
        "I alt;30\n"
        "\n"
        "Kilde: Københavns Kommune\n"
        "Udtrukket 2026-01-31; kl. 10:00; af system X\n"
    ).encode()

    frame = read(data, skip_rows_matching="^(I alt|Total)", skip_footer_rows=2)

    assert frame.rows() == [("Indre By", "10", 2), ("Østerbro", "20", 3)]


def test_a_footer_that_is_not_skipped_is_a_ragged_row_with_a_hint() -> None:
    error = read_error(b"a;b\n1;2\nKilde: DST\n")
    assert error.line == 3
    assert "skip_footer_rows" in str(error)


def test_header_row_beyond_the_file() -> None:
    assert "`header_row` is 5" in str(read_error(b"a;b\n1;2\n", header_row=5))


def test_duplicate_headers_are_named() -> None:
    error = read_error(b"id;navn;Navn;navn ;id\n1;2;3;4;5\n")
    assert "'id'" in str(error) and "'navn'" in str(error) and "'Navn'" not in str(error)
    assert error.line == 1


def test_trailing_delimiter_column_without_header_or_values_is_dropped() -> None:
    assert read(b"a;b;\n1;2;\n").columns == ["a", "b", "_source_row"]
    error = read_error(b"a;b;\n1;2;3\n")
    assert "column 3 has values" in str(error)


def test_a_trailing_delimiter_on_the_header_alone_adds_no_column() -> None:
    data = b"Id;Navn;Belob;Dato;\r\n001;a;1;01-02-2024\r\n002;b;2;02-02-2024;\r\n"
    frame = read(data)
    assert frame.columns == ["Id", "Navn", "Belob", "Dato", "_source_row"]
    assert frame.rows() == [("001", "a", "1", "01-02-2024", 2), ("002", "b", "2", "02-02-2024", 3)]


def test_a_value_under_the_headers_trailing_delimiter_is_refused_at_its_line() -> None:
    error = read_error(b"Id;Navn;\n1;a\n2;b\n3;c;glemt\n4;d\n")
    assert error.line == 4
    assert error.cause == "column 3 has values but no header text"


def test_a_row_short_of_the_named_columns_is_still_ragged() -> None:
    error = read_error(b"Id;Navn;Belob;\n1;a;1\n2;b\n")
    assert error.line == 3
    assert error.cause == (
        "the row has 2 fields but the header (line 1) has 3 named and 1 unnamed after them"
    )


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "line", "fields"),
    [
        (b"a;b;c\n1;2;3\n4;5;6;7\n8;9;10\n", 3, 4),
        (b"a;b;c\n1;2;3\n4;5\n8;9;10\n", 3, 2),
        (b'a;b;c\n1;"x\ny";3\n4;5\n8;9;10\n', 4, 2),
    ],
)
def test_ragged_rows_are_errors_with_their_line(data: bytes, line: int, fields: int) -> None:
    error = read_error(data)
    assert error.line == line
    assert str(error).startswith(f"export.csv, line {line}: the row has {fields} field")
    assert "delimiter (read as `;`; `delimiter:` in the dataset YAML sets it)" in error.hint


def test_malformed_quoting_is_located_by_line() -> None:
    rows = "".join(f"{i};tekst {i};{i}\n" for i in range(1, 500))
    data = ("id;tekst;n\n" + rows + '500;"citat" efter;1\n' + rows).encode()
    error = read_error(data)
    assert error.line == 501
    assert "quot" in str(error)


def test_unbalanced_quote_is_an_error_not_a_swallowed_file() -> None:
    error = read_error(b'a;b;c\n1;"x;3\n4;5;6\n7;8;9\n')
    assert error.line == 2


def test_empty_file_and_empty_header() -> None:
    assert "empty" in str(read_error(b""))
    assert "empty" in str(read_error(b"\n\na;b\n"))


def test_only_a_header_gives_no_rows_but_the_columns() -> None:
    frame = read(b"a;b\r\n")
    assert frame.columns == ["a", "b", "_source_row"] and frame.height == 0


@pytest.mark.parametrize(
    "options",
    [{"delimeter": ";"}, {"header_row": -1}, {"header_row": True}, {"delimiter": ";;"}],
)
def test_bad_options_are_errors(options: dict[str, Any]) -> None:
    error = read_error(b"a;b\n1;2\n", **options)
    assert "dataset YAML" in str(error)


# --- probe findings: long fields, UTF-16 without BOM, NUL, stray quotes, totals, mojibake --


def test_a_field_longer_than_the_csv_modules_default_limit_is_read() -> None:
    big = "x" * 200_000
    plain = f"id;navn;beloeb\n1;{big};1\n".encode()
    quoted = f'id;navn;beloeb\n1;"{big}\nmere";1\n'.encode()  # a quoted line break
    assert read(plain)["navn"][0] == big
    assert read(quoted, delimiter=";")["navn"][0] == big + "\nmere"
    assert read(quoted)["navn"][0] == big + "\nmere"


def test_a_bare_carriage_return_in_a_record_scan_is_named() -> None:
    error = read_error(b'a;b\n"x\ny";1\n1\r2;3\n')
    assert error.line == 4
    assert "carriage return" in error.hint


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_named_and_reads_when_declared(codec: str) -> None:
    data = "id;navn;by\r\n1;Søren;Køge\r\n2;Åse;Ry\r\n".encode(codec)
    error = read_error(data)
    assert f"looks like {codec.upper()} without a byte-order mark" in str(error)
    assert f"`encoding: {codec}`" in error.hint
    assert "\x00" not in str(error)
    assert read(data, encoding=codec)["navn"].to_list() == ["Søren", "Åse"]


def test_mac_roman_is_named_and_reads_when_declared() -> None:
    # Excel for Mac's "CSV (Macintosh)": the message said "is this really a text file?".
    data = "id;navn;by\n1;Søren Ærø;Århus\n2;Åse;Ry\n".encode("mac_roman")
    error = read_error(data)
    assert "Mac Roman" in error.cause and "`encoding: mac_roman`" in error.hint
    assert read(data, encoding="mac_roman")["navn"].to_list() == ["Søren Ærø", "Åse"]


def test_a_nul_byte_is_not_text() -> None:
    error = read_error("id;navn\n1;Ib\n2;Å\x00se\n".encode())
    assert error.line == 3
    assert "NUL byte" in error.cause and "corrupt or binary" in error.hint


def test_nul_padding_at_line_ends_and_the_end_of_the_file_is_no_text() -> None:
    # A record buffer or a mainframe transfer pads lines and the file with NULs: refused
    # as binary, though they hold nothing.
    data = "id;navn\x00\x00\r\n1;Ib\x00\r\n2;Åse\n".encode() + b"\x00" * 7
    assert read(data).rows() == [("1", "Ib", 2), ("2", "Åse", 3)]
    assert read_error(b"id;navn\n1;I\x00b\x00\n").line == 2  # inside a value it is no padding


@pytest.mark.parametrize(
    ("data", "line"),
    [
        ('id;navn;n\n1;Ib;1\n2;5" skærm;1\n'.encode(), 3),  # inside an unquoted field
        (b'"id" ;"navn";n\n1;S;1\n', 1),  # a blank after the closing quote, in the header
        (b'id;navn;n\n1;"ab"c;1\n2;x;1\n', 2),  # text after the closing quote
    ],
)
def test_a_stray_quote_is_named_with_its_line(data: bytes, line: int) -> None:
    error = read_error(data)
    assert error.line == line
    assert 'a quote character (") appears inside an unquoted field' in error.cause
    assert '`quote: ""`' in error.hint
    assert "chunk" not in str(error) and "offset" not in str(error)
    # A file that really uses no quoting reads once quoting is off.
    assert read(data, quote="").height >= 1


@pytest.mark.parametrize(
    ("data", "line"),
    [
        # An exporter that quotes every field but does not double the quotes inside one:
        # polars read these as `Sagt nej tak` and `Sagt nej`, the quotes gone without a word.
        (b'"id";"note";"n"\r\n"1";"Sagt "nej" tak";"1"\r\n', 2),
        (b'"id";"note";"n"\r\n"1";"ok";"1"\r\n"2";"Sagt "nej"";"1"\r\n', 3),
        # The same in a file with a quoted line break, which the csv module scans.
        (b'id;note;n\n1;"to\nlinjer";1\n2;"Sagt "nej" tak";1\n', 4),
    ],
)
def test_text_after_a_closing_quote_is_refused_not_read_without_the_quotes(
    data: bytes, line: int
) -> None:
    error = read_error(data)
    assert error.line == line
    assert "after a closing quote" in error.cause
    # Quotes doubled as they should be read as the text.
    fixed = data.replace(b'"Sagt "nej" tak"', b'"Sagt ""nej"" tak"')
    fixed = fixed.replace(b'"Sagt "nej""', b'"Sagt ""nej"""')
    assert 'Sagt "nej"' in read(fixed)["note"].to_list()[-1]


def test_a_repeated_header_is_refused_with_the_pattern_that_skips_it() -> None:
    # A report export repeats the column names after each page break: with text columns
    # the repeat loaded as a row of data.
    data = "Sags nr.;Navn\n1;Bo\n2;Åse\nSags nr.;Navn\n3;Ib\n".encode()
    error = read_error(data)
    assert error.line == 4
    assert error.cause == (
        "the line repeats the header, as a report export writes it after each page break"
    )
    pattern = "^Sags\\ nr\\.$"
    assert f"`skip_rows_matching: '{pattern}'`" in error.hint
    frame = read(data, skip_rows_matching=pattern)
    assert frame.select("Sags nr.", "_source_row").rows() == [("1", 2), ("2", 3), ("3", 5)]
    # One value equal to its column's name is data.
    assert read(b"type;navn\ntype;Bo\n").height == 1


def test_column_names_in_another_order_are_refused_even_where_a_pattern_skips_them(
    tmp_path: Path,
) -> None:
    # Two exports appended, the second with two columns swapped: its rows were read under
    # the first header, each amount loaded as a count and each count as an amount, and
    # the pattern a repeated header is pointed to (`^ID$`) skipped the names' row silently.
    data = b"ID;Navn;Beloeb;Antal\n1;Bo;12,5;3\nID;Navn;Antal;Beloeb\n2;Ib;4;7,5\n"
    for options in ({}, {"skip_rows_matching": "^ID$"}):
        error = read_error(data, **options)
        assert error.line == 3
        assert error.cause == (
            "the line holds the column names in another order ('Antal' where the header has"
            " 'Beloeb'): a second export with its columns ordered differently was appended,"
            " and the lines below it would load under the wrong names"
        )
        assert error.hint == "Ask for the exports as separate files, each read by its own header"
    # In pieces too, the names' row far down a large file.
    rows = b"".join(b"%d;Bo;12,5;3\n" % i for i in range(3000))
    path = tmp_path / "export.csv"
    path.write_bytes(b"ID;Navn;Beloeb;Antal\n" + rows + b" ID ; Navn;Antal;Beloeb\n2;Ib;4;7,5\n")
    options = {"type": "csv", "skip_rows_matching": "^ID$"}
    with pytest.raises(FormatError) as caught:
        list(iter_table(path, options, source_name="e.csv", chunk_bytes=4096))
    assert caught.value.line == 3002
    # Values that are only some of the names, or a name in its own column, are data.
    assert read(b"type;navn\nnavn;Bo\n").height == 1
    assert read(b"a;b;c\nb;a;x\n").height == 1


def test_a_blank_before_an_opening_quote_still_opens_a_quoted_field() -> None:
    # `1; "Bo; Ib"` was three fields (the row refused as too wide), and `2; "Bo"` the value
    # `"Bo"`, quotes and all.
    data = 'id; navn; n\r\n1; "Bo; Ib"; 2\r\n2;  "Bo";3\r\n3; "to\r\nlinjer"; 4\r\n4;Ib; "5"\r\n'
    frame = read(data.encode())
    assert frame.rows() == [
        ("1", "Bo; Ib", "2", 2),
        ("2", "Bo", "3", 3),
        ("3", "to\r\nlinjer", "4", 4),
        ("4", "Ib", "5", 6),  # line numbers stay the file's
    ]
    # Such text inside a quoted field is the field's own.
    assert read(b'id;note\n1;"a; ""b"""\n')["note"].to_list() == ['a; "b"']


TOTALS = "(?i)^(i alt|total)"


def test_a_total_in_any_column_is_skipped() -> None:
    data = "id;navn;beløb;dato\n1;Søren;12,5;01-02-2024\n2;Åse;1;15-12-2023\n;I alt;13,5;\n"
    frame = read(data.encode(), skip_rows_matching=TOTALS)
    assert frame["id"].to_list() == ["1", "2"]


def test_short_subtotal_rows_are_skipped_before_the_width_check() -> None:
    data = (
        'id;navn;beløb;dato\n1;"S\nx";1;01-02-2024\nI alt;1\n2;B;2;01-02-2024\n'
        '"I alt\nfor B";2\n3;C;3;01-03-2024\n'
    )
    frame = read(data.encode(), skip_rows_matching=TOTALS)
    assert frame.select("id", "navn", "_source_row").rows() == [
        ("1", "S\nx", 2),
        ("2", "B", 5),
        ("3", "C", 8),  # line numbers stay the file's own
    ]
    # A short row that does not match is still refused, on its own line.
    error = read_error((data + "4;D\n").encode(), skip_rows_matching=TOTALS)
    assert error.line == 9 and "the row has 2 fields" in error.cause


def test_skipped_rows_are_counted_on_every_path(tmp_path: Path) -> None:
    # The rows `skip_rows_matching` leaves out are in no frame: the caller is told how many,
    # for the load's record. Plain (fast path), ragged subtotals (general path), and a large
    # file read in pieces all count.
    def counted(data: bytes, **options: Any) -> tuple[int, list[str]]:
        skipped: list[int] = []
        frame = read_table(
            data,
            {"type": "csv", "skip_rows_matching": "^I alt$", **options},
            source_name="export.csv",
            count_skipped=skipped.append,
        )
        return sum(skipped), frame["a"].to_list()

    assert counted(b"a;b\n1;2\nI alt;3\n") == (1, ["1"])
    assert counted(b'a;b\n1;2\nI alt\n"x";y\nI alt;;\n') == (2, ["1", "x"])
    rows = b"".join(b"%d;%d\nI alt;%d\n" % (i, i, i) for i in range(400))
    path = tmp_path / "export.csv"
    path.write_bytes(b"a;b\n" + rows)
    skipped: list[int] = []
    options = {"type": "csv", "skip_rows_matching": "^I alt$"}
    frames = list(
        iter_table(path, options, source_name="x", chunk_bytes=512, count_skipped=skipped.append)
    )
    assert len(frames) > 3 and sum(f.height for f in frames) == 400 and sum(skipped) == 400


def test_empty_fields_never_match_the_skip_pattern() -> None:
    frame = read(b"a;b\n1;\n2;x\n", skip_rows_matching="^$|^x$")
    assert frame["a"].to_list() == ["1"]


def test_a_bad_skip_pattern_names_only_the_pattern_and_the_regex_error() -> None:
    error = read_error(b"a;b\n1;2\n", skip_rows_matching="(I alt")
    assert error.cause == "`skip_rows_matching` '(I alt' is not a valid regular expression" + (
        " (unclosed group)"
    )
    assert "col(" not in str(error)


def test_utf8_declared_as_a_single_byte_code_page_is_refused() -> None:
    data = "id;navn\n1;Søren Æbelø\n".encode()
    error = read_error(data, encoding="cp1252")
    assert "`encoding` is cp1252 but the file is UTF-8" in error.cause
    assert "`encoding: utf-8`" in error.hint


def test_c1_controls_from_a_wrong_latin1_declaration_are_refused() -> None:
    data = "id;vare\n1;Kaffe\n2;Kage 25 €\n".encode("cp1252")  # € is 0x80
    error = read_error(data, encoding="latin-1")
    assert error.line == 3 and "U+0080" in error.cause and "cp1252" in error.hint
    assert read(data, encoding="cp1252")["vare"][1] == "Kage 25 €"


def test_box_drawing_from_a_wrong_cp865_declaration_is_refused() -> None:
    data = "id;navn\n1;Søren\n2;Ærø\n".encode("latin-1")  # Æ is 0xc6: ╞ in cp865
    error = read_error(data, encoding="cp865")
    assert error.line == 3 and "'╞' in cp865" in error.cause
    assert read(data, encoding="latin-1")["navn"].to_list() == ["Søren", "Ærø"]
    assert read("id;navn\n1;Ærø\n".encode("cp865"), encoding="cp865")["navn"][0] == "Ærø"


def test_a_header_that_looks_like_data_says_so() -> None:
    error = read_error(b"1;S;1;01-02-2024\n2;B;2;01-02-2024\n")
    assert error.line == 1
    assert "looks like data, not column names" in error.cause
    assert "header_row" in error.hint


def test_headers_are_nfc_normalised() -> None:
    # macOS tools write "å" as "a" plus a combining ring: it looks the same as the YAML's key.
    decomposed = "Dato for a\u030ar;Beløb\n01-02-2026;12\n".encode()
    assert read(decomposed).columns == ["Dato for år", "Beløb", "_source_row"]


@pytest.mark.parametrize("invisible", ["\ufeff", "\u200b", "\u2060", "\u00ad"])
def test_invisible_characters_in_a_header_name_are_dropped(invisible: str) -> None:
    # Two exports joined into one (each with its BOM), or a name copied from a web page,
    # leave a zero-width character in a header: it looks like `CPR` in every message but
    # never matches the YAML's `CPR`, so the file was rejected for a column it has.
    data = f"Id;{invisible}CPR;Navn{invisible}\n1;0101801234;Bo\n".encode()
    assert read(data).columns == ["Id", "CPR", "Navn", "_source_row"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_a_byte_order_mark_where_two_exports_were_joined_is_no_part_of_a_value(
    encoding: str,
) -> None:
    # `cat januar.csv februar.csv` with header-less parts: the second part's BOM started the
    # key of its first row, which loaded as `\ufeff3`, looking like 3 but matching nothing.
    first = "Id;Navn\r\n1;Åse\r\n2;Bo\r\n".encode(encoding)
    second = "3;Ib\r\n4;Eva\r\n".encode(encoding)  # utf-16 writes a BOM before each part
    data = first + (codecs.BOM_UTF8 + second if encoding == "utf-8" else second)
    frame = read(data)
    assert frame["Id"].to_list() == ["1", "2", "3", "4"]
    assert frame["_source_row"].to_list() == [2, 3, 4, 5]


@pytest.mark.parametrize(
    "data",
    [
        b"Id\n001\r002\n003\n",  # one column: 001 and 002 became one value, a row lost
        b"Id;Navn\r\n001;a\r\n002;b\r003;c\r\n",  # refused for its field count, not the CR
    ],
)
def test_a_bare_carriage_return_inside_a_line_is_named(data: bytes) -> None:
    error = read_error(data)
    assert "bare carriage return (CR) outside quotes" in error.cause
    assert error.line == data.count(b"\n", 0, data.index(b"\r0")) + 1


def test_a_carriage_return_inside_quotes_is_a_value() -> None:
    frame = read(b'Id;Note\r\n1;"a\rb"\r\n2;c\r\n')
    assert frame["Note"].to_list() == ["a\rb", "c"]


def test_a_dos_end_of_file_mark_ends_the_file(tmp_path: Path) -> None:
    # DOS-era exports end with ^Z (0x1a): read as a last row of one field, it made the whole
    # file ragged ("the row has 1 field but the header has 3"), in every encoding.
    text = "Navn;Beløb;Dato\r\nSøren;12,5;01-02-2024\r\nÅse;3;02.03.2024\r\n"
    for encoding in ("cp865", "cp1252", None):
        options = {} if encoding is None else {"encoding": encoding}
        expected = read(text.encode(encoding or "cp865"), **options)
        for data in (
            text.encode(encoding or "cp865") + b"\x1a",
            text[:-2].encode(encoding or "cp865") + b"\x1a\x1a",
        ):
            assert read(data, **options).equals(expected)
            path = tmp_path / "dos.csv"
            path.write_bytes(data)
            pieces = iter_table(
                path, {"type": "csv", **options}, source_name="dos.csv", chunk_bytes=20
            )
            assert pl.concat(list(pieces)).equals(expected)
