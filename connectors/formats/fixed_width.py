"""Fixed-width text (CPR-style extracts, mainframe reports) to an all-text frame by a layout.

The record layout lives in the dataset YAML, written the way record layouts are printed,
with 1-based positions:

    format:
      type: fixed_width
      encoding: cp865                 # required: positions depend on it
      record_type: {start: 1, length: 3, value: "001"}   # optional: CPR mixes record types
      skip_header_lines: 1            # physical lines at the top (a start record)
      skip_footer_lines: 1            # last non-blank lines (a trailer record with counts)
      allow_short_lines: false        # true: fields past the end of a short line are null
      columns:
        - {name: cpr, start: 4, length: 10}
        - {name: navn, start: 14, end: 47}    # `end` is inclusive, as in "pos. 14-47"

Positions count characters of the decoded line, which for the single-byte code pages these
extracts use (cp1252, latin-1, cp865) are bytes. Columns may overlap (a date and its year).
`_source_row` is the physical line number. Blank lines are skipped; a line shorter than the
layout is an error (a truncated or wrongly decoded file shifts every later field) unless
`allow_short_lines` says the export trims trailing blanks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from connectors.formats.encoding import (
    decode,
    refuse_unlikely_characters,
    refuse_utf8_as_single_byte,
)
from connectors.formats.errors import FormatError
from connectors.formats.frame import finish
from connectors.formats.options import check_keys, flag, non_negative_int, optional_str

OPTIONS = {
    "encoding",
    "columns",
    "record_type",
    "skip_header_lines",
    "skip_footer_lines",
    "allow_short_lines",
}
_COLUMN_KEYS = {"name", "start", "length", "end"}
_RECORD_TYPE_KEYS = {"start", "length", "value"}
_LAYOUT_HINT = (
    "Fix `columns` in the dataset YAML: a list of {name, start, length} or {name, start, end}"
    " with 1-based positions"
)


@dataclass(frozen=True)
class Field:
    name: str
    start: int  # 1-based
    length: int

    @property
    def end(self) -> int:  # 1-based, inclusive
        return self.start + self.length - 1


@dataclass(frozen=True)
class FixedWidthOptions:
    encoding: str
    columns: tuple[Field, ...]
    record_type: tuple[Field, str] | None
    skip_header_lines: int
    skip_footer_lines: int
    allow_short_lines: bool

    @classmethod
    def parse(cls, options: Mapping[str, Any], source_name: str) -> FixedWidthOptions:
        check_keys(options, OPTIONS, "fixed_width", source_name=source_name)
        encoding = optional_str(options, "encoding", source_name=source_name)
        if encoding is None:
            raise FormatError(
                source_name,
                "`encoding` is required for type fixed_width (field positions depend on it)",
                "Set `encoding:` in the dataset YAML, e.g. cp1252, latin-1, cp865 or utf-8",
            )
        return cls(
            encoding=encoding,
            columns=_columns(options.get("columns"), source_name),
            record_type=_record_type(options.get("record_type"), source_name),
            skip_header_lines=non_negative_int(
                options, "skip_header_lines", 0, source_name=source_name
            ),
            skip_footer_lines=non_negative_int(
                options, "skip_footer_lines", 0, source_name=source_name
            ),
            allow_short_lines=flag(options, "allow_short_lines", source_name=source_name),
        )


def _position(spec: Mapping[str, Any], key: str, what: str, source_name: str) -> int:
    value = spec.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FormatError(
            source_name,
            f"{what}: `{key}` must be a whole number >= 1, got {value!r}",
            _LAYOUT_HINT,
        )
    return value


def _field(spec: object, what: str, source_name: str) -> tuple[int, int]:
    """(start, length) of one layout entry, from `length` or an inclusive `end`."""
    if not isinstance(spec, Mapping):
        raise FormatError(source_name, f"{what} is not a mapping: {spec!r}", _LAYOUT_HINT)
    unknown = sorted(str(k) for k in set(spec) - _COLUMN_KEYS)
    if unknown:
        raise FormatError(
            source_name,
            f"{what} has unknown key{'s' if len(unknown) > 1 else ''} "
            + ", ".join(f"`{k}`" for k in unknown),
            _LAYOUT_HINT,
        )
    start = _position(spec, "start", what, source_name)
    if ("length" in spec) == ("end" in spec):
        raise FormatError(
            source_name, f"{what} needs exactly one of `length` and `end`", _LAYOUT_HINT
        )
    if "length" in spec:
        return start, _position(spec, "length", what, source_name)
    end = _position(spec, "end", what, source_name)
    if end < start:
        raise FormatError(
            source_name, f"{what}: `end` {end} is before `start` {start}", _LAYOUT_HINT
        )
    return start, end - start + 1


def _columns(raw: object, source_name: str) -> tuple[Field, ...]:
    if not isinstance(raw, list) or not raw:
        raise FormatError(
            source_name, f"`columns` must be a non-empty list, got {raw!r}", _LAYOUT_HINT
        )
    fields: list[Field] = []
    for number, spec in enumerate(raw, start=1):
        name = spec.get("name") if isinstance(spec, Mapping) else None
        what = f"`columns` entry {number}" + (f" ({name!r})" if isinstance(name, str) else "")
        start, length = _field(spec, what, source_name)
        if not isinstance(name, str) or not name.strip():
            raise FormatError(source_name, f"{what} has no `name`", _LAYOUT_HINT)
        fields.append(Field(" ".join(name.split()), start, length))
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FormatError(
            source_name,
            "duplicate column names in `columns`: " + ", ".join(f"'{d}'" for d in duplicates),
            "Give each column in the layout its own name",
        )
    return tuple(fields)


def _record_type(raw: object, source_name: str) -> tuple[Field, str] | None:
    if raw is None:
        return None
    what = "`record_type`"
    hint = 'Write it as {start: 1, length: 3, value: "001"} (quote the value)'
    if not isinstance(raw, Mapping):
        raise FormatError(source_name, f"{what} is not a mapping: {raw!r}", hint)
    unknown = sorted(str(k) for k in set(raw) - _RECORD_TYPE_KEYS)
    if unknown:
        raise FormatError(
            source_name, f"{what} has unknown keys " + ", ".join(f"`{k}`" for k in unknown), hint
        )
    start = _position(raw, "start", what, source_name)
    value = raw.get("value")
    if not isinstance(value, str) or not value:
        # YAML reads `value: 001` as the number 1: the leading zeros a CPR type has are gone.
        raise FormatError(source_name, f"{what}: `value` must be quoted text, got {value!r}", hint)
    if "length" in raw and _position(raw, "length", what, source_name) != len(value):
        raise FormatError(
            source_name,
            f"{what}: `value` {value!r} is {len(value)} characters but `length` is {raw['length']}",
            hint,
        )
    return Field("record type", start, len(value)), value


def read_fixed_width(data: bytes, options: Mapping[str, Any], *, source_name: str) -> pl.DataFrame:
    opts = FixedWidthOptions.parse(options, source_name)
    refuse_utf8_as_single_byte(data, opts.encoding, source_name=source_name)
    refuse_unlikely_characters(data, opts.encoding, source_name=source_name)
    text = decode(data, opts.encoding, source_name=source_name).text
    if not text or text.isspace():
        raise FormatError(source_name, "the file is empty", "Check the export that produced it")
    if "\n" not in text and "\r" in text:
        raise FormatError(
            source_name,
            "the lines end with a bare carriage return (CR), not LF or CRLF",
            "Re-export with Windows (CRLF) or Unix (LF) line endings",
        )

    lines = pl.Series("text", [text]).str.split("\n").explode()
    if text.endswith("\n"):  # a final newline ends the last line; it does not start one
        lines = lines.head(-1)
    if opts.skip_header_lines > lines.len():
        raise FormatError(
            source_name,
            f"`skip_header_lines` is {opts.skip_header_lines} but the file has only"
            f" {lines.len()} lines",
            "Fix `skip_header_lines` in the dataset YAML",
        )
    numbered = pl.DataFrame({"text": lines.str.strip_suffix("\r")}).with_columns(
        line=pl.int_range(1, lines.len() + 1, dtype=pl.Int64)
    )
    frame = numbered.slice(opts.skip_header_lines).filter(pl.col("text").str.contains(r"\S"))
    skipped = numbered.head(opts.skip_header_lines)
    if opts.skip_footer_lines:
        kept = max(frame.height - opts.skip_footer_lines, 0)
        skipped = pl.concat([skipped, frame.slice(kept)])
        frame = frame.head(kept)
    _refuse_skipped_records(skipped, opts.record_type, source_name)
    frame = _of_record_type(frame, opts.record_type, source_name)
    _check_lengths(frame, opts, source_name)

    text_col = pl.col("text")
    values = frame.select(
        text_col.str.slice(f.start - 1, f.length).alias(f"c{i}") for i, f in enumerate(opts.columns)
    )
    return finish(
        values,
        [f.name for f in opts.columns],
        frame["line"],
        source_name=source_name,
        header_line=None,
    )


def _refuse_skipped_records(
    skipped: pl.DataFrame, record_type: tuple[Field, str] | None, source_name: str
) -> None:
    """A line skipped as a start or trailer record must not be a data record: an extract
    that lacks its start or trailer record would otherwise lose its first or last row."""
    if record_type is None:
        return
    field, value = record_type
    records = skipped.filter(pl.col("text").str.slice(field.start - 1, field.length) == value)
    if records.height:
        raise FormatError(
            source_name,
            f"the line is skipped by `skip_header_lines`/`skip_footer_lines` but is a"
            f" {value!r} data record; the extract's start or trailer record is probably missing",
            "Ask the sender for the complete extract; with `record_type` set, other record"
            " types are left out anyway, so the skip options can be removed",
            line=records["line"][0],
        )


def _of_record_type(
    frame: pl.DataFrame, record_type: tuple[Field, str] | None, source_name: str
) -> pl.DataFrame:
    if record_type is None or not frame.height:
        return frame
    field, value = record_type
    kind = pl.col("text").str.slice(field.start - 1, field.length)
    matching = frame.filter(kind == value)
    if matching.height:
        return matching
    seen = (
        frame.select(kind.alias("kind"))
        .group_by("kind")
        .len()
        .sort(["len", "kind"], descending=[True, False])
        .head(5)
    )
    found = ", ".join(f"{k!r} ({n} lines)" for k, n in seen.iter_rows())
    raise FormatError(
        source_name,
        f"no line has record type {value!r} at positions {field.start}-{field.end}; found {found}",
        "Fix `record_type` in the dataset YAML (start, length and the quoted value)",
    )


def _check_lengths(frame: pl.DataFrame, opts: FixedWidthOptions, source_name: str) -> None:
    if opts.allow_short_lines:
        return
    width = max(f.end for f in opts.columns)
    short = frame.filter(pl.col("text").str.len_chars() < width)
    if not short.height:
        return
    line, length = short["line"][0], short["text"].str.len_chars()[0]
    others = short.height - 1
    more = f"; {others} more line{'s are' if others > 1 else ' is'} short" if others else ""
    raise FormatError(
        source_name,
        f"the line has {length} characters but the layout reaches position {width}{more}",
        "Check `encoding` and the layout in the dataset YAML; if the export trims trailing"
        " blanks, set `allow_short_lines: true`",
        line=line,
    )
