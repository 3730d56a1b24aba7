"""The sensor end to end: a Demo Kommune home materialized on an ephemeral Dagster instance,
the sensor evaluated tick by tick against a real webhook receiver and SMTP server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence

import dagster as dg
import pytest

from connectors.demo import generate
from lake.home import Home
from lake.quality import RunRecord, record_run
from pipelines.definitions import build_assets
from pipelines.notify.cursor import Cursor, load_cursor
from pipelines.notify.incidents import CHECK_FAILED, STALE, Incident
from pipelines.notify.sensor import notification_sensor, quality_notifications
from pipelines.resources import lake_resource
from pipelines.specs import DatasetSpec, QualitySpec, load_specs, spec_by_name
from tests.conftest import TEST_KEY
from tests.helpers import redeliver_cpr

pytestmark = pytest.mark.integration

UI = "http://dagster.test:3000"
CPR_SHAPED = re.compile(r"(?<!\d)\d{6}-?\d{4}(?!\d)")
SCHEMA_FAILED = Incident(kind=CHECK_FAILED, asset="silver/cpr_persons", check="schema")


@pytest.fixture
def lake_env(home: Home, monkeypatch) -> Home:
    monkeypatch.setenv("KOMMUNELAKE_HOME", str(home.root))
    monkeypatch.setenv("KOMMUNELAKE_PSEUDONYM_KEY", TEST_KEY.decode())
    return home


@pytest.fixture
def demo_home(lake_env: Home, demo_apis) -> Home:
    generate(lake_env.root, persons=400)
    return lake_env


def _materialize(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        build_assets(), resources={"lake": lake_resource()}, instance=instance, raise_on_error=False
    )


def _tick(
    instance: dg.DagsterInstance,
    cursor: str | None,
    sensor: dg.SensorDefinition = quality_notifications,
    assets: Sequence[dg.AssetsDefinition] | None = None,
) -> dg.SensorResult:
    definitions = dg.Definitions(
        assets=build_assets() if assets is None else assets,
        sensors=[sensor],
        resources={"lake": lake_resource()},
    )
    # build_sensor_context takes the code location (for the asset graph) but does not hand
    # its resources to the sensor: they are passed explicitly.
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        definitions=definitions,
        resources={"lake": lake_resource()},
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult) and result.cursor
    return result


def _only_freshness(name: str, hours: float) -> Callable[[], list[DatasetSpec]]:
    """Specs where one dataset expects a load every `hours` and no other is ever stale."""

    def specs() -> list[DatasetSpec]:
        return [
            dataclasses.replace(
                spec,
                quality=dataclasses.replace(
                    spec.quality, freshness_hours=hours if spec.name == name else None
                ),
            )
            for spec in load_specs()
        ]

    return specs


def _assert_no_identifiers(*texts: str) -> None:
    for text in texts:
        assert not CPR_SHAPED.search(text), text


def test_a_broken_file_is_told_once_and_its_fix_once(demo_home, configured, webhook, smtp):
    contact = spec_by_name("cpr_persons").contact
    first_cpr = (demo_home.drop / "cpr_persons" / "cpr_personer.csv").read_text().splitlines()[1]
    first_cpr = first_cpr.split(";")[0]
    redeliver_cpr(demo_home, "PNR;", "PERSONNR;")
    with dg.DagsterInstance.ephemeral() as instance:
        assert not _materialize(instance).success  # the blocking schema check failed

        result = _tick(instance, None)
        assert len(webhook.received) == 1, [r["json"]["title"] for r in webhook.received]
        request = webhook.received[0]
        assert request["content_type"].startswith("application/json")
        payload = request["json"]
        assert payload["kind"] == "check_failed" and payload["status"] == "open"
        assert (payload["dataset"], payload["asset"], payload["check"]) == (
            "cpr_persons",
            "silver/cpr_persons",
            "schema",
        )
        assert payload["severity"] == "ERROR" and payload["language"] == "da"
        assert payload["title"] == "Datakvalitet: blokerende tjek fejlede for silver/cpr_persons"
        assert payload["link"] == f"{UI}/assets/silver/cpr_persons?view=checks"
        assert payload["counts"]["rejected_files"] == 1
        assert "Filer: cpr_personer.csv" in payload["text"]
        assert "quality.quarantine" in payload["text"] and "Datasæt" in payload["text"]
        assert payload["opened_at"]

        assert len(smtp.mails) == 1
        sender, recipients, mail = smtp.mails[0]
        assert sender == "kommunelake@demo-kommune.example" and recipients == [contact]
        assert mail["Subject"] == payload["title"]
        body = mail.get_content().replace("\r\n", "\n")  # SMTP line endings
        assert body.strip() == payload["text"].strip()
        assert payload["link"] in body and "rejected_files = 1" in body
        everything = json.dumps(payload, ensure_ascii=False) + body
        _assert_no_identifiers(everything)
        assert first_cpr not in everything and "PERSONNR" not in everything

        # Still broken: the next ticks say nothing.
        result = _tick(instance, result.cursor)
        result = _tick(instance, result.cursor)
        assert len(webhook.received) == 1 and len(smtp.mails) == 1
        assert result.skip_reason and "nothing sent" in result.skip_reason.skip_message
        assert "0 opened" in result.skip_reason.skip_message

        # Still broken after another failed run: still nothing new.
        _materialize(instance)
        result = _tick(instance, result.cursor)
        assert len(webhook.received) == 1 and len(smtp.mails) == 1

        # The sender delivers a corrected file: one short "resolved" message.
        redeliver_cpr(demo_home, "PERSONNR;", "PNR;", name="cpr_personer_v2.csv")
        assert _materialize(instance).success
        result = _tick(instance, result.cursor)
        assert len(webhook.received) == 2 and len(smtp.mails) == 2
        resolved = webhook.received[1]["json"]
        assert resolved["status"] == "resolved" and resolved["kind"] == "check_failed"
        assert resolved["title"] == "Løst: blokerende tjek er i orden igen for silver/cpr_persons"
        assert smtp.mails[1][1] == [contact]
        assert load_cursor(result.cursor)[0].open == {}

        _tick(instance, result.cursor)
        assert len(webhook.received) == 2 and len(smtp.mails) == 2


def test_failed_run_once_then_stale_in_norwegian(demo_home, configured, webhook, smtp, monkeypatch):
    shutil.rmtree(demo_home.drop / "sick_leave")  # nothing to load: the asset raises Failure
    with dg.DagsterInstance.ephemeral() as instance:
        run = _materialize(instance)
        assert not run.success

        result = _tick(instance, None)
        assert [r["json"]["kind"] for r in webhook.received] == ["run_failed"]
        payload = webhook.received[0]["json"]
        assert payload["title"] == "Kørsel fejlede for silver/sick_leave"
        assert payload["run_id"] == run.run_id and payload["link"] == f"{UI}/runs/{run.run_id}"
        assert "silver__sick_leave" in payload["text"] and "Failure" in payload["text"]
        assert payload["counts"] == {"failed_steps": 1}
        assert [m[1] for m in smtp.mails] == [[spec_by_name("sick_leave").contact]]

        result = _tick(instance, result.cursor)
        assert len(webhook.received) == 1 and len(smtp.mails) == 1  # once per run

        # Two days on, dar_addresses (expected daily here) is stale: told in Norwegian.
        monkeypatch.setenv("KOMMUNELAKE_NOTIFY_LANGUAGE", "no")
        later = notification_sensor(
            specs=_only_freshness("dar_addresses", 24), clock=lambda: time.time() + 48 * 3600
        )
        result = _tick(instance, result.cursor, sensor=later)
        assert len(webhook.received) == 2 and len(smtp.mails) == 2
        stale = webhook.received[1]["json"]
        assert stale["kind"] == "stale" and stale["language"] == "no"
        assert stale["title"] == "Utdaterte data: silver/dar_addresses er ikke oppdatert i tide"
        assert (
            "Sist lastet inn for 48" in stale["text"]
            and "forventet minst hver 24." in stale["text"]
        )
        assert stale["link"] == f"{UI}/assets/silver/dar_addresses"
        assert smtp.mails[1][1] == [spec_by_name("dar_addresses").contact]
        assert "på nytt" in smtp.mails[1][2].get_content()

        result = _tick(instance, result.cursor, sensor=later)
        assert len(webhook.received) == 2  # still stale: nothing new

        # Back to today's clock and the YAML's cadence: it is fresh, so it is resolved.
        result = _tick(instance, result.cursor)
        assert len(webhook.received) == 3
        assert (
            webhook.received[2]["json"]["title"] == "Løst: silver/dar_addresses er oppdatert igjen"
        )


def _stale_dar_home(home: Home) -> Callable[[], list[DatasetSpec]]:
    """A home whose dar_addresses last loaded three hours ago, expected hourly: stale,
    without running anything."""
    loaded = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    record_run(
        home,
        RunRecord(
            dataset="dar_addresses",
            batch_id="b1",
            source_file="adresser.csv",
            status="loaded",
            rows_in=1,
            rows_valid=1,
            rows_quarantined=0,
            failed_checks="[]",
            extra_columns="[]",
            silver_version=0,
            started_at=loaded,
            finished_at=loaded,
            message="",
        ),
    )
    dar = spec_by_name("dar_addresses")
    return lambda: [dataclasses.replace(dar, quality=QualitySpec(freshness_hours=1))]


def test_a_webhook_error_is_retried_next_tick_and_delivered_once(
    lake_env, configured, webhook, smtp
):
    sensor = notification_sensor(specs=_stale_dar_home(lake_env))
    webhook.statuses = [500]
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(instance, None, sensor=sensor, assets=[])
        assert [r["status"] for r in webhook.received] == [500]
        assert len(smtp.mails) == 1  # the e-mail went; only the webhook waits
        [waiting] = load_cursor(result.cursor)[0].outbox
        assert waiting.channels == ("webhook",)

        result = _tick(instance, result.cursor, sensor=sensor, assets=[])
        assert [r["status"] for r in webhook.received] == [500, 200]
        assert webhook.received[0]["json"] == webhook.received[1]["json"]
        assert len(smtp.mails) == 1
        assert load_cursor(result.cursor)[0].outbox == ()

        _tick(instance, result.cursor, sensor=sensor, assets=[])
        assert len(webhook.received) == 2 and len(smtp.mails) == 1


def test_an_unreachable_receiver_does_not_crash_or_lose_the_message(
    lake_env, webhook, monkeypatch, capfd
):
    sensor = notification_sensor(specs=_stale_dar_home(lake_env))
    url = webhook.url
    webhook.shutdown()
    webhook.server_close()  # nothing listens there any more
    monkeypatch.setenv("KOMMUNELAKE_NOTIFY_WEBHOOK_URL", url)
    monkeypatch.setenv("KOMMUNELAKE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("KOMMUNELAKE_SMTP_PORT", str(webhook.server_address[1]))
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(instance, None, sensor=sensor, assets=[])
        [waiting] = load_cursor(result.cursor)[0].outbox
        assert set(waiting.channels) == {"webhook", "email"} and waiting.attempts == 1
        assert "1 waiting for retry" in result.skip_reason.skip_message
    logged = capfd.readouterr().err  # the sensor's log (Dagster writes it to stderr)
    assert "webhook failed (ConnectError)" in logged and "e-mail failed" in logged
    assert "token=secret" not in logged  # webhook URLs carry tokens: never logged


def test_with_nothing_configured_incidents_are_recorded_not_sent(lake_env, webhook):
    sensor = notification_sensor(specs=_stale_dar_home(lake_env))
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(instance, None, sensor=sensor, assets=[])
        assert "no webhook or SMTP configured" in result.skip_reason.skip_message
        cursor = load_cursor(result.cursor)[0]
        assert list(cursor.open) == ["stale|silver/dar_addresses|"] and cursor.outbox == ()
    assert webhook.received == []


def test_a_webhook_url_httpx_cannot_parse_is_reported_and_the_email_still_goes(
    lake_env, smtp, monkeypatch, capfd
):
    # Passes the http(s):// test, yet httpx refuses it before sending (InvalidURL is not an
    # httpx.HTTPError): a placeholder port left in the URL must not fail every tick.
    monkeypatch.setenv("KOMMUNELAKE_NOTIFY_WEBHOOK_URL", "https://hooks.example:PORT/T0K3N")
    monkeypatch.setenv("KOMMUNELAKE_SMTP_HOST", smtp.host)
    monkeypatch.setenv("KOMMUNELAKE_SMTP_PORT", str(smtp.port))
    sensor = notification_sensor(specs=_stale_dar_home(lake_env))
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(instance, None, sensor=sensor, assets=[])
        cursor = load_cursor(result.cursor)[0]
        assert list(cursor.open) == ["stale|silver/dar_addresses|"] and cursor.outbox == ()
    assert len(smtp.mails) == 1
    logged = capfd.readouterr().err
    assert "KOMMUNELAKE_NOTIFY_WEBHOOK_URL is not a valid URL" in logged
    assert "T0K3N" not in logged


def test_incidents_of_a_dataset_whose_yaml_was_removed_do_not_stay_open(
    lake_env, configured, webhook
):
    """school_absence failed its schema check and went stale, then its YAML was removed:
    nothing evaluates it again, so its incidents close, and no "works again" is sent."""
    removed = [
        dataclasses.replace(SCHEMA_FAILED, asset="silver/school_absence", dataset="school_absence"),
        Incident(kind=STALE, asset="silver/school_absence", dataset="school_absence"),
    ]
    kept = dataclasses.replace(SCHEMA_FAILED, dataset="cpr_persons")  # still defined, unknown
    cursor = Cursor(open={i.key: i for i in [*removed, kept]}).dumps()
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(instance, cursor)
    assert list(load_cursor(result.cursor)[0].open) == [kept.key]
    assert webhook.received == []
