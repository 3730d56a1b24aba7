"""JSON documents (an array of records, possibly nested under a key) and NDJSON to text frames.

Values are rendered as text the way the Excel reader renders cells, so the typing step does
not care where a record came from; nested objects and lists are kept as JSON text.
"""

from __future__ import annotations

# This module is connectors.formats.json; with absolute imports `json` is still the stdlib one.
import json as stdlib_json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from connectors.formats.encoding import decode
from connectors.formats.errors import FormatError
from connectors.formats.frame import SOURCE_ROW, finish
from connectors.formats.options import check_keys, optional_str

JSON_OPTIONS = {"record_path", "encoding"}
NDJSON_OPTIONS = {"encoding"}


def read_json(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    check_keys(options, JSON_OPTIONS, "json", source_name=source_name)
    record_path = optional_str(options, "record_path", source_name=source_name)
    text = decode(
        data, optional_str(options, "encoding", source_name=source_name), source_name=source_name
    ).text
    try:
        document = stdlib_json.loads(text)
    except stdlib_json.JSONDecodeError as err:
        raise FormatError(
            source_name,
            f"not valid JSON: {err.msg} (column {err.colno})",
            "Check the export; a file with one JSON object per line is `type: ndjson`",
            line=err.lineno,
        ) from err

    records = _at_path(document, record_path, source_name)
    for position, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise FormatError(
                source_name,
                f"record {position} at `record_path` {record_path or '(document)'!r} is a"
                f" {_kind(record)}, not an object",
                "Point `record_path` at the array of records",
            )
    return _frame(records, range(1, len(records) + 1), source_name)


def read_ndjson(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    check_keys(options, NDJSON_OPTIONS, "ndjson", source_name=source_name)
    text = decode(
        data, optional_str(options, "encoding", source_name=source_name), source_name=source_name
    ).text
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = stdlib_json.loads(line)
        except stdlib_json.JSONDecodeError as err:
            raise FormatError(
                source_name,
                f"not valid JSON: {err.msg} (column {err.colno})",
                "Each line must hold one complete JSON object; fix or remove this line",
                line=number,
            ) from err
        if not isinstance(record, dict):
            raise FormatError(
                source_name,
                f"the line holds a {_kind(record)}, not a JSON object",
                "Each line must hold one JSON object (a record)",
                line=number,
            )
        records.append(record)
        lines.append(number)
    return _frame(records, lines, source_name)


def _at_path(document: Any, record_path: str | None, source_name: str) -> list[Any]:
    node = document
    walked: list[str] = []
    for key in record_path.split(".") if record_path else []:
        walked.append(key)
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            keys = ", ".join(f"'{k}'" for k in node) if isinstance(node, dict) else ""
            raise FormatError(
                source_name,
                f"`record_path` {record_path!r} not found: no {'.'.join(walked)!r} in the"
                f" document" + (f" (keys there: {keys})" if keys else ""),
                "Set `record_path` to the dot path of the array of records",
            )
    if not isinstance(node, list):
        raise FormatError(
            source_name,
            f"`record_path` {record_path or '(empty)'!r} leads to a {_kind(node)}, not an"
            " array of records",
            "Set `record_path` to the dot path of the array of records (e.g. `data.items`)",
        )
    return node


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null" if value is None else type(value).__name__


def _frame(
    records: list[dict[str, Any]], source_rows: Iterable[int], source_name: str
) -> pl.DataFrame:
    keys: dict[str, None] = {}  # first appearance order; later records may add keys
    for record in records:
        keys.update(dict.fromkeys(record))
    if not keys:
        return pl.DataFrame(schema={SOURCE_ROW: pl.Int64})
    columns = {
        f"c{i}": pl.Series([value_text(r.get(key)) for r in records], dtype=pl.String)
        for i, key in enumerate(keys)
    }
    return finish(
        pl.DataFrame(columns),
        list(keys),
        pl.Series(list(source_rows), dtype=pl.Int64),
        source_name=source_name,
        header_line=None,
    )


def value_text(value: Any) -> str | None:
    """A JSON value as the text a reader frame holds (typing happens later, from text):
    booleans as true/false, whole floats without `.0`, objects and lists as compact JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value)
    return stdlib_json.dumps(value, ensure_ascii=False, separators=(",", ":"))
