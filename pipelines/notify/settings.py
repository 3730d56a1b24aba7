"""Where notifications go, read from environment variables when the sensor ticks.

Read at call time, never at import, so a changed `.env` applies on the next tick and tests
can set variables per test. Bad values fall back to defaults and are reported in `problems`:
a typo in a port number must not stop the sensor from recording incidents.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

LANGUAGES = ("da", "no")
DEFAULT_UI_URL = "http://127.0.0.1:3000"
DEFAULT_FROM = "kommunelake@localhost"
_NORWEGIAN = {"no", "nb", "nn", "nb-no", "nn-no", "no-no"}
_TRUE = {"1", "true", "yes", "on", "ja"}


@dataclass(frozen=True)
class NotifySettings:
    # Kept out of repr: webhook URLs often carry a token, and settings may end up in a log.
    webhook_url: str | None = field(default=None, repr=False)
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = DEFAULT_FROM
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    language: str = "da"
    ui_url: str = DEFAULT_UI_URL
    timeout_seconds: float = 10.0  # per request: a hanging receiver must not stall the tick
    problems: tuple[str, ...] = ()

    @property
    def webhook(self) -> bool:
        return bool(self.webhook_url)

    @property
    def email(self) -> bool:
        return bool(self.smtp_host)

    @property
    def configured(self) -> bool:
        return self.webhook or self.email

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> NotifySettings:
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        problems = []
        port = 25
        if raw_port := get("KOMMUNELAKE_SMTP_PORT"):
            if raw_port.isdigit() and 0 < int(raw_port) < 65536:
                port = int(raw_port)
            else:
                problems.append(f"KOMMUNELAKE_SMTP_PORT={raw_port!r} is not a port; using 25")
        language = (get("KOMMUNELAKE_NOTIFY_LANGUAGE") or "da").lower()
        if language in _NORWEGIAN:
            language = "no"
        elif language != "da":
            problems.append(f"KOMMUNELAKE_NOTIFY_LANGUAGE={language!r} is not da or no; using da")
            language = "da"
        user, password = get("KOMMUNELAKE_SMTP_USER"), get("KOMMUNELAKE_SMTP_PASSWORD")
        if bool(user) != bool(password):
            problems.append(
                "set both KOMMUNELAKE_SMTP_USER and KOMMUNELAKE_SMTP_PASSWORD, or neither; "
                "sending without login"
            )
            user = password = None
        starttls = (get("KOMMUNELAKE_SMTP_STARTTLS") or "").lower() in _TRUE
        if user and not starttls:
            problems.append(
                "SMTP login without KOMMUNELAKE_SMTP_STARTTLS sends the password in clear "
                "text; set KOMMUNELAKE_SMTP_STARTTLS=1 unless the relay is local"
            )
        webhook = get("KOMMUNELAKE_NOTIFY_WEBHOOK_URL")
        if webhook and not webhook.startswith(("http://", "https://")):
            problems.append("KOMMUNELAKE_NOTIFY_WEBHOOK_URL must start with http(s)://; ignored")
            webhook = None
        elif webhook and not _parses(webhook):
            # httpx would raise InvalidURL (not an HTTPError) at every send. The URL often
            # carries a token, so the message does not quote it or httpx's excerpt of it.
            problems.append(
                "KOMMUNELAKE_NOTIFY_WEBHOOK_URL is not a valid URL (a port that is not a "
                "number, a control character, an unclosed [ ); ignored"
            )
            webhook = None
        return cls(
            webhook_url=webhook,
            smtp_host=get("KOMMUNELAKE_SMTP_HOST"),
            smtp_port=port,
            smtp_from=get("KOMMUNELAKE_SMTP_FROM") or DEFAULT_FROM,
            smtp_user=user,
            smtp_password=password,
            smtp_starttls=starttls,
            language=language,
            ui_url=(get("KOMMUNELAKE_UI_URL") or DEFAULT_UI_URL).rstrip("/"),
            problems=tuple(problems),
        )


def _parses(url: str) -> bool:
    try:
        httpx.URL(url)
    except httpx.InvalidURL:
        return False
    return True
