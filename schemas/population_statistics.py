"""Population by district, sex and quarter from a StatBank table (Statistics Denmark's API
format), as the municipality's own statistics table is published."""

from __future__ import annotations

import pandera.polars as pa

from schemas.fields import field


class PopulationStatistics(pa.DataFrameModel):
    area: str = field("Area label (OMRÅDE), e.g. a district or 'Hele kommunen'.", "public")
    sex: str = field("Sex label (KØN): 'I alt', 'Mænd' or 'Kvinder'.", "public")
    quarter: str = field(
        "Quarter as StatBank writes it (TID), e.g. 2024K1.", "public", str_matches=r"^\d{4}K[1-4]$"
    )
    persons: int = field("Persons on the first day of the quarter (INDHOLD).", "public", ge=0)
