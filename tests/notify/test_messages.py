"""Messages in Danish and Norwegian: what broke, counts, since when, what to do, a link;
and never a clear identifier, even when one is fed in through check metadata."""

from __future__ import annotations

import datetime as dt
import json
import re

import dagster as dg
import pytest

from pipelines.notify.evidence import counts_from_metadata, files_from_metadata
from pipelines.notify.incidents import CHECK_FAILED, RUN_FAILED, STALE, Incident
from pipelines.notify.messages import OPENED, RESOLVED, render
from pipelines.notify.settings import NotifySettings

UI = "http://dagster.test:3000"
NOW = dt.datetime(2026, 1, 5, 8, 30, tzinfo=dt.UTC)
CPR_SHAPED = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")
PAYLOAD_KEYS = {
    "kind", "dataset", "asset", "check", "severity", "title", "text", "link", "counts",
    "opened_at", "language",
}  # fmt: skip

# What a careless check could put in its metadata: a CPR number as a count, and a rejected
# file whose "header" was really a data row.
LEAKY_METADATA = {
    "rows_quarantined": dg.MetadataValue.int(12),
    "duplicate_rows": 3,
    "person": dg.MetadataValue.int(1012901234),
    "share": dg.MetadataValue.float(0.0193),
    "columns_match": dg.MetadataValue.bool(False),
    "rejected_files": dg.MetadataValue.md(
        "- 010190-1234_udtræk.csv: the file has the headers 0101901234;Jens;Hansen\n"
        "- cpr_personer.csv: missing required column(s) cpr"
    ),
    "example": dg.MetadataValue.text("first failing value: 311299-4321"),
}


def _schema_incident() -> Incident:
    return Incident(
        kind=CHECK_FAILED,
        asset="silver/cpr_persons",
        check="schema",
        dataset="cpr_persons",
        counts=counts_from_metadata(LEAKY_METADATA),
        failing_checks=("schema (ERROR)", "contract (WARN)", "volume (WARN)", "x (WARN)"),
        files=files_from_metadata(LEAKY_METADATA),
        since="2026-01-05T06:00:00+00:00",
        recipients=("borgerservice@demo-kommune.example",),
    )


def test_evidence_keeps_counts_and_file_names_only() -> None:
    counts = counts_from_metadata(LEAKY_METADATA)
    assert counts == {
        "rows_quarantined": 12,
        "duplicate_rows": 3,
        "share": 0.0193,
        "rejected_files": 2,
    }
    assert files_from_metadata(LEAKY_METADATA) == ("NNNNNN-NNNN_udtræk.csv", "cpr_personer.csv")


def test_danish_check_failure() -> None:
    message = render(_schema_incident(), OPENED, "da", UI, NOW)
    assert message.title == "Datakvalitet: blokerende tjek fejlede for silver/cpr_persons"
    assert message.link == f"{UI}/assets/silver/cpr_persons?view=checks"
    text = message.text
    for expected in (
        "Datasæt: cpr_persons (silver/cpr_persons)",
        "Tjek: schema (ERROR)",
        "Fejlende tjek: schema (ERROR), contract (WARN), volume (WARN) (+1)",
        "rows_quarantined = 12",
        "rejected_files = 2",
        "Filer: NNNNNN-NNNN_udtræk.csv, cpr_personer.csv",
        "Siden: 2026-01-05 06:00 UTC",
        "quality.quarantine where dataset = 'cpr_persons'",
        "kør silver/cpr_persons igen",
        f"Link: {UI}/assets/silver/cpr_persons?view=checks",
    ):
        assert expected in text, expected
    assert set("æøå") & set(text.lower())
    assert message.to == ("borgerservice@demo-kommune.example",)


def test_norwegian_check_failure_and_resolution() -> None:
    opened = render(_schema_incident(), OPENED, "no", UI, NOW)
    assert opened.title == "Datakvalitet: blokkerende kontroll feilet for silver/cpr_persons"
    assert "Datasett: cpr_persons" in opened.text and "Filer: " in opened.text
    assert "kjør silver/cpr_persons på nytt" in opened.text
    assert opened.payload["language"] == "no"

    resolved = render(_schema_incident(), RESOLVED, "no", UI, NOW)
    assert resolved.title == "Løst: blokkerende kontroll er i orden igjen for silver/cpr_persons"
    assert "Åpnet 2026-01-05 06:00 UTC, løst 2026-01-05 08:30 UTC" in resolved.text
    assert resolved.payload["status"] == "resolved" and resolved.link == opened.link
    assert len(resolved.text) < len(opened.text)


@pytest.mark.parametrize("language", ["da", "no"])
def test_no_clear_identifier_anywhere(language: str) -> None:
    for status in (OPENED, RESOLVED):
        message = render(_schema_incident(), status, language, UI, NOW)
        everything = json.dumps(message.to_json(), ensure_ascii=False)
        assert not CPR_SHAPED.search(everything), everything
        assert "Jens" not in everything and "Hansen" not in everything


def test_payload_fields() -> None:
    message = render(_schema_incident(), OPENED, "da", UI, NOW)
    payload = message.payload
    assert set(payload) >= PAYLOAD_KEYS
    assert payload["kind"] == "check_failed" and payload["status"] == "open"
    assert (payload["dataset"], payload["asset"], payload["check"]) == (
        "cpr_persons",
        "silver/cpr_persons",
        "schema",
    )
    assert payload["severity"] == "ERROR" and payload["opened_at"] == "2026-01-05T06:00:00+00:00"
    assert payload["counts"]["rejected_files"] == 2 and "person" not in payload["counts"]
    assert payload["title"] == message.title and payload["text"] == message.text
    json.dumps(payload)  # plain JSON


def test_run_failure_and_stale_messages() -> None:
    run = Incident(
        kind=RUN_FAILED,
        asset="silver/sick_leave",
        check="abc-123",
        dataset="sick_leave",
        counts={"failed_steps": 1},
        steps=("silver__sick_leave",),
        assets=("silver/sick_leave",),
        errors=("Failure",),
        since="2026-01-05T07:00:00+00:00",
        run_id="abc-123",
    )
    da = render(run, OPENED, "da", UI, NOW)
    assert da.title == "Kørsel fejlede for silver/sick_leave"
    assert da.link == f"{UI}/runs/abc-123"
    assert "Fejlede trin: silver__sick_leave" in da.text and "Fejltype: Failure" in da.text
    assert render(run, OPENED, "no", UI, NOW).title == "Kjøring feilet for silver/sick_leave"

    stale = Incident(
        kind=STALE,
        asset="silver/dar_addresses",
        dataset="dar_addresses",
        severity="WARN",
        counts={"age_hours": 200.5, "freshness_hours": 192.0},
        since="2026-01-04T00:00:00+00:00",
    )
    da = render(stale, OPENED, "da", UI, NOW)
    assert da.title == "Forældede data: silver/dar_addresses er ikke opdateret til tiden"
    assert "Senest indlæst for 200.5 timer siden; forventet mindst hver 192. time." in da.text
    assert "drop/dar_addresses/" in da.text
    assert da.link == f"{UI}/assets/silver/dar_addresses"
    no = render(stale, RESOLVED, "no", UI, NOW)
    assert no.title == "Løst: silver/dar_addresses er oppdatert igjen"


def test_settings_from_environment() -> None:
    empty = NotifySettings.from_env({})
    assert not empty.configured and empty.language == "da"
    assert empty.ui_url == "http://127.0.0.1:3000" and empty.smtp_port == 25

    settings = NotifySettings.from_env(
        {
            "KOMMUNELAKE_SMTP_HOST": "smtp.example",
            "KOMMUNELAKE_SMTP_PORT": "twenty-five",
            "KOMMUNELAKE_SMTP_USER": "robot",
            "KOMMUNELAKE_SMTP_PASSWORD": "hunter2",
            "KOMMUNELAKE_NOTIFY_LANGUAGE": "nb",
            "KOMMUNELAKE_NOTIFY_WEBHOOK_URL": "https://hooks.example/T0K3N",
            "KOMMUNELAKE_UI_URL": "https://dagster.kommune.example/",
        }
    )
    assert settings.email and settings.webhook and settings.language == "no"
    assert settings.smtp_port == 25 and any("PORT" in p for p in settings.problems)
    assert any("STARTTLS" in p for p in settings.problems)
    assert settings.ui_url == "https://dagster.kommune.example"
    assert "hunter2" not in repr(settings) and "T0K3N" not in repr(settings)
    assert NotifySettings.from_env({"KOMMUNELAKE_NOTIFY_LANGUAGE": "sv"}).language == "da"
