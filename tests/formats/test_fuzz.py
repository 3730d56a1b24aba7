"""Generated malformed deliveries: every input is either loaded per the contract or refused.

`read_table` may return a frame (checked against the reader contract) or raise FormatError
with a one-line message; any other exception (a Rust panic included) is a bug. The inputs are
built from the pieces real files break on (delimiters, quotes, BOMs, CR, NUL, æøå in the
wrong encoding, DTDs, unclosed tags, zip members with odd names and damaged bytes) rather
than pure noise, so most reach deep into the readers.

Deterministic in CI: `derandomize=True` (a fixed seed per test), no example database, no
deadline. Examples per test are in EXAMPLES: 1,000 for CSV, XLSX, XML and zip together,
1,220 in all. `--hypothesis-show-statistics` shows how many were loaded and how many refused.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import zipfile
from functools import cache
from typing import Any

import polars as pl
import xlsxwriter
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from connectors.formats import FormatError, read_table
from tests.formats.builders import assert_contract

EXAMPLES = {
    "csv": 300,
    "xlsx": 200,
    "xml": 300,
    "zip": 200,
    "gzip": 60,
    "fixed_width": 100,
    "parquet": 60,
}
# FORMATS_FUZZ_SCALE=20 runs twenty times as many examples, randomly seeded: for a deeper
# search by hand, never in CI.
SCALE = int(os.environ.get("FORMATS_FUZZ_SCALE", "1"))


def fuzz(kind: str) -> Any:
    return settings(
        max_examples=EXAMPLES[kind] * SCALE,
        derandomize=SCALE == 1,
        database=None,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def load_or_refuse(data: bytes, options: dict[str, Any], source_name: str = "fuzz") -> None:
    try:
        frame = read_table(data, options, source_name=source_name)
    except FormatError as error:
        message = str(error)
        assert message.startswith(source_name) and "\n" not in message, message
        event("refused")
        return
    except BaseException as error:
        # A Rust panic (each pyo3 library has its own PanicException class) is a
        # BaseException, which hypothesis would neither shrink nor report.
        if type(error).__name__ == "PanicException":
            raise AssertionError(f"a library panicked: {error}") from None
        raise
    assert_contract(frame)
    event("loaded" if frame.height else "loaded, no rows")


def mutated(base: bytes) -> st.SearchStrategy[bytes]:
    """`base` cut off, with bytes overwritten, or with bytes inserted."""
    n = len(base)
    cut = st.integers(0, n).map(lambda i: base[:i])
    flips = st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, 255)), max_size=8)

    def flip(changes: list[tuple[int, int]]) -> bytes:
        out = bytearray(base)
        for at, value in changes:
            if out:
                out[at % len(out)] = value
        return bytes(out)

    insert = st.tuples(st.integers(0, n), st.binary(min_size=1, max_size=16)).map(
        lambda t: base[: t[0]] + t[1] + base[t[0] :]
    )
    return st.one_of(cut, flips.map(flip), insert)


# -- CSV ------------------------------------------------------------------------------------

CSV_PIECES = [";", ",", "\t", "|", '"', "'", "\n", "\r\n", "\r", " ", "a", "1", "æøå", "ÆØÅ"]
CSV_PIECES += ["\x00", "\ufeff", "Total", "navn", "id", '""', "\\", "\u2028", "é"]
csv_text = st.lists(st.one_of(st.sampled_from(CSV_PIECES), st.text(max_size=4)), max_size=60).map(
    "".join
)
NAME = st.text(alphabet="abcxyzæøåÆØÅ_-. 1", min_size=1, max_size=8)
FIELD = st.one_of(
    st.text(alphabet="abc xyz æøå ÆØÅ 0123456789,.-:/", max_size=10),
    st.sampled_from(['"quoted; field"', '"say ""hi"""', '"two\nlines"', '""', "  ", "=1+1"]),
)


@st.composite
def tables(draw: st.DrawFn) -> list[list[str]]:
    """A header of distinct names and rows of the header's width, one ragged now and then."""
    width = draw(st.integers(1, 5))
    names = draw(st.lists(NAME, min_size=width, max_size=width, unique_by=lambda n: n.strip()))
    rows = draw(st.lists(st.lists(FIELD, min_size=width, max_size=width), max_size=8))
    if rows and draw(st.integers(0, 9)) == 0:
        rows[-1] = rows[-1][:-1] or ["x", "y"]
    return [names, *rows]


@st.composite
def structured_csv(draw: st.DrawFn) -> bytes:
    rows = draw(tables())
    delimiter = draw(st.sampled_from([";", ",", "\t", "|"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(delimiter.join(row) for row in rows) + draw(st.sampled_from(["", newline]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"]))
    return text.encode(encoding, errors="replace")


csv_bytes = st.one_of(
    structured_csv(),
    structured_csv().flatmap(mutated),
    csv_text.map(lambda t: t.encode("utf-8")),
    csv_text.map(lambda t: t.encode("cp1252", errors="replace")),
    csv_text.map(lambda t: t.encode("utf-8")).flatmap(mutated),
    st.binary(max_size=200),
)
csv_options = st.fixed_dictionaries(
    {"type": st.just("csv")},
    optional={
        "delimiter": st.sampled_from([";", ",", "\t", "|", "\\t", "ab", "", "\n"]),
        "quote": st.sampled_from(['"', "'", None, ";"]),
        "header_row": st.integers(-1, 4),
        "skip_footer_rows": st.integers(0, 3),
        "skip_rows_matching": st.sampled_from(["^Total", "(", "a|b", ""]),
        "encoding": st.sampled_from(["utf-8", "cp1252", "latin-1", "utf-16", "nope"]),
    },
)


@fuzz("csv")
@given(data=csv_bytes, options=csv_options)
def test_csv(data: bytes, options: dict[str, Any]) -> None:
    load_or_refuse(data, options, "fuzz.csv")


# -- XLSX -----------------------------------------------------------------------------------

cell_values = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["", " ", "007", "=1/0", "=A1", "=SUM(", "#N/A", "_source_row", "æ\nø"]),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(9999, 1, 1)),
)
sheets = st.lists(st.lists(cell_values, max_size=6), max_size=8)


def workbook(rows: list[list[Any]], sheet_name: str = "Ark1") -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_numbers": False})
    sheet = book.add_worksheet(sheet_name)
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, dt.datetime):
                sheet.write_datetime(r, c, value, stamp)
            elif isinstance(value, str) and value.startswith("="):
                sheet.write_formula(r, c, value)
            elif isinstance(value, str):
                sheet.write_string(r, c, value)
            elif value is not None:
                sheet.write(r, c, value)
    book.close()
    return buffer.getvalue()


@cache
def valid_workbook() -> bytes:
    return workbook([["id", "navn", "dato"], [1, "Åse", dt.datetime(2026, 1, 2)], [2, "Bo", None]])


structured_sheets = st.tuples(
    st.lists(NAME, min_size=1, max_size=5, unique_by=lambda n: n.strip()),
    st.lists(st.lists(cell_values, max_size=5), max_size=6),
).map(lambda t: [list(t[0]), *(row[: len(t[0])] for row in t[1])])
xlsx_bytes = st.one_of(
    structured_sheets.map(workbook),
    sheets.map(workbook),
    st.just(b"").flatmap(lambda _: mutated(valid_workbook())),
    st.binary(max_size=200).map(lambda b: b"PK\x03\x04" + b),
    st.binary(max_size=200),
)
xlsx_options = st.fixed_dictionaries(
    {"type": st.just("excel")},
    optional={
        "sheet": st.sampled_from([0, 0, "Ark1", 1, -1, "nope", True]),
        "header_row": st.sampled_from([0, 0, 0, 1, 3]),
        "skip_footer_rows": st.integers(0, 2),
        "skip_rows_matching": st.sampled_from(["^Total", "("]),
        "header_rows": st.sampled_from([1, 2, 3, 0]),
        "columns_range": st.sampled_from(["A:B", "B:D", "C:C", "D:A", "B"]),
        "sheets": st.sampled_from(["*", [0], ["Ark1", 0], [], "Ark1"]),
    },
)


@fuzz("xlsx")
@given(data=xlsx_bytes, options=xlsx_options)
def test_xlsx(data: bytes, options: dict[str, Any]) -> None:
    load_or_refuse(data, options, "fuzz.xlsx")


# -- XML ------------------------------------------------------------------------------------

XML_PIECES = [
    "<a>",
    "</a>",
    "<r>",
    "</r>",
    '<r id="1">',
    "<x>",
    "</x>",
    "<x/>",
    "<y>v</y>",
    "<n:r xmlns:n='urn:n'>",
    "</n:r>",
    "tekst",
    " ",
    "\n",
    "æøå",
    "&amp;",
    "&lt;",
    "&#229;",
    "&#0;",
    "&bogus;",
    "<![CDATA[<x>]]>",
    "<!-- c -->",
    "<?pi x?>",
    '<?xml version="1.0"?>',
    '<?xml version="1.0" encoding="cp1252"?>',
    '<?xml version="1.0" encoding="shift_jis"?>',
    "<!DOCTYPE a>",
    '<!DOCTYPE a [<!ENTITY e "x">]>',
    '<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd">',
    "<_source_row>1</_source_row>",
    '<x a="1" a="2">',
    "\x00",
    "<",
    ">",
    "]]>",
]
xml_text = st.lists(st.one_of(st.sampled_from(XML_PIECES), st.text(max_size=3)), max_size=40).map(
    "".join
)
CHILDREN = ["<x>1</x>", "<y a='b'/>", "<z><w>2</w></z>", "<v> æ &amp; ø </v>", " ", "t"]
CHILDREN += ["<u><![CDATA[<c>]]></u>", "<n:q xmlns:n='urn:n'>3</n:q>", "<!-- c -->"]
records = st.lists(
    st.tuples(
        st.sampled_from(["<r>", '<r id="1">', "<r id=' 2 ' k=''>"]),
        st.lists(st.sampled_from(CHILDREN), max_size=4, unique=True),
    ),
    max_size=5,
).map(lambda rs: "<a>" + "".join(o + "".join(c) + "</r>" for o, c in rs) + "</a>")
xml_bytes = st.one_of(
    records.map(lambda t: t.encode("utf-8")),
    records.map(lambda t: ('<?xml version="1.0" encoding="utf-16"?>' + t).encode("utf-16")),
    records.map(lambda t: t.encode("utf-8")).flatmap(mutated),
    xml_text.map(lambda t: t.encode("utf-8")),
    xml_text.map(lambda t: t.encode("utf-16")),
    st.binary(max_size=100),
)
xml_options = st.fixed_dictionaries(
    {
        "type": st.just("xml"),
        "record_path": st.sampled_from(
            ["a/r", "a/r", "r", "*/r", "/a", "a", "a[1]", "", "x/y/z", None]
        ),
    },
    optional={"encoding": st.sampled_from(["utf-8", "utf-8", "cp1252", "utf-16", "nope"])},
)


@fuzz("xml")
@given(data=xml_bytes, options=xml_options)
def test_xml(data: bytes, options: dict[str, Any]) -> None:
    load_or_refuse(data, options, "fuzz.xml")


# -- zip ------------------------------------------------------------------------------------

SAFE_NAMES = ["data.csv", "udtraek/data.csv", "DATA.CSV", "readme.txt", "mappe/", "data.json"]
UNSAFE_NAMES = ["../evil.csv", "/abs.csv", "C:\\x.csv", "a/../../b.csv", "æøå.csv"]
member_names = st.sampled_from(SAFE_NAMES * 4 + UNSAFE_NAMES)
members = st.dictionaries(
    member_names,
    st.one_of(structured_csv(), st.just(b"id;navn\n1;x\n"), csv_bytes),
    min_size=1,
    max_size=3,
)


def zipped(files: dict[str, bytes], method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


archives = st.builds(
    zipped,
    members,
    st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2]),
)
zip_bytes = st.one_of(archives, archives, archives.flatmap(mutated), st.binary(max_size=100))
sane_zip_options = st.fixed_dictionaries(
    {
        "type": st.just("csv"),
        "container": st.sampled_from(["zip", "auto"]),
        "member": st.sampled_from(["*.csv", "data.csv", "*", None, None]),
    },
    optional={"max_members": st.integers(1, 5), "max_compression_ratio": st.just(2)},
)
odd_zip_options = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["csv", "json", "ndjson"]),
        "container": st.sampled_from(["zip", "auto", "gzip", "rar"]),
        "member": st.sampled_from(["udtraek/*", "nope", "[", "", None]),
    },
    optional={
        "max_members": st.integers(-1, 5),
        "max_compression_ratio": st.sampled_from([0.5, 1, 200, "x"]),
        "max_uncompressed_bytes": st.sampled_from([0, 100, 10_000]),
    },
)
zip_options = st.one_of(sane_zip_options, sane_zip_options, odd_zip_options).map(
    lambda o: {k: v for k, v in o.items() if v is not None}
)


@fuzz("zip")
@given(data=zip_bytes, options=zip_options)
def test_zip(data: bytes, options: dict[str, Any]) -> None:
    load_or_refuse(data, options, "fuzz.zip")


# -- gzip -----------------------------------------------------------------------------------

gzip_bytes = st.one_of(
    csv_bytes.map(gzip.compress),
    csv_bytes.map(gzip.compress).flatmap(mutated),
    st.tuples(csv_bytes, csv_bytes).map(lambda t: gzip.compress(t[0]) + gzip.compress(t[1])),
    st.binary(max_size=60).map(lambda b: b"\x1f\x8b" + b),
)


@fuzz("gzip")
@given(data=gzip_bytes, container=st.sampled_from(["gzip", "auto"]))
def test_gzip(data: bytes, container: str) -> None:
    load_or_refuse(data, {"type": "csv", "container": container}, "fuzz.csv.gz")


# -- fixed width ----------------------------------------------------------------------------

valid_layouts = st.lists(
    st.tuples(st.integers(1, 8), st.integers(1, 5)), min_size=1, max_size=4
).map(lambda spans: [{"name": f"c{i}", "start": a, "length": n} for i, (a, n) in enumerate(spans)])
odd_layouts = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["a", "b", "", "_source_row", 1]), "start": st.integers(0, 8)},
        optional={"length": st.integers(0, 5), "end": st.integers(0, 10)},
    ),
    max_size=4,
)
fixed_width_options = st.fixed_dictionaries(
    {
        "type": st.just("fixed_width"),
        "encoding": st.sampled_from(["cp865", "cp1252", "utf-8", "latin-1"]),
        "columns": st.one_of(valid_layouts, valid_layouts, odd_layouts),
    },
    optional={
        "record_type": st.sampled_from([{"start": 1, "value": "a"}, {"start": 2, "value": 1}]),
        "skip_header_lines": st.integers(0, 3),
        "skip_footer_lines": st.integers(0, 3),
        "allow_short_lines": st.booleans(),
    },
)
fixed_width_bytes = st.one_of(
    st.lists(st.text(alphabet="abc æøå 0123", max_size=12), max_size=8).map(
        lambda lines: "\n".join(lines).encode("cp865")
    ),
    csv_bytes,
)


@fuzz("fixed_width")
@given(data=fixed_width_bytes, options=fixed_width_options)
def test_fixed_width(data: bytes, options: dict[str, Any]) -> None:
    load_or_refuse(data, options, "fuzz.txt")


# -- parquet --------------------------------------------------------------------------------


@cache
def valid_parquet() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(
        {"id": [1, 2, None], "navn": ["Åse", " ", None], "dato": [dt.date(2026, 1, 2)] * 3}
    ).write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


parquet_bytes = st.one_of(
    st.just(b"").flatmap(lambda _: mutated(valid_parquet())),
    st.binary(max_size=100).map(lambda b: b"PAR1" + b + b"PAR1"),
)


@fuzz("parquet")
@given(data=parquet_bytes)
def test_parquet(data: bytes) -> None:
    load_or_refuse(data, {"type": "parquet"}, "fuzz.parquet")


def test_the_examples_add_up() -> None:
    assert sum(EXAMPLES[k] for k in ("csv", "xlsx", "xml", "zip")) >= 500
