"""CPR: persons registered in the municipality (Det Centrale Personregister extract)."""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa

from schemas import _shared
from schemas.fields import field

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class CprPersons(pa.DataFrameModel):
    cpr: str = field(
        "CPR number (personnummer) of the person.", "personal", concept="person", identifier="cpr"
    )
    first_name: str = field("First name(s).", "personal", concept="person", identifier="name")
    last_name: str = field("Surname.", "personal", concept="person", identifier="name")
    birth_date: dt.date = field(
        "Date of birth.", "personal", concept="person", ge=dt.date(1858, 1, 1)
    )
    sex: str = field(
        "Legal sex: M (male) or K (female, kvinde).", "personal", concept="person", isin=["M", "K"]
    )
    civil_status: str = field(
        "Civil status (civilstand): U unmarried, G married, F divorced, E widowed, "
        "P registered partnership.",
        "personal",
        concept="person",
        isin=["U", "G", "F", "E", "P", "L", "D"],
    )
    address_id: str = field(
        "DAR address id of the residence.", "personal", concept="address", str_matches=UUID_PATTERN
    )
    moved_in: dt.date = field(
        "Date the person moved to this address (tilflytningsdato).", "personal", nullable=True
    )

    @pa.check("cpr", name="cpr_valid")
    def _cpr_valid(cls, data):
        return _shared.cpr(data)
