"""Delimited text (CSV/TSV/semicolon exports) to an all-text frame with physical line numbers.

polars parses; this module decides everything polars cannot tell us afterwards. polars fills
short rows with nulls without complaint and gives no line numbers, so a cheap scan of the
physical lines runs first: it finds where each record starts, how many fields it has, and
which trailing rows are footers. The scan is vectorised (one record per line) unless a quoted
field spans lines, and only then walks the text with the stdlib csv module.

Most big exports need none of that: no quote characters, one record per line, every line as
wide as the header. `_read_plain` proves this from byte counts (C speed, no decoding to
`str`) and hands the bytes straight to polars; anything it cannot prove goes the long way,
so both paths give the same frame and the long one gives the messages.
"""

from __future__ import annotations

# This module is connectors.formats.csv; with absolute imports `csv` is still the stdlib one.
import codecs
import csv as stdlib_csv
import dataclasses
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from connectors.formats.encoding import (
    DOS_END_OF_FILE,
    decode,
    refuse_unlikely_characters,
    refuse_utf8_as_single_byte,
    without_byte_order_marks,
    without_end_of_file_mark,
)
from connectors.formats.errors import FormatError
from connectors.formats.frame import (
    SkipCounter,
    check_pattern,
    finish,
    header_name,
    reordered_headers,
)
from connectors.formats.options import check_keys, non_negative_int, optional_str

OPTIONS = {
    "encoding",
    "delimiter",
    "quote",
    "header_row",
    "skip_footer_rows",
    "skip_rows_matching",
}
DELIMITERS = (";", ",", "\t", "|")  # order breaks ties: Danish exports favour `;`
_SNIFF_SAMPLE_LINES = 20
# A ragged row among the last rows with content may be a note or total: its message then
# suggests `skip_footer_rows`. The pieces reader keeps this many in the file's last piece.
FOOTER_HINT_ROWS = 3
# The delimiter of a file whose header holds no candidate: one column. No text that reaches
# the parser holds a NUL (`_decode` refuses it, `_read_plain` declines it), so this delimiter
# never splits a line, and a `;` in a note further down is part of the note.
ONE_COLUMN = "\x00"
_NAMES = {";": "`;`", ",": "`,`", "\t": "tab", "|": "`|`", ONE_COLUMN: "none (one column)"}
# The stdlib csv module refuses fields over 131,072 characters, a guard against an unclosed
# quote swallowing a stream. Here the whole text is already in memory, so the guard protects
# nothing and only rejects valid long fields (a letter pasted into a note). The limit is
# process-wide: it is only ever raised, to the largest value a C long holds on every
# platform, so nothing else using the csv module sees a smaller limit than before.
_FIELD_SIZE_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class CsvOptions:
    encoding: str | None
    delimiter: str | None
    quote: str | None
    header_row: int
    skip_footer_rows: int
    skip_rows_matching: str | None

    @classmethod
    def parse(cls, options: Mapping[str, Any], source_name: str) -> CsvOptions:
        check_keys(options, OPTIONS, "csv", source_name=source_name)
        delimiter = optional_str(options, "delimiter", source_name=source_name)
        if delimiter in ("\\t", "tab"):  # YAML '\t' in single quotes is a backslash and a t
            delimiter = "\t"
        quote: str | None = '"'
        if "quote" in options:
            quote = optional_str(options, "quote", source_name=source_name)
        for key, value in (("delimiter", delimiter), ("quote", quote)):
            if value is not None and (len(value) != 1 or not value.isascii()):
                raise FormatError(
                    source_name,
                    f"`{key}` must be one ASCII character, got {value!r}",
                    f"Fix `{key}` in the dataset YAML",
                )
        if delimiter is not None and delimiter == quote:
            raise FormatError(
                source_name,
                "`delimiter` and `quote` are the same character",
                "Fix them in the dataset YAML",
            )
        return cls(
            encoding=optional_str(options, "encoding", source_name=source_name),
            delimiter=delimiter,
            quote=quote,
            header_row=non_negative_int(options, "header_row", 0, source_name=source_name),
            skip_footer_rows=non_negative_int(
                options, "skip_footer_rows", 0, source_name=source_name
            ),
            skip_rows_matching=_pattern(options, source_name),
        )


def _pattern(options: Mapping[str, Any], source_name: str) -> str | None:
    """`skip_rows_matching`, checked here so a bad pattern is named before any reading.

    A row is skipped when any of its fields (stripped of blanks) matches, whatever the row's
    width: total rows put "I alt" in any column and are often shorter than the header."""
    pattern = optional_str(options, "skip_rows_matching", source_name=source_name)
    if pattern:
        check_pattern(pattern, source_name=source_name)
    return pattern


# Excel's delimiter directive: exporters that target Excel write `sep=;` as the first line,
# and Excel reads the file with that delimiter and the next line as the header.
_SEPARATOR_LINE = re.compile(r'"?sep=([^\r\n"])"?[ \t]*\r?\n', re.IGNORECASE)
_SIGNATURES = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def excel_separator(head: bytes) -> str | None:
    """The delimiter a `sep=X` first line names, if the file starts with one."""
    start, codec = 0, "latin-1"  # the directive is ASCII in every single-byte code page
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            start, codec = len(signature), name
            break
    found = _SEPARATOR_LINE.match(head[start : start + 64].decode(codec, errors="replace"))
    return found.group(1) if found else None


def after_separator_line(opts: CsvOptions, head: bytes) -> CsvOptions:
    """`opts` for a file starting with Excel's `sep=X` line: the header is the next line (a
    `header_row` set in the YAML already counts the `sep=` line) and X is the delimiter
    unless the YAML sets one. Read as the header, `sep=;` made every row too wide, and the
    message pointed at the delimiter and footers instead of that line."""
    delimiter = excel_separator(head)
    if delimiter is None or not delimiter.isascii() or delimiter in (opts.quote, " "):
        return opts
    return dataclasses.replace(
        opts, delimiter=opts.delimiter or delimiter, header_row=opts.header_row or 1
    )


@dataclass(frozen=True)
class Place:
    """Where the text handed to `read_csv` sits in its file, so that its messages are the
    file's: a large file is read in pieces (`chunks.iter_csv`), each after a copy of the
    header, and only the last piece ends the file, so only it drops `skip_footer_rows` and
    may take a ragged row for a footer."""

    header_line: int  # the header's 1-based line in the file, for messages
    ends_file: bool


def read_csv(
    data: bytes,
    options: Mapping[str, Any],
    *,
    source_name: str,
    place: Place | None = None,
    count_skipped: SkipCounter | None = None,
) -> pl.DataFrame:
    """The all-text frame of `data`, the whole file unless `place` says it is a piece;
    `count_skipped` is told how many rows `skip_rows_matching` left out."""
    opts = CsvOptions.parse(options, source_name)
    opts = after_separator_line(opts, data)
    count = count_skipped or _no_count
    plain = _read_plain(data, opts, source_name, place, count)
    return plain if plain is not None else _read_general(data, opts, source_name, place, count)


def _no_count(rows: int) -> None:
    return None


def _whole_file(opts: CsvOptions, place: Place | None) -> Place:
    return place or Place(header_line=opts.header_row + 1, ends_file=True)


def _read_general(
    data: bytes,
    opts: CsvOptions,
    source_name: str,
    place: Place | None = None,
    count_skipped: SkipCounter = _no_count,
) -> pl.DataFrame:
    place = _whole_file(opts, place)
    text = _decode(data, opts.encoding, source_name)
    if place.ends_file:
        text = without_end_of_file_mark(text)
    if not text or text.isspace():  # isspace() stops early; strip() would copy
        raise FormatError(source_name, "the file is empty", "Check the export that produced it")
    if "\n" not in text and "\r" in text:
        # polars only ends lines at \n: a CR-only (classic Mac) file would be one long header.
        raise FormatError(
            source_name,
            "the lines end with a bare carriage return (CR), not LF or CRLF",
            "Re-export with Windows (CRLF) or Unix (LF) line endings",
        )

    body, header_line = _from_header_row(text, opts.header_row, source_name)
    lines = _physical_lines(body)
    if not lines[0].strip():
        raise FormatError(
            source_name,
            "the header line is empty",
            "Set `header_row` (0-based line index) to the line holding the column names",
            line=header_line,
        )
    delimiter = opts.delimiter or sniff_delimiter(
        lines.head(1 + _SNIFF_SAMPLE_LINES).to_list(), opts.quote, source_name=source_name
    )
    dialect = _Dialect(delimiter, opts.quote)
    if _blank_before_quote(lines, dialect):
        body = _without_blanks_before_quotes(body, dialect, header_line, source_name)
        lines = _physical_lines(body)
    scan = _scan(body, lines, dialect, header_line, source_name)
    # Where each record ends (the next one's first line), to find a record's text.
    scan = scan.with_columns(end=pl.col("line").shift(-1, fill_value=lines.len()))
    width = _header_width(lines, scan, dialect)
    records = scan.slice(1)

    # Footers (notes, "Kilde: ...") rarely have the header's width: cut them off the text
    # before anything counts fields or parses.
    end_line = lines.len()
    if opts.skip_footer_rows and place.ends_file:
        content = records.filter(~pl.col("empty"))
        if content.height:
            end_line = content["line"][max(content.height - opts.skip_footer_rows, 0)]
            records = records.filter(pl.col("line") < end_line)

    if opts.skip_rows_matching:
        # Rows of the header's width are skipped after parsing; only the others, which
        # the width check would refuse, must go before it.
        skipped = _matching_ragged(records, width, lines, dialect, opts.skip_rows_matching)
        if skipped.height:
            count_skipped(skipped.height)
            lines, records = _blank_out(lines, records, skipped)
            body = "\n".join(lines.to_list()) + "\n"

    _check_widths(records, width, header_line, place, dialect, opts, source_name)

    end = _line_offsets(lines)[end_line] if end_line < lines.len() else len(body)
    parsed = _parse(body[:end], dialect, records, header_line, source_name)
    if parsed.height != records.height + 1:
        raise FormatError(
            source_name,
            f"the parser found {parsed.height - 1} records where the line scan found"
            f" {records.height}",
            "Check the quoting in the file (unbalanced quote characters) or set `quote:`",
        )

    values, source_row = _without_matching(
        parsed.slice(1),
        parsed.row(0),
        records["line"] + header_line,
        opts.skip_rows_matching,
        count_skipped,
    )
    if '="' in body:  # a quote in the text already keeps such a file off the fast path
        values = _without_text_formulas(values)
    # `header_line` numbers this text's lines (a later piece's copy of the header is its
    # line 1); `finish` names the file's. Its errors about the header itself are raised by
    # the first piece, where the two are the same.
    return finish(
        values, parsed.row(0), source_row, source_name=source_name, header_line=place.header_line
    )


# Excel's text protection: exports meant for Excel write `="0101"` so that Excel shows the
# text 0101 instead of the number 101. The value is the text inside.
_TEXT_FORMULA = r'^\s*="((?:[^"]|"")*)"\s*$'


def _without_text_formulas(values: pl.DataFrame) -> pl.DataFrame:
    """`values` with each `="…"` as the text Excel shows for it: loaded as it stands, a
    postcode `="0800"` was the text `="0800"` in silver, matching no other table's 0800."""
    return values.with_columns(
        pl.when(pl.col(name).str.contains(_TEXT_FORMULA))
        .then(pl.col(name).str.replace(_TEXT_FORMULA, "${1}").str.replace_all('""', '"'))
        .otherwise(pl.col(name))
        for name in values.columns
    )


def _blank_before_quote(lines: pl.Series, dialect: _Dialect) -> bool:
    """Whether a field may open with blanks before its quote (`1; "Bo; Ib"`), as people
    and some exporters write after the delimiter. Also true of such text inside a quoted
    field, which `_without_blanks_before_quotes` leaves as it is."""
    if dialect.quote is None:
        return False
    delimiter, quote = _escape(dialect.delimiter), _escape(dialect.quote)
    return bool(lines.str.contains(f"(^|{delimiter})[ \t]+{quote}").any())


def _without_blanks_before_quotes(
    body: str, dialect: _Dialect, header_line: int, source_name: str
) -> str:
    """`body` with each field that opens with blanks and a quote written as a quoted field.

    polars opens a quoted field only at its first character: `1; "Bo; Ib"` was three fields
    (a row too wide), and `1; "Bo"` the value `"Bo"`, quotes and all. The csv module skips
    the blanks (`skipinitialspace`) and this writes its records back, one per line as
    before, so line numbers stay the file's. Text after a closing quote is refused on its
    line (see `_scan`); other text it cannot split is left for the scan to name."""
    assert dialect.quote is not None
    source = io.StringIO(body, newline="\n")
    reader = stdlib_csv.reader(
        source,
        delimiter=dialect.delimiter,
        quotechar=dialect.quote,
        doublequote=True,
        skipinitialspace=True,
        strict=True,
    )
    out = io.StringIO(newline="")
    writer = stdlib_csv.writer(
        out, delimiter=dialect.delimiter, quotechar=dialect.quote, lineterminator="\n"
    )
    start = 0
    try:
        for row in reader:
            writer.writerow(row)
            start = reader.line_num
    except stdlib_csv.Error as err:
        if "expected after" in str(err):
            raise stray_quote(source_name, dialect.quote, line=header_line + start) from err
        return body
    return out.getvalue()


_TRAILING_NULS = re.compile(r"\x00+(?=\r?\n|\Z)")


def _decode(data: bytes, declared: str | None, source_name: str) -> str:
    """The file's text, refusing what would load as mojibake (`decode`) or binary."""
    text = without_byte_order_marks(decode(data, declared, source_name=source_name).text)
    nul = text.find("\x00")
    if nul >= 0:
        # NULs padding a line to a fixed record length, or the file to a block size, hold
        # nothing: a transfer from a mainframe or a record buffer writes them.
        text = _TRAILING_NULS.sub("", text)
        nul = text.find("\x00")
    if nul >= 0:
        raise FormatError(
            source_name,
            "the file holds a NUL byte (character 0), which is not text",
            "The export is corrupt or binary: re-export the file as delimited text",
            line=text.count("\n", 0, nul) + 1,
        )
    return text


def _field_matches(field: pl.Expr, pattern: str) -> pl.Expr:
    # Values are compared as the frame will hold them: stripped, and empty is no match.
    value = field.str.strip_chars()
    return ((value.str.len_bytes() > 0) & value.str.contains(pattern)).fill_null(False)


def _without_matching(
    values: pl.DataFrame,
    header: Sequence[object],
    source_row: pl.Series,
    pattern: str | None,
    count_skipped: SkipCounter,
) -> tuple[pl.DataFrame, pl.Series]:
    """The rows (and their source rows) where no field matches `skip_rows_matching`. Not the
    column names in another order, which `finish` refuses: the pattern that leaves out a
    repeated header (`^ID$`) matches them too, and the rows below would load shifted."""
    if not pattern:
        return values, source_row
    keep = ~pl.any_horizontal(_field_matches(pl.col(name), pattern) for name in values.columns)
    mask = values.select(keep).to_series() | reordered_headers(values, header)
    count_skipped(mask.len() - mask.sum())
    return values.filter(mask), source_row.filter(mask)


def _matching_ragged(
    records: pl.DataFrame, width: _HeaderWidth, lines: pl.Series, dialect: _Dialect, pattern: str
) -> pl.DataFrame:
    """The records not of the header's width (subtotals such as `I alt;13`) that match."""
    ragged = width.ragged(records)
    if not ragged.height:
        return ragged
    fields = [
        _record_fields(lines, start, end, dialect)
        for start, end in ragged.select("line", "end").iter_rows()
    ]
    matches = pl.Series(fields, dtype=pl.List(pl.String)).list.eval(
        _field_matches(pl.element(), pattern)
    )
    return ragged.filter(matches.list.any())


@dataclass(frozen=True)
class _HeaderWidth:
    """The fields a row may have: the header's, or as few as its named ones when only unnamed
    ones follow them (`Id;Navn;` over rows `1;Bo`, the trailing delimiter on the header
    alone). A row leaving those out loses nothing: `finish` refuses one that fills them."""

    named: int
    fields: int

    def ragged(self, records: pl.DataFrame) -> pl.DataFrame:
        """The records of another width; blank lines have none."""
        width = pl.col("fields").is_between(self.named, self.fields)
        return records.filter(~width & ~pl.col("blank"))

    def __str__(self) -> str:
        if self.named == self.fields:
            return str(self.fields)
        return f"{self.named} named and {self.fields - self.named} unnamed after them"


def _header_width(lines: pl.Series, scan: pl.DataFrame, dialect: _Dialect) -> _HeaderWidth:
    fields = scan["fields"][0]
    names = [header_name(field) for field in _record_fields(lines, 0, scan["end"][0], dialect)]
    named = max((i + 1 for i, name in enumerate(names) if name), default=fields)
    return _HeaderWidth(min(named, fields), fields)


def _record_fields(lines: pl.Series, start: int, end: int, dialect: _Dialect) -> list[str]:
    """The fields of the record on `lines[start:end]`, as the csv module splits them."""
    # CRLF leaves a CR at each line's end, which the csv module refuses outside quotes; as a
    # space it is stripped like any other blank.
    text = "\n".join(lines.slice(start, end - start).to_list()).replace("\r", " ")
    return next(dialect.reader(io.StringIO(text, newline="\n")), [])


def _blank_out(
    lines: pl.Series, records: pl.DataFrame, skipped: pl.DataFrame
) -> tuple[pl.Series, pl.DataFrame]:
    """`lines` with the lines of the `skipped` records emptied, and `records` with each of
    those lines as a blank record: polars reads an empty line as an all-null row, which
    `finish` drops, so every line keeps its number."""
    spans = skipped.select("line", "end").iter_rows()
    emptied = [line for start, end in spans for line in range(start, end)]
    blanks = pl.DataFrame(
        {
            "line": emptied,
            "fields": 1,
            "empty": True,
            "blank": True,
            "end": [line + 1 for line in emptied],
        },
        schema=records.schema,
    )
    kept = records.filter(~pl.col("line").is_in(skipped["line"].implode()))
    return lines.clone().scatter(emptied, ""), pl.concat([kept, blanks]).sort("line")


def _read_plain(
    data: bytes,
    opts: CsvOptions,
    source_name: str,
    place: Place | None = None,
    count_skipped: SkipCounter = _no_count,
) -> pl.DataFrame | None:
    """The frame of a file with one record per line and no quoting, or None when that cannot
    be shown cheaply (the caller then takes the general path)."""
    place = _whole_file(opts, place)
    if (opts.skip_footer_rows and place.ends_file) or opts.header_row:
        return None
    raw = _as_utf8(data, opts.encoding)
    if raw is not None and place.ends_file:  # UTF-8 here: 0x1a is ^Z and nothing else
        raw = raw.rstrip(DOS_END_OF_FILE.encode("ascii"))
    quote = opts.quote.encode("ascii") if opts.quote else b""
    if raw is None or (quote and quote in raw) or b"\n" not in raw or b"\x00" in raw:
        return None  # a NUL byte is not text: the general path says where it is
    # Two exports joined: the general path drops the second one's BOM. Looking for its first
    # byte is a memchr (a few ms a piece); the three bytes, searched at once, cost 15 times that.
    if b"\xef" in raw and codecs.BOM_UTF8 in raw:
        return None
    if b"\r" in raw and count_byte(raw, b"\r") != raw.count(b"\r\n"):
        return None  # a bare CR inside a line: the scan decides what it is
    header = raw[: raw.find(b"\n")]
    if not header.strip():
        return None
    sample_end = -1
    for _ in range(1 + _SNIFF_SAMPLE_LINES):  # the lines the general path sniffs on
        sample_end = raw.find(b"\n", sample_end + 1)
        if sample_end < 0:
            break
    sample = raw[: sample_end if sample_end >= 0 else len(raw)]
    delimiter = opts.delimiter or sniff_delimiter(
        sample.decode("utf-8", errors="replace").split("\n"), opts.quote, source_name=source_name
    )
    separator = delimiter.encode("ascii")
    if not raw.endswith(b"\n"):
        raw += b"\n"  # polars lets a last, unterminated line be wider than the header
    lines = count_byte(raw, b"\n")
    # No line may have more fields than the header (polars refuses those), so equal totals
    # mean every line has exactly the header's width: no short, blank or footer lines.
    if count_byte(raw, separator) != header.count(separator) * lines:
        return None
    try:
        parsed = _read(raw, _Dialect(delimiter, opts.quote))
    except pl.exceptions.PolarsError:
        return None  # invalid UTF-8 or a wide line: the general path names it
    if parsed.height != lines:
        return None
    values, source_row = _without_matching(
        parsed.slice(1),
        parsed.row(0),
        pl.int_range(2, lines + 1, eager=True),  # the header is line 1
        opts.skip_rows_matching,
        count_skipped,
    )
    return finish(
        values, parsed.row(0), source_row, source_name=source_name, header_line=place.header_line
    )


_COUNT_BLOCK = 1 << 20


def count_byte(data: bytes, byte: bytes, *, block: int = _COUNT_BLOCK) -> int:
    """`data.count(byte)` for one byte, about four times faster on large data: numpy compares
    a block at a time (bytes.count tests byte by byte, ~18 ms per 24 MB piece)."""
    values = np.frombuffer(data, dtype=np.uint8)
    target = byte[0]
    return sum(
        int(np.count_nonzero(values[start : start + block] == target))
        for start in range(0, len(values), block)
    )


def _as_utf8(data: bytes, declared: str | None) -> bytes | None:
    """`data` as UTF-8 without a BOM, or None where only `decode` can say what it is.

    UTF-8 is passed through unchecked: polars refuses invalid UTF-8, and then the general
    path detects the encoding. A declared single-byte code page is transcoded."""
    if declared is None:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :]
        return None if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else data
    try:
        codec = codecs.lookup(declared).name
    except LookupError:
        return None
    if codec in ("utf-8", "utf-8-sig"):
        return data.removeprefix(codecs.BOM_UTF8)
    if codec.startswith(("utf-16", "utf-32")):
        return None
    try:
        refuse_utf8_as_single_byte(data, codec, source_name="")
        refuse_unlikely_characters(data, codec, source_name="")
        return data.decode(codec).encode("utf-8")
    except (UnicodeDecodeError, FormatError):
        return None  # the general path names the problem


@dataclass(frozen=True)
class _Dialect:
    delimiter: str
    quote: str | None

    def reader(self, lines: Any, *, strict: bool = False) -> Any:
        """A stdlib csv reader that splits fields the way polars does for this dialect;
        `strict` refuses text after a closing quote."""
        if stdlib_csv.field_size_limit() < _FIELD_SIZE_LIMIT:
            stdlib_csv.field_size_limit(_FIELD_SIZE_LIMIT)
        if self.quote is None:
            return stdlib_csv.reader(lines, delimiter=self.delimiter, quoting=stdlib_csv.QUOTE_NONE)
        return stdlib_csv.reader(
            lines, delimiter=self.delimiter, quotechar=self.quote, doublequote=True, strict=strict
        )


def _from_header_row(text: str, header_row: int, source_name: str) -> tuple[str, int]:
    """The text from the header line on, and that line's 1-based number."""
    start = 0
    for index in range(header_row):
        newline = text.find("\n", start)
        if newline < 0:
            raise FormatError(
                source_name,
                f"`header_row` is {header_row} but the file has only {index + 1} lines",
                "Set `header_row` to the 0-based index of the line with the column names",
            )
        start = newline + 1
    if start >= len(text) or text[start:].isspace():
        raise FormatError(
            source_name,
            f"there is nothing from `header_row` {header_row} on",
            "Set `header_row` to the 0-based index of the line with the column names",
            line=header_row + 1,
        )
    return text[start:], header_row + 1


def _physical_lines(body: str) -> pl.Series:
    lines = pl.Series("text", [body]).str.split("\n").explode()
    # A final newline ends the last line; it does not start an empty one.
    return lines.head(-1) if body.endswith("\n") else lines


def _line_offsets(lines: pl.Series) -> list[int]:
    # Character offset at which each line starts (+1 for the newline split off each line).
    lengths = lines.str.len_chars() + 1
    return [0, *lengths.cum_sum().to_list()]


def sniff_delimiter(lines: list[str], quote: str | None, *, source_name: str) -> str:
    """The candidate that splits the header record most; ties go to the one the data agrees with.

    `lines` are the first physical lines from the header on, split at `\\n`. The header is
    their first record, which a quoted line break in a cell (`"Sag<Alt+Enter>nr";Navn`)
    spreads over several lines, and a candidate inside quotes is text, not a delimiter. A
    header holding no candidate outside quotes names one column (ONE_COLUMN), whatever the
    rows hold: no sample of rows can rule out a note further down with a `;` in it."""
    text = "\n".join(lines)

    def first_record(text: str, delimiter: str) -> tuple[int, int]:
        """The number of fields of the record `text` starts with, and of lines it takes."""
        # A bare CR inside a line (a line break typed into an Excel cell, saved on a Mac)
        # makes the csv module raise; it never separates fields, so count without it.
        rows = io.StringIO(text.replace("\r", " "), newline="\n")
        reader = _Dialect(delimiter, quote).reader(rows)
        try:
            return len(next(reader, [""])), max(reader.line_num, 1)
        except stdlib_csv.Error as err:
            raise FormatError(
                source_name,
                f"cannot split the first lines into fields to find the delimiter: {err}",
                "Set `delimiter:` in the dataset YAML",
            ) from err

    # Each candidate reads the header as the parser would with it: a quote opens a field
    # only at the field's start, so where the record ends can depend on the delimiter.
    headers = {d: first_record(text, d) for d in DELIMITERS}
    most = max(fields for fields, _ in headers.values())
    if most == 1:
        # Candidates only inside quotes (`"Navn; fornavn"`) are text: one column, as for a
        # header with none at all. A delimiter picked because the sampled rows lack it made
        # a later row holding it a second field, refusing the whole file.
        return ONE_COLUMN

    def agreeing(delimiter: str) -> int:  # sample rows as wide as the header
        sample = [line for line in lines[headers[delimiter][1] :] if line.strip()]
        return sum(first_record(line, delimiter)[0] == most for line in sample)

    return max((d for d in DELIMITERS if headers[d][0] == most), key=agreeing)


def _scan(
    body: str, lines: pl.Series, dialect: _Dialect, header_line: int, source_name: str
) -> pl.DataFrame:
    """One row per record: first physical line (0-based), field count, blank, empty.

    `blank` records (nothing but whitespace) are what polars turns into all-null rows
    without checking their width; `empty` records have no value in any field.
    """
    quote, delimiter = dialect.quote, dialect.delimiter
    unquoted = lines
    if quote is not None and quote in body:
        if (lines.str.count_matches(quote, literal=True) % 2 == 1).any():
            # An odd number of quote characters on a line means a quoted field continues on
            # the next line (or a stray quote): only a real CSV parser knows where records end.
            return _scan_records(body, dialect, header_line, source_name)
        # Blank out quoted fields (a quote opens one only at the start of a field, as in
        # polars and the csv module) so the delimiters inside them are not counted. Each
        # leaves a NUL behind (no text here holds one): what follows it must end the field.
        q, c = _escape(quote), _class_escape(quote)
        field = f"{q}[^{c}]*(?:{q}{q}[^{c}]*)*{q}"
        unquoted = lines.str.replace_all(f"(^|{_escape(delimiter)}){field}", "${1}\x00")
        # Text after a closing quote: `"Sagt "nej" tak"` from an exporter that does not double
        # the quotes inside a field. polars refuses some such fields but reads this one as
        # `Sagt nej tak`, quietly dropping the quotes, so every one is refused here.
        closed = unquoted.str.contains(f"\x00[^{_class_escape(delimiter)}\r]").arg_true()
        if closed.len():
            raise stray_quote(source_name, quote, line=header_line + closed[0])
        unquoted = unquoted.str.replace_all("\x00", "", literal=True)  # NUL is ONE_COLUMN

    # A CR inside a line, outside quotes: one record in polars' eyes, two in the sender's (a
    # one-column file lost a row; a wider one was refused for its field count, not the CR).
    bare_cr = unquoted.str.contains("\r.").arg_true()
    if bare_cr.len():
        raise FormatError(
            source_name,
            "a bare carriage return (CR) outside quotes splits the line in two",
            "Re-export with Windows (CRLF) or Unix (LF) line endings only, or quote the field"
            " that holds the CR",
            line=header_line + bare_cr[0],
        )
    fields = unquoted.str.count_matches(delimiter, literal=True) + 1
    # `contains` stops at the first real character, so this is cheap on ordinary lines.
    # Quote characters are not content: a line of `"";""` holds nothing.
    ignored = _class_escape(delimiter) + (_class_escape(quote) if quote else "")
    empty = ~lines.str.contains(f"[^\\s{ignored}]")
    return pl.DataFrame(
        {
            "line": pl.int_range(lines.len(), eager=True, dtype=pl.Int64),
            "fields": fields.cast(pl.Int64),
            "empty": empty,
        }
    ).with_columns(blank=pl.col("empty") & (pl.col("fields") <= 1))


def _escape(char: str) -> str:
    # The characters Rust's regex syntax treats as special outside a class.
    return "\\" + char if char in "\\.+*?()|[]{}^$#&-~" else char


def _class_escape(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char


def _scan_records(body: str, dialect: _Dialect, header_line: int, source_name: str) -> pl.DataFrame:
    # strict: text after a closing quote is an error here too, not a field polars may read
    # with the quotes dropped (see `_scan`).
    reader = dialect.reader(io.StringIO(body, newline="\n"), strict=True)
    starts: list[int] = []
    fields: list[int] = []
    empty: list[bool] = []
    previous = 0
    try:
        for row in reader:
            starts.append(previous)
            previous = reader.line_num
            fields.append(len(row) or 1)  # the csv module gives [] for a blank line
            empty.append(not "".join(row).strip())
    except stdlib_csv.Error as err:
        if "expected after" in str(err) and dialect.quote is not None:
            raise stray_quote(source_name, dialect.quote, line=header_line + previous) from err
        hint = (
            "A quoted field probably never ends: check for an unbalanced quote character"
            " on this line, or set `quote:` in the dataset YAML"
        )
        if "new-line character" in str(err):
            hint = (
                "A bare carriage return (CR) outside quotes breaks the line: re-export with"
                " Windows (CRLF) or Unix (LF) line endings, or quote that field"
            )
        raise FormatError(
            source_name,
            f"cannot split the file into records from here on: {err}",
            hint,
            line=header_line + previous,
        ) from err
    return pl.DataFrame(
        {"line": starts, "fields": fields, "empty": empty},
        schema={"line": pl.Int64, "fields": pl.Int64, "empty": pl.Boolean},
    ).with_columns(blank=pl.col("empty") & (pl.col("fields") <= 1))


def _check_widths(
    records: pl.DataFrame,
    width: _HeaderWidth,
    header_line: int,
    place: Place,
    dialect: _Dialect,
    opts: CsvOptions,
    source_name: str,
) -> None:
    """Refuse the first record not of the header's width; `header_line` numbers the lines
    of `records`, `place` says which line the file's header is and whether the file ends."""
    ragged = width.ragged(records)
    if not ragged.height:
        return
    line, fields = ragged.row(0)[:2]
    more = ragged.height - 1
    others = f"; {more} more row{'s differ' if more > 1 else ' differs'}" if more else ""
    # Not "set" or "detected": a large file's pieces all get the delimiter found in the first.
    hint = (
        f"Check the delimiter (read as {_NAMES.get(dialect.delimiter, dialect.delimiter)};"
        " `delimiter:` in the dataset YAML sets it) and the quoting, or fix the row at the source"
    )
    # Only where the file ends: the last rows of an earlier piece are not the file's.
    last_rows = set(records.filter(~pl.col("empty"))["line"].tail(FOOTER_HINT_ROWS).to_list())
    if place.ends_file and set(ragged["line"].to_list()) <= last_rows:
        hint += (
            f"; if the last rows are notes or totals, set `skip_footer_rows:`"
            f" (now {opts.skip_footer_rows})"
        )
    content = records.filter(~pl.col("blank"))
    first_record = content["line"].head(1).to_list() == [line]
    # Every row wider than the header: the header is the odd one out, not the rows.
    all_wider = ragged.height == content.height > 1 and ragged["fields"].min() > width.fields
    if (
        (width.named == 1 or all_wider)
        and fields > width.fields
        and first_record
        and header_line == place.header_line
    ):
        # A title above the column names ("Udtræk fra Sag 2026-01-01", or a title and a date
        # in two cells) read as the header, and the real header right below it is the first
        # "row" too wide.
        values = "one value" if width.named == 1 else f"{width.named} values, fewer than any row"
        hint = (
            f"The header (line {place.header_line}) holds {values}, probably a title above"
            f" the column names: if line {header_line + line} holds them, set `header_row:"
            f" {header_line + line - 1}` (0-based) under `format:` in the dataset YAML"
        )
    raise FormatError(
        source_name,
        f"the row has {fields} field{'s' if fields != 1 else ''} but the header (line"
        f" {place.header_line}) has {width}{others}",
        hint,
        line=header_line + line,
    )


def _read(payload: bytes, dialect: _Dialect) -> pl.DataFrame:
    return pl.read_csv(
        payload,
        has_header=False,  # the header row is read as data so duplicate names stay visible
        infer_schema=False,  # every column stays text; typing happens downstream
        separator=dialect.delimiter,
        quote_char=dialect.quote,
        encoding="utf8",
        raise_if_empty=False,
        truncate_ragged_lines=False,
    )


def _parse(
    body: str, dialect: _Dialect, records: pl.DataFrame, header_line: int, source_name: str
) -> pl.DataFrame:
    try:
        return _read(body.encode("utf-8"), dialect)
    except pl.exceptions.PolarsError as err:
        # polars' own text speaks of chunks and byte offsets: find the record and say why.
        bad = _first_unparsable(body, dialect, records)
        line = None if bad is None else header_line + bad[0]
        hint = (
            "Check the quoting on that line (a field that starts with a quote must end with"
            " one, and quotes inside it must be doubled), or set `quote:` in the dataset YAML"
        )
        cause = "cannot split the row into fields"
        if bad is not None and dialect.quote is not None:
            text = "\n".join(_physical_lines(body).slice(bad[0], bad[1] - bad[0]).to_list())
            if _has_stray_quote(text, dialect.delimiter, dialect.quote):
                raise stray_quote(source_name, dialect.quote, line=line) from err
        raise FormatError(source_name, cause, hint, line=line) from err


def stray_quote(source_name: str, quote: str, *, line: int | None) -> FormatError:
    """The error for a quote character that neither opens nor closes a field."""
    return FormatError(
        source_name,
        f"a quote character ({quote}) appears inside an unquoted field or after a closing quote",
        "Quote the whole field at the source (doubling the quotes inside it), or"
        ' set `quote: ""` in the dataset YAML if the file uses no quoting',
        line=line,
    )


def _has_stray_quote(text: str, delimiter: str, quote: str) -> bool:
    """Whether a quote opens anywhere but at a field's start, or text follows a closing one
    (polars refuses both; the csv module keeps them as text). Only runs on the error path."""
    state = "start"  # start | unquoted | quoted | closed
    for char in text:
        if state == "quoted":
            state = "closed" if char == quote else "quoted"
        elif char == quote:
            if state == "unquoted":
                return True
            state = "quoted"  # opening, or the second of a doubled quote in a quoted field
        elif char in (delimiter, "\n", "\r"):
            state = "start"
        elif state == "closed":
            return True
        else:
            state = "unquoted"
    return False


def _first_unparsable(
    body: str, dialect: _Dialect, records: pl.DataFrame
) -> tuple[int, int] | None:
    """The first and past-the-last physical line (0-based in `body`) of the first record
    polars cannot parse; the header is the record at line 0."""
    # polars reports chunk-relative offsets, not lines; bisect on whole records instead
    # (a few extra parses, only on the error path).
    lines = _physical_lines(body)
    offsets = _line_offsets(lines)
    starts = [0, *records["line"].to_list()]
    ends = [*starts[1:], lines.len()]

    def parses(count: int) -> bool:  # whether the first `count` records parse
        end = offsets[ends[count - 1]] if ends[count - 1] < lines.len() else len(body)
        try:
            _read(body[:end].encode("utf-8"), dialect)
        except pl.exceptions.PolarsError:
            return False
        return True

    good, bad = 0, len(starts)
    if parses(bad):
        return None
    while bad - good > 1:
        middle = (good + bad) // 2
        if parses(middle):
            good = middle
        else:
            bad = middle
    return starts[bad - 1], ends[bad - 1]
