"""Big delimited files read in pieces, so memory stays flat whatever the file's size.

A file larger than one chunk is cut at record boundaries (a newline outside quotes) and each
piece, with the header line in front, goes through the same `read_csv` as a small file: the
same checks, the same messages. Only what a piece cannot know is carried across: the encoding
and delimiter found in the first piece, and how many lines and bytes came before it, so
`_source_row` and every error's line number and byte offset stay the file's own, and messages
name the file's header line. No cut leaves fewer than `skip_footer_rows` + FOOTER_HINT_ROWS
records after it, so the last piece, which alone drops them, holds every footer row, and the
rows a ragged-row message may take for footers.

An undeclared encoding is detected from the first piece, unless that piece is pure ASCII
(which every candidate encoding reads alike): then from the first piece that is not.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from connectors.formats.csv import (
    FOOTER_HINT_ROWS,
    CsvOptions,
    Place,
    after_separator_line,
    count_byte,
    read_csv,
    sniff_delimiter,
)
from connectors.formats.encoding import (
    decode,
    newlines_are_multi_byte,
    refuse_undecodable,
    without_signature,
)
from connectors.formats.errors import FormatError
from connectors.formats.frame import SOURCE_ROW, SkipCounter

# A piece is held several times over while it is parsed, conformed and pseudonymised (polars
# strings cost ~25x the piece's bytes at the peak). Measured on the bench extract: 24 MB keeps
# a 6M-row load at ~0.85 GB and a 12M-row one at ~0.95 GB peak RSS; 32 MB is ~10% faster but
# passes 1 GB, 16 MB is ~10% slower.
CHUNK_BYTES = 24 << 20
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.strip() would leave
_BACKTRACK_LINES = 64  # newlines tried backwards before a piece is grown instead


def iter_csv(
    path: Path,
    options: Mapping[str, Any],
    *,
    source_name: str,
    chunk_bytes: int | None = None,
    count_skipped: SkipCounter | None = None,
) -> Iterator[pl.DataFrame]:
    """Frames of `read_csv`'s shape for consecutive pieces of the file at `path`
    (pieces of about `chunk_bytes`, default CHUNK_BYTES read at call time)."""
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    opts = CsvOptions.parse(options, source_name)
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(chunk_bytes)
        opts = after_separator_line(opts, head)
        if size <= chunk_bytes * 3 // 2 or newlines_are_multi_byte(head, opts.encoding):
            # Small files, and UTF-16/32 (several bytes per newline), are read whole.
            data = head + handle.read()
            yield read_csv(data, options, source_name=source_name, count_skipped=count_skipped)
            return
        yield from _pieces(
            handle, head, opts, dict(options), source_name, chunk_bytes, count_skipped
        )


def _pieces(
    handle: BinaryIO,
    head: bytes,
    opts: CsvOptions,
    options: dict[str, Any],
    source_name: str,
    chunk_bytes: int,
    count_skipped: SkipCounter | None,
) -> Iterator[pl.DataFrame]:
    header_start = _nth_newline(head, opts.header_row - 1) + 1 if opts.header_row else 0
    quote = opts.quote.encode("ascii") if opts.quote else None
    header_end = _record_end_after(head, quote, start=header_start)
    if header_end <= 0:
        raise FormatError(
            source_name,
            f"no line break in the first {chunk_bytes:,} bytes of a large file",
            "Check that the file is a delimited text export with one record per line",
        )
    sample = head[: head.rfind(b"\n") + 1]
    encoding = opts.encoding or decode(sample, None, source_name=source_name).encoding
    # Pure ASCII reads the same in every candidate encoding: it settles nothing.
    settled = bool(opts.encoding) or not sample.isascii()
    chosen = "set in the dataset YAML" if opts.encoding else "detected from the start of the file"
    header = head[header_start:header_end].removeprefix(codecs.BOM_UTF8)
    # The lines split as the whole file's are (at \n only; splitlines() also splits at a
    # bare CR or U+2028 inside a quoted header cell), so both sniff the same delimiter.
    delimiter = opts.delimiter or sniff_delimiter(
        head[header_start : header_end + 65536].decode(encoding, errors="replace").split("\n")[:21],
        opts.quote,
        source_name=source_name,
    )
    first = {**options, "encoding": encoding, "delimiter": delimiter, "header_row": opts.header_row}
    later = {**first, "encoding": without_signature(encoding), "header_row": 0}
    window = Window(handle, head, chunk_bytes)
    footer = _Footer(opts.skip_footer_rows + FOOTER_HINT_ROWS, delimiter, quote)
    lines_before, bytes_before, is_first = 0, 0, True
    limit, ahead = chunk_bytes, chunk_bytes // 2
    while True:
        eof = window.fill(limit + ahead)
        if eof and window.filled <= limit + chunk_bytes // 2:
            cut: int | None = window.filled  # the rest of the file is the last piece
        else:
            cut = _record_end(window.data, quote, start=header_end if is_first else 0, end=limit)
            if cut is None:  # a quoted field runs past the piece: search a longer one
                limit += chunk_bytes
                continue
            if not footer.fits_after(window.data, cut, window.filled):
                if not eof:  # read further before cutting here
                    ahead += chunk_bytes
                    continue
                cut = window.filled  # too few records are left to cut them off: one piece
        prefix = b"" if is_first else header
        piece = window.take(cut, prefix=prefix)
        newlines = count_byte(piece, b"\n") - prefix.count(b"\n")
        limit, ahead = chunk_bytes, chunk_bytes // 2
        last = eof and not window.filled
        if not settled and not piece.isascii():
            # The first bytes that tell the encoding apart; every piece before was ASCII.
            try:
                detected = decode(
                    piece[len(prefix) :], None, source_name=source_name, offset=bytes_before
                )
            except FormatError as error:
                raise error.moved_down(lines_before) from error
            later = {**later, "encoding": without_signature(detected.encoding)}
            chosen = f"detected from the bytes from offset {bytes_before} on"
            settled = True
        piece_options = first if is_first else later
        # Only the last piece drops footer rows: `footer` made sure it holds every one.
        place = Place(header_line=opts.header_row + 1, ends_file=last)
        try:
            frame = _read_piece(
                piece, piece_options, place, source_name, lines_before, prefix, count_skipped
            )
        except FormatError:
            if is_first:
                raise
            refuse_undecodable(
                piece[len(prefix) :],
                piece_options["encoding"],
                f"the encoding {chosen}",
                bytes_before,
                lines_before,
                source_name,
            )
            raise
        del piece  # before the next piece is allocated: see Window
        if frame is not None:
            yield frame
        lines_before += newlines
        bytes_before += cut
        is_first = False
        if last:
            return


class Window:
    """The file's bytes from the next piece on, in one buffer reused piece after piece.

    Reading, concatenating, slicing and prepending the header made four or five fresh 24 MB
    allocations per piece, each page-faulted in anew (a second of system time on the bench
    extract); now a piece costs the bytes handed to polars, and what is left over moves to
    the front in place.
    """

    def __init__(self, handle: BinaryIO, head: bytes, chunk_bytes: int) -> None:
        self._handle = handle
        self.data = bytearray(max(chunk_bytes + chunk_bytes // 2, len(head)))
        self.data[: len(head)] = head
        self.filled = len(head)
        self._eof = False

    def fill(self, wanted: int) -> bool:
        """Read until `wanted` bytes are held or the file ends; True at the end of the file."""
        while not self._eof and self.filled < wanted:
            if self.filled == len(self.data):  # a record longer than the buffer: grow it
                self.data.extend(bytes(len(self.data)))
            with memoryview(self.data) as view:
                read = self._handle.readinto(view[self.filled :])
            self._eof = not read
            self.filled += read or 0
        return self._eof

    def take(self, cut: int, *, prefix: bytes) -> bytes:
        """`prefix` and the first `cut` bytes, as one new bytes object; the rest moves to
        the front."""
        rest = self.filled - cut
        with memoryview(self.data) as view:
            piece = b"".join((prefix, view[:cut]))
            view[:rest] = view[cut : self.filled]  # memoryviews copy overlaps safely
        self.filled = rest
        return piece


class _Footer:
    """Keeps the file's last `rows` records with content in its last piece, the only piece
    that drops footer rows or hints at them (a piece before cannot know they are the last):
    every cut must leave at least that many such records after it."""

    def __init__(self, rows: int, delimiter: str, quote: bytes | None) -> None:
        self.rows = rows
        self.quote = quote
        # ASCII letters, digits and punctuation, but not the delimiter or quote: a record
        # holding one has content in any encoding. Other bytes may be blanks (a no-break
        # space) and are not counted, which at worst makes a cut wait for more records.
        ignored = re.escape(delimiter.encode("ascii")) + (re.escape(quote) if quote else b"")
        self._content = re.compile(b"[^\\x00-\\x20\\x7f-\\xff" + ignored + b"]")

    def fits_after(self, buffer: bytes | bytearray, cut: int, end: int) -> bool:
        """Whether `buffer[cut:end]`, from a record's start, holds the footer rows."""
        found, position = 0, cut
        while found < self.rows:
            hit = self._content.search(buffer, position, end)
            if hit is None:
                return False
            found += 1
            position = _record_end_after(
                buffer, self.quote, start=position, at=hit.start(), end=end
            )
            if not position:  # that record runs on past `end`
                return found >= self.rows
        return True


def _read_piece(
    data: bytes,
    options: dict[str, Any],
    place: Place,
    source_name: str,
    lines_before: int,
    header: bytes,
    count_skipped: SkipCounter | None = None,
) -> pl.DataFrame | None:
    """`header` is the header record copied in front of a piece after the first (empty for
    the first piece)."""
    if header and not _NOT_BLANK.search(data, len(header)):
        return None  # only trailing blank lines were left (searched, not sliced: no copy)
    # The line after the copied header is the file's line lines_before + 1.
    shift = lines_before - header.count(b"\n") if header else 0
    try:
        frame = read_csv(
            data, options, source_name=source_name, place=place, count_skipped=count_skipped
        )
    except FormatError as error:
        if error.line is None or not shift:
            raise
        raise error.moved_down(shift) from error
    return frame.with_columns(pl.col(SOURCE_ROW) + shift) if shift else frame


def _nth_newline(data: bytes, n: int) -> int:
    position = -1
    for _ in range(n + 1):
        position = data.find(b"\n", position + 1)
        if position < 0:
            return -1
    return position


def _record_end_after(
    data: bytes | bytearray,
    quote: bytes | None,
    *,
    start: int,
    at: int | None = None,
    end: int | None = None,
) -> int:
    """Just past the first newline from `at` (default `start`) up to `end` that ends the
    record begun at `start`, or 0 if there is none: a header cell may hold a quoted line
    break, as Excel writes "Beløb<Alt+Enter>(kr)"."""
    quotes, position = 0, start
    search = start if at is None else at
    while (newline := data.find(b"\n", search, end)) >= 0:
        quotes += data.count(quote, position, newline) if quote else 0
        if quotes % 2 == 0:
            return newline + 1
        position = search = newline + 1
    return 0


def _record_end(
    buffer: bytes | bytearray, quote: bytes | None, *, start: int, end: int
) -> int | None:
    """Just past the last newline before `end` that ends a record, or None if none is found
    near there.

    A newline ends a record when the quote characters before it pair up. Counting is
    `bytes.count` (C speed); exports with quoted line breaks only move the cut back a line.
    """
    end = buffer.rfind(b"\n", start, end)
    if quote is None or buffer.find(quote, start, end) < 0:
        return end + 1 if end >= start else None
    quotes = buffer.count(quote, start, end)
    for _ in range(_BACKTRACK_LINES):
        if end < start:
            return None
        if quotes % 2 == 0:
            return end + 1
        previous = buffer.rfind(b"\n", start, end)
        quotes -= buffer.count(quote, previous + 1, end)
        end = previous
    return None
