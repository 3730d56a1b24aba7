"""Catalog tables for the serving layer, made from the dataset specs and contracts, and from
what open-data portals say about their datasets.

- `dataset_specs` (the serving layer's `catalog.datasets` adds load and quality state): one
  row per dataset, gold table and `published` view (what may leave the analyst tier, with
  its small-cell rule); `source` says where it comes from, and for a dataset from an open-data
  portal `publisher`, `license`, `upstream_title` and `upstream_modified` say what the portal
  says about it.
- `sources`: one row per silver dataset: the source type and system, the endpoint it is read
  from, and for a CKAN dataset the package's metadata (title, description, organization,
  licence, tags, its page on the portal, when the portal last changed it, when we fetched it).
- `source_resources`: the files a CKAN package offers (URL, format, size, last change), with
  `loaded` marking the one that is loaded into silver.
- `columns`: every served column (silver, gold and published) with its type, meaning,
  classification and glossary concept; `glossary`: each concept's agreed definition
  (schemas/glossary.yaml) and the columns that carry it.

The portal metadata is read from landing (`<dataset>.metadata`, the newest `package_show`
answer, see pipelines/api_sources.py), so the catalog shows what was fetched, also offline.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from connectors import ckan, cvr, datafordeler, statbank
from connectors.formats.errors import FormatError
from connectors.http import redact_url
from lake import quality
from lake.home import Home
from lake.landing import LandedFile, manifest, read_landed
from lake.privacy import redact
from lake.tables import open_table
from lake.validation import contract_columns, evolved_name
from pipelines.api_sources import METADATA, is_api, part_dataset, setting, source_name
from pipelines.columns import ColumnDoc, silver_columns
from pipelines.gold.assets import GOLD_OWNER
from pipelines.gold.models import (
    MODELS,
    GoldModel,
    published_classification,
    published_columns,
    published_description,
    published_models,
)
from pipelines.gold.small_cells import PUBLISHED, min_cell
from pipelines.specs import DatasetSpec
from schemas.glossary import Concept, load_glossary

log = logging.getLogger("kommunelake.catalog")

_TIME = pl.Datetime("us", "UTC")
SOURCES_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "source_type": pl.String,  # files | sftp | datafordeler | statbank | cvr | ckan | rest
    "system": pl.String,  # the SOURCES__<NAME>__ name, or the drop folder
    "endpoint": pl.String,  # where it is read from (credentials never included)
    "portal": pl.String,
    "package_id": pl.String,
    "package_name": pl.String,
    "title": pl.String,
    "description": pl.String,
    "publisher": pl.String,  # the portal's organization
    "publisher_id": pl.String,
    "license": pl.String,
    "license_id": pl.String,
    "tags": pl.List(pl.String),
    "landing_page": pl.String,  # the dataset's page on the portal
    "source_url": pl.String,  # the publisher's own page, where the portal has one
    "created": _TIME,
    "modified": _TIME,  # the dataset's last change as the portal tells it
    "metadata_modified": _TIME,
    "metadata_fetched_at": _TIME,
    "metadata_sha256": pl.String,  # the landed package_show answer
}
# Typed here, not inferred from the rows: a column every row leaves empty (no dataset from an
# open-data portal yet: publisher, license, ...) would be polars' Null, served as INTEGER.
DATASETS_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "layer": pl.String,  # silver | gold | published
    "table": pl.String,
    "description": pl.String,
    "owner": pl.String,
    "sector": pl.String,
    "classification": pl.String,
    "themes": pl.List(pl.String),  # EU data-theme codes (pipelines/themes.py)
    "source": pl.String,
    "format": pl.String,
    "load_mode": pl.String,
    "keys": pl.String,
    "contract": pl.String,
    "contact": pl.String,
    "freshness_hours": pl.Float64,
    "quarantine_error": pl.Float64,
    "publisher": pl.String,
    "license": pl.String,
    "upstream_title": pl.String,
    "upstream_modified": _TIME,
}
RESOURCES_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "resource_id": pl.String,
    "name": pl.String,
    "description": pl.String,
    "url": pl.String,
    "format": pl.String,
    "media_type": pl.String,
    "size_bytes": pl.Int64,
    "last_modified": _TIME,
    "loaded": pl.Boolean,
}


def catalog_tables(
    specs: list[DatasetSpec], home: Home | None = None, *, k: int | None = None
) -> dict[str, pl.DataFrame]:
    """Every catalog table; without `home` the portal metadata columns stay empty. `k`: the
    published views' small-cell threshold (None: `KOMMUNELAKE_MIN_CELL` as set now)."""
    k = min_cell(os.environ) if k is None else k
    metadata = {s.name: portal_metadata(s, home) for s in specs} if home is not None else {}
    described = columns(specs, home, k)
    return {
        "dataset_specs": datasets(specs, metadata, k),
        "columns": described,
        "glossary": glossary(described, load_glossary()),
        "sources": sources(specs, metadata),
        "source_resources": source_resources(specs, metadata),
    }


@dataclass(frozen=True)
class PortalMetadata:
    """A CKAN package as landed: the record, and which landing it came from."""

    record: ckan.DatasetRecord
    landed: LandedFile


def portal_metadata(spec: DatasetSpec, home: Home) -> PortalMetadata | None:
    """The newest landed `package_show` answer of a CKAN dataset, as a record; None when
    the dataset is not from CKAN, nothing was landed yet, or the answer cannot be read."""
    if spec.source.get("type") != "ckan":
        return None
    landed = manifest(home.manifest_uri, part_dataset(spec.name, METADATA))
    if not landed:
        return None
    newest = landed[-1]
    try:
        raw = read_landed(newest)
        package = ckan.parse_action(raw, action="package_show", where=newest.original_name)
        record = ckan.dataset_record(package, portal=_portal_of(raw, spec))
    except (FormatError, ckan.CkanError, OSError) as error:
        log.warning("%s: the landed portal metadata cannot be read: %s", spec.name, error)
        return None
    return PortalMetadata(record, newest)


def _portal_of(raw: bytes, spec: DatasetSpec) -> str:
    """The portal's public address as it answered (its `help` link), else the YAML's."""
    return ckan.site_url(raw) or str(spec.source.get("portal") or "")


def endpoint(spec: DatasetSpec, env: Mapping[str, str] | None = None) -> str:
    """Where a dataset is read from: the drop folder, or the API endpoint as configured now
    (SOURCES__<NAME>__BASE_URL/URL override the YAML), without credentials."""
    env = os.environ if env is None else env
    src, kind = spec.source, spec.source.get("type", "files")
    if not is_api(spec):
        return f"drop/{spec.name}/"
    what = ""
    if kind == "datafordeler":
        base = setting(spec, "base_url", env, datafordeler.GRAPHQL_URL)
        url, what = f"{base.rstrip('/')}/{src.get('register')}/v1", f" ({src.get('entity')})"
    elif kind == "statbank":
        base = setting(spec, "base_url", env, statbank.STATBANK_URL)
        url, what = f"{base.rstrip('/')}/data", f" ({src.get('table')})"
    elif kind == "cvr":
        url = f"{setting(spec, 'base_url', env, cvr.CVR_URL).rstrip('/')}/cvr-permanent/virksomhed"
    elif kind == "ckan":
        portal = str(setting(spec, "base_url", env, src.get("portal")) or "").rstrip("/")
        url = f"{portal}/dataset/{src.get('package')}"
    else:
        url = str(setting(spec, "url", env, src.get("url")))
    shown = redact_url(url) if url.startswith(("http://", "https://")) else url
    return redact(shown + what)  # a lookup URL may carry a CPR number in its path


def datasets(
    specs: list[DatasetSpec],
    metadata: Mapping[str, PortalMetadata | None],
    k: int,
) -> pl.DataFrame:
    """What the YAML says about each dataset, then each gold model and its published view
    (`k`: the small-cell threshold); the serving layer adds load and quality state."""
    rows = []
    for s in specs:
        found = metadata.get(s.name)
        record = found.record if found else None
        kind = s.source.get("type", "files")
        rows.append(
            {
                "dataset": s.name,
                "layer": "silver",
                "table": f"silver.{s.name}",
                "description": s.description,
                "owner": s.owner,
                "sector": s.sector,
                "classification": s.classification,
                "themes": list(s.themes),
                "source": f"{kind} API: {endpoint(s)}" if is_api(s) else f"{kind}: {endpoint(s)}",
                "format": s.format.get("type"),
                "load_mode": s.load_mode,
                "keys": ", ".join(s.keys),
                "contract": s.contract_ref,
                "contact": s.contact,
                "freshness_hours": s.quality.freshness_hours,
                "quarantine_error": s.quality.quarantine_error,
                "publisher": record.organization if record else None,
                "license": record.license if record else None,
                "upstream_title": record.title if record else None,
                "upstream_modified": record.modified if record else None,
            }
        )
    rows += [_gold_row(m) for m in MODELS]
    rows += [
        _gold_row(m)
        | {
            "layer": PUBLISHED,
            "table": f"{PUBLISHED}.{m.name}",
            "description": published_description(m, k),
            "sector": PUBLISHED,
            "classification": published_classification(m),
            "source": f"gold.{m.name}",
            "load_mode": "view",
        }
        for m in published_models()
    ]
    return pl.DataFrame(rows, schema=DATASETS_SCHEMA)


def _gold_row(m: GoldModel) -> dict[str, Any]:
    return {
        "dataset": m.name,
        "layer": "gold",
        "table": f"gold.{m.name}",
        "description": m.description,
        "owner": GOLD_OWNER,
        "sector": "gold",
        "classification": m.classification,
        "themes": list(m.themes),
        "source": "silver." + ", silver.".join(m.inputs),
        "format": "sql",
        "load_mode": "snapshot",
        "keys": "",
        "contract": "",
        "contact": None,
        "freshness_hours": None,
        "quarantine_error": None,
        "publisher": None,
        "license": None,
        "upstream_title": None,
        "upstream_modified": None,
    }


def sources(
    specs: list[DatasetSpec], metadata: Mapping[str, PortalMetadata | None] | None = None
) -> pl.DataFrame:
    """Where each silver dataset comes from, with the portal's metadata where it has one."""
    metadata = metadata or {}
    rows = []
    for spec in specs:
        row: dict[str, Any] = dict.fromkeys(SOURCES_SCHEMA)
        kind = spec.source.get("type", "files")
        row |= {
            "dataset": spec.name,
            "source_type": kind,
            "system": source_name(spec) if is_api(spec) else f"drop/{spec.name}",
            "endpoint": endpoint(spec),
        }
        found = metadata.get(spec.name)
        if found is not None:
            record = found.record
            row |= {
                "portal": record.portal,
                "package_id": record.id,
                "package_name": record.name,
                "title": record.title,
                "description": record.description,
                "publisher": record.organization,
                "publisher_id": record.organization_name,
                "license": record.license,
                "license_id": record.license_id,
                "tags": list(record.tags),
                "landing_page": record.landing_page,
                "source_url": record.source_url,
                "created": record.created,
                "modified": record.modified,
                "metadata_modified": record.metadata_modified,
                "metadata_fetched_at": found.landed.fetched_at,
                "metadata_sha256": found.landed.sha256,
            }
        rows.append(row)
    return pl.DataFrame(rows, schema=SOURCES_SCHEMA)


def source_resources(
    specs: list[DatasetSpec], metadata: Mapping[str, PortalMetadata | None] | None = None
) -> pl.DataFrame:
    """The files each portal dataset offers; `loaded` marks the one loaded into silver."""
    metadata = metadata or {}
    rows = []
    for spec in specs:
        found = metadata.get(spec.name)
        if found is None:
            continue
        try:
            chosen = ckan.choose_resource(
                found.record,
                resource=spec.source.get("resource"),
                format=spec.source.get("resource_format"),
            )
        except ckan.CkanError:
            chosen = None
        for resource in found.record.resources:
            rows.append(
                {
                    "dataset": spec.name,
                    "resource_id": resource.id,
                    "name": resource.name,
                    "description": resource.description,
                    "url": resource.url,
                    "format": resource.format,
                    "media_type": resource.media_type,
                    "size_bytes": resource.size,
                    "last_modified": resource.modified,
                    "loaded": resource is chosen,
                }
            )
    return pl.DataFrame(rows, schema=RESOURCES_SCHEMA)


COLUMNS_SCHEMA: dict[str, Any] = {
    "dataset": pl.String,
    "layer": pl.String,  # silver | gold | published
    "column": pl.String,
    "position": pl.Int64,
    "dtype": pl.String,
    "nullable": pl.Boolean,
    "description": pl.String,
    "classification": pl.String,
    "concept": pl.String,  # its catalog.glossary entry
    "pseudonymised": pl.Boolean,
    "source_header": pl.String,
}


def columns(specs: list[DatasetSpec], home: Home | None, k: int) -> pl.DataFrame:
    """Every served table's columns: each dataset's contract fields, lineage and history
    columns, then (with `home`) the columns its loads added to silver under `schema_drift:
    evolve`, which no contract describes; then each gold model's columns, then each
    published view's (`k`: the small-cell threshold)."""
    # quality.runs is read once for every dataset: each read loads the table's whole log.
    history = quality.runs(home) if home is not None else None
    rows = []
    for spec in specs:
        documented = silver_columns(spec)
        rows += [_column_row(spec.name, "silver", i, doc) for i, doc in enumerate(documented, 1)]
        added = evolved_columns(spec, home, history) if home is not None else {}
        for position, (name, (dtype, header)) in enumerate(added.items(), len(documented) + 1):
            doc = ColumnDoc(
                name,
                str(dtype),
                "Added from a new source column by schema_drift: evolve; not in the contract "
                "(unclassified)",
                nullable=True,
                source_header=header,
            )
            rows.append(_column_row(spec.name, "silver", position, doc))
    for model in MODELS:
        rows += [_column_row(model.name, "gold", i, doc) for i, doc in enumerate(model.columns, 1)]
    for model in published_models():
        docs = published_columns(model, k)
        rows += [_column_row(model.name, PUBLISHED, i, doc) for i, doc in enumerate(docs, 1)]
    return pl.DataFrame(rows, schema=COLUMNS_SCHEMA)


def _column_row(dataset: str, layer: str, position: int, doc: ColumnDoc) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "layer": layer,
        "column": doc.name,
        "position": position,
        "dtype": doc.dtype,
        "nullable": doc.nullable,
        "description": doc.description,
        "classification": doc.classification,
        "concept": doc.concept,
        "pseudonymised": doc.pseudonymised,
        "source_header": doc.source_header,
    }


GLOSSARY_SCHEMA: dict[str, Any] = {
    "concept": pl.String,
    "term": pl.String,  # English
    "term_da": pl.String,
    "term_nb": pl.String,
    "definition": pl.String,
    "unit": pl.String,
    "notes": pl.String,  # what it is not; sector definitions not to confuse it with
    "steward": pl.String,  # who agrees changes to the definition
    "see_also": pl.List(pl.String),
    "used_in": pl.List(pl.String),  # layer.dataset.column of every column carrying it
    "datasets": pl.Int64,  # how many served tables carry it
}


def glossary(catalog_columns: pl.DataFrame, concepts: Mapping[str, Concept]) -> pl.DataFrame:
    """The glossary with, per concept, the served columns that carry it."""
    carried = (
        catalog_columns.filter(pl.col("concept").is_not_null())
        .group_by("concept", maintain_order=True)
        .agg(
            pl.format("{}.{}.{}", "layer", "dataset", "column").alias("used_in"),
            pl.struct("layer", "dataset").n_unique().alias("datasets"),
        )
    )
    used = {row["concept"]: row for row in carried.iter_rows(named=True)}
    rows = [
        {
            "concept": c.concept,
            "term": c.term,
            "term_da": c.da,
            "term_nb": c.nb,
            "definition": c.definition,
            "unit": c.unit,
            "notes": c.notes,
            "steward": c.steward,
            "see_also": list(c.see_also),
            "used_in": used.get(c.concept, {}).get("used_in", []),
            "datasets": used.get(c.concept, {}).get("datasets", 0),
        }
        for c in concepts.values()
    ]
    return pl.DataFrame(rows, schema=GLOSSARY_SCHEMA)


def evolved_columns(
    spec: DatasetSpec, home: Home, history: pl.DataFrame | None = None
) -> dict[str, tuple[pl.DataType, str]]:
    """Silver columns that loads added under `schema_drift: evolve` (their drift decisions
    in quality.runs say which), with silver's type and the source header they came from.
    `history`: `quality.runs(home)` when the caller has read it already."""
    uri = home.table_uri("silver", spec.name)
    table = open_table(uri, home.storage_options())
    if table is None:
        return {}
    header_of: dict[str, str] = {}
    if history is None:
        history = quality.runs(home)
    for run in history.filter(pl.col("dataset") == spec.name).iter_rows(named=True):
        decision = run["drift_decision"] or ""
        if not decision.startswith("added: "):
            continue
        headers = {evolved_name(h): h for h in json.loads(run["extra_columns"] or "[]")}
        for name in decision.removeprefix("added: ").split(", "):
            header_of[name] = headers.get(name, name)
    schema = pl.scan_delta(table).collect_schema()
    known = set(contract_columns(spec.contract))
    return {
        name: (schema[name], header)
        for name, header in header_of.items()
        if name in schema and name not in known
    }
