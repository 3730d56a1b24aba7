"""`kommunelake erase`: remove one data subject from every dataset that holds CPR numbers.

Plain functions over the dataset specs (no Dagster): the datasets are those whose contract
pseudonymises a field as a CPR number (`identifier="cpr"`), found from the YAMLs, so a new
dataset is covered without an edit here. Per dataset, the subject's rows leave silver
(current rows and SCD2/bitemporal history alike: the same table), its quarantine and
quality.deletions; the gold tables that read those datasets are recomputed; then the
history of all of them is forgotten (lake/erasure.py) and an audit row is written to
quality.erasures. The serving file is rebuilt last.

Quarantine rows hold the failing value masked, not the pseudonym. Which of them are the
subject's is read from landing: each landed delivery of the dataset is read again (raw, as
the reader gives it, before any contract), and the rows whose CPR column holds the number
give (batch, source row), which is how quarantine rows are named. The same reading finds
the landed files that hold the subject, which the command reports: landing keeps the
vendor's bytes as received, and only an operator may decide what happens to them.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import polars as pl

from connectors.formats import FormatError, iter_table
from lake import erasure, quality
from lake.errors import ConfigError, LakeError, one_line
from lake.home import Home
from lake.landing import LandedFile, local_copy, manifest
from lake.privacy import pseudonym, pseudonyms, redact, redacted, shown_name
from lake.scratch import scratch_folder
from lake.tables import open_table
from lake.validation import SHEET, SOURCE_ROW
from pipelines.gold.models import MODELS, GoldModel, build
from pipelines.ingest import reader_options
from pipelines.specs import DatasetSpec, read_specs
from schemas.checks import is_valid_cpr

# CPR numbers of a delivery's newest batch compared with silver, to tell a wrong key.
KEY_SAMPLE = 1_000
_CPR_TEXT = re.compile(r"\d{6}-?\d{4}")


@dataclass(frozen=True)
class Holding:
    """A landed delivery holding the subject (in rows, or in its file name)."""

    dataset: str
    batch_id: str
    shown_name: str  # privacy.shown_name: CPR-shaped numbers masked
    rows: int
    in_name: bool = False


@dataclass
class ErasureReport:
    dry_run: bool
    rows: dict[str, int] = field(default_factory=dict)  # "silver.x" → rows (to be) removed
    recomputed: list[str] = field(default_factory=list)  # gold tables (to be) recomputed
    landing: list[Holding] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # landed files that could not be read
    forgotten: list[str] = field(default_factory=list)  # tables whose history went
    erasure_id: str | None = None
    registered: bool = False  # newly in the erasure register

    @property
    def found(self) -> bool:
        return bool(self.landing or any(self.rows.values()))

    def by_layer(self) -> str:
        """The rows (to be) removed per layer, as an operator answers a data subject:
        `silver 7, quarantine 1, gold 0, quality.deletions 0` (gold: the rows of tables that
        hold the pseudonym; the others are recomputed)."""
        totals = dict.fromkeys(("silver", "quarantine", "gold", "quality.deletions"), 0)
        for table, rows in self.rows.items():
            layer = table.split(".")[0]
            totals["quality.deletions" if layer == "quality" else layer] += rows
        return ", ".join(f"{layer} {rows:,}" for layer, rows in totals.items())


def cpr_number(text: str) -> str:
    """The 10 digits of a CPR number as typed (`010190-1234` or `0101901234`), checked as the
    contracts check it: a real date part, no modulus-11. The error never repeats the input."""
    text = text.strip()
    if not _CPR_TEXT.fullmatch(text):
        raise ConfigError(
            f"--cpr: expected a CPR number, 10 digits as DDMMYYSSSS or DDMMYY-SSSS (got "
            f"{len(text)} character(s)); give the number, or `-` to read it from stdin"
        )
    number = text.replace("-", "")
    valid = pl.select(is_valid_cpr(pl.lit(number))).item()
    if not valid:
        raise ConfigError(
            "--cpr: the number has no real date in its first six digits (DDMMYY), so it is "
            "not a CPR number; check it against the source"
        )
    return number


def erasable_specs() -> list[DatasetSpec]:
    """The datasets whose contract pseudonymises a CPR number."""
    specs, _ = read_specs()
    return [spec for spec in specs if erasure.cpr_fields(spec.contract)]


def erase_subject(
    home: Home,
    key: bytes,
    number: str,
    *,
    dry_run: bool = False,
    user: str | None = None,
    say: Callable[[str], None] = print,
) -> ErasureReport:
    """Erase the subject with CPR number `number` (10 digits, see `cpr_number`) from the lake,
    or with `dry_run` only count what would go. Safe to repeat after a failure part-way."""
    subject = pseudonym(number, key, "cpr")
    specs = erasable_specs()
    options = home.storage_options()
    report = ErasureReport(dry_run)
    say(f"Reading the landed deliveries of {', '.join(s.name for s in specs)} ...")
    found: dict[str, dict[str, list[tuple[int, str | None]]]] = {}
    for spec in specs:
        found[spec.name] = _scan_landing(home, spec, number, key, report)
    if not dry_run:
        # First, so a load running after this point (or a crash part-way) leaves them out.
        report.registered = erasure.register(home.erasures_uri, subject)
    touched: list[str] = []
    for spec in specs:
        silver = home.table_uri("silver", spec.name)
        counts = {
            f"silver.{spec.name}": _remove(silver, _silver_match(silver, spec, subject), dry_run),
            f"quarantine.{spec.name}": _remove(
                home.table_uri("quarantine", spec.name),
                _quarantine_match(found[spec.name]),
                dry_run,
            ),
        }
        report.rows.update(counts)
        touched += [silver, home.table_uri("quarantine", spec.name)]
        held = sum(h.rows for h in report.landing if h.dataset == spec.name)
        verb = "would remove" if dry_run else "removed"
        say(
            f"  {spec.name}: {verb} {counts[f'silver.{spec.name}']:,} silver row(s), "
            f"{counts[f'quarantine.{spec.name}']:,} quarantine row(s); "
            f"{held:,} row(s) in landing"
        )
    deletions = home.table_uri("quality", "deletions")
    report.rows["quality.deletions"] = _remove(deletions, erasure.contains("key", subject), dry_run)
    touched.append(deletions)
    names = {spec.name for spec in specs}
    for model in MODELS:
        if not names & set(model.inputs):
            continue
        uri = home.table_uri("gold", model.name)
        columns = [c.name for c in model.columns if c.pseudonymised]
        rows = erasure.count_rows(uri, erasure.equals_any(columns, subject)) if columns else 0
        report.rows[f"gold.{model.name}"] = rows
        if open_table(uri, options) is None or not _inputs_exist(home, model):
            continue
        report.recomputed.append(f"gold.{model.name}")
        touched.append(uri)
        theirs = f" ({rows:,} row(s) of the subject)" if columns else ""
        say(
            f"  gold.{model.name}: {'would be ' if dry_run else ''}recomputed from silver "
            f"without the subject{theirs}"
        )
    if dry_run:
        return report
    for model in MODELS:
        if f"gold.{model.name}" in report.recomputed:
            build(home, model)
    say("Forgetting the history of those tables (vacuum with no retention, old log entries) ...")
    for uri in touched:
        if erasure.forget_history(uri, options).version >= 0:
            report.forgotten.append(uri)
    report.erasure_id = str(uuid.uuid4())
    erasure.record_audit(
        home.table_uri("quality", "erasures"),
        erasure.AuditRecord(
            erasure_id=report.erasure_id,
            erased_at=dt.datetime.now(dt.UTC),
            erased_by=user or _os_user(),
            rows_removed_per_table=report.rows,
            landing_files=len(report.landing),
        ),
    )
    return report


def _remove(uri: str, match: erasure.Match | None, dry_run: bool) -> int:
    if match is None:
        return 0
    if dry_run:
        return erasure.count_rows(uri, match)
    return erasure.delete_rows(uri, match)


def _silver_match(uri: str, spec: DatasetSpec, subject: str) -> erasure.Match | None:
    table = open_table(uri)
    if table is None:
        return None
    present = {f.name for f in table.schema().fields}
    columns = [c for c in erasure.cpr_fields(spec.contract) if c in present]
    return erasure.equals_any(columns, subject) if columns else None


def _quarantine_match(
    batches: dict[str, list[tuple[int, str | None]]],
) -> erasure.Match | None:
    matches = []
    for batch_id, rows in batches.items():
        by_sheet: dict[str | None, list[int]] = {}
        for row, sheet in rows:
            by_sheet.setdefault(sheet, []).append(row)
        for sheet, numbers in by_sheet.items():
            matches.append(erasure.source_rows(batch_id, numbers, sheet))
    return erasure.either(matches)


def _inputs_exist(home: Home, model: GoldModel) -> bool:
    return all(open_table(home.table_uri("silver", name)) is not None for name in model.inputs)


def _scan_landing(
    home: Home, spec: DatasetSpec, number: str, key: bytes, report: ErasureReport
) -> dict[str, list[tuple[int, str | None]]]:
    """The subject's (source row, sheet) per batch in the dataset's landed deliveries; adds
    the files that hold them to `report.landing`. Checks on the way that `key` is the one
    silver was written with (see `_check_key`)."""
    fields = erasure.cpr_fields(spec.contract)
    newest = _newest_loaded(home, spec)
    held: dict[str, list[tuple[int, str | None]]] = {}
    for landed in manifest(home.manifest_uri, spec.name):
        shown = shown_name(landed.original_name)
        sample: list[str] = []
        rows: list[tuple[int, str | None]] = []
        try:
            for raw in _read(home, spec, landed, shown):
                headers = erasure.raw_headers(raw.columns, fields, spec.columns)
                found = erasure.subject_rows(raw, headers, number)
                sheets = (
                    found.select(redacted(pl.col(SHEET))).to_series().to_list()
                    if SHEET in found.columns
                    else [None] * found.height
                )
                rows += list(zip(found[SOURCE_ROW].to_list(), sheets, strict=True))
                if landed.batch_id == newest and headers and len(sample) < KEY_SAMPLE:
                    sample += raw[headers[0]].drop_nulls().head(KEY_SAMPLE).to_list()
        except (FormatError, LakeError) as error:
            # A delivery the reader refuses (it was rejected) never reached silver or
            # quarantine; it may still hold the subject, so the operator is told to look.
            report.unreadable.append(f"{spec.name}: {shown}: {redact(one_line(error))}")
            continue
        in_name = erasure.name_holds(landed.original_name, number)
        if rows or in_name:
            held[landed.batch_id] = rows
            report.landing.append(Holding(spec.name, landed.batch_id, shown, len(rows), in_name))
        if sample:
            _check_key(home, spec, key, sample)
    return held


def _read(home: Home, spec: DatasetSpec, landed: LandedFile, shown: str):
    with local_copy(landed, home) as path, scratch_folder(home.scratch, "erase-") as scratch:
        yield from iter_table(path, reader_options(spec), source_name=shown, scratch=scratch)


def _newest_loaded(home: Home, spec: DatasetSpec) -> str | None:
    loaded = quality.runs(home, spec.name).filter(pl.col("status") == "loaded")
    return loaded["batch_id"][-1] if loaded.height else None


def _check_key(home: Home, spec: DatasetSpec, key: bytes, sample: Sequence[str]) -> None:
    """Refuse a key other than the one silver was written with: the subject's pseudonym
    would then match nothing, and the erasure would report them absent while they stay.

    The lake stores no trace of its key, so it is told from the data: of the CPR numbers in
    the dataset's newest loaded delivery, at least one has its pseudonym under this key in
    silver (rows that failed the contract are not there, so one is enough)."""
    uri = home.table_uri("silver", spec.name)
    table = open_table(uri)
    column = erasure.cpr_fields(spec.contract)[0]
    if table is None or column not in {f.name for f in table.schema().fields}:
        return
    tokens = pseudonyms(pl.Series(sample, dtype=pl.String), key, "cpr")
    held = pl.scan_delta(table).filter(pl.col(column).is_in(tokens)).select(pl.len()).collect()
    if not held.item():
        raise ConfigError(
            f"the pseudonymisation key is not the one silver.{spec.name} was written with: "
            f"none of {len(sample):,} CPR numbers of its newest delivery has its pseudonym "
            "there. Set KOMMUNELAKE_PSEUDONYM_KEY (or the home's secrets/pseudonym.key) to "
            "the lake's key; nothing was erased"
        )


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container without passwd entry)
        return "unknown"
