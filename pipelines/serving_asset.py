"""The serving layer as an asset: rebuilt after silver and gold so the catalog is current."""

from collections.abc import Collection

import dagster as dg

from lake.serving import build_serving
from pipelines.catalog import catalog_tables
from pipelines.gold.assets import after_upstream_passes
from pipelines.gold.models import MODELS
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec

SERVING_KEY = dg.AssetKey(["serving", "lake_duckdb"])


def serving_asset(
    specs: list[DatasetSpec], upstream: list[dg.AssetKey], datasets: Collection[str] | None = None
) -> dg.AssetsDefinition:
    """`datasets`: every dataset with a YAML, broken ones too (a typo in a YAML must not take
    its view away from analysts); a silver table of no dataset, or a gold table of no model,
    is not served."""
    defined = None
    if datasets is not None:
        defined = {*(f"silver.{n}" for n in datasets), *(f"gold.{m.name}" for m in MODELS)}

    @dg.asset(
        key=SERVING_KEY,
        description="serving/lake.duckdb: DuckDB views over silver, gold and quality Delta "
        "tables plus the catalog. Open with `from lake import connect` or `kommunelake sql`.",
        group_name="serving",
        owners=["team:dataplatform"],
        kinds={"duckdb"},
        deps=upstream,
        automation_condition=after_upstream_passes(),
    )
    def _serving(lake: LakeResource) -> dg.MaterializeResult:
        home = lake.lake_home()
        report = build_serving(home, catalog_tables(specs, home), defined=defined)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(report.path)),
                "views": dg.MetadataValue.md("\n".join(f"- {v}" for v in report.views)),
                "catalog_tables": ", ".join(report.tables),
            }
        )

    return _serving
