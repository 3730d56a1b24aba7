"""The number formats that change what a cell shows in ways calamine does not pass on.

calamine gives a cell's value and whether its format is a date, but not the format itself:

    format                 value        Excel shows   calamine gives
    0000000000 (zeros)     101451234    0101451234    101451234
    [h]:mm (elapsed time)  1.5          36:00         1900-01-01 12:00:00
    hh:mm (time of day)    1.5          12:00         1900-01-01 12:00:00

Each workbook format keeps formats its own way (.xlsx styles.xml, .xls FORMAT and XF
records, .ods number styles); their readers find the cells with such a format, and
`excel_cells` renders those cells as Excel shows them.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

# Excel's built-in formats have no format code in the file, only their id: 46 is the one
# elapsed-time format among them, 18 to 21 its times of day (none pads with zeros).
BUILTIN = {18: "h:mm AM/PM", 19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 46: "[h]:mm:ss"}
# A format of zeros only (`0000`, `0000000000`): Excel pads a whole number to that width.
_ZEROS = re.compile(r"0{2,}")
# Quoted text and escaped characters are shown as written, never read as codes (`_x` is a
# space as wide as x, `*x` repeats x to fill the cell).
_LITERAL = re.compile(r'"[^"]*"?|[\\_*].')
# The first unit of a format: an elapsed one in brackets ([h], [mm], [ss]), or a date or
# time letter outside brackets (d, m, y, h, s; other brackets are colours, locales and
# conditions such as [Red], [$-406] and [<100]).
_FIRST_UNIT = re.compile(r"\[(h+|m+|s+)\]|\[[^\]]*\]|([dmyhs])", re.IGNORECASE)
_BRACKETS = re.compile(r"\[[^\]]*\]")
_AM_PM = re.compile(r"AM/PM|A/P", re.IGNORECASE)  # their letters are no units
_UNITS = re.compile(r"d+|m+|y+|h+|s+", re.IGNORECASE)


@dataclass(frozen=True)
class Shown:
    """How Excel shows a number cell, where calamine reads it otherwise."""

    zeros: int = 0  # the width of a zeros-only format: whole numbers get leading zeros
    elapsed: str = ""  # "h", "m" or "s": a duration in hours ([h]:mm), minutes or seconds
    clock: bool = False  # a time of day (hh:mm), no date: a date and time shows its time


def shown(code: str) -> Shown | None:
    """What the format code changes, or None if calamine reads its cells as Excel shows them."""
    if _ZEROS.fullmatch(code):
        return Shown(zeros=len(code))
    first_section = _LITERAL.sub("", code).split(";")[0]
    for found in _FIRST_UNIT.finditer(first_section):
        if found.group(1):
            return Shown(elapsed=found.group(1)[0].lower())
        if found.group(2):
            # A date calamine reads itself; a time of day too, unless the value holds a
            # date as well (1.5 is 1900-01-01 12:00 to calamine, 12:00 in an hh:mm cell).
            return Shown(clock=True) if _time_of_day(first_section) else None
    return None


def _time_of_day(section: str) -> bool:
    """Whether the format shows hours and perhaps minutes and seconds, and no date: `m` is
    minutes after an hour or before seconds (`hh:mm`, `mm:ss`), else a month."""
    units = [run[0].lower() for run in _UNITS.findall(_AM_PM.sub("", _BRACKETS.sub("", section)))]
    for i, unit in enumerate(units):
        minutes = (i > 0 and units[i - 1] == "h") or (i + 1 < len(units) and units[i + 1] == "s")
        if unit in "dy" or (unit == "m" and not minutes):
            return False
    return "h" in units


class FormattedCells:
    """Where a sheet's number cells with such a format are, as runs of rows and columns.

    An .ods cell may be repeated over many rows and columns, and one without a style of its
    own takes its column's default: such cells are kept as runs and matched with the
    column defaults only when the sheet is loaded, after its size has been checked.
    """

    def __init__(self) -> None:
        self.runs: list[tuple[int, int, int, int, Shown]] = []  # row, column, rows, columns
        self.column_defaults: list[tuple[int, int, Shown]] = []  # column, columns, shown
        self.unstyled: list[tuple[int, int, int, int]] = []  # row, column, rows, columns
        # (row, column) -> the stored serial of a duration calamine reads a day short
        self.serials: dict[tuple[int, int], float] = {}

    def add(self, row: int, column: int, shown: Shown, rows: int = 1, columns: int = 1) -> None:
        self.runs.append((row, column, rows, columns, shown))

    def keep_leap_day_serial(self, row: int, column: int, serial: float) -> None:
        """Keep a duration cell's stored serial if it is one calamine reads a day short."""
        if _LEAP_DAY[0] <= serial < _LEAP_DAY[1]:
            self.serials[(row, column)] = serial

    def add_column_default(self, column: int, columns: int, shown: Shown) -> None:
        """Columns whose cells without a style of their own show numbers so (in order)."""
        self.column_defaults.append((column, columns, shown))

    def add_unstyled(self, row: int, column: int, rows: int = 1, columns: int = 1) -> None:
        """Number cells without a style of their own: their column's default applies. Kept
        only if one of their columns has such a default (defaults are added left to right)."""
        index = bisect.bisect_left(self.column_defaults, column + columns, key=lambda d: d[0])
        if index > 0:  # the last default starting before the cells end: does it reach them?
            start, count, _ = self.column_defaults[index - 1]
            if start + count > column:
                self.unstyled.append((row, column, rows, columns))

    def by_column(self, first: int, width: int) -> dict[int, list[tuple[int, int, Shown]]]:
        """Columns `first` to `first + width - 1` (numbered from 0 at `first`) -> the runs of
        rows in them with such a format: (first row, rows, shown)."""
        columns: dict[int, list[tuple[int, int, Shown]]] = {}
        window = range(first, first + width)
        for row, column, rows, count, shown in self.runs:
            for index in _overlap(window, column, count):
                columns.setdefault(index - first, []).append((row, rows, shown))
        defaults = {}
        for column, count, shown in self.column_defaults:
            defaults.update(dict.fromkeys(_overlap(window, column, count), shown))
        for row, column, rows, count in self.unstyled:
            for index in _overlap(window, column, count):
                if index in defaults:
                    columns.setdefault(index - first, []).append((row, rows, defaults[index]))
        return columns

    def serials_by_column(self, first: int, width: int) -> dict[int, list[tuple[int, float]]]:
        """`serials` of columns `first` to `first + width - 1` (numbered from 0 at `first`):
        (row, serial) each."""
        columns: dict[int, list[tuple[int, float]]] = {}
        for (row, column), serial in self.serials.items():
            if first <= column < first + width:
                columns.setdefault(column - first, []).append((row, serial))
        return columns


# calamine turns serials 60 to 61 (Excel's 29 February 1900, a day that never was) into the
# same moments as 59 to 60, so a duration of 1,440 to 1,464 hours read 24 hours short.
_LEAP_DAY = (60.0, 61.0)


def _overlap(window: range, first: int, count: int) -> range:
    return range(max(window.start, first), min(window.stop, first + count))
