"""Parquet files to an all-text frame, rendered the way the other readers render values.

Parquet is already typed, but the contract is text in, typing in one place: each value is
written as the Excel and JSON readers write the same value, so a dataset can switch from an
Excel delivery to Parquet without its typing or quarantine rules changing:

    integer, decimal      digits (decimals keep their scale: 18.750)
    float                 whole numbers as digits (4000), others as Python's repr (0.1, 1e-07)
    boolean               true / false
    date                  2026-01-15
    datetime              2026-01-15 13:30:00, with .fff... only when there is a fraction,
                          and the offset (+01:00) when the column has a time zone
    time                  13:30:00 (fraction as for datetime)
    duration              ISO 8601 (PT1M30S, -PT2H, P400DT0.000005S): says its unit, unlike
                          a bare number of seconds
    binary                base64
    list, array, struct   compact JSON text
    anything else         polars' own cast to text (categoricals, enums)

With `decimal_comma: true` (set by the pipeline for a dataset whose `parse:` has
`decimal_comma`, as for workbooks and JSON) float and decimal values are written with a comma
(`18,750`): with a `.`, 18.750 under a `.` thousands separator typed as 18750.

A decimal wider than polars' 38 digits (pyarrow's decimal256) is read through pyarrow and
rendered as its digits too, with the comma where `decimal_comma` asks for it. Duplicate
column names are refused by name.

`_source_row` is the 1-based row number in the file.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import io
import json
import math
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from connectors.formats.errors import FormatError, is_panic
from connectors.formats.frame import finish
from connectors.formats.options import flag

_INT64_SAFE = 2.0**62
# INT96 timestamps (Hive, Impala, old Spark) are read by pyarrow as nanoseconds unless told
# otherwise, and nanoseconds end in 2262: an SCD row's 9999-12-31 wrapped to 1816-03-29.
# Microseconds, as polars reads them, reach every year a timestamp can hold.
_INT96_UNIT = "us"


def read_parquet(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    check_options(options, source_name)
    comma = _decimal_comma(options, source_name)
    table = _read(data, source_name, decimal_comma=comma)
    _refuse_bad_names(table.columns, source_name)
    return _text_frame(table, 1, source_name, decimal_comma=comma)


def iter_parquet(
    path: Path, options: Mapping[str, Any], *, source_name: str, chunk_bytes: int
) -> Iterator[pl.DataFrame]:
    """`read_parquet` for a file on disk, in batches of rows of about `chunk_bytes` of
    uncompressed data each (read by pyarrow, a row group at a time), so memory is bounded
    by a batch, not by the file. Files up to one and a half pieces are read whole."""
    check_options(options, source_name)
    if path.stat().st_size <= chunk_bytes * 3 // 2:
        yield read_parquet(path.read_bytes(), options, source_name=source_name)
        return
    try:
        parquet = pq.ParquetFile(path, coerce_int96_timestamp_unit=_INT96_UNIT)
        metadata = parquet.metadata
        schema = parquet.schema_arrow
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _unreadable(source_name, err) from err
    _refuse_bad_names(schema.names, source_name)
    comma = _decimal_comma(options, source_name)
    uncompressed = sum(
        metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups)
    )
    rows = max(1, chunk_bytes * metadata.num_rows // max(uncompressed, 1))
    batches = parquet.iter_batches(batch_size=rows)
    first = 1
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError, ValueError) as err:
            raise _unreadable(source_name, err) from err
        if batch is None:
            break
        frame = _from_arrow(batch, source_name, decimal_comma=comma)
        yield _text_frame(frame, first, source_name, decimal_comma=comma)
        first += batch.num_rows
    if first == 1:  # no rows at all: one empty frame with the columns
        yield _text_frame(_from_arrow(schema.empty_table(), source_name), 1, source_name)


def check_options(options: Mapping[str, Any], source_name: str) -> None:
    extra = sorted(set(options) - {"type", "decimal_comma"})
    if extra:
        raise FormatError(
            source_name,
            "type parquet takes no `format:` options, got " + ", ".join(f"`{k}`" for k in extra),
            "Remove them from the dataset YAML (a zip or gzip around the file is `container:`)",
        )
    _decimal_comma(options, source_name)


def _decimal_comma(options: Mapping[str, Any], source_name: str) -> bool:
    return flag(options, "decimal_comma", source_name=source_name)


def _text_frame(
    table: pl.DataFrame, first: int, source_name: str, *, decimal_comma: bool = False
) -> pl.DataFrame:
    """The reader frame of `table`, whose first row is the file's row `first`."""
    if not table.width:  # not "the header row is empty. Set `header_row`", which parquet refuses
        raise FormatError(
            source_name, "the Parquet file has no columns", "Check the export that produced it"
        )
    values = pl.DataFrame(
        [
            _column_text(table[:, i], source_name, decimal_comma).alias(f"c{i}")
            for i in range(table.width)
        ]
    )
    return finish(
        values,
        table.columns,
        pl.int_range(first, first + table.height, eager=True, dtype=pl.Int64),
        source_name=source_name,
        header_line=None,
    )


def _read(data: bytes, source_name: str, *, decimal_comma: bool) -> pl.DataFrame:
    try:
        return _dates_as_dates(pl.read_parquet(io.BytesIO(data)), data)
    except BaseException as err:
        if not _is_read_error(err):
            raise
        failure = err
    # polars refuses some valid files (decimals over 38 digits, duplicate names); pyarrow
    # tells those apart from files that are not Parquet or are damaged, and reads the former.
    try:
        schema = pq.read_schema(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError):
        raise _unreadable(source_name, failure) from failure
    _refuse_bad_names(schema.names, source_name)
    try:
        arrow = pq.read_table(io.BytesIO(data), coerce_int96_timestamp_unit=_INT96_UNIT)
    except (pa.ArrowException, OSError, ValueError):
        raise _unreadable(source_name, failure) from failure
    return _from_arrow(arrow, source_name, decimal_comma=decimal_comma)


def _unreadable(source_name: str, failure: BaseException) -> FormatError:
    return FormatError(
        source_name,
        f"not a readable Parquet file ({_first_line(failure)})",
        "Check that the file is complete Parquet (not CSV or Excel renamed) written by a"
        " current Parquet writer",
    )


def _refuse_bad_names(names: list[str], source_name: str) -> None:
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    if duplicates:
        raise FormatError(
            source_name,
            "duplicate column names " + ", ".join(f"'{d}'" for d in duplicates),
            "Ask the supplier to give each column a unique name",
        )
    if any(not name.strip() for name in names):
        # Read in batches, pyarrow's frame named it `column_0`: loaded under a made-up name.
        position = next(i for i, name in enumerate(names, start=1) if not name.strip())
        raise FormatError(
            source_name,
            f"column {position} has no name",
            "Ask the supplier to give every column a name",
        )


def _dates_as_dates(frame: pl.DataFrame, data: bytes) -> pl.DataFrame:
    """Dates stored by arrow as date64 as dates: Parquet keeps them as DATE, but polars'
    reader follows the arrow schema the writer left and makes them datetimes (2024-01-01
    00:00:00), while the same file read in batches through pyarrow gave 2024-01-01."""
    datetimes = {n for n, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)}
    if not datetimes:
        return frame
    schema = pq.read_schema(io.BytesIO(data))
    dates = [f.name for f in schema if pa.types.is_date(f.type) and f.name in datetimes]
    return frame.with_columns(pl.col(dates).cast(pl.Date)) if dates else frame


def _from_arrow(
    arrow: pa.Table | pa.RecordBatch, source_name: str, *, decimal_comma: bool = False
) -> pl.DataFrame:
    """Arrow columns as polars ones, where polars' own reader would refuse some. A decimal
    wider than polars' 38 digits arrives as its text, with the comma `decimal_comma` asks for
    (it is text by then, so `_column_text` no longer knows it was a number)."""
    columns = []
    for field, column in zip(arrow.schema, arrow.columns, strict=True):
        try:
            if pa.types.is_decimal(field.type) and field.type.precision > 38:
                column = column.cast(pa.string())  # decimal256: its digits, scale kept
                if decimal_comma:
                    column = pc.replace_substring(column, ".", ",")
            elif pa.types.is_date64(field.type):
                column = column.cast(pa.date32())  # a date, as `_dates_as_dates` reads it
            columns.append(pl.Series(field.name, column))
        except BaseException as err:
            if not _is_read_error(err) and not isinstance(err, pa.ArrowException):
                raise
            raise FormatError(
                source_name,
                f"cannot read the column '{field.name}' ({field.type}) ({_first_line(err)})",
                "Ask the supplier for the file with plain column types, or without that column",
            ) from err
    return pl.DataFrame(columns)


def _is_read_error(err: BaseException) -> bool:
    return isinstance(err, pl.exceptions.PolarsError | OSError | ValueError) or is_panic(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _column_text(column: pl.Series, source_name: str, decimal_comma: bool) -> pl.Series:
    try:
        text = _text(column)
        if decimal_comma and (column.dtype.is_float() or column.dtype.is_decimal()):
            return text.str.replace(".", ",", literal=True)
        return text
    except BaseException as err:
        if not isinstance(err, pl.exceptions.PolarsError) and not is_panic(err):
            raise
        raise FormatError(
            source_name,
            f"cannot render the column '{column.name}' ({column.dtype}) as text"
            f" ({_first_line(err)[:200]})",
            "Ask the supplier for the file with plain column types, or without that column",
        ) from err


def _text(column: pl.Series) -> pl.Series:
    dtype = column.dtype
    if dtype == pl.String:
        return column
    if dtype == pl.Boolean:
        return column.cast(pl.String)  # "true" / "false"
    if dtype.is_float():
        return _float_text(column)
    if dtype.is_integer() or dtype.is_decimal():
        return column.cast(pl.String)
    if dtype == pl.Date:
        return column.dt.strftime("%Y-%m-%d")
    if isinstance(dtype, pl.Datetime):
        whole = "%Y-%m-%d %H:%M:%S" + ("%:z" if dtype.time_zone else "")
        fraction = "%Y-%m-%d %H:%M:%S%.f" + ("%:z" if dtype.time_zone else "")
        has_fraction = column.dt.truncate("1s") != column
        return pl.select(
            pl.when(pl.lit(has_fraction))
            .then(pl.lit(column).dt.strftime(fraction))
            .otherwise(pl.lit(column).dt.strftime(whole))
        ).to_series()
    if dtype == pl.Time:
        has_fraction = column.dt.nanosecond() != 0
        return pl.select(
            pl.when(pl.lit(has_fraction))
            .then(pl.lit(column).dt.strftime("%H:%M:%S%.f"))
            .otherwise(pl.lit(column).dt.strftime("%H:%M:%S"))
        ).to_series()
    if isinstance(dtype, pl.Duration):
        return column.dt.to_string("iso")
    if dtype == pl.Binary:
        return column.bin.encode("base64")
    if dtype.is_nested():
        return pl.Series(
            [None if v is None else _json(v) for v in column.to_list()], dtype=pl.String
        )
    return column.cast(pl.String)


def _float_text(column: pl.Series) -> pl.Series:
    # Python's repr (shortest round trip) for the fractional values, as the JSON and Excel
    # readers do; a vectorised cast covers the whole ones, which are most of them.
    values = column.cast(pl.Float64)
    whole = values.is_finite() & (values == values.floor()) & (values.abs() < _INT64_SAFE)
    text = pl.select(
        pl.when(pl.lit(whole)).then(pl.lit(values).cast(pl.Int64, strict=False).cast(pl.String))
    ).to_series()
    positions = (~whole & values.is_not_null()).arg_true()
    if positions.len():
        if column.dtype == pl.Float32:
            # Widening 0.1f gives 0.10000000149011612; polars prints the shortest text
            # that reads back as the same float32, which Python then formats as usual.
            shortest = column.gather(positions).cast(pl.String).to_list()
            rendered = [_float_repr(float(v)) for v in shortest]
        else:
            rendered = [_float_repr(v) for v in column.gather(positions).to_list()]
        text = text.scatter(positions, rendered)
    return text


def _float_repr(value: float) -> str:
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)
