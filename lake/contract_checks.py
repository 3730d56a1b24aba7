"""A contract's data checks on one chunk, in one polars `collect_all` instead of pandera's many.

pandera's polars backend collects three or four queries per check and column: hundreds per
piece of a large extract. On the bench extract its checks took 113-133 ms per 24 MB piece,
these 79-88 ms (the CPR date check itself is ~40 ms). Here the same check functions pandera would
call (builtins and the contract's own), with the same rules for non-nullable columns
(null or NaN fails), `ignore_na` and boolean-frame results, are evaluated together in one
`collect_all`, and the failure cases come out in pandera's shape and with its check names.

Contracts that use what this does not reproduce (unique or regex columns, coercion, strict
or ordered schemas, grouped, element-wise or warning checks, a limit on failure cases, a
check that answers with a scalar or a frame of another height) get `None`, and the caller
validates with pandera itself. Tested equal to pandera on every contract in `schemas/`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandera.backends.polars.builtin_checks  # noqa: F401  (pandera's builtins for PolarsData)
import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData
from pandera.config import ValidationDepth, get_config_context
from pandera.engines import polars_engine

_RESULT = "_passed"
_CASES = {"index": pl.Int32, "column": pl.String, "check": pl.String, "failure_case": pl.String}


@dataclass(frozen=True)
class _RowCheck:
    column: str  # a contract field, or the schema's name for a dataframe-level check
    key: str  # the column the check reads; "*" for the whole row
    name: str  # pandera's check identifier, e.g. "greater_than_or_equal_to(0)"
    check: pa.Check | None  # None: the column's not-nullable rule


def failure_cases(frame: pl.DataFrame, contract: type[pa.DataFrameModel]) -> pl.DataFrame | None:
    """pandera's `failure_cases` (index, column, check, failure_case) for `frame`, an empty
    frame when every row passes, or None when the contract needs pandera itself."""
    schema = contract.to_schema()
    checks = _row_checks(schema, frame.schema)
    if checks is None:
        return None
    lazy = frame.lazy()
    plans = []
    for row_check in checks:
        plan = _plan(lazy, row_check, frame.schema)
        if plan is None:
            return None
        plans.append(plan)
    results = pl.collect_all(plans)
    if any(result.height != frame.height for result in results):
        return None  # an aggregate answer: only pandera knows how to report it
    parts = []
    for row_check, result in zip(checks, results, strict=True):
        failed = result.with_row_index("index").filter(~pl.col(_RESULT))
        if failed.is_empty():
            continue
        index = failed.get_column("index")
        value = (
            pl.lit(None, pl.String)
            if row_check.key == "*"
            else frame.get_column(row_check.key).gather(index).cast(pl.String)
        )
        parts.append(
            pl.DataFrame({"index": index.cast(pl.Int32)}).with_columns(
                pl.lit(row_check.column, pl.String).alias("column"),
                pl.lit(row_check.name, pl.String).alias("check"),
                value.alias("failure_case"),
            )
        )
    return pl.concat(parts) if parts else pl.DataFrame(schema=_CASES)


def _row_checks(schema: pa.DataFrameSchema, frame_schema: pl.Schema) -> list[_RowCheck] | None:
    config = get_config_context(validation_depth_default=ValidationDepth.SCHEMA_AND_DATA)
    if (
        not config.validation_enabled
        or config.validation_depth != ValidationDepth.SCHEMA_AND_DATA
        or getattr(config, "use_narwhals_backend", False)
    ):
        return None
    if (
        schema.strict
        or schema.ordered
        or schema.unique
        or schema.coerce
        or schema.add_missing_columns
        or schema.drop_invalid_rows
    ):
        return None
    checks: list[_RowCheck] = []
    for name, column in schema.columns.items():
        if column.regex or column.unique or column.coerce or column.drop_invalid_rows:
            return None
        # A column missing or of another type is a schema failure: pandera reports it.
        if name not in frame_schema or column.dtype is None:
            return None
        if not column.dtype.check(polars_engine.Engine.dtype(frame_schema[name])):
            return None
        if not column.nullable:
            checks.append(_RowCheck(name, name, "not_nullable", None))
        for check in column.checks:
            if not _supported(check):
                return None
            checks.append(_RowCheck(name, name, _identifier(check), check))
    for check in schema.checks:
        if not _supported(check):
            return None
        checks.append(_RowCheck(schema.name or "", "*", _identifier(check), check))
    return checks


def _supported(check: pa.Check) -> bool:
    return not (
        check.element_wise
        or check.groupby is not None
        or check.raise_warning
        or check.n_failure_cases is not None
    )


def _identifier(check: pa.Check) -> str:
    # The name pandera's failure cases give a check (pandera/backends/polars/base.py).
    if check.error is not None:
        return str(check.error)
    return check.name if check.name is not None else str(check)


def _plan(lazy: pl.LazyFrame, row_check: _RowCheck, frame_schema: pl.Schema) -> pl.LazyFrame | None:
    """A one-column boolean frame: does each row pass?"""
    if row_check.check is None:
        present = pl.col(row_check.key).is_not_null()
        if frame_schema[row_check.key].is_float():
            present = present & pl.col(row_check.key).is_not_nan()
        return lazy.select(present.alias(_RESULT))
    check = row_check.check
    out = check._check_fn(PolarsData(lazy, row_check.key), **check._check_kwargs)
    if not isinstance(out, pl.LazyFrame):
        return None  # a scalar answer has no rows to quarantine
    names = out.collect_schema().names()
    passed = pl.all_horizontal(pl.col(names)) if len(names) > 1 else pl.col(names[0])
    passed = passed | passed.is_null() if check.ignore_na else passed.fill_null(False)
    return out.select(passed.alias(_RESULT))
