"""Hostile deliveries are refused fast and without a memory spike, measured in a clean process.

Each input is written to a file; one probe process imports the readers once and then forks
a child per input, so each child's peak RSS (`ru_maxrss`, which starts afresh in a forked
child) is that input's alone: the growth reported is the child's peak during `read_table`
minus its peak before the call, counting everything (Rust, expat and zlib buffers too),
which tracemalloc would not see. A control input that really loads 30 MiB shows the
measurement is not vacuous.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.formats.builders import (
    MiB,
    RawMember,
    deflated_zeros,
    gzip_bomb,
    ods_cell,
    ods_row,
    ods_workbook,
    stored,
    xls_cells,
    xls_shared_records,
    zip_archive,
    zip_bomb,
)

REPO = Path(__file__).resolve().parents[2]
MAX_SECONDS = 2.0
MAX_GROWTH_MIB = 200

PROBE = r"""
import json, os, resource, sys, time

from connectors.formats import FormatError, read_table


def run(case):
    with open(case["path"], "rb") as file:
        data = file.read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    try:
        frame = read_table(data, case["options"], source_name=case["source_name"])
        outcome = {"result": "loaded", "rows": frame.height}
    except FormatError as error:
        outcome = {"result": "FormatError", "message": str(error)}
    except BaseException as error:  # reported, so the test can show what escaped
        outcome = {"result": type(error).__name__, "message": str(error)[:500]}
    outcome["seconds"] = time.perf_counter() - start
    outcome["growth_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    return outcome


results = {}
for case in json.load(sys.stdin):
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            payload = json.dumps(run(case))
        except BaseException as error:
            payload = json.dumps({"result": "probe failed: " + repr(error)})
        with os.fdopen(write_end, "w") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        raw = pipe.read()
    _, status = os.waitpid(pid, 0)
    results[case["id"]] = json.loads(raw) if raw else {"result": f"child died, status {status}"}
print(json.dumps(results))
"""


def _zipped(files: dict[str | zipfile.ZipInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _symlink_zip() -> bytes:
    link = zipfile.ZipInfo("borgere.csv")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _zipped({link: b"/etc/passwd"})


def _many_members(declared_count: int | None) -> bytes:
    members = [stored(f"f{i:06}.csv", b"") for i in range(60_000)]
    return zip_archive(members, declared_count=declared_count)


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<lolz><r>&lol9;</r></lolz>"
).encode()
QUADRATIC = (f'<!DOCTYPE a [<!ENTITY x "{"x" * 50_000}">]><a><r>{"&x;" * 50_000}</r></a>').encode()
XXE = b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<a><r>&xxe;</r></a>'
PARAMETER_ENTITY = (
    b'<!DOCTYPE a [<!ENTITY % remote SYSTEM "http://example.invalid/evil.dtd"> %remote;]>'
    b"<a><r>1</r></a>"
)
EXTERNAL_DTD = b'<?xml version="1.0"?>\n<!DOCTYPE a SYSTEM "http://example.invalid/a.dtd">\n<a/>'
DEEP = b"<a>" * 200_000 + b"</a>" * 200_000
DEEP_IN_RECORD = b"<a><r><id>1</id>" + b"<n>" * 30_000 + b"</n>" * 30_000 + b"</r></a>"
JSON_ARRAYS = b"[" * 100_000 + b"]" * 100_000


def _sparse_xml() -> bytes:
    # 40,000 records, 4,990 of them with an element of their own: 200M cells, 1.9 MB.
    records = (
        f"<r><id>{i}</id><navn>x</navn>" + (f"<f{i}>1</f{i}>" if i < 4_990 else "") + "</r>"
        for i in range(40_000)
    )
    return ("<a>" + "".join(records) + "</a>").encode()


def _json_keys(count: int) -> bytes:
    return json.dumps([{"id": i, "navn": "x", f"k{i}": 1} for i in range(count)]).encode()


def _control_csv() -> bytes:
    lines = (f"{i};navn nummer {i};{i * 7919 % 100_003}\n" for i in range(900_000))
    return gzip.compress(("id;navn;beloeb\n" + "".join(lines)).encode(), compresslevel=1)


ZIP_CSV = {"type": "csv", "container": "zip"}
XML = {"type": "xml", "record_path": "a/r"}

# id: (build input, options, expected FormatError text)
CASES: dict[str, tuple[Callable[[], bytes], dict[str, Any], str]] = {
    "zip-bomb-1gib": (zip_bomb, ZIP_CSV, "would expand 1011 times"),
    "zip-bomb-lying-header": (
        lambda: zip_bomb(1024, declared_size=150 * MiB),
        ZIP_CSV,
        "this looks like a compression bomb",
    ),
    "zip-bomb-auto": (zip_bomb, {**ZIP_CSV, "container": "auto"}, "this looks like a zip bomb"),
    "gzip-bomb-1gib": (gzip_bomb, {"type": "csv", "container": "gzip"}, "compression bomb"),
    "zip-60k-members": (
        lambda: _many_members(None),
        ZIP_CSV,
        "the zip archive has 60000 members, more than `max_members` (1000)",
    ),
    "zip-60k-members-lying-count": (
        lambda: _many_members(1),
        ZIP_CSV,
        "the zip archive has 60000 members, more than `max_members` (1000)",
    ),
    "zip-traversal": (
        lambda: _zipped({"../evil.csv": b"a\n1\n"}),
        ZIP_CSV,
        "a member whose path leaves the archive, '../evil.csv'",
    ),
    "zip-absolute-path": (
        lambda: _zipped({"/etc/passwd": b"a\n1\n"}),
        ZIP_CSV,
        "a member with an absolute path, '/etc/passwd'",
    ),
    "zip-symlink": (_symlink_zip, ZIP_CSV, "member 'borgere.csv' is a symbolic link"),
    "xml-billion-laughs": (lambda: BILLION_LAUGHS, XML, "<!DOCTYPE lolz> declaration"),
    "xml-quadratic-blowup": (lambda: QUADRATIC, XML, "<!DOCTYPE a> declaration"),
    "xml-xxe-external-entity": (lambda: XXE, XML, "<!DOCTYPE a> declaration"),
    "xml-external-parameter-entity": (lambda: PARAMETER_ENTITY, XML, "DTDs are refused"),
    "xml-external-dtd": (lambda: EXTERNAL_DTD, XML, "external DTD 'http://example.invalid/a.dtd'"),
    "xml-200k-deep": (lambda: DEEP, XML, "no element matches `record_path` 'a/r'"),
    "xml-30k-deep-in-record": (lambda: DEEP_IN_RECORD, XML, "more than 64 levels deep"),
    "xml-4990-sparse-fields": (_sparse_xml, XML, "fewer than 1 in 50 filled"),
    "xml-60mb-text-node": (
        lambda: b"<a><r><t>" + b"x" * 60_000_000 + b"</t></r></a>",
        XML,
        "record 1 (from line 1): the text of `t` is longer than",
    ),
    "xml-30mb-attribute": (
        lambda: b'<a><r t="' + b"x" * 30_000_000 + b'"/></a>',
        XML,
        "one piece of markup (a start tag with its attributes",
    ),
    "xml-30mb-comment": (
        lambda: b"<a><!--" + b"x" * 30_000_000 + b"--><r/></a>",
        XML,
        "one piece of markup (a start tag with its attributes",
    ),
    "json-60mb-string": (
        lambda: b'[{"t": "' + b"x" * 60_000_000 + b'"}]',
        {"type": "json"},
        "record 1: the value of `t` is longer than",
    ),
    "json-100k-deep": (
        lambda: b'[{"id": 1, "x": ' + JSON_ARRAYS + b"}]",
        {"type": "json"},
        "nested deeper than Python's JSON parser allows",
    ),
    "ndjson-100k-deep": (
        lambda: b'{"id": 1}\n{"x": ' + JSON_ARRAYS + b"}\n",
        {"type": "ndjson"},
        "line 2: a value is nested deeper than Python's JSON parser allows",
    ),
    "json-4000-sparse-keys": (
        lambda: _json_keys(4_000),
        {"type": "json"},
        "fewer than 1 in 50 filled",
    ),
    "json-30k-keys": (
        lambda: _json_keys(30_000),
        {"type": "json"},
        "more than 5000 different fields (record 4999 adds `k4998`)",
    ),
}


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    folder = tmp_path_factory.mktemp("malicious")
    cases = []
    inputs = {case_id: (build, options) for case_id, (build, options, _) in CASES.items()}
    inputs["control-30mib-csv"] = (_control_csv, {"type": "csv", "container": "gzip"})
    for case_id, (build, options) in inputs.items():
        path = folder / case_id
        path.write_bytes(build())
        cases.append({"id": case_id, "path": str(path), "options": options, "source_name": case_id})
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.mark.parametrize("case_id", list(CASES))
def test_refused_within_2_s_and_200_mb(probe: dict[str, dict[str, Any]], case_id: str) -> None:
    outcome = probe[case_id]
    assert outcome["result"] == "FormatError", outcome
    assert CASES[case_id][2] in outcome["message"]
    assert "\n" not in outcome["message"]
    assert outcome["seconds"] < MAX_SECONDS, outcome
    assert outcome["growth_mib"] < MAX_GROWTH_MIB, outcome


def test_the_measurement_sees_a_real_load(probe: dict[str, dict[str, Any]]) -> None:
    outcome = probe["control-30mib-csv"]
    assert outcome["result"] == "loaded" and outcome["rows"] == 900_000, outcome
    assert outcome["growth_mib"] > 30, outcome  # 30 MiB of text decompressed and parsed


# -- Excel workbooks (appended separately: the cases above are parametrized before this runs) ---


def _xlsx(
    edit: Callable[[bytes], bytes] = lambda xml: xml,
    edit_workbook: Callable[[bytes], bytes] = lambda xml: xml,
) -> bytes:
    """A small real workbook whose sheet XML is passed through `edit` (and its workbook.xml
    through `edit_workbook`)."""
    import xlsxwriter

    buffer = io.BytesIO()
    with xlsxwriter.Workbook(buffer, {"in_memory": True}) as book:
        sheet = book.add_worksheet("Data")
        sheet.write_row(0, 0, ["ID", "Dato", "Antal"])
        for r in range(1, 51):
            sheet.write_row(r, 0, [f"{r:04}", "01-02-2024", r])
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    members = []
    for info in source.infolist():
        content = source.read(info.filename)
        if info.filename == "xl/worksheets/sheet1.xml":
            content = edit(content)
        if info.filename == "xl/workbook.xml":
            content = edit_workbook(content)
        members.append(stored(info.filename, content))
    return zip_archive(members)


def _corner(xml: bytes) -> bytes:
    return xml.replace(
        b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>'
    )


def _other_relationship_prefix(xml: bytes) -> bytes:
    # Legal XML that calamine reads: the relationships namespace bound to `rr`, not `r`.
    namespace = b'xmlns:rr="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    return xml.replace(b"r:id=", b"rr:id=").replace(b"<workbook ", b"<workbook " + namespace + b" ")


def _stray_far_right(xml: bytes) -> bytes:
    stray = b'<c r="XFD51" t="inlineStr"><is><t>x</t></is></c>'
    return xml.replace(b"</row></sheetData>", stray + b"</row></sheetData>")


def _shared_strings_bomb(declared: int | None = None) -> bytes:
    """The workbook with a shared-strings part of 400 MiB of zeros (about 400 KB packed)."""
    payload, crc = deflated_zeros(400)
    size = 400 * MiB if declared is None else declared
    workbook = zipfile.ZipFile(io.BytesIO(_xlsx()))
    members = [
        stored(i.filename, workbook.read(i.filename))
        for i in workbook.infolist()
        if i.filename != "xl/sharedStrings.xml"
    ]
    return zip_archive([*members, RawMember("xl/sharedStrings.xml", payload, crc, size)])


EXCEL = {"type": "excel"}
EXCEL_CASES: dict[str, tuple[Callable[[], bytes], dict[str, Any], str]] = {
    "xlsx-cell-at-xfd1048576": (
        lambda: _xlsx(_corner),
        EXCEL,
        "the sheet's used range is A1:XFD1048576 (1048576 rows x 16384 columns)",
    ),
    "xlsx-cell-at-xfd1048576-columns-range": (
        lambda: _xlsx(_corner),
        {**EXCEL, "columns_range": "A:C"},
        "the sheet's used range is A1:XFD1048576",
    ),
    "xlsx-cell-at-xfd1048576-rr-prefix": (
        lambda: _xlsx(_corner, _other_relationship_prefix),
        EXCEL,
        "the sheet's used range is A1:XFD1048576 (1048576 rows x 16384 columns)",
    ),
    "xls-cell-at-column-65535": (
        lambda: xls_cells([(0, 0, "ID"), (1, 0, "0001"), (65535, 65535, "x")]),
        EXCEL,
        "the sheet's used range is A1:CRXP65536 (65536 rows x 65536 columns)",
    ),
    "xlsx-stray-cell-far-right": (
        lambda: _xlsx(_stray_far_right),
        EXCEL,
        "the sheet's used range is A1:XFD51, 16384 columns wide",
    ),
    "xlsx-shared-strings-bomb": (
        _shared_strings_bomb,
        EXCEL,
        "'xl/sharedStrings.xml' would expand",
    ),
    "xlsx-shared-strings-bomb-lying-header": (
        lambda: _shared_strings_bomb(declared=1000),
        EXCEL,
        "the workbook part 'xl/sharedStrings.xml' cannot be read",
    ),
}


def _stray_far_down(column: str) -> Callable[[bytes], bytes]:
    cell = f'<row r="1048576"><c r="{column}1048576"><v>1</v></c></row></sheetData>'.encode()
    return lambda xml: xml.replace(b"</sheetData>", cell)


_ODS_TABLE = ods_row(["ID", "Dato", "Antal"]) + "".join(
    ods_row([f"{r:04}", "01-02-2024", r]) for r in range(1, 51)
)
# LibreOffice ends every row and every table with repeated empty cells and rows.
_ODS_EMPTY_TAIL = (
    '<table:table-row table:number-rows-repeated="1048525">'
    '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
)


def _ods_repeated(rows: int, columns: int, value: str | float = "x") -> bytes:
    """The table, then one value repeated over `rows` x `columns` cells, then the tail."""
    bomb = ods_row([], extra=ods_cell(value, columns), repeated=rows)
    return ods_workbook({"Data": _ODS_TABLE + bomb + _ODS_EMPTY_TAIL})


SPARSE = "written in the file, fewer than 1 in 50"
EXCEL_CASES.update(
    {
        # Under the 20M-cell limit, yet 0.8-6 s and 0.3-1.9 GB in calamine before the fix.
        "xlsx-stray-cell-at-c1048576": (lambda: _xlsx(_stray_far_down("C")), EXCEL, SPARSE),
        "xlsx-stray-cell-at-s1048576": (lambda: _xlsx(_stray_far_down("S")), EXCEL, SPARSE),
        "xlsx-stray-cell-at-s1048576-columns-range": (
            lambda: _xlsx(_stray_far_down("S")),
            {**EXCEL, "columns_range": "A:C"},
            SPARSE,
        ),
        "xls-stray-cell-at-iv65536": (
            lambda: xls_cells([(0, 0, "ID"), (1, 0, "0001"), (65535, 255, "x")]),
            EXCEL,
            "the sheet's used range is A1:IV65536 (65536 rows x 256 columns)",
        ),
        # Every sheet's records walked once per sheet: 14 s for 200 KB.
        "xls-1000-sheets-over-one-sheets-records": (
            lambda: xls_shared_records(1000, 10_000, apart=1),
            EXCEL,
            "not a readable .xls workbook (two sheets' records overlap)",
        ),
        # .ods repeats: 3 GB, 9 GB and an aborted process; a million rows from 1.5 KB.
        "ods-value-over-16384-columns": (
            lambda: _ods_repeated(1000, 16384),
            EXCEL,
            "the sheet's used range is A1:XFD1051 (1051 rows x 16384 columns)",
        ),
        "ods-value-over-16384-columns-6000-rows": (
            lambda: _ods_repeated(6000, 16384),
            EXCEL,
            "(6051 rows x 16384 columns), more than 20000000 cells to load",
        ),
        "ods-value-over-1m-rows": (lambda: _ods_repeated(1_048_000, 3, 1), EXCEL, SPARSE),
    }
)
CASES.update(EXCEL_CASES)


# Not refused: within `columns_range` the table loads, and the stray cell costs nothing.
CASES["xlsx-stray-cell-columns-range"] = (
    lambda: _xlsx(_stray_far_right),
    {**EXCEL, "columns_range": "A:C"},
    "",
)
# Not refused either: repeated empty rows and cells are how LibreOffice writes every file.
CASES["ods-libreoffice-empty-tail"] = (
    lambda: ods_workbook({"Data": _ODS_TABLE + _ODS_EMPTY_TAIL}),
    EXCEL,
    "",
)


def _merged_ranges(count: int) -> Callable[[bytes], bytes]:
    """The sheet with `count` merged ranges, one per row below the table (A3:B3 on)."""
    ranges = b"".join(b'<mergeCell ref="A%d:B%d"/>' % (r, r) for r in range(3, count + 3))
    merges = b'<mergeCells count="%d">' % count + ranges + b"</mergeCells>"
    return lambda xml: xml.replace(b"</sheetData>", b"</sheetData>" + merges)


# Not refused: merged ranges are kept only where a header row can hold a group label; two
# million below the table (58 MB of XML) held 400 MB while the sheet was read.
CASES["xlsx-2m-merged-ranges"] = (
    lambda: _xlsx(_merged_ranges(2_000_000)),
    {**EXCEL, "header_rows": 2},
    "",
)


@pytest.mark.parametrize("case_id", list(EXCEL_CASES))
def test_excel_refused_within_2_s_and_200_mb(
    probe: dict[str, dict[str, Any]], case_id: str
) -> None:
    test_refused_within_2_s_and_200_mb(probe, case_id)


def test_excel_stray_cell_outside_columns_range_loads_in_bounded_memory(
    probe: dict[str, dict[str, Any]],
) -> None:
    # Loaded, not refused: the 2 s bounds a refusal. Its time (about 0.8 s here,
    # four calamine loads of a 51 x 16384 grid) is not asserted: on a busy CI machine it
    # passed 2 s. Memory is the bound that matters.
    outcome = probe["xlsx-stray-cell-columns-range"]
    assert outcome["result"] == "loaded" and outcome["rows"] == 50, outcome
    assert outcome["growth_mib"] < MAX_GROWTH_MIB, outcome


def test_ods_repeated_empty_rows_and_cells_load_in_bounded_memory(
    probe: dict[str, dict[str, Any]],
) -> None:
    outcome = probe["ods-libreoffice-empty-tail"]
    assert outcome["result"] == "loaded" and outcome["rows"] == 50, outcome
    assert outcome["growth_mib"] < MAX_GROWTH_MIB, outcome  # loaded: time as above


def test_xlsx_merged_ranges_below_the_header_cost_no_memory(
    probe: dict[str, dict[str, Any]],
) -> None:
    outcome = probe["xlsx-2m-merged-ranges"]
    assert outcome["result"] == "loaded" and outcome["rows"] == 49, outcome
    assert outcome["growth_mib"] < MAX_GROWTH_MIB, outcome  # loaded: time as above
