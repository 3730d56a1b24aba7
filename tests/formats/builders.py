"""Test inputs built in memory: the reader contract check, zips written byte by byte, bombs.

A zip bomb of 1 GiB of zeros is built without ever holding or compressing 1 GiB: after a
full flush deflate's history is empty, so every further 1 MiB of zeros compresses to the
same ~1 KB of output, which is simply repeated.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import polars as pl
from hypothesis import HealthCheck, settings

SOURCE_ROW = "_source_row"
MiB = 1 << 20


def assert_contract(frame: object) -> None:
    """The shape every reader returns: text columns, cleaned, and a final `_source_row`."""
    assert isinstance(frame, pl.DataFrame)
    assert frame.columns and frame.columns[-1] == SOURCE_ROW
    assert frame.schema[SOURCE_ROW] == pl.Int64
    values = frame.columns[:-1]
    assert SOURCE_ROW not in values
    assert all(name and name == " ".join(name.split()) for name in values)
    assert all(frame.schema[name] == pl.String for name in values)
    rows = frame[SOURCE_ROW]
    assert rows.null_count() == 0 and rows.n_unique() == frame.height
    assert frame.height == 0 or rows.min() >= 1  # type: ignore[operator]
    if values and frame.height:
        checks = frame.select(
            *(
                (pl.col(c).str.strip_chars() == pl.col(c)).all().alias(f"stripped {c}")
                for c in values
            ),
            *((pl.col(c).str.len_bytes() > 0).all().alias(f"not empty {c}") for c in values),
            pl.any_horizontal(pl.col(c).is_not_null() for c in values).all().alias("no empty row"),
        ).row(0, named=True)
        assert all(v is not False for v in checks.values()), checks


@dataclass(frozen=True)
class RawMember:
    """A zip member exactly as the archive will state it, lies included."""

    name: str
    payload: bytes  # the bytes stored (already compressed for method 8)
    crc: int
    size: int  # the uncompressed size the headers declare
    method: int = zlib.DEFLATED
    flags: int = 0
    external_attr: int = 0
    create_system: int = 3  # Unix
    name_encoding: str = "utf-8"  # zip writers without the UTF-8 flag use their own


def zip_archive(members: list[RawMember], *, declared_count: int | None = None) -> bytes:
    """A zip file with local headers, data, central directory and end record."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m.name.encode(m.name_encoding)
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            m.flags,
            m.method,
            0,
            0x21,
            m.crc,
            len(m.payload),
            m.size,
            len(name),
            0,
        )
        out += name + m.payload
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (m.create_system << 8) | 20,
            20,
            m.flags,
            m.method,
            0,
            0x21,
            m.crc,
            len(m.payload),
            m.size,
            len(name),
            0,
            0,
            0,
            0,
            m.external_attr,
            offset,
        )
        central += name
    count = len(members) if declared_count is None else declared_count
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + end)


def stored(name: str, content: bytes, **kwargs: int) -> RawMember:
    return RawMember(name, content, zlib.crc32(content), len(content), method=0, **kwargs)


@cache
def deflated_zeros(mib: int) -> tuple[bytes, int]:
    """Raw deflate of `mib` MiB of zeros, and the CRC-32 of those zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return block * mib + compressor.flush(zlib.Z_FINISH), crc


def zip_bomb(mib: int = 1024, *, declared_size: int | None = None) -> bytes:
    payload, crc = deflated_zeros(mib)
    size = mib * MiB if declared_size is None else declared_size
    return zip_archive([RawMember("udtraek.csv", payload, crc, size)])


def gzip_bomb(mib: int = 1024) -> bytes:
    payload, crc = deflated_zeros(mib)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + payload + struct.pack("<II", crc, (mib * MiB) & 0xFFFFFFFF)


def _record(kind: int, body: bytes = b"") -> bytes:
    return struct.pack("<HH", kind, len(body)) + body


# An .xls cell: text, a number, or a number with its format (a format code, or the id of
# one of Excel's built-in formats: 14 is a date, 20 a time of day).
XlsValue = str | float | tuple[float, str | int]


def xls_workbook(
    rows: list[list[XlsValue | None]],
    *,
    dimensions: bool = True,
    date_1904: bool = False,
    rk: bool = False,
    merges: Sequence[tuple[int, int, int, int]] = (),
    chart: bool = False,
) -> bytes:
    """A BIFF8 .xls (no package here writes one) with one sheet "Data": text cells through
    the shared strings, numbers as NUMBER records (whole ones as RK and MULRK with `rk`)."""
    cells = [(r, c, v) for r, row in enumerate(rows) for c, v in enumerate(row) if v is not None]
    return xls_cells(
        cells, dimensions=dimensions, date_1904=date_1904, rk=rk, merges=merges, chart=chart
    )


def xls_cells(
    cells: list[tuple[int, int, XlsValue]],
    *,
    dimensions: bool = True,
    date_1904: bool = False,
    rk: bool = False,
    merges: Sequence[tuple[int, int, int, int]] = (),
    chart: bool = False,
) -> bytes:
    """The .xls with these `(row, column, value)` cells, anywhere a record can say.

    A formatted number gets an XF record of its own, after XF 0 (General); a format code
    gets a FORMAT record numbered from 164, as Excel numbers custom formats. With `rk`,
    numbers an RK holds (whole ones, and doubles with short mantissas such as 1.5) are
    written as Excel writes them: RK records, or one MULRK for several side by side in a
    row. `merges` (top, left, bottom, right) go into a MERGEDCELLS
    record after the cells, and after an embedded chart's (empty) substream with `chart`,
    where Excel writes them.
    """
    texts = sorted({v for _, _, v in cells if isinstance(v, str)})
    sst = struct.pack("<II", len(texts), len(texts)) + b"".join(
        struct.pack("<HB", len(t), 1) + t.encode("utf-16-le") for t in texts
    )
    formats = list(dict.fromkeys(v[1] for _, _, v in cells if isinstance(v, tuple)))
    codes = [f for f in formats if isinstance(f, str)]
    bof = struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 6)
    name = "Data".encode("utf-16-le")
    globals_ = [
        _record(0x0809, bof),
        _record(0x0022, struct.pack("<H", int(date_1904))),  # DATEMODE
        *(
            _record(0x041E, struct.pack("<HHB", 164 + i, len(code), 1) + code.encode("utf-16-le"))
            for i, code in enumerate(codes)
        ),
        # XF: font, format, then 16 bytes of alignment, borders and fill, all zero.
        *(_record(0x00E0, struct.pack("<HH16x", 0, _format_id(f, codes))) for f in [0, *formats]),
    ]
    boundsheet_length = 4 + 8 + len(name)
    globals_length = sum(map(len, globals_)) + boundsheet_length + 4 + len(sst) + 4
    sheet = [_record(0x0809, bof[:2] + b"\x10\x00" + bof[4:])]
    if dimensions:
        last_row = max((r for r, _, _ in cells), default=-1)
        last_column = max((c for _, c, _ in cells), default=-1)
        # As Excel writes it, within 65,536 rows and 256 columns whatever the cells say.
        bounds = (min(last_row + 1, 65536), min(last_column + 1, 256))
        sheet.append(_record(0x0200, struct.pack("<IIHHH", 0, bounds[0], 0, bounds[1], 0)))
    run: list[tuple[int, int, int, int]] = []  # whole numbers side by side: row, column, xf, RK

    def end_run() -> None:
        if len(run) == 1:
            sheet.append(_record(0x027E, struct.pack("<HHHI", *run[0])))
        elif run:
            values = b"".join(struct.pack("<HI", xf, value) for _, _, xf, value in run)
            row, first = run[0][:2]
            sheet.append(
                _record(
                    0x00BD,
                    struct.pack("<HH", row, first)
                    + values
                    + struct.pack("<H", first + len(run) - 1),
                )
            )
        run.clear()

    for r, c, v in cells:
        number, format_ = v if isinstance(v, tuple) else (v, None)
        xf = 0 if format_ is None else 1 + formats.index(format_)
        value = _rk(number) if rk and not isinstance(number, str) else None
        if value is not None:
            if run and (run[-1][0], run[-1][1] + 1) != (r, c):
                end_run()
            run.append((r, c, xf, value))
            continue
        end_run()
        if isinstance(number, str):
            sheet.append(_record(0x00FD, struct.pack("<HHHI", r, c, 0, texts.index(number))))
        else:
            sheet.append(_record(0x0203, struct.pack("<HHHd", r, c, xf, number)))
    end_run()
    if chart:  # BOF of a chart (0x0020), EOF
        sheet += [_record(0x0809, bof[:2] + b"\x20\x00" + bof[4:]), _record(0x000A)]
    if merges:
        ranges = b"".join(struct.pack("<HHHH", t, b, left, r) for t, left, b, r in merges)
        sheet.append(_record(0x00E5, struct.pack("<H", len(merges)) + ranges))
    stream = b"".join(
        [
            *globals_,
            _record(0x0085, struct.pack("<IBBBB", globals_length, 0, 0, 4, 1) + name),
            _record(0x00FC, sst),
            _record(0x000A),
            *sheet,
            _record(0x000A),
        ]
    )
    return compound_file(stream)


def xls_biff5(rows: list[list[str | float | None]]) -> bytes:
    """An .xls as Excel 5/95 wrote it (BIFF5, one sheet "Data"): text in LABEL records in
    the code page, no shared strings, no merged cells (Excel 97 brought those)."""
    bof = struct.pack("<HHHH", 0x0500, 0x0005, 0x0DBB, 0x07CC)
    globals_ = [_record(0x0809, bof), _record(0x0042, struct.pack("<H", 1252))]  # CODEPAGE
    name = b"Data"
    sheet = [_record(0x0809, bof[:2] + b"\x10\x00" + bof[4:])]
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, str):
                text = value.encode("cp1252")
                sheet.append(_record(0x0204, struct.pack("<HHHH", r, c, 0, len(text)) + text))
            elif value is not None:
                sheet.append(_record(0x0203, struct.pack("<HHHd", r, c, 0, value)))
    offset = sum(map(len, globals_)) + 4 + 7 + len(name) + 4
    boundsheet = _record(0x0085, struct.pack("<IBBB", offset, 0, 0, len(name)) + name)
    return compound_file(
        b"".join([*globals_, boundsheet, _record(0x000A), *sheet, _record(0x000A)])
    )


def xls_shared_records(sheets: int, records: int, *, apart: int = 0) -> bytes:
    """An .xls of `sheets` sheets whose BOUNDSHEET records all point into one sheet's
    `records` NUMBER records, as no real file does: each sheet starts `apart` records
    after the one before (0: all at the sheet's BOF)."""
    bof = struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 6)
    name = "S".encode("utf-16-le")
    offset = 4 + len(bof) + sheets * (4 + 8 + len(name)) + 4
    boundsheet = b"".join(
        _record(0x0085, struct.pack("<IBBBB", start, 0, 0, len(name) // 2, 1) + name)
        # After the BOF (20 bytes), a NUMBER record is 18.
        for start in (
            offset + (20 + 18 * (i * apart - 1) if i * apart else 0) for i in range(sheets)
        )
    )
    cells = b"".join(
        _record(0x0203, struct.pack("<HHHd", r % 100, 0, 0, 1.0)) for r in range(records)
    )
    sheet = _record(0x0809, bof[:2] + b"\x10\x00" + bof[4:]) + cells + _record(0x000A)
    return compound_file(_record(0x0809, bof) + boundsheet + _record(0x000A) + sheet)


def _rk(number: float) -> int | None:
    """The RK value Excel writes for the number: a 30-bit integer, or a double whose low 34
    bits are zero as its high 32 bits (the low two of those are the RK's flags, 0 here);
    None if an RK cannot hold it."""
    if float(number).is_integer() and -(1 << 29) <= number < 1 << 29:
        return (int(number) << 2 | 2) & 0xFFFFFFFF
    bits = struct.unpack("<Q", struct.pack("<d", number))[0]
    return None if bits & ((1 << 34) - 1) else bits >> 32


def _format_id(format_: str | int, codes: list[str]) -> int:
    return format_ if isinstance(format_, int) else 164 + codes.index(format_)


def compound_file(stream: bytes) -> bytes:
    """An OLE2 compound file (512-byte sectors) holding `stream` as "Workbook"."""
    # At least 4096 bytes, so the stream lives in whole sectors rather than the mini stream.
    stream = stream.ljust(max(4096, -(-len(stream) // 512) * 512), b"\0")
    count = len(stream) // 512
    end, free, fat_sector = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    fat_sectors = -(-(count + 1) // 127)  # FAT entries for itself, the directory, the stream
    fat = (
        [fat_sector] * fat_sectors + [end] + [*range(fat_sectors + 2, fat_sectors + 1 + count), end]
    )
    fat += [free] * (fat_sectors * 128 - len(fat))
    header = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(10)
        + struct.pack("<IIIIIIII", fat_sectors, fat_sectors, 0, 4096, end, 0, end, 0)
        + struct.pack("<109I", *range(fat_sectors), *[free] * (109 - fat_sectors))
    )

    def entry(name: str, kind: int, start: int, length: int, child: int = free) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBBIII", len(encoded), kind, 1, free, free, child)
            + bytes(36)
            + struct.pack("<III", start, length, 0)
        )

    directory = entry("Root Entry", 5, end, 0, child=1) + entry(
        "Workbook", 2, fat_sectors + 1, len(stream)
    )
    return header + struct.pack(f"<{len(fat)}I", *fat) + directory.ljust(512, b"\0") + stream


_ODS_NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    ' xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0"'
    ' xmlns:number="urn:oasis:names:tc:opendocument:xmlns:datastyle:1.0"'
    ' xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0"'
)


def ods_cell(value: str | float, repeated: int = 1) -> str:
    """A `<table:table-cell>` holding text or a number, as LibreOffice writes it."""
    times = f' table:number-columns-repeated="{repeated}"' if repeated > 1 else ""
    if isinstance(value, str):
        text = f"<text:p>{value}</text:p>"
        return f'<table:table-cell office:value-type="string"{times}>{text}</table:table-cell>'
    return f'<table:table-cell office:value-type="float" office:value="{value}"{times}/>'


def ods_table(
    rows: list[list[str | float | None]], merges: Sequence[tuple[int, int, int, int]]
) -> str:
    """The rows of a table with merged ranges (top, left, bottom, right), as LibreOffice
    writes them: the top-left cell spanning rows and columns, the others covered."""
    spans = {
        (top, left): (bottom - top + 1, right - left + 1) for top, left, bottom, right in merges
    }
    covered = {
        (r, c)
        for top, left, bottom, right in merges
        for r in range(top, bottom + 1)
        for c in range(left, right + 1)
        if (r, c) != (top, left)
    }
    xml = []
    for r, row in enumerate(rows):
        cells = []
        for c, value in enumerate(row):
            if (r, c) in covered:
                cells.append("<table:covered-table-cell/>")
            elif value is None:
                cells.append("<table:table-cell/>")
            elif (r, c) in spans:
                down, across = spans[r, c]
                spanned = (
                    f' table:number-rows-spanned="{down}" table:number-columns-spanned="{across}"'
                )
                cells.append(
                    ods_cell(value).replace("<table:table-cell", "<table:table-cell" + spanned, 1)
                )
            else:
                cells.append(ods_cell(value))
        xml.append(f"<table:table-row>{''.join(cells)}</table:table-row>")
    return "".join(xml)


def ods_row(cells: list[str | float], *, extra: str = "", repeated: int = 1) -> str:
    """A `<table:table-row>` of these cells, then `extra` XML inside the row."""
    times = f' table:number-rows-repeated="{repeated}"' if repeated > 1 else ""
    return f"<table:table-row{times}>{''.join(map(ods_cell, cells))}{extra}</table:table-row>"


def ods_workbook(
    tables: dict[str, str] | list[tuple[str, str]], *, styles: str = "", named_styles: str = ""
) -> bytes:
    """An .ods (no package here writes one) with one table per entry: name, its rows' XML;
    `styles` are the automatic styles (in content.xml), `named_styles` those of styles.xml."""
    pairs = tables.items() if isinstance(tables, dict) else tables
    body = "".join(f'<table:table table:name="{name}">{rows}</table:table>' for name, rows in pairs)
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {_ODS_NAMESPACES}'
        f' office:version="1.2"><office:automatic-styles>{styles}</office:automatic-styles>'
        f"<office:body><office:spreadsheet>{body}"
        "</office:spreadsheet></office:body></office:document-content>"
    ).encode()
    named = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-styles {_ODS_NAMESPACES}'
        f' office:version="1.2"><office:styles>{named_styles}</office:styles>'
        "</office:document-styles>"
    ).encode()
    manifest = (
        b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest'
        b' xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        b'<manifest:file-entry manifest:full-path="/"'
        b' manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        b"</manifest:manifest>"
    )
    return zip_archive(
        [
            stored("mimetype", b"application/vnd.oasis.opendocument.spreadsheet"),
            stored("META-INF/manifest.xml", manifest),
            stored("content.xml", content),
            stored("styles.xml", named),
        ]
    )


def _biff12(kind: int, body: bytes = b"") -> bytes:
    """An .xlsb record: its type and size as 7-bit groups (high bit: more follow), its body."""

    def groups(number: int) -> bytes:
        out = bytearray()
        while True:
            number, low = number >> 7, number & 0x7F
            out.append(low | (0x80 if number else 0))
            if not number:
                return bytes(out)

    return groups(kind) + groups(len(body)) + body


def _wide(text: str) -> bytes:
    return struct.pack("<I", len(text)) + text.encode("utf-16-le")


def xlsb_workbook(rows: list[list[str | float]]) -> bytes:
    """An .xlsb (Excel's binary workbook; no package here writes one) with one sheet "Data"
    of text and number cells, the few records calamine needs to read it."""
    sheet = _biff12(0x9C, struct.pack("<II", 0, 1) + _wide("rId1") + _wide("Data"))
    book = _biff12(0x83) + _biff12(0x8F) + sheet + _biff12(0x90) + _biff12(0x84)
    last = struct.pack("<IIII", 0, len(rows) - 1, 0, max(map(len, rows)) - 1)
    cells = _biff12(0x81) + _biff12(0x94, last) + _biff12(0x91)  # begin, used range, data
    for r, row in enumerate(rows):
        cells += _biff12(0x00, struct.pack("<I", r) + bytes(13))
        for c, value in enumerate(row):
            head = struct.pack("<II", c, 0)
            if isinstance(value, str):
                cells += _biff12(0x06, head + _wide(value))
            else:
                cells += _biff12(0x05, head + struct.pack("<d", value))
    cells += _biff12(0x92) + _biff12(0x82)
    relationships = (
        '<?xml version="1.0"?><Relationships'
        ' xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/{kind}" Target="{target}"/></Relationships>'
    )
    return zip_archive(
        [
            stored(
                "_rels/.rels",
                relationships.format(kind="officeDocument", target="xl/workbook.bin").encode(),
            ),
            stored(
                "xl/_rels/workbook.bin.rels",
                relationships.format(kind="worksheet", target="worksheets/sheet1.bin").encode(),
            ),
            stored("xl/workbook.bin", book),
            stored("xl/worksheets/sheet1.bin", cells),
        ]
    )


# FORMATS_FUZZ_SCALE=N runs N times as many property examples, randomly seeded: for a
# deeper search than CI's fixed one.
FUZZ_SCALE = int(os.environ.get("FORMATS_FUZZ_SCALE", "1"))

# Settings of the tests comparing a reader's pieces with its whole read.
PIECES_PROPERTY = settings(
    max_examples=150 * FUZZ_SCALE,
    derandomize=FUZZ_SCALE == 1,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
