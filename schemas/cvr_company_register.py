"""CVR: the municipality's companies as the register holds them now, read from CVR's
Elasticsearch (system-to-system access) page by page.

One row per company with its current values (`virksomhedMetadata.nyeste*` in CVR). The rows
come from `connectors.cvr.company_lines`, which never reads participants (owners, board
members): no person's name or unit number is in them. A sole proprietorship's
(*enkeltmandsvirksomhed*) name and address usually are its owner's, which CVR publishes.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import pandera.polars as pa
import polars as pl

from schemas import _shared
from schemas.cpr_persons import UUID_PATTERN
from schemas.fields import field

Instant = Annotated[pl.Datetime, "us", "UTC"]


class CvrCompanyRegister(pa.DataFrameModel):
    cvr: str = field("CVR number of the company (cvrNummer).", "public", concept="company")
    unit_number: int = field("CVR's unit number of the company itself (enhedsNummer).", "public")
    name: str = field("Current registered name (nyesteNavn).", "public")
    status: str = field(
        "Current status (sammensatStatus), e.g. NORMAL, OPHØRT.", "public", nullable=True
    )
    company_form_code: str = field(
        "Legal form code (virksomhedsformkode), e.g. 80 for ApS.", "public", nullable=True
    )
    company_form: str = field("Legal form, short (kortBeskrivelse), e.g. APS.", "public")
    company_form_text: str = field(
        "Legal form, long (langBeskrivelse), e.g. Anpartsselskab.", "public", nullable=True
    )
    industry_code: str = field(
        "Main DB07 industry code (hovedbranche), 6 digits.",
        "public",
        concept="industry",
        str_matches=r"^\d{6}$",
    )
    industry_text: str = field("Main DB07 industry text.", "public", nullable=True)
    kommune_code: str = field(
        "Kommunekode of the company address, 4 digits.",
        "public",
        concept="municipality",
        nullable=True,
    )
    kommune_name: str = field(
        "Municipality name as CVR writes it.", "public", concept="municipality", nullable=True
    )
    street: str = field("Street name (vejnavn).", "public", concept="address", nullable=True)
    house_number: str = field(
        "House number, with letter or range.", "public", concept="address", nullable=True
    )
    floor: str = field("Floor (etage).", "public", concept="address", nullable=True)
    door: str = field("Door (sidedør).", "public", concept="address", nullable=True)
    postcode: str = field("Postcode (postnummer).", "public", concept="postcode", nullable=True)
    city: str = field("Post district (postdistrikt).", "public", nullable=True)
    address_id: str = field(
        "DAR address id of the company address (adresseId).",
        "public",
        concept="address",
        nullable=True,
        str_matches=UUID_PATTERN,
    )
    address_text: str = field("The address as one line.", "public", nullable=True)
    start_date: dt.date = field("Founded (stiftelsesDato).", "public")
    end_date: dt.date = field("Closed; empty while active.", "public", nullable=True)
    production_units: int = field("Number of production units (P-units).", "public", ge=0)
    advertising_protected: bool = field(
        "Reklamebeskyttet: the company must not be contacted for marketing.", "public"
    )
    last_updated: Instant = field("When CVR last changed the company, UTC.", "public")

    @pa.check("cvr", name="cvr_valid")
    def _cvr(cls, data):
        return _shared.cvr(data)

    @pa.check("kommune_code", name="kommunekode_valid")
    def _kommune(cls, data):
        return _shared.kommunekode(data)

    @pa.check("postcode", name="postnummer_valid")
    def _postcode(cls, data):
        return _shared.postnummer(data)
