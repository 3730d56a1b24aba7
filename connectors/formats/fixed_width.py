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
extracts use (cp1252, latin-1, cp865) are bytes. A UTF-8 extract padded to byte
counts is refused (`BytePadding`). Columns may overlap (a date and its year).
`_source_row` is the physical line number. Blank lines are skipped; a line shorter than the
layout is an error (a truncated or wrongly decoded file shifts every later field) unless
`allow_short_lines` says the export trims trailing blanks. A file larger than a chunk is
read a piece of whole lines at a time (`iter_fixed_width`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from connectors.formats import chunks
from connectors.formats.encoding import (
    codec_name,
    cuts_after_ascii,
    decode,
    newlines_are_multi_byte,
    without_byte_order_marks,
    without_end_of_file_mark,
    without_signature,
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
    text = without_end_of_file_mark(_text(data, opts.encoding, source_name, offset=0))
    if not text or text.isspace():
        raise _empty(source_name)
    if "\n" not in text and "\r" in text:
        raise _bare_carriage_returns(source_name)
    numbered = _numbered(text, first_line=1)
    if opts.skip_header_lines > numbered.height:
        raise _too_few_lines(opts, numbered.height, source_name)
    frame = _not_blank(numbered.slice(opts.skip_header_lines))
    _refuse_control_characters(frame, source_name)
    skipped = numbered.head(opts.skip_header_lines)
    if opts.skip_footer_lines:
        kept = max(frame.height - opts.skip_footer_lines, 0)
        skipped = pl.concat([skipped, frame.slice(kept)])
        frame = frame.head(kept)
    _refuse_skipped_records(skipped, opts.record_type, source_name)
    records = _of_record_type(frame, opts.record_type)
    if opts.record_type and frame.height and not records.height:
        raise _no_record_of_type(_kinds(frame, opts.record_type), opts.record_type, source_name)
    padding = BytePadding(opts, source_name)
    padding.look(records)
    padding.check()
    return _values(records, opts, source_name)


def iter_fixed_width(
    path: Path, options: Mapping[str, Any], *, source_name: str, chunk_bytes: int | None = None
) -> Iterator[pl.DataFrame]:
    """Frames of `read_fixed_width`'s shape for consecutive pieces of whole lines of the file
    at `path` (pieces of about `chunk_bytes`, default chunks.CHUNK_BYTES read at call time).

    A whole CPR extract can run to hundreds of MB; memory stays that of a piece. What a piece
    cannot know is carried across: line numbers, the last `skip_footer_lines` records (held
    back until it is known whether they end the file) and, while no line has had the
    `record_type`, the record types seen, for the refusal at the end. Read whole instead,
    the same file gives the same frame; where it is refused, it may be for a different
    problem found first, and a refusal for short lines counts them in its piece only.
    The first piece with a non-ASCII byte decides whether a declared code page is really
    UTF-8, as the whole file would.
    """
    chunk_bytes = chunk_bytes or chunks.CHUNK_BYTES
    opts = FixedWidthOptions.parse(options, source_name)
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(chunk_bytes)
        if (
            size <= chunk_bytes * 3 // 2
            or newlines_are_multi_byte(head, opts.encoding)
            or not cuts_after_ascii(opts.encoding)
        ):
            yield read_fixed_width(head + handle.read(), options, source_name=source_name)
            return
        yield from _pieces(chunks.Window(handle, head, chunk_bytes), opts, source_name, chunk_bytes)


def _pieces(
    window: chunks.Window, opts: FixedWidthOptions, source_name: str, chunk_bytes: int
) -> Iterator[pl.DataFrame]:
    lines_before = bytes_before = 0
    held = _numbered("", first_line=1).clear()  # records that may yet be the footer
    kinds: pl.DataFrame | None = None  # record types seen while none had `record_type`
    matched = any_text = any_frame = False
    padding = BytePadding(opts, source_name)
    limit = chunk_bytes
    while True:
        eof = window.fill(limit + chunk_bytes // 2)
        if eof and window.filled <= limit + chunk_bytes // 2:
            cut = window.filled  # the rest of the file is the last piece
        else:
            cut = window.data.rfind(b"\n", 0, limit) + 1
            if not cut:  # a line longer than the piece: look further
                limit += chunk_bytes
                continue
        limit = chunk_bytes
        piece = window.take(cut, prefix=b"")
        last = eof and not window.filled
        codec = opts.encoding if not bytes_before else without_signature(opts.encoding)
        try:
            text = _text(piece, codec, source_name, offset=bytes_before)
        except FormatError as error:
            raise error.moved_down(lines_before) from error
        del piece
        if last:
            text = without_end_of_file_mark(text)
        if not bytes_before and "\n" not in text and "\r" in text:  # the whole file
            raise _bare_carriage_returns(source_name)
        numbered = _numbered(text, first_line=lines_before + 1)
        lines_before += numbered.height
        bytes_before += cut
        any_text = any_text or not text.isspace()

        in_header = pl.col("line") <= opts.skip_header_lines
        skipped = numbered.filter(in_header)
        body = _not_blank(numbered.filter(~in_header))
        _refuse_control_characters(body, source_name)
        frame = pl.concat([held, body])
        kept = max(frame.height - opts.skip_footer_lines, 0)
        if last:
            skipped = pl.concat([skipped, frame.slice(kept)])
        else:
            held = frame.slice(kept)  # the footer, if no other record follows
        frame = frame.head(kept)
        _refuse_skipped_records(skipped, opts.record_type, source_name)

        records = _of_record_type(frame, opts.record_type)
        if opts.record_type and not matched and frame.height and not records.height:
            seen = _kinds(frame, opts.record_type)
            kinds = seen if kinds is None else _sum_kinds(kinds, seen)
        matched = matched or records.height > 0
        if records.height:
            padding.look(records)
            yield _values(records, opts, source_name)
            any_frame = True
        if last:
            break

    if not any_text:
        raise _empty(source_name)
    padding.check()
    if opts.skip_header_lines > lines_before:
        raise _too_few_lines(opts, lines_before, source_name)
    if opts.record_type and kinds is not None and not matched:
        raise _no_record_of_type(kinds, opts.record_type, source_name)
    if not any_frame:
        yield _values(held.clear(), opts, source_name)


def _text(data: bytes, encoding: str, source_name: str, *, offset: int) -> str:
    return without_byte_order_marks(
        decode(data, encoding, source_name=source_name, offset=offset).text
    )


def _numbered(text: str, *, first_line: int) -> pl.DataFrame:
    """One row per physical line: its text without the line ending, and its line number."""
    lines = pl.Series("text", [text]).str.split("\n").explode()
    if text.endswith("\n"):  # a final newline ends the last line; it does not start one
        lines = lines.head(-1)
    return pl.DataFrame({"text": lines.str.strip_suffix("\r")}).with_columns(
        line=pl.int_range(first_line, first_line + lines.len(), dtype=pl.Int64)
    )


def _not_blank(numbered: pl.DataFrame) -> pl.DataFrame:
    return numbered.filter(pl.col("text").str.contains(r"\S"))


_CONTROL = "[\x00-\x08\x0b-\x1f\x7f]"  # a tab is text; \n ends the line
_CONTROL_NAMES = {"\r": "a carriage return (CR) that does not end it", "\x00": "a NUL byte"}


def _refuse_control_characters(lines: pl.DataFrame, source_name: str) -> None:
    """Positions count characters, so a control character moves every field after it: a
    bare CR glues two records into one line (the second one lost), a form feed (a page
    break) shifts a record by one. CSV refuses a NUL byte too."""
    bad = lines.filter(pl.col("text").str.contains(_CONTROL))
    if not bad.height:
        return
    text = bad["text"][0]
    found = re.search(_CONTROL, text)
    if found is None:  # cannot happen: polars just matched the same pattern
        return
    char = found.group()
    what = _CONTROL_NAMES.get(char, f"the control character U+{ord(char):04X}")
    raise FormatError(
        source_name,
        f"the line holds {what} at position {found.start() + 1}, which shifts or hides"
        " the fields after it",
        "Ask the sender for an extract without control characters (line ends LF or CRLF"
        " only, no page breaks)",
        line=bad["line"][0],
    )


class BytePadding:
    """Refuses a UTF-8 extract whose fields are padded to a number of bytes, not characters.

    Positions count characters; a sender whose program pads each field to its length in
    bytes (a mainframe layout written out as UTF-8) writes `Søren` with one blank less, and
    every field after it is read one place too far to the left: text fields take their
    neighbour's first characters without any type failure. Its sign: a record with æ, ø or å
    as long in bytes as the plain-ASCII records are in characters, and shorter in characters.
    Only where all plain-ASCII records have one length: records of varying length (trimmed
    trailing blanks, `allow_short_lines`, text past the layout) may match one another by
    chance. Decided once every piece of a large file has been seen, as the whole file is."""

    def __init__(self, opts: FixedWidthOptions, source_name: str) -> None:
        codec = codec_name(opts.encoding, source_name)
        self.active = not opts.allow_short_lines and codec in ("utf-8", "utf-8-sig")
        self.source_name = source_name
        self.ascii_widths: set[int] = set()
        self.shorter: dict[int, tuple[int, int]] = {}  # bytes -> (line, characters), first seen

    def look(self, records: pl.DataFrame) -> None:
        if not self.active or not records.height:
            return
        sizes = records.select(
            "line",
            chars=pl.col("text").str.len_chars(),
            bytes=pl.col("text").str.len_bytes(),
        )
        self.ascii_widths.update(sizes.filter(pl.col("chars") == pl.col("bytes"))["chars"])
        wider = sizes.filter(pl.col("chars") < pl.col("bytes")).group_by("bytes").first()
        for line, chars, size in wider.select("line", "chars", "bytes").iter_rows():
            if size not in self.shorter or line < self.shorter[size][0]:
                self.shorter[size] = (line, chars)

    def check(self) -> None:
        if len(self.ascii_widths) != 1:
            return
        [size] = self.ascii_widths
        if size not in self.shorter:
            return
        line, chars = self.shorter[size]
        raise FormatError(
            self.source_name,
            f"the line is {size} bytes long, as long as the lines without æ, ø, å or other"
            f" non-ASCII letters, but has only {chars} characters: the export pads its fields"
            " to a number of bytes, so every field after such a letter would be read shifted",
            "Ask the sender for the extract with fields padded to a number of characters, or"
            " in a one-byte code page (cp1252, latin-1 or cp865, named in `encoding:`)",
            line=line,
        )


def _values(records: pl.DataFrame, opts: FixedWidthOptions, source_name: str) -> pl.DataFrame:
    _check_lengths(records, opts, source_name)
    text_col = pl.col("text")
    values = records.select(
        text_col.str.slice(f.start - 1, f.length).alias(f"c{i}") for i, f in enumerate(opts.columns)
    )
    return finish(
        values,
        [f.name for f in opts.columns],
        records["line"],
        source_name=source_name,
        header_line=None,
    )


def _empty(source_name: str) -> FormatError:
    return FormatError(source_name, "the file is empty", "Check the export that produced it")


def _bare_carriage_returns(source_name: str) -> FormatError:
    return FormatError(
        source_name,
        "the lines end with a bare carriage return (CR), not LF or CRLF",
        "Re-export with Windows (CRLF) or Unix (LF) line endings",
    )


def _too_few_lines(opts: FixedWidthOptions, lines: int, source_name: str) -> FormatError:
    return FormatError(
        source_name,
        f"`skip_header_lines` is {opts.skip_header_lines} but the file has only {lines} lines",
        "Fix `skip_header_lines` in the dataset YAML",
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


def _of_record_type(frame: pl.DataFrame, record_type: tuple[Field, str] | None) -> pl.DataFrame:
    if record_type is None:
        return frame
    field, value = record_type
    return frame.filter(pl.col("text").str.slice(field.start - 1, field.length) == value)


def _kinds(frame: pl.DataFrame, record_type: tuple[Field, str]) -> pl.DataFrame:
    """How many lines of `frame` have each value at the record type's positions."""
    field, _ = record_type
    kind = pl.col("text").str.slice(field.start - 1, field.length).alias("kind")
    return frame.group_by(kind).len()


def _sum_kinds(*counts: pl.DataFrame) -> pl.DataFrame:
    return pl.concat(counts).group_by("kind").agg(pl.col("len").sum())


def _no_record_of_type(
    kinds: pl.DataFrame, record_type: tuple[Field, str], source_name: str
) -> FormatError:
    field, value = record_type
    seen = kinds.sort(["len", "kind"], descending=[True, False]).head(5)
    found = ", ".join(f"{k!r} ({n} lines)" for k, n in seen.iter_rows())
    return FormatError(
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
    hint = (
        "Check `encoding` and the layout in the dataset YAML; if the export trims trailing"
        " blanks, set `allow_short_lines: true`"
    )
    # Short lines only first and last: a header and trailer record (a date, a record
    # count), which mainframe and register extracts put around the data.
    ends = {frame["line"][0]: "`skip_header_lines: 1`", frame["line"][-1]: "`skip_footer_lines: 1`"}
    if set(short["line"].to_list()) <= set(ends):
        keys = " and ".join(ends[line] for line in sorted(set(short["line"].to_list())))
        hint = (
            f"If the first or last line is a header or trailer record, leave it out with {keys}"
            f" in the dataset YAML; otherwise {hint[0].lower()}{hint[1:]}"
        )
    raise FormatError(
        source_name,
        f"the line has {length} characters but the layout reaches position {width}{more}",
        hint,
        line=line,
    )
