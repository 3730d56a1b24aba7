"""Meal delivery (madudbringning) recipients: a local list kept in Excel by care staff."""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa

from schemas import _shared
from schemas.fields import field

DIETS = ["Normal", "Diabetes", "Glutenfri", "Energitæt"]


class MealDeliveryList(pa.DataFrameModel):
    name: str = field(
        "Recipient's full name as typed by staff.", "personal", concept="person", identifier="name"
    )
    cpr: str = field("Recipient's CPR number.", "personal", concept="person", identifier="cpr")
    address_text: str = field(
        "Delivery address as typed by staff (free text).", "personal", concept="address"
    )
    postcode: str = field("Postcode as typed by staff.", "personal", concept="postcode")
    city: str = field("Town as typed by staff.", "personal", nullable=True)
    diet: str = field("Diet (kost).", "sensitive", isin=DIETS)
    start_date: dt.date = field("First delivery date.", "personal")
    note: str = field(
        "Staff remark (bemærkning); may hold anything, so treated as sensitive.",
        "sensitive",
        nullable=True,
    )

    @pa.check("cpr", name="cpr_valid")
    def _cpr_valid(cls, data):
        return _shared.cpr(data)

    @pa.check("postcode", name="postnummer_valid")
    def _postcode(cls, data):
        return _shared.postnummer(data)
