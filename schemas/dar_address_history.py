"""Address registrations from DAR (Danmarks Adresseregister) via Datafordeler, with history.

Each row is one registration of one address: `virkning_*` says when it was true in the world,
`registrering_*` when the register knew it. A retroactive correction is a new row, so the
table answers "what did we know then" as well as "what is true now". The four time columns
keep the register's own names, which lake/history.py and the serving macros (`as_of`) use.
"""

from __future__ import annotations

from typing import Annotated

import pandera.polars as pa
import polars as pl

from schemas.fields import field

Instant = Annotated[pl.Datetime, "us", "UTC"]


class DarAddressHistory(pa.DataFrameModel):
    address_id: str = field("DAR address id (id_lokalId).", "public", concept="address")
    status: str = field("DAR status code (2 provisional, 3 current, 4-5 retired).", "public")
    label: str = field("Full address text (adressebetegnelse).", "public")
    door: str = field("Door (dørbetegnelse); empty for a whole house.", "public", nullable=True)
    floor: str = field("Floor (etagebetegnelse).", "public", nullable=True)
    house_number_id: str = field("DAR house number id (husnummer).", "public", nullable=True)
    virkningFra: Instant = field("Valid in the world from (virkningFra), UTC.", "public")
    virkningTil: Instant = field(
        "Valid in the world until (virkningTil); empty while valid.", "public", nullable=True
    )
    registreringFra: Instant = field("Registered from (registreringFra), UTC.", "public")
    registreringTil: Instant = field(
        "Registration superseded at (registreringTil); empty while current.",
        "public",
        nullable=True,
    )
    business_event: str = field(
        "Why the registration was made (forretningshaendelse).", "public", nullable=True
    )

    @pa.dataframe_check(name="periods_in_order")
    def _periods(cls, data):
        return data.lazyframe.select(
            (pl.col("virkningTil").is_null() | (pl.col("virkningTil") > pl.col("virkningFra")))
            & (
                pl.col("registreringTil").is_null()
                | (pl.col("registreringTil") > pl.col("registreringFra"))
            )
        )
