"""What each served table's columns are and mean: one list for `catalog.columns` and for the
column schema the Dagster UI shows, so the two never tell an analyst different things.

A silver table holds its contract's fields, then the lineage columns every load adds, then
(for `load_mode: scd2`) the history columns. A gold table's columns are declared with its
model (`GoldModel.columns` in pipelines/gold/models.py), and a test holds them to what the
model's SQL returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from lake.tables import UTC_US
from lake.validation import contract_columns
from pipelines.specs import DatasetSpec


@dataclass(frozen=True)
class ColumnDoc:
    name: str
    dtype: str
    description: str
    nullable: bool = False
    classification: str | None = None
    concept: str | None = None
    pseudonymised: bool = False
    source_header: str | None = None  # the sender's header(s) a silver field is read from


_TIME = str(UTC_US)
SHEET_DOC = ColumnDoc(
    "_sheet", "String", "Lineage: the workbook sheet the row was read from (`sheets:`).", True
)
LINEAGE_DOCS = (
    ColumnDoc(
        "_source_row",
        "Int64",
        "Lineage: where the row is in the delivered file (its line or sheet row, or its "
        "record's number in JSON and XML), as the quarantine and the checks cite it.",
    ),
    ColumnDoc(
        "_batch_id",
        "String",
        "Lineage: the load that wrote the row, the first 16 hex digits of the landed file's "
        "SHA-256 (the landing manifest has the whole hash and the file).",
    ),
    ColumnDoc(
        "_source_file",
        "String",
        "Lineage: the delivered file's name (a CPR number in it is masked).",
    ),
    ColumnDoc("_ingested_at", _TIME, "Lineage: when the file or API answer was landed (UTC)."),
)
SCD2_DOCS = (
    ColumnDoc(
        "valid_from",
        _TIME,
        "SCD2 history: when this version was loaded (the delivery's landing time).",
    ),
    ColumnDoc(
        "valid_to",
        _TIME,
        "SCD2 history: when a later delivery replaced or removed it; null if current.",
        True,
    ),
    ColumnDoc(
        "is_current",
        "Boolean",
        "SCD2 history: true for the key's current version (valid_to is null).",
    ),
)


def silver_columns(spec: DatasetSpec) -> list[ColumnDoc]:
    """A silver table's columns, in the table's order."""
    # Several headers may map to one field (a sender renamed one): name them all.
    source_of: dict[str, list[str]] = {}
    for header, field in spec.columns.items():
        source_of.setdefault(field, []).append(header)
    docs = []
    for name, column in contract_columns(spec.contract).items():
        meta = column.metadata or {}
        docs.append(
            ColumnDoc(
                name=name,
                dtype=str(column.dtype),
                description=column.description or "",
                nullable=column.nullable,
                classification=meta.get("classification"),
                concept=meta.get("concept"),
                pseudonymised=bool(meta.get("identifier")),
                source_header=", ".join(source_of.get(name, [name])),
            )
        )
    if spec.format.get("sheets") is not None:
        docs.append(SHEET_DOC)
    docs += LINEAGE_DOCS
    if spec.load_mode == "scd2":
        docs += SCD2_DOCS
    return docs
