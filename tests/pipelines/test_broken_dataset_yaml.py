"""One dataset's broken YAML must not take the others down: the code location still loads,
the other datasets load, and the broken one is an asset that fails with the YAML's error."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from connectors.demo import generate
from lake import connect
from lake.home import Home
from lake.quality import runs
from lake.tables import write_batch
from pipelines.definitions import build_assets, build_definitions
from pipelines.resources import lake_resource
from pipelines.specs import DATASETS_DIR, SpecError, load_specs, read_specs
from tests.conftest import TEST_KEY


@pytest.fixture
def datasets(tmp_path: Path) -> Path:
    """The real dataset YAMLs, with sick_leave's `keys:` written as text, not a list."""
    folder = tmp_path / "datasets"
    shutil.copytree(DATASETS_DIR, folder)
    path = folder / "sick_leave.yaml"
    text = path.read_text(encoding="utf-8")
    assert "keys: [absence_id]" in text
    path.write_text(text.replace("keys: [absence_id]", "keys: absence_id"), encoding="utf-8")
    return folder


def test_the_code_location_loads_without_the_broken_dataset(datasets) -> None:
    with pytest.raises(SpecError, match=r"sick_leave\.yaml: keys must be a list"):
        load_specs(datasets)
    specs, [broken] = read_specs(datasets)
    assert broken.name == "sick_leave"
    assert len(specs) == len(load_specs()) - 1

    defs = build_definitions(datasets)
    graph = defs.get_repository_def().asset_graph
    node = graph.get(dg.AssetKey(["silver", "sick_leave"]))
    assert node.group_name == "broken_datasets"
    assert "keys must be a list of column names" in node.description
    # The other datasets keep their assets, checks and sensors.
    assert graph.has(dg.AssetKey(["silver", "cpr_persons"]))
    assert {s.name for s in defs.sensors} >= {"drop_folders", "quality_notifications"}


def test_the_other_datasets_load_and_the_broken_one_fails_with_its_error(
    datasets, home: Home, monkeypatch, demo_apis
) -> None:
    generate(home.root, persons=200)
    monkeypatch.setenv("KOMMUNELAKE_HOME", str(home.root))
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            build_assets(*read_specs(datasets)),
            selection=["silver/sick_leave", "silver/cpr_persons"],
            resources={"lake": lake_resource()},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "silver__sick_leave"
    assert "keys must be a list of column names" in failure.step_failure_data.error.message
    assert runs(home, "cpr_persons")["status"].to_list() == ["loaded"]
    # Its delivery waits in the drop folder for the fixed YAML: nothing was read or moved.
    assert runs(home, "sick_leave").height == 0
    assert list((home.drop / "sick_leave").glob("*.csv"))


@pytest.mark.parametrize("copies", [["sick-leave.yaml"], ["sick leave.yaml", "sick-leave.yaml"]])
def test_a_broken_copy_whose_name_looks_like_a_dataset_keeps_the_location_up(
    datasets: Path, copies: list[str]
) -> None:
    # A copy named `sick-leave.yaml` (its `name:` no longer equals the file name) became the
    # broken asset silver/sick_leave beside the real one: a duplicate asset key, and the
    # whole code location failed to load.
    fixed = datasets / "sick_leave.yaml"
    fixed.write_text(
        fixed.read_text(encoding="utf-8").replace("keys: absence_id", "keys: [absence_id]"),
        encoding="utf-8",
    )
    for copy in copies:
        shutil.copy(fixed, datasets / copy)

    graph = build_definitions(datasets).get_repository_def().asset_graph

    assert graph.get(dg.AssetKey(["silver", "sick_leave"])).group_name == "hr"
    broken = [graph.get(k) for k in graph.get_all_asset_keys()]
    broken = [n for n in broken if n.group_name == "broken_datasets"]
    assert sorted(n.description.split(".yaml")[0].rsplit("/", 1)[-1] for n in broken) == sorted(
        c.removesuffix(".yaml") for c in copies
    )


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        # Used to load and then fail its check for ever with "silver.cpr_person has not been
        # loaded yet ... Load it (`kommunelake load --select key:silver/cpr_person`)".
        (
            "{column: cpr, dataset: cpr_person, key: cpr}",
            r"sick_leave\.yaml: quality\.references: no dataset named 'cpr_person'; known "
            r"datasets: bbr_dwellings, ",
        ),
        # Used to load and then fail the check's step with DuckDB's Binder Error.
        (
            "{column: cpr, dataset: cpr_persons, key: personnummer}",
            r"sick_leave\.yaml: quality\.references: 'personnummer' is not a field of "
            r"cpr_persons's contract cpr_persons:CprPersons; its fields: cpr, ",
        ),
    ],
)
def test_a_reference_to_a_dataset_or_key_that_does_not_exist_breaks_only_its_dataset(
    datasets: Path, reference: str, message: str
) -> None:
    path = datasets / "sick_leave.yaml"
    text = path.read_text(encoding="utf-8").replace("keys: absence_id", "keys: [absence_id]")
    old = "  freshness_hours: 768"
    path.write_text(text.replace(old, f"{old}\n  references:\n    - {reference}"), "utf-8")

    with pytest.raises(SpecError, match=message):
        load_specs(datasets)
    specs, [broken] = read_specs(datasets)
    assert broken.name == "sick_leave"
    assert re.search(message, str(broken.error))
    assert "cpr_persons" in {s.name for s in specs}


def test_a_dataset_saved_as_yml_is_shown_as_broken_not_ignored(datasets) -> None:
    (datasets / "sick_leave.yaml").rename(datasets / "home_visits.yml")  # an editor's default

    specs, broken = read_specs(datasets)
    [yml] = [b for b in broken if b.name == "home_visits"]
    assert "dataset files end in .yaml; rename it" in str(yml.error)
    assert "home_visits" not in {s.name for s in specs}


def test_serving_keeps_a_broken_datasets_view_and_drops_a_removed_ones(
    datasets: Path, home: Home, monkeypatch
) -> None:
    """sick_leave's YAML is broken (a typo to fix), meal_delivery_list's was removed: only
    the latter leaves the serving layer, and its Delta table stays in the lake."""
    (datasets / "meal_delivery_list.yaml").unlink()
    monkeypatch.setenv("KOMMUNELAKE_HOME", str(home.root))
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    for name in ("cpr_persons", "sick_leave", "meal_delivery_list"):
        write_batch(
            home.table_uri("silver", name), pl.DataFrame({"x": [1]}), mode="snapshot", app_id=name
        )
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            build_assets(*read_specs(datasets)),
            selection=["serving/lake_duckdb"],
            resources={"lake": lake_resource()},
            instance=instance,
        )
    assert result.success
    con = connect(home.root)
    served = con.sql("select view_name from duckdb_views() where schema_name = 'silver'")
    assert sorted(r[0] for r in served.fetchall()) == ["cpr_persons", "sick_leave"]
    con.close()
    assert pl.read_delta(home.table_uri("silver", "meal_delivery_list")).height == 1
