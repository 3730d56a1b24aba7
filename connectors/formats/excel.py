"""Excel workbooks (.xlsx/.xlsm/.xls/.ods via calamine) to an all-text frame with sheet rows.

Each cell is rendered from its own type, not its column's: a text `31-09-2026` typed into a
date column stays that text, so the typing step downstream can quarantine that one row.
fastexcel only converts whole columns to one dtype, and converting to text turns every date
into `YYYY-MM-DD 00:00:00` and text like `007` is indistinguishable from the number 7. So the
sheet is loaded four times (as text, float, datetime and boolean) and each cell's type is
read off which conversions succeeded:

    cell type   text      float     datetime   boolean
    text        value     parsed*   null       null       (*`007` parses as 7.0)
    number      digits    value     value*     value      (*serial day number)
    date        value     null      value      null
    boolean     "true"    1.0/0.0   null       value
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import fastexcel
import polars as pl

from connectors.formats.errors import FormatError, is_panic
from connectors.formats.frame import finish
from connectors.formats.options import check_keys, non_negative_int, optional_str

OPTIONS = {"sheet", "header_row", "skip_footer_rows", "skip_rows_matching"}

# calamine's names for Excel error values, back to what Excel shows in the cell.
_ERROR_TEXT = {
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
_INT64_SAFE = 2.0**62
# Excel has no dates before 1900-01-01; calamine puts time-only cells (serial < 1) there.
_FIRST_EXCEL_DAY = dt.datetime(1900, 1, 1)


def read_excel(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    check_keys(options, OPTIONS, "excel", source_name=source_name)
    header_row = non_negative_int(options, "header_row", 0, source_name=source_name)
    skip_footer_rows = non_negative_int(options, "skip_footer_rows", 0, source_name=source_name)
    skip_rows_matching = optional_str(options, "skip_rows_matching", source_name=source_name)

    try:
        workbook = fastexcel.read_excel(data)
    except BaseException as err:
        if not isinstance(err, fastexcel.FastExcelError | OSError | ValueError) and not is_panic(
            err
        ):
            raise
        raise FormatError(
            source_name,
            f"not a readable Excel workbook ({_first_line(err)})",
            "Check that the file really is .xlsx/.xlsm/.xls/.ods (not CSV or HTML renamed),"
            " complete, and not password-protected",
        ) from err

    wanted = options.get("sheet")
    sheet = _sheet_name(workbook.sheet_names, 0 if wanted is None else wanted, source_name)
    cells = _sheet_cells(workbook, sheet, source_name)
    if cells.width == 0:
        raise FormatError(
            source_name,
            "the sheet is empty",
            "Set `sheet:` to the sheet holding the data",
            sheet=sheet,
        )
    if header_row >= cells.height:
        raise FormatError(
            source_name,
            f"`header_row` is {header_row} but the last used row is row {cells.height}",
            "Set `header_row` to the 0-based row index of the column names (Excel row - 1)",
            sheet=sheet,
        )

    return finish(
        cells.slice(header_row + 1),
        cells.row(header_row),
        # Row i of the loaded range is Excel row i + 1: leading empty rows are kept.
        pl.int_range(header_row + 2, cells.height + 1, eager=True, dtype=pl.Int64),
        source_name=source_name,
        header_line=header_row + 1,
        sheet=sheet,
        skip_footer_rows=skip_footer_rows,
        skip_rows_matching=skip_rows_matching,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _sheet_name(names: list[str], wanted: object, source_name: str) -> str:
    if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 <= wanted < len(names):
        return names[wanted]
    if isinstance(wanted, str) and wanted in names:
        return wanted
    listed = ", ".join(f"'{n}'" for n in names) or "none"
    raise FormatError(
        source_name,
        f"there is no sheet {wanted!r}; the workbook has {len(names)} sheet(s): {listed}",
        "Set `sheet:` in the dataset YAML to one of these names or a 0-based index",
    )


def _load(workbook: Any, sheet: str, dtype: str) -> Any:
    # header_row=None with skip_rows=0: fastexcel then keeps leading empty rows, so row i of
    # the result is sheet row i (with skip_rows=None it would silently drop them).
    return workbook.load_sheet(sheet, header_row=None, skip_rows=0, dtypes=dtype)


def _text_cells(workbook: Any, sheet: str) -> tuple[pl.DataFrame, list[Any]]:
    # Error cells (#DIV/0!) come back null; the error list is how they are told from blanks.
    batch, errors = _load(workbook, sheet, "string").to_arrow_with_errors()
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    return frame, (errors.errors if errors is not None else [])


def _sheet_cells(workbook: Any, sheet: str, source_name: str) -> pl.DataFrame:
    """Every cell of the sheet as text per the cell's own type; row i is Excel row i + 1."""
    try:
        text, errors = _text_cells(workbook, sheet)
        if text.width == 0:
            return text
        # Cells that do not convert become null here (no error list: building one Python
        # object per text cell in a float load costs more than the load itself).
        number = _load(workbook, sheet, "float").to_polars()
        moment = _moments(workbook, sheet, text.width, text.height)
        flag = _load(workbook, sheet, "boolean").to_polars()
    except BaseException as err:
        if not isinstance(err, fastexcel.FastExcelError) and not is_panic(err):
            raise
        raise FormatError(
            source_name,
            f"cannot read the sheet: {_first_line(err)}",
            "Open and re-save the workbook in Excel, or export the sheet as CSV",
            sheet=sheet,
        ) from err

    columns = [
        _render(text[:, i], number[:, i], moment[:, i], flag[:, i]).alias(f"c{i}")
        for i in range(text.width)
    ]
    for error in errors:
        row, column = error.position
        found = _ERROR_DETAIL.search(error.detail)
        if found is None:
            raise FormatError(
                source_name,
                f"cannot read the cell in column {column + 1}: {error.detail}",
                "Fix the cell in the workbook",
                line=row + 1,
                sheet=sheet,
            )
        value = _ERROR_TEXT.get(found.group(1), f"#{found.group(1).upper()}")
        columns[column] = columns[column].scatter(row, value)
    return pl.DataFrame(columns)


def _moments(workbook: Any, sheet: str, width: int, height: int) -> pl.DataFrame:
    try:
        return _load(workbook, sheet, "datetime").to_polars()
    except BaseException as err:
        if not is_panic(err):
            raise
    # calamine panics turning a number below about -1.07e11 into a date (the milliseconds
    # overflow), and a budget in øre can hold one. Load column by column and leave out the
    # columns that cannot convert: their numbers still render from the float load, and any
    # real date cell in them falls back to calamine's text (`2026-01-15 00:00:00`).
    columns = []
    for i in range(width):
        try:
            column = workbook.load_sheet(
                sheet, header_row=None, skip_rows=0, dtypes={i: "datetime"}, use_columns=[i]
            ).to_polars()[:, 0]
        except BaseException as err:
            if not is_panic(err):
                raise
            column = pl.Series([None] * height, dtype=pl.Datetime("ms"))
        columns.append(column.alias(f"c{i}"))
    return pl.DataFrame(columns)


def _render(text: pl.Series, number: pl.Series, moment: pl.Series, flag: pl.Series) -> pl.Series:
    cells = pl.DataFrame(
        {
            "text": text.cast(pl.String),
            "number": number.cast(pl.Float64),
            "moment": moment.cast(pl.Datetime("ms")),
            "flag": flag.cast(pl.Boolean),
        }
    )
    is_date = pl.col("moment").is_not_null() & pl.col("number").is_null()
    is_bool = pl.col("flag").is_not_null() & pl.col("text").is_in(["true", "false"])
    is_number = pl.col("flag").is_not_null() & pl.col("number").is_not_null() & ~is_bool
    whole = (pl.col("number") == pl.col("number").floor()) & (pl.col("number").abs() < _INT64_SAFE)
    # Excel shows times to the second; serial fractions land a millisecond off.
    moment_s = pl.col("moment").dt.round("1s")
    date_text = (
        pl.when(moment_s < _FIRST_EXCEL_DAY)
        .then(moment_s.dt.strftime("%H:%M:%S"))
        .when(moment_s.dt.time() == dt.time(0))
        .then(moment_s.dt.strftime("%Y-%m-%d"))
        .otherwise(moment_s.dt.strftime("%Y-%m-%d %H:%M:%S"))
    )
    rendered = cells.select(
        pl.when(is_date)
        .then(date_text)
        .when(is_number & whole)
        .then(pl.col("number").cast(pl.Int64).cast(pl.String))
        .when(is_number)
        .then(pl.lit(None, dtype=pl.String))  # filled below with Python's repr
        .otherwise(pl.col("text"))
        .alias("value"),
        (is_number & ~whole).alias("needs_repr"),
    )
    value = rendered["value"]
    positions = rendered["needs_repr"].arg_true()
    if positions.len():
        value = value.scatter(
            positions, [_number_text(v) for v in number.gather(positions).to_list()]
        )
    return value


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
