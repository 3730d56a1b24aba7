"""Every contract documents its fields, and data-level checks really run on collected frames."""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl
import pytest

from pipelines.specs import load_specs
from schemas.cpr_persons import CprPersons
from schemas.fields import CLASSIFICATIONS, field

CONTRACTS = [spec.contract for spec in load_specs()]


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
def test_every_field_has_description_and_classification(contract) -> None:
    for name, column in contract.to_schema().columns.items():
        assert column.description, f"{contract.__name__}.{name} has no description"
        assert column.metadata["classification"] in CLASSIFICATIONS, name


def test_identifiers_are_only_personal_or_sensitive() -> None:
    with pytest.raises(ValueError, match="personal or sensitive"):
        field("A public id.", "public", identifier="cpr")
    with pytest.raises(ValueError, match="classification"):
        field("Unclassified.", "secret")  # type: ignore[arg-type]


def _persons(**overrides) -> pl.DataFrame:
    row = {
        "cpr": "0101901234",
        "first_name": "Anne",
        "last_name": "Jensen",
        "birth_date": dt.date(1990, 1, 1),
        "sex": "K",
        "civil_status": "G",
        "address_id": "0a3f50a0-0000-4000-8000-000000000001",
        "moved_in": dt.date(2015, 5, 1),
    }
    row.update(overrides)
    return pl.DataFrame([row])


def test_valid_row_passes() -> None:
    CprPersons.validate(_persons(), lazy=True)


@pytest.mark.parametrize(
    ("override", "check"),
    [
        ({"cpr": "3102901234"}, "cpr_valid"),  # 31 February
        ({"sex": "X"}, "isin"),
        ({"address_id": "not-a-uuid"}, "str_matches"),
        ({"last_name": None}, "not_nullable"),
    ],
)
def test_a_bad_value_is_caught_on_a_collected_frame(override, check) -> None:
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        CprPersons.validate(_persons(**override), lazy=True)
    failed = caught.value.failure_cases["check"].cast(pl.String).to_list()
    assert any(check in f for f in failed), failed
