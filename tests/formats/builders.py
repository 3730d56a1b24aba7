"""Test inputs built in memory: the reader contract check, zips written byte by byte, bombs.

A zip bomb of 1 GiB of zeros is built without ever holding or compressing 1 GiB: after a
full flush deflate's history is empty, so every further 1 MiB of zeros compresses to the
same ~1 KB of output, which is simply repeated.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import cache

import polars as pl

SOURCE_ROW = "_source_row"
MiB = 1 << 20


def assert_contract(frame: object) -> None:
    """The shape every reader returns: text columns, cleaned, and a final `_source_row`."""
    assert isinstance(frame, pl.DataFrame)
    assert frame.columns and frame.columns[-1] == SOURCE_ROW
    assert frame.schema[SOURCE_ROW] == pl.Int64
    values = frame.columns[:-1]
    assert SOURCE_ROW not in values
    assert all(name and name == " ".join(name.split()) for name in values)
    assert all(frame.schema[name] == pl.String for name in values)
    rows = frame[SOURCE_ROW]
    assert rows.null_count() == 0 and rows.n_unique() == frame.height
    assert frame.height == 0 or rows.min() >= 1  # type: ignore[operator]
    if values and frame.height:
        checks = frame.select(
            *(
                (pl.col(c).str.strip_chars() == pl.col(c)).all().alias(f"stripped {c}")
                for c in values
            ),
            *((pl.col(c).str.len_bytes() > 0).all().alias(f"not empty {c}") for c in values),
            pl.any_horizontal(pl.col(c).is_not_null() for c in values).all().alias("no empty row"),
        ).row(0, named=True)
        assert all(v is not False for v in checks.values()), checks


@dataclass(frozen=True)
class RawMember:
    """A zip member exactly as the archive will state it, lies included."""

    name: str
    payload: bytes  # the bytes stored (already compressed for method 8)
    crc: int
    size: int  # the uncompressed size the headers declare
    method: int = zlib.DEFLATED
    flags: int = 0
    external_attr: int = 0
    create_system: int = 3  # Unix


def zip_archive(members: list[RawMember], *, declared_count: int | None = None) -> bytes:
    """A zip file with local headers, data, central directory and end record."""
    out = bytearray()
    central = bytearray()
    for m in members:
        name = m.name.encode("utf-8")
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            20,
            m.flags,
            m.method,
            0,
            0x21,
            m.crc,
            len(m.payload),
            m.size,
            len(name),
            0,
        )
        out += name + m.payload
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            (m.create_system << 8) | 20,
            20,
            m.flags,
            m.method,
            0,
            0x21,
            m.crc,
            len(m.payload),
            m.size,
            len(name),
            0,
            0,
            0,
            0,
            m.external_attr,
            offset,
        )
        central += name
    count = len(members) if declared_count is None else declared_count
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(out), 0)
    return bytes(out + central + end)


def stored(name: str, content: bytes, **kwargs: int) -> RawMember:
    return RawMember(name, content, zlib.crc32(content), len(content), method=0, **kwargs)


@cache
def deflated_zeros(mib: int) -> tuple[bytes, int]:
    """Raw deflate of `mib` MiB of zeros, and the CRC-32 of those zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(MiB)
    block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    return block * mib + compressor.flush(zlib.Z_FINISH), crc


def zip_bomb(mib: int = 1024, *, declared_size: int | None = None) -> bytes:
    payload, crc = deflated_zeros(mib)
    size = mib * MiB if declared_size is None else declared_size
    return zip_archive([RawMember("udtraek.csv", payload, crc, size)])


def gzip_bomb(mib: int = 1024) -> bytes:
    payload, crc = deflated_zeros(mib)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + payload + struct.pack("<II", crc, (mib * MiB) & 0xFFFFFFFF)
