"""Home-care visits (hjemmepleje) from the care fagsystem (vendor case system) export."""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa

from schemas import _shared
from schemas.fields import field

SERVICES = ["Personlig pleje", "Praktisk hjælp", "Medicingivning", "Rehabilitering", "Tilsyn"]


class HomeCareVisits(pa.DataFrameModel):
    visit_id: str = field("Visit id in the fagsystem.", "internal", concept="home_care_visit")
    cpr: str = field(
        "CPR number of the citizen visited.", "sensitive", concept="person", identifier="cpr"
    )
    visit_date: dt.date = field(
        "Date of the visit.", "sensitive", ge=dt.date(2000, 1, 1), le=dt.date(2100, 1, 1)
    )
    start_time: str = field(
        "Planned start time, HH:MM.", "internal", str_matches=r"^([01]\d|2[0-3]):[0-5]\d$"
    )
    duration_min: int = field(
        "Delivered time in minutes.", "sensitive", concept="home_care_time", ge=1, le=24 * 60
    )
    service: str = field("Service delivered (ydelse).", "sensitive", isin=SERVICES)
    employee_id: str = field("Care worker id.", "internal")
    district: str = field("Care district the visit was planned in.", "internal", concept="district")

    @pa.check("cpr", name="cpr_valid")
    def _cpr_valid(cls, data):
        return _shared.cpr(data)
