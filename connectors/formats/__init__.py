"""Bytes of a delivered file to a polars frame of text columns, whatever the file format.

Every reader returns the same shape: one `pl.String` column per source column, named by its
header, stripped values with empty as null, fully empty rows dropped, and a final `_source_row`
(`pl.Int64`) saying where a person finds the record in the file. Typing happens later, in one
place; readers never guess types. The Excel reader with `sheets:` also adds a `_sheet`
(`pl.String`) column, just before `_source_row`, naming the sheet each row came from.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from connectors.formats import chunks, containers, excel, parquet, xml
from connectors.formats.chunks import iter_csv
from connectors.formats.csv import CsvOptions, read_csv
from connectors.formats.encoding import codec_name
from connectors.formats.errors import FormatError
from connectors.formats.excel import read_excel
from connectors.formats.fixed_width import FixedWidthOptions, iter_fixed_width, read_fixed_width
from connectors.formats.frame import SOURCE_ROW, SkipCounter
from connectors.formats.json import (
    check_json_options,
    check_ndjson_options,
    iter_json,
    iter_ndjson,
    read_json,
    read_ndjson,
)
from connectors.formats.parquet import iter_parquet, read_parquet
from connectors.formats.xml import iter_xml, read_xml

__all__ = ["SOURCE_ROW", "FormatError", "check_options", "iter_table", "read_table"]

Reader = Callable[..., pl.DataFrame]

READERS: dict[str, Reader] = {
    "csv": read_csv,
    "excel": read_excel,
    "json": read_json,
    "ndjson": read_ndjson,
    "xml": read_xml,
    "fixed_width": read_fixed_width,
    "parquet": read_parquet,
}

# Formats read a piece at a time from a file on disk (`iter_table`).
STREAMED: dict[str, Callable[..., Iterator[pl.DataFrame]]] = {
    "csv": iter_csv,
    "json": iter_json,
    "ndjson": iter_ndjson,
    "xml": iter_xml,
    "parquet": iter_parquet,
    "fixed_width": iter_fixed_width,
}


# The readers with `skip_rows_matching`, which tell a `count_skipped` what they left out.
SKIPPING = frozenset({"csv", "excel"})

# What each reader refuses about its `format:` options alone, before any file is read.
OPTION_CHECKS: dict[str, Callable[[Mapping[str, Any], str], object]] = {
    "csv": CsvOptions.parse,
    "excel": excel.check_options,
    "json": check_json_options,
    "ndjson": check_ndjson_options,
    "xml": xml.check_options,
    "fixed_width": FixedWidthOptions.parse,
    "parquet": parquet.check_options,
}


def _kind(options: Mapping[str, Any], source_name: str) -> str:
    kind = options.get("type")
    if not isinstance(kind, str) or kind not in READERS:
        raise FormatError(
            source_name,
            f"unknown or missing `format.type` {kind!r}",
            "Set `type:` in the dataset YAML's `format:` block to one of: " + ", ".join(READERS),
        )
    return kind


def check_options(options: Mapping[str, Any], *, source_name: str) -> None:
    """Raise the FormatError reading any file would raise for these `format:` options
    themselves (an unknown type or key, a value of the wrong kind, an unknown encoding), so
    a mistake in the dataset YAML is reported as the YAML's, not as the next delivery's."""
    kind = _kind(options, source_name)
    check = OPTION_CHECKS[kind]
    if containers.uses_container(options):
        options = containers.inner_options(options, source_name)
    check(options, source_name)
    encoding = options.get("encoding")
    if isinstance(encoding, str):
        codec_name(encoding, source_name)


def read_table(
    data: bytes,
    options: Mapping[str, Any],
    *,
    source_name: str,
    count_skipped: SkipCounter | None = None,
) -> pl.DataFrame:
    """Read one delivered file; `options` is the dataset YAML's `format:` block.

    A `container:` option (zip, gzip, auto) unpacks the delivery first, within size, ratio
    and member limits; `type` is then the format of the file inside.

    Raises FormatError (one line: file, location, cause, what to do) for anything unreadable.
    `count_skipped` is told how many rows `skip_rows_matching` left out (CSV, Excel).
    """
    kind = _kind(options, source_name)
    reader = READERS[kind]
    if containers.uses_container(options):
        inner = containers.unpack(data, options, inner_type=kind, source_name=source_name)
        data, options, source_name = inner.data, inner.options, inner.source_name
    else:
        containers.refuse_packed_text(data[:8], kind, source_name)
    if kind in SKIPPING and count_skipped is not None:
        return reader(data, options, source_name=source_name, count_skipped=count_skipped)
    return reader(data, options, source_name=source_name)


def iter_table(
    path: Path,
    options: Mapping[str, Any],
    *,
    source_name: str,
    chunk_bytes: int | None = None,
    scratch: Path | None = None,
    count_skipped: SkipCounter | None = None,
) -> Iterator[pl.DataFrame]:
    """`read_table` for a file on disk, in frames of bounded size where the format allows.

    Delimited text, JSON, NDJSON, XML, Parquet and fixed width larger than a chunk are read
    piece by piece (see chunks.py, json_stream.py, json.iter_ndjson, xml.iter_xml,
    parquet.iter_parquet, fixed_width.iter_fixed_width), `_source_row` still the file's own
    line, record or row numbers; Excel comes as one frame. Frames of record
    formats may differ in their columns: a field only later records have. These formats in
    a zip or gzip are unpacked to a temporary file in `scratch` (default: the system's
    temporary folder) and read from it piece by piece. `count_skipped` as in `read_table`.
    """
    kind = options.get("type")
    streamed = STREAMED.get(kind)
    if streamed is None:
        yield read_table(
            path.read_bytes(), options, source_name=source_name, count_skipped=count_skipped
        )
        return
    chunk = chunk_bytes or chunks.CHUNK_BYTES  # read at call time: tests lower it
    if kind in SKIPPING and count_skipped is not None:
        streamed = functools.partial(streamed, count_skipped=count_skipped)
    if not containers.uses_container(options):
        with path.open("rb") as handle:
            containers.refuse_packed_text(handle.read(8), kind, source_name)
        yield from streamed(path, options, source_name=source_name, chunk_bytes=chunk)
        return
    folder = scratch or Path(tempfile.gettempdir())
    with containers.unpacked(
        path, options, inner_type=kind, source_name=source_name, folder=folder
    ) as inner:
        yield from streamed(
            inner.path, inner.options, source_name=inner.source_name, chunk_bytes=chunk
        )
