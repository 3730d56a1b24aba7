"""XML reading: record paths, flattening, attributes, positions, encodings and refusals."""

from __future__ import annotations

import tracemalloc
from typing import Any

import polars as pl
import pytest

from connectors.formats import FormatError, iter_table, read_table
from connectors.formats import xml as xml_reader
from tests.formats.builders import assert_contract


def read(data: bytes | str, **options: Any) -> pl.DataFrame:
    if isinstance(data, str):
        data = data.encode("utf-8")
    frame = read_table(data, {"type": "xml", **options}, source_name="borgere.xml")
    assert_contract(frame)
    return frame


def read_error(data: bytes | str, **options: Any) -> FormatError:
    with pytest.raises(FormatError) as caught:
        read(data, **options)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("borgere.xml")
    return caught.value


DOCUMENT = """<?xml version="1.0" encoding="UTF-8"?>
<Udtraek xmlns="urn:kommune:borger" xmlns:k="urn:kommune:kode">
  <Hoved><Dato>2026-01-31</Dato></Hoved>
  <Borgere>
    <Borger id=" 7 " k:status="aktiv">
      <Navn>  Søren Ærø </Navn>
      <Adresse type="bolig">
        <Vej>Østergade</Vej>
        <Nr>1</Nr>
      </Adresse>
      <Note/>
    </Borger>
    <Borger id="8"></Borger>
    <Borger id="9">
      <Navn><![CDATA[Åse & <Bo>]]></Navn>
      <Telefon>12345678</Telefon>
    </Borger>
  </Borgere>
</Udtraek>
"""


def test_records_are_flattened_with_attributes_and_positions() -> None:
    frame = read(DOCUMENT, record_path="Udtraek/Borgere/Borger")
    assert frame.columns == [
        "@id",
        "@status",  # namespaces and prefixes are dropped from names
        "Navn",
        "Adresse/@type",  # `Adresse` holds only elements: no column of its own
        "Adresse/Vej",
        "Adresse/Nr",
        "Note",
        "Telefon",
        "_source_row",
    ]
    assert frame.rows() == [
        ("7", "aktiv", "Søren Ærø", "bolig", "Østergade", "1", None, None, 1),
        ("8", None, None, None, None, None, None, None, 2),
        ("9", None, "Åse & <Bo>", None, None, None, None, "12345678", 3),
    ]


@pytest.mark.parametrize(
    "record_path", ["Borger", "/Udtraek/Borgere/Borger", "*/*/Borger", "b:Borger"]
)
def test_record_path_forms_agree(record_path: str) -> None:
    expected = read(DOCUMENT, record_path="Udtraek/Borgere/Borger")
    assert read(DOCUMENT, record_path=record_path).equals(expected)


def test_a_single_record_document_and_record_text() -> None:
    frame = read("<a><n>Bo</n><n>Åse</n></a>", record_path="n")
    assert frame.rows() == [("Bo", 1), ("Åse", 2)]
    assert frame.columns == ["n", "_source_row"]


def test_an_element_with_text_and_children_keeps_all_its_text() -> None:
    frame = read("<a><r><x>tekst<y>2</y></x></r></a>", record_path="a/r")
    assert frame.rows() == [("tekst2", "2", 1)]
    assert frame.columns == ["x", "x/y", "_source_row"]


def test_inner_records_of_the_same_name_are_fields_of_the_outer() -> None:
    frame = read("<a><r><v>1</v><r><v>2</v></r></r></a>", record_path="r")
    assert frame.columns == ["v", "r/v", "_source_row"]
    assert frame.rows() == [("1", "2", 1)]


def test_an_empty_export_is_an_empty_frame_but_a_wrong_path_is_an_error() -> None:
    empty = read("<Udtraek><Borgere/></Udtraek>", record_path="Udtraek/Borgere/Borger")
    assert empty.columns == ["_source_row"] and empty.height == 0

    error = read_error(DOCUMENT, record_path="Udtraek/Borger")
    assert "no element matches `record_path` 'Udtraek/Borger'" in str(error)
    assert "the most repeated element is `Udtraek/Borgere/Borger` (3 times)" in str(error)


def test_a_repeated_element_in_one_record_is_an_error_with_its_line() -> None:
    error = read_error(DOCUMENT, record_path="Udtraek/Borgere")
    assert "record 1 (from line 4) has `Borger` more than once" in str(error)
    assert error.line == 13
    assert "Point `record_path` at the repeating element" in str(error)


def test_declared_single_byte_encoding_and_encoding_option() -> None:
    text = '<?xml version="1.0" encoding="cp865"?>\n<a><r><n>Ærø Ø</n></r></a>'
    assert read(text.encode("cp865"), record_path="a/r").rows() == [("Ærø Ø", 1)]
    # A declaration that lies: the YAML's `encoding` wins.
    lying = '<?xml version="1.0" encoding="utf-8"?>\n<a><r><n>Ærø</n></r></a>'.encode("cp1252")
    assert read(lying, record_path="a/r", encoding="cp1252").rows() == [("Ærø", 1)]
    assert "not well-formed XML: not well-formed (invalid token)" in str(
        read_error(lying, record_path="a/r")
    )
    # no declaration: read as UTF-8, and the hint says so (a Windows export is cp1252)
    undeclared = read_error("<a>\n<r><n>Ærø</n></r></a>".encode("cp1252"), record_path="a/r")
    assert undeclared.line == 2
    assert "(UTF-8 where it names none)" in str(undeclared) and "cp1252" in str(undeclared)
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><a><r><n>å</n></r></a>'.encode("utf-16")
    assert read(utf16, record_path="r").rows() == [("å", 1)]
    shift_jis = '<?xml version="1.0" encoding="shift_jis"?><a><r>x</r></a>'.encode("shift_jis")
    assert "the XML parser cannot read the file: multi-byte encodings" in str(
        read_error(shift_jis, record_path="r")
    )
    assert read(shift_jis, record_path="r", encoding="shift_jis").rows() == [("x", 1)]


@pytest.mark.parametrize(
    ("document", "cause", "line"),
    [
        ("<a><r>1</r>", "not well-formed XML: no element found", 1),
        ("<a>\n<r>&nbsp;</r></a>", "not well-formed XML: undefined entity", 2),
        ("<a><r>1</a>", "not well-formed XML: mismatched tag", 1),
        ("<a/><b/>", "not well-formed XML: junk after document element", 1),
    ],
)
def test_malformed_xml_names_the_line(document: str, cause: str, line: int) -> None:
    error = read_error(document, record_path="a/r")
    assert cause in str(error) and error.line == line


@pytest.mark.parametrize(
    ("document", "cause"),
    [
        (
            '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
            ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n]>\n'
            "<lolz>&lol1;</lolz>",
            "the XML has a <!DOCTYPE lolz> declaration; DTDs are refused",
        ),
        (
            '<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a><r>&xxe;</r></a>',
            "the XML has a <!DOCTYPE a> declaration; DTDs are refused",
        ),
        (
            '<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd"><a/>',
            "referring to the external DTD 'http://example.invalid/a.dtd'",
        ),
    ],
    ids=["billion-laughs", "xxe", "external-dtd"],
)
def test_dtds_entities_and_external_references_are_refused(document: str, cause: str) -> None:
    error = read_error(document, record_path="a/r")
    assert cause in str(error)
    assert "Ask the supplier for the XML without the <!DOCTYPE ...> declaration" in str(error)


@pytest.mark.parametrize(
    ("options", "cause"),
    [
        ({}, "`record_path` is required for type xml"),
        ({"record_path": "a/r[1]"}, "is not a path of element names (step 'r[1]')"),
        ({"record_path": "a//r"}, "is not a path of element names (step '')"),
        ({"record_path": "a/@id"}, "is not a path of element names"),
        ({"record_path": "a/r", "sheet": 1}, "unknown `format:` option `sheet` for type xml"),
        ({"record_path": "a/r", "encoding": "nope"}, "unknown encoding `nope`"),
    ],
)
def test_option_errors(options: dict[str, Any], cause: str) -> None:
    assert cause in str(read_error("<a><r>1</r></a>", **options))


def test_empty_file_and_reserved_column_name() -> None:
    assert "the file is empty" in str(read_error(b" \n", record_path="a/r"))
    error = read_error("<a><r><_source_row>1</_source_row></r></a>", record_path="a/r")
    assert "column named '_source_row'" in str(error)


def test_elements_outside_records_are_not_kept() -> None:
    # 100k elements stream past before the one record: nothing of them is kept (no tree),
    # where building the tree would hold every element (~20 MB traced).
    noise = "".join(f"<x><y>{i}</y></x>" for i in range(50_000))
    data = f"<a><Hoved>{noise}</Hoved><r><id>1</id></r></a>".encode()
    tracemalloc.start()
    try:
        frame = read(data, record_path="a/r")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert frame.rows() == [("1", 1)]
    assert peak < 2 * 2**20, peak


def test_a_record_with_too_many_distinct_fields_is_refused() -> None:
    fields = "".join(f"<f{i}>{i}</f{i}>" for i in range(5_001))
    error = read_error(f"<a><r>{fields}</r></a>", record_path="a/r")
    assert error.cause == (
        "the records have more than 5000 different fields (record 1 adds `f5000`); the first are"
        " `f0`, `f1`, `f2`, `f3`, `f4`, `f5`, `f6`, `f7`, `f8`, `f9` and 4990 more"
    )


def test_elements_nested_64_levels_in_a_record_are_read_and_65_refused() -> None:
    def record(depth: int) -> str:
        return "<a><r>\n<id>1</id>" + "<n>" * depth + "x" + "</n>" * depth + "</r></a>"

    frame = read(record(64), record_path="a/r")
    assert frame.columns == ["id", "/".join(["n"] * 64), "_source_row"]
    error = read_error(record(65), record_path="a/r")
    assert error.line == 2
    assert error.cause == "record 1 (from line 1) nests elements more than 64 levels deep"


def test_a_mostly_empty_table_is_refused_before_it_is_built() -> None:
    # 4,000 records with an element of their own each: 16M cells for 8,000 values.
    records = "".join(f"<r><id>{i}</id><f{i}>1</f{i}></r>" for i in range(4_000))
    error = read_error(f"<a>{records}</a>", record_path="a/r")
    assert "the 4000 records have 4001 different fields but only 8000 values in all" in str(error)


def _declared(encoding: str, text: str, written_as: str) -> bytes:
    return f'<?xml version="1.0" encoding="{encoding}"?><r><p><n>{text}</n></p></r>'.encode(
        written_as
    )


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        # expat decodes by the declaration and a single-byte code page never fails: these
        # loaded "SÃ¸ren Ã\x86rÃ¸" and "S\x9bren".
        (_declared("ISO-8859-1", "Søren Ærø", "utf-8"), "is ISO-8859-1 but the file is UTF-8"),
        (_declared("ISO-8859-1", "Søren", "cp865"), "the control character U+009B"),
        # An unknown name raised LookupError out of the parser.
        (_declared("ANSI", "Søren", "cp1252"), 'names encoding="ANSI", which is no known'),
        (_declared("hex", "x", "ascii"), 'names encoding="hex", which is no known'),
    ],
)
def test_a_wrong_or_unknown_declared_encoding_is_refused(data: bytes, cause: str) -> None:
    error = read_error(data, record_path="p")
    assert cause in error.cause


@pytest.mark.parametrize(
    ("encoding", "text", "written_as"),
    [("ISO-8859-1", "Søren", "latin-1"), ("windows-1252", "Søren €", "cp1252")],
)
def test_a_right_declared_code_page_reads(encoding: str, text: str, written_as: str) -> None:
    frame = read(_declared(encoding, text, written_as), record_path="p")
    assert frame["n"].to_list() == [text]


def test_a_mostly_empty_table_is_refused_in_pieces_too(tmp_path) -> None:
    records = "".join(f"<p><f{i}>{i}</f{i}></p>" for i in range(4_000))
    data = f"<r>{records}</r>".encode()
    assert "fewer than 1 in 50 filled" in read_error(data, record_path="p").cause
    path = tmp_path / "big.xml"
    path.write_bytes(data)
    options = {"type": "xml", "record_path": "p"}
    with pytest.raises(FormatError, match="fewer than 1 in 50 filled"):
        list(iter_table(path, options, source_name="big.xml", chunk_bytes=4096))


def test_mixed_content_keeps_the_whole_sentence() -> None:
    frame = read("<a><r><note>Ring til <b>Hans</b> inden kl. 9</note></r></a>", record_path="a/r")
    assert frame.select("note", "note/b").rows() == [("Ring til Hans inden kl. 9", "Hans")]


def test_xml_lang_keeps_its_prefix_beside_an_own_lang() -> None:
    frame = read(
        '<a><r xml:lang="da" lang="dansk"><v>1</v></r><r xml:lang="nb"><v>2</v></r></a>',
        record_path="a/r",
    )
    assert frame.select("@xml:lang", "@lang", "v").rows() == [
        ("da", "dansk", "1"),
        ("nb", None, "2"),
    ]


def test_two_attributes_differing_only_by_namespace_are_refused_as_such() -> None:
    error = read_error(
        '<a xmlns:p="urn:p" xmlns:q="urn:q"><r p:id="1" q:id="2"/></a>', record_path="a/r"
    )
    assert "`id` (namespace urn:p) and `id` (namespace urn:q)" in str(error)
    assert "record_path" not in str(error)


def test_a_dos_end_of_file_mark_ends_the_file_whole_and_in_pieces(tmp_path) -> None:
    # DOS-era tools put ^Z (0x1a) after a file's last byte: expat refused it as "not
    # well-formed" on a line after the document.
    records = "".join(f"<p><navn>Bjørn {n}</navn></p>\r\n" for n in range(300))
    text = f'<?xml version="1.0" encoding="windows-1252"?>\r\n<r>\r\n{records}</r>\r\n'
    expected = read(text.encode("cp1252"), record_path="r/p")
    assert expected.height == 300
    options = {"type": "xml", "record_path": "r/p"}
    path = tmp_path / "dos.xml"
    for data in (text + "\x1a", text[:-2] + "\x1a\x1a"):
        assert read(data.encode("cp1252"), record_path="r/p").equals(expected)
        path.write_bytes(data.encode("cp1252"))
        pieces = iter_table(path, options, source_name="dos.xml", chunk_bytes=4096)
        assert pl.concat(list(pieces)).equals(expected)
    # Anywhere else ^Z is still not XML, and a file of marks alone is empty.
    inside = read_error((text + "\x1a\r\n").encode("cp1252"), record_path="r/p")
    assert "not well-formed" in inside.cause
    assert inside.line == 304
    assert "empty" in read_error(b"\x1a\x1a", record_path="r/p").cause


def test_utf8_declared_as_a_code_page_is_refused_when_a_character_spans_two_blocks(
    tmp_path,
) -> None:
    # The declared code page is checked a 64 KiB block at a time. An ø cut in two by a block
    # boundary made both blocks invalid UTF-8, so neither was taken for UTF-8, and a file of
    # two blocks loaded "sÃ¸ren" under encoding="windows-1252".
    head = b'<?xml version="1.0" encoding="windows-1252"?>\n<r>\n'
    filler = b"<p><n>abc</n></p>\n" * ((xml_reader._CHUNK - 200) // 18)
    record = b"<p><n>s"
    padding = xml_reader._CHUNK - 1 - len(head) - len(filler) - len(record)
    data = head + filler + b"<p><x>" + b"y" * (padding - 15) + b"</x></p>\n" + record
    assert len(data) == xml_reader._CHUNK - 1  # the ø's first byte ends the first block
    data += "øren</n></p>\n</r>\n".encode()
    assert "but the file is UTF-8" in read_error(data, record_path="p").cause
    path = tmp_path / "borgere.xml"
    path.write_bytes(data)
    options = {"type": "xml", "record_path": "p"}
    with pytest.raises(FormatError, match="but the file is UTF-8"):
        list(iter_table(path, options, source_name="borgere.xml", chunk_bytes=4096))


@pytest.mark.parametrize("name", ["UTF8", "utf8", "utf_8"])
def test_a_utf8_file_declaring_utf8_by_another_name_reads(name: str) -> None:
    # expat knows UTF-8 only as "UTF-8": under encoding="UTF8" (as many tools write it) the
    # first ø was "not well-formed (invalid token)", with a hint to fix the encoding.
    data = f'<?xml version="1.0" encoding="{name}"?>\n<r><p><n>Søren Ærø</n></p></r>'
    assert read(data.encode(), record_path="p")["n"].to_list() == ["Søren Ærø"]


def test_xml_schema_instance_attributes_are_no_columns() -> None:
    # Schema-valid exports (OIOXML) write a null as `xsi:nil="true"` and may name the schema
    # or an element's type: a `Slutdato/@nil` column made each such file a new layout.
    frame = read(
        '<a xmlns="urn:oio:hr" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<r xsi:type="Fravaer"><Start>2026-01-05</Start><Slut xsi:nil="true"/></r>'
        '<r><Start>2026-02-01</Start><Slut xsi:nil="false">2026-02-03</Slut></r></a>',
        record_path="a/r",
    )
    assert frame.columns == ["Start", "Slut", "_source_row"]
    assert frame.select("Start", "Slut").rows() == [
        ("2026-01-05", None),
        ("2026-02-01", "2026-02-03"),
    ]


@pytest.mark.parametrize(
    ("value", "what"),
    [
        ("<bilag>{}</bilag>", "the text of `bilag`"),
        ('<bilag indhold="{}"/>', "the attribute `bilag/@indhold`"),
        ("<bilag><![CDATA[{}]]></bilag>", "the text of `bilag`"),
    ],
)
def test_a_value_over_the_longest_a_column_holds_is_refused_naming_it(
    monkeypatch, value: str, what: str
) -> None:
    # A 60 MB text node took 530 MB on its way to a frame. The limit is lowered here; the
    # malicious-input tests use the real one.
    monkeypatch.setattr(xml_reader, "MAX_VALUE_CHARS", 1_000)
    fits = value.format("x" * 1_000)
    assert read(f"<a><r>{fits}</r></a>", record_path="a/r").height == 1
    error = read_error(
        f"<a><r>{fits}</r>\n<r>{value.format('x' * 1_001)}</r></a>", record_path="a/r"
    )
    assert f"record 2 (from line 2): {what} is longer than" in str(error)


@pytest.mark.parametrize(
    "markup", ['<r id="{}"/>', "<!--{}-->", "<?pi {}?>", '<r><bilag data="{}"/></r>']
)
def test_markup_longer_than_the_limit_is_refused_with_its_line(monkeypatch, markup: str) -> None:
    # expat holds a start tag, comment or processing instruction whole, and the expat here
    # (2.5) scanned it again at every 64 KiB fed: a 60 MB attribute value took 100 s.
    monkeypatch.setattr(xml_reader, "MAX_MARKUP_BYTES", 200_000)
    monkeypatch.setattr(xml_reader, "MAX_VALUE_CHARS", 1_000_000)
    long = markup.format("x" * 300_000)
    error = read_error(f"<a>\n<r><v>1</v></r>\n{long}\n</a>", record_path="a/r")
    assert "one piece of markup" in str(error) and error.line == 3
    fits = markup.format("x" * 150_000)
    assert read(f"<a>\n<r><v>1</v></r>\n{fits}\n</a>", record_path="a/r")["v"][0] == "1"


def test_two_elements_differing_only_by_namespace_are_refused_as_such() -> None:
    # Not "has `Id` more than once ... point `record_path` at the repeating element": no
    # element repeats, and no record_path would read them.
    error = read_error(
        '<a xmlns="urn:p" xmlns:q="urn:q"><r><Id>1</Id>\n<q:Id>2</q:Id></r></a>',
        record_path="a/r",
    )
    assert "the elements `Id` (namespace urn:p) and `Id` (namespace urn:q)" in str(error)
    assert "record_path" not in str(error) and error.line == 2
    assert "has `Id` more than once" in str(
        read_error("<a><r><Id>1</Id><Id>2</Id></r></a>", record_path="a/r")
    )
