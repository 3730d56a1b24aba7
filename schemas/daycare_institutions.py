"""Day-care institutions (vuggestuer, børnehaver, integrerede institutioner) as the
municipality publishes them on its open-data portal (CKAN): one row per institution."""

from __future__ import annotations

import pandera.polars as pa

from schemas import _shared
from schemas.cpr_persons import UUID_PATTERN
from schemas.fields import field


class DaycareInstitutions(pa.DataFrameModel):
    institution_id: str = field("The portal's id of the institution (id).", "public")
    name: str = field("Name of the institution (navn).", "public")
    kind: str = field(
        "Vuggestue, Børnehave or Integreret institution (type).",
        "public",
        isin=["Vuggestue", "Børnehave", "Integreret institution"],
    )
    ownership: str = field(
        "Kommunal, Selvejende or Privat (ejerform).",
        "public",
        isin=["Kommunal", "Selvejende", "Privat"],
    )
    places: int = field("Number of places (pladser).", "public", gt=0)
    address: str = field("Address as written (adresse).", "public")
    postcode: str = field("Postcode (postnr).", "public", concept="postcode")
    city: str = field("Post district (postdistrikt).", "public", nullable=True)
    district: str = field("The municipality's district (distrikt).", "public", concept="district")
    address_id: str = field(
        "DAR address id (adresse_id).", "public", concept="address", str_matches=UUID_PATTERN
    )

    @pa.check("postcode", name="postnummer_valid")
    def _postcode(cls, data):
        return _shared.postnummer(data)
