"""A snapshot replaces silver, so a file without a valid row would empty the table: a failed
export that wrote its header only, or one whose every row fails the contract, is refused and
silver keeps the last good snapshot."""

from __future__ import annotations

import polars as pl
import pytest

from connectors.demo import generate
from lake.home import Home
from lake.quality import runs
from pipelines.ingest import load_dataset
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY

SPEC = spec_by_name("cpr_persons")  # load_mode: snapshot


def _silver(home: Home) -> pl.DataFrame:
    return pl.read_delta(home.table_uri("silver", SPEC.name))


@pytest.mark.parametrize("broken", ["header only", "every row failing"])
def test_a_snapshot_without_a_valid_row_is_refused_and_silver_is_kept(
    home: Home, broken: str
) -> None:
    generate(home.root, persons=300)
    folder = home.drop / SPEC.name
    [export] = folder.glob("*.csv")
    lines = export.read_bytes().splitlines(keepends=True)
    load_dataset(SPEC, home, TEST_KEY)
    before = _silver(home)
    assert before.height > 0

    export.unlink()
    if broken == "header only":
        data = lines[0]
    else:  # the CPR column (first) spoilt in every row: each fails the contract
        data = lines[0] + b"".join(b"x" + line for line in lines[1:])
    (folder / "cpr_personer_ny.csv").write_bytes(data)
    [result] = load_dataset(SPEC, home, TEST_KEY).batches

    assert result.status == "rejected"
    assert "as a snapshot it would replace every row of silver.cpr_persons with none" in (
        result.message
    )
    assert _silver(home).equals(before)
    assert (folder / "rejected" / "cpr_personer_ny.csv.error.txt").exists()
    assert runs(home, SPEC.name)["status"].to_list() == ["loaded", "rejected"]
