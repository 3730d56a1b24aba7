"""`kommunelake maintain`: the weekly maintenance job from the command line, for a lake whose
loads run from cron or by hand, without the Dagster daemon that runs the schedule."""

from __future__ import annotations

import dagster as dg
import polars as pl
import pytest
from deltalake import DeltaTable

from connectors.demo import generate
from lake.home import Home
from pipelines.cli import main
from pipelines.ingest import load_dataset
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY


@pytest.fixture
def loaded_home(home: Home, monkeypatch) -> Home:
    """dar_addresses loaded from two deliveries: the shared tables (landing manifest,
    quality/runs) gained a file per load."""
    for name in ("KOMMUNELAKE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    spec = spec_by_name("dar_addresses")
    for seed in (1, 2):
        generate(home.root, persons=120, seed=seed)
        load_dataset(spec, home, TEST_KEY)
    return home


def _files(uri: str) -> int:
    return len(DeltaTable(uri).file_uris())


def test_maintain_compacts_the_shared_tables_and_keeps_every_row(loaded_home, capsys) -> None:
    runs = loaded_home.runs_uri
    before = pl.read_delta(runs).sort("finished_at")
    assert _files(runs) >= 2

    assert main(["maintain", "--home", str(loaded_home.root)]) == 0

    assert _files(runs) == 1
    assert pl.read_delta(runs).sort("finished_at").equals(before)
    out = capsys.readouterr().out
    assert "maintenance/shared_tables" in out and "maintenance/dar_addresses" in out
    # a dataset never loaded here is named, not failed
    assert "maintenance/cpr_persons" in out and "no table yet" in out
    with dg.DagsterInstance.from_config(str(loaded_home.dagster_home)) as instance:
        [run] = instance.get_runs()
        assert run.tags["kommunelake/launched_by"] == "cli"
        event = instance.get_latest_materialization_event(
            dg.AssetKey(["maintenance", "shared_tables"])
        )
        assert event is not None and event.run_id == run.run_id


def test_maintain_one_dataset_leaves_the_rest_alone(loaded_home, capsys) -> None:
    runs = loaded_home.runs_uri
    files = _files(runs)

    assert main(["maintain", "--home", str(loaded_home.root), "--dataset", "dar_addresses"]) == 0

    assert _files(runs) == files  # the shared tables were not part of it
    out = capsys.readouterr().out
    assert "maintenance/dar_addresses" in out and "shared_tables" not in out


def test_an_unknown_dataset_is_one_line_naming_the_known_ones(home, monkeypatch, capsys) -> None:
    for name in ("KOMMUNELAKE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())

    assert main(["maintain", "--home", str(home.root), "--dataset", "dar_adresses"]) == 1

    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("kommunelake maintain: --dataset dar_adresses: no such dataset")
    assert "dar_addresses" in line
