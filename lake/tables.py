"""Delta tables per load mode, written idempotently.

Every batch commits with a Delta app transaction (`txn` action) named after the batch. Before
writing, the table is asked whether that transaction is already in its log: a re-run of the
same batch, or a retry after a crash between commit and bookkeeping, then adds no commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import DeltaError

from lake.errors import LakeError

LoadMode = Literal["append", "snapshot", "merge"]
LOAD_MODES: tuple[LoadMode, ...] = ("append", "snapshot", "merge")


@dataclass(frozen=True)
class Commit:
    version: int
    committed: bool  # False: this batch was already in the table, nothing was written


def table_version(uri: str) -> int | None:
    return DeltaTable(uri).version() if DeltaTable.is_deltatable(uri) else None


def has_batch(uri: str, app_id: str) -> bool:
    return DeltaTable.is_deltatable(uri) and DeltaTable(uri).transaction_version(app_id) is not None


def write_batch(
    uri: str,
    frame: pl.DataFrame,
    *,
    mode: LoadMode,
    app_id: str,
    keys: Sequence[str] = (),
    metadata: dict[str, str] | None = None,
    add_columns: bool = False,
) -> Commit:
    """Write one batch in the given mode unless the batch's transaction is already committed.

    With add_columns, columns the table lacks are added (schema evolution); otherwise a
    schema difference fails the write and leaves the table untouched."""
    if has_batch(uri, app_id):
        return Commit(DeltaTable(uri).version(), committed=False)
    props = CommitProperties(
        app_transactions=[Transaction(app_id, 1)], custom_metadata=metadata or {}
    )
    data = frame.to_arrow()
    try:
        if mode == "merge" and DeltaTable.is_deltatable(uri):
            if not keys:
                raise LakeError(f"{uri}: merge needs `keys:` in the dataset YAML")
            predicate = " AND ".join(f"t.{k} = s.{k}" for k in keys)
            (
                DeltaTable(uri)
                .merge(
                    data,
                    predicate,
                    source_alias="s",
                    target_alias="t",
                    merge_schema=add_columns,
                    commit_properties=props,
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
        else:
            write_mode = "overwrite" if mode == "snapshot" else "append"
            write_deltalake(
                uri,
                data,
                mode=write_mode,
                commit_properties=props,
                schema_mode="merge" if add_columns else None,
            )
    except DeltaError as error:
        raise LakeError(
            f"{uri}: Delta write failed ({error}). If the contract changed a column's type, "
            "the table must be migrated first; nothing was committed"
        ) from error
    return Commit(DeltaTable(uri).version(), committed=True)


def read(uri: str) -> pl.DataFrame:
    return pl.read_delta(uri)


def latest_metadata(uri: str) -> dict[str, object]:
    """The custom metadata of the newest commit (empty when the table does not exist)."""
    if not DeltaTable.is_deltatable(uri):
        return {}
    history = DeltaTable(uri).history(1)
    return history[0] if history else {}
