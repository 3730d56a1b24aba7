"""Gold assets: thin wrappers that build each gold model after its silver inputs."""

import dagster as dg
import polars as pl

from pipelines.checks import silver_key
from pipelines.factory import column_schema
from pipelines.gold.models import MODELS, GoldModel, build
from pipelines.resources import LakeResource

GOLD_OWNER = "team:analyse"


def after_upstream_passes() -> dg.AutomationCondition:
    """Materialize when inputs change, but never from an input whose blocking check failed."""
    return dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()


def gold_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["gold", name])


def gold_asset(model: GoldModel) -> dg.AssetsDefinition:
    @dg.asset(
        key=gold_key(model.name),
        description=model.description,
        group_name="gold",
        owners=[GOLD_OWNER],
        kinds={"delta", "duckdb"},
        deps=[silver_key(name) for name in model.inputs],
        automation_condition=after_upstream_passes(),
        tags={"classification": model.classification},
        metadata={
            "inputs": ", ".join(f"silver.{n}" for n in model.inputs),
            "dagster/column_schema": column_schema(model.columns),
        },
    )
    def _gold(lake: LakeResource) -> dg.MaterializeResult:
        home = lake.lake_home()
        commit, frame = build(home, model)
        uri = home.table_uri("gold", model.name)
        # Counted through a reader that honours deletion vectors (DeltaTable.count() does not).
        rows = (
            frame.height
            if frame is not None
            else pl.scan_delta(uri).select(pl.len()).collect().item()
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "gold_version": commit.version,
                "recomputed": commit.committed,
                "path": dg.MetadataValue.path(uri),
            }
        )

    return _gold


def gold_assets() -> list[dg.AssetsDefinition]:
    return [gold_asset(model) for model in MODELS]


def reconciliation_check() -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=gold_key("meal_delivery_reconciliation"),
        name="entries_match_registers",
        description="Every entry of the local meal-delivery list is a person in CPR at the "
        "address the list says. Warns; the gold table says which list rows differ.",
    )
    def _check(lake: LakeResource) -> dg.AssetCheckResult:
        uri = lake.lake_home().table_uri("gold", "meal_delivery_reconciliation")
        table = pl.read_delta(uri)
        counts = dict(table.group_by("status").len().iter_rows())
        differing = table.filter(pl.col("status") != "matches")
        return dg.AssetCheckResult(
            passed=differing.height == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "entries": table.height,
                "rows_without_match": differing.height,
                **{f"status_{k}": v for k, v in sorted(counts.items())},
                "first_list_rows": ", ".join(map(str, differing["list_row"].head(10))) or "none",
            },
        )

    return _check
