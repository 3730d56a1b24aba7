"""The Dagster code location: every dataset YAML becomes a silver asset with checks, then gold,
then the serving layer. Loaded lazily by Dagster (no work at import time)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import dagster as dg

from pipelines.checks import freshness_checks, reference_checks, silver_key
from pipelines.drop_sensor import drop_folder_sensor
from pipelines.factory import broken_asset_names, broken_dataset_asset, dataset_asset
from pipelines.gold.assets import gold_assets, gold_key, reconciliation_check
from pipelines.gold.models import MODELS
from pipelines.maintenance_assets import (
    MAINTENANCE_GROUP,
    maintenance_assets,
    maintenance_job,
    maintenance_schedule,
)
from pipelines.notify.sensor import notification_sensor
from pipelines.resources import lake_resource
from pipelines.serving_asset import serving_asset
from pipelines.specs import DATASETS_DIR, BrokenSpec, DatasetSpec, read_specs, usable_specs


def build_assets(
    specs: list[DatasetSpec] | None = None, broken: list[BrokenSpec] | None = None
) -> list[dg.AssetsDefinition]:
    """Every asset and asset check of the code location; by default from the dataset YAMLs,
    where a broken one becomes an asset that fails with its error (`read_specs`)."""
    if specs is None:
        specs, broken = read_specs()
    broken = broken or []
    upstream = [silver_key(s.name) for s in specs] + [gold_key(m.name) for m in MODELS]
    return [
        *(dataset_asset(spec) for spec in specs),
        *map(broken_dataset_asset, broken, broken_asset_names(broken, {s.name for s in specs})),
        *(check for spec in specs for check in reference_checks(spec)),
        *freshness_checks(specs),
        *gold_assets(),
        reconciliation_check(),
        serving_asset(specs, upstream, [*(s.name for s in specs), *(b.name for b in broken)]),
    ]


def build_definitions(directory: Path = DATASETS_DIR) -> dg.Definitions:
    specs, broken = read_specs(directory)
    usable = partial(usable_specs, directory)
    freshness = dg.define_asset_job(
        "freshness_checks",
        selection=dg.AssetSelection.checks(
            *(
                dg.AssetCheckKey(silver_key(s.name), "freshness")
                for s in specs
                if s.quality.freshness_hours is not None
            )
        ),
        description="Evaluate every dataset's freshness check (loads nothing).",
    )
    load_all = dg.define_asset_job(
        "load_all",
        # Compaction and vacuum run on their own weekly schedule, never as part of a load.
        selection=dg.AssetSelection.all() - dg.AssetSelection.groups(MAINTENANCE_GROUP),
        description="Load every dataset, then gold and the serving layer.",
    )
    return dg.Definitions(
        assets=[*build_assets(specs, broken), *maintenance_assets(specs)],
        jobs=[load_all, freshness, maintenance_job],
        schedules=[
            dg.ScheduleDefinition(
                job=freshness,
                cron_schedule="*/30 * * * *",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            ),
            maintenance_schedule,
        ],
        sensors=[
            drop_folder_sensor(usable),
            notification_sensor(specs=usable),
            # Gold and serving carry eager automation conditions; this evaluates them.
            dg.AutomationConditionSensorDefinition(
                "automation",
                target=dg.AssetSelection.all(),
                default_status=dg.DefaultSensorStatus.RUNNING,
            ),
        ],
        resources={"lake": lake_resource()},
        # SQLite instance storage locks under multiprocess execution; production (PostgreSQL)
        # can switch to the multiprocess executor.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
