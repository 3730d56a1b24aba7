"""Real receivers on 127.0.0.1 for the notification tests: a webhook (http.server) and an
SMTP server (aiosmtpd). Both run in threads, bind to free ports and stop with the test."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

NOTIFY_VARIABLES = (
    "KOMMUNELAKE_NOTIFY_WEBHOOK_URL",
    "KOMMUNELAKE_SMTP_HOST",
    "KOMMUNELAKE_SMTP_PORT",
    "KOMMUNELAKE_SMTP_FROM",
    "KOMMUNELAKE_SMTP_USER",
    "KOMMUNELAKE_SMTP_PASSWORD",
    "KOMMUNELAKE_SMTP_STARTTLS",
    "KOMMUNELAKE_NOTIFY_LANGUAGE",
    "KOMMUNELAKE_UI_URL",
)


@pytest.fixture(autouse=True)
def _clean_notify_env(monkeypatch) -> None:
    """A developer's own .env must not send test notifications anywhere."""
    for name in NOTIFY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answered in order; 200 once they run out
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook?token=secret"


class _WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with self.server.lock:
            status = self.server.statuses.pop(0) if self.server.statuses else 200
            self.server.received.append(
                {
                    "status": status,
                    "content_type": self.headers.get("Content-Type"),
                    "json": json.loads(body.decode("utf-8")),
                }
            )
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@dataclass
class Mailbox:
    host: str
    port: int
    mails: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd handler hook
        mail = message_from_bytes(envelope.content, policy=policy.default)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 OK"


def _free_port() -> int:
    # aiosmtpd's Controller cannot listen on port 0 (it connects to its own port to start).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    mailbox = Mailbox("127.0.0.1", _free_port())
    controller = Controller(mailbox, hostname=mailbox.host, port=mailbox.port, ready_timeout=5)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@pytest.fixture
def configured(monkeypatch, webhook: WebhookServer, smtp: Mailbox) -> None:
    """Both channels pointed at the test receivers, with a recognisable UI address."""
    monkeypatch.setenv("KOMMUNELAKE_NOTIFY_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("KOMMUNELAKE_SMTP_HOST", smtp.host)
    monkeypatch.setenv("KOMMUNELAKE_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("KOMMUNELAKE_SMTP_FROM", "kommunelake@demo-kommune.example")
    monkeypatch.setenv("KOMMUNELAKE_UI_URL", "http://dagster.test:3000/")
