"""From raw string columns to typed, contract-checked rows, and the rows that failed.

Readers hand over every value as text. Typing happens here, per row, so one bad date sends
one row to quarantine instead of failing the file; then the pandera contract's checks run on
the typed rows (in one query, `contract_checks`, or by pandera itself where a contract needs
it), then key uniqueness. Every input row ends up either valid or quarantined with the
column, check and (masked where personal) value.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandera.polars as pa
import polars as pl

from lake import contract_checks
from lake.errors import SchemaBreak
from lake.privacy import CPR_NUMBER, CPR_SEPARATORS, mask, normalised, redact, redacted

SOURCE_ROW = "_source_row"
SHEET = "_sheet"  # from workbooks read with `sheets:`; their row numbers repeat per sheet
READER_LINEAGE = (SOURCE_ROW, SHEET)
# Spaces that group thousands alike: a space, a no-break space (U+00A0, Excel and Windows in
# Nordic locales), a narrow no-break space (U+202F) and a thin space (U+2009).
SPACE_SEPARATORS = (" ", "\u00a0", "\u202f", "\u2009")
_DATA_LIKE = re.compile(r"[\d\s.,:/+-]+")
ISO_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S")
# Register APIs send ISO 8601 instants with `Z` or an offset; both become UTC. The Parquet
# reader writes a zoned timestamp with a space (`2026-03-29 03:30:00+02:00`), as PostgreSQL
# exports timestamptz (`+02`). A bare date is midnight: a workbook renders a date-time
# column whose cells are all at 00:00 as dates.
ISO_INSTANTS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d",
)
FAILURE_SCHEMA = {SOURCE_ROW: pl.Int64, "column": pl.String, "check": pl.String, "value": pl.String}


@dataclass(frozen=True)
class ParseOptions:
    """How text becomes typed values; from the dataset YAML's `parse:` block."""

    date_formats: tuple[str, ...] = ()
    decimal_comma: bool = False
    thousands_separator: str | None = None
    # Markers an export writes for "no value" (Statistics Denmark's `..`, SSB's `:` and `-`):
    # read as null, so a contract field that may be null takes them and one that may not
    # says so, instead of every marker failing as a wrong number or date.
    null_values: tuple[str, ...] = ()


DriftPolicy = Literal["ignore", "evolve", "freeze"]
DRIFT_POLICIES: tuple[DriftPolicy, ...] = ("ignore", "evolve", "freeze")
_CPR_SHAPED = rf"(^|\D)\d{{6}}[{CPR_SEPARATORS}]?\d{{4}}(\D|$)"


@dataclass(frozen=True)
class Conformed:
    valid: pl.DataFrame
    failures: pl.DataFrame  # one row per (source row, column, check)
    rows_in: int
    # Headers beyond the contract as they may be shown (privacy.redact: a header can be a
    # CPR number), for quality.runs, the schema_drift check and `kommunelake check`.
    extra_columns: tuple[str, ...] = field(default=())
    added_columns: tuple[str, ...] = field(default=())  # their silver names, when evolved
    # Keys (as typed and normalised, before pseudonyms) of quarantined rows whose key itself
    # was readable: the source still has them, so a snapshot or SCD2 load must not take them
    # for deleted because their row failed on another column.
    held_keys: pl.DataFrame | None = None

    @property
    def drift_decision(self) -> str:
        return drift_decision(self.extra_columns, self.added_columns)

    @property
    def rows_valid(self) -> int:
        return self.valid.height

    @property
    def rows_quarantined(self) -> int:
        return failing_rows(self.failures)


def drift_decision(extra_columns: Sequence[str], added_columns: Sequence[str]) -> str:
    """What schema drift did with a file's columns beyond the contract (quality.runs)."""
    if not extra_columns:
        return "none"
    if added_columns:
        return "added: " + ", ".join(added_columns)
    return "ignored: " + ", ".join(extra_columns)


def failing_rows(failures: pl.DataFrame) -> int:
    """How many source rows have at least one failure."""
    return failures.select(row_identity(failures)).n_unique()


def failure_counts(failures: pl.DataFrame) -> list[tuple[str, str, int]]:
    """(column, check, rows) of failure rows, most rows first."""
    counts = failures.group_by("column", "check").agg(pl.len())
    return sorted(counts.iter_rows(), key=lambda count: (-count[2], count[0], count[1]))


def contract_columns(contract: type[pa.DataFrameModel]) -> dict[str, pa.Column]:
    return dict(contract.to_schema().columns)


def identifier_columns(contract: type[pa.DataFrameModel]) -> dict[str, str]:
    """Columns that identify a person, with their pseudonym domain."""
    return {
        name: column.metadata["identifier"]
        for name, column in contract_columns(contract).items()
        if column.metadata and column.metadata.get("identifier")
    }


def masked_columns(contract: type[pa.DataFrameModel]) -> set[str]:
    return {
        name
        for name, column in contract_columns(contract).items()
        if column.metadata and column.metadata.get("classification") in ("personal", "sensitive")
    }


def rename_to_contract(
    raw: pl.DataFrame,
    contract: type[pa.DataFrameModel],
    aliases: Mapping[str, str],
    *,
    where: str,
    absent_is_null: bool = False,
    absent_required_is_null: bool = False,
    unit: str = "line",
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Map source headers to contract fields; a missing field rejects the batch.

    Except where nothing can be lost: a batch without rows or headers (an empty JSON array or
    XML document) gets every missing field, and with `absent_is_null` (record formats, whose
    writers leave out null keys) a missing nullable field is a column of nulls. A file with
    headers but no rows is checked like any other: its headers say what the layout is.
    `absent_required_is_null` makes a missing required field a column of nulls too (its
    rows fail as null): for one piece of a record file, whose other pieces may have the
    field; the caller refuses a file none of whose pieces has it. `unit` is what the
    file's `_source_row` counts: lines of a text file, or rows of a sheet."""
    fields = contract_columns(contract)
    renames = {src: dst for src, dst in aliases.items() if src in raw.columns}
    sources: dict[str, list[str]] = {}
    for header in raw.columns:
        sources.setdefault(renames.get(header, header), []).append(header)
    clashes = {name: headers for name, headers in sources.items() if len(headers) > 1}
    if clashes:
        name, headers = next(iter(clashes.items()))
        raise SchemaBreak(
            f"{where}: the headers {' and '.join(headers)} both map to {name!r}"
            f"{f' ({len(clashes) - 1} more such clash(es))' if len(clashes) > 1 else ''}; "
            "keep one of them under `columns:` in the dataset YAML, or ask the sender to "
            "remove the other"
        )
    frame = raw.rename(renames)
    missing = [name for name in fields if name not in frame.columns]
    shapeless = not raw.height and all(c in READER_LINEAGE for c in raw.columns)
    if missing and (near := _near_miss(raw, missing, aliases, fields)) is not None:
        # A header the sender re-cased (`Slutdato` → `slutdato`): a record format took the
        # field for left out, loading it as null in every row beside a new column.
        header, expected, name = near
        raise SchemaBreak(
            f"{where}: the header {header!r} differs only in case or spacing from {expected!r},"
            f" which is read as {name}, so {name} is missing; map {header!r} under `columns:`"
            " in the dataset YAML, or ask the sender for the agreed header"
        )
    if absent_is_null and (near := _near_miss(raw, list(fields), aliases, fields)) is not None:
        # Both spellings in one record file (`Navn` in some records, `navn` in others, as
        # two systems' exports put together write them): the field is there, so the check
        # above passed, and the re-cased records loaded it as null beside a drift column.
        header, expected, name = near
        raise SchemaBreak(
            f"{where}: some records have the key {header!r} and others {expected!r}, which is"
            f" read as {name}: the values under {header!r} would load as an empty {name}."
            f" Ask the sender to write the key one way ({expected!r}) in every record"
        )
    if missing and (absent_is_null or shapeless):
        nulls = [n for n in missing if shapeless or fields[n].nullable or absent_required_is_null]
        frame = frame.with_columns(pl.lit(None, pl.String).alias(n) for n in nulls)
        missing = [n for n in missing if n not in nulls]
    if missing:
        unmapped = [c for c in raw.columns if c not in renames and c != SOURCE_ROW]
        data_like = [c for c in unmapped if _DATA_LIKE.fullmatch(c)]
        is_header = (len(fields) - len(missing)) * 2 >= len(fields)
        if data_like and not is_header:
            # Numbers or dates where few contract fields matched: the first data row was read
            # as the header; echoing it would copy personal data into logs and run records.
            found = (
                "a first row that looks like data, not headers: the header row is "
                "missing or `header_row` in the dataset YAML points at the wrong row"
            )
        else:
            # Most fields matched, so this is the header row, and a date in it is a real
            # header (a month's column); its digits are masked all the same.
            shown = [re.sub(r"\d", "N", c) if c in data_like else c for c in unmapped]
            found = f"the headers {', '.join(shown)}"
            if not shown:  # every header is mapped: the column is simply not in the file
                headers = [c for c in raw.columns if c not in (SOURCE_ROW, SHEET)]
                found = f"only the headers {', '.join(headers)}, each mapped to another column"
        todo = (
            "Map a renamed header under `columns:` in the dataset YAML, or ask the sender for"
            " the agreed layout"
        )
        wanted = [[*_sources_of(n, aliases), n] for n in missing]
        found_at = _header_further_down(raw, wanted)
        nested = _nested_in(raw, [name for names in wanted for name in names])
        if nested is not None:
            # A JSON record whose fields sit in an object (`{"Borger": {"cpr": ...}}`).
            column, name = nested
            todo = (
                f"`{name}` is inside the JSON object in column `{column}`: set `flatten: true`"
                f" under `format:` and map `{column}.{name}` under `columns:` in the dataset"
                " YAML"
            )
        elif found_at is not None:
            # A title line above the column names was read as the header.
            line, sheet = found_at
            # A sheet per citizen may be named by their CPR number.
            place = f"{unit.capitalize()} {line}" + (
                f" of sheet {redact(sheet)!r}" if sheet else ""
            )
            todo = (
                f"{place} holds the missing column names: if the {unit}s above it are a"
                f" title, set `header_row: {line - 1}` (0-based) under `format:` in the"
                " dataset YAML"
            )
        raise SchemaBreak(
            f"{where}: missing required column(s) {', '.join(missing)}; the file has "
            f"{found}. {todo}"
        )
    # Reader lineage is not data. Only the readers' own columns: a source header that merely
    # starts with `_` (CKAN's `_id`) is data and goes through the drift policy and its guards.
    lineage = [c for c in READER_LINEAGE if c in frame.columns and c not in fields]
    extra = tuple(c for c in frame.columns if c not in fields and c not in lineage)
    return frame.select([*fields, *extra, *lineage]), extra


def _nested_in(raw: pl.DataFrame, names: list[str]) -> tuple[str, str] | None:
    """(column, name) where one of a missing field's `names` (its header or aliases) is a key
    of the JSON objects a column holds, as a JSON reader without `flatten` keeps nested
    objects; looked for in the first rows."""
    head = raw.head(_HEADER_SEARCH_ROWS)
    for column in head.columns:
        if column in READER_LINEAGE or head[column].dtype != pl.String:
            continue
        for text in head[column].drop_nulls().to_list():
            if not text.startswith("{"):
                break  # not a column of objects
            for name in names:
                if f'"{name}":' in text:
                    return column, name
    return None


_HEADER_SEARCH_ROWS = 20  # a title block above the column names is a few lines at most
_CELL_SPLIT = re.compile(r"[;,\t|]")  # a header read as one column still holds its names


def _sources_of(field: str, aliases: Mapping[str, str]) -> list[str]:
    return [src for src, dst in aliases.items() if dst == field]


def _near_miss(
    raw: pl.DataFrame,
    missing: list[str],
    aliases: Mapping[str, str],
    fields: Mapping[str, pa.Column],
) -> tuple[str, str, str] | None:
    """(header, expected name, field) for a file header that is a missing field's expected
    header (or the field's own name) but for case and spacing; None if there is none."""

    def loose(name: str) -> str:
        return " ".join(name.split()).casefold()

    expected = {
        loose(n): (n, field) for field in missing for n in [*_sources_of(field, aliases), field]
    }
    for header in raw.columns:
        if header in READER_LINEAGE or header in aliases or header in fields:
            continue
        if (found := expected.get(loose(header))) is not None:
            return header, *found
    return None


def _header_further_down(
    raw: pl.DataFrame, wanted: list[list[str]]
) -> tuple[int, str | None] | None:
    """The `_source_row` (and `_sheet`, read with `sheets:`) of the first of the frame's
    first rows holding, for each missing field, one of its names (`wanted`): the real
    header, below a title read as the header. A frame read as one column holds each line
    whole, so values are split at delimiters."""
    if SOURCE_ROW not in raw.columns:
        return None
    values = [c for c in raw.columns if c not in READER_LINEAGE]
    for row in raw.head(_HEADER_SEARCH_ROWS).iter_rows(named=True):
        cells = {str(row[c]).strip() for c in values if row[c] is not None}
        cells |= {part.strip().strip('"') for cell in cells for part in _CELL_SPLIT.split(cell)}
        cells = {unicodedata.normalize("NFC", cell) for cell in cells}
        if all(any(name in cells for name in names) for names in wanted):
            return row[SOURCE_ROW], row.get(SHEET)
    return None


def conform(
    raw: pl.DataFrame,
    contract: type[pa.DataFrameModel],
    *,
    aliases: Mapping[str, str] | None = None,
    parse: ParseOptions | None = None,
    keys: Sequence[str] = (),
    where: str = "batch",
    drift: DriftPolicy = "ignore",
    absent_is_null: bool = False,
    absent_required_is_null: bool = False,
    hold_keys: bool = False,
    unit: str = "line",
) -> Conformed:
    """Type, validate and de-duplicate one batch; raises SchemaBreak if columns are missing
    (see `rename_to_contract` for the `absent_` exceptions), or new ones arrive under
    `freeze` (or hold CPR-shaped values under `evolve`). With `hold_keys` (a batch that is
    the whole source) the quarantined rows' keys are kept too."""
    parse = parse or ParseOptions()
    frame, extra = rename_to_contract(
        raw,
        contract,
        aliases or {},
        where=where,
        absent_is_null=absent_is_null,
        absent_required_is_null=absent_required_is_null,
        unit=unit,
    )
    frame, added = _apply_drift(frame, extra, drift, where)
    fields = contract_columns(contract)
    if parse.null_values:
        markers = pl.lit(list(parse.null_values), dtype=pl.List(pl.String))
        frame = frame.with_columns(
            pl.when(pl.col(name).is_in(markers)).then(None).otherwise(pl.col(name)).alias(name)
            for name in fields
        )
    masked = masked_columns(contract)

    typed = _type_columns(frame, fields, parse)
    failures = [_type_failures(frame, typed, fields, masked)]
    candidates = without_rows(typed, failures[0])

    contract_failures = _contract_failures(candidates, contract, masked)
    failures.append(contract_failures)
    candidates = without_rows(candidates, contract_failures)

    # After the checks (they see the values as sent), before the key comparison.
    candidates, shaped_keys = _without_cpr_numbers(candidates, contract, keys, masked)
    failures.append(shaped_keys)

    held = None
    if keys:
        # A key is compared as its pseudonym will be: `010190-1234` and `0101901234` are one
        # person, so one key, in silver (and in a merge, which refuses repeated keys).
        identifiers = identifier_columns(contract)
        normalise = [
            normalised(pl.col(k), identifiers[k]).alias(k) for k in keys if k in identifiers
        ]
        candidates = candidates.with_columns(normalise)
        if hold_keys:
            held = _held_keys(typed, concat_failures(failures), keys).with_columns(normalise)
        duplicate = candidates.select(pl.struct(keys).is_first_distinct().not_()).to_series()
        dupes = candidates.filter(duplicate)
        failures.append(_failures(dupes, ",".join(keys), "duplicate_key", keys[0], masked))
        candidates = candidates.filter(~duplicate)

    all_failures = concat_failures(failures)
    result = Conformed(
        candidates,
        all_failures,
        rows_in=raw.height,
        extra_columns=tuple(redact(c) for c in extra),
        added_columns=added,
        held_keys=held,
    )
    # The invariant every load is audited on: nothing is dropped without a reason.
    assert result.rows_valid + result.rows_quarantined == result.rows_in, "row reconciliation"
    return result


def _held_keys(typed: pl.DataFrame, failures: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The keys of the failing rows whose key columns all typed (a row whose key is what
    failed cannot be told apart from a deleted one)."""
    ids = row_identity(failures)
    if not failures.height or not ids:
        return typed.select(keys).clear()
    failed = typed.join(failures.select(ids).unique(), on=ids, how="semi")
    return failed.select(keys).drop_nulls().unique()


def clear_text_columns(contract: type[pa.DataFrameModel]) -> list[str]:
    """Text fields silver keeps as sent: neither pseudonymised identifiers nor public data."""
    return [
        name
        for name, column in contract_columns(contract).items()
        if column.dtype.type == pl.String
        and not (column.metadata or {}).get("identifier")
        and (column.metadata or {}).get("classification") != "public"
    ]


def _without_cpr_numbers(
    frame: pl.DataFrame,
    contract: type[pa.DataFrameModel],
    keys: Sequence[str],
    masked: set[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`frame` with no clear CPR number in a column the contract does not pseudonymise, and
    the quarantine rows of what could not be masked.

    Only identifier fields are pseudonymised, yet a staff remark ("ring til datter
    150285-1234") or an internal id can hold a CPR number: such numbers are masked in place
    (`privacy.redacted`), the rest of the text kept. A key cannot be masked (two numbers
    would become one key, and a merge would overwrite one citizen's row with another's):
    its row is quarantined (`cpr_shaped`) until the contract declares the column an
    identifier. Public columns are public data and left as they are."""
    columns = [c for c in clear_text_columns(contract) if c in frame.columns]
    # One search per column and chunk; the rewrite only where a value matched (rarely).
    found = frame.select(pl.col(columns).str.contains(CPR_NUMBER).any()).row(0) if columns else ()
    holding = [c for c, hit in zip(columns, found, strict=True) if hit]
    shaped = [k for k in keys if k in holding]
    parts = [
        _failures(frame.filter(pl.col(k).str.contains(CPR_NUMBER)), k, "cpr_shaped", k, masked)
        for k in shaped
    ]
    failures = concat_failures(parts) if parts else pl.DataFrame(schema=FAILURE_SCHEMA)
    kept = without_rows(frame, failures) if parts else frame
    return kept.with_columns(redacted(pl.col(c)) for c in holding if c not in shaped), failures


def row_identity(frame: pl.DataFrame) -> list[str]:
    """The columns that tell a source row apart: its line or row, and its sheet if any."""
    return [c for c in READER_LINEAGE if c in frame.columns]


def without_rows(frame: pl.DataFrame, failures: pl.DataFrame) -> pl.DataFrame:
    """`frame` without the source rows that have a failure."""
    if not failures.height:
        return frame
    ids = row_identity(failures)
    if ids == [SOURCE_ROW]:
        return frame.filter(~pl.col(SOURCE_ROW).is_in(failures[SOURCE_ROW].implode()))
    failed = failures.select(pl.struct(ids)).to_series().implode()
    return frame.filter(~pl.struct(ids).is_in(failed))


def concat_failures(parts: Sequence[pl.DataFrame]) -> pl.DataFrame:
    """Failure frames as one, in source order (a `_sheet` column where a part has one)."""
    failures = pl.concat(parts, how="diagonal_relaxed")
    return failures.sort([*row_identity(failures), "column", "check"])


def evolved_name(header: str) -> str:
    """A Delta-safe snake_case name for a new source header ("Afdelings-kode" → afdelings_kode)."""
    name = header.lower().translate(str.maketrans({"æ": "ae", "ø": "oe", "å": "aa"}))
    name = re.sub(r"[^a-z0-9]+", "_", name).strip("_") or "column"
    return f"c_{name}" if name[0].isdigit() else name


def _apply_drift(
    frame: pl.DataFrame, extra: tuple[str, ...], drift: str, where: str
) -> tuple[pl.DataFrame, tuple[str, ...]]:
    if not extra or drift == "ignore":
        return frame.drop(extra), ()
    # Every refusal below rejects the file with its new columns: quality.runs records that
    # decision, under evolve as under freeze (not `none`, as if nothing had been new).
    rejected = f"rejected: {', '.join(map(redact, extra))}"
    if drift == "freeze":
        raise SchemaBreak(
            f"{where}: new column(s) {', '.join(extra)} not in the contract, and the dataset's "
            "schema_drift is freeze. Add them to the contract, or set schema_drift: evolve "
            "(load them) or ignore (skip them) in the dataset YAML",
            drift_decision=rejected,
        )
    # A header that is a CPR number (a wide export with a column per citizen) would become
    # a silver column named after it, in the catalog and every query.
    named = [redact(c) for c in extra if redact(c) != c]
    if named:
        raise SchemaBreak(
            f"{where}: new column(s) {', '.join(named)} are named like a CPR number; they "
            "cannot be added under that name. Map them to a contract field under `columns:` "
            "in the dataset YAML, or ask the sender to remove them",
            drift_decision=rejected,
        )
    # New columns carry no classification: one holding CPR numbers would reach silver in the
    # clear, so it must be declared (and pseudonymised) in the contract first.
    personal = [c for c in extra if frame[c].cast(pl.String).str.contains(_CPR_SHAPED).any()]
    if personal:
        raise SchemaBreak(
            f"{where}: new column(s) {', '.join(personal)} hold CPR-shaped values; they cannot "
            'be added unclassified. Declare them in the contract (identifier="cpr") or ask '
            "the sender to remove them",
            drift_decision=rejected,
        )
    names = {c: evolved_name(c) for c in extra}
    taken = set(frame.columns) - set(extra)
    new = list(names.values())
    clashes = sorted({n for n in new if new.count(n) > 1 or n in taken})
    if clashes:
        raise SchemaBreak(
            f"{where}: new columns map to names already taken: {clashes}; "
            "rename them under `columns:` in the dataset YAML",
            drift_decision=rejected,
        )
    return frame.rename(names), tuple(names.values())


def _type_columns(
    frame: pl.DataFrame, fields: Mapping[str, pa.Column], parse: ParseOptions
) -> pl.DataFrame:
    """Every contract field typed from its text.

    Dates and instants are parsed with their first format only, then the other formats are
    tried on the columns where that left a value unparsed: a file nearly always uses one
    format, and a failing format costs several times a succeeding one on every row."""
    typed = frame.with_columns(
        # aliased: some typings (booleans) start from a literal and would be named `literal`
        _typed(pl.col(name), column.dtype.type, parse, first_format_only=True).alias(name)
        for name, column in fields.items()
    )
    # Checked on the typed columns, not inside the parse expression: there polars would
    # parse every value twice (once for the check, once for the value).
    typed = typed.with_columns(
        _plausible(pl.col(name), column.dtype.type)
        for name, column in fields.items()
        if column.dtype.type in (pl.Date, pl.Datetime, pl.Float64, pl.Float32)
    )
    temporal = [n for n, c in fields.items() if c.dtype.type in (pl.Date, pl.Datetime)]
    if not temporal:
        return typed
    missed = frame.select(
        (pl.col(n).is_not_null() & typed.get_column(n).is_null()).any() for n in temporal
    ).row(0)
    retry = [n for n, miss in zip(temporal, missed, strict=True) if miss]
    if not retry:
        return typed
    # Only the values the first format missed are parsed again, with every format: the few
    # bad dates of a large extract would otherwise re-parse the whole column every chunk.
    retried = []
    for name in retry:
        first = typed.get_column(name)
        where = (frame.get_column(name).is_not_null() & first.is_null()).arg_true()
        again = frame.select(pl.col(name).gather(where)).select(
            _typed(pl.col(name), fields[name].dtype.type, parse).alias(name)
        )
        retried.append(first.clone().scatter(where, again.to_series()))
    return typed.with_columns(retried)


def _typed(
    text: pl.Expr, dtype: object, parse: ParseOptions, *, first_format_only: bool = False
) -> pl.Expr:
    """`text` typed as `dtype`: null where it does not parse.

    With several date formats, each format's result must have a four-digit year before the
    next format is tried (see `_plausible`); `first_format_only` leaves that check, and the
    finite check of floats, to the caller."""
    if dtype == pl.String:
        return text
    if dtype == pl.Datetime:
        formats = (
            ISO_INSTANTS[:1]
            if first_format_only
            else (*ISO_INSTANTS, *_datetime_formats(dtype, parse))
        )
        parsed = [
            _in_english(text, f).str.to_datetime(f, strict=False, time_zone="UTC", time_unit="us")
            for f in formats
        ]
        instant = parsed[0] if first_format_only else pl.coalesce(map(_four_digit_year, parsed))
        return instant if getattr(dtype, "time_zone", None) else instant.dt.replace_time_zone(None)
    if dtype == pl.Date:
        formats = (*parse.date_formats, *ISO_FORMATS)
        formats = formats[:1] if first_format_only else formats
        parsed = [_date_of(text, f) for f in formats]
        return parsed[0] if first_format_only else pl.coalesce(map(_four_digit_year, parsed))
    if dtype == pl.Boolean:
        lowered = text.str.to_lowercase()
        return (
            pl.when(lowered.is_in(["true", "1", "ja", "yes"]))
            .then(True)
            .when(lowered.is_in(["false", "0", "nej", "no"]))
            .then(False)
        )
    number, well_formed = _number_text(text, parse)
    is_float = dtype in (pl.Float64, pl.Float32)
    typed = number.cast(pl.Float64 if is_float else pl.Int64, strict=False)
    if is_float and not first_format_only:
        typed = _plausible(typed, pl.Float64)
    return typed if well_formed is None else pl.when(well_formed).then(typed)


def _datetime_formats(dtype: object, parse: ParseOptions) -> tuple[str, ...]:
    """The YAML's `date_formats` a date-time field reads, after ISO 8601's: a fagsystem
    writes `01.02.2024 13:45`, and its format was used for date fields only. A field in UTC
    takes only those with an offset (`%z`): a wall-clock time without one is the sender's
    local time, which read as UTC would be an hour or two off without a failure."""
    if not getattr(dtype, "time_zone", None):
        return parse.date_formats
    return tuple(f for f in parse.date_formats if re.search("%[#:]?z", f))


def _number_text(text: pl.Expr, parse: ParseOptions) -> tuple[pl.Expr, pl.Expr | None]:
    """The text of a number in polars' notation, and where it is well formed (None: anywhere).

    Separators are only removed where they sit where the YAML says: stripping every `.` as
    a thousands separator made `1.5` fifteen and `1,234.56` 1.23456. So a value holding the
    thousands separator must group digits in threes before the decimal mark, and under a
    decimal comma a `.` that is not the thousands separator makes the value ambiguous
    (`1.234` is 1234 to a Danish sender): such values are type failures, not guesses."""
    number, well_formed = text, None
    separator = parse.thousands_separator
    if separator in SPACE_SEPARATORS:
        # Excel and Windows in Nordic locales group digits with a no-break space (`1 234,50`
        # with U+00A0), typographers with a narrow or thin one: each is the space a YAML
        # means by `thousands_separator: " "`, which no reader can tell apart by eye.
        text = text.str.replace_all(f"[{''.join(SPACE_SEPARATORS)}]", " ")
        number, separator = text, " "
    if separator:
        mark = "," if parse.decimal_comma else "."
        group = _in_class(separator)
        grouped = rf"^[+-]?\d{{1,3}}({group}\d{{3}})+({_in_class(mark)}\d*)?$"
        well_formed = ~text.str.contains(separator, literal=True) | text.str.contains(grouped)
        number = number.str.replace_all(separator, "", literal=True)
    if parse.decimal_comma:
        if separator != ".":
            no_dot = ~text.str.contains(".", literal=True)
            well_formed = no_dot if well_formed is None else well_formed & no_dot
        number = number.str.replace(",", ".", literal=True)
    return number, well_formed


def _in_class(char: str) -> str:
    """`char` as a one-character regex class (literal whatever the character)."""
    return "[" + ("\\" + char if char in "\\]^-[" else char) + "]"


# Danish and Norwegian month names where they differ from English, the only names `%b` and
# `%B` read: `3. maj 2024` failed where `3. jan. 2024` passed, nine months in twelve.
_MONTHS = (
    ("januar", "January"),
    ("februar", "February"),
    ("marts", "March"),
    ("mars", "March"),
    ("maj", "May"),
    ("mai", "May"),
    ("juni", "June"),
    ("juli", "July"),
    ("oktober", "October"),
    ("okt", "Oct"),
    ("desember", "December"),
    ("des", "Dec"),
)


def _in_english(text: pl.Expr, fmt: str) -> pl.Expr:
    """`text` with Danish and Norwegian month names in English, where `fmt` names months."""
    if "%b" not in fmt and "%B" not in fmt and "%h" not in fmt:
        return text
    for nordic, english in _MONTHS:
        text = text.str.replace_all(rf"(?i)\b{nordic}\b", english)
    return text


def _date_of(text: pl.Expr, fmt: str) -> pl.Expr:
    """`text` as a date in `fmt`. A format with a time of day (`%Y-%m-%d %H:%M:%S`, as a
    workbook renders a date cell) gives a date only at midnight: a later time means the
    value is an instant, and dropping its time would change it silently."""
    text = _in_english(text, fmt)
    if "%H" not in fmt:
        return text.str.to_date(fmt, strict=False, exact=True)
    moment = text.str.to_datetime(fmt, strict=False, exact=True, time_unit="us")
    return pl.when(moment.dt.time() == dt.time(0)).then(moment.dt.date())


def _plausible(typed: pl.Expr, dtype: object) -> pl.Expr:
    """`typed` where a value of `dtype` can be real: dates with a four-digit year, finite
    floats. NaN and infinity parse (`NaN`, `inf`, JSON's non-standard `Infinity`, `1e400`)
    but are no municipal quantity, and would poison every sum: type failures instead."""
    if dtype in (pl.Date, pl.Datetime):
        return _four_digit_year(typed)
    return pl.when(typed.is_finite()).then(typed)


def _four_digit_year(parsed: pl.Expr) -> pl.Expr:
    """`parsed` where its year is at least 1000, else null (a type failure).

    polars reads `%Y` from fewer than four digits: `01-02-24` under `%d-%m-%Y` is the year 24,
    and under the ISO fallback `%Y-%m-%d` the 24th of February in the year 1. A two-digit
    year needs `%y` in `date_formats`; no municipal record is from before the year 1000."""
    return pl.when(parsed.dt.year() >= 1000).then(parsed)


def _type_failures(
    raw: pl.DataFrame, typed: pl.DataFrame, fields: Mapping[str, pa.Column], masked: set[str]
) -> pl.DataFrame:
    parts = []
    text = [name for name, column in fields.items() if column.dtype.type == pl.String]
    for name, column in fields.items():
        if name in text:
            continue
        bad = raw.filter(pl.col(name).is_not_null() & typed.get_column(name).is_null())
        parts.append(_failures(bad, name, f"type:{column.dtype}", name, masked))
    parts += _spreadsheet_errors(raw, text, masked)
    return pl.concat(parts) if parts else pl.DataFrame(schema=FAILURE_SCHEMA)


# The text a spreadsheet shows where a formula fails: Excel's, and LibreOffice's `Err:5NN`.
SPREADSHEET_ERRORS = (
    "#DIV/0!",
    "#N/A",
    "#REF!",
    "#VALUE!",
    "#NAME?",
    "#NUM!",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
    *(f"Err:{code}" for code in range(501, 540)),
)


def _spreadsheet_errors(raw: pl.DataFrame, text: list[str], masked: set[str]) -> list[pl.DataFrame]:
    """Failures of text columns holding a spreadsheet's error value (`#N/A`, `#REF!`): the
    formula behind the cell failed in the sender's workbook, so the text is no value (a
    department named `#N/A`). A typed column fails its typing on it already."""
    if not text or not raw.height:
        return []
    # An exact lookup: a few ms per piece of the bench extract, where a prefix test took 4x.
    errors = pl.lit(list(SPREADSHEET_ERRORS), dtype=pl.List(pl.String))
    found = raw.select(pl.col(c).is_in(errors).any() for c in text).row(0)
    return [
        _failures(raw.filter(pl.col(c).is_in(errors)), c, "excel_error", c, masked)
        for c, hit in zip(text, found, strict=True)
        if hit
    ]


def _contract_failures(
    candidates: pl.DataFrame, contract: type[pa.DataFrameModel], masked: set[str]
) -> pl.DataFrame:
    cases = contract_checks.failure_cases(candidates, contract)
    if cases is None:  # the contract needs pandera's own validation
        try:
            contract.validate(candidates, lazy=True)
        except pa.errors.SchemaErrors as errors:
            cases = errors.failure_cases
        else:
            return pl.DataFrame(schema=FAILURE_SCHEMA)
    if cases.is_empty():
        return pl.DataFrame(schema=FAILURE_SCHEMA)
    unlocated = cases.filter(pl.col("index").is_null())
    if unlocated.height:
        # Schema-level failures cannot point at rows; after typing they mean a contract bug.
        raise SchemaBreak(
            f"contract {contract.__name__} failed without row positions: "
            f"{unlocated.select('column', 'check').unique().rows()}"
        )
    fields = list(contract_columns(contract))
    # A dataframe-level check reports the whole row as its failure case, identifiers and
    # all: record it against "(row)" with no value rather than copy the row into quarantine.
    row_level = ~pl.col("column").is_in(fields)
    # Any other column may hold a CPR number all the same (an id, a free-text note): those
    # keep their value with CPR-shaped numbers masked.
    value = (
        pl.when(row_level)
        .then(None)
        .when(pl.col("column").is_in(list(masked)))
        .then(mask(pl.col("failure_case")))
        .otherwise(redacted(pl.col("failure_case").cast(pl.String)))
    )
    # Failure cases point at positions in `candidates`: back to the rows' source identity.
    located = candidates.select(pl.col(row_identity(candidates)).gather(cases.get_column("index")))
    described = cases.select(
        pl.when(row_level).then(pl.lit("(row)")).otherwise(pl.col("column")).alias("column"),
        pl.col("check").cast(pl.String),
        value.cast(pl.String).alias("value"),
    )
    return pl.concat([located, described], how="horizontal").unique(maintain_order=True)


def _failures(
    rows: pl.DataFrame, column: str, check: str, value_column: str, masked: set[str]
) -> pl.DataFrame:
    value = pl.col(value_column).cast(pl.String)
    # Personal and sensitive values keep only their shape; any other may still hold a CPR
    # number (an id, a free-text note): its CPR-shaped numbers are masked.
    value = mask(value) if value_column in masked else redacted(value)
    return rows.select(
        pl.col(SOURCE_ROW).cast(pl.Int64),
        *([pl.col(SHEET)] if SHEET in rows.columns else []),
        pl.lit(column).alias("column"),
        pl.lit(check).alias("check"),
        value.alias("value"),
    )


def key_hash(keys: Sequence[str]) -> pl.Expr:
    """A 64-bit hash of a row's key: cheap to keep for every row of a batch read in chunks.
    Equal hashes only nominate duplicates; the key values themselves decide."""
    return pl.struct(keys).hash(seed=0x6B6C).alias("_key_hash")


def repeated_keys(rows: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Rows (any order, with SOURCE_ROW) whose key an earlier source row already has."""
    ordered = rows.sort(SOURCE_ROW)
    return ordered.filter(~pl.struct(keys).is_first_distinct())


def duplicate_failures(
    rows: pl.DataFrame, keys: Sequence[str], contract: type[pa.DataFrameModel]
) -> pl.DataFrame:
    """Quarantine rows for `rows` whose key repeats an earlier row (the first row wins)."""
    return _failures(rows, ",".join(keys), "duplicate_key", keys[0], masked_columns(contract))
