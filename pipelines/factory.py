"""Dagster assets made from dataset specs: one silver asset per YAML file, with its checks."""

import re
import traceback
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext
from deltalake.exceptions import DeltaError

from connectors.files import held_back_files, unmatched_files
from lake import storage
from lake.errors import one_line
from lake.home import Home
from lake.privacy import redact, shown_name
from pipelines.api_sources import is_api, source_name
from pipelines.checks import check_results, check_specs, load_facts, record, silver_key
from pipelines.columns import ColumnDoc, silver_columns
from pipelines.delivery import SETTLE_TAG
from pipelines.ingest import LoadReport, evolved_columns, load_dataset, silver_state, silver_uri
from pipelines.resources import LakeResource
from pipelines.specs import BrokenSpec, DatasetSpec

FORMAT_KINDS = {"csv": "csv", "excel": "excel", "json": "json", "ndjson": "json"}


def column_schema(columns: list[ColumnDoc]) -> dg.TableSchema:
    """The Dagster UI's column table, from the same list as `catalog.columns`."""
    return dg.TableSchema(columns=[_table_column(doc) for doc in columns])


def _table_column(doc: ColumnDoc) -> dg.TableColumn:
    notes = [doc.description]
    if doc.pseudonymised:
        notes.append("Pseudonymised (HMAC) in silver.")
    if doc.source_header and doc.source_header != doc.name:
        notes.append(f"Source header: {doc.source_header}.")
    if doc.concept:
        notes.append(f"Glossary: {doc.concept}.")
    tags = {"classification": doc.classification} if doc.classification else {}
    return dg.TableColumn(
        doc.name,
        doc.dtype,
        description=" ".join(notes),
        constraints=dg.TableColumnConstraints(nullable=doc.nullable),
        tags=tags | ({"concept": doc.concept} if doc.concept else {}),
    )


def table_pool(layer: str, name: str) -> str:
    """The Dagster concurrency pool of a Delta table: every asset that commits to the table
    runs in it. dagster.yaml limits each pool to 1, so a table has one writer at a time."""
    return f"{layer}/{name}"


def dataset_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    kind = "api" if is_api(spec) else FORMAT_KINDS.get(spec.format.get("type", ""), "files")

    @dg.asset(
        key=silver_key(spec.name),
        description=spec.description,
        group_name=spec.sector,
        owners=[spec.owner],
        kinds={"delta", "pandera", kind},
        tags={"classification": spec.classification, "load_mode": spec.load_mode},
        metadata={
            "dagster/column_schema": column_schema(silver_columns(spec)),
            "contract": spec.contract_ref,
            "keys": ", ".join(spec.keys) or "none",
            **(
                {"source": f"{spec.source['type']} API ({source_name(spec)})"}
                if is_api(spec)
                else {"drop_folder": f"drop/{spec.name}/ ({', '.join(spec.patterns)})"}
            ),
        },
        check_specs=check_specs(spec),
        pool=table_pool("silver", spec.name),
    )
    def _load(context: AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        home = lake.lake_home()
        # A run the drop-folder sensor started leaves files still arriving; a run a person
        # started (CLI, UI) loads what is there.
        settle = context.run.tags.get(SETTLE_TAG) == "true"
        try:
            report = load_dataset(spec, home, lake.key(), run_id=context.run.run_id, settle=settle)
            return dataset_result(spec, home, report, run_id=context.run.run_id)
        except Exception as error:
            failure = masked_failure(error)
            if failure is not None:
                raise failure from None  # not chained: the clear text would be stored with it
            if isinstance(error, OSError | DeltaError):
                # deltalake's own reads (a log entry, a listing) give object_store's raw chain
                storage.raise_for_store(f"silver/{spec.name}", error)
            raise

    return _load


def masked_failure(error: BaseException) -> dg.Failure | None:
    """A failure to raise instead of `error` when its text (or a cause's) holds a CPR-shaped
    number, else None (`error` is raised as it is, traceback and all).

    Dagster stores a step's error, with its causes, in the run storage and shows it in the
    UI. A source's error can quote what was asked or sent: the URL of a register lookup by
    CPR that kept failing, a parser's excerpt of the file. The failure carries the masked
    message, and the masked traceback as metadata, so nothing is lost for debugging.
    """
    text = "".join(traceback.format_exception(error))
    if redact(text) == text:
        return None
    return dg.Failure(
        description=redact(one_line(error)),
        metadata={
            "error": type(error).__name__,
            "traceback": dg.MetadataValue.text(redact(text)),
        },
    )


def _not_matching(folder: Path, patterns: list[str]) -> str:
    parts = []
    for files, why in (
        (unmatched_files(folder, patterns), "not matching"),
        (held_back_files(folder, patterns), "starting with `_`, taken for a temporary file"),
    ):
        names = [shown_name(path.name) for path in files]
        if names:
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            parts.append(f"{shown} {'is' if len(names) == 1 else 'are'} there but {why}")
    return f" ({'; '.join(parts)})" if parts else ""


def dataset_result(
    spec: DatasetSpec, home: Home, report: LoadReport, run_id: str | None = None
) -> dg.MaterializeResult:
    """Metadata and check results for one load; never carries a clear identifier."""
    version, silver = silver_state(home, spec)
    facts = load_facts(home, spec, report)
    if silver is None and not facts.rejected:
        where = (
            f"the {spec.source['type']} API returned nothing"
            if is_api(spec)
            else f"no file in {home.drop / spec.name} matching {spec.patterns}"
            + _not_matching(home.drop / spec.name, spec.patterns)
        )
        raise dg.Failure(
            description=f"{spec.name}: nothing to load: {where} and no earlier load. "
            "Put an export there (or check the source) and re-run.",
        )
    loaded = [b for b in report.batches if b.status == "loaded"]
    evolved = () if silver is None else evolved_columns(spec, home, silver_uri(home, spec.name))
    results = check_results(spec, facts, silver, evolved)
    blocking = {s.name for s in check_specs(spec) if s.blocking}
    # Every load records all its checks; a run with nothing new records only changes, so
    # re-running an unchanged home adds no Delta version. Those changes are the newest
    # load's: after `kommunelake reload`, quality.runs shows that batch's new outcome.
    record(
        home,
        spec.name,
        results,
        blocking,
        run_id=run_id,
        only_changes=not report.batches,
        batch_id=report.batches[-1].batch_id if report.batches else facts.batch_id,
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 0 if silver is None else silver.height,
            "silver_version": -1 if version is None else version,
            "new_files": report.new_files,
            "batches_loaded": len(loaded),
            "batches_rejected": len(report.rejected),
            "rows_in": facts.rows_in,
            "rows_valid": facts.rows_valid,
            "rows_quarantined": facts.rows_quarantined,
            "path": dg.MetadataValue.path(home.table_uri("silver", spec.name)),
        },
        check_results=results,
    )


def broken_asset_names(broken: list[BrokenSpec], taken: set[str]) -> list[str]:
    """An asset name per broken YAML, unlike every dataset's and each other's: a copy named
    `sick-leave.yaml` beside `sick_leave.yaml` must not become a second silver/sick_leave,
    which would stop the whole code location from loading."""
    names, taken = [], set(taken)
    for b in broken:
        # Asset names allow [A-Za-z0-9_]; the YAML's name must equal its file's stem anyway.
        base = name = re.sub(r"\W", "_", b.name, flags=re.ASCII)
        number = 1
        while name in taken:
            number += 1
            name = f"{base}_{number}"
        taken.add(name)
        names.append(name)
    return names


def broken_dataset_asset(broken: BrokenSpec, name: str) -> dg.AssetsDefinition:
    """Where a dataset whose YAML does not load would be: the UI shows the error in the
    asset's description, and materializing it fails with the same message."""
    message = f"This dataset's YAML does not load, so it loads nothing: {broken.error}"

    @dg.asset(
        key=silver_key(name),
        group_name="broken_datasets",
        description=f"{message}. The other datasets are not affected.",
        kinds={"delta"},
    )
    def _broken() -> None:
        raise dg.Failure(
            description=f"{message}. Fix the file in pipelines/datasets/ and reload the code.",
            allow_retries=False,
        )

    return _broken
