"""Pandera check wrappers around the shared expressions, for use inside DataFrameModels."""

from __future__ import annotations

import polars as pl
from pandera.api.polars.types import PolarsData

from schemas import checks


def cpr(data: PolarsData) -> pl.LazyFrame:
    return checks.valid_cpr_column(data.lazyframe, data.key)


def cvr(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(checks.is_valid_cvr(pl.col(data.key)))


def kommunekode(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(checks.is_valid_kommunekode(pl.col(data.key)))


def postnummer(data: PolarsData) -> pl.LazyFrame:
    return data.lazyframe.select(checks.is_valid_postnummer(pl.col(data.key)))
