"""DAR: official addresses (Danmarks Adresseregister) in the municipality."""

from __future__ import annotations

import pandera.polars as pa

from schemas import _shared
from schemas.cpr_persons import UUID_PATTERN
from schemas.fields import field


class DarAddresses(pa.DataFrameModel):
    address_id: str = field(
        "DAR address id (UUID).", "public", concept="address", str_matches=UUID_PATTERN
    )
    street: str = field("Street name (vejnavn).", "public", concept="address")
    house_number: str = field(
        "House number with letter (husnr), e.g. 12B.",
        "public",
        concept="address",
        str_matches=r"^\d{1,3}[A-Z]?$",
    )
    floor: str = field(
        "Floor (etage): st, 1, 2, ... or kl; empty for houses.", "public", nullable=True
    )
    door: str = field(
        "Door (dør): th, tv, mf or a number; empty for houses.", "public", nullable=True
    )
    postcode: str = field("Postcode (postnummer).", "public", concept="postcode")
    postcode_name: str = field("Postal district name (postnummernavn).", "public")
    municipality_code: str = field(
        "Municipality code (kommunekode), 4 digits 0-padded.", "public", concept="municipality"
    )
    district: str = field("Local district the municipality plans by.", "public", concept="district")

    @pa.check("postcode", name="postnummer_valid")
    def _postcode(cls, data):
        return _shared.postnummer(data)

    @pa.check("municipality_code", name="kommunekode_valid")
    def _kommunekode(cls, data):
        return _shared.kommunekode(data)
