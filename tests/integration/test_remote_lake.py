"""The same demo load with the lake on local disk, on S3 (moto) and on Azure (Azurite).

Issue #5: KOMMUNELAKE_LAKE_URI moves the lake into object storage and nothing else changes.
The file datasets of a small Demo Kommune are landed, loaded, modelled into gold and served
from a local DuckDB file, once per store; every serving view must count what the local-disk
run of the same home counts, and a second load must add nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import dagster as dg
import pytest
from deltalake import DeltaTable

from connectors.demo import generate
from connectors.files import drop_files
from lake import connect, storage
from lake.errors import ConfigError
from lake.home import Home, resolve_home
from lake.landing import manifest
from lake.serving import build_serving
from pipelines.api_sources import is_api
from pipelines.catalog import catalog_tables
from pipelines.checks import reference_violations
from pipelines.cli import main
from pipelines.gold.models import MODELS, build
from pipelines.ingest import load_dataset
from pipelines.maintenance_assets import maintenance_assets, maintenance_key
from pipelines.resources import LakeResource
from pipelines.specs import DatasetSpec, MaintenanceSpec, load_specs
from tests.conftest import TEST_KEY
from tests.lake import objectstores

pytestmark = pytest.mark.integration

PERSONS = 200
LAYERS = ("silver", "gold", "quarantine", "quality", "state")


def _file_specs() -> list[DatasetSpec]:
    return [spec for spec in load_specs() if not is_api(spec)]


def _load(home: Home, *, check: bool = True) -> dict[str, tuple[int, int]]:
    """Load every file dataset, build gold, serve; returns the reference checks' findings
    (rows without a match, rows checked) when `check`."""
    specs = _file_specs()
    for spec in specs:
        report = load_dataset(spec, home, TEST_KEY)
        assert not report.rejected, report.rejected
    for model in MODELS:
        build(home, model)
    findings = {
        f"{spec.name}->{ref.dataset}": reference_violations(home, spec, ref)[:2]
        for spec in specs
        for ref in spec.quality.references
        if check
    }
    build_serving(home, catalog_tables(specs, home))
    return findings


def _view_counts(home: Home) -> dict[str, int]:
    """Rows of every silver and gold view, quality.runs and quality.quarantine (the other
    quality and catalog views are built from these and cost seconds each on moto)."""
    con = connect(home.root)
    try:
        views = con.sql(
            "SELECT schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal "
            "AND (schema_name IN ('silver', 'gold') OR view_name IN ('runs', 'quarantine'))"
        ).fetchall()
        return {v: con.sql(f"SELECT count(*) FROM {v}").fetchone()[0] for (v,) in views}
    finally:
        con.close()


def _delta_versions(home: Home) -> dict[str, int]:
    options = dict(home.storage_options())
    tables = {"landing/_manifest": home.manifest_uri}
    for layer in LAYERS:
        for name, uri in storage.list_tables(home.layer_uri(layer)).items():
            tables[f"{layer}/{name}"] = uri
    return {key: DeltaTable(uri, storage_options=options).version() for key, uri in tables.items()}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Serving view counts and reference findings of the local-disk run."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv(storage.LAKE_URI_VARIABLE, raising=False)
        home = resolve_home(tmp_path_factory.mktemp("local") / "home")
        generate(home.root, persons=PERSONS)
        findings = _load(home)
        return _view_counts(home), findings


@pytest.fixture(scope="module", params=["s3", "azure"])
def lake_store(
    request, tmp_path_factory
) -> Iterator[tuple[str, dict[str, str], Callable[[], list[str]]]]:
    """(lake URI, environment, a lister of the keys in the store) for a fresh bucket or
    container; the lister uses the store's own SDK, not the lake's code."""
    workdir = tmp_path_factory.mktemp(request.param)
    if request.param == "s3":
        with objectstores.moto_server(workdir) as server:
            bucket = objectstores.create_bucket(server)
            yield (
                f"s3://{bucket}/kommune",
                objectstores.s3_environment(server),
                lambda: objectstores.s3_keys(server, bucket),
            )
    else:
        if not objectstores.azurite_installed():
            pytest.skip(objectstores.AZURITE_MISSING)
        with objectstores.azurite_server(workdir) as server:
            container = objectstores.create_container(server)
            yield (
                f"az://{container}/kommune",
                objectstores.azure_environment(server),
                lambda: objectstores.azure_keys(server, container),
            )


def test_a_demo_load_in_object_storage_serves_what_local_disk_serves(
    lake_store, local_run, tmp_path, monkeypatch
) -> None:
    lake_uri, environment, keys = lake_store
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(storage.LAKE_URI_VARIABLE, lake_uri)
    home = resolve_home(tmp_path / "home")
    generate(home.root, persons=PERSONS)
    specs = _file_specs()

    findings = _load(home)

    # The tables are in the store (read back with the store's own SDK), none on local disk.
    stored = set(keys())
    for spec in specs:
        assert f"kommune/silver/{spec.name}/_delta_log/00000000000000000000.json" in stored
    for model in MODELS:
        assert f"kommune/gold/{model.name}/_delta_log/00000000000000000000.json" in stored
    assert not (home.root / "lake").exists()
    assert home.serving_db.is_file()  # serving stays local

    local_counts, local_findings = local_run
    counts = _view_counts(home)
    assert counts == local_counts
    assert {v for v in counts if v.startswith("silver.")} == {f"silver.{s.name}" for s in specs}
    assert counts["silver.cpr_persons"] > PERSONS * 0.9
    assert counts["gold.population_by_district"] > 0 and counts["quality.quarantine"] > 0
    assert findings == local_findings

    # One run row per landed batch, one batch per delivered file.
    delivered = sum(len(drop_files(home.drop / s.name, s.patterns)) for s in specs)
    landed = sorted(f.batch_id for f in manifest(home.manifest_uri))
    con = connect(home.root)
    try:
        runs = sorted(b for (b,) in con.sql("SELECT batch_id FROM quality.runs").fetchall())
    finally:
        con.close()
    assert len(landed) == delivered
    assert runs == landed

    # The same deliveries again: nothing new in any Delta table.
    before = _delta_versions(home)
    assert len(before) >= 1 + 2 * len(specs) + len(MODELS)
    _load(home, check=False)
    assert _delta_versions(home) == before

    # Weekly maintenance runs on the stored tables too, through the Dagster resource.
    spec = dataclasses.replace(
        next(s for s in specs if s.name == "cpr_persons"),
        maintenance=MaintenanceSpec(
            checkpoint_every=1, vacuum_retention_hours=0, allow_short_retention=True
        ),
    )
    lake = LakeResource(home=str(home.root), pseudonym_key=TEST_KEY.decode())
    result = dg.materialize(maintenance_assets([spec]), resources={"lake": lake})
    events = {e.asset_key: e for e in result.get_asset_materialization_events()}
    event = events[maintenance_key("cpr_persons")]
    shared = events[maintenance_key("shared_tables")].materialization.metadata
    assert shared["tables"].value >= 3  # manifest, quality/runs, gold ...: on S3 as well
    assert event.materialization.metadata["checkpoint_created"].value is True
    assert any(
        k.startswith("kommune/silver/cpr_persons/_delta_log/") and k.endswith(".checkpoint.parquet")
        for k in keys()
    )
    con = connect(home.root)  # DuckDB now starts from the checkpoint in the store
    try:
        rows = con.sql("SELECT count(*) FROM silver.cpr_persons").fetchone()[0]
    finally:
        con.close()
    assert rows == counts["silver.cpr_persons"]


def test_writers_refuse_an_s3_lake_without_conditional_put(tmp_path, monkeypatch, capsys) -> None:
    with objectstores.careless_s3() as server:
        for name, value in objectstores.s3_environment(server).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv(storage.LAKE_URI_VARIABLE, "s3://careless/lake")
        monkeypatch.delenv("KOMMUNELAKE_PSEUDONYM_KEY", raising=False)
        home = tmp_path / "home"

        assert main(["load", "--home", str(home)]) == 1
        error = capsys.readouterr().err
        assert "ignores conditional PUT (If-None-Match: *)" in error
        assert not (home / "dagster").exists()  # refused before the home was prepared

        assert main(["demo", "--home", str(home), "--persons", "10"]) == 1
        assert "ignores conditional PUT" in capsys.readouterr().err
        assert not (home / "drop").exists()  # refused before generating anything

        resource = LakeResource(home=str(home), pseudonym_key="k" * 64)
        with (
            pytest.raises(dg.DagsterResourceFunctionError) as refused,
            dg.build_resources({"lake": resource}),
        ):
            pass
        assert isinstance(refused.value.__cause__, ConfigError)
        assert "ignores conditional PUT" in str(refused.value.__cause__)


def test_the_dagster_resource_accepts_a_lake_with_conditional_put(tmp_path, monkeypatch) -> None:
    with objectstores.moto_server(tmp_path) as server:
        for name, value in objectstores.s3_environment(server).items():
            monkeypatch.setenv(name, value)
        bucket = objectstores.create_bucket(server)
        monkeypatch.setenv(storage.LAKE_URI_VARIABLE, f"s3://{bucket}/lake")
        resource = LakeResource(home=str(tmp_path / "home"), pseudonym_key="k" * 64)
        with dg.build_resources({"lake": resource}) as resources:
            assert resources.lake.lake_home().lake_root == f"s3://{bucket}/lake"
