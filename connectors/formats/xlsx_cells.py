"""What calamine does not pass on from an .xlsx: the date system, number formats, error values.

calamine gives a cell's value but not its number format, so a CPR typed as a number in a
cell formatted `0000000000` reads as 101451234 where Excel shows 0101451234, and a duration
formatted `[h]:mm` as a date (see `number_formats`); and it refuses a whole sheet over one
Excel 365 error value (#SPILL!) without saying which cell. These small readers look at the
workbook's own XML for exactly that, and only when needed: the sheet's XML is scanned for
styles only if styles.xml has such a format at all.
"""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterator

from connectors.formats.number_formats import BUILTIN, FormattedCells, Shown, shown
from connectors.formats.tag_attributes import tag_attributes
from connectors.formats.workbook_package import (
    NEGATIVE_CANDIDATE,
    column_index,
    overflows,
    placed_cells,
)

_STEP = 1 << 22
_NS = rb"(?:[\w.-]+:)?"
_DATE_1904 = re.compile(rb"<" + _NS + rb"workbookPr\s[^>]*?date1904\s*=\s*[\"'](?:1|true)[\"']")
_NUM_FMT = re.compile(rb"<" + _NS + rb"numFmt\s([^>]*)>")
_CELL_XFS = re.compile(rb"<" + _NS + rb"cellXfs\b[^>]*>(.*?)</" + _NS + rb"cellXfs>", re.S)
_XF = re.compile(rb"<" + _NS + rb"xf\b([^>]*)>")
_CELL_START = re.compile(rb"<" + _NS + rb"c\s([^>]*?)/?>")
_VALUE = re.compile(rb"<" + _NS + rb"v>([^<]*)<")
_CELL_END = re.compile(rb"</" + _NS + rb"c>")
_REF = re.compile(r"([A-Za-z]{1,3})([0-9]{1,7})")


def date_1904(archive: zipfile.ZipFile) -> bool:
    """Whether the workbook counts days from 1904-01-01 (Mac Excel's date system)."""
    try:
        return _DATE_1904.search(archive.read("xl/workbook.xml")) is not None
    except KeyError:
        return False


def number_styles(archive: zipfile.ZipFile) -> dict[str, Shown]:
    """Cell style index (the `s` attribute, as text) -> how Excel shows its numbers, for the
    styles whose number format calamine does not honour."""
    try:
        styles = archive.read("xl/styles.xml")
    except KeyError:
        return {}
    codes = {str(number): code for number, code in BUILTIN.items()}
    for tag in _NUM_FMT.finditer(styles):
        attributes = tag_attributes(tag.group(1))
        codes[attributes.get("numFmtId", "")] = attributes.get("formatCode", "")
    formats = {number: found for number, code in codes.items() if (found := shown(code))}
    xfs = _CELL_XFS.search(styles)
    found = {}
    for index, tag in enumerate(_XF.finditer(xfs.group(1) if xfs else b"")):
        format_ = formats.get(tag_attributes(tag.group(1)).get("numFmtId", ""))
        if format_ is not None:
            found[str(index)] = format_
    return found


def formatted_cells(
    archive: zipfile.ZipFile, member: str, styles: dict[str, Shown]
) -> FormattedCells:
    """The sheet's number cells whose style is one of `styles`."""
    cells = FormattedCells()
    pattern = _CELL_START
    if "0" not in styles:  # else a cell without `s` has one (the first style is the default)
        # Only the cells with one of these styles, not every cell's attributes, are read.
        names = b"|".join(re.escape(name.encode()) for name in styles)
        pattern = re.compile(
            rb"<" + _NS + rb"c\s((?:[^>]*?\s)?s\s*=\s*[\"'](?:" + names + rb")[\"'][^>]*?)/?>"
        )
    for chunk in _chunks(archive, member):
        for tag in pattern.finditer(chunk):
            attributes = tag_attributes(tag.group(1))
            format_ = _number_format(attributes, styles)
            if format_ is None:
                continue
            position = _position(attributes.get("r", ""))
            if position is None:  # a cell placed by the cells before it: walk them all
                return _placed_formatted_cells(archive, member, styles)
            cells.add(*position, format_)
            if format_.elapsed and not tag.group(0).endswith(b"/>"):
                serial = _stored_number(chunk, tag.end())
                if serial is not None:
                    cells.keep_leap_day_serial(*position, serial)
    return cells


def _stored_number(chunk: bytes, start: int) -> float | None:
    """The stored value of the cell whose start tag ends at `start`, if it is a number."""
    end = _CELL_END.search(chunk, start)
    value = _VALUE.search(chunk, start, end.start()) if end is not None else None
    if value is None:
        return None
    try:
        return float(value.group(1))
    except ValueError:
        return None


def _placed_formatted_cells(
    archive: zipfile.ZipFile, member: str, styles: dict[str, Shown]
) -> FormattedCells:
    """`formatted_cells` for a sheet whose cells lack references, every tag placed in turn."""
    cells = FormattedCells()
    for row, column, attributes in placed_cells(archive, member):
        format_ = _number_format(tag_attributes(attributes), styles)
        if format_ is not None:
            cells.add(row, column, format_)
    return cells


def _number_format(attributes: dict[str, str], styles: dict[str, Shown]) -> Shown | None:
    """The cell's format among `styles`, for number cells only: a text cell (t="s", "str",
    "inlineStr") shows as typed. A cell without `s` has the first style, which may be a
    workbook's default."""
    if attributes.get("t", "n") != "n":
        return None
    return styles.get(attributes.get("s", "0"))


def without_overflows(
    archive: zipfile.ZipFile, member: str
) -> tuple[bytes, list[tuple[tuple[int, int] | None, float]]]:
    """The sheet's XML with 0 in place of each number cell's value too low for calamine to
    try as a date (`workbook_package.OVERFLOW`), and those cells: their (row, column),
    0-based (None for a cell without a reference), and their values."""
    parts, cells = [], []
    for chunk in _chunks(archive, member):
        done = 0
        for candidate in NEGATIVE_CANDIDATE.finditer(chunk):
            if not overflows(candidate.group(1)):
                continue
            # The value's cell: the last cell start before it, with no cell end between.
            start = max(
                chunk.rfind(b"<c ", 0, candidate.start()), chunk.rfind(b":c ", 0, candidate.start())
            )
            tag = _CELL_START.match(chunk, chunk.rfind(b"<", 0, start + 1)) if start >= 0 else None
            end = _CELL_END.search(chunk, tag.end()) if tag is not None else None
            if tag is None or end is None or end.start() < candidate.start():
                continue  # not a cell's value (text that looks like one)
            attributes = tag_attributes(tag.group(1))
            value = _VALUE.search(chunk, tag.end(), end.start())
            inside = value is not None and value.start(1) <= candidate.start(1) < value.end(1)
            if attributes.get("t", "n") != "n" or not inside:
                continue  # a text cell, or the number is in its formula, not its value
            cells.append((_position(attributes.get("r", "")), float(candidate.group(1))))
            parts += [chunk[done : candidate.start(1)], b"0"]
            done = candidate.end(1)
        parts.append(chunk[done:])
    return b"".join(parts), cells


def error_cell(archive: zipfile.ZipFile, member: str, known: set[str]) -> tuple[str, str] | None:
    """The first error cell (t="e") whose value is not in `known`: its reference and value."""
    for chunk in _chunks(archive, member):
        for tag in _CELL_START.finditer(chunk):
            attributes = tag_attributes(tag.group(1))
            end = _CELL_END.search(chunk, tag.end())
            if attributes.get("t") != "e" or tag.group(0).endswith(b"/>") or end is None:
                continue
            found = _VALUE.search(chunk, tag.end(), end.start())
            value = html.unescape(found.group(1).decode("utf-8", "replace")) if found else ""
            if value.strip() not in known:
                return attributes.get("r", "?"), value.strip()
    return None


def _chunks(archive: zipfile.ZipFile, member: str) -> Iterator[bytes]:
    """The member's XML in steps, each cut before a cell's start so no cell is split."""
    rest = b""
    with archive.open(member) as stream:
        while data := stream.read(_STEP):
            buffer = rest + data
            cut = max(buffer.rfind(b"<c "), buffer.rfind(b":c "))
            cut = max(buffer.rfind(b"<", 0, cut + 1), 0) if cut >= 0 else len(buffer)
            yield buffer[:cut]
            rest = buffer[cut:]
    yield rest


def _position(reference: str) -> tuple[int, int] | None:
    found = _REF.fullmatch(reference)
    if found is None:
        return None
    return int(found.group(2)) - 1, column_index(found.group(1))
