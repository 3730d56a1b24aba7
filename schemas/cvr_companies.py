"""CVR: companies (Det Centrale Virksomhedsregister) located in the municipality."""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa

from schemas import _shared
from schemas.cpr_persons import UUID_PATTERN
from schemas.fields import field


class CvrCompanies(pa.DataFrameModel):
    cvr: str = field("CVR number of the company.", "public", concept="company")
    name: str = field("Registered company name.", "public")
    industry_code: str = field(
        "DB07 industry code (branchekode), 6 digits.",
        "public",
        concept="industry",
        str_matches=r"^\d{6}$",
    )
    industry_text: str = field("DB07 industry text.", "public", nullable=True)
    company_form: str = field(
        "Legal form (virksomhedsform), e.g. ApS, A/S.", "public", nullable=True
    )
    address_id: str = field(
        "DAR address id of the company address.",
        "public",
        concept="address",
        str_matches=UUID_PATTERN,
    )
    start_date: dt.date = field("Start date.", "public")
    end_date: dt.date = field("End date (ophørsdato); empty while active.", "public", nullable=True)

    @pa.check("cvr", name="cvr_valid")
    def _cvr(cls, data):
        return _shared.cvr(data)
