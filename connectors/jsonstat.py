"""JSON-stat → long (tidy) polars tables.

Supports JSON-stat 2.0 datasets, 2.0 collections with embedded datasets, and JSON-stat 1.x
bundles (root keys are dataset names, `id`/`size`/`role` inside `dimension`; SSB's old
`/api/v0/dataset/*.json` answers are such bundles with the single key `dataset`).

`to_long(doc)` gives one row per cell in row-major order (the last dimension in `id` varies
fastest): one String column per dimension holding the category code, `<dim>_label` with
the category label (the code when the dataset gives none), `value` Float64 and `status`
String. Values may come as an array or a sparse object; status as a string, an array (one
element applies to all cells) or a sparse object. A status in `MISSING_SYMBOLS` (Statistics
Norway's `.`, `..`, `...`, `:`) makes the value null and keeps the symbol in `status`; a
value sent as such a symbol is treated the same way. Other statuses (`e`, `a`, ...) keep
their value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl

# SSB: "." not possible/logical, ".." missing, "..." not yet available, ":" confidential.
MISSING_SYMBOLS = frozenset({".", "..", "...", ":"})


class JsonStatError(ValueError):
    """A document that is not a JSON-stat dataset we can read."""


def _is_dataset(node: Any) -> bool:
    return isinstance(node, dict) and isinstance(node.get("dimension"), dict) and "value" in node


def datasets(doc: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, dataset) for every dataset in a 2.0 dataset/collection or a 1.x bundle.

    Collections yield only embedded datasets (those with values); linked-only items are
    skipped, since fetching them is the caller's business.
    """
    if not isinstance(doc, Mapping):
        raise JsonStatError("a JSON-stat document is a JSON object")
    cls = doc.get("class")
    if cls == "dataset" or ("version" in doc and _is_dataset(doc)):
        yield str(doc.get("label") or ""), dict(doc)
        return
    if cls == "collection":
        items = (doc.get("link") or {}).get("item") or []
        for number, item in enumerate(items):
            if _is_dataset(item):
                yield str(item.get("label") or number), item
        return
    if "version" not in doc:  # 1.x bundle
        for name, node in doc.items():
            if _is_dataset(node):
                yield str(name), node
        return
    raise JsonStatError(f"unsupported JSON-stat class {cls!r}")


def _shape(ds: Mapping[str, Any]) -> tuple[list[str], list[int]]:
    dimension = ds["dimension"]
    ids = ds.get("id", dimension.get("id"))
    sizes = ds.get("size", dimension.get("size"))
    if not isinstance(ids, list) or not isinstance(sizes, list) or len(ids) != len(sizes):
        raise JsonStatError("dataset needs `id` and `size` lists of equal length")
    return [str(i) for i in ids], [int(s) for s in sizes]


def categories(ds: Mapping[str, Any], dim: str, size: int | None = None) -> list[tuple[str, str]]:
    """[(code, label)] of one dimension, in index order."""
    try:
        category = ds["dimension"][dim]["category"]
    except (KeyError, TypeError):
        raise JsonStatError(f"dimension {dim!r} has no category") from None
    labels = category.get("label") or {}
    index = category.get("index")
    if index is None:
        codes = list(labels)
    elif isinstance(index, list):
        codes = [str(c) for c in index]
    elif isinstance(index, dict):
        codes = [str(c) for c, _ in sorted(index.items(), key=lambda kv: kv[1])]
        if [index[c] for c in codes] != list(range(len(codes))):
            raise JsonStatError(f"dimension {dim!r}: index positions are not 0..n-1")
    else:
        raise JsonStatError(f"dimension {dim!r}: index must be an array or an object")
    if size is not None and len(codes) != size:
        raise JsonStatError(f"dimension {dim!r} has {len(codes)} categories, size says {size}")
    return [(code, str(labels.get(code, code))) for code in codes]


def dimensions(doc: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """{dimension id: [(code, label)]} of a single dataset (also a `value: []` metadata doc)."""
    ds = _single(doc)
    ids, sizes = _shape(ds)
    return {dim: categories(ds, dim, size) for dim, size in zip(ids, sizes, strict=True)}


def _single(doc: Mapping[str, Any]) -> dict[str, Any]:
    found = list(datasets(doc))
    if len(found) != 1:
        names = [name for name, _ in found]
        raise JsonStatError(f"expected one dataset, found {len(found)} {names}: use datasets()")
    return found[0][1]


def _sparse(node: Mapping[str, Any], n: int, what: str) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for key, item in node.items():
        try:
            position = int(key)
        except ValueError:
            raise JsonStatError(f"{what} key {key!r} is not a cell number") from None
        if not 0 <= position < n:
            raise JsonStatError(f"{what} key {key!r} is outside 0..{n - 1}")
        out[position] = item
    return out


def cell_values(raw: Any, n: int) -> list[Any]:
    """A dataset's `value` as its n cells in order: an array of exactly n entries, or a
    sparse object whose keys are cell numbers (absent cells are None)."""
    if isinstance(raw, list):
        if len(raw) != n:
            what = " (a metadata document?)" if not raw else ""
            raise JsonStatError(f"value array has {len(raw)} entries for {n} cells{what}")
        return list(raw)
    if isinstance(raw, dict):
        items: list[Any] = [None] * n
        for position, item in _sparse(raw, n, "value").items():
            items[position] = item
        return items
    raise JsonStatError("value must be an array or an object")


def cell_statuses(raw: Any, n: int) -> list[str | None]:
    """A dataset's `status` as its n cells: a string or a one-entry array applies to all."""
    if raw is None:
        return [None] * n
    if isinstance(raw, str):
        return [raw] * n
    if isinstance(raw, list):
        if len(raw) == 1:
            return [None if raw[0] is None else str(raw[0])] * n
        if len(raw) != n:
            raise JsonStatError(f"status array has {len(raw)} entries for {n} cells")
        return [None if s is None else str(s) for s in raw]
    if isinstance(raw, dict):
        out: list[str | None] = [None] * n
        for position, item in _sparse(raw, n, "status").items():
            out[position] = None if item is None else str(item)
        return out
    raise JsonStatError("status must be a string, an array or an object")


def _number(item: Any, position: int) -> float | str | None:
    """A float, None, or the missing-value symbol the value was sent as."""
    if item is None:
        return None
    if isinstance(item, bool):
        raise JsonStatError(f"value at cell {position} is a boolean")
    if isinstance(item, int | float):
        return float(item)
    if isinstance(item, str):
        text = item.strip()
        if text in MISSING_SYMBOLS:
            return text
        try:
            return float(text)
        except ValueError:
            raise JsonStatError(
                f"value {item!r} at cell {position} is not a number (to_long(text=True) keeps "
                "values as strings)"
            ) from None
    raise JsonStatError(f"value at cell {position} has type {type(item).__name__}")


def to_long(doc: Mapping[str, Any], *, text: bool = False) -> pl.DataFrame:
    """One row per cell of a single JSON-stat dataset (see the module docstring).

    `text=True` keeps values as String (for datasets of non-numeric values) and applies no
    status-symbol rule beyond copying `status`.
    """
    ds = _single(doc)
    ids, sizes = _shape(ds)
    cats = [categories(ds, dim, size) for dim, size in zip(ids, sizes, strict=True)]
    n = math.prod(sizes)
    items = cell_values(ds.get("value"), n)
    status = cell_statuses(ds.get("status"), n)

    reserved = {"value", "status"}
    columns: dict[str, pl.Series] = {}
    index = pl.int_range(0, n, eager=True, dtype=pl.Int64)
    stride = n
    for dim, size, pairs in zip(ids, sizes, cats, strict=True):
        if dim in reserved or f"{dim}_label" in reserved or dim in columns:
            raise JsonStatError(f"dimension id {dim!r} clashes with another column")
        reserved |= {dim, f"{dim}_label"}
        stride = stride // size if size else 0
        position = (index // stride) % size if n else index
        codes = pl.Series([c for c, _ in pairs], dtype=pl.String)
        labels = pl.Series([label for _, label in pairs], dtype=pl.String)
        columns[dim] = codes.gather(position).alias(dim)
        columns[f"{dim}_label"] = labels.gather(position).alias(f"{dim}_label")

    if text:
        values: list[Any] = [None if v is None else str(v) for v in items]
        dtype: Any = pl.String
    else:
        values = []
        for position, item in enumerate(items):
            number = _number(item, position)
            if isinstance(number, str):  # a symbol sent as the value
                status[position] = status[position] or number
                number = None
            if status[position] in MISSING_SYMBOLS:
                number = None
            values.append(number)
        dtype = pl.Float64
    columns["value"] = pl.Series("value", values, dtype=dtype)
    columns["status"] = pl.Series("status", status, dtype=pl.String)
    return pl.DataFrame(columns)
