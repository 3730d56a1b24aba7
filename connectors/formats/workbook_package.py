"""The zip package of an .xlsx/.xlsm (or .ods) workbook, checked before calamine opens it.

calamine trusts a workbook: it inflates every part it reads and allocates a grid of 32 bytes
per cell of a sheet's used range, so a 400 KB shared-strings bomb costs gigabytes and one
stray cell at XFD1048576 asks for 512 GiB and aborts the process. Here every part is checked
against the container limits (declared size and ratio, then read through once with its CRC,
so a header that lies is caught), and an .xlsx sheet's XML is scanned in steps for its used
range, its merged ranges, formulas saved without a result (openpyxl and similar writers
do not calculate; calamine would read them as empty cells) and numbers so far below zero
that calamine panics trying them as dates (OVERFLOW). An .ods file's content.xml is
scanned the same way for each table's used range (`table:number-rows-repeated` and
`table:number-columns-repeated` let a kilobyte of XML stand for millions of cells) and its
merged cells. Merged ranges are kept only in the header rows that can hold a group label.
"""

from __future__ import annotations

import html
import io
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from connectors.formats.containers import DEFAULT_MAX_BYTES, DEFAULT_MAX_RATIO, RATIO_FLOOR
from connectors.formats.errors import FormatError
from connectors.formats.number_formats import FormattedCells
from connectors.formats.ods_styles import padded_cell_styles
from connectors.formats.tag_attributes import tag_attributes

LAST_COLUMN = 16383  # XFD


def column_index(letters: str) -> int:
    """0-based index of an Excel column (A is 0, XFD is 16383)."""
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# The workbook part of an .xlsb (Excel's binary format, BIFF12), in place of xl/workbook.xml.
_BINARY_WORKBOOK = "xl/workbook.bin"
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, zlib.error)
_READ_STEP = 1 << 20
_SCAN_STEP = 1 << 22
_NS = rb"(?:[\w.-]+:)?"  # an optional namespace prefix (`x:c` in some writers)
# A cell as Excel, LibreOffice and the Python writers all write it, its reference first.
_CELL_REF = re.compile(rb'<c r="([A-Z]{1,3})([0-9]{1,7})"')
_TOKEN = re.compile(rb"<(/?)" + _NS + rb"(row|c)(?=[\s/>])([^>]*?)(/?)>")
_REF_ATTRIBUTE = re.compile(rb"(?:^|\s)r\s*=\s*[\"']([A-Za-z]{0,3})([0-9]{1,7})[\"']")
_MERGE = re.compile(
    rb"<" + _NS + rb"mergeCell\s[^>]*?ref\s*=\s*[\"']"
    rb"([A-Za-z]{1,3})([0-9]{1,7}):([A-Za-z]{1,3})([0-9]{1,7})[\"']"
)
# A formula cell with no value or an empty `<v/>` (as openpyxl and POI leave them), unless it
# is typed as text (t="str"). `<v></v>` is how xlsxwriter stores an empty-text result: kept.
_NO_RESULT = re.compile(
    rb"<" + _NS + rb"c((?:\s[^>]*)?)>\s*<" + _NS + rb"f\b[^>]*?(?:/>|>[^<]*</" + _NS + rb"f>)"
    rb"\s*(?:<" + _NS + rb"v\s*/>)?\s*</" + _NS + rb"c>"
)
_STRING_TYPE = re.compile(rb"\st\s*=\s*[\"']str[\"']")
# calamine panics (printing a Rust backtrace) turning a serial below about -1.07e11 days into
# a date, which it tries for a date cell in every load and for any number in the datetime
# load: a budget in øre can hold one. Only long or exponent values can be that low, so the
# few cell values found this way are parsed to see (`v>` first: the search is fast).
OVERFLOW = 1e11
NEGATIVE_CANDIDATE = re.compile(rb"v>\s*(-(?=[0-9.]*[eE]|[0-9.]{12})[^<\s]*)")
_SHEET_TAG = re.compile(rb"<" + _NS + rb"sheet\s([^>]*)>")
_RELATIONSHIP_TAG = re.compile(rb"<" + _NS + rb"Relationship\s([^>]*)>")
# calamine matches .ods elements by these literal names (no namespace resolution), and so
# does this scan. Attribute values are skipped whole: a formula like `[.A1]>0` holds a `>`.
_ODS_TOKEN = re.compile(
    rb"<(/?)(?:table|text):(table|table-column|table-row|table-cell|covered-table-cell"
    rb"|line-break|tab)(?=[\s/>])"
    rb"((?:[^>\"']+|\"[^\"]*\"|'[^']*')*)>"
)
# A number cell's value that may be at or below -OVERFLOW (long, or with an exponent), as
# LibreOffice, Excel and Google Sheets write it; looked for in a whole step of the XML
# before any cell is. A literal start keeps the search fast (a cell of a sheet of negative
# numbers costs more than one of positive numbers otherwise).
_ODS_NEGATIVE = re.compile(rb'office:value="(-(?:[0-9.]{12}|[0-9.]*[eE])[^"]*)"')
# Any of these makes calamine keep the cell (a `string` cell holds its text, even empty).
_ODS_VALUE = re.compile(
    rb"\s(?:office:(?:value|value-type|string-value|date-value|time-value|boolean-value)"
    rb"|table:formula)\s*="
)
_ODS_REPEATED = re.compile(rb"\stable:number-(rows|columns)-repeated\s*=\s*[\"']([^\"']*)[\"']")
# A line break or tab inside an .ods cell's text (`ods_for_calamine`).
_ODS_BREAK = re.compile(rb"<text:(line-break|tab)\s*/>")
# A formula cell whose result is an error, as LibreOffice writes it: `office:value-type=
# "string" office:string-value="" calcext:value-type="error"`, the error (#DIV/0!, #N/A,
# Err:502) in its text. No `<` is inside a tag, so `[^<]` keeps the match within one.
_ODS_ERROR = re.compile(rb"\scalcext:value-type\s*=\s*[\"']error[\"']")
_ODS_ERROR_CELL = re.compile(
    rb"<table:table-cell\s[^<]*?calcext:value-type\s*=\s*[\"']error[\"'][^<]*?>"
)
_ODS_STRING_VALUE = re.compile(rb"\soffice:string-value\s*=\s*(?:\"[^\"]*\"|'[^']*')")
# A merged cell spans the rows and columns below and right of it, which are written as
# `<table:covered-table-cell>` (calamine places them as cells, each in its own column).
_ODS_SPANNED = re.compile(rb"\stable:number-(rows|columns)-spanned\s*=\s*[\"']([^\"']*)[\"']")


DATA_MERGES_KEPT = 100  # merged ranges in the data rows remembered per sheet (`SheetScan`)


class Merge(NamedTuple):
    """A merged range, 0-based and inclusive: its text is in its top-left cell only."""

    top: int
    left: int
    bottom: int
    right: int
    # An .ods cell repeated over rows and columns stands for that many merged ranges, each
    # one row or column further on: kept as one, as a kilobyte can repeat a cell millions
    # of times.
    rows: int = 1
    columns: int = 1


@dataclass
class SheetScan:
    """What calamine will build from one sheet, read off the file without building it."""

    first_row: int = -1  # 0-based; -1 while no cell is seen
    last_row: int = -1
    first_column: int = LAST_COLUMN + 1
    last_column: int = -1
    # The rows that can hold a header's group labels (all header rows but the last): only
    # merged ranges starting in them are kept, one per top-left cell, as a forged file may
    # hold millions elsewhere (see `add_merge`).
    label_rows: range = range(0)
    merges: dict[tuple[int, int], Merge] = field(default_factory=dict)
    # False where the file cannot say what is merged (.xls before BIFF8, Excel 97, had no
    # merged cells), so header labels are carried right instead (see `excel`).
    merges_known: bool = True
    # Ranges merged down over more than one row and reaching below the header (a district
    # merged over its visits): only the top row holds the value, so the rows below would
    # load it empty. The first DATA_MERGES_KEPT, for `excel` to refuse.
    data_merges: list[Merge] = field(default_factory=list)
    no_result: str | None = None  # a formula cell saved without its result, e.g. "B3"
    overflow: bool = False  # a number cell at or below -OVERFLOW, too low for calamine
    # The columns (0-based) of such cells in an .xls or .ods sheet, which are read as they
    # are, with no load trying them as dates (an .xlsx's are rewritten: `without_overflows`).
    overflow_columns: set[int] = field(default_factory=set)
    # Cell elements written in the file (an .ods repeated cell once): a used range far
    # larger than this is mostly void, the shape of a small file that allocates gigabytes.
    cells: int = 0
    # A `<text:line-break/>` or `<text:tab/>` in an .ods cell, which calamine drops, and an
    # .ods formula cell holding an error, which it reads as empty (`Package.ods_for_calamine`).
    breaks: bool = False
    errors: bool = False
    # Number cells with a format calamine does not honour (.xls and .ods; an .xlsx sheet's
    # are read only when its styles have such a format: `xlsx_cells`).
    formats: FormattedCells = field(default_factory=FormattedCells)

    def add(self, row: int, column: int) -> None:
        if self.first_row < 0 or row < self.first_row:
            self.first_row = row
        self.last_row = max(self.last_row, row)
        self.first_column = min(self.first_column, column)
        self.last_column = max(self.last_column, column)

    def add_merge(self, merge: Merge) -> None:
        """Keep the merged range if it starts in a label row (at most one range per cell
        there, so header_rows x 16384 in all)."""
        labels, key = self.label_rows, (merge.top, merge.left)
        starts_in_labels = merge.top < labels.stop and labels.start < merge.top + merge.rows
        if starts_in_labels and merge.left <= LAST_COLUMN and key not in self.merges:
            self.merges[key] = merge
        # The header's last row is `labels.stop`; the data rows start after it.
        reaches_data = merge.bottom > merge.top and merge.bottom > labels.stop
        if reaches_data and len(self.data_merges) < DATA_MERGES_KEPT:
            self.data_merges.append(merge)


class Package:
    """An .xlsx/.xlsm (or .ods) zip, with each .xlsx sheet's XML found by its name."""

    def __init__(
        self,
        archive: zipfile.ZipFile,
        members: dict[str, str],
        hidden: set[str],
        charts: set[str],
    ) -> None:
        self.archive = archive
        self.members = members  # sheet name -> worksheet XML member (.xlsx only)
        self.hidden = hidden  # names of hidden and very hidden sheets (.xlsx only)
        self.charts = charts  # names of chart sheets, which hold no cells (.xlsx only)
        self.xlsx = "xl/workbook.xml" in archive.namelist()

    def scan(self, sheet: str, label_rows: range) -> SheetScan | None:
        """The .xlsx sheet's scan, with the merged ranges starting in `label_rows`."""
        member = self.members.get(sheet)
        return _scan_sheet(self.archive, member, label_rows) if member is not None else None

    def with_part(self, member: str, content: bytes) -> bytes:
        """The workbook's zip with one part's content replaced, the others as they are."""
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
            for info in self.archive.infolist():
                part = content if info.filename == member else self.archive.read(info)
                target.writestr(info.filename, part)
        return out.getvalue()

    def ods_for_calamine(self, data: bytes) -> bytes:
        """The workbook `data` (this .ods, whose scan found `breaks` or `errors`) with each
        cell's `<text:line-break/>` and `<text:tab/>` written as the character it stands for
        (calamine drops both, gluing "Hovedgade 1" and "2. tv." into "Hovedgade 12. tv."),
        and each error cell without its empty `office:string-value`: calamine reads that
        empty text, so a #DIV/0! that reads as such in an .xlsx was an empty cell here."""
        if self.xlsx or "content.xml" not in self.archive.namelist():
            return data
        content = _ODS_BREAK.sub(
            lambda tag: b"&#10;" if tag.group(1) == b"line-break" else b"&#9;",
            self.archive.read("content.xml"),
        )
        content = _ODS_ERROR_CELL.sub(lambda tag: _ODS_STRING_VALUE.sub(b"", tag.group(0)), content)
        return self.with_part("content.xml", content)

    def ods_scans(self, label_rows: range) -> list[tuple[str, SheetScan]]:
        """Each .ods table's name and scan, with the merged ranges starting in `label_rows`,
        in file order (empty for an .xlsx): calamine builds every table when it opens the
        file, a name given twice too."""
        if self.xlsx or "content.xml" not in self.archive.namelist():
            return []
        return _scan_ods(self.archive, label_rows)


def open_package(data: bytes, source_name: str) -> Package | None:
    """The workbook's zip, refused if it is a compression bomb; None if it is no zip.

    Every member is checked, not only those calamine reads first: it opens the shared strings
    and styles with the workbook and a sheet's XML when the sheet is loaded.
    """
    if not data.startswith(b"PK\x03\x04"):
        return None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except NotImplementedError as err:  # a zip feature Python cannot extract
        raise FormatError(
            source_name,
            f"the workbook's zip package cannot be read ({first_line(err)})",
            "Open and re-save the file in Excel or LibreOffice and deliver that copy",
        ) from err
    except _ZIP_ERRORS:
        return None  # calamine says what is wrong with it
    if _BINARY_WORKBOOK in archive.namelist():
        # calamine reads an .xlsb too, but none of the checks here can: one stray cell at
        # XFD1048576 in a 1 KB .xlsb made calamine ask for 512 GiB and abort the process.
        raise FormatError(
            source_name,
            "the workbook is an Excel binary workbook (.xlsb), which is not read",
            "Save it as an Excel workbook (.xlsx) in Excel (File > Save As) and deliver that",
        )
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > DEFAULT_MAX_RATIO:
            raise FormatError(
                source_name,
                f"the workbook part '{info.filename}' would expand {ratio:.0f} times"
                f" ({info.compress_size} to {info.file_size} bytes), more than"
                f" {DEFAULT_MAX_RATIO}; this looks like a compression bomb",
                "Ask for the file again, or open and re-save it in Excel and deliver that copy",
            )
    if total > DEFAULT_MAX_BYTES:
        raise FormatError(
            source_name,
            f"the workbook's parts hold {total} bytes uncompressed, more than {DEFAULT_MAX_BYTES}",
            "Ask for a smaller extract, or for the data as CSV",
        )
    for info in infos:
        try:
            # zipfile stops at the declared size and checks the CRC: a part whose header
            # understates its size (to slip past the check above) fails here.
            with archive.open(info) as stream:
                while stream.read(_READ_STEP):
                    pass
        except (*_ZIP_ERRORS, NotImplementedError, RuntimeError) as err:
            raise FormatError(
                source_name,
                f"the workbook part '{info.filename}' cannot be read ({first_line(err)})",
                "The file is damaged or forged: ask for it again, or open and re-save it in Excel",
            ) from err
    return Package(archive, *_sheet_members(archive))


def _sheet_members(archive: zipfile.ZipFile) -> tuple[dict[str, str], set[str], set[str]]:
    """Sheet name -> the member holding its XML, found the way calamine finds it; the
    names of the hidden sheets; and those of the chart sheets."""
    try:
        workbook = archive.read("xl/workbook.xml")
        relationships = archive.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return {}, set(), set()  # not an .xlsx (an .ods, say): no sheet scan
    targets, charts = {}, set()
    for tag in _RELATIONSHIP_TAG.finditer(relationships):
        attributes = tag_attributes(tag.group(1))
        if "Id" in attributes and "Target" in attributes:
            targets[attributes["Id"]] = attributes["Target"]
            if attributes.get("Type", "").endswith("/chartsheet"):
                charts.add(attributes["Id"])
    names = {name.lower(): name for name in archive.namelist()}
    members, hidden, chart_sheets = {}, set(), set()
    for tag in _SHEET_TAG.finditer(workbook):
        attributes = tag_attributes(tag.group(1))
        if attributes.get("state", "visible") != "visible":
            hidden.add(attributes.get("name", ""))
        if _relationship_id(attributes) in charts:
            chart_sheets.add(attributes.get("name", ""))
        target = targets.get(_relationship_id(attributes))
        if "name" not in attributes or target is None:
            continue
        path = target[1:] if target.startswith("/xl/") else target
        path = path if path.startswith("xl/") else f"xl/{path}"
        member = names.get(path.replace("\\", "/").lower())
        if member is not None:
            members[attributes["name"]] = member
    return members, hidden, chart_sheets


def _relationship_id(attributes: dict[str, str]) -> str:
    """The sheet's relationship id as calamine takes it: the last attribute named `id` in
    any namespace. Its prefix is the file's choice (`r:`, `rr:`, none at all), so matching
    `r:id` alone let a workbook steer calamine to a sheet this scan never saw."""
    found = ""
    for key, value in attributes.items():
        if key.rpartition(":")[2] == "id":
            found = value
    return found


def _scan_sheet(archive: zipfile.ZipFile, member: str, label_rows: range) -> SheetScan:
    """The used range, merges and result-less formulas of one sheet's XML, read in steps.

    Cells written `<c r="B3"` (by Excel, LibreOffice and the Python writers) are found by one
    fast regular expression, empty `<c r="B3" s="1"/>` ones too, which calamine skips: the
    range may come out larger, never smaller. A sheet with any other cell tag (no reference,
    a namespace prefix) is walked again tag by tag, placing cells the way calamine does.
    """
    scan = SheetScan(label_rows=label_rows)
    for text in _xml_steps(archive, member):
        refs = _CELL_REF.findall(text)
        tags = text.count(b"<c ") + text.count(b"<c>")
        if len(refs) != tags or b":c " in text or b":c>" in text:
            return _walk_sheet(archive, member, label_rows)
        scan.cells += len(refs)
        if refs:
            letters = [column_index(c.decode()) for c in {letters for letters, _ in refs}]
            numbers = [int(r) for r in {digits for _, digits in refs}]
            scan.add(min(numbers) - 1, min(letters))
            scan.add(max(numbers) - 1, max(letters))
        _scan_extras(scan, text)
    return scan


class CellPlacer:
    """Places an .xlsx sheet's `<row>` and `<c>` tags as calamine does, references or not.

    A cell without `r` follows the one before in its row; an empty `<c/>` takes its column
    too. A row ends a row, an empty `<row/>` as well (moving to its `r` first, if any): a
    kilobyte of `<row/>` before a row of unreferenced cells puts them a million rows down.
    """

    def __init__(self) -> None:
        self.row = self.column = 0

    def place(
        self, closing: bytes, name: bytes, attributes: bytes, empty: bytes
    ) -> tuple[int, int] | None:
        """The (row, column) of a cell start tag, 0-based; None for any other tag."""
        ref = _REF_ATTRIBUTE.search(attributes)
        if name == b"row":
            if not closing and ref is not None:
                self.row = int(ref.group(2)) - 1
            if closing or empty:
                self.row, self.column = self.row + 1, 0
            return None
        if closing:
            return None
        if ref is not None and ref.group(1):
            self.column = column_index(ref.group(1).decode())
            position = int(ref.group(2)) - 1, self.column
        else:
            position = self.row, self.column
        self.column += 1
        return position


def placed_cells(archive: zipfile.ZipFile, member: str) -> Iterator[tuple[int, int, bytes]]:
    """Each `<c>` tag of a sheet's XML where calamine places it: (row, column, attributes),
    0-based."""
    placer = CellPlacer()
    for text in _xml_steps(archive, member):
        for closing, name, attributes, empty in _TOKEN.findall(text):
            position = placer.place(closing, name, attributes, empty)
            if position is not None:
                yield *position, attributes


def _walk_sheet(archive: zipfile.ZipFile, member: str, label_rows: range) -> SheetScan:
    scan = SheetScan(label_rows=label_rows)
    placer = CellPlacer()
    for text in _xml_steps(archive, member):
        for tag in _TOKEN.findall(text):
            position = placer.place(*tag)
            # An empty `<c/>` holds nothing; it counts only where it moves the cells after it.
            if position is not None and not tag[3]:
                scan.add(*position)
                scan.cells += 1
        _scan_extras(scan, text)
    return scan


def overflows(value: bytes) -> bool:
    """Whether a cell value is too low for calamine to try it as a date (see OVERFLOW)."""
    try:
        return float(value) <= -OVERFLOW
    except ValueError:
        return False


def _scan_extras(scan: SheetScan, text: bytes) -> None:
    if not scan.overflow:
        scan.overflow = any(overflows(v) for v in NEGATIVE_CANDIDATE.findall(text))
    # Both patterns try every `<`: look for their names first (merges and formulas are few),
    merges = _MERGE.findall(text) if b"mergeCell" in text else []
    for left, top, right, bottom in merges:
        scan.add_merge(
            Merge(
                int(top) - 1,
                column_index(left.decode()),
                int(bottom) - 1,
                column_index(right.decode()),
            )
        )
    if scan.no_result is None and (b"<f" in text or b":f" in text):
        for found in _NO_RESULT.finditer(text):
            if not _STRING_TYPE.search(found.group(1)):
                ref = _REF_ATTRIBUTE.search(found.group(1))
                scan.no_result = (ref.group(1) + ref.group(2)).decode() if ref else "a cell"
                break


def _xml_steps(archive: zipfile.ZipFile, member: str) -> Iterator[bytes]:
    """The member's bytes in steps of about 4 MiB, each ending after a whole row where it can
    (so a cell is never cut in two) or else after a whole tag."""
    rest = b""
    with archive.open(member) as stream:
        while step := stream.read(_SCAN_STEP):
            text = rest + step
            cut = text.rfind(b"</row>")
            cut = cut + len(b"</row>") if cut >= 0 else text.rfind(b">") + 1
            yield text[:cut]
            rest = text[cut:]
    yield rest


def _scan_ods(archive: zipfile.ZipFile, label_rows: range) -> list[tuple[str, SheetScan]]:
    """Each named table's used range as calamine builds it: rows and cells in order, each
    repeated as its attribute says, the range spanning the cells that hold something; and
    its merged cells (`table:number-columns-spanned`, `-rows-spanned`) in `label_rows`.

    Repeated empty cells and rows (LibreOffice ends every row and table with them) add to
    no range, as calamine only places them before a later cell that holds something.
    Number cells whose style pads them with zeros (`ods_styles`) go into the scan's formats.
    """
    tables: list[tuple[str, SheetScan]] = []
    scan: SheetScan | None = None
    row = next_row = column = 0
    height, in_row = 1, False
    padded = padded_cell_styles(archive)  # usually empty: no cell's style is looked at
    row_style: str | None = None
    declared = 0  # the columns declared by the table's <table:table-column> so far
    for text in _tag_steps(archive, "content.xml"):
        low = any(overflows(v) for v in _ODS_NEGATIVE.findall(text))
        for closing, name, attributes in _ODS_TOKEN.findall(text):
            if closing or name == b"table":
                if name == b"table":
                    # calamine reads the rows of a table with a name only.
                    table = None if closing else tag_attributes(attributes).get("table:name")
                    scan = SheetScan(label_rows=label_rows) if table is not None else None
                    if scan is not None and table is not None:
                        tables.append((table, scan))
                    next_row, in_row, declared = 0, False, 0
                elif name == b"table-row":
                    in_row = False
            elif scan is None:
                continue
            elif name in (b"line-break", b"tab"):
                scan.breaks = True
            elif name == b"table-column":
                count = _repeats(attributes, b"columns")
                if padded:
                    style = tag_attributes(attributes).get("table:default-cell-style-name", "")
                    if style in padded:
                        scan.formats.add_column_default(declared, count, padded[style])
                declared += count
            elif name == b"table-row":
                row, height, column = next_row, _repeats(attributes, b"rows"), 0
                next_row += height
                in_row = not attributes.endswith(b"/")
                if padded:
                    row_style = tag_attributes(attributes).get("table:default-cell-style-name")
            elif in_row:  # calamine reads cells within a row only
                width = _repeats(attributes, b"columns")
                if name == b"table-cell" and b"-spanned" in attributes:
                    down, across = (
                        _count(_ODS_SPANNED, attributes, b"rows"),
                        _count(_ODS_SPANNED, attributes, b"columns"),
                    )
                    if down > 1 or across > 1:  # repeated, as the cell is (`Merge`)
                        right = column + across - 1
                        scan.add_merge(Merge(row, column, row + down - 1, right, height, width))
                if _ODS_VALUE.search(attributes):
                    if b"error" in attributes and _ODS_ERROR.search(attributes):
                        scan.errors = True
                    scan.add(row, column)
                    scan.add(row + height - 1, column + width - 1)
                    scan.cells += 1
                    value = _ODS_NEGATIVE.search(attributes) if low else None
                    if value is not None and overflows(value.group(1)):
                        scan.overflow = True
                        scan.overflow_columns.update(range(column, column + width))
                    cell = tag_attributes(attributes) if padded else {}
                    if cell.get("office:value-type") == "float":
                        # Its own style, else its row's, else its column's (in `formats`).
                        style = cell.get("table:style-name") or row_style
                        if style is None:
                            scan.formats.add_unstyled(row, column, height, width)
                        elif style in padded:
                            scan.formats.add(row, column, padded[style], height, width)
                column += width
    return tables


def _repeats(attributes: bytes, kind: bytes) -> int:
    return _count(_ODS_REPEATED, attributes, kind)


def _count(pattern: re.Pattern[bytes], attributes: bytes, kind: bytes) -> int:
    """The number a repeat or span attribute gives, at least 1."""
    for found in pattern.finditer(attributes):
        if found.group(1) == kind:  # the first, as calamine takes it
            try:
                return max(int(html.unescape(found.group(2).decode("utf-8", "replace"))), 1)
            except ValueError:
                return 1  # calamine refuses the file itself
    return 1


def _tag_steps(archive: zipfile.ZipFile, member: str) -> Iterator[bytes]:
    """The member's bytes in steps of about 4 MiB, each cut just before a `<`: no tag is cut
    in two, even one whose attribute value holds a `>`."""
    rest = b""
    with archive.open(member) as stream:
        while step := stream.read(_SCAN_STEP):
            text = rest + step
            cut = max(text.rfind(b"<"), 0)
            yield text[:cut]
            rest = text[cut:]
    yield rest
