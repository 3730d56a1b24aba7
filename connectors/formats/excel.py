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

How each cell type is rendered as text (dates, times, numbers) is in `excel_cells`. Header
texts are NFC-normalised (macOS tools write `å` as `a` plus a combining ring), and sheet
names are matched NFC-normalised.

Layout options (`format:` block, `type: excel`):

    sheet: Borgere | 0        one sheet, by name or 0-based index (default: the first
                              visible sheet that is not a chart sheet)
    sheets: [Nord, 1] | "*"   several sheets with the same header names into one frame, with
                              a `_sheet` (String) column just before `_source_row` saying which
                              sheet each row is from; `_source_row` stays the row in its sheet.
                              "*" is every visible sheet (hidden ones and chart sheets are
                              left out; list a hidden sheet by name to read it). Not together
                              with `sheet`.
    header_row: 3             0-based row of the (first) header row
    header_rows: 2            header rows from `header_row` down (default 1), names joined top
                              to bottom with " / ": a merged "Besøg" over "Dato" and "Varighed"
                              gives "Besøg / Dato" and "Besøg / Varighed". The file's merged
                              ranges say which columns a group label covers (.xlsx/.xlsm, .xls,
                              .ods); in an .xls older than Excel 97 (no merged cells) a label
                              is carried right over empty cells until the next label (see
                              `excel_headers`).
    columns_range: "B:H"      only these sheet columns (Excel letters, inclusive), e.g. to leave
                              out notes beside the table; footers are counted within the range.
                              A group label merged over A1:C1 still names B and C in "B:H".
    skip_footer_rows: 2       non-empty rows to drop at the end (after empty rows are dropped)
    skip_rows_matching: ^I alt   drop rows where any column matches (Rust regex), as in CSV
    decimal_comma: true       numbers with a decimal part render with a comma (`1234,56`,
                              `1,5e-05`), never with a thousands separator (default false:
                              `1234.56`); the pipeline sets it for datasets whose `parse:` has
                              `decimal_comma`, so numeric cells and text cells read alike

Before calamine sees a workbook, `workbook_package` checks a zip-based one (.xlsx/.xlsm/.ods)
for compression bombs and scans an .xlsx sheet's XML for its used range (one stray cell at
XFD1048576 would make calamine allocate 512 GiB), its merged ranges, formulas saved without
a result and numbers too low for calamine's date conversion (it panics on them; they are
loaded from a copy as 0 and given back, see `_without_overflows`); `xls_cells` reads an .xls
file's cell positions (calamine builds every .xls sheet when opening the file, so all are
checked first) and merged ranges, and `workbook_package` scans an .ods file's tables (all
built on opening too) with their repeated rows and cells and their merged cells. A sheet
whose used range is far larger than the cells written in the file is refused (see
`SPARSE_CELLS`): a few cells far apart make calamine allocate the whole grid between them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import fastexcel
import polars as pl

from connectors.formats.errors import FormatError, is_panic
from connectors.formats.excel_cells import (
    DATE_DETAIL,
    ERROR_TEXT,
    SYSTEM_1900,
    SYSTEM_1904,
    DateSystem,
    column_formats,
    error_text,
    number_text,
    pad,
    render,
)
from connectors.formats.excel_headers import carried_header, labels_left_of, merged_header
from connectors.formats.frame import SOURCE_ROW, SkipCounter, check_pattern, finish, header_name
from connectors.formats.number_formats import FormattedCells
from connectors.formats.options import (
    check_keys,
    flag,
    non_negative_int,
    optional_str,
    positive_number,
)
from connectors.formats.workbook_package import (
    LAST_COLUMN,
    Package,
    SheetScan,
    column_index,
    first_line,
    open_package,
)
from connectors.formats.xls_cells import NotXls, XlsBook, xls_scans
from connectors.formats.xlsx_cells import (
    date_1904,
    error_cell,
    formatted_cells,
    number_styles,
    without_overflows,
)

OPTIONS = {
    "sheet",
    "sheets",
    "header_row",
    "header_rows",
    "columns_range",
    "skip_footer_rows",
    "skip_rows_matching",
    "decimal_comma",
}
# With `sheets:` each row also says which sheet it came from, just before `_source_row`.
SHEET = "_sheet"
_COLUMNS_RANGE = re.compile(r"([A-Za-z]{1,3})\s*:\s*([A-Za-z]{1,3})")
# calamine holds a sheet's used range as a grid of 32-byte cells, four times over while the
# sheet is loaded as text, float, datetime and boolean: 20 million cells is already 640 MB
# a load, and far beyond any table delivered as a workbook (1 048 576 rows x 19 columns).
MAX_CELLS = 20_000_000
# A used range over a million cells (about 100 MB to load) with fewer than 1 in 50 of them
# written in the file is a few cells far apart, or an .ods cell repeated a million times: a
# 3 KB file that took seconds and gigabytes. A real export is dense and passes: 1,000,000
# rows x 20 columns, every cell written (a 76 MB .xlsx), loaded in 31 s of CPU and 2.8 GB
# (measured November 2026). The ratio bounds what a file costs per byte; MAX_CELLS, in all.
SPARSE_CELLS = 1_000_000
SPARSE_RATIO = 50
# Each column is rendered and checked on its own: a used range wider than this is almost
# always a stray cell far to the right, and takes seconds per thousand columns.
MAX_COLUMNS = 1000
_NAME_ECHO = 80  # characters of a header or sheet name quoted in a message

# calamine panics turning a serial beyond about ±1.07e11 days into milliseconds.
_HUGE_SERIAL = 1e11
# An encrypted .xlsx is an OLE2 compound file holding an "EncryptedPackage" stream.
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")


def check_options(options: Mapping[str, Any], source_name: str) -> _Layout:
    """The layout valid options describe, or a FormatError saying what is wrong."""
    check_keys(options, OPTIONS, "excel", source_name=source_name)
    layout = _Layout(
        header_row=non_negative_int(options, "header_row", 0, source_name=source_name),
        header_rows=int(positive_number(options, "header_rows", 1, source_name=source_name)),
        columns=_columns_range(options.get("columns_range"), source_name),
        skip_footer_rows=non_negative_int(options, "skip_footer_rows", 0, source_name=source_name),
        skip_rows_matching=optional_str(options, "skip_rows_matching", source_name=source_name),
        decimal_comma=flag(options, "decimal_comma", source_name=source_name),
    )
    if options.get("sheet") is not None and options.get("sheets") is not None:
        raise FormatError(
            source_name,
            "both `sheet` and `sheets` are set",
            "Use `sheet:` for one sheet or `sheets:` for several, not both",
        )
    if layout.skip_rows_matching:
        check_pattern(layout.skip_rows_matching, source_name=source_name)
    return layout


def read_excel(
    data: bytes,
    options: Mapping[str, Any],
    *,
    source_name: str,
    count_skipped: SkipCounter | None = None,
) -> pl.DataFrame:
    """The all-text frame of the sheet(s) `options` name; `count_skipped` is told how many
    rows `skip_rows_matching` left out."""
    layout = check_options(options, source_name)

    if data.startswith(_OLE2) and _ENCRYPTED_PACKAGE in data:
        raise FormatError(
            source_name,
            "the workbook is password-protected (encrypted)",
            "Save an unprotected copy (in Excel: File > Info > Protect Workbook, remove the"
            " password) and deliver that",
        )
    package = open_package(data, source_name)
    # calamine builds every .xls and .ods sheet on opening the file (two of the same name
    # too, keeping the last): all are checked first.
    listed = package.ods_scans(layout.label_rows) if package is not None else []
    xls = _xls_book(data, layout.label_rows, source_name) if data.startswith(_OLE2) else None
    if xls is not None:
        listed = xls.sheets
    for name, scan in listed:
        _check_size(scan, name, source_name)
    scans = dict(listed) if listed or xls is not None else None
    # Days counted from 1904-01-01 (Mac Excel): calamine converts the dates itself, but
    # times of day and durations are read here by where it puts serial 0.
    if (package is not None and date_1904(package.archive)) or (xls is not None and xls.date_1904):
        system = SYSTEM_1904
    else:
        system = SYSTEM_1900
    if package is not None and any(scan.breaks or scan.errors for _, scan in listed):
        data = package.ods_for_calamine(data)
    try:
        workbook = fastexcel.read_excel(data)
    except BaseException as err:
        if not isinstance(err, fastexcel.FastExcelError | OSError | ValueError) and not is_panic(
            err
        ):
            raise
        raise FormatError(
            source_name,
            f"not a readable Excel workbook ({first_line(err)})",
            "Check that the file really is .xlsx/.xlsm/.xls/.ods (not CSV or HTML renamed),"
            " complete, and not password-protected",
        ) from err

    if options.get("sheets") is None:
        wanted = options.get("sheet")
        if wanted is None:
            sheet = _first_visible(workbook, package)
        else:
            sheet = _sheet_name(workbook.sheet_names, wanted, source_name)
        return _read_sheet(
            workbook,
            package,
            scans,
            system,
            sheet,
            layout,
            source_name,
            key="sheet",
            count_skipped=count_skipped,
        )

    sheets = _sheet_list(workbook, package, options["sheets"], source_name)
    every = options["sheets"] == "*"
    frames: list[pl.DataFrame] = []
    read: list[str] = []
    for sheet in sheets:
        frame = _read_sheet(
            workbook,
            package,
            scans,
            system,
            sheet,
            layout,
            source_name,
            key="sheets",
            skip_empty=every,
            count_skipped=count_skipped,
        )
        if frame is None:
            continue  # an untouched sheet ("Ark3") of a workbook read with "*"
        if frames and set(frame.columns) != set(frames[0].columns):
            first, here = frames[0].columns[:-1], frame.columns[:-1]
            missing = [n for n in first if n not in here]
            extra = [n for n in here if n not in first]
            raise FormatError(
                source_name,
                f"the headers differ from those of sheet {_quoted(read[0])}:"
                + (" missing " + ", ".join(map(_quoted, missing)) if missing else "")
                + (";" if missing and extra else "")
                + (" extra " + ", ".join(map(_quoted, extra)) if extra else ""),
                "Every sheet listed in `sheets:` must have the same column names;"
                " fix the sheet or leave it out of `sheets:`",
                line=layout.header_row + 1,
                sheet=sheet,
            )
        if frames:
            frame = frame.select(frames[0].columns)  # same names, possibly another order
        frames.append(frame)
        read.append(sheet)
    if not frames:
        raise FormatError(
            source_name,
            "every visible sheet is empty",
            "Check that the workbook is the export (not an empty template)",
        )
    return pl.concat(
        [
            frame.select(
                pl.exclude(SOURCE_ROW), pl.lit(sheet, dtype=pl.String).alias(SHEET), SOURCE_ROW
            )
            for sheet, frame in zip(read, frames, strict=True)
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
    decimal_comma: bool = False

    @property
    def label_rows(self) -> range:
        """The header rows that can hold a group label: all but the last."""
        return range(self.header_row, self.header_row + self.header_rows - 1)


def _read_sheet(
    workbook: Any,
    package: Package | None,
    scans: dict[str, SheetScan] | None,
    system: DateSystem,
    sheet: str,
    layout: _Layout,
    source_name: str,
    key: str,
    skip_empty: bool = False,
    count_skipped: SkipCounter | None = None,
) -> pl.DataFrame | None:
    """The sheet's frame; None for an empty sheet when `skip_empty`."""
    if scans is not None:  # .xls or .ods
        # A name decoded otherwise than calamine does (BIFF5 code pages): check them all.
        scan = scans.get(sheet) or _union(list(scans.values()))
    else:
        scan = package.scan(sheet, layout.label_rows) if package is not None else None
    if scan is not None:
        _check_scan(scan, sheet, layout, source_name)
    elif package is not None and package.xlsx:
        # calamine found a part this scan did not: never load an .xlsx sheet unchecked.
        raise FormatError(
            source_name,
            "the sheet's XML part cannot be found from xl/workbook.xml and its relationships",
            "Open and save the workbook in Excel or LibreOffice and deliver that copy",
            sheet=sheet,
        )
    if package is not None and sheet in package.charts:
        raise FormatError(
            source_name,
            "the sheet is a chart sheet, which holds a diagram and no cells",
            f"Set `{key}:` to the sheet(s) holding the data",
            sheet=sheet,
        )
    cells, first_column = _sheet_cells(workbook, package, scan, sheet, layout, source_name, system)
    if cells.width == 0:
        if skip_empty:
            return None
        raise FormatError(
            source_name,
            "the sheet is empty",
            f"Set `{key}:` to the sheet(s) holding the data",
            sheet=sheet,
        )
    header_row, header_rows = layout.header_row, layout.header_rows
    if header_row + header_rows > cells.height:
        rows = "" if header_rows == 1 else f" with `header_rows` {header_rows}"
        raise FormatError(
            source_name,
            f"`header_row` is {header_row}{rows} but the last used row is row {cells.height}",
            "Set `header_row` to the 0-based row index of the column names (Excel row - 1)",
            sheet=sheet,
        )

    header_cells = [
        [header_name(v) for v in cells.row(r)] for r in range(header_row, header_row + header_rows)
    ]
    if header_rows == 1:
        header = header_cells[0]
    elif scan is not None and scan.merges_known:  # the file's merged ranges
        merges = list(scan.merges.values())
        # A range may start left of `columns_range`, its label outside the loaded cells.
        wanted = labels_left_of(merges, layout.label_rows, first_column)
        outside = _cell_texts(workbook, package, scan, sheet, layout, wanted, source_name, system)
        header = merged_header(header_cells, header_row, first_column, merges, outside)
    else:
        header = carried_header(header_cells)
    first_data = header_row + header_rows
    values, header = _without_empty_unnamed(cells.slice(first_data), header)
    return finish(
        values,
        header,
        # Row i of the loaded range is Excel row i + 1: leading empty rows are kept.
        pl.int_range(first_data + 1, cells.height + 1, eager=True, dtype=pl.Int64),
        source_name=source_name,
        header_line=header_row + 1,
        sheet=sheet,
        skip_footer_rows=layout.skip_footer_rows,
        skip_rows_matching=layout.skip_rows_matching,
        count_skipped=count_skipped,
    )


def _cell_texts(
    workbook: Any,
    package: Package | None,
    scan: SheetScan,
    sheet: str,
    layout: _Layout,
    cells: set[tuple[int, int]],
    source_name: str,
    system: DateSystem,
) -> dict[tuple[int, int], str]:
    """The texts of these (row, column) header cells outside `columns_range`, rendered as
    the loaded ones are. Their columns are read down to the last of them (four more loads
    of the sheet, only when `columns_range` cuts a merged group label off)."""
    if not cells:
        return {}
    low, high = min(c for _, c in cells), max(c for _, c in cells)
    columns = replace(layout, columns=(low, high))
    rows = max(r for r, _ in cells) + 1
    read, first = _sheet_cells(workbook, package, scan, sheet, columns, source_name, system, rows)
    return {
        (r, c): header_name(read[r, c - first])
        for r, c in cells
        if r < read.height and 0 <= c - first < read.width
    }


def _xls_book(data: bytes, label_rows: range, source_name: str) -> XlsBook:
    try:
        return xls_scans(data, label_rows)
    except NotXls as err:
        raise FormatError(
            source_name,
            f"not a readable .xls workbook ({err})",
            "Ask for the file again, or open and re-save it in Excel (as .xlsx) and deliver that",
        ) from err


def _union(scans: list[SheetScan]) -> SheetScan:
    union = SheetScan(merges_known=False)  # whose merges would these be?
    for scan in scans:
        if scan.last_row >= 0:
            union.add(scan.first_row, scan.first_column)
            union.add(scan.last_row, scan.last_column)
        union.cells += scan.cells
    return union


def _without_empty_unnamed(
    values: pl.DataFrame, header: list[str]
) -> tuple[pl.DataFrame, list[str]]:
    """The columns without the unnamed ones that hold nothing, if no unnamed one holds a value.

    `finish` drops those too, but checks them one by one: a formatted or stray cell far to
    the right makes thousands. When an unnamed column does hold a value, all are left for
    `finish`, whose message counts the column's position.
    """
    unnamed = [name for name, text in zip(values.columns, header, strict=True) if not text]
    if not unnamed:
        return values, header
    filled = values.select(
        (pl.col(name).str.strip_chars().str.len_bytes() > 0).any() for name in unnamed
    ).row(0)
    if any(filled):
        return values, header
    keep = [i for i, text in enumerate(header) if text]
    return values.select(values.columns[i] for i in keep), [header[i] for i in keep]


def _columns_range(value: object, source_name: str) -> tuple[int, int] | None:
    if value is None:
        return None
    found = _COLUMNS_RANGE.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is not None:
        low, high = column_index(found.group(1)), column_index(found.group(2))
        if low <= high <= LAST_COLUMN:
            return low, high
    raise FormatError(
        source_name,
        f'`columns_range` must be Excel column letters like "B:H", got {value!r}',
        "Fix `columns_range` in the dataset YAML (first column, colon, last column; A to XFD)",
    )


def _letters(index: int) -> str:
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(ord("A") + rest) + text
    return text


def _sheet_list(
    workbook: Any, package: Package | None, wanted: object, source_name: str
) -> list[str]:
    names: list[str] = workbook.sheet_names
    if wanted == "*":
        # A hidden sheet is typically a template or lookup table, not a month of data.
        return [name for name in names if not _hidden(workbook, package, name, charts=True)]
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
            "`sheets` lists " + ", ".join(map(_quoted, twice)) + " more than once",
            "List each sheet once in `sheets:` (a name and its index are the same sheet)",
        )
    return sheets


def _first_visible(workbook: Any, package: Package | None) -> str:
    """The sheet Excel opens on when none is named: a hidden first sheet (a template, a
    lookup list) is one nobody sees, and reading it refused the file over columns the
    sender never saw. A chart sheet (a diagram before the data) holds no cells: passed over."""
    names: list[str] = workbook.sheet_names
    shown = (name for name in names if not _hidden(workbook, package, name, charts=True))
    return next(shown, names[0])


def _hidden(workbook: Any, package: Package | None, sheet: str, charts: bool = False) -> bool:
    """Whether the sheet is hidden; with `charts`, a chart sheet counts as one too."""
    if charts and package is not None and sheet in package.charts:
        return True
    if package is not None and sheet in package.members:
        return sheet in package.hidden  # from workbook.xml, without loading the sheet
    try:
        # .xls and .ods: calamine has read their sheets when opening the file, so this is
        # cheap; fastexcel only tells a sheet's visibility once it is loaded.
        return workbook.load_sheet(sheet, header_row=None, n_rows=0).visible != "visible"
    except BaseException as err:
        if not isinstance(err, fastexcel.FastExcelError) and not is_panic(err):
            raise
        return False  # reading it will say what is wrong


def _quoted(name: str) -> str:
    # A header can be a whole paragraph (or a forged 400 MB string): quote the start only.
    return f"'{name}'" if len(name) <= _NAME_ECHO else f"'{name[:_NAME_ECHO]}…'"


def _loose(name: str) -> str:
    return unicodedata.normalize("NFC", name).strip().casefold()


def _sheet_name(names: list[str], wanted: object, source_name: str, key: str = "sheet") -> str:
    if isinstance(wanted, int) and not isinstance(wanted, bool) and 0 <= wanted < len(names):
        return names[wanted]
    if isinstance(wanted, str):
        # NFC on both sides: a name typed in the YAML and one saved by a Mac tool (NFD) look
        # the same but differ in bytes.
        target = unicodedata.normalize("NFC", wanted)
        for name in names:
            if unicodedata.normalize("NFC", name) == target:
                return name
        # Excel takes sheet names regardless of case (no two may differ only in it), and a
        # blank typed after a name is invisible in Excel's tab: a sender's `DATA ` for the
        # YAML's `Data` is the same sheet, when no other sheet matches so loosely.
        loose = [name for name in names if _loose(name) == _loose(target)]
        if len(loose) == 1:
            return loose[0]
    listed = ", ".join(map(_quoted, names)) or "none"
    raise FormatError(
        source_name,
        f"there is no sheet {wanted!r}; the workbook has {len(names)} sheet(s): {listed}",
        f"Set `{key}:` in the dataset YAML to one of these names or a 0-based index",
    )


def _load(workbook: Any, sheet: str, dtype: Any, pick: Any = None, rows: int | None = None) -> Any:
    # header_row=None with skip_rows=0: fastexcel then keeps leading empty rows, so row i of
    # the result is sheet row i (with skip_rows=None it would silently drop them).
    return workbook.load_sheet(
        sheet, header_row=None, skip_rows=0, n_rows=rows, dtypes=dtype, use_columns=pick
    )


def _sheet_cells(
    workbook: Any,
    package: Package | None,
    scan: SheetScan | None,
    sheet: str,
    layout: _Layout,
    source_name: str,
    system: DateSystem,
    rows: int | None = None,
) -> tuple[pl.DataFrame, int]:
    """The sheet's cells (within `columns_range`) as text per each cell's own type.

    Row i is Excel row i + 1. Also the 0-based sheet column of the first column returned
    (calamine's range starts at the first used column, not at A). With `rows`, only the
    first rows are read: the header rows, for group labels left of `columns_range`.
    """
    overflows: list[tuple[tuple[int, int], float]] = []
    if scan is not None and scan.overflow and package is not None and package.xlsx:
        workbook, overflows = _without_overflows(workbook, package, sheet, source_name)
    # An .xls or .ods sheet's columns holding numbers too low for calamine's dates.
    too_low = scan.overflow_columns if scan is not None and not overflows else set()
    pick = None
    if layout.columns is not None:
        low, high = layout.columns
        pick = lambda column: low <= column.absolute_index <= high  # noqa: E731
    try:
        if too_low:  # a date cell among them makes every load panic: name it first
            _check_huge_serials(workbook, sheet, pick, source_name)
        loaded = _load(workbook, sheet, "string", pick, rows)
        # Error cells (#DIV/0!) come back null; the error list is how they are told from blanks.
        batch, errors = loaded.to_arrow_with_errors()
        text = pl.from_arrow(batch)
        assert isinstance(text, pl.DataFrame)
        used = [c.absolute_index for c in loaded.available_columns()]
        selected = loaded.selected_columns
        if layout.columns is None and len(used) > MAX_COLUMNS:
            raise _too_wide(min(used), max(used), text.height, sheet, source_name)
        if layout.columns is not None and used and not selected and rows is None:
            low, high = layout.columns
            raise FormatError(
                source_name,
                f"`columns_range` {_letters(low)}:{_letters(high)} holds no cells; the used"
                f" columns are {_letters(min(used))}:{_letters(max(used))}",
                "Fix `columns_range` in the dataset YAML (Excel column letters, e.g. B:H)",
                sheet=sheet,
            )
        if text.width == 0:
            return text, 0
        # fastexcel numbers columns from the first used one; error positions count from there.
        first_index = selected[0].index
        first_column = selected[0].absolute_index
        # Cells that do not convert become null here (no error list: building one Python
        # object per text cell in a float load costs more than the load itself).
        number = _load(workbook, sheet, "float", pick, rows).to_polars()
        skip = {first_index + c - first_column for c in too_low}
        moment = _moments(workbook, sheet, first_index, text.width, text.height, pick, rows, skip)
        boolean = _load(workbook, sheet, "boolean", pick, rows).to_polars()
    except BaseException as err:
        if not isinstance(err, fastexcel.FastExcelError) and not is_panic(err):
            raise
        _check_error_values(package, sheet, source_name)
        if is_panic(err):
            _check_huge_serials(workbook, sheet, pick, source_name)
        raise FormatError(
            source_name,
            f"cannot read the sheet: {first_line(err)}",
            "Open and re-save the workbook in Excel, or export the sheet as CSV",
            sheet=sheet,
        ) from err

    # A column with no text at all is empty (or holds only error cells, filled in below):
    # rendering it is skipped, since a stray cell far to the right makes thousands of them.
    nulls = text.null_count().row(0)
    if package is not None and package.xlsx:
        formatted = _formatted_cells(package, sheet)
    else:  # read off an .xls or .ods file before opening it
        formatted = scan.formats if scan is not None else FormattedCells()
    runs = formatted.by_column(first_column, text.width)
    formats = [column_formats(runs.get(i, []), text.height) for i in range(text.width)]
    # Only the 1900 date system has Excel's 29 February 1900 that calamine skips.
    serials = formatted.serials_by_column(first_column, text.width) if system is SYSTEM_1900 else {}
    columns = [
        pl.Series(f"c{i}", [None] * text.height, dtype=pl.String)
        if nulls[i] == text.height
        else render(
            text[:, i],
            number[:, i],
            moment[:, i],
            boolean[:, i],
            layout.decimal_comma,
            system,
            elapsed=formats[i].elapsed,
            clock=formats[i].clock,
            serials=_by_row(serials.get(i), text.height),
        ).alias(f"c{i}")
        for i in range(text.width)
    ]
    for error in errors.errors if errors is not None else []:
        row, column = error.position
        column -= first_index
        value = error_text(error.detail, layout.decimal_comma)
        if value is None:
            raise FormatError(
                source_name,
                f"cannot read the cell in column {_letters(first_column + column)}: {error.detail}",
                "Fix the cell in the workbook",
                line=row + 1,
                sheet=sheet,
            )
        columns[column] = columns[column].scatter(row, value)
    for (row, column), number_ in overflows:
        if 0 <= column - first_column < len(columns) and row < text.height:
            value = number_text(number_)
            value = value.replace(".", ",") if layout.decimal_comma else value
            columns[column - first_column] = columns[column - first_column].scatter(row, value)
    for i, shown in enumerate(formats):
        if shown.zeros is not None:
            columns[i] = pad(columns[i], shown.zeros)
    return pl.DataFrame(columns), first_column


def _without_overflows(
    workbook: Any, package: Package, sheet: str, source_name: str
) -> tuple[Any, list[tuple[tuple[int, int], float]]]:
    """The workbook to load the sheet from, and the number cells taken out of it.

    calamine panics turning a number below about -1.07e11 into a date (a date cell holding
    -2e11, or a budget in øre in the datetime load), printing a Rust backtrace, and cannot
    read the sheet. Such cells are loaded as 0 from a copy of the workbook and given their
    numbers back afterwards: beyond any date (Excel shows #####), they read as numbers and
    the typing step quarantines their rows, as for other dates beyond Excel's.
    """
    member = package.members.get(sheet)
    if member is None:
        return workbook, []
    content, found = without_overflows(package.archive, member)
    cells = []
    for position, value in found:
        if position is None:
            raise FormatError(
                source_name,
                f"a number cell holds {value!r}, too far below zero to read, and its position"
                " cannot be told (it has no cell reference)",
                "Correct the cell in the workbook, or open and save the file in Excel",
                sheet=sheet,
            )
        cells.append((position, value))
    if not cells:
        return workbook, []  # a value-like text, not a cell
    return fastexcel.read_excel(package.with_part(member, content)), cells


def _by_row(cells: list[tuple[int, float]] | None, height: int) -> pl.Series | None:
    """(row, value) pairs as a column of `height` rows, null elsewhere; None for none."""
    if not cells:
        return None
    rows = [row for row, _ in cells if row < height]
    values = [value for row, value in cells if row < height]
    return pl.Series([None] * height, dtype=pl.Float64).scatter(rows, values)


def _formatted_cells(package: Package | None, sheet: str) -> FormattedCells:
    """The sheet's number cells whose format calamine does not honour (`number_formats`)."""
    member = package.members.get(sheet) if package is not None else None
    if package is None or member is None:
        return FormattedCells()
    styles = number_styles(package.archive)
    if not styles:
        return FormattedCells()  # no such format in the workbook: no second read of the XML
    return formatted_cells(package.archive, member, styles)


def _check_error_values(package: Package | None, sheet: str, source_name: str) -> None:
    """Name the cell when calamine refused the sheet over an error value it does not know.

    Excel 365 writes #SPILL!, #CALC!, #FIELD!, #BLOCKED!, #CONNECT!, #BUSY! and #UNKNOWN!,
    which calamine cannot read at all: it gives up on the whole sheet without a cell.
    """
    member = package.members.get(sheet) if package is not None else None
    if package is None or member is None:
        return
    found = error_cell(package.archive, member, set(ERROR_TEXT.values()))
    if found is not None:
        reference, value = found
        raise FormatError(
            source_name,
            f"cell {reference} holds the Excel error value {value}, which cannot be read",
            "Fix the formula in that cell, or replace the formulas by their values (copy,"
            " paste as values) and deliver the file again",
            sheet=sheet,
        )


def _check_huge_serials(workbook: Any, sheet: str, pick: Any, source_name: str) -> None:
    """Name the date cell that made calamine panic converting it (-2e11 days overflows).

    A float load does not convert dates, so it does not panic; its error list carries each
    date cell's serial.
    """
    try:
        loaded = _load(workbook, sheet, "float", pick)
        _, errors = loaded.to_arrow_with_errors()
    except BaseException as err:
        if not isinstance(err, fastexcel.FastExcelError) and not is_panic(err):
            raise
        return
    for error in errors.errors if errors is not None else []:
        found = DATE_DETAIL.search(error.detail)
        if found is not None and abs(float(found.group(1))) >= _HUGE_SERIAL:
            row, column = error.position
            # Error positions count from the first used column, not from A.
            first = loaded.selected_columns[0]
            column += first.absolute_index - first.index
            raise FormatError(
                source_name,
                f"the date cell in column {_letters(column)} holds {found.group(1)}, far"
                " beyond any date (Excel shows #####), and cannot be read",
                "Correct the cell (or clear its date format) in the workbook",
                line=row + 1,
                sheet=sheet,
            )


def _moments(
    workbook: Any,
    sheet: str,
    first_index: int,
    width: int,
    height: int,
    pick: Any,
    rows: int | None = None,
    skip: Collection[int] = (),
) -> pl.DataFrame:
    """The datetime load; `skip`: the (fastexcel) columns known to make it panic."""
    if not skip:
        try:
            return _load(workbook, sheet, "datetime", pick, rows).to_polars()
        except BaseException as err:
            if not is_panic(err):
                raise
    # calamine panics turning a number below about -1.07e11 into a date (the milliseconds
    # overflow), and a budget in øre can hold one. Load column by column and leave out the
    # columns that cannot convert: their numbers still render from the float load, and any
    # real date cell in them falls back to calamine's text (`2026-01-15 00:00:00`). Columns
    # in `skip` are not tried: the panic prints on stderr even though it is caught.
    columns = []
    for i in range(first_index, first_index + width):
        if i in skip:
            columns.append(pl.Series(f"c{i}", [None] * height, dtype=pl.Datetime("ms")))
            continue
        try:
            column = workbook.load_sheet(
                sheet,
                header_row=None,
                skip_rows=0,
                n_rows=rows,
                dtypes={i: "datetime"},
                use_columns=[i],
            ).to_polars()[:, 0]
        except BaseException as err:
            if not is_panic(err):
                raise
            column = pl.Series([None] * height, dtype=pl.Datetime("ms"))
        columns.append(column.alias(f"c{i}"))
    return pl.DataFrame(columns)


def _too_wide(first: int, last: int, rows: int, sheet: str, source_name: str) -> FormatError:
    return FormatError(
        source_name,
        f"the sheet's used range is {_letters(first)}1:{_letters(last)}{rows},"
        f" {last - first + 1} columns wide, more than {MAX_COLUMNS}",
        "Delete the stray cells far to the right of the table in the workbook (Ctrl+End in"
        " Excel goes to the last used cell), or set `columns_range` in the dataset YAML to"
        " the table's columns (e.g. A:H)",
        sheet=sheet,
    )


def _check_size(scan: SheetScan, sheet: str, source_name: str) -> None:
    """Refuse a sheet whose grid calamine would make too large to hold."""
    # fastexcel keeps the leading empty rows (the grid starts at row 1), not columns.
    rows, columns = scan.last_row + 1, scan.last_column - scan.first_column + 1
    size = rows * columns
    if scan.last_row < 0:
        return
    if size > MAX_CELLS:
        cause = f"more than {MAX_CELLS} cells to load"
    elif size > SPARSE_CELLS and scan.cells * SPARSE_RATIO < size:
        cause = (
            f"{size} cells to load but only {scan.cells} written in the file,"
            f" fewer than 1 in {SPARSE_RATIO}"
        )
    else:
        return
    used = (
        f"{_letters(scan.first_column)}{scan.first_row + 1}:"
        f"{_letters(scan.last_column)}{scan.last_row + 1}"
    )
    raise FormatError(
        source_name,
        f"the sheet's used range is {used} ({rows} rows x {columns} columns), {cause}",
        "Delete the stray cells far outside the table in the workbook (Ctrl+End in Excel goes"
        " to the last used cell) and save it again, or deliver the sheet as CSV",
        sheet=sheet,
    )


def _check_scan(scan: SheetScan, sheet: str, layout: _Layout, source_name: str) -> None:
    _check_size(scan, sheet, source_name)
    _check_data_merges(scan, sheet, layout, source_name)
    columns = scan.last_column - scan.first_column + 1
    if scan.last_row >= 0 and layout.columns is None and columns > MAX_COLUMNS:
        raise _too_wide(scan.first_column, scan.last_column, scan.last_row + 1, sheet, source_name)
    if scan.no_result is not None:
        raise FormatError(
            source_name,
            f"formula cells without a stored result (e.g. {scan.no_result}); the program"
            " that wrote the file did not calculate them, so they would read as empty",
            "Open and save the file in Excel or LibreOffice so the results are stored",
            sheet=sheet,
        )


def _check_data_merges(scan: SheetScan, sheet: str, layout: _Layout, source_name: str) -> None:
    """Refuse cells merged down over data rows in the columns read: a person reads the one
    value as every row's (a district merged over its visits), but the file holds it in the
    top row only, and the rows below loaded it as empty without a word."""
    low, high = layout.columns or (0, LAST_COLUMN)
    for merge in scan.data_merges:
        right = merge.right + merge.columns - 1  # an .ods range repeated across columns
        if merge.left > high or right < low:
            continue
        if layout.skip_footer_rows and merge.top > scan.last_row - layout.skip_footer_rows:
            continue  # a note merged over the footer rows the load leaves out
        cells = f"{_letters(merge.left)}{merge.top + 1}:{_letters(merge.right)}{merge.bottom + 1}"
        raise FormatError(
            source_name,
            f"cells {cells} are merged over {merge.bottom - merge.top + 1} rows: the value is"
            " in the first row only, so the rows below would load it as empty",
            "Unmerge the cells at the source and fill the value into each row (in Excel:"
            " Merge & Center off, then Fill Down), or leave the column out with"
            " `columns_range:` in the dataset YAML",
            line=merge.top + 1,
            sheet=sheet,
        )
