"""`kommunelake catalog`: the data catalog as Markdown, JSON or DCAT-AP JSON-LD.

The catalog is read from the serving layer (catalog.datasets, catalog.columns,
catalog.glossary, catalog.sources; rows counted in the served views), so it says what
analysts can query now. A home whose serving layer was never built still gets a catalog:
the datasets its YAML defines, from the same functions that build those tables
(pipelines/catalog.py), each marked never loaded.

The catalog holds metadata only, and every text in it is passed through `redact` on the way
out: a portal's description or a YAML's wording may quote a CPR-shaped number.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import polars as pl

from lake import connect
from lake.errors import ConfigError, one_line
from lake.home import Home
from lake.privacy import redact
from lake.tables import open_table
from pipelines.catalog import catalog_tables
from pipelines.gold.small_cells import PUBLISHED
from pipelines.specs import read_specs
from pipelines.themes import DATA_THEMES, THEME_VOCABULARY, theme_iri

FORMATS = ("md", "json", "dcat")
# The catalog's order: sources, tables across them, then what may leave the analyst tier.
LAYERS = ("silver", "gold", PUBLISHED)
BASE_URI_ENV = "KOMMUNELAKE_CATALOG_BASE_URI"
DEFAULT_BASE_URI = "urn:kommunelake:"
PUBLISHER_NAME_ENV = "KOMMUNELAKE_PUBLISHER_NAME"
PUBLISHER_URI_ENV = "KOMMUNELAKE_PUBLISHER_URI"
# DCAT-AP's publisher type for a municipality (the ADMS publisher-type vocabulary).
LOCAL_AUTHORITY = "http://purl.org/adms/publishertype/LocalAuthority"
# The EU access-right vocabulary (DCAT-AP's dct:accessRights), by field classification.
ACCESS_RIGHT_VOCABULARY = "http://publications.europa.eu/resource/authority/access-right/"
ACCESS_RIGHTS = {
    "public": "PUBLIC",
    "internal": "RESTRICTED",
    "personal": "NON_PUBLIC",
    "sensitive": "NON_PUBLIC",
}
DCAT_CONTEXT = {
    "dcat": "http://www.w3.org/ns/dcat#",
    "dct": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "vcard": "http://www.w3.org/2006/vcard/ns#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
}


# --- reading ---------------------------------------------------------------------------------


def read_catalog(home: Home, dataset: str | None = None) -> dict[str, Any]:
    """The catalog of `home` as one document (see `catalog_document`), optionally of one
    dataset (and the glossary concepts its columns carry)."""
    if not home.root.is_dir():
        raise ConfigError(
            f"home {home.root} does not exist: give --home (or KOMMUNELAKE_HOME) a kommunelake "
            "home, or run `kommunelake demo` to build one"
        )
    # A home whose serving layer was never built: what it would serve, none of it loaded.
    document = _served_document(home) if home.serving_db.exists() else _defined_document()
    return only_dataset(document, dataset) if dataset is not None else document


def _served_document(home: Home) -> dict[str, Any]:
    con = connect(home.root)
    try:
        try:
            datasets = con.sql("SELECT * FROM catalog.datasets").pl()
            columns = con.sql("SELECT * FROM catalog.columns").pl()
            glossary = con.sql("SELECT * FROM catalog.glossary").pl()
            sources = con.sql("SELECT * FROM catalog.sources").pl()
            [(built_at,)] = con.sql("SELECT built_at FROM catalog.lake").fetchall()
        except duckdb.CatalogException as error:
            # A file built before these tables existed, or by hand without a catalog.
            raise ConfigError(
                f"{home.serving_db} has no complete catalog ({one_line(error)}): rebuild it "
                "with `kommunelake load --select 'key:serving/lake_duckdb'`"
            ) from error
        served = {
            f"{schema}.{name}"
            for schema, name in con.sql(
                "SELECT table_schema, table_name FROM information_schema.tables "
                f"WHERE table_schema IN {LAYERS}"
            ).fetchall()
        }
        rows = {
            table: con.sql(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in datasets["table"]
            if table in served
        }
    finally:
        con.close()
    changed = {
        row["dataset"]: _last_commit(home, row["dataset"])
        for row in datasets.filter(pl.col("layer") == "gold").iter_rows(named=True)
        if row["table"] in served
    }
    return catalog_document(
        datasets, columns, glossary, sources, rows=rows, gold_changed=changed, built_at=built_at
    )


def _defined_document() -> dict[str, Any]:
    """The datasets the YAML and the gold models define, none of them loaded."""
    tables = catalog_tables(read_specs()[0])
    return catalog_document(
        tables["dataset_specs"], tables["columns"], tables["glossary"], tables["sources"]
    )


def _last_commit(home: Home, model: str) -> dt.datetime | None:
    """When a gold table was last written (quality.runs records silver loads only)."""
    table = open_table(home.table_uri("gold", model), home.storage_options())
    if table is None:
        return None
    [newest] = table.history(1)
    return dt.datetime.fromtimestamp(newest["timestamp"] / 1000, dt.UTC)


# --- the document ----------------------------------------------------------------------------


def catalog_document(
    datasets: pl.DataFrame,
    columns: pl.DataFrame,
    glossary: pl.DataFrame,
    sources: pl.DataFrame,
    *,
    rows: Mapping[str, int] | None = None,
    gold_changed: Mapping[str, dt.datetime | None] | None = None,
    built_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The catalog as plain data, keys in a fixed order: `served` says whether a serving
    layer was read (else every dataset is `loaded: false`), then `datasets` (silver, gold,
    then the published views of gold, each with its columns; a published view has its gold
    table's name) and `glossary` (each concept with the datasets carrying it).

    `datasets`: catalog.datasets, or catalog.dataset_specs for a home never loaded (its load
    and quality columns missing). `rows`: the served table's row count by `table`."""
    rows, gold_changed = rows or {}, gold_changed or {}
    tags = {r["dataset"]: r for r in sources.iter_rows(named=True)}
    described: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for column in columns.sort("layer", "dataset", "position").iter_rows(named=True):
        described.setdefault((column["layer"], column["dataset"]), []).append(
            {
                "name": column["column"],
                "position": column["position"],
                "type": column["dtype"],
                "nullable": column["nullable"],
                "classification": column["classification"],
                "concept": column["concept"],
                "pseudonymised": column["pseudonymised"],
                "source_header": column["source_header"],
                "description": column["description"],
            }
        )
    entries = []
    for row in datasets.iter_rows(named=True):
        table = row["table"]
        if row["layer"] in ("gold", PUBLISHED):  # a published view shows its gold table now
            last_loaded_at = gold_changed.get(row["dataset"])
        else:
            last_loaded_at = row.get("last_loaded_at")
        last_load = None
        if row.get("rows_in") is not None:
            last_load = {
                "rows_in": row["rows_in"],
                "rows_valid": row["rows_valid"],
                "rows_quarantined": row["rows_quarantined"],
            }
        entries.append(
            {
                "name": row["dataset"],
                "layer": row["layer"],
                "table": table,
                "description": row["description"],
                "owner": row["owner"],
                "contact": row["contact"],
                "sector": row["sector"],
                "classification": row["classification"],
                # A file built before themes existed has no such column.
                "themes": list(row.get("themes") or []),
                "source": row["source"],
                "format": row["format"],
                "load_mode": row["load_mode"],
                "keys": [k for k in (row["keys"] or "").split(", ") if k],
                "contract": row["contract"] or None,
                "freshness_hours": row["freshness_hours"],
                "upstream": _upstream(row, tags.get(row["dataset"])),
                "loaded": table in rows,
                "last_loaded_at": _timestamp(last_loaded_at),
                "rows": rows.get(table),
                "last_load": last_load,
                "quality_score": row.get("quality_score"),
                "stale": row.get("stale"),
                "blocking_failures": row.get("blocking_failures"),
                "failing_warnings": row.get("failing_warnings"),
                "columns": described.get((row["layer"], row["dataset"]), []),
            }
        )
    entries.sort(key=lambda d: (LAYERS.index(d["layer"]), d["name"]))
    concepts = [
        {
            "concept": g["concept"],
            "term": g["term"],
            "term_da": g["term_da"],
            "term_nb": g["term_nb"],
            "definition": g["definition"],
            "unit": g["unit"],
            "notes": g["notes"],
            "steward": g["steward"],
            "see_also": list(g["see_also"] or []),
            "datasets": _unique(used.split(".")[1] for used in g["used_in"] or []),
            "used_in": list(g["used_in"] or []),
        }
        for g in glossary.iter_rows(named=True)
    ]
    document = {
        "served": built_at is not None,
        "built_at": _timestamp(built_at),
        "datasets": entries,
        "glossary": concepts,
    }
    return _masked(document)


def _upstream(row: Mapping[str, Any], source: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What an open-data portal says about the dataset this one is loaded from."""
    if row.get("upstream_title") is None and row.get("publisher") is None:
        return None
    source = source or {}
    return {
        "title": row["upstream_title"],
        "publisher": row["publisher"],
        "license": row["license"],
        "modified": _timestamp(row["upstream_modified"]),
        "landing_page": source.get("landing_page"),
        "tags": list(source.get("tags") or []),
    }


def only_dataset(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The document of one dataset, with the concepts its columns carry; a gold model's name
    selects its gold table and its published view."""
    chosen = [d for d in document["datasets"] if d["name"] == name]
    if not chosen:
        known = ", ".join(_unique(d["name"] for d in document["datasets"]))
        raise ConfigError(f"--dataset {name!r}: no such dataset in the catalog; datasets: {known}")
    return {
        **document,
        "datasets": chosen,
        "glossary": [c for c in document["glossary"] if name in c["datasets"]],
    }


def _identifier(d: Mapping[str, Any]) -> str:
    """A dataset's name, unique in the catalog: a published view has its gold table's name,
    so it goes by the view's (`published.<model>`)."""
    return d["table"] if d["layer"] == PUBLISHED else d["name"]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _timestamp(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC: the connection's time zone must not change what the catalog says."""
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _masked(value: Any) -> Any:
    """Every text in the document with CPR-shaped numbers masked (numbers stay numbers)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_masked(v) for v in value]
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


# --- JSON ------------------------------------------------------------------------------------


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


# --- Markdown --------------------------------------------------------------------------------


def as_markdown(document: dict[str, Any], home: Home) -> str:
    lines = ["# Data catalog", ""]
    # The home's path is masked like every other text: a folder may be named after anything.
    if document["served"]:
        lines.append(f"Served from `{redact(str(home.serving_db))}`, built {document['built_at']}.")
    else:
        lines.append(
            f"No serving layer in `{redact(str(home.root))}` yet: the datasets as defined, none "
            "loaded (`kommunelake load` loads them)."
        )
    lines += ["", "## Datasets", ""]
    for d in document["datasets"]:
        lines += _dataset_markdown(d)
    lines += ["## Glossary", ""]
    for c in document["glossary"]:
        lines += _concept_markdown(c)
    return "\n".join(lines).rstrip("\n") + "\n"


def _dataset_markdown(d: Mapping[str, Any]) -> list[str]:
    owner = d["owner"] + (f" ({d['contact']})" if d["contact"] else "")
    mode = d["load_mode"] + (f" (keys: {', '.join(d['keys'])})" if d["keys"] else "")
    facts = [
        ("Table", f"`{d['table']}`"),
        ("Owner", owner),
        ("Layer", d["layer"]),
        ("Sector", d["sector"]),
        ("Classification", d["classification"]),
        ("Themes", ", ".join(f"{t} ({DATA_THEMES.get(t, '?')})" for t in d["themes"]) or "–"),
        ("Source", d["source"]),
        ("Load mode", mode),
        ("Last load", _last_load_text(d)),
        ("Rows", "–" if d["rows"] is None else f"{d['rows']:,}"),
    ]
    if d["layer"] == "silver":
        score = d["quality_score"]
        facts.append(("Quality score", "unknown" if score is None else f"{score} / 100"))
    if (upstream := d["upstream"]) is not None:
        shown = " · ".join(
            str(v) for v in (upstream["title"], upstream["publisher"], upstream["license"]) if v
        )
        facts.append(("Open data source", shown))
    lines = [f"### {_identifier(d)}", "", _cell(d["description"]), "", "| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in facts]
    lines += [
        "",
        "| Column | Type | Classification | Concept | Description |",
        "|---|---|---|---|---|",
    ]
    for c in d["columns"]:
        classification = c["classification"] or "unclassified"
        if c["pseudonymised"]:
            classification += ", pseudonymised"
        shown = readable_type(c["type"])
        lines.append(
            f"| `{c['name']}` | {_cell(shown)} | {classification} | {c['concept'] or ''} "
            f"| {_cell(c['description'])} |"
        )
    return [*lines, ""]


_READABLE = {
    "String": "text",
    "Utf8": "text",
    "Categorical": "text",
    "Enum": "text",
    "Boolean": "boolean",
    "Date": "date",
    "Time": "time of day",
    "Duration": "duration",
    "Binary": "bytes",
    "Struct": "record",
    "Null": "empty",
    **dict.fromkeys(("Float32", "Float64"), "number"),
    **dict.fromkeys(
        (f"{sign}Int{bits}" for sign in ("", "U") for bits in (8, 16, 32, 64, 128)), "integer"
    ),
}
_DTYPE = re.compile(r"(?P<name>\w+)(?:\((?P<args>.*)\))?")


def readable_type(dtype: str) -> str:
    """A column's type for a reader, from polars' text of it: `Datetime(time_unit='us',
    time_zone='UTC')` is `timestamp (UTC)`, `Decimal(precision=18, scale=2)` `decimal(18,2)`.
    A text not recognised is shown as it is (json keeps the exact text in any case)."""
    found = _DTYPE.fullmatch(dtype.strip())
    if found is None:
        return dtype
    name, args = found["name"], found["args"] or ""
    if name == "Datetime":
        zone = re.search(r"time_zone='([^']+)'", args)
        return f"timestamp ({zone[1]})" if zone else "timestamp (no time zone)"
    if name == "Decimal":
        digits = re.findall(r"=(\d+)", args)
        return f"decimal({','.join(digits)})" if len(digits) == 2 else "decimal"
    if name in ("List", "Array"):
        inner = re.sub(r",\s*(shape|width)=.*$", "", args)  # Array(Int64, shape=(3,))
        return f"list of {readable_type(inner)}"
    return _READABLE.get(name, dtype)


def _last_load_text(d: Mapping[str, Any]) -> str:
    if d["last_loaded_at"] is None:
        return "never loaded"
    text = d["last_loaded_at"]
    if (load := d["last_load"]) is not None:
        text += (
            f": {load['rows_in']:,} rows in, {load['rows_valid']:,} valid, "
            f"{load['rows_quarantined']:,} quarantined"
        )
    return text


def _concept_markdown(c: Mapping[str, Any]) -> list[str]:
    lines = [f"### {c['term']} (`{c['concept']}`)", ""]
    translations = [f"{lang}: {t}" for lang, t in (("da", c["term_da"]), ("nb", c["term_nb"])) if t]
    if translations:
        lines.append(f"- Terms: {'; '.join(translations)}")
    lines.append(f"- Definition: {_cell(c['definition'])}")
    if c["unit"]:
        lines.append(f"- Unit: {c['unit']}")
    if c["notes"]:
        lines.append(f"- Not to be confused with: {_cell(c['notes'])}")
    lines.append(f"- Steward: {c['steward']}")
    lines.append(f"- Used in: {', '.join(c['datasets']) or 'no dataset yet'}")
    return [*lines, ""]


def _cell(value: object) -> str:
    """Text for one Markdown table cell or list item: one line, `|` escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


# --- DCAT-AP JSON-LD -------------------------------------------------------------------------


def base_uri(env: Mapping[str, str] | None = None) -> str:
    """The base of every IRI the DCAT output mints (KOMMUNELAKE_CATALOG_BASE_URI), ending in
    a separator so `<base>dataset/<name>` is one IRI."""
    env = os.environ if env is None else env
    base = env.get(BASE_URI_ENV, "").strip() or DEFAULT_BASE_URI
    _require_iri(BASE_URI_ENV, base, f"https://data.example.dk/catalog/ or {DEFAULT_BASE_URI}")
    return base if base.endswith(("/", "#", ":")) else base + "/"


def _require_iri(variable: str, value: str, example: str) -> None:
    scheme, colon, _ = value.partition(":")
    if not colon or not scheme.isalpha() or " " in value:
        raise ConfigError(
            f"{variable}={value!r} is not an absolute IRI: give one such as {example}"
        )


@dataclass(frozen=True)
class Publisher:
    """The municipality that publishes the catalog (DCAT-AP's mandatory dct:publisher)."""

    name: str
    uri: str | None = None


def publisher(env: Mapping[str, str] | None = None) -> Publisher:
    """KOMMUNELAKE_PUBLISHER_NAME (required for DCAT) and KOMMUNELAKE_PUBLISHER_URI."""
    env = os.environ if env is None else env
    name = " ".join(env.get(PUBLISHER_NAME_ENV, "").split())
    if not name:
        # No default: a portal would show it as the publisher of every dataset harvested.
        raise ConfigError(
            f"{PUBLISHER_NAME_ENV} is not set: DCAT-AP needs the catalog's publisher; set it "
            f"to the municipality that publishes it (e.g. {PUBLISHER_NAME_ENV}='Demo Kommune'"
            f", and {PUBLISHER_URI_ENV} to its IRI where it has one)"
        )
    uri = env.get(PUBLISHER_URI_ENV, "").strip() or None
    if uri is not None:
        _require_iri(PUBLISHER_URI_ENV, uri, "https://www.demo-kommune.dk or a CVR-based IRI")
    return Publisher(name, uri)


def as_dcat(
    document: dict[str, Any], base: str, by: Publisher, serving: str | None = None
) -> dict[str, Any]:
    """DCAT-AP as JSON-LD: a dcat:Catalog of dcat:Datasets published `by` a municipality.
    A dataset's themes are its EU data themes and its glossary concepts; the glossary is a
    skos:ConceptScheme.
    `serving`: the serving file's URI, given when it was read; each dataset served in it
    gets its view there as a dcat:Distribution."""
    scheme = f"{base}glossary"
    concept_iri = {c["concept"]: f"{base}concept/{c['concept']}" for c in document["glossary"]}
    agent: dict[str, Any] = {
        "@type": "foaf:Agent",
        "foaf:name": redact(by.name),  # masked like every other text of the catalog
        "dct:type": {"@id": LOCAL_AUTHORITY},
    }
    if by.uri is not None:
        agent["@id"] = redact(by.uri)
    datasets = [_dcat_dataset(d, base, concept_iri, serving, agent) for d in document["datasets"]]
    catalog: dict[str, Any] = {
        "@id": f"{base}catalog",
        "@type": "dcat:Catalog",
        "dct:title": _en("kommunelake data catalog"),
        "dct:description": _en(
            "Datasets served by kommunelake (silver: validated and pseudonymised sources; "
            "gold: tables across sources; published: gold with small cells hidden, what may "
            "leave the municipality) and the glossary of the concepts they carry."
        ),
        "dct:publisher": agent,
        "dcat:themeTaxonomy": [{"@id": scheme}, {"@id": THEME_VOCABULARY}],
        "dcat:dataset": [{"@id": d["@id"]} for d in datasets],
    }
    if document["built_at"] is not None:
        catalog["dct:modified"] = _datetime(document["built_at"])
    concept_scheme = {
        "@id": scheme,
        "@type": "skos:ConceptScheme",
        "dct:title": _en("kommunelake glossary"),
        "skos:hasTopConcept": [{"@id": iri} for iri in concept_iri.values()],
    }
    concepts = [_skos_concept(c, scheme, concept_iri) for c in document["glossary"]]
    return {
        "@context": DCAT_CONTEXT,
        "@graph": [catalog, *datasets, concept_scheme, *concepts],
    }


def _dcat_dataset(
    d: Mapping[str, Any],
    base: str,
    concept_iri: Mapping[str, str],
    serving: str | None,
    agent: Mapping[str, Any],
) -> dict[str, Any]:
    """One dataset, published by the municipality (`agent`, as the catalog); its owning
    team is the contact point, whom a reader asks about it."""
    contact: dict[str, Any] = {"@type": "vcard:Organization", "vcard:fn": d["owner"]}
    if d["contact"]:
        contact["vcard:hasEmail"] = {"@id": f"mailto:{d['contact']}"}
    carried = _unique(c["concept"] for c in d["columns"] if c["concept"])
    keywords = _unique([d["sector"], d["layer"], *(d["upstream"] or {}).get("tags", []), *carried])
    identifier = _identifier(d)
    node: dict[str, Any] = {
        "@id": f"{base}dataset/{identifier}",
        "@type": "dcat:Dataset",
        "dct:identifier": identifier,
        "dct:title": _en(identifier),
        "dct:description": _en(d["description"]),
        "dct:publisher": agent,
        "dcat:contactPoint": contact,
        "dct:accessRights": {"@id": ACCESS_RIGHT_VOCABULARY + ACCESS_RIGHTS[d["classification"]]},
        "dcat:keyword": keywords,
    }
    if d["last_loaded_at"] is not None:
        node["dct:modified"] = _datetime(d["last_loaded_at"])
    themes = [theme_iri(t) for t in d["themes"]]
    themes += [concept_iri[c] for c in carried if c in concept_iri]
    if themes:
        node["dcat:theme"] = [{"@id": iri} for iri in themes]
    if d["contract"]:
        node["dct:conformsTo"] = {
            "@type": "dct:Standard",
            "dct:identifier": d["contract"],
            "dct:title": _en(f"kommunelake data contract {d['contract']}"),
        }
    if (upstream := d["upstream"]) is not None:
        node["dct:source"] = _dcat_upstream(upstream)
    if serving is not None and d["loaded"]:
        node["dcat:distribution"] = _dcat_view(d, node["@id"], serving)
    return node


def _dcat_view(d: Mapping[str, Any], dataset_iri: str, serving: str) -> dict[str, Any]:
    """Where the dataset can be queried: its view in the serving file. That file is on the
    municipality's server, so this is an access URL for those who can read it, not a
    download (README, Command line)."""
    node: dict[str, Any] = {
        "@id": f"{dataset_iri}/serving",
        "@type": "dcat:Distribution",
        "dct:title": _en(f"View {d['table']} in the kommunelake serving layer"),
        "dct:description": _en(
            f"The view {d['table']} in a DuckDB database file on the server running "
            "kommunelake; query it with `kommunelake sql` or `from lake import connect`. Not "
            "a download: it is reached only with access to that file."
        ),
        "dcat:accessURL": {"@id": serving},
        "dct:format": {"@type": "dct:MediaTypeOrExtent", "rdfs:label": "DuckDB"},
    }
    if d["last_loaded_at"] is not None:
        node["dct:modified"] = _datetime(d["last_loaded_at"])
    return node


def _dcat_upstream(upstream: Mapping[str, Any]) -> dict[str, Any]:
    """The open-data portal's dataset this one is loaded from."""
    node: dict[str, Any] = {"@type": "dcat:Dataset"}
    if upstream["landing_page"]:
        node["@id"] = upstream["landing_page"]
        node["dcat:landingPage"] = {"@id": upstream["landing_page"]}
    if upstream["title"]:
        node["dct:title"] = upstream["title"]
    if upstream["publisher"]:
        node["dct:publisher"] = {"@type": "foaf:Agent", "foaf:name": upstream["publisher"]}
    if upstream["license"]:
        node["dct:license"] = {"@type": "dct:LicenseDocument", "dct:title": upstream["license"]}
    if upstream["modified"]:
        node["dct:modified"] = _datetime(upstream["modified"])
    return node


def _skos_concept(
    c: Mapping[str, Any], scheme: str, concept_iri: Mapping[str, str]
) -> dict[str, Any]:
    labels = [{"@value": c["term"], "@language": "en"}]
    labels += [
        {"@value": t, "@language": lang}
        for lang, t in (("da", c["term_da"]), ("nb", c["term_nb"]))
        if t
    ]
    node: dict[str, Any] = {
        "@id": concept_iri[c["concept"]],
        "@type": "skos:Concept",
        "skos:inScheme": {"@id": scheme},
        "skos:topConceptOf": {"@id": scheme},
        "skos:notation": c["concept"],
        "skos:prefLabel": labels,
        "skos:definition": _en(c["definition"]),
        "skos:editorialNote": _en(f"Steward: {c['steward']}"),
    }
    if c["notes"]:
        node["skos:scopeNote"] = _en(c["notes"])
    if c["unit"]:
        node["skos:note"] = _en(f"Unit: {c['unit']}")
    if c["see_also"]:
        node["skos:related"] = [{"@id": concept_iri[s]} for s in c["see_also"] if s in concept_iri]
    return node


def _en(text: str) -> dict[str, str]:
    return {"@value": text, "@language": "en"}


def _datetime(iso: str) -> dict[str, str]:
    return {"@value": iso, "@type": "xsd:dateTime"}


# --- the command -----------------------------------------------------------------------------


def render(home: Home, fmt: str, dataset: str | None = None) -> str:
    """The catalog of `home` in `fmt` (md, json or dcat), as text for stdout."""
    if fmt == "dcat":  # its settings are checked before the catalog is read
        base, by = base_uri(), publisher()
    document = read_catalog(home, dataset)
    if fmt == "md":
        return as_markdown(document, home)
    if fmt == "json":
        return as_json(document)
    # The home's path is masked like every other text: a folder may be named after anything.
    serving = redact(home.serving_db.resolve().as_uri()) if document["served"] else None
    return as_json(as_dcat(document, base, by, serving))
