"""connectors.jsonstat on every real JSON-stat sample, cells checked by independent arithmetic."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from connectors.jsonstat import JsonStatError, datasets, dimensions, to_long

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "real"
SSB = REAL / "ssb"
SAMPLES = [
    *sorted((REAL / "jsonstat").glob("*.json")),
    SSB / "ssb_v0_table_07459_data_jsonstat2_kommuner_2022.json",
    SSB / "ssb_v0_table_07221_data_jsonstat2.json",
    SSB / "ssb_v0_dataset_29843_en_jsonstat1.json",
]
TEXT_VALUED = {"order.json"}  # values are strings like "A1B1C1"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def shape(ds: dict[str, Any]) -> tuple[list[str], list[int]]:
    if "id" in ds:
        return ds["id"], ds["size"]
    return ds["dimension"]["id"], ds["dimension"]["size"]


def raw_cell(ds: dict[str, Any], k: int) -> dict[str, Any]:
    """Cell k read straight from the JSON: mixed-radix digits, last dimension fastest."""
    ids, sizes = shape(ds)
    digits, rest = [], k
    for size in reversed(sizes):
        digits.append(rest % size)
        rest //= size
    digits.reverse()
    out: dict[str, Any] = {}
    for dim, digit in zip(ids, digits, strict=True):
        category = ds["dimension"][dim]["category"]
        index = category.get("index")
        if index is None:
            (code,) = category["label"]
        elif isinstance(index, list):
            code = index[digit]
        else:
            (code,) = [c for c, at in index.items() if at == digit]
        out[dim] = code
        out[f"{dim}_label"] = category.get("label", {}).get(code, code)
    values = ds["value"]
    out["value"] = values[k] if isinstance(values, list) else values.get(str(k))
    status = ds.get("status")
    if isinstance(status, str):
        out["status"] = status
    elif isinstance(status, list):
        out["status"] = status[0] if len(status) == 1 else status[k]
    elif isinstance(status, dict):
        out["status"] = status.get(str(k))
    else:
        out["status"] = None
    return out


def positions(ds: dict[str, Any], n: int) -> set[int]:
    picked = {0, n - 1, n // 2, n // 3, (2 * n) // 3}
    status = ds.get("status")
    if isinstance(status, dict) and status:
        picked |= {int(min(status, key=int)), int(max(status, key=int))}
    values = ds["value"]
    if isinstance(values, list):
        nulls = [i for i, v in enumerate(values) if v is None]
        picked |= set(nulls[:1] + nulls[-1:])
    return {p for p in picked if 0 <= p < n}


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_dataset_becomes_a_long_table(path: Path) -> None:
    doc = load(path)
    found = list(datasets(doc))
    if path.name == "collection.json":  # links only, no embedded dataset
        assert found == []
        return
    assert found
    for name, ds in found:
        ids, sizes = shape(ds)
        text = path.name in TEXT_VALUED
        table = to_long({"x": ds} if "version" not in ds else ds, text=text)
        n = math.prod(sizes)
        assert table.height == n, name
        expected_columns = [c for d in ids for c in (d, f"{d}_label")] + ["value", "status"]
        assert table.columns == expected_columns
        assert table.schema["value"] == (pl.String if text else pl.Float64)
        assert all(table.schema[d] == pl.String for d in ids)
        for k in positions(ds, n):
            row = table.row(k, named=True)
            raw = raw_cell(ds, k)
            for dim in ids:
                assert row[dim] == raw[dim], (name, k)
                assert row[f"{dim}_label"] == raw[f"{dim}_label"], (name, k)
            assert row["status"] == raw["status"], (name, k)
            if raw["status"] in {".", "..", "...", ":"} or raw["value"] is None:
                assert row["value"] is None
            elif text:
                assert row["value"] == raw["value"]
            else:
                assert row["value"] == pytest.approx(float(raw["value"]))


def test_order_sample_is_row_major() -> None:
    doc = load(REAL / "jsonstat" / "order.json")
    table = to_long(doc, text=True)
    built = [f"A{a}B{b}C{c}" for a in (1, 2, 3) for b in (1, 2) for c in (1, 2, 3, 4)]
    # The official sample has a typo at cell 11 ("A1B1C4" where "A2B1C4" belongs): the
    # codes we derive from id/size are right there, the sample's value text is not.
    values = table["value"].to_list()
    assert values[11] == "A1B1C4"
    assert values[:11] + values[12:] == built[:11] + built[12:]
    codes = table.select(pl.concat_str("A", "B", "C"))
    assert codes.to_series().to_list() == [
        v.replace("A", "").replace("B", "").replace("C", "") for v in built
    ]
    with pytest.raises(JsonStatError, match="not a number"):
        to_long(doc)


def test_ssb_07459_keeps_norwegian_letters() -> None:
    path = SSB / "ssb_v0_table_07459_data_jsonstat2_kommuner_2022.json"
    doc = load(path)
    table = to_long(doc)
    labels = table["Region_label"].to_list()
    assert sum(any(ch in s for ch in "æøåÆØÅ") for s in labels) == 99
    raw_labels = doc["dimension"]["Region"]["category"]["label"]
    assert labels == [raw_labels[c] for c in table["Region"].to_list()]
    assert table.filter(pl.col("Region_label") == "Bærum").height == 1
    assert table["value"].null_count() == 0
    assert table["value"].sum() == sum(doc["value"])


def test_ssb_status_symbols_become_null_values() -> None:
    t07221 = to_long(load(SSB / "ssb_v0_table_07221_data_jsonstat2.json"))
    missing = t07221.filter(pl.col("status") == "..")
    assert missing.height == 24 and missing["value"].null_count() == 24
    assert t07221.filter(pl.col("status").is_null())["value"].null_count() == 0
    t29843 = to_long(load(SSB / "ssb_v0_dataset_29843_en_jsonstat1.json"))
    assert t29843.filter(pl.col("status") == ".").height == 7200
    assert t29843["value"].null_count() == 7200


def test_non_missing_status_keeps_its_value() -> None:
    oecd = to_long(load(REAL / "jsonstat" / "oecd.json"))
    estimated = oecd.filter(pl.col("status") == "e")
    assert estimated.height > 0 and estimated["value"].null_count() == 0
    canada = to_long(load(REAL / "jsonstat" / "canada.json"))
    assert set(canada["status"].to_list()) == {"a"}  # a one-element array applies to all


def small(**extra: Any) -> dict[str, Any]:
    doc = {
        "version": "2.0",
        "class": "dataset",
        "id": ["kommune", "år"],
        "size": [2, 2],
        "dimension": {
            "kommune": {"category": {"index": ["0301", "4601"], "label": {"0301": "Oslo"}}},
            "år": {"category": {"index": {"2023": 0, "2024": 1}}},
        },
        "value": [1, 2, 3, 4],
    }
    return doc | extra


def test_sparse_values_string_status_and_symbol_values() -> None:
    table = to_long(small(value={"1": 5, "3": ":"}, status={"0": ".."}))
    assert table["value"].to_list() == [None, 5.0, None, None]
    assert table["status"].to_list() == ["..", None, None, ":"]
    assert table["kommune_label"].to_list() == ["Oslo", "Oslo", "4601", "4601"]
    assert table["år"].to_list() == ["2023", "2024", "2023", "2024"]
    assert to_long(small(status="p"))["status"].to_list() == ["p"] * 4


def test_bad_documents_fail_clearly() -> None:
    with pytest.raises(JsonStatError, match="3 entries for 4 cells"):
        to_long(small(value=[1, 2, 3]))
    with pytest.raises(JsonStatError, match="metadata"):
        to_long(small(value=[]))
    with pytest.raises(JsonStatError, match="outside"):
        to_long(small(value={"9": 1}))
    with pytest.raises(JsonStatError, match="use datasets"):
        to_long(load(REAL / "jsonstat" / "oecd-canada.json"))


def test_dimensions_of_the_v2_metadata_sample() -> None:
    doc = load(SSB / "ssb_v2_tables_05810_metadata_lang-en_from_docs.json")
    dims = dimensions(doc)
    assert list(dims) == ["Kjonn", "Alder", "ContentsCode", "Tid"]
    assert [len(v) for v in dims.values()] == [3, 7, 1, 49]
