"""A contract that changes after its dataset has loaded, through real loads: a field added to
the contract is an additive column and evolves; a breaking change fails with silver as it
was."""

from __future__ import annotations

import dataclasses

import polars as pl
import pytest

import schemas.sick_leave
from connectors.demo import generate
from lake.errors import LakeError
from lake.home import Home
from lake.tables import table_version
from pipelines.ingest import load_dataset
from pipelines.specs import DatasetSpec, spec_by_name
from schemas.fields import field
from tests.conftest import TEST_KEY


class SickLeaveWithNote(schemas.sick_leave.SickLeave):
    note: str = field("A remark from HR.", "internal", nullable=True)


class SickLeaveDaysAsText(schemas.sick_leave.SickLeave):
    days: str = field("Absence in working days, as sent.", "sensitive")


def _loaded_then_redelivered(home: Home, header: str, value: str) -> tuple[DatasetSpec, int]:
    """sick_leave loaded once; then a file with one more column `header` (every row `value`)
    dropped: the spec and silver's version."""
    generate(home.root, persons=300)
    spec = spec_by_name("sick_leave")
    [first] = load_dataset(spec, home, TEST_KEY).batches
    assert first.status == "loaded"
    folder = home.drop / "sick_leave"
    lines = next(folder.glob("*.csv")).read_bytes().decode("cp1252").splitlines()
    wider = [f"{lines[0]};{header}"] + [f"{line};{value}" for line in lines[1:]]
    (folder / "sygefravaer_v2.csv").write_bytes(("\r\n".join(wider) + "\r\n").encode("cp1252"))
    return spec, table_version(home.table_uri("silver", "sick_leave"))


def test_a_field_added_to_the_contract_is_added_to_silver(home, monkeypatch) -> None:
    # What the schema_drift check says to do with a wanted new column: add it to the
    # contract. Every later load of the dataset failed with "new column(s) ['note'] (allow
    # them with `schema_drift: evolve` ..., or add them to the contract)", though it was.
    spec, _ = _loaded_then_redelivered(home, "Bemærkning", "ring tilbage")
    monkeypatch.setattr(schemas.sick_leave, "SickLeaveWithNote", SickLeaveWithNote, raising=False)
    noted = dataclasses.replace(
        spec,
        contract_ref="sick_leave:SickLeaveWithNote",
        columns={**spec.columns, "Bemærkning": "note"},
    )

    [second] = load_dataset(noted, home, TEST_KEY).batches

    assert (second.status, second.rows_quarantined) == ("loaded", 0)
    silver = pl.read_delta(home.table_uri("silver", "sick_leave"))
    # the export holds every absence again: the merge updated each with its note
    assert silver.height == second.rows_valid
    assert set(silver["note"]) == {"ring tilbage"}


def test_a_breaking_contract_change_fails_and_leaves_silver_as_it_was(home, monkeypatch) -> None:
    spec, version = _loaded_then_redelivered(home, "Ekstra", "x")
    before = pl.read_delta(home.table_uri("silver", "sick_leave"))
    monkeypatch.setattr(
        schemas.sick_leave, "SickLeaveDaysAsText", SickLeaveDaysAsText, raising=False
    )
    as_text = dataclasses.replace(spec, contract_ref="sick_leave:SickLeaveDaysAsText")

    with pytest.raises(LakeError, match="'days' is Float64 in the table but String") as error:
        load_dataset(as_text, home, TEST_KEY)

    assert "Nothing was written" in str(error.value)
    uri = home.table_uri("silver", "sick_leave")
    assert table_version(uri) == version
    assert pl.read_delta(uri).equals(before)
