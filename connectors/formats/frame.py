"""The contract every reader's frame meets, applied in one place so the readers cannot drift.

Readers hand over raw cell text positionally plus the header texts and where each row came
from; this module names the columns, strips and nulls values, drops empty rows and footers,
and refuses headers that would make a column ambiguous. Record formats (JSON, XML) hand
over their fields through `records_frame`, which refuses field explosions first.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence

import polars as pl

from connectors.formats.errors import FormatError

SOURCE_ROW = "_source_row"
# The lineage columns readers and loads add (pipelines.ingest.LINEAGE and OPTIONAL_LINEAGE;
# connectors do not import pipelines, and a test keeps the two lists the same).
LINEAGE_NAMES = frozenset({SOURCE_ROW, "_sheet", "_batch_id", "_source_file", "_ingested_at"})
# Told how many rows `skip_rows_matching` left out, for the load's record: readers return only
# the rows they keep, and the caller must be able to say that others were skipped.
SkipCounter = Callable[[int], None]


def header_name(raw: object) -> str:
    """A header cell as people (and the YAML) name it: "Start\\n dato" (a merged Excel header)
    is "Start dato", and text is NFC-normalised (macOS tools write "å" as "a" plus a combining
    ring, which looks the same but would not match the YAML's key). Invisible format
    characters are dropped: a BOM left mid-line by two exports joined into one, or a
    zero-width space pasted from a web page, made `CPR` a name that looked right in every
    message but never matched the YAML's `CPR`."""
    if raw is None:
        return ""
    text = str(raw)
    if not text.isascii():  # ASCII has no format characters; skip the per-character test
        text = "".join(char for char in text if unicodedata.category(char) != "Cf")
    return unicodedata.normalize("NFC", " ".join(text.split()))


def check_pattern(pattern: str, *, source_name: str) -> None:
    """Refuse a `skip_rows_matching` pattern that is not a valid (Rust) regular expression."""
    try:
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.PolarsError as err:
        # polars wraps the regex error in the whole internal expression: keep the reason.
        lines = [line.strip() for line in str(err).splitlines()]
        reason = next((line for line in lines if line.startswith("error:")), lines[0])
        raise FormatError(
            source_name,
            f"`skip_rows_matching` {pattern!r} is not a valid regular expression"
            f" ({reason.removeprefix('error:').strip()})",
            "Fix the pattern in the dataset YAML (Rust regex syntax, no look-around)",
        ) from None


def clean_values(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as stripped text, with empty text as null."""
    # Two steps: in one eager select the stripped value, used twice, was stripped twice
    # (eager queries skip common-subexpression elimination), a third of reading a piece.
    stripped = frame.select(
        pl.col(name).cast(pl.String).str.strip_chars() for name in frame.columns
    )
    return stripped.select(
        pl.when(pl.col(name).str.len_bytes() > 0).then(pl.col(name)) for name in frame.columns
    )


def non_empty(frame: pl.DataFrame) -> pl.Expr:
    if not frame.columns:
        return pl.lit(False)
    return pl.any_horizontal(pl.col(name).is_not_null() for name in frame.columns)


def finish(
    values: pl.DataFrame,
    header: Sequence[object],
    source_row: pl.Series,
    *,
    source_name: str,
    header_line: int | None,
    sheet: str | None = None,
    skip_footer_rows: int = 0,
    skip_rows_matching: str | None = None,
    records: bool = False,
    count_skipped: SkipCounter | None = None,
) -> pl.DataFrame:
    """Name, clean and trim `values` (positional columns, one per header cell).

    `header_line` is where the header is in the file, for messages; None when the names are
    not a row of the file (JSON keys). With `records` (JSON and XML fields), no named field
    at all is records without values, as `{}` is, not an empty header row.
    """
    names = [header_name(h) for h in header]
    positional = [f"column_{i}" for i in range(len(names))]
    frame = clean_values(values.rename(dict(zip(values.columns, positional, strict=True))))
    frame = frame.with_columns(source_row.cast(pl.Int64).alias(SOURCE_ROW))
    frame = frame.filter(non_empty(frame.select(positional)))
    if skip_footer_rows:
        frame = frame.head(max(frame.height - skip_footer_rows, 0))

    def fail(cause: str, hint: str, line: int | None = header_line) -> FormatError:
        return FormatError(source_name, cause, hint, line=line, sheet=sheet)

    unit = "line" if sheet is None else "row"  # a sheet numbers rows, as Excel shows them
    if header_line is not None:
        # Before `skip_rows_matching`: the pattern that leaves out a repeated header (`^ID$`)
        # matches a reordered one too, and its rows would then load under the wrong names.
        _refuse_reordered_header(frame, names, fail, unit)
    if skip_rows_matching:
        check_pattern(skip_rows_matching, source_name=source_name)
        # Any field, as in CSV: totals put "I alt" in whichever column the label sits in,
        # also one without a header (a report's row labels), and before the unnamed columns
        # are checked: a skipped row's values in them must not refuse the file.
        matches = (
            pl.col(name).str.contains(skip_rows_matching).fill_null(False) for name in positional
        )
        kept = frame.filter(~pl.any_horizontal(matches))
        if count_skipped is not None:
            count_skipped(frame.height - kept.height)
        frame = kept

    keep = [i for i, name in enumerate(names) if name]
    if not keep and not records:
        raise fail(
            "the header row is empty",
            "Set `header_row` (0-based) to the row holding the column names"
            + (f"; {unit} {header_line} was used" if header_line else ""),
        )
    for i, name in enumerate(names):
        if name:
            continue
        # Exports often carry a trailing delimiter or a formatted-but-empty Excel column:
        # an unnamed column with no values holds nothing and is dropped.
        filled = frame.filter(pl.col(positional[i]).is_not_null())
        if filled.height:
            first = filled[SOURCE_ROW][0]
            hint = "Give the column a header in the source, or check `header_row`" + (
                f" ({unit} {header_line} is used as the header)" if header_line else ""
            )
            below = _names_below_title(frame, positional, len(keep)) if header_line else None
            if below is not None:
                # A title above the column names ("Udtræk fra Sag" in A1) read as the header.
                hint = (
                    f"The header ({unit} {header_line}) holds"
                    f" {'one value' if len(keep) == 1 else 'two values'}, probably a title"
                    " above the column names:"
                    f" if {unit} {below} holds them, set `header_row: {below - 1}` (0-based)"
                    " under `format:` in the dataset YAML"
                )
            # Where the header is a line of the file, the rows are its lines too: the error's
            # line is the row's, which a reader of pieces moves to the file's own.
            raise fail(
                f"column {i + 1} has values"
                + ("" if header_line else f" (first in row {first})")
                + " but no header text",
                hint,
                line=first if header_line else None,
            )
    check_unique([names[i] for i in keep], fail)
    if header_line is not None and len(keep) > 1:
        _refuse_repeated_header(frame, [(positional[i], names[i]) for i in keep], fail, unit)
    taken = [names[i] for i in keep if names[i] in LINEAGE_NAMES]
    if taken:
        # Such a column would be taken for the lineage itself (`_sheet` passed unchecked as
        # the reader's own, and a wrong sheet name was shown for an NDJSON row).
        raise fail(
            f"the file has a column named '{taken[0]}', a name the load gives its own lineage"
            " columns",
            "Rename that column in the source",
        )

    return frame.select(
        *(pl.col(positional[i]).alias(names[i]) for i in keep),
        pl.col(SOURCE_ROW),
    )


def _refuse_repeated_header(
    frame: pl.DataFrame,
    named: list[tuple[str, str]],
    fail: Callable[..., FormatError],
    unit: str,
) -> None:
    """Refuse a row holding the column names again, as a report export writes them after
    each page break. With a contract of text fields it loaded as a row of data."""
    (first, name), *_ = named
    candidates = frame.filter(pl.col(first) == name)  # one column compared, then the rest
    if not candidates.height:
        return
    repeats = candidates.filter(pl.all_horizontal(pl.col(c) == n for c, n in named))
    if repeats.height:
        pattern = "^" + re.escape(name) + "$"
        raise fail(
            f"the {unit} repeats the header, as a report export writes it after each page break",
            f"Leave such {unit}s out with `skip_rows_matching: '{pattern}'` under `format:` in"
            " the dataset YAML, or ask for the export without page breaks",
            line=repeats[SOURCE_ROW][0],
        )


def reordered_headers(
    values: pl.DataFrame, header: Sequence[object], *, cleaned: bool = False
) -> pl.Series:
    """Where a row of `values` (a column per header cell, as read) holds the column names in
    another order: a second export, its columns ordered differently, appended to the first.
    Its rows were read under the first header, values under the wrong names (an amount as a
    count), and only where the types differed did a row fail; the names' row itself loaded
    as data under text fields. An exact repeat is a page break's (`_refuse_repeated_header`)."""
    names = [header_name(h) for h in header]
    named = [(column, name) for column, name in zip(values.columns, names, strict=True) if name]
    found = pl.repeat(False, values.height, dtype=pl.Boolean, eager=True)
    if len(named) < 2:
        return found
    columns, wanted = [c for c, _ in named], [n for _, n in named]
    # `cleaned` values (`clean_values`) are stripped text already: not again on every row.
    stripped = [
        pl.col(c) if cleaned else pl.col(c).cast(pl.String).str.strip_chars() for c in columns
    ]
    # One column compared first, then the rest on the few rows left: this runs on every piece.
    candidates = (
        values.with_row_index("_at")
        .filter(stripped[0].is_in(wanted))
        .filter(pl.all_horizontal(value.is_in(wanted) for value in stripped[1:]))
    )
    at = [
        index
        for index, *cells in candidates.select("_at", *stripped).iter_rows()
        if sorted(cells) == sorted(wanted) and cells != wanted
    ]
    return found.scatter(at, True) if at else found


def _refuse_reordered_header(
    frame: pl.DataFrame, header: list[str], fail: Callable[..., FormatError], unit: str
) -> None:
    columns = [c for c in frame.columns if c != SOURCE_ROW]
    found = frame.filter(reordered_headers(frame.select(columns), header, cleaned=True))
    if not found.height:
        return
    *cells, line = found.select(*columns, SOURCE_ROW).row(0)
    pairs = [(cell, name) for cell, name in zip(cells, header, strict=True) if name]
    value, name = next((cell, name) for cell, name in pairs if cell != name)
    raise fail(
        f"the {unit} holds the column names in another order ({_quoted(value)} where the"
        f" header has {_quoted(name)}): a second export with its columns ordered differently"
        f" was appended, and the {unit}s below it would load under the wrong names",
        "Ask for the exports as separate files, each read by its own header",
        line=line,
    )


_NAME_SHOWN = 60


def _quoted(name: str) -> str:
    return repr(name if len(name) <= _NAME_SHOWN else name[:_NAME_SHOWN] + "…")


_TITLE_SEARCH_ROWS = 20  # a title block above the column names is a few rows at most


def _names_below_title(frame: pl.DataFrame, positional: list[str], named: int) -> int | None:
    """The source row of the first of the frame's first rows that fills more columns than
    the `named` header cells, every one with a letter in it, as column names have: where a
    header of one or two cells (a title, a title and a date) is followed by the real one."""
    if named > 2:
        return None
    for row in frame.head(_TITLE_SEARCH_ROWS).iter_rows(named=True):
        cells = [row[name] for name in positional if row[name] is not None]
        if len(cells) > named and all(any(c.isalpha() for c in cell) for cell in cells):
            return row[SOURCE_ROW]
    return None


# Real record layouts have tens to hundreds of fields; a hostile or mis-pointed document with
# 100k distinct keys or element names would take minutes and gigabytes to build.
MAX_COLUMNS = 5_000
# The frame is dense: every record gets a cell in every column, so fields that each appear in
# one record cost records x fields cells (40k records x 5k fields is 200M cells, over 6 GB)
# from a 2 MB file. Above this many cells, at least one in SPARSE_SHARE must hold a value.
SPARSE_CELLS = 10_000_000
SPARSE_SHARE = 50
_NAMES_LISTED = 10
_NAME_CHARS = 60
# One value of a record format (a JSON string, an XML element's text or attribute). Held as
# text, stripped and moved into columns, a value costs about nine times its size on the way
# to a frame: a 60 MB text node took 530 MB. GML coordinates of a municipality's border run
# to a few MB; a document embedded as base64 belongs in a file of its own.
MAX_VALUE_CHARS = 8 << 20


def check_unique(names: Iterable[str], fail: Callable[[str, str], FormatError]) -> None:
    """Refuse column names (already `header_name`d) that occur more than once."""
    duplicates = sorted(n for n, count in Counter(names).items() if count > 1)
    looks_like_data = [d for d in duplicates if not any(char.isalpha() for char in d)]
    if looks_like_data:
        # Two columns named '1' (or '12,5', '01-02-2024'): the row read as the header is data.
        raise fail(
            f"the header row looks like data, not column names ('{looks_like_data[0]}'"
            " appears twice)",
            "Set `header_row` (0-based) to the line holding the column names; a file without"
            " a header row needs one added at the source",
        )
    if duplicates:
        raise fail(
            "duplicate column names " + ", ".join(f"'{d}'" for d in duplicates),
            "Rename the columns in the source so each name is unique, or check `header_row`",
        )


class FieldsSeen:
    """The field names of a record file read in pieces, so that reading in pieces refuses
    what reading whole refuses: two names that become one column (`header_name`), and more
    than MAX_COLUMNS fields in all."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.columns: set[str] = set()  # the fields' names as columns (`header_name`)
        self.fields: dict[str, None] = {}
        self.records = 0  # records in the frames added so far
        self.filled = 0  # values in them

    def add(
        self, indices: Mapping[str, list[int]], count: int, lines: Sequence[int] | None = None
    ) -> None:
        """The next frame's fields: per field, which of its `count` records (0-based) have
        it; `lines` are the records' lines in the file where known (NDJSON)."""
        first, self.records = self.records + 1, self.records + count
        self.filled += sum(len(records) for records in indices.values())
        for field in indices:
            if field in self.fields:
                continue
            column = header_name(field)
            if len(self.fields) >= MAX_COLUMNS:
                index = indices[field][0]
                raise too_many_fields(
                    self.fields,
                    field,
                    index + first,
                    self.source_name,
                    line=lines[index] if lines else None,
                )
            self.fields[field] = None
            if not column:
                continue  # each frame refuses an unnamed field with values itself
            if column in self.columns:
                check_unique(
                    [column, column], lambda cause, hint: FormatError(self.source_name, cause, hint)
                )
            self.columns.add(column)

    def finish(self) -> None:
        """After the last frame: refuse what `records_frame` refuses of the file read whole,
        a mostly empty table (each piece alone may be dense enough; the load is refused
        before its commit)."""
        refuse_sparse(self.records, len(self.fields), self.filled, self.source_name)


def refuse_sparse(count: int, fields: int, filled: int, source_name: str) -> None:
    """Refuse records that make a mostly empty table: `count` records with `fields` fields
    in all but only `filled` values."""
    cells = count * fields
    if cells > SPARSE_CELLS and filled * SPARSE_SHARE < cells:
        raise FormatError(
            source_name,
            f"the {count} records have {fields} different fields but only {filled} values"
            f" in all: as a table that is {cells} cells, fewer than 1 in {SPARSE_SHARE} filled",
            "Check `record_path` (it should name the repeating records); fields that each occur"
            " in a few records, such as ids used as keys, cannot be columns",
        )


def too_many_fields(
    names: Collection[str], new: str, record: int, source_name: str, *, line: int | None
) -> FormatError:
    """The error for the record (1-based) that adds a field past MAX_COLUMNS."""
    shown = ", ".join(f"`{_short(n)}`" for n in list(names)[:_NAMES_LISTED])
    return FormatError(
        source_name,
        f"the records have more than {MAX_COLUMNS} different fields (record {record}"
        f" adds `{_short(new)}`); the first are {shown} and {len(names) - _NAMES_LISTED} more",
        "Check `record_path`: it should name the repeating records, not an element or key"
        " that holds the whole document; fields named by data (ids as keys) cannot be columns",
        line=line,
    )


def _short(name: str) -> str:
    return name if len(name) <= _NAME_CHARS else name[: _NAME_CHARS - 1] + "…"


def records_frame(
    indices: Mapping[str, list[int]],
    values: Mapping[str, list[str | None]],
    source_rows: list[int],
    source_name: str,
) -> pl.DataFrame:
    """The reader frame from sparse columns: per field name, the 0-based records that have it
    and their text values. A mostly empty table is refused before it is built."""
    if not values:
        return pl.DataFrame(schema={SOURCE_ROW: pl.Int64})
    count = len(source_rows)
    refuse_sparse(count, len(values), sum(len(v) for v in values.values()), source_name)
    columns = {}
    for i, key in enumerate(values):
        column = pl.Series(values[key], dtype=pl.String)
        if column.len() < count:
            empty = pl.repeat(None, count, dtype=pl.String, eager=True)
            column = empty.scatter(indices[key], column)
        columns[f"c{i}"] = column
    return finish(
        pl.DataFrame(columns),
        list(values),
        pl.Series(source_rows, dtype=pl.Int64),
        source_name=source_name,
        header_line=None,
        records=True,
    )


def too_long_value(
    what: str, record: int, source_name: str, *, line: int | None, from_line: int | None = None
) -> FormatError:
    """The error for the record (1-based) holding a value over MAX_VALUE_CHARS; `what`
    names the value (`the value of `Navn``)."""
    start = f" (from line {from_line})" if from_line else ""
    return FormatError(
        source_name,
        f"record {record}{start}: {what} is longer than {MAX_VALUE_CHARS:,} characters,"
        " more than a column value can be",
        "Ask the supplier for the records without such values: a document or image"
        " embedded in the export belongs in a file of its own",
        line=line,
    )
