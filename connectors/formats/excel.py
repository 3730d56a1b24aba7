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

Layout options (`format:` block, `type: excel`):

    sheet: Borgere | 0        one sheet, by name or 0-based index (default: the first)
    sheets: [Nord, 1] | "*"   several sheets with the same header names into one frame, with
                              a `_sheet` (String) column just before `_source_row` saying which
                              sheet each row is from; `_source_row` stays the row in its sheet.
                              Not together with `sheet`.
    header_row: 3             0-based row of the (first) header row
    header_rows: 2            header rows from `header_row` down (default 1), names joined top
                              to bottom with " / ": a merged "Besøg" over "Dato" and "Varighed"
                              gives "Besøg / Dato" and "Besøg / Varighed"
    columns_range: "B:H"      only these sheet columns (Excel letters, inclusive), e.g. to leave
                              out notes beside the table; footers are counted within the range
    skip_footer_rows: 2       non-empty rows to drop at the end (after empty rows are dropped)
    skip_rows_matching: ^I alt   drop rows whose first column matches (Rust regex)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import fastexcel
import polars as pl

from connectors.formats.errors import FormatError, is_panic
from connectors.formats.frame import SOURCE_ROW, finish, header_name
from connectors.formats.options import (
    check_keys,
    non_negative_int,
    optional_str,
    positive_number,
)

OPTIONS = {
    "sheet",
    "sheets",
    "header_row",
    "header_rows",
    "columns_range",
    "skip_footer_rows",
    "skip_rows_matching",
}
# With `sheets:` each row also says which sheet it came from, just before `_source_row`.
SHEET = "_sheet"
_COLUMNS_RANGE = re.compile(r"([A-Za-z]{1,3})\s*:\s*([A-Za-z]{1,3})")
_LAST_COLUMN = 16383  # XFD

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
    layout = _Layout(
        header_row=non_negative_int(options, "header_row", 0, source_name=source_name),
        header_rows=int(positive_number(options, "header_rows", 1, source_name=source_name)),
        columns=_columns_range(options.get("columns_range"), source_name),
        skip_footer_rows=non_negative_int(options, "skip_footer_rows", 0, source_name=source_name),
        skip_rows_matching=optional_str(options, "skip_rows_matching", source_name=source_name),
    )
    if options.get("sheet") is not None and options.get("sheets") is not None:
        raise FormatError(
            source_name,
            "both `sheet` and `sheets` are set",
            "Use `sheet:` for one sheet or `sheets:` for several, not both",
        )

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

    if options.get("sheets") is None:
        wanted = options.get("sheet")
        sheet = _sheet_name(workbook.sheet_names, 0 if wanted is None else wanted, source_name)
        return _read_sheet(workbook, sheet, layout, source_name)

    sheets = _sheet_list(workbook.sheet_names, options["sheets"], source_name)
    frames: list[pl.DataFrame] = []
    for sheet in sheets:
        frame = _read_sheet(workbook, sheet, layout, source_name)
        if SHEET in frame.columns[:-1]:
            raise FormatError(
                source_name,
                f"the sheet has a column named '{SHEET}', which the reader adds itself"
                " when `sheets:` is used",
                "Rename that column in the source",
                line=layout.header_row + 1,
                sheet=sheet,
            )
        if frames and set(frame.columns) != set(frames[0].columns):
            first, here = frames[0].columns[:-1], frame.columns[:-1]
            missing = [n for n in first if n not in here]
            extra = [n for n in here if n not in first]
            raise FormatError(
                source_name,
                f"the headers differ from those of sheet '{sheets[0]}':"
                + (" missing " + ", ".join(f"'{n}'" for n in missing) if missing else "")
                + (";" if missing and extra else "")
                + (" extra " + ", ".join(f"'{n}'" for n in extra) if extra else ""),
                "Every sheet listed in `sheets:` must have the same column names;"
                " fix the sheet or leave it out of `sheets:`",
                line=layout.header_row + 1,
                sheet=sheet,
            )
        if frames:
            frame = frame.select(frames[0].columns)  # same names, possibly another order
        frames.append(frame)
    return pl.concat(
        [
            frame.select(
                pl.exclude(SOURCE_ROW), pl.lit(sheet, dtype=pl.String).alias(SHEET), SOURCE_ROW
            )
            for sheet, frame in zip(sheets, frames, strict=True)
        ],
        how="vertical",
    )


@dataclass(frozen=True)
class _Layout:
    header_row: int
    header_rows: int
    columns: tuple[int, int] | None  # 0-based Excel column indexes, inclusive
    skip_footer_rows: int
    skip_rows_matching: str | None


def _read_sheet(workbook: Any, sheet: str, layout: _Layout, source_name: str) -> pl.DataFrame:
    cells, first_column = _sheet_cells(workbook, sheet, source_name)
    if cells.width == 0:
        raise FormatError(
            source_name,
            "the sheet is empty",
            "Set `sheet:` to the sheet holding the data",
            sheet=sheet,
        )
    if layout.columns is not None:
        low, high = layout.columns
        # calamine starts the loaded range at the first used column: shift to sheet columns.
        keep = [
            c - first_column for c in range(low, high + 1) if 0 <= c - first_column < cells.width
        ]
        if not keep:
            raise FormatError(
                source_name,
                f"`columns_range` {_letters(low)}:{_letters(high)} holds no cells; the used"
                f" columns are {_letters(first_column)}:{_letters(first_column + cells.width - 1)}",
                "Fix `columns_range` in the dataset YAML (Excel column letters, e.g. B:H)",
                sheet=sheet,
            )
        cells = cells.select(cells.columns[keep[0] : keep[-1] + 1])
    header_row, header_rows = layout.header_row, layout.header_rows
    if header_row + header_rows > cells.height:
        rows = "" if header_rows == 1 else f" with `header_rows` {header_rows}"
        raise FormatError(
            source_name,
            f"`header_row` is {header_row}{rows} but the last used row is row {cells.height}",
            "Set `header_row` to the 0-based row index of the column names (Excel row - 1)",
            sheet=sheet,
        )

    first_data = header_row + header_rows
    return finish(
        cells.slice(first_data),
        _header(cells, header_row, header_rows),
        # Row i of the loaded range is Excel row i + 1: leading empty rows are kept.
        pl.int_range(first_data + 1, cells.height + 1, eager=True, dtype=pl.Int64),
        source_name=source_name,
        header_line=header_row + 1,
        sheet=sheet,
        skip_footer_rows=layout.skip_footer_rows,
        skip_rows_matching=layout.skip_rows_matching,
    )


def _header(cells: pl.DataFrame, header_row: int, header_rows: int) -> list[str]:
    """Column names from `header_rows` rows, top to bottom, joined with " / ".

    A merged cell holds its text in its top-left cell only, so in every row but the last an
    upper value is carried right across empty cells, until a cell in that row or any row above
    it starts a new group, and only into columns with a name in a lower header row. The last
    row names single columns and is never carried. Empty parts are left out.
    """
    rows = [
        [header_name(v) for v in cells.row(r)] for r in range(header_row, header_row + header_rows)
    ]
    if header_rows == 1:
        return rows[0]
    filled = [list(row) for row in rows]
    for r in range(header_rows - 1):
        carried = ""
        for c in range(cells.width):
            if rows[r][c]:
                carried = rows[r][c]
            elif any(rows[above][c] for above in range(r)):
                carried = ""
            # Only into columns named below: a group never spills over empty columns after
            # the table (or a note column beside it).
            if any(rows[below][c] for below in range(r + 1, header_rows)):
                filled[r][c] = carried
    filled[-1] = rows[-1]
    return [
        " / ".join(part for part in (row[c] for row in filled) if part) for c in range(cells.width)
    ]


def _columns_range(value: object, source_name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    found = _COLUMNS_RANGE.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is not None:
        low, high = _column_index(found.group(1)), _column_index(found.group(2))
        if low <= high <= _LAST_COLUMN:
            return low, high
    raise FormatError(
        source_name,
        f'`columns_range` must be Excel column letters like "B:H", got {value!r}',
        "Fix `columns_range` in the dataset YAML (first column, colon, last column; A to XFD)",
    )


def _column_index(letters: str) -> int:
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _letters(index: int) -> str:
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("A") + rest) + text
    return text


def _sheet_list(names: list[str], wanted: object, source_name: str) -> list[str]:
    if wanted == "*":
        return list(names)
    if not isinstance(wanted, list) or not wanted:
        raise FormatError(
            source_name,
            f'`sheets` must be "*" or a list of sheet names or 0-based indexes, got {wanted!r}',
            "Fix `sheets:` in the dataset YAML",
        )
    sheets = [_sheet_name(names, w, source_name, key="sheets") for w in wanted]
    twice = sorted({s for s in sheets if sheets.count(s) > 1})
    if twice:
        raise FormatError(
            source_name,
            "`sheets` lists " + ", ".join(f"'{s}'" for s in twice) + " more than once",
            "List each sheet once in `sheets:` (a name and its index are the same sheet)",
        )
    return sheets


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _sheet_name(names: list[str], wanted: object, source_name: str, key: str = "sheet") -> str:
    if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 <= wanted < len(names):
        return names[wanted]
    if isinstance(wanted, str) and wanted in names:
        return wanted
    listed = ", ".join(f"'{n}'" for n in names) or "none"
    raise FormatError(
        source_name,
        f"there is no sheet {wanted!r}; the workbook has {len(names)} sheet(s): {listed}",
        f"Set `{key}:` in the dataset YAML to one of these names or a 0-based index",
    )


def _load(workbook: Any, sheet: str, dtype: str) -> Any:
    # header_row=None with skip_rows=0: fastexcel then keeps leading empty rows, so row i of
    # the result is sheet row i (with skip_rows=None it would silently drop them).
    return workbook.load_sheet(sheet, header_row=None, skip_rows=0, dtypes=dtype)


def _text_cells(workbook: Any, sheet: str) -> tuple[pl.DataFrame, list[Any], int]:
    # Error cells (#DIV/0!) come back null; the error list is how they are told from blanks.
    loaded = _load(workbook, sheet, "string")
    batch, errors = loaded.to_arrow_with_errors()
    frame = pl.from_arrow(batch)
    assert isinstance(frame, pl.DataFrame)
    # Leading empty rows are kept but leading empty columns are not: remember where the
    # loaded range starts (0-based sheet column of its first column).
    first_column = min((c.absolute_index for c in loaded.available_columns()), default=0)
    return frame, (errors.errors if errors is not None else []), first_column


def _sheet_cells(workbook: Any, sheet: str, source_name: str) -> tuple[pl.DataFrame, int]:
    """Every cell of the sheet as text per the cell's own type; row i is Excel row i + 1.

    Also the 0-based sheet column of the first column (calamine skips empty ones).
    """
    try:
        text, errors, first_column = _text_cells(workbook, sheet)
        if text.width == 0:
            return text, first_column
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
    return pl.DataFrame(columns), first_column


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
