"""The code location loads, and its asset keys, checks and metadata match the snapshot.

An accidental rename of an asset or check shows up here in review. To accept an intended
change: `KOMMUNELAKE_UPDATE_SNAPSHOT=1 make test`, then commit the snapshot file.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import dagster as dg

from pipelines.columns import silver_columns
from pipelines.definitions import build_definitions
from pipelines.factory import column_schema
from pipelines.gold.models import MODELS
from pipelines.specs import load_specs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
INSTANCE_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"


def _graph():
    return build_definitions().get_repository_def().asset_graph


def _describe() -> str:
    graph = _graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        deps = ",".join(sorted(d.to_user_string() for d in node.parent_keys))
        lines.append(f"asset {key.to_user_string()} group={node.group_name} deps=[{deps}]")
    for check in sorted(
        graph.asset_check_keys, key=lambda c: (c.asset_key.to_user_string(), c.name)
    ):
        lines.append(f"check {check.asset_key.to_user_string()}:{check.name}")
    defs = build_definitions()
    for job in sorted(j.name for j in defs.jobs or ()):  # type: ignore[union-attr]
        lines.append(f"job {job}")
    for schedule in defs.schedules or ():
        lines.append(f"schedule {schedule.name} {schedule.cron_schedule} -> {schedule.job_name}")
    for sensor in defs.sensors or ():
        lines.append(f"sensor {sensor.name}")
    return "\n".join(lines) + "\n"


def test_asset_and_check_keys_match_the_snapshot() -> None:
    current = _describe()
    if os.environ.get("KOMMUNELAKE_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(current)
    assert current == SNAPSHOT.read_text()


def test_every_dataset_asset_is_documented_for_the_ui() -> None:
    graph = _graph()
    for spec in load_specs():
        node = graph.get(dg.AssetKey(["silver", spec.name]))
        assert node.description == spec.description
        assert node.owners == [spec.owner]
        assert node.group_name == spec.sector
        schema = node.metadata["dagster/column_schema"]
        contract_fields = list(spec.contract.to_schema().columns)
        shown = [c for c in schema.columns if not c.name.startswith("_")]  # lineage
        assert [c.name for c in shown] == contract_fields
        assert all(c.description and c.tags["classification"] for c in shown)
        assert all(c.description.startswith("Lineage:") for c in schema.columns[len(shown) :])
        assert "delta" in node.kinds


def test_every_gold_asset_shows_its_columns_and_classification_in_the_ui() -> None:
    graph = _graph()
    for model in MODELS:
        node = graph.get(dg.AssetKey(["gold", model.name]))
        schema = node.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == [c.name for c in model.columns]
        assert all(c.description and c.tags["classification"] for c in schema.columns)
        assert node.tags["classification"] == model.classification


def test_an_scd2_dataset_shows_its_history_columns_in_the_ui() -> None:
    # The `schema` check expects them in silver; the UI's column schema left them out.
    spec = dataclasses.replace(load_specs()[0], load_mode="scd2")
    columns = [c.name for c in column_schema(silver_columns(spec)).columns]
    assert columns[-3:] == ["valid_from", "valid_to", "is_current"]


def test_only_error_level_checks_block_downstream() -> None:
    # Dagster's automation treats any failed blocking check as blocking, so a blocking check
    # must never be one that fails with WARN.
    defs = build_definitions()
    assets = {key: a for a in defs.assets for key in a.keys}  # type: ignore[union-attr]
    for spec in load_specs():
        asset = assets[dg.AssetKey(["silver", spec.name])]
        blocking = {s.name: s.blocking for s in asset.check_specs}
        assert {n for n, b in blocking.items() if b} == {
            "schema",
            "rows_reconcile",
            "quarantine_threshold",
            *(["unique_keys"] * bool(spec.keys)),
        }
        assert {n for n, b in blocking.items() if not b} == {"contract", "schema_drift", "volume"}


def test_every_silver_asset_runs_in_the_pool_of_its_table() -> None:
    defs = build_definitions()
    pools = {key: a.op.pool for a in defs.assets for key in a.keys}  # type: ignore[union-attr]
    specs = load_specs()
    silver = {spec.name: pools[dg.AssetKey(["silver", spec.name])] for spec in specs}
    assert silver == {spec.name: f"silver/{spec.name}" for spec in specs}


def test_the_instance_gives_each_pool_one_slot(tmp_path) -> None:
    # The repository's dagster.yaml, as `kommunelake` copies it into DAGSTER_HOME.
    shutil.copyfile(INSTANCE_YAML, tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity is not None
        assert config.pool_config.pool_granularity.value == "run"
        assert config.run_queue_config is not None
        assert config.run_queue_config.max_concurrent_runs == 1
        storage = instance.event_log_storage
        assert storage.supports_global_concurrency_limits
        # what the run queue does for a pool it meets for the first time
        storage.initialize_concurrency_limit_to_default("silver/sick_leave")
        assert storage.get_concurrency_info("silver/sick_leave").slot_count == 1
