"""Shared identifier checks, on hand-made edge cases and on values from real register responses."""

from __future__ import annotations

import datetime as dt
import json
import re

import polars as pl
import pytest

from schemas import checks


def _apply(expr_fn, values: list[str | None]) -> list[bool | None]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(expr_fn(pl.col("v"))).to_series().to_list()


def _mod11(cpr: str) -> int:
    return sum(int(d) * w for d, w in zip(cpr, (4, 3, 2, 7, 6, 5, 4, 3, 2, 1), strict=True)) % 11


@pytest.mark.parametrize(
    ("cpr", "birth"),
    [
        ("0101901234", dt.date(1990, 1, 1)),
        ("010190-1234", dt.date(1990, 1, 1)),  # fagsystem style with dash
        ("3112364000", dt.date(2036, 12, 31)),  # 7th digit 4, year <= 36 → 2000s
        ("3112374000", dt.date(1937, 12, 31)),  # 7th digit 4, year >= 37 → 1900s
        ("0101575000", dt.date(2057, 1, 1)),  # 5-8, year <= 57 → 2000s
        ("0101585000", dt.date(1858, 1, 1)),  # 5-8, year >= 58 → 1800s
        ("2902004000", dt.date(2000, 2, 29)),  # 2000 is a leap year
    ],
)
def test_cpr_birth_date_follows_the_century_rule(cpr: str, birth: dt.date) -> None:
    frame = pl.DataFrame({"c": [cpr]})
    assert frame.select(checks.cpr_birth_date(pl.col("c"))).item() == birth
    assert _apply(checks.is_valid_cpr, [cpr]) == [True]


@pytest.mark.parametrize(
    "cpr",
    ["3201901234", "0013901234", "2902001234", "010190123", "01019O1234", "01019012345", ""],
)
def test_cpr_with_impossible_date_or_shape_is_invalid(cpr: str) -> None:
    # 2902001234: 29 Feb 1900 (7th digit 1 → 1900s), and 1900 was not a leap year.
    assert _apply(checks.is_valid_cpr, [cpr]) == [False]


def test_cpr_without_modulus_11_is_still_valid() -> None:
    serials = (f"0101901{n:03d}" for n in range(1000))
    failing_mod11 = next(c for c in serials if _mod11(c) != 0)
    assert _apply(checks.is_valid_cpr, [failing_mod11]) == [True]


def test_null_is_left_to_the_nullability_check() -> None:
    assert _apply(checks.is_valid_cpr, [None]) == [None]
    assert _apply(checks.is_valid_cvr, [None]) == [None]


def test_real_cvr_numbers_pass_and_altered_ones_fail(real_fixtures) -> None:
    text = "".join(p.read_text() for p in (real_fixtures / "cvr").glob("*.json"))
    numbers = sorted(set(re.findall(r'"cvrNummer"\s*:\s*(\d{8})', text)))
    assert len(numbers) >= 5
    assert all(_apply(checks.is_valid_cvr, numbers))
    # One changed digit always breaks a weighted modulus-11 check.
    altered = [n[:-1] + str((int(n[-1]) + 1) % 10) for n in numbers]
    assert not any(_apply(checks.is_valid_cvr, altered))
    assert _apply(checks.is_valid_cvr, ["02505294"]) == [False]  # leading zero


def test_real_kommunekoder_and_postnumre_pass(real_fixtures) -> None:
    values = []
    for path in (real_fixtures / "dawa").glob("*.json"):
        values.append(json.loads(path.read_text()))
    text = json.dumps(values)
    codes = sorted(set(re.findall(r'"kommunekode": "(\d+)"', text)))
    postcodes = sorted(set(re.findall(r'"postnr": "(\d+)"', text)))
    assert codes and postcodes
    assert all(_apply(checks.is_valid_kommunekode, codes))
    assert all(_apply(checks.is_valid_postnummer, postcodes))
    assert _apply(checks.is_valid_kommunekode, ["350", "0999", "03500"]) == [False] * 3
    assert _apply(checks.is_valid_postnummer, ["0700", "12345", "99a9"]) == [False] * 3


def _calendar_birth(cpr: str) -> dt.date | None:
    """The CPR office's century rule, applied with Python's calendar as the oracle."""
    day, month, yy, seventh = int(cpr[:2]), int(cpr[2:4]), int(cpr[4:6]), int(cpr[6])
    if seventh <= 3:
        century = 1900
    elif seventh in (4, 9):
        century = 2000 if yy <= 36 else 1900
    else:
        century = 2000 if yy <= 57 else 1800
    try:
        return dt.date(century + yy, month, day)
    except ValueError:
        return None


def test_cpr_birth_dates_agree_with_the_calendar_for_every_date_part() -> None:
    """Days 00-32, months 00-13, every year and 7th digit: 462,000 date parts."""
    cprs = [
        f"{day:02d}{month:02d}{yy:02d}{seventh}123"
        for day in range(33)
        for month in range(14)
        for yy in range(100)
        for seventh in range(10)
    ]
    frame = pl.DataFrame({"c": cprs})
    got = frame.select(
        checks.cpr_birth_date(pl.col("c")).alias("birth"),
        checks.is_valid_cpr(pl.col("c")).alias("valid"),
    )
    expected = [_calendar_birth(c) for c in cprs]
    assert got["birth"].to_list() == expected
    assert got["valid"].to_list() == [b is not None for b in expected]


def test_the_frame_form_of_the_cpr_check_answers_as_the_expression() -> None:
    """`valid_cpr_column` (the contracts' check) against `is_valid_cpr` on every date part,
    separators, wrong shapes, non-ASCII digits and nulls."""
    cprs = [
        f"{day:02d}{month:02d}{yy:02d}{sep}{seventh}123"
        for day in range(33)
        for month in range(14)
        for yy in range(0, 100, 7)
        for seventh in range(10)
        for sep in ("", "-", " ")
    ]
    cprs += [None, "", "010190123", "01019012345", "01019O1234", "٠١٠١٩٠١٢٣٤", "+101901234"]
    frame = pl.DataFrame({"c": cprs}, schema={"c": pl.String})
    expected = frame.select(checks.is_valid_cpr(pl.col("c"))).to_series()
    got = checks.valid_cpr_column(frame.lazy(), "c").collect().to_series()
    assert got.name == "c"
    assert got.to_list() == expected.to_list()
    assert got.null_count() == 1 and got.sum() > 0 and (~got).sum() > 0
