"""DuckDB macros for querying history tables (lake/history.py) in the serving layer.

Intervals are half-open, [fra, til): a row is true at ts when fra <= ts < til, and a null til
means still open. So a correction registered at 12:00 is known from 12:00 on, and the row it
supersedes (registreringTil = 12:00) is not.

    as_of('silver.dar_addresses', '2021-06-01 00:00:00+00', '2022-01-01 00:00:00+00')
        rows true on 2021-06-01 as the register knew them on 2022-01-01
    current_of('silver.dar_addresses')        rows true now, as known now
    as_of_scd2('silver.cvr_companies', ts)    SCD2 versions valid at ts
    in_period(fra, til, ts)                   the interval test itself, for joins

Table macros take the table or view name as a string (they read it with `query_table`).
Timestamps without a time zone are read in the session's TimeZone; pass TIMESTAMPTZ values
(or strings with an offset) to be exact.
"""

from __future__ import annotations

MACROS: dict[str, str] = {
    "in_period": """
        CREATE OR REPLACE MACRO in_period(fra, til, ts) AS
            fra <= ts AND (til IS NULL OR ts < til)
    """,
    "as_of": """
        CREATE OR REPLACE MACRO as_of(tbl, virkning_ts, registrering_ts) AS TABLE
            SELECT * FROM query_table(tbl)
            WHERE in_period("virkningFra", "virkningTil", CAST(virkning_ts AS TIMESTAMPTZ))
              AND in_period("registreringFra", "registreringTil",
                            CAST(registrering_ts AS TIMESTAMPTZ))
    """,
    "current_of": """
        CREATE OR REPLACE MACRO current_of(tbl) AS TABLE
            SELECT * FROM as_of(tbl, now(), now())
    """,
    "as_of_scd2": """
        CREATE OR REPLACE MACRO as_of_scd2(tbl, ts) AS TABLE
            SELECT * FROM query_table(tbl)
            WHERE in_period(valid_from, valid_to, CAST(ts AS TIMESTAMPTZ))
    """,
}


def install_history_macros(con) -> tuple[str, ...]:
    """Create (or replace) the macros on a DuckDB connection; returns their names.

    On a database file they persist, so build them into the serving file once and read-only
    notebook connections can use them."""
    for sql in MACROS.values():  # in order: in_period first, as_of before current_of
        con.execute(sql)
    return tuple(MACROS)
