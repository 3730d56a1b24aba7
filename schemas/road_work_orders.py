"""Work orders of the road department (potholes, street lights, signs, drains), read from
the vendor's work-order system through its REST API. Orders record the fault and where it
is, never who reported it."""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

from schemas import _shared
from schemas.cpr_persons import UUID_PATTERN
from schemas.fields import field

Instant = Annotated[pl.Datetime, "us", "UTC"]


class RoadWorkOrders(pa.DataFrameModel):
    order_id: str = field("The system's order number (order_id).", "public")
    category: str = field("What is wrong, e.g. Hul i vejen, Gadelys ude.", "public")
    status: str = field(
        "modtaget, planlagt, igangsat or afsluttet.",
        "public",
        isin=["modtaget", "planlagt", "igangsat", "afsluttet"],
    )
    priority: str = field("lav, normal or høj.", "public", isin=["lav", "normal", "høj"])
    street: str = field("Street name.", "public")
    house_number: str = field("House number nearest the fault.", "public", nullable=True)
    postcode: str = field("Postcode.", "public", concept="postcode")
    district: str = field("The municipality's district.", "public", concept="district")
    address_id: str = field(
        "DAR address id nearest the fault.",
        "public",
        concept="address",
        nullable=True,
        str_matches=UUID_PATTERN,
    )
    reported_at: Instant = field("When the fault was reported, UTC.", "public")
    updated_at: Instant = field("When the order last changed, UTC.", "public")
    closed_at: Instant = field(
        "When the order was closed; empty while open.", "public", nullable=True
    )

    @pa.check("postcode", name="postnummer_valid")
    def _postcode(cls, data):
        return _shared.postnummer(data)

    @pa.dataframe_check(name="closed_after_reported")
    def _closed(cls, data):
        return data.lazyframe.select(
            pl.col("closed_at").is_null() | (pl.col("closed_at") >= pl.col("reported_at"))
        )
