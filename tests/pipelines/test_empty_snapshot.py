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


def test_a_person_whose_row_is_quarantined_stays_in_the_snapshot_and_is_not_deleted(
    home: Home,
) -> None:
    # A snapshot is the whole register: a person missing from it has moved away or died. A
    # row that fails the contract (here an impossible birth date) is not a missing person;
    # recording one as deleted sent a false event downstream and dropped them from silver.
    generate(home.root, persons=300)
    folder = home.drop / SPEC.name
    [export] = folder.glob("*.csv")
    header, _moved, second, *rest = export.read_bytes().splitlines(keepends=True)
    [first_load] = load_dataset(SPEC, home, TEST_KEY).batches  # the demo's own bad rows
    before = _silver(home)

    export.unlink()
    fields = second.split(b";")
    fields[3] = b"2001-13-45"  # FOEDSELSDATO: no such date
    # The first person moved away: left out of the register, the one key to record as deleted
    (folder / "cpr_personer_ny.csv").write_bytes(header + b";".join(fields) + b"".join(rest))
    [result] = load_dataset(SPEC, home, TEST_KEY).batches

    assert result.status == "loaded"
    assert result.rows_quarantined == first_load.rows_quarantined + 1
    after = _silver(home)
    assert after.height == before.height - 1  # only the person who moved away
    held = before.join(after.filter(pl.col("_batch_id") != result.batch_id), on="cpr")
    assert held.height == 1 and held["birth_date"].to_list() == held["birth_date_right"].to_list()
    deleted = pl.read_delta(home.table_uri("quality", "deletions"))
    [gone] = before.join(after, on="cpr", how="anti")["cpr"].to_list()
    assert deleted["key"].to_list() == [f'{{"cpr":"{gone}"}}']
