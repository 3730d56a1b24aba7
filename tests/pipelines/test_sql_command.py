"""`kommunelake sql`: every --format writes what DuckDB returns, whatever the column types."""

from __future__ import annotations

import json

import polars as pl
import pytest

from lake.serving import build_serving
from lake.tables import write_batch
from pipelines.cli import main


@pytest.fixture
def served(home):
    write_batch(
        home.table_uri("silver", "t"), pl.DataFrame({"x": [1]}), mode="snapshot", app_id="b1"
    )
    build_serving(home, {})
    return home


def _sql(home, query: str, fmt: str) -> list[str]:
    return ["sql", query, "--home", str(home.root), "--format", fmt]


# Types polars cannot take from DuckDB (interval, union, bit) or cannot write as CSV (lists,
# structs, maps) or JSON (blobs): each was an internal error, or a Rust panic and traceback.
AWKWARD = (
    "select now() - timestamptz '2026-01-01 00:00:00+00' > interval 1 hour as later, "
    "interval 90 minute as waited, 'a'::varchar::union(a varchar, b int) as either, "
    "'101'::bit as bits, 'ab'::blob as raw, ['x', 'y, z'] as tags, "
    "{'n': 1, 's': 'æ'} as rec, map {'k': 2} as m"
)


def test_csv_writes_nested_values_as_json_text_and_intervals_as_text(served, capsys) -> None:
    assert main(_sql(served, AWKWARD, "csv")) == 0
    out = capsys.readouterr().out
    frame = pl.read_csv(out.encode(), infer_schema=False)
    row = frame.row(0, named=True)
    assert row["waited"] == "01:30:00" and row["either"] == "a" and row["bits"] == "101"
    assert row["raw"] == "ab"
    assert json.loads(row["tags"]) == ["x", "y, z"]
    assert json.loads(row["rec"]) == {"n": 1, "s": "æ"} and json.loads(row["m"]) == {"k": 2}


def test_json_and_table_take_intervals_unions_bits_and_blobs(served, capsys) -> None:
    assert main(_sql(served, AWKWARD, "json")) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["waited"] == "01:30:00" and row["either"] == "a" and row["raw"] == "ab"
    assert row["tags"] == ["x", "y, z"] and row["rec"] == {"n": 1, "s": "æ"}
    assert main(_sql(served, AWKWARD, "table")) == 0
    assert "01:30:00" in capsys.readouterr().out


def test_the_table_writes_control_characters_as_escapes_and_csv_keeps_them(served, capsys):
    # A delivered value can hold a terminal escape sequence (clear the screen, recolour,
    # retitle): on the operator's terminal it would act instead of being read.
    query = "select 'Pleje' || chr(27) || '[2J' || chr(155) || 'x' || chr(7) as unit, 'ok' as s"
    assert main(_sql(served, query, "table")) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out
    assert "Pleje\\x1b[2J\\x9bx\\x07" in out and "ok" in out

    assert main(_sql(served, query, "csv")) == 0
    assert "Pleje\x1b[2J\x9bx\x07" in capsys.readouterr().out
