"""JSON and NDJSON reading: record paths, value rendering, positions and errors."""

from __future__ import annotations

import json
import re
from typing import Any

import polars as pl
import pytest

from connectors.formats import FormatError, iter_table, read_table


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


def test_an_object_without_record_path_names_its_arrays_of_records() -> None:
    # An API envelope read without `record_path` said only "e.g. `data.items`".
    data = json.dumps(DOCUMENT, ensure_ascii=False).encode()
    error = read_error(data)
    assert error.cause == "`record_path` '(empty)' leads to an object, not an array of records"
    assert error.hint == (
        "Set `record_path` in the dataset YAML to the array of records: `data.items` holds"
        " 3 objects"
    )
    assert read_error(data, record_path="data").hint.endswith(": `data.items` holds 3 objects")


def test_records_must_be_objects() -> None:
    assert "record 2" in str(read_error(b'[{"a": 1}, [1, 2]]'))


def test_a_table_of_arrays_is_named_as_such() -> None:
    # A header array, then an array per row: the hint said to point `record_path` at the
    # array of records, which the file does not have.
    error = read_error(b'[["cpr", "navn"], ["0101901234", "Bo"]]')
    assert error.cause == "record 1 at `record_path` '(document)' is an array, not an object"
    assert error.hint.startswith("The array looks like a table (an array of column names,")


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


def test_an_ndjson_table_of_arrays_is_named_as_such() -> None:
    # Told only that "each line must hold one JSON object", the sender could not tell
    # what was wrong with a file whose every line is valid JSON.
    error = read_error(b'["cpr", "navn"]\n["0101901234", "Bo"]\n', "ndjson")
    assert error.line == 1
    assert "the line holds an array, not a JSON object" in str(error)
    assert "look like a table (column names on the first line" in str(error)
    later = read_error(b'{"id": 1}\n["2"]\n', "ndjson")  # one stray line is not a table
    assert "Each line must hold one JSON object" in str(later)


@pytest.mark.parametrize("pieces", [False, True], ids=["whole", "pieces"])
def test_an_ndjson_file_cut_off_mid_record_says_so(tmp_path, pieces) -> None:
    # "Fix or remove this line" invited dropping the tail of an interrupted export.
    data = b'{"id": 1, "by": "K\xc3\xb8ge"}\n' * 400 + b'{"id": 401, "by": "K'
    if pieces:
        path = tmp_path / "cut.ndjson"
        path.write_bytes(data)
        with pytest.raises(FormatError) as caught:
            list(iter_table(path, {"type": "ndjson"}, source_name="cut.ndjson", chunk_bytes=4096))
        error = caught.value
    else:
        error = read_error(data, "ndjson")
    assert error.line == 401
    assert "looks cut off" in str(error) and "remove this line" not in str(error)
    # a broken line inside the file is no cut: it keeps the hint to fix it
    inside = read_error(b'{"id": 1\n{"id": 2}\n', "ndjson")
    assert "looks cut off" not in str(inside) and "fix or remove this line" in str(inside)


def test_unknown_json_option() -> None:
    assert "`recordpath`" in str(read_error(b"[]", recordpath="x"))


DEEP = "[" * 1100 + "]" * 1100  # past the ~1000 levels Python's JSON parser recurses to


def test_nesting_past_the_parser_limit_is_a_format_error() -> None:
    error = read_error(f'[{{"id": 1, "dybt": {DEEP}}}]'.encode())
    assert "nested deeper than Python's JSON parser allows" in error.cause
    error = read_error(f'{{"id": 1}}\n{{"id": 2, "dybt": {DEEP}}}\n'.encode(), "ndjson")
    assert error.line == 2
    assert "nested deeper than Python's JSON parser allows" in error.cause


def test_nesting_the_parser_reads_is_kept_as_json_text() -> None:
    nested = "[" * 900 + "]" * 900
    assert read(f'[{{"id": 1, "dybt": {nested}}}]'.encode()).rows() == [("1", nested, 1)]


def test_more_than_5000_keys_is_refused_naming_only_a_few() -> None:
    records = [{"id": i, f"k{i}": 1} for i in range(5_001)]
    error = read_error(json.dumps(records).encode())
    assert error.cause.startswith(
        "the records have more than 5000 different fields (record 5000 adds `k4999`); the first"
        " are `id`, `k0`, `k1`,"
    )
    assert error.cause.endswith("`k8` and 4990 more")
    lines = "\n".join(json.dumps(r) for r in records).encode()
    assert read_error(lines, "ndjson").line == 5000


def test_a_mostly_empty_table_is_refused_before_it_is_built() -> None:
    # 4,000 records with a key of their own each: 16M cells for 8,000 values.
    records = [{"id": i, f"k{i}": 1} for i in range(4_000)]
    error = read_error(json.dumps(records).encode())
    assert error.cause == (
        "the 4000 records have 4001 different fields but only 8000 values in all: as a table"
        " that is 16004000 cells, fewer than 1 in 50 filled"
    )


def test_a_few_keys_in_a_few_records_are_columns() -> None:
    records = [{"id": i, **({f"k{i}": "x"} if i < 3 else {})} for i in range(1_000)]
    frame = read(json.dumps(records).encode())
    assert frame.columns == ["id", "k0", "k1", "k2", "_source_row"]
    assert frame.row(1) == ("1", None, "x", None, 2)
    assert frame["k2"].null_count() == 999


def test_a_value_too_deep_to_write_back_as_json_text_is_a_format_error() -> None:
    from connectors.formats.json import _frame

    deep: list[Any] = []
    for _ in range(5_000):  # built in Python, so no parser limit stopped it
        deep = [deep]
    with pytest.raises(FormatError) as caught:
        _frame([{"id": 1}, {"id": 2, "dybt": deep}], None, "cvr.json")
    assert caught.value.cause.startswith("a value in record 2 is nested deeper than Python's")


def test_a_large_ndjson_with_an_unknown_encoding_is_named(tmp_path) -> None:
    path = tmp_path / "big.ndjson"
    path.write_bytes(b'{"id": 1}\n' * 20_000)
    options = {"type": "ndjson", "encoding": "no-such-codec"}
    with pytest.raises(FormatError, match="no-such-codec"):
        list(iter_table(path, options, source_name="big.ndjson", chunk_bytes=16 * 1024))


@pytest.mark.parametrize(
    ("data", "kind", "cause", "line"),
    [
        (b'[{"a": "ok"}, {"a": "x\\ud800y"}]', "json", "the value of `a` in record 2", None),
        (b'[{"a": {"b": "\\udc00"}}]', "json", "the value of `a` in record 1", None),
        (b'{"a": 1}\n\n{"b\\udc00": 2}\n', "ndjson", "the field name 'b\\udc00'", 3),
    ],
)
def test_a_lone_surrogate_escape_is_refused_naming_where(data, kind, cause, line) -> None:
    # Valid JSON, but no text: polars cannot hold it (it was a UnicodeEncodeError).
    error = read_error(data, kind)
    assert error.cause == (
        f"{cause} holds a lone UTF-16 surrogate (a `\\ud800`-style escape without its pair),"
        " which is not text"
    )
    assert error.line == line


def _pieces(tmp_path, data: bytes, kind: str, **options: Any) -> pl.DataFrame:
    path = tmp_path / f"big.{kind}"
    path.write_bytes(data)
    frames = iter_table(path, {"type": kind, **options}, source_name="cvr.json", chunk_bytes=4096)
    return pl.concat(list(frames), how="diagonal")


NUMBERS = {
    "1e23": "100000000000000000000000",
    "12345678901234567890.0": "12345678901234567890",
    "9007199254740993.0": "9007199254740993",
    "12345678901234.567": "12345678901234.567",
    "0.1234567890123456789": "0.1234567890123456789",
    "1.5e-7": "0.00000015",
    "-0.0": "0",
    "1E400": "1E+400",
}


def test_numbers_keep_the_digits_the_file_has_whole_and_in_pieces(tmp_path) -> None:
    # A float changed them: 1e23 loaded as 99999999999999991611392, 12345678901234.567 as
    # 12345678901234.566, without a word.
    record = "{" + ", ".join(f'"n{i}": {t}' for i, t in enumerate(NUMBERS)) + "}"
    expected = {f"n{i}": shown for i, shown in enumerate(NUMBERS.values())}
    [row] = read(f"[{record}]".encode()).drop("_source_row").to_dicts()
    assert row == expected
    [row] = read(record.encode(), "ndjson").drop("_source_row").to_dicts()
    assert row == expected
    many = ("[" + ", ".join([record] * 400) + "]").encode()
    rows = _pieces(tmp_path, many, "json").drop("_source_row").unique().to_dicts()
    assert rows == [expected]


def test_numbers_inside_objects_and_lists_keep_their_digits_too(tmp_path) -> None:
    # Nested values are kept as JSON text; written through a float, 12345678901234.567
    # inside a list became ...566 and 1.50 became 1.5.
    record = '{"id": 1, "maal": [12345678901234.567, 100, 1.50], "pos": {"x": 1e23}}'
    expected = {
        "id": "1",
        "maal": "[12345678901234.567,100,1.50]",
        "pos": '{"x":1E+23}',
    }
    [row] = read(f"[{record}]".encode()).drop("_source_row").to_dicts()
    assert row == expected
    [row] = read(record.encode(), "ndjson").drop("_source_row").to_dicts()
    assert row == expected
    many = ("[" + ", ".join([record] * 400) + "]").encode()
    assert _pieces(tmp_path, many, "json").drop("_source_row").unique().to_dicts() == [expected]
    for text in expected.values():
        json.loads(text)  # still JSON a reader can parse back


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("kind", ["json", "ndjson", "json in pieces", "ndjson in pieces"])
def test_nan_and_infinity_are_refused_not_loaded(tmp_path, constant: str, kind: str) -> None:
    # Python's parser takes them; JSON has no such values, and they loaded as nan/inf.
    record = f'{{"id": 1, "andel": {constant}}}'
    fine = '{"id": 2, "andel": 0.5}'
    if kind.startswith("ndjson"):
        data = ("\n".join([fine] * 300 + [record]) + "\n").encode()
    else:
        data = ("[" + ", ".join([fine] * 300 + [record]) + "]").encode()
    with pytest.raises(FormatError, match=f"`{constant}` is not a JSON value") as caught:
        if kind.endswith("pieces"):
            _pieces(tmp_path, data, kind.split()[0])
        else:
            read(data, kind)
    if kind.startswith("ndjson"):
        assert caught.value.line == 301


@pytest.mark.parametrize("pieces", [False, True])
def test_a_key_twice_in_one_object_is_refused_not_resolved(tmp_path, pieces: bool) -> None:
    # The parser kept the last value: {"year": 1950, "year": 2100} loaded 2100, and two
    # `items` arrays under a record path lost the first one's records when read whole.
    fine = ", ".join(['{"id": 1, "year": 1950}'] * 300)
    for data in (
        f'[{fine}, {{"year": 1950, "year": 2100}}]'.encode(),
        f'{{"items": [{fine}], "items": [{{"id": 3}}]}}'.encode(),
    ):
        with pytest.raises(FormatError, match="appears twice"):
            if pieces:
                _pieces(tmp_path, data, "json", record_path="items" if b"items" in data else None)
            else:
                read(data, record_path="items" if b"items" in data else None)


@pytest.mark.parametrize(
    ("data", "kind", "encoding", "cause"),
    [
        # Read as declared, these loaded "SÃ¸ren Ã\x86rÃ¸" and "S\x9bren" without a word.
        ('[{"navn": "Søren Ærø"}]'.encode(), "json", "latin-1", "the file is UTF-8"),
        ('{"navn": "Søren"}\n'.encode(), "ndjson", "cp1252", "the file is UTF-8"),
        ('{"navn": "Søren"}\n'.encode("cp865"), "ndjson", "latin-1", "control character"),
    ],
)
def test_a_declared_code_page_that_would_load_mojibake_is_refused(data, kind, encoding, cause):
    assert cause in read_error(data, kind, encoding=encoding).cause


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_mostly_empty_table_is_refused_in_pieces_too(tmp_path, kind: str) -> None:
    # Each piece alone was dense enough: 4,000 records with a key each loaded as 4,001
    # columns in pieces, while the same file read whole was refused.
    records = [f'{{"id{i}": {i}}}' for i in range(4_000)]
    data = ("\n".join(records) if kind == "ndjson" else "[" + ", ".join(records) + "]").encode()
    assert "fewer than 1 in 50 filled" in read_error(data, kind).cause
    with pytest.raises(FormatError, match="fewer than 1 in 50 filled"):
        _pieces(tmp_path, data, kind)


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_dos_end_of_file_mark_ends_the_file_whole_and_in_pieces(tmp_path, kind: str) -> None:
    # DOS-era tools put ^Z (0x1a) after a file's last byte: it was refused as "Extra data"
    # after the document, or as a last NDJSON line that is not JSON.
    records = [{"cvr": str(10_000_000 + n), "navn": f"Bjørn {n} ApS"} for n in range(300)]
    if kind == "json":
        text = json.dumps({"virksomheder": records}, ensure_ascii=False, indent=1)
        options = {"record_path": "virksomheder"}
    else:
        text = "\r\n".join(json.dumps(r, ensure_ascii=False) for r in records)
        options = {}
    expected = read(text.encode("cp1252"), kind, **options)
    assert expected.height == 300
    for data in (text + "\r\n\x1a", text + "\x1a\x1a\x1a"):
        assert read(data.encode("cp1252"), kind, **options).equals(expected)
        assert _pieces(tmp_path, data.encode("cp1252"), kind, **options).equals(expected)
    # Anywhere else ^Z is still not JSON.
    inside = text + "\x1a\r\n"
    assert "line" in str(read_error(inside.encode("cp1252"), kind, **options))
    with pytest.raises(FormatError):
        _pieces(tmp_path, inside.encode("cp1252"), kind, **options)


@pytest.mark.parametrize("data", [b"", b" \r\n\t", b"\xef\xbb\xbf\n"])
def test_an_empty_json_file_says_so(data: bytes) -> None:
    # An export that wrote nothing: named as CSV, XML and fixed width name it, not as a
    # syntax error at "column 1". (An empty NDJSON file is zero records, as `[]` is.)
    error = read_error(data)
    assert error.cause == "the file is empty"


def test_ndjson_with_carriage_return_line_ends_says_so() -> None:
    error = read_error(b'{"cvr": 1}\r{"cvr": 2}\r', "ndjson")
    assert error.line == 1 and "Extra data" in error.cause
    assert "carriage return (CR) only" in error.hint
    # Extra data on an LF line keeps the general hint
    assert "carriage return" not in read_error(b'{"cvr": 1} {"cvr": 2}\n', "ndjson").hint


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_value_over_the_longest_a_column_holds_is_refused_naming_it(
    monkeypatch, kind: str
) -> None:
    # Strings go on through stripping and columns at about nine times their size: a 60 MB
    # one took 590 MB. The limit is lowered here; the malicious-input tests use the real one.
    from connectors.formats import json as json_reader

    monkeypatch.setattr(json_reader, "MAX_VALUE_CHARS", 1_000)
    records = [{"id": 1, "bilag": "x" * 1_000}, {"id": 2, "bilag": "x" * 1_001}]
    data = (json.dumps(records) if kind == "json" else "\n".join(map(json.dumps, records))).encode()
    error = read_error(data, kind)
    assert "record 2: the value of `bilag` is longer than" in str(error)
    assert error.line == (2 if kind == "ndjson" else None)
    assert read(json.dumps(records[:1]).encode())["bilag"].str.len_chars().to_list() == [1_000]


@pytest.mark.parametrize("kind", ["json", "ndjson"])
@pytest.mark.parametrize(
    ("char", "named"),
    [("\ufeff", "U+FEFF there (a byte-order mark"), ("\x1e", "U+001E there (a record separator")],
)
def test_an_invisible_character_that_breaks_the_json_is_named(
    tmp_path, kind: str, char: str, named: str
) -> None:
    # Two exports joined into one, each with its byte-order mark, or JSON text sequences:
    # "Expecting value (column 1)" on a line that showed as `{"cvr": "10000150"}`.
    records = [json.dumps({"cvr": str(10_000_000 + n)}) for n in range(300)]
    records[150] = char + records[150]
    text = ("[" + ",\n".join(records) + "]") if kind == "json" else "\n".join(records)
    data = text.encode("utf-8")
    error = read_error(data, kind)
    assert error.line == 151 and named in str(error)
    with pytest.raises(FormatError, match=re.escape(named)) as caught:
        _pieces(tmp_path, data, kind)
    assert caught.value.line == 151


NESTED = [
    {"sag": "S-1", "Borger": {"cpr": "0101901234", "navn": {"fornavn": "Bo"}}, "tags": ["a"]},
    {"sag": "S-2", "Borger": {"cpr": "0202802345"}, "noter": {}},
]


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_flatten_makes_each_field_of_a_nested_object_a_column(tmp_path, kind) -> None:
    if kind == "json":
        data = json.dumps({"data": NESTED * 200}).encode()  # over 1.5 pieces: streamed
        options: dict[str, Any] = {"record_path": "data"}
    else:
        data = "\n".join(json.dumps(r) for r in NESTED * 200).encode()
        options = {}

    plain = read(data, kind, **options)
    flat = read(data, kind, flatten=True, **options)
    pieces = _pieces(tmp_path, data, kind, flatten=True, **options)  # the streaming readers

    assert "Borger" in plain.columns and "Borger.cpr" not in plain.columns
    for frame in (flat, pieces):
        assert [c for c in frame.columns if not c.startswith("_")] == [
            "sag",
            "Borger.cpr",
            "Borger.navn.fornavn",
            "tags",
            "noter",
        ]
        assert frame["Borger.cpr"].to_list()[:2] == ["0101901234", "0202802345"]
        assert frame["Borger.navn.fornavn"].to_list()[:2] == ["Bo", None]
        assert frame["tags"].to_list()[:2] == ['["a"]', None]  # lists stay JSON text
        assert frame["noter"].to_list()[:2] == [None, "{}"]  # an empty object is kept
    assert pieces.height == flat.height


def test_flatten_refuses_a_dotted_field_beside_an_object_of_that_name() -> None:
    data = json.dumps([{"a": 1}, {"a.b": 1, "a": {"b": 2}}]).encode()
    error = read_error(data, flatten=True)
    assert "`a.b` is in the record twice" in error.cause and "(record 2)" in error.cause
    assert read(data)["a.b"].to_list() == [None, "1"]  # without flatten both keys are kept


def test_flatten_must_be_true_or_false() -> None:
    assert "`flatten` must be true or false" in read_error(b"[]", flatten="yes").cause


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        # A JSON array delivered as NDJSON, on one line or pretty-printed.
        (b'[{"id": 1}, {"id": 2}]\n', "set `type: json` under `format:`"),
        (b'[\n  {"id": 1}\n]\n', "set `type: json` under `format:`"),
        (b'{\n  "id": 1\n}\n', "set `type: json` under `format:`"),
        # Records separated by a comma and a line end, as an array's are.
        (b'{"id": 1},\n{"id": 2},\n', "The line ends with a comma after its object"),
    ],
)
def test_a_json_document_given_as_ndjson_is_named_as_such(data: bytes, hint: str) -> None:
    # Each said only "Each line must hold one complete JSON object; fix or remove this
    # line", which sends the sender to edit a file whose only fault is the YAML's type.
    error = read_error(data, "ndjson")
    assert error.line == 1
    assert hint in error.hint
