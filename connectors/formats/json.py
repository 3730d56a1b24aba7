"""JSON documents (an array of records, possibly nested under a key) and NDJSON to text frames.

Values are rendered as text the way the Excel reader renders cells, so the typing step does
not care where a record came from; nested objects and lists are kept as JSON text, or with
`flatten: true` each field of a nested object is a column of its own (`Borger.cpr`), as
pandas' `json_normalize` names them (lists stay JSON text).

`decimal_comma: true` (set by the pipeline for a dataset whose `parse:` has `decimal_comma`,
as for workbooks) writes a JSON number's fraction with a comma (`22,2`), so a number and a
text `"22,2"` type alike: read with `.`, 2.125 under a `.` thousands separator became 2125.

Records become columns through `frame.records_frame`, as in the XML reader: it refuses more
than MAX_COLUMNS different fields, and a table that would be mostly empty cells (fields that
each appear in a few records), before the columns are built.
"""

from __future__ import annotations

# This module is connectors.formats.json; with absolute imports `json` is still the stdlib one.
import json as stdlib_json
import math
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from connectors.formats.encoding import (
    PieceDecoder,
    cuts_after_ascii,
    decode,
    newlines_are_multi_byte,
    without_end_of_file_mark,
)
from connectors.formats.errors import FormatError
from connectors.formats.frame import (
    MAX_COLUMNS,
    MAX_VALUE_CHARS,
    FieldsSeen,
    records_frame,
    too_long_value,
    too_many_fields,
)
from connectors.formats.json_stream import (
    DECODER,
    NotJson,
    iter_records,
    kind_of,
    not_json,
    too_deep,
    too_many_digits,
    unseen,
)
from connectors.formats.options import check_keys, flag, optional_str

JSON_OPTIONS = {"record_path", "encoding", "flatten", "decimal_comma"}
NDJSON_OPTIONS = {"encoding", "flatten", "decimal_comma"}
_PLAIN_DIGITS = 40  # a Decimal with an exponent up to this is written out in digits


def check_json_options(options: Mapping[str, Any], source_name: str) -> None:
    check_keys(options, JSON_OPTIONS, "json", source_name=source_name)
    optional_str(options, "record_path", source_name=source_name)
    optional_str(options, "encoding", source_name=source_name)
    flag(options, "flatten", source_name=source_name)
    flag(options, "decimal_comma", source_name=source_name)


def check_ndjson_options(options: Mapping[str, Any], source_name: str) -> None:
    check_keys(options, NDJSON_OPTIONS, "ndjson", source_name=source_name)
    optional_str(options, "encoding", source_name=source_name)
    flag(options, "flatten", source_name=source_name)
    flag(options, "decimal_comma", source_name=source_name)


def read_json(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    check_keys(options, JSON_OPTIONS, "json", source_name=source_name)
    record_path = optional_str(options, "record_path", source_name=source_name)
    text = _text(data, options, source_name)
    if not text or text.isspace():  # isspace() stops at the first other character
        # as the other readers say it, not "Expecting value (column 1)"
        raise FormatError(source_name, "the file is empty", "Check the export that produced it")
    try:
        document = DECODER.decode(text)
    except stdlib_json.JSONDecodeError as err:
        raise FormatError(
            source_name,
            f"not valid JSON: {err.msg} (column {err.colno}){unseen(text, err.pos)}",
            "Check the export; a file with one JSON object per line is `type: ndjson`",
            line=err.lineno,
        ) from err
    except RecursionError as err:
        raise too_deep(source_name, None) from err
    except NotJson as err:
        raise not_json(err, source_name, None) from err
    except ValueError as err:
        raise too_many_digits(source_name, None) from err

    records = _at_path(document, record_path, source_name)
    for position, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            hint = "Point `record_path` at the array of records"
            if (
                position == 1
                and isinstance(record, list)
                and all(isinstance(v, str) for v in record)
            ):
                # `[["cpr", "navn"], ["0101901234", "Bo"]]`: a table, not records.
                hint = (
                    "The array looks like a table (an array of column names, then an array per"
                    " row), which is not read: ask the sender for an array of objects, one per"
                    " record, or for the table as CSV"
                )
            raise FormatError(
                source_name,
                f"record {position} at `record_path` {record_path or '(document)'!r} is"
                f" {kind_of(record)}, not an object",
                hint,
            )
    return _frame(
        records,
        None,
        source_name,
        flatten=_flatten(options, source_name),
        decimal_comma=_decimal_comma(options, source_name),
    )


def _flatten(options: Mapping[str, Any], source_name: str) -> bool:
    return flag(options, "flatten", source_name=source_name)


def _decimal_comma(options: Mapping[str, Any], source_name: str) -> bool:
    return flag(options, "decimal_comma", source_name=source_name)


def _text(data: bytes, options: Mapping[str, Any], source_name: str) -> str:
    codec = optional_str(options, "encoding", source_name=source_name)
    return without_end_of_file_mark(decode(data, codec, source_name=source_name).text)


def iter_json(
    path: Path, options: Mapping[str, Any], *, source_name: str, chunk_bytes: int
) -> Iterator[pl.DataFrame]:
    """`read_json` for a file on disk in frames of about `chunk_bytes` of records each (see
    json_stream.py). Read whole: files up to one and a half pieces, UTF-16/32, and encodings
    whose pieces cannot be cut after an ASCII byte (`encoding.cuts_after_ascii`)."""
    check_keys(options, JSON_OPTIONS, "json", source_name=source_name)
    record_path = optional_str(options, "record_path", source_name=source_name)
    codec = optional_str(options, "encoding", source_name=source_name)
    with path.open("rb") as handle:
        head = handle.read(4)  # a byte-order mark, at most
        if (
            path.stat().st_size <= chunk_bytes * 3 // 2
            or newlines_are_multi_byte(head, codec)
            or not cuts_after_ascii(codec)
        ):
            yield read_json(head + handle.read(), options, source_name=source_name)
            return
        handle.seek(0)
        first, fields = 1, FieldsSeen(source_name)
        flatten = _flatten(options, source_name)
        comma = _decimal_comma(options, source_name)
        for records in iter_records(
            handle, record_path, codec, source_name=source_name, chunk_bytes=chunk_bytes
        ):
            yield _frame(
                records,
                None,
                source_name,
                first=first,
                fields=fields,
                flatten=flatten,
                decimal_comma=comma,
            )
            first += len(records)
        fields.finish()


def read_ndjson(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    check_keys(options, NDJSON_OPTIONS, "ndjson", source_name=source_name)
    text = _text(data, options, source_name)
    return _ndjson_frame(
        text,
        1,
        source_name,
        at_end=True,
        flatten=_flatten(options, source_name),
        decimal_comma=_decimal_comma(options, source_name),
    )


def iter_ndjson(
    path: Path, options: Mapping[str, Any], *, source_name: str, chunk_bytes: int
) -> Iterator[pl.DataFrame]:
    """`read_ndjson` for a file on disk in frames of about `chunk_bytes` of lines each, so
    memory is bounded by a piece, not by the file. An undeclared encoding is found in the
    first piece that is not pure ASCII (NDJSON is UTF-8 by its specification, but exports
    are not always); UTF-16/32, whose newlines are not one byte, is read whole."""
    check_keys(options, NDJSON_OPTIONS, "ndjson", source_name=source_name)
    codec = optional_str(options, "encoding", source_name=source_name)
    flatten = _flatten(options, source_name)
    comma = _decimal_comma(options, source_name)
    with path.open("rb") as handle:
        pending = handle.read(chunk_bytes)
        if path.stat().st_size <= chunk_bytes * 3 // 2 or newlines_are_multi_byte(pending, codec):
            yield read_ndjson(pending + handle.read(), options, source_name=source_name)
            return
        yielded, fields = False, FieldsSeen(source_name)
        decoder = PieceDecoder(codec, source_name=source_name)
        while pending:
            following = handle.read(chunk_bytes)
            if following:
                cut = pending.rfind(b"\n") + 1
                if not cut:  # a line longer than a piece: read on
                    pending += following
                    continue
                piece, pending = pending[:cut], pending[cut:] + following
            else:
                piece, pending = pending, b""
            line = decoder.lines + 1  # the piece's first line
            text = decoder.decode(piece)
            if not pending:
                text = without_end_of_file_mark(text)
            frame = _ndjson_frame(
                text,
                line,
                source_name,
                fields=fields,
                at_end=not pending,
                flatten=flatten,
                decimal_comma=comma,
            )
            if frame.height or (not pending and not yielded):
                yield frame
                yielded = True
        fields.finish()


def _ndjson_hint(err: stdlib_json.JSONDecodeError, line: str, *, cut_off: bool) -> str:
    if err.msg == "Extra data" and "\r" in line[: err.pos]:
        # old Mac line ends: the whole file is one line of records after records
        return (
            "The lines end in a carriage return (CR) only; ask for the file with LF or CRLF "
            "line ends"
        )
    # Where the text ran out, or a string that never closed (Python places that error at
    # the string's start).
    if cut_off and (err.pos >= len(line.rstrip()) or err.msg.startswith("Unterminated string")):
        # The last record stops mid-way: removing it would load a file that lost its tail.
        return (
            "The file ends in the middle of this record: it looks cut off (an interrupted "
            "export or transfer). Ask the sender for the whole file"
        )
    if line.lstrip().startswith("[") or line.strip() == "{":
        # A JSON document (an array of records, or an object written over several lines)
        # delivered as NDJSON: the line-by-line reader meets `[` or a lone `{` first.
        return (
            "This looks like one JSON document (an array, or an object spread over several"
            " lines), not one object per line: set `type: json` under `format:` in the"
            " dataset YAML"
        )
    if err.msg == "Extra data" and line[err.pos :].strip() == ",":
        return (
            "The line ends with a comma after its object: NDJSON separates records by line"
            " ends only. Ask for the file without the commas"
        )
    return "Each line must hold one complete JSON object; fix or remove this line"


def _ndjson_frame(
    text: str,
    first_line: int,
    source_name: str,
    *,
    fields: FieldsSeen | None = None,
    at_end: bool = False,
    flatten: bool = False,
    decimal_comma: bool = False,
) -> pl.DataFrame:
    """The records of NDJSON `text` whose first line is the file's line `first_line`;
    `fields`, `flatten` and `decimal_comma` as for `_frame`; `at_end` when `text` ends the
    file."""
    records: list[dict[str, Any]] = []
    lines: list[int] = []
    split = text.split("\n")
    last = first_line + max((i for i, line in enumerate(split) if line.strip()), default=0)
    for number, line in enumerate(split, start=first_line):
        if not line.strip():
            continue
        try:
            record = DECODER.decode(line)
        except stdlib_json.JSONDecodeError as err:
            raise FormatError(
                source_name,
                f"not valid JSON: {err.msg} (column {err.colno}){unseen(line, err.pos)}",
                _ndjson_hint(err, line, cut_off=at_end and number == last),
                line=number,
            ) from err
        except RecursionError as err:
            raise too_deep(source_name, number) from err
        except NotJson as err:
            raise not_json(err, source_name, number) from err
        except ValueError as err:
            raise too_many_digits(source_name, number) from err
        if not isinstance(record, dict):
            hint = "Each line must hold one JSON object (a record)"
            if number == 1 and isinstance(record, list) and all(isinstance(v, str) for v in record):
                # `["cpr", "navn"]` then `["0101901234", "Bo"]`: a table, not records.
                hint = (
                    "The lines look like a table (column names on the first line, then an"
                    " array per row), which is not read: ask the sender for one JSON object"
                    " per line, or for the table as CSV"
                )
            elif isinstance(record, list) and record and all(isinstance(v, dict) for v in record):
                # `[{...}, {...}]`: a JSON document delivered as NDJSON.
                hint = (
                    "The records are a JSON array, not one object per line: set `type: json`"
                    " under `format:` in the dataset YAML"
                )
            raise FormatError(
                source_name,
                f"the line holds {kind_of(record)}, not a JSON object",
                hint,
                line=number,
            )
        records.append(record)
        lines.append(number)
    first = fields.records + 1 if fields else 1  # the file's number of the first record
    return _frame(
        records,
        lines,
        source_name,
        first=first,
        fields=fields,
        flatten=flatten,
        decimal_comma=decimal_comma,
    )


def _at_path(document: Any, record_path: str | None, source_name: str) -> list[Any]:
    node = document
    walked: list[str] = []
    for key in record_path.split(".") if record_path else []:
        walked.append(key)
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isascii() and key.isdigit() and int(key) < len(node):
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
        hint = "Set `record_path` to the dot path of the array of records (e.g. `data.items`)"
        if isinstance(node, dict) and (arrays := _record_arrays(node, record_path)):
            # An API envelope (`{"antal": 4, "data": [...]}`): say where the records are.
            listed = ", ".join(f"`{path}` holds {length:,} objects" for path, length in arrays)
            hint = f"Set `record_path` in the dataset YAML to the array of records: {listed}"
        raise FormatError(
            source_name,
            f"`record_path` {record_path or '(empty)'!r} leads to {kind_of(node)}, not an"
            " array of records",
            hint,
        )
    return node


def _record_arrays(node: dict[str, Any], record_path: str | None) -> list[tuple[str, int]]:
    """The dot paths (from the document) of the first few arrays of objects in `node`, up to
    four levels down, nearest first, with their lengths."""
    found: list[tuple[str, int]] = []
    level = [(record_path or "", node)]
    for _ in range(4):
        below = []
        for path, obj in level:
            for key, value in obj.items():
                here = f"{path}.{key}" if path else str(key)
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    found.append((here, len(value)))
                elif isinstance(value, dict):
                    below.append((here, value))
        if len(found) >= 3 or not below:
            break
        level = below
    return found[:3]


def _frame(
    records: list[dict[str, Any]],
    lines: list[int] | None,
    source_name: str,
    *,
    first: int = 1,
    fields: FieldsSeen | None = None,
    flatten: bool = False,
    decimal_comma: bool = False,
) -> pl.DataFrame:
    """`lines` are NDJSON's line numbers; a JSON document's records are numbered from
    `first`, the number of the first record in the document. `fields` has the field names
    of the file's earlier frames, when it is read in pieces. `flatten`: a nested object's
    fields become columns `parent.child`. `decimal_comma`: numbers are written `22,2`."""
    indices: dict[str, list[int]] = {}  # per key, in first-appearance order: which records
    values: dict[str, list[str | None]] = {}  # and their values, so absent keys cost nothing
    for index, record in enumerate(records):
        seen: set[str] | None = set() if flatten else None
        for key, value in _flattened(record) if flatten else record.items():
            if seen is not None:
                if key in seen:
                    line = lines[index] if lines else None
                    where = "" if lines else f" (record {index + first})"
                    raise FormatError(
                        source_name,
                        f"`{key}` is in the record twice once nested objects are flattened"
                        f" (a field named with a dot beside an object of that name){where}",
                        "Leave out `flatten: true` and map the nested object's JSON text, or"
                        " ask the sender to rename one of the two",
                        line=line,
                    )
                seen.add(key)
            if key not in values:
                if len(values) >= MAX_COLUMNS:
                    line = lines[index] if lines else None
                    raise too_many_fields(values, key, index + first, source_name, line=line)
                indices[key] = []
                values[key] = []
            try:
                text = value_text(value, decimal_comma=decimal_comma)
            except RecursionError as err:  # dumping a nested value nearly as deep as allowed
                line = lines[index] if lines else None
                raise too_deep(source_name, line, None if lines else index + first) from err
            if text is not None and len(text) > MAX_VALUE_CHARS:
                line = lines[index] if lines else None
                raise too_long_value(f"the value of `{key}`", index + first, source_name, line=line)
            indices[key].append(index)
            values[key].append(text)
    source_rows = lines if lines is not None else range(first, first + len(records))
    if fields is not None:
        fields.add(indices, len(records), lines)
    try:
        return records_frame(indices, values, list(source_rows), source_name)
    except UnicodeEncodeError as err:  # "\ud800" alone is valid JSON but not text
        raise _lone_surrogate(indices, values, lines, first, source_name) from err


def _flattened(record: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """A record's fields with each nested object's fields in its place, named `parent.child`
    at any depth; an empty object stays a value (`{}`), so the field is not lost."""
    for key, value in record.items():
        if isinstance(value, dict) and value:
            yield from _flattened(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _lone_surrogate(
    indices: dict[str, list[int]],
    values: dict[str, list[str | None]],
    lines: list[int] | None,
    first: int,
    source_name: str,
) -> FormatError:
    found: list[tuple[int, str]] = []  # (record index, what)
    for key, texts in values.items():
        if not _is_text(key):
            found.append((indices[key][0], f"the field name {key!a}"))
            continue
        pairs = zip(indices[key], texts, strict=True)
        bad = next((i for i, text in pairs if text and not _is_text(text)), None)
        if bad is not None:
            found.append((bad, f"the value of `{key}`"))
    index, what = min(found)
    return FormatError(
        source_name,
        f"{what}{'' if lines else f' in record {index + first}'} holds a lone UTF-16"
        " surrogate (a `\\ud800`-style escape without its pair), which is not text",
        "Ask the supplier to fix the JSON writer: a character outside the BMP is written"
        " as a pair of escapes or as the character itself",
        line=lines[index] if lines else None,
    )


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def value_text(value: Any, *, decimal_comma: bool = False) -> str | None:
    """A JSON value as the text a reader frame holds (typing happens later, from text):
    booleans as true/false, whole floats without `.0`, objects and lists as compact JSON;
    a number's fraction after a comma with `decimal_comma` (nested JSON text keeps its `.`)."""
    if isinstance(value, Decimal | float):
        text = _number_text(value)
        return text.replace(".", ",") if decimal_comma else text
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _nested_text(value)


def _number_text(value: Decimal | float) -> str:
    if isinstance(value, Decimal):  # a number with a fraction or exponent, as written
        exponent = value.adjusted()
        if exponent < _PLAIN_DIGITS and value == value.to_integral_value():
            return str(int(value))  # 1.0 and 1e3 as the whole numbers they are
        if -_PLAIN_DIGITS < exponent < _PLAIN_DIGITS:
            return format(value, "f")  # 1.5e-7 as 0.00000015
        return str(value)  # 1E+400: no column holds it, and typing says so
    if math.isfinite(value) and value.is_integer():
        return str(int(value))
    return repr(value)


def _nested_text(value: Any) -> str:
    """An object or list as compact JSON with its numbers as the file wrote them: through a
    float, `12345678901234.567` inside a list would become `...566`. Plain loops, one stack
    frame per level, so what the parser could nest can be written back."""
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            parts.append(f"{_dumps(key)}:{_nested_text(item)}")
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list):
        parts = []
        for item in value:
            parts.append(_nested_text(item))
        return "[" + ",".join(parts) + "]"
    if isinstance(value, Decimal):
        return str(value)  # the parsed spelling (`1.50`, `1E+23`): valid JSON, no digit lost
    return _dumps(value)


def _dumps(value: Any) -> str:
    return stdlib_json.dumps(value, ensure_ascii=False)
