"""`kommunelake` (also `python -m pipelines`): demo, load, sql, catalog, check, reload, maintain,
erase and ui.

Errors are printed as one line on stderr (what, where, what to do) with a non-zero exit;
`--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import duckdb
import polars as pl

from connectors.formats import FormatError
from lake.errors import ConfigError, LakeError, one_line
from lake.home import Home, resolve_home
from pipelines.instance import (
    initialize_instance,
    instance_yaml,
    lost_postgres,
    postgres_settings,
    require_postgres,
)

if TYPE_CHECKING:  # dagster is imported by the commands that run it, not by every command
    from dagster._utils.error import SerializableErrorInfo

    from lake.validation import ParseOptions
    from pipelines.specs import DatasetSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
KEY_ENV = "KOMMUNELAKE_PSEUDONYM_KEY"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (LakeError, FormatError, duckdb.Error) as error:
        if args.debug:
            raise
        print(f"kommunelake {args.command}: {one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # an unexpected error still gets one readable line
        if args.debug:
            raise
        if (lost := lost_postgres(error, os.environ)) is not None:
            print(f"kommunelake {args.command}: {lost}", file=sys.stderr)
            return 1
        print(
            f"kommunelake {args.command}: internal error: {type(error).__name__}: "
            f"{one_line(error)} (re-run with --debug for the traceback and report it)",
            file=sys.stderr,
        )
        return 70


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kommunelake", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="build the synthetic Demo Kommune and load everything")
    demo.add_argument("--home", help="home directory (default: KOMMUNELAKE_HOME or ./demo-home)")
    demo.add_argument("--persons", type=_positive, default=20_000, help="persons to generate")
    demo.add_argument("--seed", type=int, default=2026, help="generator seed")
    demo.set_defaults(handler=cmd_demo)

    load = sub.add_parser("load", help="materialize assets in-process")
    load.add_argument("--home")
    load.add_argument("--select", help="Dagster asset selection, e.g. 'key:silver/sick_leave+'")
    load.set_defaults(handler=cmd_load)

    sql = sub.add_parser("sql", help="query the serving layer")
    sql.add_argument("query")
    sql.add_argument("--home")
    sql.add_argument("--format", choices=["table", "csv", "json"], default="table")
    sql.set_defaults(handler=cmd_sql)

    check = sub.add_parser("check", help="validate a file against a dataset contract")
    check.add_argument("--dataset", required=True)
    check.add_argument("file", type=Path)
    check.set_defaults(handler=cmd_check)

    catalog = sub.add_parser(
        "catalog",
        help="the data catalog: datasets, their columns and the glossary",
        description="Print the data catalog to stdout, as the serving layer has it: per "
        "dataset its owner, classification, source, load mode, last load, rows and quality "
        "score, its columns, then the glossary. A home never loaded (no serving/lake.duckdb) "
        "lists the datasets its YAML defines, each marked never loaded. dcat writes DCAT-AP "
        "JSON-LD, its IRIs under KOMMUNELAKE_CATALOG_BASE_URI (default urn:kommunelake:), "
        "published by KOMMUNELAKE_PUBLISHER_NAME (required for dcat; KOMMUNELAKE_PUBLISHER_URI "
        "optional).",
    )
    catalog.add_argument("--home", help="home directory (default: KOMMUNELAKE_HOME or ./demo-home)")
    catalog.add_argument(
        "--format",
        choices=["md", "json", "dcat"],
        default="md",
        help="md: to read (default); json: for tooling; dcat: DCAT-AP JSON-LD for a data portal",
    )
    catalog.add_argument("--dataset", help="only this dataset and the concepts it carries")
    catalog.set_defaults(handler=cmd_catalog)

    reload = sub.add_parser(
        "reload", help="load a landed batch again with the current contract (release quarantine)"
    )
    reload.add_argument("--dataset", required=True)
    reload.add_argument("--batch", help="batch id (or prefix); default: the newest load")
    reload.add_argument("--home")
    reload.set_defaults(handler=cmd_reload)

    maintain = sub.add_parser(
        "maintain",
        help="compact, checkpoint and vacuum the lake's Delta tables now (the weekly job)",
    )
    maintain.add_argument("--home")
    maintain.add_argument(
        "--dataset",
        action="append",
        help="only this dataset's tables (repeatable); default: every dataset and the shared "
        "tables",
    )
    maintain.set_defaults(handler=cmd_maintain)

    erase = sub.add_parser(
        "erase", help="remove a data subject from silver, quarantine, gold and their history"
    )
    erase.add_argument(
        "--cpr",
        required=True,
        help="the subject's CPR number, or `-` to read it from stdin (keeps it out of shell "
        "history and process lists)",
    )
    erase.add_argument("--home")
    erase.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    erase.set_defaults(handler=cmd_erase)

    ui = sub.add_parser("ui", help="run the Dagster webserver and daemon on 127.0.0.1")
    ui.add_argument("--home")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=cmd_ui)
    return parser


# --- environment -----------------------------------------------------------------------------


def prepare(home: Home, *, create_key: bool = False) -> None:
    """Point this process (and Dagster) at the home: env vars, key, instance config (SQLite
    under the home, or PostgreSQL when KOMMUNELAKE_POSTGRES_HOST is set: pipelines/instance.py).

    Every command that writes calls it first, so a lake where Delta commits would not be
    atomic (a network share, S3 without conditional PUT) is refused before anything runs."""
    home.require_atomic()
    os.environ["KOMMUNELAKE_HOME"] = str(home.root)
    if not os.environ.get(KEY_ENV):
        if home.key_file.exists():
            os.environ[KEY_ENV] = home.key_file.read_text().strip()
        elif create_key:
            home.key_file.parent.mkdir(parents=True, exist_ok=True)
            home.key_file.write_text(secrets.token_hex(32) + "\n")
            home.key_file.chmod(0o600)
            os.environ[KEY_ENV] = home.key_file.read_text().strip()
            print(
                f"No {KEY_ENV} set: created a pseudonymisation key in {home.key_file} "
                "(keep it safe; the same key gives the same pseudonyms)."
            )
        else:
            raise ConfigError(
                f"{KEY_ENV} is not set and {home.key_file} does not exist: set the variable "
                "(see .env.example) or run `kommunelake demo` to create a demo key"
            )
    # PostgreSQL instance storage (KOMMUNELAKE_POSTGRES_*) is checked before anything runs.
    if (postgres := postgres_settings(os.environ)) is not None:
        require_postgres(postgres)
    home.dagster_home.mkdir(parents=True, exist_ok=True)
    target = home.dagster_home / "dagster.yaml"
    source = REPO_ROOT / "dagster.yaml"
    if source.exists():
        text = instance_yaml(source.read_text(), os.environ)
        if not target.exists() or target.read_text() != text:
            # Replaced whole: a command starting beside this one reads the old file or the
            # new one, never a truncated one.
            staged = target.with_name(f".dagster.yaml.{os.getpid()}")
            staged.write_text(text)
            staged.replace(target)
    os.environ["DAGSTER_HOME"] = str(home.dagster_home)
    initialize_instance(home.dagster_home)


class _Stderr(logging.StreamHandler):
    """A handler writing to `sys.stderr` as it is at each record, like Python's last-resort
    handler: the one at setup may be closed by then (a test's captured stream), and a
    failing handler prints the exception being handled, with whatever data it quotes."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:  # read at each record, not kept
        return sys.stderr


def _progress_logging() -> None:
    from pipelines.connector_logs import CONNECTOR_LOGGERS

    handler = _Stderr()
    handler.setFormatter(logging.Formatter("  %(message)s"))
    logger = logging.getLogger("kommunelake")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    # The connectors' warnings (a retry, an SFTP file left on the server) too: in a run,
    # Dagster's handler on their loggers keeps Python's last-resort stderr output from them.
    warnings = _Stderr()
    warnings.setFormatter(handler.formatter)
    warnings.setLevel(logging.WARNING)
    for name in CONNECTOR_LOGGERS:
        logging.getLogger(name).handlers[:] = [warnings]


# --- commands --------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from connectors.demo import generate
    from connectors.demo.services import DemoServices

    home = resolve_home(args.home)
    home.require_atomic()  # before generating anything (prepare() checks again, cheaply)
    print(f"Building Demo Kommune ({args.persons:,} synthetic persons) in {home.root} ...")
    summary = generate(home.root, persons=args.persons, seed=args.seed)
    for name, dataset in sorted(summary.datasets.items()):
        print(f"  wrote drop/{name}/{dataset.file} ({dataset.rows:,} rows)")
    prepare(home, create_key=True)
    # The registers, the statistics table, CVR, an open-data portal and a vendor API are also
    # served over HTTP on 127.0.0.1, so the API datasets load through their real connectors.
    with DemoServices(persons=args.persons, seed=args.seed) as urls:
        os.environ.update(urls.environment())
        print(
            f"Serving the demo registers at {urls.datafordeler} and statistics at {urls.statbank}"
        )
        print("Loading every dataset through Dagster ...")
        result = _materialize(None)
    _print_summary(home, result)
    _print_next_steps(home)
    return 0 if result.success else 1


def cmd_load(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    prepare(home)
    result = _materialize(args.select)
    _print_summary(home, result)
    return 0 if result.success else 1


def cmd_maintain(args: argparse.Namespace) -> int:
    """The weekly `maintenance` job, run in this process: for a lake whose loads run from
    cron or by hand, without the Dagster daemon that runs the schedule."""
    from pipelines.maintenance_assets import maintenance_key
    from pipelines.specs import DATASETS_DIR, read_specs

    home = resolve_home(args.home)
    prepare(home)
    names = {spec.name for spec in read_specs()[0]}
    if unknown := sorted(set(args.dataset or ()) - names):
        raise ConfigError(
            f"--dataset {', '.join(unknown)}: no such dataset in {DATASETS_DIR}; "
            f"datasets: {', '.join(sorted(names))}"
        )
    select = (
        " or ".join(f"key:{maintenance_key(name).to_user_string()}" for name in args.dataset)
        if args.dataset
        else "group:maintenance"
    )
    result = _materialize(select, maintenance=True)
    _print_maintenance_summary(result)
    return 0 if result.success else 1


def cmd_sql(args: argparse.Namespace) -> int:
    from lake import connect

    con = connect(args.home)
    try:
        frame = con.sql(args.query)
        if frame is None:
            return 0
        result = _writable(frame, args.format).pl()
    finally:
        con.close()
    if args.format == "csv":
        sys.stdout.write(result.write_csv())
    elif args.format == "json":
        sys.stdout.write(result.write_json() + "\n")
    else:
        # Piped output is not wrapped; on a terminal, use its width.
        width = shutil.get_terminal_size((10_000, 40)).columns if sys.stdout.isatty() else 10_000
        with pl.Config(
            tbl_rows=200,
            tbl_cols=50,
            fmt_str_lengths=60,
            tbl_width_chars=width,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
        ):
            print(_terminal_safe(result))
    return 0


# Control characters but newline and tab, C1 included (0x9b starts a terminal command too).
_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _terminal_safe(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with control characters in its text written as escapes (`\\x1b`), for the
    table on a terminal: a delivered value holding an escape sequence would otherwise clear
    the screen or rewrite what the operator reads. CSV and JSON keep the values as stored."""

    def escaped(value: str) -> str:
        return _TERMINAL_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)

    holding = [
        name
        for name, dtype in frame.schema.items()
        if dtype == pl.String
        and frame.get_column(name).str.contains(_TERMINAL_CONTROL.pattern).any()
    ]
    return frame.with_columns(
        pl.col(name).map_elements(escaped, return_dtype=pl.String) for name in holding
    )


# DuckDB types polars cannot take (interval, union) or shows as bytes (bit), and nested types.
_AS_TEXT = {"interval", "union", "bit"}
_NESTED = {"list", "array", "struct", "map"}


def _type_ids(dtype: duckdb.sqltypes.DuckDBPyType) -> set[str]:
    """A DuckDB type's id and those of every type nested in it."""
    ids = {dtype.id}
    if dtype.id in _NESTED | {"union"}:
        for _, child in dtype.children:
            if isinstance(child, duckdb.sqltypes.DuckDBPyType):  # an array's size is an int
                ids |= _type_ids(child)
    return ids


def _writable(relation: duckdb.DuckDBPyRelation, fmt: str) -> duckdb.DuckDBPyRelation:
    """The result with every column in a type the output format can write.

    polars refuses intervals and unions, CSV has no lists, structs or maps, and JSON no
    bytes (polars panicked): DuckDB renders those as text (nested ones as JSON text), as
    `select ...::varchar` or `to_json(...)` would. Columns are picked by position, so
    duplicate names keep working."""
    exprs, changed = [], False
    for position, dtype in enumerate(relation.types, 1):
        ids = _type_ids(dtype)
        as_text = bool(ids & _AS_TEXT) or (fmt != "table" and "blob" in ids)
        if dtype.id in _NESTED and (fmt == "csv" or as_text):
            exprs.append(f"to_json(#{position})::VARCHAR")
        elif as_text:
            exprs.append(f"CAST(#{position} AS VARCHAR)")
        else:
            exprs.append(f"#{position}")
            continue
        changed = True
    if not changed:
        return relation
    names = (sql_identifier(name) for name in relation.columns)
    return relation.project(", ".join(f"{e} AS {n}" for e, n in zip(exprs, names, strict=True)))


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def cmd_catalog(args: argparse.Namespace) -> int:
    from pipelines.catalog_export import render

    sys.stdout.write(render(resolve_home(args.home), args.format, args.dataset))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from lake.privacy import redact, shown_name
    from pipelines.file_check import check_file
    from pipelines.ingest import emptying_snapshot, skipped_message
    from pipelines.specs import spec_by_name
    from pipelines.total_rows import total_rows_hint
    from pipelines.trailer_record import trailer_hint

    spec = spec_by_name(args.dataset)
    shown = shown_name(str(args.file))  # a per-citizen export may be named after its CPR
    if args.file.is_dir():
        raise ConfigError(f"{shown} is a folder: give one file to check")
    if not args.file.is_file():
        raise ConfigError(f"{shown}: no such file")
    _progress_logging()  # a large export takes a while: say how far it is
    try:
        result = check_file(spec, args.file)
    except (FormatError, LakeError) as error:
        # The same text a load records: a parser's excerpt may quote a CPR number.
        print(f"REJECTED {shown}: {redact(one_line(error))}")
        return 1
    emptying = emptying_snapshot(spec, rows_in=result.rows_in, rows_valid=result.rows_valid)
    if emptying is not None and not result.rows_in:
        # A header-only file: what a load would refuse is refused here too.
        refused = FormatError(
            shown_name(args.file.name),
            emptying,
            "A load refuses it once silver holds rows, keeping the last snapshot: ask the"
            " sender for the complete export",
        )
        print(f"REJECTED {shown}: {refused}")
        return 1
    print(
        f"{shown} against {spec.name} ({spec.contract_ref}): {result.rows_in:,} rows, "
        f"{result.rows_valid:,} valid, {result.rows_quarantined:,} failing"
    )
    if result.rows_skipped:
        print(f"  {skipped_message(result.rows_skipped)}")
    if result.added_columns:
        added = ", ".join(
            f"{header} as {name}"
            for header, name in zip(result.extra_columns, result.added_columns, strict=True)
        )
        print(f"  columns not in the contract (a load adds them, schema_drift: evolve): {added}")
    elif result.extra_columns:
        print(f"  columns not in the contract (ignored): {', '.join(result.extra_columns)}")
    for column, check, rows in result.counts:
        examples = result.examples.filter((pl.col("column") == column) & (pl.col("check") == check))
        where = ", ".join(
            (f"sheet {redact(row['_sheet'])!r} " if row.get("_sheet") else "")
            + f"row {row['_source_row']}"
            + (f" ({row['value']!r})" if row["value"] is not None else "")
            for row in examples.iter_rows(named=True)
        )
        print(f"  {column}: {check}: {rows:,} row(s), e.g. {where}")
    if result.total_rows:
        print(f"  {total_rows_hint(spec, result.total_rows)}")
    if result.trailer_line is not None:
        print(f"  {trailer_hint(result.trailer_line)}")
    for hint in _parse_hints(spec.parse, [check for _, check, _ in result.counts]):
        print(f"  {hint}")
    for hint in _accounting_negatives(result.accounting):
        print(f"  {hint}")
    for hint in _serial_dates(result.examples):
        print(f"  {hint}")
    for hint in _zero_dates(result.examples):
        print(f"  {hint}")
    for hint in _numbers_with_units(result.examples):
        print(f"  {hint}")
    for hint in _excel_errors(result.examples):
        print(f"  {hint}")
    for hint in _cpr_without_leading_zero(spec, result.examples):
        print(f"  {hint}")
    if emptying is not None:
        print(f"  {emptying}: a load refuses it (once silver.{spec.name} holds rows)")
    markers = sorted({v for v in result.examples["value"].drop_nulls() if _MARKER.fullmatch(v)})
    if markers:
        listed = ", ".join(f'"{m}"' for m in markers)
        print(
            f"  {listed} look(s) like a marker for a missing value (statistics exports write"
            f" `..` or `:`): list it under `parse: null_values: [{listed}]` in the dataset"
            " YAML to read it as null"
        )
    return 1 if result.rows_quarantined else 0


# Punctuation alone, where a number or date belongs; Word and Excel make `-` an en or em dash.
_MARKER = re.compile(r"[.:*?—–-]{1,3}")


def _accounting_negatives(found: pl.DataFrame) -> list[str]:
    """A line per numeric column with an accounting negative (`file_check.accounting_negatives`):
    the generic type failure and number hint never say that the parentheses or the trailing
    minus are the problem."""
    return [
        f"{row['column']}: row {row['_source_row']} holds {row['value']!r}, an accounting negative"
        f" (a minus written {_negative_form(row['value'])}), which is no number: ask the sender"
        " to export negative numbers with a minus sign (-1.234,50)"
        for row in found.iter_rows(named=True)
    ]


def _negative_form(value: str) -> str:
    return "as parentheses" if value.startswith("(") else "after the number, as SAP lists do"


# A date as Excel stores it, days since 1899-12-30 (45323 is 2024-02-01), written into a CSV
# from a column not formatted as a date; digits may be masked to N in a personal column.
_SERIAL_DATE = re.compile(r"([\dN]{5})(?:[.,]0+)?")
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def _serial_dates(examples: pl.DataFrame) -> list[str]:
    """A line per date column whose failing examples are Excel serial numbers: no
    `date_formats` entry reads them, which the date hint would suggest."""
    lines = []
    seen: set[str] = set()
    for row in examples.filter(pl.col("check") == "type:Date").iter_rows(named=True):
        found = _SERIAL_DATE.fullmatch(row["value"] or "")
        if row["column"] in seen or found is None:
            continue
        seen.add(row["column"])
        digits = found.group(1)
        day = "" if "N" in digits else f"; {digits} is {_EXCEL_EPOCH + dt.timedelta(int(digits))}"
        lines.append(
            f"{row['column']}: row {row['_source_row']} holds {row['value']!r}, which looks"
            f" like an Excel date serial number (days since 1899-12-30{day}), which no date"
            " format reads: ask the sender to format the column as a date before saving the file"
        )
    return lines


# A date of zeros, `00-00-0000` or `0000-00-00` (with a time of zeros too), as fagsystemer
# write "no date".
_ZERO_DATE = re.compile(r"0{2,4}(?:[-./]0{2,4}){2}(?:[ T]0{2}(?::0{2}){1,2})?|0{8}")


def _zero_dates(examples: pl.DataFrame) -> list[str]:
    """A line per date or date-time column failing on a date of zeros: the date hint said
    to add a format, and none reads the day 0 of month 0."""
    dated = (pl.col("check") == "type:Date") | pl.col("check").str.starts_with("type:Datetime")
    lines = []
    seen: set[str] = set()
    for row in examples.filter(dated).iter_rows(named=True):
        value = row["value"] or ""
        if row["column"] in seen or not _ZERO_DATE.fullmatch(value):
            continue
        seen.add(row["column"])
        lines.append(
            f"{row['column']}: row {row['_source_row']} holds {value!r}, a date of zeros, as"
            " fagsystemer write no date: list it under `parse: null_values:"
            f' ["{value}"]` in the dataset YAML to read it as null (a field that may not be'
            " null then fails as such)"
        )
    return lines


# A number with its unit or currency written beside it, as a report formats it: `12,5 %`,
# `kr. 1.234,50`, `1.234,50 DKK`, `€ 12`; digits may be masked to N in a personal column.
_UNIT = r"%|‰|kr\.?|dkk|nok|sek|eur|€|\$"
_NUMBER = r"-?[\dN][\dN.,'\s\u00a0\u202f]*?"
_WITH_UNIT = re.compile(rf"(?i)(?:({_UNIT})\s*)?{_NUMBER}(?:\s*({_UNIT}))?")
# The same units in a personal column, whose letters are masked: `kr.` is `aa.`, DKK `aaa`.
_MASKED_UNIT = r"%|‰|aa\.?|aaa|€|\$"
_WITH_MASKED_UNIT = re.compile(rf"(?:({_MASKED_UNIT})\s*)?{_NUMBER}(?:\s*({_MASKED_UNIT}))?")


def _numbers_with_units(examples: pl.DataFrame) -> list[str]:
    """A line per numeric column whose failing examples carry a unit or currency sign,
    which no `parse:` setting reads: the number hint alone points at decimal commas."""
    from pipelines.file_check import NUMERIC_CHECKS

    lines = []
    seen: set[str] = set()
    numeric = pl.any_horizontal(pl.col("check").str.starts_with(p) for p in NUMERIC_CHECKS)
    for row in examples.filter(numeric).iter_rows(named=True):
        value = row["value"] or ""
        found = _WITH_UNIT.fullmatch(value) or _WITH_MASKED_UNIT.fullmatch(value)
        if row["column"] in seen or found is None or not (found.group(1) or found.group(2)):
            continue
        seen.add(row["column"])
        lines.append(
            f"{row['column']}: row {row['_source_row']} holds {row['value']!r}, a number with"
            f" its unit ({(found.group(1) or found.group(2)).strip()}), which no `parse:`"
            " setting reads: ask the sender to export the number alone (the unit belongs in"
            " the column's name or the contract's description)"
        )
    return lines


# An error value Excel shows where a formula fails (LibreOffice writes `Err:502`), which the
# workbook readers hand on as its text; in a personal column it is masked (`#aaa/N!`).
_EXCEL_ERROR = re.compile(
    r"#(?:DIV/0!|N/A|REF!|VALUE!|NAME\?|NUM!|NULL!)|Err:\d{3}"
    r"|#(?:aaa/N!|a/a|aaa!|aaaaa!|aaaa\?|aaaa!)|aaa:NNN"
)


def _excel_errors(examples: pl.DataFrame) -> list[str]:
    """A line per column whose failing examples are Excel error values: in a typed column
    the number and date hints would send the reader to `parse:`, which no setting there
    fixes; in a text column (`excel_error`) the check's name alone says no remedy."""
    lines = []
    seen: set[str] = set()
    failing = pl.col("check").str.starts_with("type:") | (pl.col("check") == "excel_error")
    for row in examples.filter(failing).iter_rows(named=True):
        if row["column"] in seen or not _EXCEL_ERROR.fullmatch(row["value"] or ""):
            continue
        seen.add(row["column"])
        empty = (
            "; or, to load it as empty, list it under `parse: null_values`"
            if row["check"] == "excel_error"
            else ""
        )
        lines.append(
            f"{row['column']}: row {row['_source_row']} holds {row['value']!r}, an Excel error"
            " value (#DIV/0!, #N/A, #REF!, ...): the formula behind the cell fails in the"
            " sender's workbook; ask the sender to fix it, or to leave the cell empty where"
            f" there is no value{empty}"
        )
    return lines


# A CPR number of someone born on the 1st to 9th of a month, stored as a number in Excel:
# nine digits, the leading zero gone (shown masked, as every CPR number is).
_NINE_DIGITS = re.compile(r"[\dN]{9}(?:[.,]0+)?")


def _cpr_without_leading_zero(spec: DatasetSpec, examples: pl.DataFrame) -> list[str]:
    """A line per CPR column whose failing examples have nine digits."""
    from lake.validation import identifier_columns

    cpr = {c for c, domain in identifier_columns(spec.contract).items() if domain == "cpr"}
    lines = []
    for column in sorted(cpr):
        failing = examples.filter(pl.col("column") == column)["value"].drop_nulls()
        first = next((v for v in failing if _NINE_DIGITS.fullmatch(v)), None)
        if first is not None:
            lines.append(
                f"{column}: values such as {first!r} have nine digits: a CPR number that lost"
                " its leading zero, stored as a number in Excel; ask the sender to format the"
                " column as text, or with the custom format 0000000000, before exporting"
            )
    return lines


def _parse_hints(parse: ParseOptions, checks: list[str]) -> list[str]:
    """How the YAML's `parse:` reads the values a type check refused: the usual cause of a
    file failing by the thousand is an export writing dates or numbers another way."""
    from lake.validation import ISO_FORMATS
    from pipelines.file_check import NUMERIC_CHECKS

    hints = []
    if any(check == "type:Date" for check in checks):
        formats = ", ".join(repr(f) for f in (*parse.date_formats, *ISO_FORMATS[:1]))
        hints.append(
            f"dates are read as {formats}: if the file writes them another way, add its"
            " format to `parse: date_formats:` in the dataset YAML"
        )
    if any(check.startswith("type:Datetime") for check in checks):
        listed = "".join(f", {f!r}" for f in parse.date_formats)
        hints.append(
            f"date-times are read as ISO 8601 ('2024-02-01T13:45:00'){listed}: if the file"
            " writes them another way, add its format to `parse: date_formats:` in the dataset"
            " YAML (e.g. '%d.%m.%Y %H:%M'); a field in UTC takes only formats with an offset"
            " (%z), as a time without one is the sender's local time"
        )
    if any(check.startswith(NUMERIC_CHECKS) for check in checks):
        decimal = "a decimal comma" if parse.decimal_comma else "a decimal point"
        thousands = parse.thousands_separator
        grouping = f"{thousands!r} between thousands" if thousands else "no thousands separator"
        hints.append(
            f"numbers are read with {decimal} and {grouping}: if the file writes them another"
            " way, set `parse: decimal_comma:` / `thousands_separator:` in the dataset YAML"
        )

    return hints


def cmd_reload(args: argparse.Namespace) -> int:
    from lake.privacy import key_from_text
    from pipelines.ingest import reload_batch
    from pipelines.specs import spec_by_name

    home = resolve_home(args.home)
    prepare(home)
    spec = spec_by_name(args.dataset)
    _progress_logging()
    reload_id = f"cli-reload-{uuid.uuid4()}"
    result = reload_batch(spec, home, key_from_text(os.environ[KEY_ENV]), args.batch, reload_id)
    if result.status == "rejected":
        print(f"REJECTED {result.source_file}: {result.message}")
        return 1
    print(
        f"Reloaded {spec.name} batch {result.batch_id} ({result.source_file}): "
        f"{result.rows_valid:,} valid, {result.rows_quarantined:,} still quarantined."
    )
    print("Rebuilding what depends on it ...")
    outcome = _materialize(f"key:silver/{spec.name}+")
    _print_summary(home, outcome, also_run_ids={reload_id: "reloaded"})
    return 0 if outcome.success else 1


def cmd_erase(args: argparse.Namespace) -> int:
    """Erase a data subject (pipelines/erasure.py); not while a load runs (README)."""
    from lake.privacy import key_from_text
    from pipelines.erasure import cpr_number, erase_subject
    from pipelines.serving_asset import serve
    from pipelines.specs import read_specs

    text = sys.stdin.readline() if args.cpr == "-" else args.cpr
    number = cpr_number(text)  # before anything else: a typo costs nothing
    home = resolve_home(args.home)
    prepare(home)
    if not args.dry_run:
        _refuse_running_loads()
    report = erase_subject(home, key_from_text(os.environ[KEY_ENV]), number, dry_run=args.dry_run)
    for holding in report.landing:
        where = (
            "in its file name"
            if holding.in_name and not holding.rows
            else (f"{holding.rows:,} row(s)")
        )
        print(
            f"  landing: {holding.dataset} batch {holding.batch_id} ({holding.shown_name}): {where}"
        )
    for line in report.unreadable:
        print(f"  landing, could not be read (look at it by hand): {line}")
    if not report.found:
        print("The subject was found nowhere in the lake (silver, quarantine, gold, landing).")
    if args.dry_run:
        total = sum(report.rows.values())
        print(
            f"Dry run: {total:,} row(s) would be removed ({report.by_layer()}); "
            "nothing was changed."
        )
        return 0
    specs, broken = read_specs()
    serve(home, specs, [*(s.name for s in specs), *(b.name for b in broken)])
    if not report.found:
        print(
            "They are in the erasure register all the same, so a later delivery is left out; "
            f"audit row {report.erasure_id} in quality.erasures."
        )
    else:
        print(
            f"Erased: {sum(report.rows.values()):,} row(s) removed ({report.by_layer()}), "
            "history of "
            f"{len(report.forgotten)} table(s) forgotten, serving rebuilt; audit row "
            f"{report.erasure_id} in quality.erasures."
        )
    if report.landing:
        print(
            f"{len(report.landing)} landed delivery(ies) still hold the subject as received "
            "(the evidence of what the vendor sent; never served): see README, Privacy, "
            "for what to do with them."
        )
    return 0


def _refuse_running_loads() -> None:
    """Erasure takes none of the loads' locks: a load committing meanwhile could write the
    subject back from rows it read before the register had them. So it refuses to start
    while the home's Dagster instance has a run in progress (runs of a killed `kommunelake`
    process on this host are marked failed first, as `load` does)."""
    import dagster as dg

    from pipelines.abandoned_runs import fail_abandoned_runs

    instance = dg.DagsterInstance.get()
    for line in fail_abandoned_runs(instance, daemon_runs=False):
        print(f"  earlier {line}")
    busy = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.CANCELING,
            ]
        ),
        limit=1,
    )
    if busy:
        run = busy[0].dagster_run
        raise LakeError(
            f"run {run.run_id} ({run.status.value}) is in progress on this home's Dagster "
            "instance; nothing was erased. Erase when no load runs: wait for it to finish "
            "(or stop it in the UI) and run the command again"
        )


def cmd_ui(args: argparse.Namespace) -> int:
    home = resolve_home(args.home)
    prepare(home)
    workspace = str(REPO_ROOT / "workspace.yaml")
    print(f"Dagster UI on http://127.0.0.1:{args.port} (home {home.root}); Ctrl-C stops it.")
    # SIGTERM (a service manager, `kill`) and SIGINT stop both children instead of orphaning them.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)  # also when started with SIGINT ignored
    # The scripts live beside this interpreter, which need not be on PATH (.venv/bin/...).
    scripts = Path(sys.executable).parent
    procs = [
        subprocess.Popen(
            [
                str(scripts / "dagster-webserver"),
                "-h",
                "127.0.0.1",
                "-p",
                str(args.port),
                "-w",
                workspace,
            ]
        ),
        subprocess.Popen([str(scripts / "dagster-daemon"), "run", "-w", workspace]),
    ]
    ended = None  # the child that stopped by itself, if one did
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        ended = next(p for p in procs if p.poll() is not None)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)
    if ended is not None:
        # A webserver that could not bind its port, or a daemon that lost its instance,
        # ended `ui` with exit 0 and no line of ours: a service manager saw a clean stop.
        name = Path(str(ended.args[0])).name
        raise LakeError(
            f"{name} stopped by itself (exit code {ended.returncode}; its output is above), "
            f"so the UI on port {args.port} was shut down: fix what it reports (a port in "
            "use: --port; the instance's database: KOMMUNELAKE_POSTGRES_*) and start it again"
        )
    return 0


# --- helpers ---------------------------------------------------------------------------------


def _materialize(select: str | None, *, maintenance: bool = False):
    """Run the selected assets in this process. Loads never include maintenance (a
    `key:silver/x+` selection would otherwise compact and vacuum x too); `maintain` runs
    only maintenance."""
    import dagster as dg

    from pipelines.abandoned_runs import WORKER_TAG, fail_abandoned_runs, this_worker
    from pipelines.definitions import build_assets
    from pipelines.maintenance_assets import maintenance_assets
    from pipelines.resources import lake_resource
    from pipelines.specs import read_specs

    _progress_logging()
    if maintenance:
        specs, _ = read_specs()
        assets = maintenance_assets(specs)
    else:
        assets = build_assets()
    selection = _selection(select, assets) if select else None
    instance = dg.DagsterInstance.get()
    for line in fail_abandoned_runs(instance, daemon_runs=False):
        print(f"  earlier {line}")
    return dg.materialize(
        assets,
        selection=selection,
        resources={"lake": lake_resource()},
        instance=instance,
        raise_on_error=False,
        tags={
            "kommunelake/launched_by": "cli",
            # Found again if this process is killed (pipelines/abandoned_runs.py).
            WORKER_TAG: this_worker(),
            # The daemon cannot re-execute an in-process run; the user runs the command again.
            "dagster/max_retries": "0",
        },
        # Our own summary says what failed in one line each; Dagster's console logger would
        # add tracebacks. The full event log is in the instance (and the UI).
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )


_SELECT_EXAMPLE = "e.g. 'key:silver/sick_leave+' (a dataset and what depends on it) or 'group:hr'"


def _selection(select: str, assets: list):
    """The `--select` text as a Dagster selection that picks at least one asset or check: a
    typo in a dataset's name would otherwise run nothing and report every check passed."""
    import dagster as dg
    from dagster._core.definitions.assets.graph.asset_graph import AssetGraph

    try:
        with warnings.catch_warnings():
            # `group:` selections warn about a beta parameter of Dagster's own parser
            # that the user never passed.
            warnings.simplefilter("ignore", dg.BetaWarning)
            selection = dg.AssetSelection.from_string(select)
    except dg.DagsterError as error:
        raise ConfigError(
            f"--select {select!r} is not a Dagster asset selection ({one_line(error)}); "
            f"{_SELECT_EXAMPLE}"
        ) from error
    graph = AssetGraph.from_assets(assets)
    if not selection.resolve(graph) and not selection.resolve_checks(graph):
        datasets = sorted(k.path[-1] for k in graph.get_all_asset_keys() if k.path[0] == "silver")
        raise ConfigError(
            f"--select {select!r} matches no asset; {_SELECT_EXAMPLE}; "
            f"datasets: {', '.join(datasets)}"
        )
    return selection


def _print_summary(home: Home, result, also_run_ids: dict[str, str] | None = None) -> None:
    from lake.quality import runs

    history = runs(home)
    latest = (
        history.sort("finished_at").group_by("dataset", maintain_order=True).last().sort("dataset")
    )
    this_run = set(
        history.filter(pl.col("dagster_run_id") == result.run_id).get_column("dataset").to_list()
    )
    step_failures = _step_failures(result)
    print()
    # As wide as the longest name, so a user's long dataset name keeps the columns aligned.
    width = max([20, *(len(name) for name in latest.get_column("dataset"))]) + 2
    print(f"{'dataset':<{width}}{'rows in':>10}{'valid':>10}{'quarantined':>13}  status")
    for row in latest.iter_rows(named=True):
        status = row["status"] if row["dataset"] in this_run else "unchanged"
        status = (also_run_ids or {}).get(row["dagster_run_id"], status)
        if f"silver__{row['dataset']}" in step_failures:
            # Its load failed before recording a batch (e.g. the lake refused a breaking
            # schema change): the row above is an earlier load, not this run's.
            status = "FAILED, see below; last load"
        print(
            f"{row['dataset']:<{width}}{row['rows_in']:>10,}{row['rows_valid']:>10,}"
            f"{row['rows_quarantined']:>13,}  {status} ({row['source_file']})"
        )
        if row["status"] == "rejected":
            print(f"{'':<{width}}{row['message']}")
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    asset_width = max([28, *(len(e.asset_key.to_user_string()) for e in failed)])
    check_width = max([26, *(len(e.check_name) for e in failed)])
    print()
    for severity, title in (
        ("ERROR", "Failed checks (downstream blocked):"),
        ("WARN", "Checks with findings (rows quarantined, load went on):"),
    ):
        found = [e for e in failed if e.severity.value == severity]
        if found:
            print(title)
        for e in found:
            detail = e.description or ", ".join(
                f"{k} {v.value}" for k, v in e.metadata.items() if k in _SUMMARY_KEYS
            )
            print(
                f"  {e.asset_key.to_user_string():<{asset_width}} "
                f"{e.check_name:<{check_width}} {detail}"
            )
    if not failed:
        # A failed step's checks never ran: "all passed" would say more than is known.
        print("All checks that ran passed." if step_failures else "All checks passed.")
    if any(e.severity.value == "WARN" for e in failed):
        print('Quarantined rows: kommunelake sql "select * from quality.quarantine"')
    for step_key, error in step_failures.items():
        print(f"FAILED {step_key}: {_error_text(error)}", file=sys.stderr)


def _print_maintenance_summary(result) -> None:
    """One line per maintained asset: files before and after compaction and files vacuumed
    (a dataset's quarantine table in brackets); assets whose table does not exist yet say so."""
    done = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        done[materialization.asset_key] = {k: v.value for k, v in materialization.metadata.items()}
    print()
    print(f"{'asset':<34}{'files before':>13}{'after':>7}{'vacuumed':>10}")
    for key, meta in sorted(done.items(), key=lambda item: item[0].to_user_string()):
        line = (
            f"{key.to_user_string():<34}{meta['files_before']:>13,}{meta['files_after']:>7,}"
            f"{meta['files_vacuumed']:>10,}"
        )
        if "quarantine_files_before" in meta:
            line += (
                f"  (quarantine {meta['quarantine_files_before']:,} → "
                f"{meta['quarantine_files_after']:,}, {meta['quarantine_files_vacuumed']:,} "
                "vacuumed)"
            )
        elif "tables" in meta:
            line += f"  ({meta['tables']} shared tables)"
        print(line)
    failures = _step_failures(result)
    for event in result.get_step_success_events():
        step = event.step_key
        if not any(step == "__".join(key.path) for key in done):
            print(f"{step.replace('__', '/', 1):<34}  no table yet: nothing to maintain")
    for step_key, error in failures.items():
        print(f"FAILED {step_key}: {_error_text(error)}", file=sys.stderr)


def _step_failures(result) -> dict[str, SerializableErrorInfo | None]:
    """Each failed step's own error, by step key; blocking checks are left out (the summary
    lists them with their counts)."""
    failures: dict[str, SerializableErrorInfo | None] = {}
    for event in result.all_events if not result.success else ():
        if event.is_step_failure:
            error = event.step_failure_data.error
            # Dagster wraps the asset's own error; that one says what, where and what to do,
            # the causes below it (httpx's, the OSError) only the symptom.
            while error is not None and error.cause is not None and _dagster_wrapper(error):
                error = error.cause
            if error is None or error.cls_name != "DagsterAssetCheckFailedError":
                failures[event.step_key] = error
    return failures


def _dagster_wrapper(error: SerializableErrorInfo) -> bool:
    """An error Dagster raises around user code (DagsterExecutionStepExecutionError, ...)."""
    return error.cls_name is not None and error.cls_name.startswith("Dagster")


def _error_text(error: SerializableErrorInfo | None) -> str:
    """A step's error in one line, without the Python class path Dagster puts in front."""
    if error is None:
        return "unknown error"
    message = one_line(error.message)
    head, _, rest = message.partition(": ")
    return rest if rest and head.rsplit(".", 1)[-1] == error.cls_name else message


_SUMMARY_KEYS = (
    "rows_quarantined",
    "share_quarantined",  # quarantine_threshold's only count, with the limit it exceeded
    "error_above",
    "file",  # quarantine_threshold: the file judged, when several loaded at once
    "duplicate_rows",
    "rows_without_match",
    "new_columns",
    "deviation",
)


def _print_next_steps(home: Home) -> None:
    print(f"""
Next:
  make ui                          Dagster UI on http://127.0.0.1:3000 (assets, checks, runs)
  kommunelake sql "select * from gold.population_by_district"
  kommunelake sql "select dataset, \\"check\\", count(*) from quality.quarantine group by all"
  kommunelake catalog              what is there: datasets, columns, glossary
  KOMMUNELAKE_PUBLISHER_NAME='Demo Kommune' kommunelake catalog --format dcat   (DCAT-AP)
  notebook / python:               from lake import connect; con = connect()
                                   (home: {home.root}; set KOMMUNELAKE_HOME to use another)""")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _positive(text: str) -> int:
    value = int(text) if text.isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


if __name__ == "__main__":  # `python -m pipelines.cli`, as well as `python -m pipelines`
    raise SystemExit(main())
