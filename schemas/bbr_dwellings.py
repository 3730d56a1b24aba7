"""BBR: dwelling units (Bygnings- og Boligregistret, building and housing register)."""

from __future__ import annotations

import pandera.polars as pa

from schemas.cpr_persons import UUID_PATTERN
from schemas.fields import field

USE_CODES = ["110", "120", "130", "140", "150", "190"]


class BbrDwellings(pa.DataFrameModel):
    unit_id: str = field(
        "BBR unit id (enhed lokalId).", "public", concept="dwelling", str_matches=UUID_PATTERN
    )
    address_id: str = field(
        "DAR address id of the unit.", "public", concept="address", str_matches=UUID_PATTERN
    )
    use_code: str = field(
        "Unit use code (enh020): 110 farmhouse, 120 detached house, 130 terraced house, "
        "140 apartment, 150 dormitory, 190 other.",
        "public",
        concept="dwelling",
        isin=USE_CODES,
    )
    area_m2: int = field("Total unit area in m² (enh026).", "public", ge=1, le=5000)
    rooms: int = field("Number of rooms (enh031).", "public", ge=0, le=100)
    year_built: int = field("Year of construction (byg026).", "public", ge=1200, le=2100)
