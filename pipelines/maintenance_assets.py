"""Weekly maintenance of every Delta table: compact, checkpoint, vacuum (lake/maintenance.py).

One asset per dataset (`maintenance/<dataset>`: its silver table and its quarantine table,
with the dataset YAML's `maintenance:` settings), one for the tables every load shares
(`maintenance/shared_tables`: the landing manifest, quality/*, state/* and gold/*, with the
defaults), a `maintenance` job over the group and a schedule that runs it on Sunday night,
when no file drops are expected. Without it those tables gain a small file per load (every
load appends to quality/runs and reads it back) and never lose the files a rewrite replaced.
"""

import dagster as dg
from dagster import AssetExecutionContext
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from lake import storage
from lake.errors import LakeError, one_line
from lake.home import Home
from lake.maintenance import MaintenanceReport, maintain, open_seconds
from pipelines.checks import silver_key
from pipelines.factory import table_pool
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec

MAINTENANCE_GROUP = "maintenance"
SHARED_TABLES = "shared_tables"
PLATFORM_OWNER = "team:dataplatform"


def maintenance_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([MAINTENANCE_GROUP, name])


def maintenance_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    settings = spec.maintenance

    @dg.asset(
        key=maintenance_key(spec.name),
        description=(
            f"Maintenance of silver/{spec.name} and quarantine/{spec.name}: compact small "
            f"files (about {settings.compact_target_mb} MB each, partition by partition), "
            "checkpoint the Delta log and delete expired log files, then vacuum files older than "
            f"{settings.vacuum_retention_hours:g} h. Rows and time travel within the "
            "retention stay as they were."
        ),
        group_name=MAINTENANCE_GROUP,
        owners=[spec.owner],
        kinds={"delta"},
        deps=[silver_key(spec.name)],
        metadata={
            "compact_target_mb": settings.compact_target_mb,
            "vacuum_retention_hours": settings.vacuum_retention_hours,
            "checkpoint_every": settings.checkpoint_every,
        },
        # No materialization when the table does not exist yet: the step skips, not fails.
        output_required=False,
        # Compaction commits to the table: it waits for a load of the same table, and back.
        pool=table_pool("silver", spec.name),
    )
    def _maintain(context: AssetExecutionContext, lake: LakeResource):
        home = lake.lake_home()
        uri = home.table_uri("silver", spec.name)
        options = home.storage_options()  # empty on local disk; S3/Azure credentials else
        if not DeltaTable.is_deltatable(uri, storage_options=dict(options)):
            context.log.info(
                f"silver/{spec.name} has no Delta table yet at {uri}: nothing to maintain, "
                "skipped. It is maintained after its first load."
            )
            return
        report = maintain(
            uri,
            target_mb=settings.compact_target_mb,
            retention_hours=settings.vacuum_retention_hours,
            allow_short=settings.allow_short_retention,
            checkpoint_every=settings.checkpoint_every,
            storage_options=options,
        )
        metadata = maintenance_metadata(report, open_seconds(uri, storage_options=options))
        reports = {f"silver/{spec.name}": report}
        quarantine = home.table_uri("quarantine", spec.name)
        if DeltaTable.is_deltatable(quarantine, storage_options=dict(options)):
            # written by this dataset's loads only, in the same pool: safe beside them
            held = maintain(
                quarantine,
                retention_hours=settings.vacuum_retention_hours,
                allow_short=settings.allow_short_retention,
                storage_options=options,
            )
            reports[f"quarantine/{spec.name}"] = held
            metadata |= {f"quarantine_{k}": v for k, v in _counts(held).items()}
        _fail_on_compaction_errors(reports, metadata)
        yield dg.MaterializeResult(metadata=metadata)

    return _maintain


def maintenance_metadata(report: MaintenanceReport, opened_seconds: float) -> dict:
    compaction, checkpoint, vacuum = report.compaction, report.checkpoint, report.vacuum
    return {
        **_counts(report),
        "files_compacted": compaction.files_removed,
        "files_written": compaction.files_added,
        "partitions_compacted": sum(1 for p in compaction.partitions if p.files_removed),
        "bytes_compacted": compaction.bytes_removed,
        "version_before": compaction.version_before,
        "version": vacuum.version,
        "checkpoint_created": checkpoint.checkpoint_created,
        "log_files_removed": checkpoint.log_files_removed,
        "vacuum_retention_hours": vacuum.retention_hours,
        "open_seconds": round(opened_seconds, 4),
    }


def _counts(report: MaintenanceReport) -> dict[str, int]:
    """The file counts of one table's maintenance, as its metadata names them."""
    return {
        "files_before": report.compaction.files_before,
        "files_after": report.compaction.files_after,
        "files_vacuumed": report.vacuum.files_deleted,
        "bytes_removed": report.vacuum.bytes_deleted,
    }


def _fail_on_compaction_errors(reports: dict[str, MaintenanceReport], metadata: dict) -> None:
    failed = "; ".join(
        f"{table} ({p.partition or 'table'}): {p.error}"
        for table, report in reports.items()
        for p in report.compaction.errors
    )
    if failed:
        raise dg.Failure(
            description=f"compaction failed for {failed}. The other tables and partitions, "
            "the checkpoints and the vacuums ran; every table is readable. Re-run "
            "maintenance (a concurrent load that replaced files is the usual cause).",
            metadata=metadata,
        )


def shared_tables(home: Home) -> dict[str, str]:
    """`layer/name` → URI of the tables no dataset's maintenance covers: the landing
    manifest and every table under quality/, state/ and gold/ (those that exist)."""
    options = home.storage_options()
    found = {}
    if DeltaTable.is_deltatable(home.manifest_uri, storage_options=dict(options)):
        found["landing/_manifest"] = home.manifest_uri
    for layer in ("quality", "state", "gold"):
        for name, uri in storage.list_tables(home.layer_uri(layer), options).items():
            found[f"{layer}/{name}"] = uri
    return found


@dg.asset(
    key=maintenance_key(SHARED_TABLES),
    description=(
        "Maintenance of the tables every load shares: the landing manifest, quality/* "
        "(runs, deletions, check history), state/* (API cursors) and gold/*. Each is "
        "compacted, checkpointed and vacuumed with the defaults (files older than 168 h). "
        "The run queue keeps it apart from scheduled loads; rows appended meanwhile (a "
        "`kommunelake load` from the command line) are kept, compaction leaves new files alone."
    ),
    group_name=MAINTENANCE_GROUP,
    owners=[PLATFORM_OWNER],
    kinds={"delta"},
)
def shared_tables_maintenance(context: AssetExecutionContext, lake: LakeResource):
    home = lake.lake_home()
    options = home.storage_options()
    reports, broken = {}, {}
    for table, uri in shared_tables(home).items():
        # One unreadable table (an external writer's torn log entry, a permission change)
        # must not leave the rest to grow another week: go on, and fail below naming it.
        try:
            reports[table] = maintain(uri, storage_options=options)
        except (LakeError, DeltaError, OSError) as error:
            broken[table] = one_line(error)
            context.log.error(f"{table}: maintenance failed: {broken[table]}")
            continue
        context.log.info(f"{table}: {_counts(reports[table])}")
    totals = {
        key: sum(_counts(r)[key] for r in reports.values())
        for key in ("files_before", "files_after", "files_vacuumed", "bytes_removed")
    }
    rows = "".join(
        f"| {t} | {c['files_before']} | {c['files_after']} | {c['files_vacuumed']} |\n"
        for t, c in ((t, _counts(r)) for t, r in reports.items())
    )
    metadata = {
        "tables": len(reports),
        **totals,
        "per_table": dg.MetadataValue.md(
            "| table | files before | files after | files vacuumed |\n|---|---:|---:|---:|\n" + rows
        ),
    }
    if broken:
        failed = "; ".join(f"{table}: {error}" for table, error in broken.items())
        raise dg.Failure(
            description=f"maintenance failed for {failed}. The other tables were maintained. "
            "Open the failing table with `deltalake` or DuckDB's delta_scan to see whether it "
            "is readable, repair or restore it, then re-run maintenance.",
            metadata=metadata,
        )
    _fail_on_compaction_errors(reports, metadata)
    return dg.MaterializeResult(metadata=metadata)


def maintenance_assets(specs: list[DatasetSpec]) -> list[dg.AssetsDefinition]:
    return [*(maintenance_asset(spec) for spec in specs), shared_tables_maintenance]


maintenance_job = dg.define_asset_job(
    MAINTENANCE_GROUP,
    selection=dg.AssetSelection.groups(MAINTENANCE_GROUP),
    description="Compact, checkpoint and vacuum every Delta table of the lake (changes no rows).",
)

maintenance_schedule = dg.ScheduleDefinition(
    name="maintenance_weekly",
    job=maintenance_job,
    cron_schedule="0 3 * * 0",  # Sunday 03:00, when no deliveries are expected
    execution_timezone="Europe/Copenhagen",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
