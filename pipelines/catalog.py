"""Catalog tables for the serving layer, made from the dataset specs and contracts."""

from __future__ import annotations

import polars as pl

from lake.validation import contract_columns
from pipelines.gold.assets import GOLD_OWNER
from pipelines.gold.models import MODELS
from pipelines.specs import DatasetSpec


def catalog_tables(specs: list[DatasetSpec]) -> dict[str, pl.DataFrame]:
    return {"dataset_specs": datasets(specs), "columns": columns(specs)}


def datasets(specs: list[DatasetSpec]) -> pl.DataFrame:
    """What the YAML says about each dataset; the serving layer adds load and quality state."""
    rows = [
        {
            "dataset": s.name,
            "layer": "silver",
            "table": f"silver.{s.name}",
            "description": s.description,
            "owner": s.owner,
            "sector": s.sector,
            "classification": s.classification,
            "source": f"{s.source.get('type', 'files')}: drop/{s.name}/",
            "format": s.format.get("type"),
            "load_mode": s.load_mode,
            "keys": ", ".join(s.keys),
            "contract": s.contract_ref,
            "contact": s.contact,
            "freshness_hours": s.quality.freshness_hours,
            "quarantine_error": s.quality.quarantine_error,
        }
        for s in specs
    ]
    rows += [
        {
            "dataset": m.name,
            "layer": "gold",
            "table": f"gold.{m.name}",
            "description": m.description,
            "owner": GOLD_OWNER,
            "sector": "gold",
            "classification": "internal",
            "source": "silver." + ", silver.".join(m.inputs),
            "format": "sql",
            "load_mode": "snapshot",
            "keys": "",
            "contract": "",
            "contact": None,
            "freshness_hours": None,
            "quarantine_error": None,
        }
        for m in MODELS
    ]
    return pl.DataFrame(rows)


def columns(specs: list[DatasetSpec]) -> pl.DataFrame:
    rows = []
    for spec in specs:
        source_of = {field: header for header, field in spec.columns.items()}
        for position, (name, column) in enumerate(contract_columns(spec.contract).items(), 1):
            meta = column.metadata or {}
            rows.append(
                {
                    "dataset": spec.name,
                    "column": name,
                    "position": position,
                    "dtype": str(column.dtype),
                    "nullable": column.nullable,
                    "description": column.description,
                    "classification": meta.get("classification"),
                    "concept": meta.get("concept"),
                    "pseudonymised": bool(meta.get("identifier")),
                    "source_header": source_of.get(name, name),
                }
            )
    return pl.DataFrame(rows)
