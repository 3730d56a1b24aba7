"""Where the cells of an .xls workbook's sheets are, read off their records before calamine.

calamine sizes a sheet's grid from its cells' positions and does not bound them: BIFF8 has
256 columns, but a record may say column 65535, and one such cell at row 65535 asks for
65536 x 65536 cells (137 GB) and aborts the process. Here the workbook stream is taken out
of its OLE2 compound file and only the row and column fields of the cell records are read,
so a sheet's used range is known without building it. The FORMAT and XF records are read
too, for the number cells whose format calamine does not honour (`number_formats`: `0000`,
`[h]:mm`), the DATEMODE record, for workbooks counting days from 1904, and each sheet's
MERGEDCELLS records, which say which columns a header's group label covers.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from connectors.formats.number_formats import BUILTIN, Shown, shown
from connectors.formats.workbook_package import OVERFLOW, Merge, SheetScan

_END_OF_CHAIN = 0xFFFFFFFE
_LAST_SECTOR = 0xFFFFFFFA  # higher ids mark free, end-of-chain and FAT sectors
_BOF, _EOF, _BOUNDSHEET, _SST, _DIMENSIONS = 0x0809, 0x000A, 0x0085, 0x00FC, 0x0200
_MERGEDCELLS = 0x00E5  # BIFF8 only: Excel 97 brought merged cells
_DATEMODE, _FORMAT, _XF = 0x0022, 0x041E, 0x00E0
# Records calamine turns into cells (FORMULA, NUMBER, LABEL, BOOLERR, RK, LABELSST,
# RSTRING): row and column are their first two fields, then the cell's XF (its style).
# BLANK and MULBLANK make no cell.
_FORMULA, _NUMBER, _RK = 0x0006, 0x0203, 0x027E
_CELLS = {_FORMULA, _NUMBER, 0x0204, 0x0205, _RK, 0x00FD, 0x00D6}
_MULRK = 0x00BD  # row, first column, the values (XF and number each), then the last column
# The top byte of a double (or an RK's) at or below -2**33: sign and high exponent bits.
_LOW_TOP = 0xC2


class NotXls(ValueError):
    """The compound file or its workbook stream is damaged."""


@dataclass
class XlsBook:
    """What an .xls file's records say before calamine builds it."""

    # Each sheet's name and scan: a list, as two sheets may give the same name and calamine
    # builds both.
    sheets: list[tuple[str, SheetScan]] = field(default_factory=list)
    date_1904: bool = False  # days counted from 1904-01-01 (the DATEMODE record)
    # For each XF record (the styles cells refer to by index), how its format shows numbers
    # where calamine reads them otherwise; None for the others.
    styles: list[Shown | None] = field(default_factory=list)


def xls_scans(data: bytes, label_rows: range = range(0)) -> XlsBook:
    """The sheets' scans, with their merged ranges starting in `label_rows`, and the
    workbook's date system, from an .xls file (OLE2 magic checked by the caller)."""
    stream = _workbook_stream(data)
    biff8 = len(stream) >= 6 and _u16(stream, 4) == 0x0600  # the first BOF's version
    book = XlsBook()
    sheets = _globals(stream, biff8, book)
    scans: dict[int, SheetScan] = {}
    end = 0
    # Each sheet's records are its own in a real file. Sheets pointing into one another's
    # records (or at the same ones) have them walked once per sheet, here and in calamine:
    # a 200 KB file of 1,000 sheets over 10,000 records took 14 s before calamine began.
    for offset in sorted({offset for offset, _ in sheets}):
        if offset < end:
            raise NotXls("two sheets' records overlap")
        scan = SheetScan(label_rows=label_rows, merges_known=biff8)
        end = _scan(stream, offset, book.styles, scan)
        scans[offset] = scan
    if len(scans) < len(sheets):
        raise NotXls("two sheets start at the same record")
    book.sheets = [(name, scans[offset]) for offset, name in sheets]
    return book


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 2], "little")


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


def _records(stream: bytes, offset: int, *, nested: bool = False) -> Iterator[tuple[int, bytes]]:
    """The records of one substream, from its BOF up to its EOF (or the stream's end); with
    `nested`, past the EOFs of the substreams inside it (a chart embedded in a sheet)."""
    depth = 0
    while offset + 4 <= len(stream):
        kind, size = _u16(stream, offset), _u16(stream, offset + 2)
        yield kind, stream[offset + 4 : offset + 4 + size]
        offset += 4 + size
        if kind == _BOF:
            depth += 1
        elif kind == _EOF:
            depth -= 1
            if not nested or depth <= 0:
                return


def _globals(stream: bytes, biff8: bool, book: XlsBook) -> list[tuple[int, str]]:
    """Each sheet's offset in the stream and its name, from the BOUNDSHEET records; the date
    system and the styles go into `book`."""
    sheets = []
    codes = {number: code for number, code in BUILTIN.items()}
    format_ids = []
    for kind, body in _records(stream, 0):
        # calamine reserves room for the shared strings by their declared count.
        if kind == _SST and len(body) >= 8 and max(_u32(body, 0), _u32(body, 4)) > len(stream):
            raise NotXls("the shared string table counts more strings than the file holds")
        if kind == _DATEMODE and len(body) >= 2:
            book.date_1904 = _u16(body, 0) == 1
        elif kind == _FORMAT and len(body) >= 3:
            codes[_u16(body, 0)] = _text(body, 2, biff8, wide_length=True)
        elif kind == _XF and len(body) >= 4:
            format_ids.append(_u16(body, 2))
        elif kind == _BOUNDSHEET and len(body) >= 8:
            sheets.append((_u32(body, 0), _text(body, 6, biff8, wide_length=False)))
    formats = {number: shown(code) for number, code in codes.items()}
    book.styles = [formats.get(number) for number in format_ids]
    return sheets


def _text(body: bytes, at: int, biff8: bool, *, wide_length: bool) -> str:
    """A string field: its length (two bytes, or one), then in BIFF8 a flags byte and the
    characters (UTF-16 or one byte each); in BIFF5 bytes in the workbook's code page."""
    length, at = (_u16(body, at), at + 2) if wide_length and biff8 else (body[at], at + 1)
    if not biff8:
        return body[at : at + length].decode("cp1252", "replace")
    if at < len(body) and body[at] & 1:
        return body[at + 1 : at + 1 + 2 * length].decode("utf-16-le", "replace")
    return body[at + 1 : at + 1 + length].decode("latin-1")


def _scan(stream: bytes, offset: int, styles: list[Shown | None], scan: SheetScan) -> int:
    """Fill in the sheet's scan from its records; where they end in the stream."""
    end = offset
    # calamine reads a sheet's records up to the first EOF, which ends an embedded chart if
    # the sheet has one; Excel writes the MERGEDCELLS records after such charts.
    read = True
    for kind, body in _records(stream, offset, nested=True):
        end += 4 + len(body)
        if kind == _EOF:
            read = False
        elif kind == _MERGEDCELLS and scan.merges_known:
            _merges(scan, body)
        elif not read:
            continue
        elif kind == _DIMENSIONS:
            _check_dimensions(body)
        elif kind in _CELLS and len(body) >= 4:
            row, column = _u16(body, 0), _u16(body, 2)
            scan.add(row, column)
            scan.cells += 1
            # A number, or a formula whose result is one (not marked 0xFFFF as text,
            # boolean or error): its XF may give it a format calamine does not honour.
            numeric = kind in (_NUMBER, _RK) or (kind == _FORMULA and body[12:14] != b"\xff\xff")
            if numeric and len(body) >= 6:
                _style(scan, row, column, _u16(body, 4), styles, kind, body, 6)
            # The value's top byte first (sign and exponent: at least -2**33 in magnitude
            # below 0xc2): decoding every number took half as long again as the scan.
            top = body[13] if kind == _FORMULA and len(body) >= 14 else body[-1]
            if numeric and top >= _LOW_TOP and _number(kind, body, 6) <= -OVERFLOW:
                _overflow(scan, column)
        elif kind == _MULRK and len(body) >= 6:
            row, first, last = _u16(body, 0), _u16(body, 2), _u16(body, len(body) - 2)
            scan.add(row, first)
            scan.add(row, max(first, last))
            scan.cells += (len(body) - 6) // 6  # six bytes per value
            for i in range((len(body) - 6) // 6):
                _style(scan, row, first + i, _u16(body, 4 + 6 * i), styles, _RK, body, 6 + 6 * i)
                if body[9 + 6 * i] >= _LOW_TOP and _number(_RK, body, 6 + 6 * i) <= -OVERFLOW:
                    _overflow(scan, first + i)
    return end


def _number(kind: int, body: bytes, at: int) -> float:
    """The number of a NUMBER or FORMULA record (a double at `at`) or of an RK value (four
    bytes at `at`: a 30-bit integer or a double's high 30 bits, either maybe divided by
    100); 0.0 where the record is too short to hold it."""
    if kind != _RK:
        return struct.unpack_from("<d", body, at)[0] if len(body) >= at + 8 else 0.0
    if len(body) < at + 4:
        return 0.0
    value = _u32(body, at)
    if value & 2:
        number = float(struct.unpack("<i", struct.pack("<I", value))[0] >> 2)
    else:
        number = struct.unpack("<d", struct.pack("<Q", (value & 0xFFFFFFFC) << 32))[0]
    return number / 100 if value & 1 else number


def _overflow(scan: SheetScan, column: int) -> None:
    # calamine panics (printing it, with RUST_BACKTRACE a backtrace) converting this number
    # to a date: `excel` keeps every load that would from the column.
    scan.overflow = True
    scan.overflow_columns.add(column)


def _merges(scan: SheetScan, body: bytes) -> None:
    """A MERGEDCELLS record: a count, then first row, last row, first column, last column of
    each range (Excel splits more than 1026 ranges over several records)."""
    count = min(_u16(body, 0), (len(body) - 2) // 8) if len(body) >= 2 else 0
    for at in range(2, 2 + 8 * count, 8):
        top, bottom, left, right = (_u16(body, at + i) for i in (0, 2, 4, 6))
        if top <= bottom and left <= right:  # else no range Excel writes: it covers nothing
            scan.add_merge(Merge(top, left, bottom, right))


def _style(
    scan: SheetScan,
    row: int,
    column: int,
    xf: int,
    styles: list[Shown | None],
    kind: int,
    body: bytes,
    at: int,
) -> None:
    """Note the cell's format if calamine does not honour it; a duration's value too, which
    is decoded only for such cells (`kind`, `body`, `at` as `_number` takes them)."""
    found = styles[xf] if xf < len(styles) else None
    if found is not None:
        scan.formats.add(row, column, found)
        if found.elapsed:
            scan.formats.keep_leap_day_serial(row, column, _number(kind, body, at))


def _check_dimensions(body: bytes) -> None:
    # calamine reserves room for the cells the DIMENSIONS record announces: a flipped bit in
    # its first row asked for 694 GB. Excel keeps it within 65,536 rows and 256 columns.
    if len(body) >= 14:  # BIFF8: 32-bit rows
        rows, columns = (_u32(body, 0), _u32(body, 4)), (_u16(body, 8), _u16(body, 10))
    else:
        rows, columns = (_u16(body, 0), _u16(body, 2)), (_u16(body, 4), _u16(body, 6))
    if not (rows[0] <= rows[1] <= 65536 and columns[0] <= columns[1] <= 256):
        raise NotXls(f"a sheet's DIMENSIONS record is damaged (rows {rows}, columns {columns})")


def _workbook_stream(data: bytes) -> bytes:
    """The "Workbook" (BIFF8) or "Book" (BIFF5) stream of an OLE2 compound file."""
    if len(data) < 512:
        raise NotXls("the compound file header is cut off")
    shift, mini_shift = _u16(data, 0x1E), _u16(data, 0x20)
    if shift not in (9, 12) or mini_shift != 6:
        raise NotXls("the compound file header is damaged")
    size = 1 << shift
    sectors = -(-len(data) // size) - 1  # the header takes the first sector's place
    # calamine sizes buffers from these counts (directory, FAT, mini FAT, DIFAT sectors)
    # before reading them: a flipped byte asked for 14 GB. None can exceed the file.
    if any(_u32(data, at) > sectors for at in (0x28, 0x2C, 0x40, 0x48)):
        raise NotXls("the compound file header counts more sectors than the file holds")

    def sector(index: int) -> bytes:
        if index >= sectors:
            raise NotXls(f"sector {index} lies beyond the end of the file")
        return data[(index + 1) * size : (index + 2) * size].ljust(size, b"\0")  # cut short

    fat_ids = [i for i in struct.unpack_from("<109I", data, 0x4C) if i <= _LAST_SECTOR]
    difat, seen = _u32(data, 0x44), 0
    while difat <= _LAST_SECTOR and seen <= sectors:  # more FAT sector ids, chained
        block = sector(difat)
        ids = struct.unpack(f"<{size // 4}I", block)
        fat_ids += [i for i in ids[:-1] if i <= _LAST_SECTOR]
        difat, seen = ids[-1], seen + 1
    fat = b"".join(sector(i) for i in fat_ids[: sectors + 1])
    fat_next = struct.unpack(f"<{len(fat) // 4}I", fat)

    def chain(start: int, table: tuple[int, ...]) -> list[int]:
        found = []
        while start != _END_OF_CHAIN:
            if start >= len(table) or len(found) > len(table):
                raise NotXls("a sector chain is broken or loops")
            found.append(start)
            start = table[start]
        return found

    directory = b"".join(sector(i) for i in chain(_u32(data, 0x30), fat_next))
    entries = [directory[i : i + 128] for i in range(0, len(directory) - 127, 128)]
    if not entries:
        raise NotXls("the compound file has no directory")
    for entry in entries:
        length = _u32(entry, 120) if size == 512 else int.from_bytes(entry[120:128], "little")
        if entry[66] in (1, 2, 5) and length > len(data):  # storage, stream, root
            raise NotXls("a stream is declared larger than the file")
    by_name = {
        entry[: min(_u16(entry, 64), 64)].decode("utf-16-le", "replace").rstrip("\0"): entry
        for entry in entries
        if entry[66] == 2  # a stream
    }
    entry = by_name.get("Workbook") or by_name.get("Book")
    if entry is None:
        raise NotXls("the compound file holds no workbook stream")
    start, length = _u32(entry, 116), _u32(entry, 120)
    if length >= 4096:  # whole sectors; smaller streams live in the mini stream
        stream = b"".join(sector(i) for i in chain(start, fat_next))
    else:
        root = entries[0]
        mini_stream = b"".join(sector(i) for i in chain(_u32(root, 116), fat_next))
        mini_fat = b"".join(sector(i) for i in chain(_u32(data, 0x3C), fat_next))
        mini_next = struct.unpack(f"<{len(mini_fat) // 4}I", mini_fat)
        stream = b"".join(mini_stream[i * 64 : (i + 1) * 64] for i in chain(start, mini_next))
    if len(stream) < length:
        raise NotXls("the workbook stream is cut off")
    return stream[:length]
