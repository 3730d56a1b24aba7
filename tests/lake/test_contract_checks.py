"""The one-query contract checks report exactly what pandera reports, contract by contract."""

from __future__ import annotations

import datetime as dt
import importlib
import inspect
import pkgutil
import random

import pandera.polars as pa
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import schemas
from lake.contract_checks import failure_cases
from lake.validation import conform

CONTRACTS = sorted(
    {
        obj
        for info in pkgutil.iter_modules(schemas.__path__)
        for _, obj in inspect.getmembers(importlib.import_module(f"schemas.{info.name}"))
        if inspect.isclass(obj)
        and issubclass(obj, pa.DataFrameModel)
        and obj is not pa.DataFrameModel
    },
    key=lambda contract: contract.__name__,
)
# Text that breaks or passes the shared checks: CPR, CVR, kommunekode and postcode shapes.
_TEXT = [
    "",
    "abc",
    "0101",
    "8000",
    "101",
    "0851",
    "12345678",
    "1234567890",
    "010190-1234",
    "311299-0000",
    "320190-1234",
    "290201-4000",
    "010190-123",
    "Oprettet",
    "æøå",
]


def _value(dtype: pl.DataType, rng: random.Random, allowed: list[object]) -> object:
    if rng.random() < 0.08:
        return None
    if allowed and rng.random() < 0.6:
        return rng.choice(allowed)
    if dtype == pl.String:
        return rng.choice([*_TEXT, str(rng.randrange(10 ** rng.choice([3, 4, 8, 10])))])
    if dtype == pl.Date:
        return dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(-3000, 12000))
    if dtype == pl.Datetime:
        return dt.datetime(2000, 1, 1) + dt.timedelta(minutes=rng.randrange(-(10**6), 10**7))
    if dtype in (pl.Float64, pl.Float32):
        return rng.choice([float("nan"), -1.5, 0.0, rng.uniform(-100, 10**6)])
    if dtype == pl.Boolean:
        return rng.random() < 0.5
    return rng.randrange(-100, 10**6)


def _frame(contract: type[pa.DataFrameModel], seed: int, rows: int = 400) -> pl.DataFrame:
    rng = random.Random(seed)
    columns = {}
    for name, column in contract.to_schema().columns.items():
        allowed = [
            value
            for check in column.checks
            for value in (check.statistics or {}).get("allowed_values", ())
        ]
        dtype = column.dtype.type
        values = [_value(dtype, rng, sorted(allowed, key=str)) for _ in range(rows)]
        plain = dtype.base_type() if dtype == pl.Datetime else dtype  # time zone added below
        columns[name] = pl.Series(name, values, dtype=plain).cast(dtype)
    return pl.DataFrame(columns)


def _pandera(frame: pl.DataFrame, contract: type[pa.DataFrameModel]) -> pl.DataFrame:
    try:
        contract.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        return errors.failure_cases
    return pl.DataFrame(
        schema={
            "index": pl.Int32,
            "column": pl.String,
            "check": pl.String,
            "failure_case": pl.String,
        }
    )


def _comparable(cases: pl.DataFrame, contract: type[pa.DataFrameModel]) -> pl.DataFrame:
    fields = list(contract.to_schema().columns)
    # A dataframe-level check's failure case is the whole row (JSON in pandera); quarantine
    # never keeps it, so for those only where they failed is compared.
    return cases.select(
        pl.col("index").cast(pl.Int64),
        "column",
        pl.col("check").cast(pl.String),
        pl.when(pl.col("column").is_in(fields)).then(pl.col("failure_case")).cast(pl.String),
    ).sort(pl.all())


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("seed", range(4))
def test_failure_cases_equal_pandera_on_every_contract(contract, seed) -> None:
    frame = _frame(contract, seed)
    ours = failure_cases(frame, contract)
    assert ours is not None, f"{contract.__name__} fell back to pandera"
    theirs = _pandera(frame, contract)
    assert theirs.height, "the generated frame should break some checks"
    assert_frame_equal(_comparable(ours, contract), _comparable(theirs, contract))


def test_a_frame_that_passes_has_no_failure_cases() -> None:
    from schemas.case_extract import CaseExtract

    frame = pl.DataFrame(
        {
            "case_id": ["S1"],
            "cpr": ["010190-1234"],
            "case_type": ["Madservice"],
            "opened": [dt.date(2024, 1, 2)],
            "closed": [None],
            "unit": ["Ældre"],
            "caseworker": ["cw1"],
            "amount": [10.5],
            "status": ["Bevilget"],
            "kommunekode": ["0101"],
        },
        schema_overrides={"closed": pl.Date},
    )
    assert _pandera(frame, CaseExtract).is_empty()
    cases = failure_cases(frame, CaseExtract)
    assert cases is not None and cases.is_empty()


class _UniqueCodes(pa.DataFrameModel):
    code: str = pa.Field(unique=True)
    amount: float = pa.Field(ge=0)


def test_contracts_it_cannot_reproduce_go_to_pandera() -> None:
    """A unique column is a check across rows: left to pandera, with the same outcome."""
    frame = pl.DataFrame(
        {"code": ["a", "b", "a"], "amount": ["1", "-2", "3"], "_source_row": [2, 3, 4]}
    )
    typed = frame.with_columns(pl.col("amount").cast(pl.Float64))
    assert failure_cases(typed, _UniqueCodes) is None
    result = conform(frame, _UniqueCodes)
    assert sorted(result.failures.select("_source_row", "check").rows()) == [
        (2, "field_uniqueness"),
        (3, "greater_than_or_equal_to(0)"),
        (4, "field_uniqueness"),
    ]
