"""Dagster assets and checks made from dataset specs: one silver asset per YAML file."""

import json

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext

from lake.home import Home
from lake.quality import runs
from lake.validation import contract_columns
from pipelines.ingest import LINEAGE, LoadReport, load_dataset, silver_state
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec

FORMAT_KINDS = {"csv": "csv", "excel": "excel", "json": "json", "ndjson": "json"}


def silver_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", name])


def column_schema(spec: DatasetSpec) -> dg.TableSchema:
    source_of = {field: header for header, field in spec.columns.items()}
    columns = []
    for name, column in contract_columns(spec.contract).items():
        meta = column.metadata or {}
        pseudonymised = " Pseudonymised (HMAC) in silver." if meta.get("identifier") else ""
        source = f" Source header: {source_of[name]}." if name in source_of else ""
        columns.append(
            dg.TableColumn(
                name,
                str(column.dtype),
                description=f"{column.description}{pseudonymised}{source}",
                constraints=dg.TableColumnConstraints(nullable=column.nullable),
                tags={"classification": meta.get("classification", "")},
            )
        )
    return dg.TableSchema(columns=columns)


def check_specs(spec: DatasetSpec) -> list[dg.AssetCheckSpec]:
    key = silver_key(spec.name)
    specs = [
        dg.AssetCheckSpec(
            "schema",
            asset=key,
            blocking=True,
            description="Every file has the contract's columns (else it is rejected whole) and "
            "the silver table's columns match the contract. Blocks downstream assets.",
        ),
        dg.AssetCheckSpec(
            "rows_reconcile",
            asset=key,
            blocking=True,
            description="For every batch: rows in = rows valid + rows quarantined.",
        ),
        dg.AssetCheckSpec(
            "contract",
            asset=key,
            description="Rows failing the pandera contract (types, ranges, CPR/CVR/codes, "
            "duplicates) were sent to quarantine. Warns; does not block.",
        ),
    ]
    if spec.keys:
        specs.append(
            dg.AssetCheckSpec(
                "unique_keys",
                asset=key,
                blocking=True,
                description=f"Silver has one row per key ({', '.join(spec.keys)}).",
            )
        )
    return specs


def dataset_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    kind = FORMAT_KINDS.get(spec.format.get("type", ""), "files")

    @dg.asset(
        key=silver_key(spec.name),
        description=spec.description,
        group_name=spec.sector,
        owners=[spec.owner],
        kinds={"delta", "pandera", kind},
        tags={"classification": spec.classification, "load_mode": spec.load_mode},
        metadata={
            "dagster/column_schema": column_schema(spec),
            "contract": spec.contract_ref,
            "keys": ", ".join(spec.keys) or "none",
            "drop_folder": f"drop/{spec.name}/ ({', '.join(spec.patterns)})",
        },
        check_specs=check_specs(spec),
    )
    def _load(context: AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
        home = lake.lake_home()
        report = load_dataset(spec, home, lake.key(), run_id=context.run.run_id)
        return dataset_result(spec, home, report)

    return _load


def dataset_result(spec: DatasetSpec, home: Home, report: LoadReport) -> dg.MaterializeResult:
    """Metadata and check results for one load; never carries a clear identifier."""
    version, silver = silver_state(home, spec)
    if silver is None and not report.rejected:
        raise dg.Failure(
            description=f"{spec.name}: nothing to load: no file in {home.drop / spec.name} "
            f"matching {spec.patterns} and no earlier load. Put an export there and re-run.",
        )
    loaded = [b for b in report.batches if b.status == "loaded"]
    if report.batches:
        rows_in = sum(b.rows_in for b in loaded)
        valid = sum(b.rows_valid for b in loaded)
        quarantined = sum(b.rows_quarantined for b in loaded)
        failures = [f for b in loaded for f in b.failures]
    else:  # nothing new: report on the last load, so checks show the current state
        rows_in, valid, quarantined, failures = _last_load(home, spec.name)

    expected = [*contract_columns(spec.contract), *LINEAGE]
    schema_ok = silver is None or sorted(silver.columns) == sorted(expected)
    rejected_messages = [b.message for b in report.rejected]
    checks = [
        dg.AssetCheckResult(
            check_name="schema",
            passed=schema_ok and not rejected_messages,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "rejected_files": dg.MetadataValue.md(
                    "\n".join(f"- {m}" for m in rejected_messages) or "none"
                ),
                "silver_columns_match_contract": schema_ok,
            },
        ),
        dg.AssetCheckResult(
            check_name="rows_reconcile",
            passed=all(b.rows_in == b.rows_valid + b.rows_quarantined for b in loaded),
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={"rows_in": rows_in, "rows_valid": valid, "rows_quarantined": quarantined},
        ),
        dg.AssetCheckResult(
            check_name="contract",
            passed=quarantined == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "rows_quarantined": quarantined,
                "failures": dg.MetadataValue.md(_failure_table(failures)),
                "where": f"quality.quarantine where dataset = '{spec.name}'",
            },
        ),
    ]
    if spec.keys:
        duplicates = 0 if silver is None else silver.height - silver.select(spec.keys).n_unique()
        checks.append(
            dg.AssetCheckResult(
                check_name="unique_keys",
                passed=duplicates == 0,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={"duplicate_rows": duplicates},
            )
        )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": 0 if silver is None else silver.height,
            "silver_version": -1 if version is None else version,
            "new_files": report.new_files,
            "batches_loaded": len(loaded),
            "batches_rejected": len(report.rejected),
            "rows_in": rows_in,
            "rows_valid": valid,
            "rows_quarantined": quarantined,
            "path": dg.MetadataValue.path(home.table_uri("silver", spec.name)),
        },
        check_results=checks,
    )


def _failure_table(failures: list[tuple[str, str, int]]) -> str:
    if not failures:
        return "no failures"
    lines = ["| column | check | rows |", "|---|---|---|"]
    lines += [f"| {c} | {k} | {n} |" for c, k, n in failures[:20]]
    return "\n".join(lines)


def _last_load(home: Home, dataset: str) -> tuple[int, int, int, list[tuple[str, str, int]]]:
    last = runs(home, dataset).filter(pl.col("status") == "loaded").tail(1)
    if not last.height:
        return 0, 0, 0, []
    row = last.row(0, named=True)
    failures = [(f["column"], f["check"], f["rows"]) for f in json.loads(row["failed_checks"])]
    return row["rows_in"], row["rows_valid"], row["rows_quarantined"], failures
