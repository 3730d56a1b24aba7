"""How a batch's schema meets its table's: what is cast, added, widened or refused.

Additive columns evolve when the dataset allows it (`schema_drift: evolve`); a batch type
narrower than the table's is cast to it; a table type narrower than the batch's is widened
when every value fits (int32 → int64, date → timestamp); anything else (a dropped or renamed
column, narrowing, string → int) is a break, refused with the table untouched. The plan is
made here; lake/tables.py carries it out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from deltalake import DeltaTable

from lake.errors import LakeError

_SIGNED_INTS = (pl.Int8, pl.Int16, pl.Int32, pl.Int64)
_UNSIGNED_INTS = (pl.UInt8, pl.UInt16, pl.UInt32)  # Delta has no unsigned types
_BITS = {pl.Int8: 8, pl.Int16: 16, pl.Int32: 32, pl.Int64: 64, pl.UInt8: 8, pl.UInt16: 16}
_BITS |= {pl.UInt32: 32}


def is_widening(narrow: pl.DataType, wide: pl.DataType) -> bool:
    """True when every value of `narrow` is exactly representable in `wide`."""
    if narrow == wide:
        return True
    if wide == pl.Int64 or wide in _SIGNED_INTS:
        if narrow in _SIGNED_INTS:
            return _BITS[narrow.base_type()] < _BITS[wide.base_type()]
        if narrow in _UNSIGNED_INTS:
            return _BITS[narrow.base_type()] < _BITS[wide.base_type()]
        return False
    if wide == pl.Float64:
        # float64 holds every int up to 2**53: int8/16/32 and uint8/16/32 are lossless, int64 not
        return narrow == pl.Float32 or (
            narrow.base_type() in _BITS and _BITS[narrow.base_type()] <= 32
        )
    if isinstance(wide, pl.Datetime):
        return narrow == pl.Date
    return False


@dataclass(frozen=True)
class SchemaPlan:
    """How a batch meets an existing table: the batch cast to the table's types where it is
    narrower, columns to add, table columns to widen, and what cannot be done."""

    frame: pl.DataFrame
    added: tuple[str, ...]
    widened: dict[str, pl.DataType]  # table column → its new, wider type
    breaks: tuple[str, ...] = ()

    @property
    def changes(self) -> tuple[str, ...]:
        return tuple(f"added {c}" for c in self.added) + tuple(
            f"widened {c}: → {t}" for c, t in self.widened.items()
        )

    def refuse(self, uri: str, *, add_columns: bool, widen_types: bool) -> None:
        problems = list(self.breaks)
        if self.added and not add_columns:
            problems.append(
                f"new column(s) {list(self.added)} (allow them with `schema_drift: evolve` "
                "in the dataset YAML, or add them to the contract)"
            )
        if self.widened and not widen_types:
            problems.append(f"type widening of {list(self.widened)} is switched off")
        if problems:
            raise LakeError(
                f"{uri}: the batch does not fit the table's schema: {'; '.join(problems)}. "
                "Nothing was written. A breaking change needs a migration: rewrite the table "
                "(or load into a new one) and update the contract"
            )


def table_schema(table: DeltaTable) -> pl.Schema:
    return pl.scan_delta(table.table_uri, version=table.version()).collect_schema()


def plan_schema(
    uri: str, current: pl.Schema, frame: pl.DataFrame, *, system: Sequence[str] = ()
) -> SchemaPlan:
    """Compare a batch with the table's schema (columns in `system` are managed by the mode)."""
    breaks: list[str] = []
    casts: list[pl.Expr] = []
    widened: dict[str, pl.DataType] = {}
    dropped = [c for c in current if c not in frame.columns and c not in system]
    added = tuple(c for c in frame.columns if c not in current)
    if dropped:
        renamed = f"; new in the batch: {list(added)}" if added else ""
        breaks.append(
            f"table column(s) {dropped} are missing from the batch (dropped or renamed{renamed})"
        )
    for column, batch_type in frame.schema.items():
        if column not in current:
            continue
        table_type = current[column]
        if batch_type == table_type:
            continue
        fits = is_widening(batch_type, table_type) or _same_kind_timestamp(batch_type, table_type)
        if batch_type == pl.Null or fits:
            casts.append(pl.col(column).cast(table_type))
        elif is_widening(table_type, batch_type):
            widened[column] = batch_type
        else:
            breaks.append(
                f"column {column!r} is {table_type} in the table but {batch_type} in the batch "
                "(not a safe widening)"
            )
    cast = frame.with_columns(casts) if casts else frame
    return SchemaPlan(cast, added, widened, tuple(breaks))


def _same_kind_timestamp(batch: pl.DataType, table: pl.DataType) -> bool:
    # Delta stores microseconds: a ns or ms batch of the same time zone is cast, not a change
    return (
        isinstance(batch, pl.Datetime)
        and isinstance(table, pl.Datetime)
        and batch.time_zone == table.time_zone
    )
