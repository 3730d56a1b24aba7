"""The serving layer as an asset: rebuilt after silver and gold so the catalog is current."""

import os
from collections.abc import Collection

import dagster as dg

from lake.home import Home
from lake.serving import ServingReport, build_serving
from pipelines.catalog import catalog_tables
from pipelines.gold.assets import after_upstream_passes
from pipelines.gold.models import MODELS, published_views
from pipelines.gold.small_cells import min_cell
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec

SERVING_KEY = dg.AssetKey(["serving", "lake_duckdb"])


def serve(
    home: Home, specs: list[DatasetSpec], datasets: Collection[str] | None = None
) -> ServingReport:
    """Rebuild the serving layer as the asset does: views over the lake, the catalog, and the
    `published` views with small cells hidden (`KOMMUNELAKE_MIN_CELL`).

    `datasets`: every dataset with a YAML, broken ones too (a typo in a YAML must not take
    its view away from analysts); a silver table of no dataset, or a gold table of no model,
    is not served. None: every table on disk."""
    defined = None
    if datasets is not None:
        defined = {*(f"silver.{n}" for n in datasets), *(f"gold.{m.name}" for m in MODELS)}
    k = min_cell(os.environ)  # one threshold for the views and what the catalog says of them
    return build_serving(
        home, catalog_tables(specs, home, k=k), defined=defined, derived=published_views(k)
    )


def serving_asset(
    specs: list[DatasetSpec], upstream: list[dg.AssetKey], datasets: Collection[str] | None = None
) -> dg.AssetsDefinition:
    """`datasets`: as for `serve`."""

    @dg.asset(
        key=SERVING_KEY,
        description="serving/lake.duckdb: DuckDB views over silver, gold and quality Delta "
        "tables plus the catalog, and `published` views of gold with small cells hidden. "
        "Open with `from lake import connect` or `kommunelake sql`.",
        group_name="serving",
        owners=["team:dataplatform"],
        kinds={"duckdb"},
        deps=upstream,
        automation_condition=after_upstream_passes(),
    )
    def _serving(lake: LakeResource) -> dg.MaterializeResult:
        home = lake.lake_home()
        report = serve(home, specs, datasets)
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(report.path)),
                "views": dg.MetadataValue.md("\n".join(f"- {v}" for v in report.views)),
                "catalog_tables": ", ".join(report.tables),
            }
        )

    return _serving
