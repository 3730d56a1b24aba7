"""The Dagster code location: every dataset YAML becomes a silver asset with checks, then gold,
then the serving layer. Loaded lazily by Dagster (no work at import time)."""

from __future__ import annotations

import dagster as dg

from pipelines.checks import reference_checks, silver_key
from pipelines.factory import dataset_asset
from pipelines.gold.assets import gold_assets, gold_key
from pipelines.gold.models import MODELS
from pipelines.resources import lake_resource
from pipelines.serving_asset import serving_asset
from pipelines.specs import load_specs


def build_assets() -> list[dg.AssetsDefinition]:
    specs = load_specs()
    upstream = [silver_key(s.name) for s in specs] + [gold_key(m.name) for m in MODELS]
    return [
        *(dataset_asset(spec) for spec in specs),
        *(check for spec in specs for check in reference_checks(spec)),
        *gold_assets(),
        serving_asset(specs, upstream),
    ]


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=build_assets(),
        jobs=[
            dg.define_asset_job(
                "load_all",
                selection=dg.AssetSelection.all(),
                description="Load every dataset, gold and the serving layer.",
            )
        ],
        resources={"lake": lake_resource()},
        # SQLite instance storage locks under multiprocess execution; production (PostgreSQL)
        # can switch to the multiprocess executor.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
