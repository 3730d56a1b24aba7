"""Bytes of a delivered file to a polars frame of text columns, whatever the file format.

Every reader returns the same shape: one `pl.String` column per source column, named by its
header, stripped values with empty as null, fully empty rows dropped, and a final `_source_row`
(`pl.Int64`) saying where a person finds the record in the file. Typing happens later, in one
place; readers never guess types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import polars as pl

from connectors.formats.csv import read_csv
from connectors.formats.errors import FormatError
from connectors.formats.excel import read_excel
from connectors.formats.frame import SOURCE_ROW
from connectors.formats.json import read_json, read_ndjson

__all__ = ["SOURCE_ROW", "FormatError", "read_table"]

Reader = Callable[..., pl.DataFrame]

READERS: dict[str, Reader] = {
    "csv": read_csv,
    "excel": read_excel,
    "json": read_json,
    "ndjson": read_ndjson,
}


def read_table(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    """Read one delivered file; `options` is the dataset YAML's `format:` block.

    Raises FormatError (one line: file, location, cause, what to do) for anything unreadable.
    """
    kind = options.get("type")
    reader = READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise FormatError(
            source_name,
            f"unknown or missing `format.type` {kind!r}",
            "Set `type:` in the dataset YAML's `format:` block to one of: " + ", ".join(READERS),
        )
    return reader(data, options, source_name=source_name)
