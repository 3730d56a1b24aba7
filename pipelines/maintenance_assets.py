"""Weekly maintenance of every silver table: compact, checkpoint, vacuum (see lake/maintenance.py).

One asset per dataset (`maintenance/<dataset>`, group `maintenance`), a `maintenance` job over
the group and a schedule that runs it on Sunday night, when no file drops are expected. The
settings come from the dataset YAML's `maintenance:` block.
"""

import dagster as dg
from dagster import AssetExecutionContext
from deltalake import DeltaTable

from lake.maintenance import MaintenanceReport, maintain, open_seconds
from pipelines.checks import silver_key
from pipelines.factory import table_pool
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec

MAINTENANCE_GROUP = "maintenance"


def maintenance_key(name: str) -> dg.AssetKey:
    return dg.AssetKey([MAINTENANCE_GROUP, name])


def maintenance_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    settings = spec.maintenance

    @dg.asset(
        key=maintenance_key(spec.name),
        description=(
            f"Maintenance of silver/{spec.name}: compact small files (about "
            f"{settings.compact_target_mb} MB each, partition by partition), checkpoint the "
            "Delta log and delete expired log files, then vacuum files older than "
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
        if report.compaction.errors:
            failed = "; ".join(
                f"{p.partition or 'table'}: {p.error}" for p in report.compaction.errors
            )
            raise dg.Failure(
                description=f"silver/{spec.name}: compaction failed for {failed}. The other "
                "partitions, the checkpoint and the vacuum ran; the table is readable. "
                "Re-run maintenance (a concurrent load that replaced files is the usual cause).",
                metadata=metadata,
            )
        yield dg.MaterializeResult(metadata=metadata)

    return _maintain


def maintenance_metadata(report: MaintenanceReport, opened_seconds: float) -> dict:
    compaction, checkpoint, vacuum = report.compaction, report.checkpoint, report.vacuum
    return {
        "files_before": compaction.files_before,
        "files_after": compaction.files_after,
        "files_compacted": compaction.files_removed,
        "files_written": compaction.files_added,
        "partitions_compacted": sum(1 for p in compaction.partitions if p.files_removed),
        "bytes_compacted": compaction.bytes_removed,
        "version_before": compaction.version_before,
        "version": vacuum.version,
        "checkpoint_created": checkpoint.checkpoint_created,
        "log_files_removed": checkpoint.log_files_removed,
        "vacuum_retention_hours": vacuum.retention_hours,
        "files_vacuumed": vacuum.files_deleted,
        "bytes_removed": vacuum.bytes_deleted,
        "open_seconds": round(opened_seconds, 4),
    }


def maintenance_assets(specs: list[DatasetSpec]) -> list[dg.AssetsDefinition]:
    return [maintenance_asset(spec) for spec in specs]


maintenance_job = dg.define_asset_job(
    MAINTENANCE_GROUP,
    selection=dg.AssetSelection.groups(MAINTENANCE_GROUP),
    description="Compact, checkpoint and vacuum every silver table (changes no rows).",
)

maintenance_schedule = dg.ScheduleDefinition(
    name="maintenance_weekly",
    job=maintenance_job,
    cron_schedule="0 3 * * 0",  # Sunday 03:00, when no deliveries are expected
    execution_timezone="Europe/Copenhagen",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
