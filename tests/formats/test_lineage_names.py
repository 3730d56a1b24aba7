"""A source column named like a lineage column is refused by every reader: it would be taken
for the lineage itself (a JSON field `_sheet` passed unchecked as the reader's own)."""

from __future__ import annotations

import io

import polars as pl
import pytest

from connectors.formats import FormatError, read_table
from connectors.formats.frame import LINEAGE_NAMES
from pipelines.ingest import LINEAGE, OPTIONAL_LINEAGE


def test_the_readers_know_every_lineage_name_the_load_adds() -> None:
    assert set(LINEAGE) | set(OPTIONAL_LINEAGE) == LINEAGE_NAMES


def _file(kind: str, name: str) -> tuple[bytes, dict]:
    if kind == "csv":
        return f"id;{name}\n1;x\n".encode(), {"type": "csv"}
    if kind == "ndjson":
        return f'{{"id": 1, "{name}": "x"}}\n'.encode(), {"type": "ndjson"}
    if kind == "json":
        return f'[{{"id": 1, "{name}": "x"}}]'.encode(), {"type": "json"}
    if kind == "xml":
        return f"<r><p><id>1</id><{name}>x</{name}></p></r>".encode(), {
            "type": "xml",
            "record_path": "p",
        }
    buffer = io.BytesIO()
    pl.DataFrame({"id": [1], name: ["x"]}).write_parquet(buffer)
    return buffer.getvalue(), {"type": "parquet"}


@pytest.mark.parametrize("name", sorted(LINEAGE_NAMES))
@pytest.mark.parametrize("kind", ["csv", "ndjson", "json", "xml", "parquet"])
def test_a_column_named_like_lineage_is_refused(kind: str, name: str) -> None:
    data, options = _file(kind, name)
    with pytest.raises(FormatError, match=f"column named '{name}'"):
        read_table(data, options, source_name=f"f.{kind}")
