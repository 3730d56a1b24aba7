"""Sick leave (sygefravær) from the HR/payroll system export."""

from __future__ import annotations

import datetime as dt

import pandera.polars as pa
import polars as pl

from schemas import _shared
from schemas.fields import field

ABSENCE_TYPES = ["Egen sygdom", "Barns 1. sygedag", "Arbejdsskade", "Langtidssygdom"]


class SickLeave(pa.DataFrameModel):
    absence_id: str = field("Absence record id (fravær-id).", "internal", concept="absence")
    employee_no: str = field("Employee number (medarbejdernummer).", "internal", concept="employee")
    cpr: str = field("CPR number of the employee.", "personal", concept="person", identifier="cpr")
    department: str = field("Department (afdeling).", "internal", concept="department")
    absence_type: str = field(
        "Type of absence (fraværstype).", "sensitive", concept="sick_leave", isin=ABSENCE_TYPES
    )
    start_date: dt.date = field("First day of absence.", "sensitive")
    end_date: dt.date = field(
        "Last day of absence; empty while ongoing.", "sensitive", nullable=True
    )
    days: float = field(
        "Absence in working days (fraværsdage).",
        "sensitive",
        concept="sick_leave_days",
        ge=0,
        le=366,
    )
    hours: float = field("Absence in hours.", "sensitive", ge=0, le=366 * 24)

    @pa.check("cpr", name="cpr_valid")
    def _cpr_valid(cls, data):
        return _shared.cpr(data)

    @pa.dataframe_check(name="end_not_before_start")
    def _period(cls, data):
        return data.lazyframe.select(
            pl.col("end_date").is_null() | (pl.col("end_date") >= pl.col("start_date"))
        )
