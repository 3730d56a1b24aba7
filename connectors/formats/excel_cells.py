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
.ods time cells read as times. Some number formats change what Excel shows in ways calamine
does not pass on (`number_formats`): whole numbers in cells formatted with zeros only
(`0000`) get Excel's leading zeros, durations formatted as elapsed time read as hours
(`[h]:mm`: 1.5 is `36:00`, `36:00:15` with seconds), minutes (`[mm]:ss`: `2160:00`) or
seconds (`[ss]`), not as dates, and a date and time in a cell formatted as a time of day
(`hh:mm`: 1.5, or 2024-01-02 06:00) reads as its time, `12:00` (`06:00`), in .xlsx and .xls.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import NamedTuple

import polars as pl

from connectors.formats.number_formats import Shown

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
_WHOLE = r"^-?[0-9]+$"
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
    days: float  # the serial just past 9999-12-31, Excel's last day
    negative_times: bool  # whether Excel shows a negative duration (-36:00), not #####

    def serial(self, moment: pl.Expr) -> pl.Expr:
        days = (moment - self.epoch).dt.total_milliseconds() / _DAY_MS
        return pl.when(moment < self.leap_bug_end).then(days - 1).otherwise(days)


# calamine: 1900 system counts from 1899-12-30 and adds a day below serial 60 (Excel's
# non-existent 1900-02-29), so serial 0 lands on 1899-12-31; 1904 system counts from 1904-01-01.
SYSTEM_1900 = DateSystem(
    dt.datetime(1899, 12, 31),
    dt.datetime(1899, 12, 30),
    dt.datetime(1900, 3, 1),
    days=2_958_466,
    negative_times=False,
)
SYSTEM_1904 = DateSystem(
    dt.datetime(1904, 1, 1),
    dt.datetime(1904, 1, 1),
    dt.datetime.min,
    days=2_958_466 - 1462,
    negative_times=True,
)


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


class ColumnFormats(NamedTuple):
    """A column's number formats that calamine does not honour, by row; None where no cell
    has one (`number_formats.Shown`)."""

    zeros: pl.Series | None = None  # zero-padding widths
    elapsed: pl.Series | None = None  # elapsed-time units (h, m, s)
    clock: pl.Series | None = None  # true for times of day (hh:mm)


def column_formats(runs: list[tuple[int, int, Shown]], height: int) -> ColumnFormats:
    """A column's formats by row, from its formatted runs (`number_formats.FormattedCells`)."""
    rows: list[int] = []
    formats: list[Shown] = []
    for first, count, shown in runs:
        span = range(first, min(first + count, height))
        rows.extend(span)
        formats.extend([shown] * len(span))
    if not rows:
        return ColumnFormats()

    def by_row(values: list[object], dtype: type[pl.DataType]) -> pl.Series | None:
        series = pl.Series([None] * height, dtype=dtype).scatter(
            rows, pl.Series(values, dtype=dtype)
        )
        return series if series.null_count() < height else None

    return ColumnFormats(
        by_row([f.zeros or None for f in formats], pl.Int64),
        by_row([f.elapsed or None for f in formats], pl.String),
        by_row([f.clock or None for f in formats], pl.Boolean),
    )


def pad(text: pl.Series, zeros: pl.Series) -> pl.Series:
    """Whole numbers in cells formatted `0000` get Excel's leading zeros (0800, a postcode).

    A CPR or postcode kept as a number with such a format shows as 0101451234 in Excel but
    is 101451234 to calamine, which does not pass number formats on. `zeros` is each row's
    width (null for no such format); Excel puts a minus sign before the padded digits.
    """
    value, width = pl.col("text"), pl.col("zeros")
    sign = pl.when(value.str.starts_with("-")).then(pl.lit("-")).otherwise(pl.lit(""))
    padded = pl.concat_str(sign, value.str.strip_prefix("-").str.zfill(width))
    return (
        pl.DataFrame({"text": text, "zeros": zeros})
        .select(
            pl.when(width.is_not_null() & value.str.contains(_WHOLE)).then(padded).otherwise(value)
        )
        .to_series()
        .alias(text.name)
    )


def render(
    text: pl.Series,
    number: pl.Series,
    moment: pl.Series,
    flag: pl.Series,
    decimal_comma: bool,
    system: DateSystem = SYSTEM_1900,
    elapsed: pl.Series | None = None,
    clock: pl.Series | None = None,
    serials: pl.Series | None = None,
) -> pl.Series:
    """One column's cells as text; `elapsed` is each row's elapsed-time unit (h, m or s) for
    cells formatted as a duration ([h]:mm), `clock` true for cells formatted as a time of
    day (hh:mm), both null elsewhere; `serials` the stored serial where calamine's moment
    for it is a day off (`number_formats._LEAP_DAY`), null elsewhere."""
    cells = pl.DataFrame(
        {
            "text": text.cast(pl.String),
            "number": number.cast(pl.Float64),
            "moment": moment.cast(pl.Datetime("ms")),
            "flag": flag.cast(pl.Boolean),
            "elapsed": pl.repeat(None, len(text), dtype=pl.String, eager=True)
            if elapsed is None
            else elapsed,
            "clock": pl.repeat(None, len(text), dtype=pl.Boolean, eager=True)
            if clock is None
            else clock,
            "stored": pl.repeat(None, len(text), dtype=pl.Float64, eager=True)
            if serials is None
            else serials,
        }
    )
    is_date = pl.col("moment").is_not_null() & pl.col("number").is_null()
    is_bool = pl.col("flag").is_not_null() & pl.col("text").is_in(["true", "false"])
    is_number = pl.col("flag").is_not_null() & pl.col("number").is_not_null() & ~is_bool
    moment_serial = pl.coalesce(pl.col("stored"), system.serial(pl.col("moment")))
    serial = pl.when(is_date).then(moment_serial).otherwise(pl.col("number"))
    # A duration is its serial in hours, minutes or seconds: 1.5 in [h]:mm is 36:00, not a
    # date. Excel shows a negative one as ##### (in the 1904 system as -36:00), and none
    # past its last date: those render as their number, like a date cell beyond the dates.
    lowest = -system.days if system.negative_times else 0.0
    is_elapsed = (
        pl.col("elapsed").is_not_null()
        & (is_date | is_number)
        & (serial >= lowest)
        & (serial < system.days)
    )
    # A negative serial or one past 9999-12-31 in a date cell is shown by Excel as #####:
    # it renders as its number, which the typing step quarantines (one row, not the file).
    no_date = (
        is_date
        & ~is_elapsed
        & ((pl.col("moment") < system.time_day) | (pl.col("moment") > _LAST_MOMENT))
    )
    is_date = is_date & ~no_date & ~is_elapsed
    shown = pl.when(no_date).then(serial).otherwise(pl.col("number"))
    whole = (shown == shown.floor()) & (shown.abs() < _INT64_SAFE)
    # Excel shows times to the second; serial fractions land a millisecond off.
    moment_s = pl.col("moment").dt.round("1s")
    # Serials 0 to 1 are times of day; in a cell formatted as one (hh:mm), a date and time
    # too: Excel shows 1.5 there as 12:00.
    is_time = (moment_s < system.time_day + dt.timedelta(days=1)) | pl.col("clock").fill_null(False)
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
    numeric = (is_number & ~is_elapsed) | no_date
    rendered = cells.select(
        pl.when(is_elapsed)
        .then(_elapsed_text(serial, pl.col("elapsed")))
        .when(is_date)
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


def _elapsed_text(serial: pl.Expr, unit: pl.Expr) -> pl.Expr:
    """A duration as its total hours (`36:00`, `36:00:15`), minutes (`2160:00`) or seconds,
    at least two digits each, as the ISO durations of .ods time cells read."""
    seconds = (serial.abs() * 86_400).round().cast(pl.Int64)
    sign = pl.when((serial < 0) & (seconds > 0)).then(pl.lit("-")).otherwise(pl.lit(""))

    def two(part: pl.Expr) -> pl.Expr:
        return part.cast(pl.String).str.zfill(2)

    second = seconds % 60
    with_seconds = pl.when(second != 0).then(pl.lit(":") + two(second)).otherwise(pl.lit(""))
    return (
        pl.when(unit == "h")
        .then(
            pl.concat_str(
                sign, two(seconds // 3600), pl.lit(":"), two(seconds // 60 % 60), with_seconds
            )
        )
        .when(unit == "m")
        .then(pl.concat_str(sign, two(seconds // 60), pl.lit(":"), two(second)))
        .otherwise(pl.concat_str(sign, two(seconds)))
    )


def number_text(value: float) -> str:
    """A number as `render` writes it: whole ones without a decimal part, unless too large
    for that (1e+300), others as Python writes them (`1234.56`, `1e-07`)."""
    if value.is_integer() and abs(value) < _INT64_SAFE:
        return str(int(value))
    return repr(value)
