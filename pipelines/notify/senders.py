"""Delivery: a JSON webhook and e-mail over SMTP, each message tracked per channel.

A message stays in the outbox (the sensor cursor) until every channel it was meant for has
accepted it, so a receiver that is down or answers 500 gets it on a later tick, and a channel
that did accept it is not sent a duplicate. Nothing here raises: a failed delivery is logged
(status code or exception type, never the webhook URL, which often carries a token) and kept.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import httpx

from pipelines.notify.messages import Message
from pipelines.notify.settings import NotifySettings

WEBHOOK, EMAIL = "webhook", "email"
MAX_OUTBOX = 200  # undelivered messages kept; beyond this the oldest are dropped, loudly


@dataclass(frozen=True)
class Pending:
    message: Message
    channels: tuple[str, ...]  # channels that have not accepted it yet
    attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message.to_json(),
            "channels": list(self.channels),
            "attempts": self.attempts,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Pending:
        return cls(
            message=Message.from_json(raw["message"]),
            channels=tuple(raw.get("channels") or ()),
            attempts=int(raw.get("attempts", 0)),
        )


def channels_for(
    message: Message, settings: NotifySettings, log: logging.Logger
) -> tuple[str, ...]:
    """The channels a new message goes to under the current settings."""
    channels = []
    if settings.webhook:
        channels.append(WEBHOOK)
    if settings.email:
        if message.to:
            channels.append(EMAIL)
        else:
            log.warning("no contact e-mail for %s: not e-mailed", message.key)
    if not settings.configured:
        log.info(
            "recorded, not sent (no KOMMUNELAKE_NOTIFY_WEBHOOK_URL or KOMMUNELAKE_SMTP_HOST "
            "set): %s",
            message.title,
        )
    return tuple(channels)


@dataclass(frozen=True)
class Outcome:
    remaining: tuple[Pending, ...]
    delivered: int  # message-channel deliveries accepted this tick
    failed: int  # message-channel deliveries that failed and stay queued


def deliver(outbox: Sequence[Pending], settings: NotifySettings, log: logging.Logger) -> Outcome:
    if len(outbox) > MAX_OUTBOX:
        dropped = outbox[: len(outbox) - MAX_OUTBOX]
        log.error(
            "%d undelivered notifications dropped (outbox full); first: %s",
            len(dropped),
            dropped[0].message.title,
        )
        outbox = outbox[len(outbox) - MAX_OUTBOX :]
    remaining, delivered, failed = [], 0, 0
    # After one failure a channel is not tried again this tick: a receiver that is down would
    # otherwise cost a timeout per queued message and could push the tick past Dagster's
    # deadline, losing the cursor (and so re-sending what did go out).
    down: set[str] = set()
    with httpx.Client(
        timeout=httpx.Timeout(settings.timeout_seconds, connect=min(5.0, settings.timeout_seconds)),
        follow_redirects=False,
    ) as client:
        for pending in outbox:
            left = []
            for channel in pending.channels:
                if channel in down:
                    left.append(channel)
                    continue
                if channel == WEBHOOK and settings.webhook:
                    ok = send_webhook(client, settings, pending.message, log)
                elif channel == EMAIL and settings.email:
                    ok = send_email(settings, pending.message, log)
                else:
                    log.warning(
                        "%s is no longer configured: %s not sent there",
                        channel,
                        pending.message.key,
                    )
                    continue
                if ok:
                    delivered += 1
                else:
                    failed += 1
                    down.add(channel)
                    left.append(channel)
            if left:
                remaining.append(
                    replace(pending, channels=tuple(left), attempts=pending.attempts + 1)
                )
    return Outcome(tuple(remaining), delivered, failed)


def send_webhook(
    client: httpx.Client, settings: NotifySettings, message: Message, log: logging.Logger
) -> bool:
    if not settings.webhook_url:
        return False
    body = json.dumps(message.payload, ensure_ascii=False).encode("utf-8")
    try:
        response = client.post(
            settings.webhook_url,
            content=body,
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
    except httpx.HTTPError as error:
        log.error("webhook failed (%s): %s; retried next tick", type(error).__name__, message.key)
        return False
    if not response.is_success:
        log.error(
            "webhook answered HTTP %d: %s; retried next tick", response.status_code, message.key
        )
        return False
    log.info("webhook sent: %s", message.title)
    return True


def email_message(settings: NotifySettings, message: Message) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = settings.smtp_from
    mail["To"] = ", ".join(message.to)
    mail["Date"] = formatdate(usegmt=True)
    # A fixed domain: make_msgid() would otherwise look up this host's FQDN (slow, leaky).
    mail["Message-ID"] = make_msgid(domain="kommunelake.invalid")
    mail["Content-Language"] = message.language
    mail.set_content(message.text, charset="utf-8")
    return mail


def send_email(settings: NotifySettings, message: Message, log: logging.Logger) -> bool:
    if not settings.smtp_host:
        return False
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user and settings.smtp_password:
                smtp.login(settings.smtp_user, settings.smtp_password)
            refused = smtp.send_message(email_message(settings, message))
    except smtplib.SMTPResponseException as error:
        log.error("e-mail failed (SMTP %d): %s; retried next tick", error.smtp_code, message.key)
        return False
    except (smtplib.SMTPException, OSError) as error:
        log.error("e-mail failed (%s): %s; retried next tick", type(error).__name__, message.key)
        return False
    if refused:
        log.warning("e-mail refused for %s: %s", ", ".join(refused), message.key)
    log.info("e-mail sent to %s: %s", ", ".join(message.to), message.title)
    return True
