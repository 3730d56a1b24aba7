"""Dataset specs: one YAML file per dataset in pipelines/datasets/, checked when loaded.

A spec says where a dataset comes from, how to read it, which contract it must meet, how it
is loaded and who owns it. The Dagster assets, checks and the catalog are all made from it.
"""

from __future__ import annotations

import math
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandera.polars as pa
import yaml

from connectors.formats import READERS, FormatError, check_options
from connectors.formats.frame import header_name
from lake.errors import LakeError
from lake.history import REGISTRERING_FRA, VIRKNING_FRA
from lake.maintenance import MIN_RETENTION_HOURS
from lake.tables import KEYED_MODES, LOAD_MODES, LoadMode
from lake.validation import DRIFT_POLICIES, DriftPolicy, ParseOptions
from pipelines.themes import theme_error
from schemas import load_contract
from schemas.fields import CLASSIFICATIONS
from schemas.glossary import GlossaryError, load_glossary, undefined_concept

DATASETS_DIR = Path(__file__).parent / "datasets"
_REQUIRED = (
    "name",
    "description",
    "owner",
    "sector",
    "classification",
    "contract",
    "source",
    "format",
    "load_mode",
)
_OPTIONAL = (
    "columns",
    "parse",
    "keys",
    "contact",
    "quality",
    "schema_drift",
    "partition_by",
    "maintenance",
    "theme",
)
_PARSE_KEYS = ("date_formats", "decimal_comma", "thousands_separator", "null_values")
_QUALITY_KEYS = (
    "freshness_hours",
    "quarantine_warn",
    "quarantine_error",
    "volume_tolerance",
    "references",
)
_REFERENCE_KEYS = ("column", "dataset", "key", "severity")
_MAINTENANCE_KEYS = (
    "compact_target_mb",
    "vacuum_retention_hours",
    "allow_short_retention",
    "checkpoint_every",
)
# What Dagster accepts as an asset group name and as an owner (dagster._core.definitions.utils):
# a value it refuses would stop the whole code location from loading, not only this dataset.
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_GROUP_NAME = re.compile(r"[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,7}")
# Where a dataset's data comes from (`source.type`): a drop folder, SFTP pickup into it, or
# one of the API connectors (pipelines/api_sources.py).
API_SOURCES = ("datafordeler", "statbank", "cvr", "ckan", "rest")
SOURCE_TYPES = ("files", "sftp", *API_SOURCES)
# Names of kommunelake's own assets beside the datasets' (maintenance/<name>).
RESERVED_NAMES = frozenset({"shared_tables"})


class SpecError(LakeError):
    """A dataset YAML file is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Reference:
    """Values of `column` must exist as `key` in another dataset's silver table."""

    column: str
    dataset: str
    key: str
    severity: str = "warn"  # warn | error (error blocks downstream)


@dataclass(frozen=True)
class QualitySpec:
    """The `quality:` block of a dataset YAML; every field has a sensible default."""

    freshness_hours: float | None = None  # stale when the newest load is older than this
    quarantine_warn: float = 0.0  # share of rows quarantined above which `contract` warns
    quarantine_error: float = 0.05  # ... above which it fails with ERROR and blocks downstream
    volume_tolerance: float = 0.5  # rows in may differ this much from the median of past loads
    references: tuple[Reference, ...] = ()


@dataclass(frozen=True)
class MaintenanceSpec:
    """The `maintenance:` block: how the weekly maintenance job treats the silver table."""

    compact_target_mb: int = 128  # compaction rewrites small files into files of about this size
    vacuum_retention_hours: float = MIN_RETENTION_HOURS  # time travel keeps working this far back
    allow_short_retention: bool = False  # must be `true` in the YAML for a retention < 168 h
    checkpoint_every: int = 10  # checkpoint when this many commits are not yet covered by one


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    owner: str
    sector: str
    classification: str
    contract_ref: str
    source: dict[str, Any]
    format: dict[str, Any]
    load_mode: LoadMode
    columns: dict[str, str] = field(default_factory=dict)  # source header → contract field
    parse: ParseOptions = field(default_factory=ParseOptions)
    keys: tuple[str, ...] = ()
    contact: str | None = None
    quality: QualitySpec = field(default_factory=QualitySpec)
    schema_drift: DriftPolicy = "ignore"  # new columns: ignore (report) | evolve | freeze
    partition_by: tuple[str, ...] = ()  # silver partition columns (contract fields)
    maintenance: MaintenanceSpec = field(default_factory=MaintenanceSpec)
    themes: tuple[str, ...] = ()  # EU data-theme codes (pipelines/themes.py), `theme:`
    path: Path | None = None

    @property
    def contract(self) -> type[pa.DataFrameModel]:
        return load_contract(self.contract_ref)

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """What identifies a row within one delivery (a repeat is quarantined)."""
        if self.load_mode == "bitemporal" and self.keys:
            # A register delivers several registrations of one entity: each is its own row.
            return (*self.keys, REGISTRERING_FRA, VIRKNING_FRA)
        return self.keys

    @property
    def silver_keys(self) -> tuple[str, ...]:
        """What identifies a row in silver (checked by `unique_keys`)."""
        if self.load_mode == "scd2" and self.keys:
            return (*self.keys, "valid_from")
        return self.batch_keys

    @property
    def patterns(self) -> list[str]:
        pattern = self.source.get("pattern", "*")
        return [pattern] if isinstance(pattern, str) else list(pattern)


def load_spec(path: Path) -> DatasetSpec:
    where = f"{path}"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise SpecError(f"{where}: not valid YAML ({error}); fix the file") from error
    except OSError as error:
        raise SpecError(f"{where}: cannot be read ({error})") from error
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping of dataset settings")
    missing = [k for k in _REQUIRED if k not in raw]
    unknown = [k for k in raw if k not in _REQUIRED + _OPTIONAL]
    if missing or unknown:
        raise SpecError(
            f"{where}: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}; "
            f"allowed keys are {', '.join(_REQUIRED + _OPTIONAL)}"
        )
    if raw["name"] != path.stem:
        raise SpecError(f"{where}: name {raw['name']!r} must equal the file name {path.stem!r}")
    if not _NAME.fullmatch(path.stem):
        raise SpecError(
            f"{where}: the name {path.stem!r} must be letters a-z, digits, _ and - (it becomes "
            "the asset key, the table and the view); rename the file and its `name:`"
        )
    if raw["name"] in RESERVED_NAMES:
        raise SpecError(
            f"{where}: the name {raw['name']!r} is taken by kommunelake's own assets "
            "(maintenance/shared_tables); rename the file and its `name:`"
        )
    if raw["load_mode"] not in LOAD_MODES:
        raise SpecError(f"{where}: load_mode must be one of {LOAD_MODES}")
    if raw.get("schema_drift", "ignore") not in DRIFT_POLICIES:
        raise SpecError(f"{where}: schema_drift must be one of {DRIFT_POLICIES}")
    if raw["classification"] not in CLASSIFICATIONS:
        raise SpecError(f"{where}: classification must be one of {CLASSIFICATIONS}")
    if not _valid_owner(raw["owner"]):
        raise SpecError(
            f"{where}: owner must be an e-mail address or 'team:<name>', got {raw['owner']!r}"
        )
    if not (isinstance(raw["sector"], str) and _GROUP_NAME.fullmatch(raw["sector"])):
        raise SpecError(
            f"{where}: sector {raw['sector']!r} must be letters a-z, digits and _ (it names the "
            "dataset's asset group in the UI), e.g. elderly_care"
        )
    if not (isinstance(raw["contract"], str) and ":" in raw["contract"]):
        raise SpecError(
            f"{where}: contract must look like 'module:Class' (schemas/<module>.py), "
            f"got {raw['contract']!r}"
        )
    contact = raw.get("contact")
    if contact is not None and not (isinstance(contact, str) and "@" in contact):
        # Quality notifications are e-mailed to it; a list or a name would fail only then.
        raise SpecError(f"{where}: contact must be one e-mail address, got {contact!r}")
    parse = raw.get("parse") or {}
    if not isinstance(parse, dict):
        raise SpecError(f"{where}: `parse:` must be a mapping, got {parse!r}")
    for block in ("source", "format"):
        if not isinstance(raw[block], dict) or not isinstance(raw[block].get("type"), str):
            raise SpecError(
                f"{where}: `{block}:` must be a mapping with a `type:`, got {raw[block]!r}"
            )
    if raw["source"]["type"] not in SOURCE_TYPES:
        # Anything else was taken for a drop folder: a typo (`filez`, `statbanken`) loaded
        # nothing, without a word, from a folder nobody delivers to.
        raise SpecError(
            f"{where}: source.type {raw['source']['type']!r} is not a source we know; "
            f"one of {', '.join(SOURCE_TYPES)}"
        )
    pattern = raw["source"].get("pattern", "*")
    if isinstance(pattern, str):
        pattern = [pattern]
    if not isinstance(pattern, list) or not all(isinstance(p, str) and p for p in pattern):
        raise SpecError(
            f'{where}: source.pattern must be a file pattern or a list of them, e.g. "*.csv",'
            f" got {raw['source']['pattern']!r}"
        )
    if raw["format"]["type"] not in READERS:
        raise SpecError(
            f"{where}: format.type {raw['format']['type']!r} is not one we read; "
            f"one of {', '.join(READERS)}"
        )
    try:
        check_options(raw["format"], source_name=where)
    except FormatError as error:  # a YAML mistake, not the delivered file's
        raise SpecError(str(error)) from None
    keys = raw.get("keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) and k for k in keys):
        raise SpecError(f"{where}: keys must be a list of column names, e.g. [id], got {keys!r}")
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SpecError(f"{where}: keys name `{repeated[0]}` twice; list each key column once")
    themes = _themes(raw.get("theme"), where)
    spec = DatasetSpec(
        name=raw["name"],
        description=" ".join(str(raw["description"]).split()),
        owner=raw["owner"],
        sector=raw["sector"],
        classification=raw["classification"],
        contract_ref=raw["contract"],
        source=dict(raw["source"]),
        format=dict(raw["format"]),
        load_mode=raw["load_mode"],
        columns=_columns(raw.get("columns"), where),
        parse=_parse(parse, where),
        keys=tuple(keys),
        contact=raw.get("contact"),
        quality=_quality(raw.get("quality") or {}, where),
        schema_drift=raw.get("schema_drift", "ignore"),
        partition_by=_partition_by(raw.get("partition_by"), where),
        maintenance=_maintenance(raw.get("maintenance") or {}, where),
        themes=themes,
        path=path,
    )
    try:
        fields = spec.contract.to_schema().columns
    except (ImportError, ValueError) as error:
        raise SpecError(
            f"{where}: contract {spec.contract_ref!r} cannot be loaded: {error}"
        ) from error
    except Exception as error:
        # Any error in the contract module (a typo, a SyntaxError) is this dataset's problem:
        # escaping here, it would take the whole code location down.
        raise SpecError(
            f"{where}: contract {spec.contract_ref!r} cannot be loaded: "
            f"{type(error).__name__}: {error}{_where_raised(error)}; fix the module"
        ) from error
    concepts = {name: (column.metadata or {}).get("concept") for name, column in fields.items()}
    if any(concepts.values()):
        try:
            problem = undefined_concept(concepts, load_glossary())
        except GlossaryError as error:
            raise SpecError(f"{where}: contract {spec.contract_ref}: {error}") from None
        if problem:
            raise SpecError(f"{where}: contract {spec.contract_ref}: {problem}")
    bad = [c for c in list(spec.columns.values()) + list(spec.keys) if c not in fields]
    if bad:
        raise SpecError(f"{where}: {bad} are not fields of contract {spec.contract_ref}")
    bad = [c for c in spec.partition_by if c not in fields]
    if bad:
        raise SpecError(
            f"{where}: partition_by {bad} are not fields of contract {spec.contract_ref}"
        )
    if spec.load_mode in KEYED_MODES and not spec.keys:
        raise SpecError(f"{where}: load_mode {spec.load_mode} needs `keys:`")
    bad = [r.column for r in spec.quality.references if r.column not in fields]
    if bad:
        raise SpecError(f"{where}: quality.references columns {bad} are not contract fields")
    return spec


def _columns(raw: Any, where: str) -> dict[str, str]:
    """`columns:` (source header → contract field) keyed as the readers name headers
    (`header_name`): a key saved on a Mac (NFD "å"), copied from a wrapped Excel header (a
    line break) or from a web page (a zero-width space) matched no header as written."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SpecError(
            f"{where}: `columns:` must map source headers to contract fields, e.g. "
            f"`Startdato: start_date`, got {raw!r}"
        )
    columns: dict[str, str] = {}
    written: dict[str, str] = {}
    for key, value in raw.items():
        header, field_name = header_name(key), str(value)
        if columns.get(header, field_name) != field_name:
            raise SpecError(
                f"{where}: `columns:` keys {written[header]!r} and {key!r} are the same header "
                f"once blanks and invisible characters are read as the files' headers are, "
                f"but map to {columns[header]!r} and {field_name!r}; keep one of them"
            )
        columns[header] = field_name
        written.setdefault(header, str(key))
    return columns


def _themes(raw: Any, where: str) -> tuple[str, ...]:
    """`theme: SOCI` or `theme: [HEAL, SOCI]`, each in the EU data-theme vocabulary."""
    themes = [raw] if isinstance(raw, str) else raw or []
    if not isinstance(themes, list) or not all(isinstance(t, str) for t in themes):
        raise SpecError(f"{where}: theme must be a code or a list of codes, e.g. SOCI, got {raw!r}")
    if (problem := theme_error(themes)) is not None:
        raise SpecError(f"{where}: {problem}")
    return tuple(dict.fromkeys(themes))


def _where_raised(error: Exception) -> str:
    """` (in <file> line N)` of the innermost frame, or of the code that did not compile."""
    if isinstance(error, SyntaxError) and error.filename:
        return f" (in {error.filename} line {error.lineno})"
    frames = traceback.extract_tb(error.__traceback__)
    return f" (in {frames[-1].filename} line {frames[-1].lineno})" if frames else ""


def _valid_owner(owner: Any) -> bool:
    return isinstance(owner, str) and (
        bool(_EMAIL.fullmatch(owner)) or (owner.startswith("team:") and len(owner) > 5)
    )


def _parse(raw: dict[str, Any], where: str) -> ParseOptions:
    """The `parse:` block, checked: a misspelt key or a string where a list belongs would
    otherwise type every row wrong and quarantine the whole file for a YAML typo."""
    unknown = sorted(str(k) for k in raw if k not in _PARSE_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown parse keys {unknown}; allowed: {list(_PARSE_KEYS)}")
    formats = raw.get("date_formats", [])
    if not isinstance(formats, list) or not all(isinstance(f, str) and f for f in formats):
        raise SpecError(
            f"{where}: parse.date_formats must be a list of strptime formats, e.g."
            f' ["%d-%m-%Y"], got {formats!r}'
        )
    decimal_comma = raw.get("decimal_comma", False)
    if not isinstance(decimal_comma, bool):
        raise SpecError(
            f"{where}: parse.decimal_comma must be true or false (unquoted), got {decimal_comma!r}"
        )
    separator = raw.get("thousands_separator")
    if separator is not None and not (isinstance(separator, str) and len(separator) == 1):
        raise SpecError(
            f'{where}: parse.thousands_separator must be one quoted character, e.g. ".",'
            f" got {separator!r}"
        )
    if decimal_comma and separator == ",":
        # Both marks one character: `1,234` grouped as thousands loaded 1234 where a Danish
        # sender means 1.234, and `12,5` failed.
        raise SpecError(
            f"{where}: parse.thousands_separator is ',', the decimal mark under decimal_comma:"
            ' true, so 1,234 would read as 1234; set it to "." or " " as Danish and Norwegian'
            " exports group thousands, or remove it"
        )
    nulls = raw.get("null_values", [])
    if not isinstance(nulls, list) or not all(isinstance(v, str) and v.strip() for v in nulls):
        raise SpecError(
            f'{where}: parse.null_values must be a list of quoted markers, e.g. ["..", ":"],'
            f" got {nulls!r}"
        )
    # Values are compared as the readers hand them over: stripped.
    return ParseOptions(tuple(formats), decimal_comma, separator, tuple(v.strip() for v in nulls))


def _quality(raw: dict[str, Any], where: str) -> QualitySpec:
    unknown = [k for k in raw if k not in _QUALITY_KEYS]
    if unknown:
        raise SpecError(f"{where}: unknown quality keys {unknown}; allowed: {_QUALITY_KEYS}")
    references = []
    for item in raw.get("references") or ():
        if (
            not isinstance(item, dict)
            or set(item) - set(_REFERENCE_KEYS)
            or not {"column", "dataset", "key"} <= set(item)
        ):
            raise SpecError(
                f"{where}: each quality.references entry needs column, dataset, "
                f"key (and optionally severity: warn|error), got {item!r}"
            )
        if item.get("severity", "warn") not in ("warn", "error"):
            raise SpecError(f"{where}: quality.references severity must be warn or error")
        references.append(Reference(**item))
    numbers = {}
    for key, default in (
        ("quarantine_warn", 0.0),
        ("quarantine_error", 0.05),
        ("volume_tolerance", 0.5),
        ("freshness_hours", None),
    ):
        value = raw.get(key, default)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise SpecError(f"{where}: quality.{key} must be a number, got {value!r}")
        numbers[key] = None if value is None else float(value)
    # Out of range, every load would be stale or every volume check fail, for ever.
    hours, tolerance = numbers["freshness_hours"], numbers["volume_tolerance"]
    if hours is not None and not 0 < hours < math.inf:
        raise SpecError(f"{where}: quality.freshness_hours must be above 0 (hours), got {hours}")
    if tolerance is not None and not 0 <= tolerance < math.inf:
        raise SpecError(
            f"{where}: quality.volume_tolerance must be 0 or more (0.5 = ±50%), got {tolerance}"
        )
    warn, error = numbers["quarantine_warn"], numbers["quarantine_error"]
    if not 0 <= warn <= error <= 1:
        raise SpecError(f"{where}: need 0 <= quarantine_warn <= quarantine_error <= 1")
    return QualitySpec(
        freshness_hours=numbers["freshness_hours"],
        quarantine_warn=warn,
        quarantine_error=error,
        volume_tolerance=numbers["volume_tolerance"],
        references=tuple(references),
    )


def _partition_by(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(c, str) and c for c in raw):
        raise SpecError(f"{where}: partition_by must be a list of column names, got {raw!r}")
    if len(set(raw)) != len(raw):
        raise SpecError(f"{where}: partition_by lists a column twice: {raw}")
    return tuple(raw)


def _maintenance(raw: Any, where: str) -> MaintenanceSpec:
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: maintenance must be a mapping with keys {_MAINTENANCE_KEYS}")
    unknown = [k for k in raw if k not in _MAINTENANCE_KEYS]
    if unknown:
        raise SpecError(
            f"{where}: unknown maintenance keys {unknown}; allowed: {_MAINTENANCE_KEYS}"
        )
    defaults = MaintenanceSpec()
    allow_short = raw.get("allow_short_retention", False)
    if not isinstance(allow_short, bool):
        raise SpecError(
            f"{where}: maintenance.allow_short_retention must be true or false, got {allow_short!r}"
        )
    numbers = {}
    for key, minimum in (
        ("compact_target_mb", 1),
        ("vacuum_retention_hours", 0),
        ("checkpoint_every", 1),
    ):
        value = raw.get(key, getattr(defaults, key))
        # NaN passes every comparison (`nan < 168` is false): it would slip past the 7-day
        # floor and crash vacuum, as infinity would, when maintenance first runs
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < minimum
        ):
            raise SpecError(
                f"{where}: maintenance.{key} must be a number >= {minimum}, got {value!r}"
            )
        numbers[key] = value
    if numbers["vacuum_retention_hours"] < MIN_RETENTION_HOURS and not allow_short:
        raise SpecError(
            f"{where}: maintenance.vacuum_retention_hours is {numbers['vacuum_retention_hours']}, "
            f"below {MIN_RETENTION_HOURS} h (7 days); time travel and long-running readers "
            "would break. Raise it, or set maintenance.allow_short_retention: true explicitly"
        )
    return MaintenanceSpec(
        compact_target_mb=int(numbers["compact_target_mb"]),
        vacuum_retention_hours=float(numbers["vacuum_retention_hours"]),
        allow_short_retention=allow_short,
        checkpoint_every=int(numbers["checkpoint_every"]),
    )


def load_specs(directory: Path = DATASETS_DIR) -> list[DatasetSpec]:
    """Every dataset; the first broken YAML raises (tests, tools that need them all)."""
    specs = [load_spec(p) for p in sorted(directory.glob("*.yaml"))]
    known = {s.name: s for s in specs}
    for spec in specs:
        if (error := _reference_error(spec, known, set())) is not None:
            raise error
    return specs


def _reference_error(
    spec: DatasetSpec, known: dict[str, DatasetSpec], broken: set[str]
) -> SpecError | None:
    """What is wrong with the datasets and keys `quality.references` names, if anything.

    One YAML cannot see the others, so this runs once all are read: a wrong name would
    otherwise fail its check for ever as "not loaded yet", a wrong key with DuckDB's error."""
    for ref in spec.quality.references:
        if ref.dataset in broken:
            continue  # its own YAML is broken and says so; its fields are not known
        if ref.dataset not in known:
            return SpecError(
                f"{spec.path}: quality.references: no dataset named {ref.dataset!r}; known "
                f"datasets: {', '.join(sorted(known.keys() | broken))}"
            )
        other = known[ref.dataset]
        fields = list(other.contract.to_schema().columns)
        if ref.key not in fields:
            return SpecError(
                f"{spec.path}: quality.references: {ref.key!r} is not a field of "
                f"{ref.dataset}'s contract {other.contract_ref}; its fields: {', '.join(fields)}"
            )
    return None


@dataclass(frozen=True)
class BrokenSpec:
    """A dataset YAML that does not load, kept apart so the other datasets still run."""

    name: str  # the file's stem: the name the dataset would have
    error: SpecError


def read_specs(directory: Path = DATASETS_DIR) -> tuple[list[DatasetSpec], list[BrokenSpec]]:
    """The datasets whose YAML loads, and the ones whose YAML does not.

    The code location is made from these: one mistyped key in one dataset's YAML must not
    take every other dataset's assets, sensors and schedules down with it."""
    specs, broken = [], []
    for path in sorted(directory.glob("*.yml")):  # read by no one: say so, in the UI too
        broken.append(
            BrokenSpec(path.stem, SpecError(f"{path}: dataset files end in .yaml; rename it"))
        )
    for path in sorted(directory.glob("*.yaml")):
        try:
            specs.append(load_spec(path))
        except SpecError as error:
            broken.append(BrokenSpec(path.stem, error))
    known, broken_names = {s.name: s for s in specs}, {b.name for b in broken}
    usable = []
    for spec in specs:
        if (error := _reference_error(spec, known, broken_names)) is not None:
            broken.append(BrokenSpec(spec.name, error))
        else:
            usable.append(spec)
    return usable, broken


def usable_specs(directory: Path = DATASETS_DIR) -> list[DatasetSpec]:
    """The datasets whose YAML loads (what the sensors look after)."""
    return read_specs(directory)[0]


def spec_by_name(name: str, directory: Path = DATASETS_DIR) -> DatasetSpec:
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(directory.glob("*.yaml")))
        raise SpecError(f"no dataset named {name!r}; known datasets: {known}")
    return load_spec(path)
