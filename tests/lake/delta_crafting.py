"""Hand-crafted Delta tables with features delta-rs cannot write (column mapping, deletion vectors).

Spark/Databricks write these; delta-rs (deltalake) cannot, and Spark cannot run offline. So the
log JSON, the Parquet files and the deletion-vector bytes are written here by hand, following
the Delta protocol, PROTOCOL.md of github.com/delta-io/delta (section names are quoted below).
The DV byte layout was checked against the reader the DuckDB `delta` extension builds on,
delta-kernel-rs `kernel/src/actions/deletion_vector.rs`, and the Z85 variant against Spark's
`org.apache.spark.sql.delta.util.Codec.Base85Codec`.
"""

from __future__ import annotations

import json
import struct
import uuid
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

Row = dict[str, Any]
DvStorage = Literal["u", "p", "i"]

# "Deletion Vector Format": little-endian magic number in front of the portable 64-bit bitmap.
DV_MAGIC = 1681511377
# RoaringFormatSpec: cookie of a 32-bit bitmap without run containers (it always carries the
# offset header); an array container holds at most 4096 sorted 16-bit values.
ROARING_COOKIE_NO_RUNCONTAINER = 12346
ROARING_ARRAY_CONTAINER_MAX = 4096

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

# "Schema Serialization Format" › "Primitive Types" for the Arrow types these helpers accept.
_DELTA_TYPES = {
    pa.string(): "string",
    pa.large_string(): "string",
    pa.int64(): "long",
    pa.int32(): "integer",
    pa.float64(): "double",
    pa.bool_(): "boolean",
}

_CREATED_MS = 1_700_000_000_000  # fixed timestamps keep the crafted logs reproducible


# --------------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------------


def z85_encode(data: bytes) -> str:
    """Z85 (rfc.zeromq.org/spec/32): each big-endian 4-byte block → 5 base-85 digits.

    "Deletion Vector Descriptor Schema": Delta uses Z85 because it is JSON-friendly. Like
    Spark's Base85Codec, unaligned input is zero-padded to a multiple of 4 bytes (readers
    know the real length from `sizeInBytes`, and the bitmap decoder ignores trailing bytes).
    """
    if len(data) % 4:
        data += b"\0" * (4 - len(data) % 4)
    out = []
    for (block,) in struct.iter_unpack(">I", data):
        digits = []
        for _ in range(5):
            block, digit = divmod(block, 85)
            digits.append(_Z85[digit])
        out.extend(reversed(digits))
    return "".join(out)


def z85_decode(text: str) -> bytes:
    """Inverse of `z85_encode` (used only to self-check against the protocol's examples)."""
    out = bytearray()
    for i in range(0, len(text), 5):
        value = 0
        for char in text[i : i + 5]:
            value = value * 85 + _Z85.index(char)
        out += struct.pack(">I", value)
    return bytes(out)


def roaring32_portable(values: Sequence[int]) -> bytes:
    """A 32-bit RoaringBitmap in the portable format (github.com/RoaringBitmap/RoaringFormatSpec).

    Only array containers (≤ 4096 values per 16-bit chunk), which is what a small deletion
    vector is: cookie 12346 (u32 LE), container count (u32 LE), per container its key (high 16
    bits) and cardinality-1 (u16 LE each), per container a u32 LE byte offset from the start of
    this bitmap, then each container's sorted low 16-bit values as u16 LE.
    """
    chunks: dict[int, list[int]] = {}
    for value in sorted(set(values)):
        if not 0 <= value < 1 << 32:
            raise ValueError(f"{value} does not fit a 32-bit roaring bitmap")
        chunks.setdefault(value >> 16, []).append(value & 0xFFFF)
    if any(len(lows) > ROARING_ARRAY_CONTAINER_MAX for lows in chunks.values()):
        raise ValueError("more than 4096 values in one 65536-row chunk needs a bitmap container")

    header = struct.pack("<II", ROARING_COOKIE_NO_RUNCONTAINER, len(chunks))
    header += b"".join(struct.pack("<HH", key, len(lows) - 1) for key, lows in chunks.items())
    offset = len(header) + 4 * len(chunks)  # containers start after the offset header
    offsets, containers = b"", b""
    for lows in chunks.values():
        offsets += struct.pack("<I", offset)
        data = struct.pack(f"<{len(lows)}H", *lows)
        containers += data
        offset += len(data)
    return header + offsets + containers


def roaring_bitmap_array(row_indexes: Iterable[int]) -> bytes:
    """ "Deletion Vector Format": magic (u32 LE), then the portable 64-bit bitmap.

    The 64-bit ("RoaringTreemap") layout is the bucket count (u64 LE), then for each bucket in
    ascending key order the high 32 bits (u32 LE) and a portable 32-bit bitmap of the low 32
    bits. Delta requires every key's most significant bit to be 0.
    """
    buckets: dict[int, list[int]] = {}
    for index in sorted(set(row_indexes)):
        if not 0 <= index < 1 << 63:
            raise ValueError(f"row index {index} out of range")
        buckets.setdefault(index >> 32, []).append(index & 0xFFFF_FFFF)
    body = struct.pack("<Q", len(buckets))
    for key, lows in buckets.items():
        body += struct.pack("<I", key) + roaring32_portable(lows)
    return struct.pack("<I", DV_MAGIC) + body


def dv_file(bitmap: bytes) -> tuple[bytes, int]:
    """ "Deletion Vector File Storage Format" for one DV → (file bytes, offset of the DV).

    Big-endian here: version byte 1, then the DV's data size (u32), the bitmap (magic
    included), and the CRC-32 of the bitmap (u32). The descriptor's `offset` points at the
    size field, so it is 1 for the first (only) DV; its `sizeInBytes` is `len(bitmap)`.
    """
    crc = zlib.crc32(bitmap) & 0xFFFF_FFFF
    return b"\x01" + struct.pack(">I", len(bitmap)) + bitmap + struct.pack(">I", crc), 1


# --------------------------------------------------------------------------------------------
# Log and data files
# --------------------------------------------------------------------------------------------


def _commit(table: Path, version: int, actions: list[dict[str, Any]]) -> None:
    """ "Delta Log Entries": newline-delimited JSON, one action a line, 20-digit version."""
    log = table / "_delta_log"
    log.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(action, separators=(",", ":")) for action in actions]
    (log / f"{version:020d}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _commit_info(version: int, operation: str) -> dict[str, Any]:
    # "Commit Provenance Information": optional, but every real writer adds it.
    return {
        "commitInfo": {
            "timestamp": _CREATED_MS + version,
            "operation": operation,
            "engineInfo": "kommunelake-tests/delta_crafting",
        }
    }


def _field(name: str, arrow_type: pa.DataType, metadata: dict[str, Any]) -> dict[str, Any]:
    # "Schema Serialization Format" › "Struct Field".
    if arrow_type not in _DELTA_TYPES:
        raise TypeError(f"no Delta type mapped for {arrow_type}")
    return {"name": name, "type": _DELTA_TYPES[arrow_type], "nullable": True, "metadata": metadata}


def _metadata(fields: list[dict[str, Any]], configuration: dict[str, str]) -> dict[str, Any]:
    # "Change Metadata": schemaString is the JSON of a struct type, as a string.
    return {
        "metaData": {
            "id": str(uuid.uuid4()),
            "format": {"provider": "parquet", "options": {}},
            "schemaString": json.dumps({"type": "struct", "fields": fields}),
            "partitionColumns": [],
            "configuration": configuration,
            "createdTime": _CREATED_MS,
        }
    }


def _stats(table: pa.Table) -> str:
    """ "Per-file Statistics", keyed by the column names as they are in the Parquet file
    (the physical names under column mapping)."""
    mins, maxs, nulls = {}, {}, {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = [v for v in column.to_pylist() if v is not None]
        nulls[name] = column.null_count
        if values and not isinstance(values[0], bool):
            mins[name], maxs[name] = min(values), max(values)
    return json.dumps(
        {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    )


def _write_parquet(table_dir: Path, data: pa.Table) -> dict[str, Any]:
    """Write one data file at the table root ("Data Files") and return its file info."""
    table_dir.mkdir(parents=True, exist_ok=True)
    name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    pq.write_table(data, table_dir / name, compression="snappy")
    return {
        "path": name,  # relative to the table root
        "partitionValues": {},
        "size": (table_dir / name).stat().st_size,
        "modificationTime": _CREATED_MS,
        "dataChange": True,
        "stats": _stats(data),
    }


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def physical_name(logical: str) -> str:
    """A Spark-style physical column name: `col-<uuid>`, deterministic per logical name."""
    return f"col-{uuid.uuid5(uuid.NAMESPACE_URL, 'kommunelake:' + logical)}"


def write_column_mapped_table(path: Path, rows: list[Row]) -> dict[str, str]:
    """A Delta table with column mapping mode `name`, as Spark writes it after
    `ALTER TABLE … SET TBLPROPERTIES ('delta.columnMapping.mode' = 'name')` on a new table.

    "Column Mapping": each column gets `delta.columnMapping.id` and
    `delta.columnMapping.physicalName`; data files use the physical names and carry the ids as
    Parquet `field_id`s; stats use physical names; `delta.columnMapping.maxColumnId` tracks the
    highest id. Protocol 2/5 is the legacy (pre table features) way to enable it.
    Returns logical → physical names.
    """
    logical = pa.Table.from_pylist(rows)
    mapping = {name: physical_name(name) for name in logical.column_names}
    fields, arrow_fields = [], []
    for column_id, field in enumerate(logical.schema, start=1):
        fields.append(
            _field(
                field.name,
                field.type,
                {
                    "delta.columnMapping.id": column_id,
                    "delta.columnMapping.physicalName": mapping[field.name],
                },
            )
        )
        # pyarrow writes the `PARQUET:field_id` field metadata into SchemaElement.field_id.
        arrow_fields.append(
            pa.field(mapping[field.name], field.type, metadata={"PARQUET:field_id": str(column_id)})
        )
    physical = pa.Table.from_arrays(logical.columns, schema=pa.schema(arrow_fields))
    add = _write_parquet(path, physical)
    _commit(
        path,
        0,
        [
            _commit_info(0, "CREATE TABLE"),
            {"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}},
            _metadata(
                fields,
                {
                    "delta.columnMapping.mode": "name",
                    "delta.columnMapping.maxColumnId": str(len(fields)),
                },
            ),
            {"add": add},
        ],
    )
    return mapping


def write_table_with_deletion_vector(
    path: Path,
    rows: list[Row],
    deleted_positions: Iterable[int],
    *,
    storage: DvStorage = "u",
) -> dict[str, Any]:
    """A Delta table whose only data file has rows soft-deleted by a deletion vector, the way
    Spark/Databricks `DELETE FROM` leaves it with `delta.enableDeletionVectors = true`.

    Version 0 creates the table (protocol 3/7 with the `deletionVectors` reader+writer feature,
    "Deletion Vectors") and adds the file; version 1 removes that file and re-adds the same
    path with a `deletionVector` descriptor ("Deletion Vector Descriptor Schema") marking
    `deleted_positions` (0-based row indexes within the file). The DV lives in
    - `u`: `deletion_vector_<uuid>.bin` at the table root, the descriptor holding the Z85 UUID
      (what Spark writes; a random prefix directory is optional and not used here),
    - `p`: the same file, referenced by absolute `file://` URI,
    - `i`: inline in the log, Z85 of the bitmap.
    Returns the descriptor.
    """
    data = pa.Table.from_pylist(rows)
    deleted = sorted(set(deleted_positions))
    if deleted and not 0 <= deleted[0] <= deleted[-1] < data.num_rows:
        raise ValueError("deleted positions must be row indexes of the file")
    fields = [_field(f.name, f.type, {}) for f in data.schema]
    add = _write_parquet(path, data)
    _commit(
        path,
        0,
        [
            _commit_info(0, "CREATE TABLE"),
            {
                "protocol": {
                    "minReaderVersion": 3,
                    "minWriterVersion": 7,
                    "readerFeatures": ["deletionVectors"],
                    "writerFeatures": ["deletionVectors"],
                }
            },
            _metadata(fields, {"delta.enableDeletionVectors": "true"}),
            {"add": add},
        ],
    )

    bitmap = roaring_bitmap_array(deleted)
    descriptor: dict[str, Any] = {"storageType": storage}
    if storage == "i":
        descriptor["pathOrInlineDv"] = z85_encode(bitmap)  # no offset for inline DVs
    else:
        dv_id = uuid.uuid4()
        content, offset = dv_file(bitmap)
        dv_path = path / f"deletion_vector_{dv_id}.bin"  # "Derived Fields" › absolutePath
        dv_path.write_bytes(content)
        descriptor["pathOrInlineDv"] = (
            z85_encode(dv_id.bytes) if storage == "u" else dv_path.resolve().as_uri()
        )
        descriptor["offset"] = offset
    descriptor["sizeInBytes"] = len(bitmap)
    descriptor["cardinality"] = len(deleted)

    # "Add File and Remove File": the remove carries the original file's info; the re-add
    # keeps the full-file `numRecords` ("Writer Requirement for Deletion Vectors") and marks
    # the bounds as possibly wide (`tightBounds: false`, "Per-file Statistics").
    remove = {
        "path": add["path"],
        "deletionTimestamp": _CREATED_MS + 1,
        "dataChange": True,
        "extendedFileMetadata": True,
        "partitionValues": {},
        "size": add["size"],
        "stats": add["stats"],
    }
    stats = json.loads(add["stats"]) | {"tightBounds": False}
    readd = add | {
        "modificationTime": _CREATED_MS + 1,
        "stats": json.dumps(stats),
        "deletionVector": descriptor,
    }
    _commit(path, 1, [_commit_info(1, "DELETE"), {"remove": remove}, {"add": readd}])
    return descriptor
