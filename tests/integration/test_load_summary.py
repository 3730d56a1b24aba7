"""`kommunelake load`'s summary when a step fails before recording a batch: the dataset's
row must not read as an earlier, successful load, nor the checks as all passed."""

from __future__ import annotations

import polars as pl
import pytest

from connectors.demo import generate
from lake.home import Home
from lake.quality import runs
from pipelines.cli import main

pytestmark = pytest.mark.integration


def test_a_load_the_lake_refuses_is_reported_as_failed(tmp_path, monkeypatch, capsys) -> None:
    for name in ("KOMMUNELAKE_HOME", "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", "k" * 64)
    home = Home(tmp_path / "home")
    generate(home.root, persons=200)
    select = ["--select", "key:silver/sick_leave"]
    assert main(["load", "--home", str(home.root), *select]) == 0
    # The table's `days` as text: the contract's float is then a breaking change, which the
    # lake refuses with the table untouched, before any quality.runs row is written.
    uri = home.table_uri("silver", "sick_leave")
    retyped = pl.read_delta(uri).with_columns(pl.col("days").cast(pl.String))
    retyped.write_delta(uri, mode="overwrite", delta_write_options={"schema_mode": "overwrite"})
    [export] = (home.drop / "sick_leave").glob("*.csv")
    export.write_bytes(b"".join(export.read_bytes().splitlines(keepends=True)[:-1]))
    capsys.readouterr()

    assert main(["load", "--home", str(home.root), *select]) != 0

    out, err = capsys.readouterr()
    assert runs(home, "sick_leave")["status"].to_list() == ["loaded"]  # nothing recorded
    [row] = [line for line in out.splitlines() if line.startswith("sick_leave")]
    assert "FAILED, see below" in row and "unchanged" not in row
    assert "All checks passed." not in out
    assert "FAILED silver__sick_leave:" in err and "days" in err
