"""Large batches into a Delta table in constant memory: Parquet parts, then one commit.

`write_batch` hands delta-rs a whole frame. A 6-million-row extract would have to sit in
memory to do that, so big loads write each chunk as a Parquet file straight into the table's
folder while they stream and commit all of them at the end in ONE transaction, with the
same app-transaction id `write_batch` uses. Readers see the batch entirely or not at all;
parts of a crashed load are never referenced by the log, and vacuum removes them later.

Local disk and object storage alike (a part on S3/Azure is uploaded as one object, written
once); only for append and snapshot (overwrite): the loads that need no join against the
existing table.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import time
import uuid
from pathlib import Path

import polars as pl
from deltalake import CommitProperties, DeltaTable, Schema
from deltalake.exceptions import DeltaError
from deltalake.transaction import AddAction, create_table_with_add_actions

from lake import storage
from lake.errors import LakeError
from lake.tables import (
    Commit,
    LoadMode,
    commit_once,
    has_batch,
    refuse_other_partitioning,
    undo_racing_compactions,
)

STREAMABLE_MODES: tuple[LoadMode, ...] = ("append", "snapshot")
# Floats are left out: NaN has no JSON form, and their ranges rarely prune a municipal query.
_STATS_TYPES = (pl.Int64, pl.Int32, pl.Date)
# zstd's level 2, not polars' default 3: on the bench extract's parts 18% less CPU for the
# write (the largest single step of a streamed load) and 3% smaller files.
_PARQUET = {"compression": "zstd", "compression_level": 2, "statistics": True}


def can_stream(mode: str) -> bool:
    return mode in STREAMABLE_MODES


class PartWriter:
    """Write frames as Parquet parts of the table at `uri`; `commit()` makes them the batch.

    Every part must have the schema of the first and, for an existing table, the table's
    schema. A mismatch raises LakeError before anything is committed.
    """

    def __init__(
        self,
        uri: str,
        *,
        mode: LoadMode,
        app_id: str,
        metadata: dict[str, str] | None = None,
    ) -> None:
        if not can_stream(mode):
            raise LakeError(f"{uri}: {mode} loads cannot be streamed; use write_batch")
        self.uri, self.mode, self.app_id = uri, mode, app_id
        self.remote = storage.parse_lake_uri(uri).is_remote
        self.options = dict(storage.storage_options(uri))
        self.metadata = metadata or {}
        self.already_committed = has_batch(uri, app_id)
        self._adds: list[AddAction] = []
        self._schema: pl.Schema | None = None
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        if self._schema is None:
            self._schema = frame.schema
            self._check_table_schema(frame)
        elif frame.schema != self._schema:
            raise LakeError(
                f"{self.uri}: a chunk of this batch has columns {dict(frame.schema)} where "
                f"the first had {dict(self._schema)}; nothing was committed"
            )
        self.rows += frame.height
        if not frame.height:
            return
        # A batch already committed (re-run after a crash before its bookkeeping) is written
        # too, so scan() sees its rows as the first run did; commit() then
        # deletes the parts instead of committing them again.
        name = f"part-{self.app_id.replace(':', '-')}-{len(self._adds):05d}-{uuid.uuid4()}.parquet"
        if self.remote:
            # A part is one chunk, a few MB once compressed: built in memory, then uploaded as
            # one object, so a crash never leaves half a part under its name.
            buffer = io.BytesIO()
            frame.write_parquet(buffer, **_PARQUET)
            storage.write_once(self._part(name), buffer.getvalue(), self.options)
            size = buffer.tell()
        else:
            path = Path(self.uri) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(path, **_PARQUET)
            size = path.stat().st_size
        self._adds.append(
            AddAction(
                name,
                size,
                {},
                int(time.time() * 1000),
                True,
                json.dumps(_stats(frame)),
            )
        )

    def scan(self, columns: list[str], where: pl.Expr | None = None) -> pl.DataFrame:
        """`columns` of the rows written so far (not yet committed), those matching `where`
        if given; read in a streaming query, so memory does not grow with the batch."""
        paths = [self._part(add.path) for add in self._adds]
        if not paths:
            return pl.DataFrame()
        query = pl.scan_parquet(paths, storage_options=self.options or None)
        if where is not None:
            query = query.filter(where)
        return query.select(columns).collect(engine="streaming")

    def abort(self) -> None:
        """Delete the parts written by this writer (nothing of them was committed)."""
        for add in self._adds:
            if self.remote:
                filesystem, path = storage.filesystem(self._part(add.path), self.options)
                with contextlib.suppress(FileNotFoundError):
                    filesystem.delete_file(path)
            else:
                (Path(self.uri) / add.path).unlink(missing_ok=True)
        self._adds.clear()

    def commit(self) -> Commit:
        """Commit every part as one version; a batch already in the table adds nothing.

        Whether the batch is in is asked again here, not only when the writer started: a
        concurrent load of the same batch may have committed it meanwhile (commit_once)."""
        if self._schema is None and not self.already_committed:
            raise LakeError(f"{self.uri}: nothing was written, so there is nothing to commit")
        try:
            committed = commit_once(
                self.uri, self.app_id, self._commit, metadata=self.metadata, options=self.options
            )
        except (DeltaError, OSError) as error:
            # Parts stay where they are: uncommitted ones are never referenced, and vacuum
            # removes them.
            raise LakeError(
                f"{self.uri}: Delta commit failed ({error}); nothing was committed and the "
                "load can be re-run"
            ) from error
        if not committed:
            self.abort()  # never referenced (an undone duplicate's parts: removed by vacuum)
        return Commit(self._table().version(), committed=committed)

    def _commit(self, props: CommitProperties) -> None:
        assert self._schema is not None  # commit() refuses a writer that wrote nothing
        schema = Schema.from_arrow(pl.DataFrame(schema=self._schema).to_arrow().schema)
        mode = "overwrite" if self.mode == "snapshot" else "append"
        if DeltaTable.is_deltatable(self.uri, storage_options=self.options or None):
            table = self._table()
            read_version = table.version()
            table.create_write_transaction(
                self._adds, mode=mode, schema=schema, commit_properties=props
            )
            if mode == "overwrite":
                undo_racing_compactions(self.uri, props, read_version, self.options)
        else:
            create_table_with_add_actions(
                self.uri,
                schema,
                self._adds,
                mode="error",
                storage_options=self.options or None,
                commit_properties=props,
            )

    def _part(self, name: str) -> str:
        return storage.join_uri(self.uri, name)

    def _table(self) -> DeltaTable:
        return DeltaTable(self.uri, storage_options=self.options or None)

    def _check_table_schema(self, frame: pl.DataFrame) -> None:
        # Snapshots too: an overwrite's commit would replace the table's schema with the
        # batch's unchecked (a narrowed or dropped column, a timestamp without a time zone
        # the table's protocol cannot hold). Schema changes are write_batch's, which widens
        # safely and refuses breaking changes; parts only write to a table of their schema.
        if not DeltaTable.is_deltatable(self.uri, storage_options=self.options or None):
            return
        # Parts carry no partition values: in a partitioned table they would make every
        # reader fail on the partition column. Only a load without `partition_by:` streams.
        existing = DeltaTable(self.uri, storage_options=self.options or None)
        refuse_other_partitioning(self.uri, existing.metadata().partition_columns, ())
        table = pl.scan_delta(self.uri, storage_options=self.options or None).collect_schema()
        if dict(table) != dict(frame.schema):
            raise LakeError(
                f"{self.uri}: the batch does not have the table's schema "
                f"({'; '.join(_differences(table, frame.schema))}). Nothing was committed; "
                "a streamed load cannot change a table's schema (write_batch can)"
            )


def _differences(table: pl.Schema, batch: pl.Schema) -> list[str]:
    missing = [c for c in table if c not in batch]
    added = [c for c in batch if c not in table]
    retyped = [
        f"{c!r} is {t} in the table but {batch[c]} in the batch"
        for c, t in table.items()
        if c in batch and batch[c] != t
    ]
    return (
        ([f"missing {missing}"] if missing else []) + ([f"new {added}"] if added else []) + retyped
    )


def _stats(frame: pl.DataFrame) -> dict[str, object]:
    """Delta file statistics: row and null counts, min/max where readers prune on them."""
    nulls = frame.null_count().row(0, named=True)
    ranged = [c for c, t in frame.schema.items() if t in _STATS_TYPES]
    stats: dict[str, object] = {"numRecords": frame.height, "nullCount": nulls}
    if ranged and frame.height:
        bounds = frame.select(
            *(pl.col(c).min().alias(f"min:{c}") for c in ranged),
            *(pl.col(c).max().alias(f"max:{c}") for c in ranged),
        ).row(0, named=True)
        stats["minValues"] = {c: _json(bounds[f"min:{c}"]) for c in ranged}
        stats["maxValues"] = {c: _json(bounds[f"max:{c}"]) for c in ranged}
    return stats


def _json(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date) else value
