"""Case extract (sagsudtræk) from a fagsystem: one row per case, the shape the bench loads.

Fagsystemer (vendor case systems) export their cases as large semicolon files with Danish
dates and decimal commas; this contract is what such an extract must meet.
"""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl

from schemas import _shared
from schemas.fields import field

CASE_TYPES = [
    "Hjemmehjælp",
    "Boligstøtte",
    "Personlig tillæg",
    "Hjælpemidler",
    "Madservice",
    "Træning",
    "Kontanthjælp",
    "Sygedagpenge",
]
STATUSES = ["Oprettet", "Under behandling", "Bevilget", "Afslag", "Afsluttet"]


class CaseExtract(pa.DataFrameModel):
    case_id: str = field("Case number (sagsnummer).", "internal", concept="case")
    cpr: str = field("CPR number of the citizen.", "personal", concept="person", identifier="cpr")
    case_type: str = field("Kind of case (sagstype).", "sensitive", isin=CASE_TYPES)
    opened: dt.date = field("Date the case was opened.", "internal")
    closed: dt.date = field(
        "Date the case was closed; empty while open.", "internal", nullable=True
    )
    unit: str = field("Administrative unit handling the case (enhed).", "internal")
    caseworker: str = field("Caseworker id (sagsbehandler).", "internal")
    amount: float = field("Amount granted in DKK (beløb).", "sensitive", ge=0)
    status: str = field("Case status.", "internal", isin=STATUSES)
    kommunekode: str = field("Municipality code (kommunekode).", "public", concept="municipality")

    @pa.check("cpr", name="cpr_valid")
    def _cpr_valid(cls, data):
        return _shared.cpr(data)

    @pa.check("kommunekode", name="kommunekode_valid")
    def _kommune_valid(cls, data):
        return _shared.kommunekode(data)

    @pa.dataframe_check(name="closed_not_before_opened")
    def _period(cls, data):
        return data.lazyframe.select(
            pl.col("closed").is_null() | (pl.col("closed") >= pl.col("opened"))
        )
