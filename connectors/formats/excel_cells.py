"""How each Excel cell is shown as text, from calamine's loads of a sheet as text, float,
datetime and boolean (see `excel`).

Rendering: numbers as digits (`1234.56`, `1e-07`; whole numbers without a decimal part),
dates as `YYYY-MM-DD`, date-times as `YYYY-MM-DD HH:MM:SS`, times of day as `HH:MM` (or
`HH:MM:SS` when the seconds are not zero). Excel stores a date and a date-time alike (a day
number; only the cell's display format differs, which calamine does not pass on), so a
column in which any date cell has a time renders all its date cells with the time, midnight
as `00:00:00`: a date-time field then accepts every value, and a date field accepts
`YYYY-MM-DD 00:00:00` too. A date cell beyond Excel's dates (a negative serial, or
31122024 typed into a date cell: Excel shows #####) renders as its number, for the typing
step to quarantine; times of day work in both the 1900 and the 1904 (Mac) date systems, and
.ods time cells read as times. In .xlsx, whole numbers in cells formatted with zeros only
(`0000`) get Excel's leading zeros (`xlsx_cells`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import polars as pl

from connectors.formats.workbook_package import Package
from connectors.formats.xlsx_cells import padded_cells, padded_styles

# calamine's names for Excel error values, back to what Excel shows in the cell.
ERROR_TEXT = {
    "Div0": "#DIV/0!",
    "NA": "#N/A",
    "Name": "#NAME?",
    "Null": "#NULL!",
    "Num": "#NUM!",
    "Ref": "#REF!",
    "Value": "#VALUE!",
    "GettingData": "#DATA!",
}
_ERROR_DETAIL = re.compile(r"Error\((\w+)\)")
# A date cell whose value is beyond any date calamine could convert (Excel shows #####).
DATE_DETAIL = re.compile(r"ExcelDateTime \{ value: ([-+0-9.eE]+|NaN|-?inf)")
# An .ods time cell, which calamine passes on as its ISO 8601 duration (PT13H45M00S).
_ISO_DURATION = re.compile(
    r"DurationIso\(\"(-)?P(?:(\d+)D)?T?(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?\""
)
_WHOLE = re.compile(r"-?[0-9]+")
_INT64_SAFE = 2.0**62
_MIDNIGHT = dt.time(0)
_DAY_MS = 86_400_000
# Excel's last date; a date cell beyond it (31122024 typed as a date) is no date at all.
_LAST_MOMENT = dt.datetime.max  # 9999-12-31 23:59:59.999999


@dataclass(frozen=True)
class DateSystem:
    """Where calamine puts serial day 0 in this workbook's date system.

    Serials 0 to 1 are times of day (Excel shows 0.5 in an hh:mm cell as 12:00); a negative
    serial is no date or time in Excel (it shows #####), so it is rendered as its number.
    """

    time_day: dt.datetime  # the day calamine gives serials 0 to 1
    epoch: dt.datetime  # serial 0 of calamine's date arithmetic
    leap_bug_end: dt.datetime  # before it calamine adds 1 (Excel's 1900-02-29)

    def serial(self, moment: pl.Expr) -> pl.Expr:
        days = (moment - self.epoch).dt.total_milliseconds() / _DAY_MS
        return pl.when(moment < self.leap_bug_end).then(days - 1).otherwise(days)


# calamine: 1900 system counts from 1899-12-30 and adds a day below serial 60 (Excel's
# non-existent 1900-02-29), so serial 0 lands on 1899-12-31; 1904 system counts from 1904-01-01.
SYSTEM_1900 = DateSystem(
    dt.datetime(1899, 12, 31), dt.datetime(1899, 12, 30), dt.datetime(1900, 3, 1)
)
SYSTEM_1904 = DateSystem(dt.datetime(1904, 1, 1), dt.datetime(1904, 1, 1), dt.datetime.min)


def error_text(detail: str, decimal_comma: bool) -> str | None:
    """The text of a cell the text load could not convert, from calamine's description."""
    found = _ERROR_DETAIL.search(detail)
    if found is not None:
        return ERROR_TEXT.get(found.group(1), f"#{found.group(1).upper()}")
    found = DATE_DETAIL.search(detail)
    if found is not None:  # a date cell beyond any date (Excel shows #####): its number
        text = number_text(float(found.group(1)))
        return text.replace(".", ",") if decimal_comma else text
    found = _ISO_DURATION.search(detail)
    if found is not None and any(found.groups()[1:]):  # an .ods time cell (PT13H45M00S)
        sign, days, hours, minutes, seconds = found.groups()
        total = round(
            (int(days or 0) * 24 + int(hours or 0)) * 3600
            + int(minutes or 0) * 60
            + float(seconds or 0)
        )
        hours_, rest = divmod(total, 3600)
        text = f"{sign or ''}{hours_:02}:{rest // 60:02}"
        return text + f":{rest % 60:02}" if rest % 60 else text
    return None


def pad(columns: list[pl.Series], package: Package | None, sheet: str, first: int) -> None:
    """Whole numbers in cells formatted `0000` get Excel's leading zeros (0800, a postcode).

    A CPR or postcode kept as a number with such a format shows as 0101451234 in Excel but
    is 101451234 to calamine, which does not pass number formats on.
    """
    member = package.members.get(sheet) if package is not None else None
    if package is None or member is None:
        return
    styles = padded_styles(package.archive)
    if not styles:
        return  # no zero-padding format in the workbook: the sheet's XML is not read again
    by_column: dict[int, dict[int, int]] = {}
    for (row, column), width in padded_cells(package.archive, member, styles).items():
        if 0 <= column - first < len(columns):
            by_column.setdefault(column - first, {})[row] = width
    for index, widths in by_column.items():
        series = columns[index]
        rows = [row for row in widths if row < series.len()]
        values = series.gather(rows).to_list()
        keep = [(r, v) for r, v in zip(rows, values, strict=True) if v and _WHOLE.fullmatch(v)]
        if keep:
            columns[index] = series.scatter(
                [r for r, _ in keep],
                [("-" if v[0] == "-" else "") + v.lstrip("-").zfill(widths[r]) for r, v in keep],
            )


def render(
    text: pl.Series,
    number: pl.Series,
    moment: pl.Series,
    flag: pl.Series,
    decimal_comma: bool,
    system: DateSystem = SYSTEM_1900,
) -> pl.Series:
    cells = pl.DataFrame(
        {
            "text": text.cast(pl.String),
            "number": number.cast(pl.Float64),
            "moment": moment.cast(pl.Datetime("ms")),
            "flag": flag.cast(pl.Boolean),
        }
    )
    is_date = pl.col("moment").is_not_null() & pl.col("number").is_null()
    # A negative serial or one past 9999-12-31 in a date cell is shown by Excel as #####:
    # it renders as its number, which the typing step quarantines (one row, not the file).
    no_date = is_date & ((pl.col("moment") < system.time_day) | (pl.col("moment") > _LAST_MOMENT))
    is_date = is_date & ~no_date
    is_bool = pl.col("flag").is_not_null() & pl.col("text").is_in(["true", "false"])
    is_number = pl.col("flag").is_not_null() & pl.col("number").is_not_null() & ~is_bool
    shown = pl.when(no_date).then(system.serial(pl.col("moment"))).otherwise(pl.col("number"))
    whole = (shown == shown.floor()) & (shown.abs() < _INT64_SAFE)
    # Excel shows times to the second; serial fractions land a millisecond off.
    moment_s = pl.col("moment").dt.round("1s")
    is_time = moment_s < system.time_day + dt.timedelta(days=1)
    # A date and a date-time are the same kind of cell to calamine: any time in the column
    # makes it a date-time column, whose midnights then keep their 00:00:00.
    has_times = (is_date & ~is_time & (moment_s.dt.time() != _MIDNIGHT)).any()
    date_text = (
        pl.when(is_time & (moment_s.dt.second() == 0))
        .then(moment_s.dt.strftime("%H:%M"))
        .when(is_time)
        .then(moment_s.dt.strftime("%H:%M:%S"))
        .when((moment_s.dt.time() == _MIDNIGHT) & ~has_times)
        .then(moment_s.dt.strftime("%Y-%m-%d"))
        .otherwise(moment_s.dt.strftime("%Y-%m-%d %H:%M:%S"))
    )
    numeric = is_number | no_date
    rendered = cells.select(
        pl.when(is_date)
        .then(date_text)
        .when(numeric & whole)
        .then(shown.cast(pl.Int64).cast(pl.String))
        .when(numeric)
        .then(pl.lit(None, dtype=pl.String))  # filled below with Python's repr
        .otherwise(pl.col("text"))
        .alias("value"),
        (numeric & ~whole).alias("needs_repr"),
        shown.alias("shown"),
    )
    value = rendered["value"]
    positions = rendered["needs_repr"].arg_true()
    if positions.len():
        texts = [number_text(v) for v in rendered["shown"].gather(positions).to_list()]
        if decimal_comma:
            texts = [t.replace(".", ",") for t in texts]
        value = value.scatter(positions, texts)
    return value


def number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
