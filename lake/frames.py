"""Memory hygiene for polars frames kept across the chunks of a large load."""

from __future__ import annotations

import io

import polars as pl


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` copied into buffers of its own.

    polars strings are views into their chunk's buffers, and a filter keeps the views: a
    handful of rows kept from each chunk of a large file (quarantine rows, held-back keys,
    pseudonyms already computed) would keep every chunk's text alive. An IPC round trip
    copies only the bytes used."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    buffer.seek(0)
    return pl.read_ipc(buffer)
