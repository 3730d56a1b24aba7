"""Maintenance assets through dagster.materialize on a temporary home, and the YAML keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

from connectors.demo import generate
from lake.home import Home
from pipelines.ingest import load_dataset
from pipelines.maintenance_assets import (
    maintenance_assets,
    maintenance_job,
    maintenance_key,
    maintenance_schedule,
    shared_tables,
    shared_tables_maintenance,
)
from pipelines.resources import lake_resource
from pipelines.specs import DATASETS_DIR, MaintenanceSpec, SpecError, load_spec, spec_by_name
from tests.conftest import TEST_KEY


@pytest.fixture
def loaded_home(home: Home, monkeypatch) -> Home:
    """A home where dar_addresses was loaded twice (the first snapshot is now a tombstone)."""
    monkeypatch.setenv("KOMMUNELAKE_HOME", str(home.root))
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    spec = spec_by_name("dar_addresses")
    generate(home.root, persons=150)
    load_dataset(spec, home, TEST_KEY)
    generate(home.root, persons=150, seed=7)  # a new delivery with other bytes
    load_dataset(spec, home, TEST_KEY)
    return home


def test_materializing_maintains_loaded_tables_and_skips_missing_ones(loaded_home) -> None:
    uri = loaded_home.table_uri("silver", "dar_addresses")
    before = pl.read_delta(uri).sort("address_id")
    version = DeltaTable(uri).version()
    dar = dataclasses.replace(
        spec_by_name("dar_addresses"),
        maintenance=MaintenanceSpec(vacuum_retention_hours=0, allow_short_retention=True),
    )
    cpr = spec_by_name("cpr_persons")  # never loaded here
    assert not DeltaTable.is_deltatable(loaded_home.table_uri("silver", "cpr_persons"))

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            maintenance_assets([dar, cpr]),
            resources={"lake": lake_resource()},
            instance=instance,
        )
        assert result.success
        events = result.get_asset_materialization_events()
        assert {e.asset_key for e in events} == {
            maintenance_key("dar_addresses"),
            maintenance_key("shared_tables"),
        }
        [event] = [e for e in events if e.asset_key == maintenance_key("dar_addresses")]
        metadata = {k: v.value for k, v in event.materialization.metadata.items()}
        logs = " ".join(
            r.event_log_entry.user_message
            for r in instance.get_records_for_run(result.run_id).records
        )

    assert metadata["version_before"] == version
    assert metadata["version"] >= version
    assert metadata["files_before"] >= metadata["files_after"] >= 1
    assert metadata["files_vacuumed"] >= 1 and metadata["bytes_removed"] > 0
    assert metadata["vacuum_retention_hours"] == 0
    assert metadata["open_seconds"] >= 0
    assert "silver/cpr_persons has no Delta table yet" in logs
    assert pl.read_delta(uri).sort("address_id").equals(before)


def test_the_tables_every_load_shares_are_maintained_without_changing_rows(loaded_home) -> None:
    # Every load appends a file to the manifest and quality/runs and reads them back: without
    # maintenance, a year of daily loads leaves each with thousands of small files.
    tables = shared_tables(loaded_home)
    assert {"landing/_manifest", "quality/runs"} <= set(tables)
    runs = tables["quality/runs"]
    assert len(DeltaTable(runs).file_uris()) >= 2
    before = {t: pl.read_delta(uri) for t, uri in tables.items()}

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [shared_tables_maintenance], resources={"lake": lake_resource()}, instance=instance
        )
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["tables"] == len(tables)
    assert metadata["files_before"] > metadata["files_after"]
    assert "| quality/runs |" in metadata["per_table"]
    assert len(DeltaTable(runs).file_uris()) == 1
    for table, uri in tables.items():
        assert pl.read_delta(uri).equals(before[table]), table


def test_one_broken_shared_table_does_not_leave_the_others_unmaintained(
    loaded_home, monkeypatch
) -> None:
    # A table whose log entry an external writer left unreadable sorts before quality/runs:
    # the weekly run must still maintain every other table, then fail naming it.
    monkeypatch.setenv("RUST_BACKTRACE", "1")  # delta-rs then appends a backtrace to errors
    broken = loaded_home.table_uri("quality", "a_broken")
    for value in range(3):
        write_deltalake(broken, pl.DataFrame({"x": [value]}).to_arrow(), mode="append")
    (Path(broken) / "_delta_log" / f"{2:020d}.json").write_text("{not json\n", encoding="utf-8")
    runs = shared_tables(loaded_home)["quality/runs"]
    assert len(DeltaTable(runs).file_uris()) >= 2

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [shared_tables_maintenance],
            resources={"lake": lake_resource()},
            instance=instance,
            raise_on_error=False,
        )
        [failure] = [
            r.event_log_entry.dagster_event
            for r in instance.get_records_for_run(result.run_id).records
            if r.event_log_entry.dagster_event
            and r.event_log_entry.dagster_event.event_type_value == "STEP_FAILURE"
        ]
    assert not result.success
    message = failure.step_failure_data.error.message
    assert "quality/a_broken" in message and "Json error" in message
    assert "\n" not in message.strip() and " 0: " not in message  # one line, no backtrace
    assert "The other tables were maintained" in message
    assert len(DeltaTable(runs).file_uris()) == 1  # maintained although it comes later


def test_a_datasets_quarantine_is_maintained_with_its_silver_table(home, monkeypatch) -> None:
    monkeypatch.setenv("KOMMUNELAKE_HOME", str(home.root))
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    spec = spec_by_name("cpr_persons")  # the demo's CPR extract quarantines a few rows
    for seed in (1, 2):
        generate(home.root, persons=150, seed=seed)
        load_dataset(spec, home, TEST_KEY)
    quarantine = home.table_uri("quarantine", spec.name)
    rows = pl.read_delta(quarantine)
    assert len(DeltaTable(quarantine).file_uris()) >= 2

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            maintenance_assets([spec])[:1], resources={"lake": lake_resource()}, instance=instance
        )
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    assert metadata["quarantine_files_before"] > metadata["quarantine_files_after"] == 1
    assert pl.read_delta(quarantine).equals(rows)


def test_the_assets_job_and_schedule_are_described_for_the_ui() -> None:
    spec = spec_by_name("sick_leave")
    [asset, shared] = maintenance_assets([spec])
    key = maintenance_key("sick_leave")
    assert key == dg.AssetKey(["maintenance", "sick_leave"])
    assert asset.group_names_by_key[key] == "maintenance"
    assert asset.owners_by_key[key] == [spec.owner]
    assert asset.specs_by_key[key].kinds == {"delta"}
    assert [d.asset_key for d in asset.specs_by_key[key].deps] == [
        dg.AssetKey(["silver", "sick_leave"])
    ]
    assert "vacuum" in (asset.descriptions_by_key[key] or "")
    assert "quarantine" in (asset.descriptions_by_key[key] or "")
    shared_key = maintenance_key("shared_tables")
    assert shared.group_names_by_key[shared_key] == "maintenance"
    assert shared.owners_by_key[shared_key] == ["team:dataplatform"]
    assert "quality/*" in (shared.descriptions_by_key[shared_key] or "")
    assert maintenance_job.name == "maintenance"
    assert maintenance_schedule.cron_schedule == "0 3 * * 0"
    assert maintenance_schedule.execution_timezone == "Europe/Copenhagen"
    assert maintenance_schedule.job_name == "maintenance"


def _spec_file(tmp_path: Path, extra: str) -> Path:
    text = (DATASETS_DIR / "sick_leave.yaml").read_text(encoding="utf-8")
    path = tmp_path / "sick_leave.yaml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_maintenance_and_partition_by_default_when_absent() -> None:
    spec = spec_by_name("sick_leave")
    assert spec.partition_by == ()
    assert spec.maintenance == MaintenanceSpec()
    assert spec.maintenance.vacuum_retention_hours == 168
    assert not spec.maintenance.allow_short_retention


def test_the_yaml_maintenance_block_is_read(tmp_path: Path) -> None:
    path = _spec_file(
        tmp_path,
        "partition_by: [department]\n"
        "maintenance:\n  compact_target_mb: 64\n  vacuum_retention_hours: 720\n"
        "  checkpoint_every: 50\n",
    )
    spec = load_spec(path)
    assert spec.partition_by == ("department",)
    assert spec.maintenance == MaintenanceSpec(
        compact_target_mb=64, vacuum_retention_hours=720, checkpoint_every=50
    )


def test_a_short_retention_needs_an_explicit_allowance(tmp_path: Path) -> None:
    path = _spec_file(tmp_path, "maintenance:\n  vacuum_retention_hours: 24\n")
    with pytest.raises(SpecError, match=r"sick_leave\.yaml.*maintenance\.vacuum_retention_hours"):
        load_spec(path)
    path = _spec_file(
        tmp_path,
        "maintenance:\n  vacuum_retention_hours: 24\n  allow_short_retention: yes-please\n",
    )
    with pytest.raises(SpecError, match="allow_short_retention must be true or false"):
        load_spec(path)
    path = _spec_file(
        tmp_path, "maintenance:\n  vacuum_retention_hours: 24\n  allow_short_retention: true\n"
    )
    assert load_spec(path).maintenance.vacuum_retention_hours == 24


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("partition_by: [no_such_column]\n", r"partition_by \['no_such_column'\] are not fields"),
        ("partition_by: department\n", "partition_by must be a list"),
        ("maintenance:\n  vacuum_hours: 200\n", r"unknown maintenance keys \['vacuum_hours'\]"),
        ("maintenance:\n  compact_target_mb: 0\n", "compact_target_mb must be a number >= 1"),
        ("maintenance:\n  checkpoint_every: ten\n", "checkpoint_every must be a number"),
        # NaN passed every comparison, the 7-day floor too, and crashed vacuum later
        ("maintenance:\n  vacuum_retention_hours: .nan\n", "vacuum_retention_hours must be a"),
        ("maintenance:\n  vacuum_retention_hours: .inf\n", "vacuum_retention_hours must be a"),
    ],
)
def test_wrong_maintenance_keys_name_the_file_and_key(
    tmp_path: Path, extra: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as error:
        load_spec(_spec_file(tmp_path, extra))
    assert "sick_leave.yaml" in str(error.value)


def test_a_failed_compaction_fails_the_step_with_a_clear_message(loaded_home) -> None:
    uri = loaded_home.table_uri("silver", "dar_addresses")
    extra = pl.read_delta(uri).head(1)
    for _ in range(2):
        write_deltalake(uri, extra.to_arrow(), mode="append")
    newest = DeltaTable(uri).get_add_actions(flatten=True).column("path").to_pylist()[-1]
    (Path(uri) / newest).unlink()  # a data file lost behind the table's back

    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            maintenance_assets([spec_by_name("dar_addresses")]),
            resources={"lake": lake_resource()},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = str(failure.step_failure_data.error)
    assert "compaction failed for silver/dar_addresses" in message
    assert "the checkpoints and the vacuums ran" in message
