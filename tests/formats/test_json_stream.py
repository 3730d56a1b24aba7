"""A big JSON document read as the file is read gives exactly what reading it whole gives.

Pieces are made tiny (a few dozen bytes) so every boundary falls inside strings, escapes,
numbers, keys and multi-byte characters somewhere in the generated documents. Valid
documents must give the same frame; damaged ones must be refused both ways, a syntax error
at the same line.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from connectors.formats import FormatError, iter_table, read_table
from tests.formats.builders import PIECES_PROPERTY, assert_contract

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.sampled_from(["Søren Ærø", 'a "quoted" \\ word', "line\nbreak", "tab\t€", "😀"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
records = st.lists(
    st.dictionaries(st.sampled_from(["id", "navn", "beløb", "note", "adr"]), values, max_size=5),
    max_size=25,
)
# (record_path, wrap): the document around the record array.
PATHS = [
    (None, lambda rows: rows),
    ("data", lambda rows: {"meta": {"n": len(rows), "x": [1, 2]}, "data": rows, "slut": True}),
    ("resultat.poster", lambda rows: {"resultat": {"antal": 1, "poster": rows}, "side": 1}),
    ("1.rows", lambda rows: [{"rows": []}, {"head": "x", "rows": rows}, 3]),
    # Numbers beside the records, which a piece may cut after "17." or "1e".
    ("hits.hits", lambda rows: {"max_score": 17.219288, "hits": {"n": -1.5e-3, "hits": rows}}),
]


def dump(document: Any, layout: int) -> bytes:
    indent = [None, 2, 0][layout]
    return json.dumps(document, indent=indent, ensure_ascii=layout == 2).encode()


def both(tmp_path: Path, data: bytes, options: dict[str, Any], chunk: int) -> tuple[Any, Any]:
    """(whole, pieces): each a frame or the FormatError raised."""
    path = tmp_path / "doc.json"
    path.write_bytes(data)

    def pieces() -> pl.DataFrame:
        frames = list(iter_table(path, options, source_name="doc.json", chunk_bytes=chunk))
        for frame in frames:
            assert_contract(frame)
        return pl.concat(frames, how="diagonal_relaxed")

    results = []
    for read in (lambda: read_table(data, options, source_name="doc.json"), pieces):
        try:
            results.append(read())
        except FormatError as error:
            results.append(error)
    return results[0], results[1]


def assert_same(whole: Any, pieces: Any) -> None:
    if isinstance(whole, pl.DataFrame):
        assert isinstance(pieces, pl.DataFrame), pieces
        assert_frame_equal(pieces.select(whole.columns), whole)
    else:
        assert isinstance(pieces, FormatError), f"whole refused ({whole}), pieces loaded"
        if whole.cause.startswith("not valid JSON") and pieces.cause.startswith("not valid"):
            assert pieces.line == whole.line, (str(whole), str(pieces))


@PIECES_PROPERTY
@given(
    rows=records,
    path=st.sampled_from(PATHS),
    layout=st.integers(0, 2),
    chunk=st.integers(8, 64),
)
# A byte-order mark inside the file is a character, not a signature to drop: once when the
# encoding is still undecided, once after it was settled.
@example(rows=[{"id": None, "navn": "\ufeff"}], path=PATHS[0], layout=0, chunk=8)
@example(
    rows=[{"id": None, "navn": None, "beløb": {"\ufeff": None}}], path=PATHS[0], layout=0, chunk=8
)
def test_valid_documents_read_in_pieces_equal_the_whole(tmp_path, rows, path, layout, chunk):
    record_path, wrap = path
    data = dump(wrap(rows), layout)
    options = {"type": "json"} | ({"record_path": record_path} if record_path else {})
    whole, pieces = both(tmp_path, data, options, chunk)
    assert isinstance(whole, pl.DataFrame), whole
    assert_same(whole, pieces)


@PIECES_PROPERTY
@given(
    rows=records.filter(bool),
    path=st.sampled_from(PATHS),
    layout=st.integers(0, 2),
    chunk=st.integers(8, 64),
    edit=st.tuples(st.sampled_from(["cut", "drop", "insert"]), st.floats(0, 1)),
    char=st.sampled_from([*'{}[],:"\\x 0-\n', "\u00e6"]),
)
@example(  # an error found when the file had just run out: its position was lost
    rows=[{}], path=PATHS[1], layout=1, chunk=8, edit=("drop", 0.96875), char="{"
)
def test_damaged_documents_are_refused_both_ways(tmp_path, rows, path, layout, chunk, edit, char):
    # Edits of characters, not bytes: broken UTF-8 is the encoding tests' subject, and an
    # undeclared encoding is decided by the first non-ASCII piece (see json_stream.py).
    record_path, wrap = path
    text = dump(wrap(rows), layout).decode()
    how, where = edit
    at = int(where * (len(text) - 1))
    data = {
        "cut": text[:at],
        "drop": text[:at] + text[at + 1 :],
        "insert": text[:at] + char + text[at:],
    }[how].encode()
    options = {"type": "json"} | ({"record_path": record_path} if record_path else {})
    assert_same(*both(tmp_path, data, options, chunk))


def big_document(rows: int) -> bytes:
    records = [{"id": i, "navn": f"Søren {i}", "beløb": i * 1.5} for i in range(rows)]
    return json.dumps({"meta": {"antal": rows}, "data": records}, ensure_ascii=False).encode()


def test_a_big_document_comes_in_frames_numbered_by_record(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(big_document(20_000))
    options = {"type": "json", "record_path": "data"}
    frames = list(iter_table(path, options, source_name="big.json", chunk_bytes=64 * 1024))
    assert len(frames) > 5
    joined = pl.concat(frames)
    assert joined["_source_row"].to_list() == list(range(1, 20_001))
    assert joined.row(12_345, named=True) == {
        "id": "12345",
        "navn": "Søren 12345",
        "beløb": "18517.5",
        "_source_row": 12_346,
    }


@pytest.mark.parametrize(
    ("tail", "cause", "line"),
    [
        (b"", "not valid JSON: Expecting ',' delimiter (column 1)", 4),
        (b"}\n{}", "not valid JSON: Extra data (column 1)", 5),
        (b', "data": []}', "the key 'data' of `record_path` appears twice in one object", 4),
    ],
)
def test_what_follows_the_records_is_checked_too(tmp_path, tail, cause, line) -> None:
    path = tmp_path / "big.json"
    data = big_document(20_000).removesuffix(b"}")
    path.write_bytes(data.replace(b'"data": [', b'"data": [\n') + b"\n\n" + tail)
    options = {"type": "json", "record_path": "data"}
    with pytest.raises(FormatError) as caught:
        list(iter_table(path, options, source_name="big.json", chunk_bytes=64 * 1024))
    assert caught.value.cause == cause and caught.value.line == line


def test_a_bad_record_far_into_the_file_names_its_line_and_column(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "navn": f"Åse {i}"}, ensure_ascii=False) for i in range(20_000)]
    lines[15_000] = '{"id": 15000, "navn": "Åse" "x"}'
    path = tmp_path / "big.json"
    path.write_text('{"data": [\n' + ",\n".join(lines) + "\n]}\n", encoding="utf-8")
    options = {"type": "json", "record_path": "data"}
    with pytest.raises(FormatError) as caught:
        list(iter_table(path, options, source_name="big.json", chunk_bytes=64 * 1024))
    assert str(caught.value) == (
        "big.json, line 15002: not valid JSON: Expecting ',' delimiter (column 29). Check the"
        " export; a file with one JSON object per line is `type: ndjson`"
    )


def test_a_cp1252_document_is_detected_from_its_first_non_ascii_piece(tmp_path: Path) -> None:
    # The first 100,000 records are ASCII; "Søren" in cp1252 appears only after them.
    records = [{"id": i, "navn": "Soren"} for i in range(100_000)]
    records += [{"id": i, "navn": "Søren Ærø"} for i in range(100_000, 100_010)]
    path = tmp_path / "big.json"
    path.write_bytes(json.dumps(records, ensure_ascii=False).encode("cp1252"))
    frames = list(iter_table(path, {"type": "json"}, source_name="big.json", chunk_bytes=65536))
    assert len(frames) > 5
    assert pl.concat(frames)["navn"].tail(1).item() == "Søren Ærø"


def test_a_record_path_that_leads_elsewhere_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(big_document(20_000))
    for record_path, cause in [
        ("meta", "`record_path` 'meta' leads to an object, not an array of records"),
        ("meta.antal", "`record_path` 'meta.antal' leads to a number, not an array of records"),
        ("mangler", "`record_path` 'mangler' not found: no 'mangler' in the document"),
    ]:
        options = {"type": "json", "record_path": record_path}
        with pytest.raises(FormatError) as caught:
            list(iter_table(path, options, source_name="big.json", chunk_bytes=64 * 1024))
        assert caught.value.cause.startswith(cause)


def test_a_record_nested_past_the_parser_limit_names_its_line(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i}) for i in range(20_000)]
    lines[15_000] = '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    path = tmp_path / "big.json"
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    with pytest.raises(FormatError) as caught:
        list(iter_table(path, {"type": "json"}, source_name="big.json", chunk_bytes=64 * 1024))
    assert caught.value.line == 15_002
    assert "nested deeper than Python's JSON parser allows" in caught.value.cause


REAL = Path(__file__).parents[2].parent / "shared" / "fixtures" / "real"


@pytest.mark.parametrize(
    ("name", "record_path"),
    [
        ("ckan/data_birmingham_gov_uk_package_search.json", "result.results"),
        ("cvr/cvr_es_vrproduktionsenhed_match_all_10hits.json", "hits.hits"),
        ("cvr/cvr_es_vrvirksomhed_25052943_hits.json", "hits.hits"),
        ("dst/tables_subjects4_en.json", None),
        ("dst/subjects_da.json", None),
    ],
)
@pytest.mark.parametrize("chunk", [16, 1000])
def test_real_api_answers_read_in_pieces_equal_the_whole(tmp_path, name, record_path, chunk):
    data = (REAL / name).read_bytes()
    options = {"type": "json"} | ({"record_path": record_path} if record_path else {})
    whole, pieces = both(tmp_path, data, options, chunk)
    assert isinstance(whole, pl.DataFrame) and whole.height >= 1
    assert_same(whole, pieces)


@pytest.mark.parametrize(
    ("data", "options"),
    [
        # Held-out probes: each was read differently in pieces than whole.
        pytest.param(
            ("[" + ",".join(f'{{"f{i}": "v"}}' for i in range(5001)) + "]").encode(),
            {},
            id="more than MAX_COLUMNS fields over all pieces",
        ),
        pytest.param(b'[{"a b": "1"}, {"x": "2"}, {"a  b": "3"}]', {}, id="one column, two keys"),
        pytest.param('[{"\u00e5": "1"}, {"x": "2"}, {"a\u030a": "3"}]'.encode(), {}, id="NFC"),
        pytest.param(b'[{"1": "1"}, {"x": "2"}, {" 1": "3"}]', {}, id="number-like keys"),
        pytest.param(
            codecs.BOM_UTF32_BE + '[{"a": "1"}, {"a": "2"}]'.encode("utf-32-be"), {}, id="UTF-32-BE"
        ),
        pytest.param(
            '[{"a": "12345"}, {"a": "\ufeffX"}]'.encode(), {"encoding": "UTF-8-SIG"}, id="SIG"
        ),
        pytest.param('[{"a": "æ"}, {"a": "ø"}]'.encode("utf-7"), {"encoding": "utf-7"}, id="UTF-7"),
        pytest.param(b'[[{"a": 1}], [{"b": 2}]]', {"record_path": "\u00b2"}, id="digit-like step"),
        # A second probe.
        pytest.param(b'[{"a": ' + b"1" * 5000 + b"}]", {}, id="5000-digit number"),
        pytest.param(b'{"a": ' + b"1" * 5000 + b"}\n", {"type": "ndjson"}, id="NDJSON digits"),
        pytest.param(
            b'{"a": "x"}\n' * 20 + '{"a": "Søren"}\n'.encode("cp1252"),
            {"type": "ndjson"},
            id="NDJSON cp1252 after ASCII pieces",
        ),
        pytest.param(
            b'{"a": "1"}\n' * 10 + b'{"": null}\n' * 10 + b'{"a": "2"}\n' * 10,
            {"type": "ndjson"},
            id="a piece of nameless empty fields",
        ),
        pytest.param(
            b'{"d": [' + b'{"a": "1"},' * 10 + b'{"": null},' * 10 + b'{"a": "2"}]}',
            {"record_path": "d"},
            id="JSON piece of nameless empty fields",
        ),
    ],
)
@pytest.mark.parametrize("chunk", [4, 8, 16])
def test_what_the_whole_read_does_the_pieces_do(tmp_path, data, options, chunk) -> None:
    assert_same(*both(tmp_path, data, {"type": "json", **options}, chunk))


@pytest.mark.parametrize(
    ("lines", "cause", "line"),
    [
        (['{"a b": "1"}', '{"x": "2"}', '{"a  b": "3"}'], "duplicate column names 'a b'", None),
        (
            [f'{{"f{i}": "v"}}' for i in range(5001)],
            "the records have more than 5000 different fields (record 5001 adds `f5000`)",
            5001,
        ),
    ],
)
def test_ndjson_pieces_check_field_names_over_the_whole_file(tmp_path, lines, cause, line):
    data = ("\n".join(lines) + "\n").encode()
    path = tmp_path / "x.ndjson"
    path.write_bytes(data)
    with pytest.raises(FormatError) as whole:
        read_table(data, {"type": "ndjson"}, source_name="x.ndjson")
    with pytest.raises(FormatError) as pieces:
        list(iter_table(path, {"type": "ndjson"}, source_name="x.ndjson", chunk_bytes=16))
    assert whole.value.cause.startswith(cause) and pieces.value.cause.startswith(cause)
    assert pieces.value.line == line


@pytest.mark.parametrize("kind", ["json", "ndjson"])
def test_a_later_byte_outside_a_detected_encoding_says_it_was_detected(tmp_path, kind) -> None:
    lines = [b'{"a": "x"}'] * 20 + ['{"a": "Søren"}'.encode()] + [b'{"a": "x"}'] * 20
    lines.append(b'{"a": "S\xf8ren"}')  # cp1252 in a file that began as UTF-8
    data = b"\n".join(lines) + b"\n" if kind == "ndjson" else b"[" + b",\n".join(lines) + b"]"
    path = tmp_path / "x"
    path.write_bytes(data)
    with pytest.raises(FormatError) as caught:
        list(iter_table(path, {"type": kind}, source_name="x", chunk_bytes=64))
    assert caught.value.line == 42
    assert "byte 0xf8 at offset" in caught.value.cause
    assert "is not valid utf-8, the encoding detected from the bytes from offset" in (
        caught.value.cause
    )


@pytest.mark.parametrize("chunk", [8, 16, 64, 128])
def test_a_repeated_path_key_is_named_at_its_line_whatever_the_pieces(tmp_path, chunk) -> None:
    records = ",\n".join(json.dumps({"id": i}) for i in range(50))
    path = tmp_path / "d.json"
    path.write_text('{"data": [\n' + records + '\n],\n"x": 1,\n"data": []}')
    with pytest.raises(FormatError) as caught:
        list(
            iter_table(
                path, {"type": "json", "record_path": "data"}, source_name="d", chunk_bytes=chunk
            )
        )
    assert caught.value.line == 54
    assert caught.value.cause == "the key 'data' of `record_path` appears twice in one object"


@pytest.mark.parametrize("kind", ["json", "ndjson"])
@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_ascii_utf16_without_a_bom_is_named_in_pieces_too(tmp_path, kind, codec) -> None:
    # Its NUL bytes are ASCII: the first piece, all ASCII, was decoded without detection,
    # and the refusal was "not valid JSON: Expecting value (column 2)" at line 1.
    rows = [{"id": i, "navn": "Soren"} for i in range(200)]
    text = "".join(json.dumps(r) + "\n" for r in rows) if kind == "ndjson" else json.dumps(rows)
    data = text.encode(codec)
    whole, pieces = both(tmp_path, data, {"type": kind}, 256)
    for error in (whole, pieces):
        assert isinstance(error, FormatError)
        assert f"looks like {codec.upper()} without a byte-order mark" in error.cause
