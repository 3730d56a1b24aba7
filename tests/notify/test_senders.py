"""Delivery against the real receivers: what failed stays queued for its channel only, and a
channel that failed is not hammered again within the same tick."""

from __future__ import annotations

import datetime as dt
import logging

from pipelines.notify.incidents import STALE, Incident
from pipelines.notify.messages import OPENED, render
from pipelines.notify.senders import EMAIL, WEBHOOK, Pending, deliver
from pipelines.notify.settings import NotifySettings

LOG = logging.getLogger("tests.notify")
NOW = dt.datetime(2026, 1, 5, 8, 30, tzinfo=dt.UTC)


def _message(dataset: str) -> Pending:
    incident = Incident(
        kind=STALE,
        asset=f"silver/{dataset}",
        dataset=dataset,
        severity="WARN",
        counts={"age_hours": 50.0, "freshness_hours": 36.0},
        since="2026-01-03T00:00:00+00:00",
        recipients=(f"{dataset}@demo-kommune.example",),
    )
    message = render(incident, OPENED, "da", "http://ui.test", NOW)
    return Pending(message, (WEBHOOK, EMAIL))


def test_a_failed_channel_waits_and_the_other_is_not_resent(webhook, smtp) -> None:
    settings = NotifySettings(
        webhook_url=webhook.url, smtp_host=smtp.host, smtp_port=smtp.port, timeout_seconds=5
    )
    webhook.statuses = [503]
    outcome = deliver([_message("dar_addresses"), _message("cpr_persons")], settings, LOG)

    # The webhook failed on the first message and was not tried for the second.
    assert [r["status"] for r in webhook.received] == [503]
    assert [m[1] for m in smtp.mails] == [
        ["dar_addresses@demo-kommune.example"],
        ["cpr_persons@demo-kommune.example"],
    ]
    assert [p.channels for p in outcome.remaining] == [(WEBHOOK,), (WEBHOOK,)]
    assert (outcome.delivered, outcome.failed) == (2, 1)

    again = deliver(outcome.remaining, settings, LOG)
    assert again.remaining == () and again.delivered == 2
    assert [r["json"]["dataset"] for r in webhook.received[1:]] == [
        "dar_addresses",
        "cpr_persons",
    ]
    assert len(smtp.mails) == 2


def test_the_email_is_plain_utf8_text(smtp) -> None:
    settings = NotifySettings(smtp_host=smtp.host, smtp_port=smtp.port, smtp_from="lake@x.example")
    pending = _message("dar_addresses")
    assert deliver([Pending(pending.message, (EMAIL,))], settings, LOG).remaining == ()
    [(sender, recipients, mail)] = smtp.mails
    assert sender == "lake@x.example" and recipients == ["dar_addresses@demo-kommune.example"]
    assert mail.get_content_type() == "text/plain"
    assert mail.get_content_charset() == "utf-8"
    assert mail["Subject"] == "Forældede data: silver/dar_addresses er ikke opdateret til tiden"
    assert "kontrollér" in mail.get_content()
