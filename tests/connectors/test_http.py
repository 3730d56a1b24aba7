"""The shared client: retries, giving up, Retry-After, User-Agent, conditional GET, secrets."""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from connectors.http import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    Changed,
    HttpClient,
    HttpError,
    HttpSettings,
    RateLimit,
    Unchanged,
    default_user_agent,
    get_if_changed,
    parse_retry_after,
    redact_url,
)
from tests.connectors.conftest import FAST
from tests.connectors.fakeserver import FaultSchedule, Reply, Request

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
THREE = replace(FAST, max_attempts=3)


# ------------------------------------------------------------------------------ giving up


@pytest.mark.parametrize("status", ["500", "502", "503"])
def test_server_errors_give_up_after_max_attempts_with_one_clear_error(status, serve):
    service = serve(faults=FaultSchedule.always(status))
    client = service.client(THREE)

    with pytest.raises(HttpError) as caught:
        client.get("/api/3/action/package_search", params={"q": "x"})

    error = caught.value
    assert service.server.count() == 3  # exactly max_attempts, no more
    assert (error.status, error.attempts, error.transient) == (int(status), 3, True)
    message = str(error)
    assert message.startswith(f"GET {service.server.url}/api/3/action/package_search?q=x: ")
    assert f"HTTP {status}" in message and "after 3 attempts" in message
    assert "kept failing" in message and "\n" not in message
    assert len(service.sleeps.calls) == 2  # between attempts, not after the last


def test_rate_limiting_that_never_ends_says_to_lower_the_rate(serve):
    service = serve(faults=FaultSchedule.always("429-seconds"))
    with pytest.raises(HttpError, match=r"HTTP 429.*after 3 attempts.*rate_limit"):
        service.client(THREE).get("/api/pxwebapi/v2/tables")
    assert service.sleeps.calls == [2.0, 2.0]  # Retry-After: 2, obeyed


@pytest.mark.parametrize("kind", ["reset", "drop", "truncate", "slow"])
def test_transport_failures_give_up_after_max_attempts(kind, serve):
    service = serve(faults=FaultSchedule.always(kind), slow_seconds=THREE.read_timeout + 0.1)

    with pytest.raises(HttpError) as caught:
        service.client(THREE).get("/api/pxwebapi/v2/tables")

    assert service.server.count() == 3
    assert caught.value.status is None and caught.value.attempts == 3
    assert "no complete response" in str(caught.value)
    assert "read 0.2 s" in str(caught.value)  # says which timeouts were in force


def test_a_connection_refused_is_retried_then_explained():
    client = HttpClient(THREE, sleep=lambda s: None)
    with pytest.raises(HttpError, match=r"ConnectError.*after 3 attempts.*127\.0\.0\.1"):
        client.get("http://127.0.0.1:9/nothing-listens-here")
    client.close()


def test_a_client_error_is_not_retried_and_quotes_the_first_line(serve):
    service = serve()

    @service.server.route("GET", "/dst/tableinfo")
    def rejected(request: Request) -> Reply:
        return Reply(400, b'{"errorTypeCode":"TABLE-NOT-FOUND"}\nline two\n', {})

    with pytest.raises(HttpError) as caught:
        service.client().get("/dst/tableinfo", params={"table": "NOPE"})

    assert service.server.count() == 1
    assert caught.value.status == 400 and not caught.value.transient
    assert 'HTTP 400 Bad Request: {"errorTypeCode":"TABLE-NOT-FOUND"}' in str(caught.value)
    assert "line two" not in str(caught.value)
    assert "check its parameters" in str(caught.value)


def test_not_found_is_not_retried(serve):
    service = serve()
    with pytest.raises(HttpError, match=r"HTTP 404 Not Found.*check the URL"):
        service.client().get("/no/such/dataset")
    assert service.server.count() == 1


def test_a_non_idempotent_request_is_not_repeated_after_an_ambiguous_failure(serve):
    service = serve(faults=FaultSchedule({0: "truncate"}))
    client = service.client()
    request = client.build_request("POST", "/cvr/search", json={"page": 1, "size": 2})
    with pytest.raises(HttpError, match="not repeated automatically"):
        client.send(request, idempotent=False)
    assert service.server.count() == 1


def test_a_non_idempotent_request_is_repeated_when_the_server_refused_it(serve):
    service = serve(faults=FaultSchedule({0: "503", 1: "429-zero"}))
    client = service.client()
    request = client.build_request("POST", "/cvr/search", json={"page": 1, "size": 2})
    assert client.send(request, idempotent=False).status_code == 200
    assert service.server.count() == 3


def test_http_error_survives_pickling():
    error = HttpError(
        "GET",
        "https://x.dk/a",
        status=503,
        attempts=5,
        reason="HTTP 503",
        hint="Later",
        transient=True,
    )
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.status == 503 and again.transient


# ---------------------------------------------------------------------------- Retry-After


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("86400000", 86400000.0),  # parsed as said; capping is the client's job
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("Mon, 02 Mar 2026 12:00:30 GMT", 30.0),
        ("Mon, 02 Mar 2026 12:00:30 -0000", 30.0),
        ("Mon, 02 Mar 2026 11:00:00 GMT", 0.0),  # in the past: go now
        (
            "Fri, 31 Dec 9999 23:59:59 GMT",
            (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - NOW).total_seconds(),
        ),
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("3", 3.0),
        ("86400000", 120.0),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 120.0),
        ("Mon, 02 Mar 2026 12:01:00 GMT", 60.0),
    ],
)
def test_retry_after_is_obeyed_up_to_the_cap(value, expected):
    client = HttpClient(FAST, random=lambda: 0.5, now=lambda: NOW)
    assert client.delay(1, value) == expected
    client.close()


def test_backoff_is_exponential_with_full_jitter_and_capped():
    settings = replace(FAST, backoff_base=0.5, backoff_cap=5.0)
    top = HttpClient(settings, random=lambda: 1.0)
    assert [top.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    bottom = HttpClient(settings, random=lambda: 0.0)
    assert [bottom.delay(n) for n in range(1, 4)] == [0.0, 0.0, 0.0]
    half = HttpClient(settings, random=lambda: 0.5)
    assert half.delay(3, "not a date") == 1.0  # unreadable Retry-After: back off instead
    for client in (top, bottom, half):
        client.close()


def test_a_huge_retry_after_in_a_real_exchange_waits_only_the_cap(serve):
    service = serve(faults=FaultSchedule({0: "429-huge", 1: "429-date", 2: "429-zero"}))
    response = service.client().get("/api/pxwebapi/v2/tables")
    assert response.status_code == 200
    huge, date, zero = service.sleeps.calls
    assert huge == FAST.retry_after_cap
    assert 1.0 <= date <= 3.0  # the server asked for now + 3 s, in whole seconds
    assert zero == 0.0


# ------------------------------------------------------------------------ client settings


def test_every_request_carries_the_identifying_user_agent(serve):
    service = serve()
    service.client().get("/api/pxwebapi/v2/tables")
    agent = service.server.arrivals[0].headers["User-Agent"]
    assert agent == default_user_agent()
    assert re.fullmatch(
        r"kommunelake/\d+\.\d+\.\d+\S* \(\+https://github\.com/kommunelake\)", agent
    )


def test_timeouts_are_passed_to_httpx():
    client = HttpClient(HttpSettings(connect_timeout=3, read_timeout=40))
    assert client.client.timeout == httpx.Timeout(connect=3, read=40, write=60, pool=30)
    client.close()


@pytest.mark.parametrize(
    "bad",
    [
        {"max_attempts": 0},
        {"read_timeout": 0},
        {"backoff_base": -1},
    ],
)
def test_settings_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        HttpSettings(**bad)
    with pytest.raises(ValueError):
        RateLimit(0, 1.0)


# ------------------------------------------------------------------------ conditional GET


def test_conditional_get_returns_unchanged_on_304_and_the_new_version_otherwise(serve, samples):
    service = serve()
    version = {"etag": '"v1"', "modified": "Tue, 21 Oct 2025 07:28:00 GMT", "gets": 0}

    @service.server.route("GET", "/api/pxwebapi/v2/tables/05810")
    def table(request: Request) -> Reply:
        version["gets"] += 1
        validators = {"ETag": version["etag"], "Last-Modified": version["modified"]}
        if request.headers.get("If-None-Match") == version["etag"] or (
            "If-None-Match" not in request.headers
            and request.headers.get("If-Modified-Since") == version["modified"]
        ):
            return Reply(304, b"", validators)
        return Reply.json(samples.ssb_tables[0], headers=validators)

    client = service.client()
    first = get_if_changed(client, "/api/pxwebapi/v2/tables/05810")
    assert isinstance(first, Changed) and first.changed
    assert first.response.json() == samples.ssb_tables[0]
    assert first.validators.as_dict() == {"etag": '"v1"', "last_modified": version["modified"]}

    again = get_if_changed(client, "/api/pxwebapi/v2/tables/05810", etag='"v1"')
    assert isinstance(again, Unchanged) and not again.changed
    by_date = get_if_changed(
        client,
        "/api/pxwebapi/v2/tables/05810",
        last_modified=datetime(2025, 10, 21, 7, 28, tzinfo=UTC),
    )
    assert isinstance(by_date, Unchanged)
    assert service.server.arrivals[-1].headers["If-Modified-Since"] == version["modified"]

    version["etag"] = '"v2"'
    newer = get_if_changed(client, "/api/pxwebapi/v2/tables/05810", **first.validators.as_dict())
    assert isinstance(newer, Changed) and newer.validators.etag == '"v2"'
    assert version["gets"] == 4


# --------------------------------------------------------------------------------- secrets

API_KEY = "dfk-7c1e0b2a9f3d4e56"
PASSWORD = "pw-Sv0rdfisk-42"
TOKEN = "eyJhbGciOiJub25lIn0.c2VjcmV0.sig"


@pytest.mark.parametrize(
    ("auth", "secrets"),
    [
        (ApiKeyAuth(API_KEY, param="apiKey"), [API_KEY]),
        (ApiKeyAuth(API_KEY, header="X-Api-Key"), [API_KEY]),
        (BasicAuth("kommune", PASSWORD), [PASSWORD]),
        (BearerAuth(TOKEN), [TOKEN]),
    ],
    ids=["api-key-query", "api-key-header", "basic", "bearer"],
)
def test_secrets_never_reach_logs_or_error_messages(auth, secrets, serve, caplog):
    # The service echoes the credential it got, as some do in their error pages.
    service = serve(faults=FaultSchedule({0: "503", 1: "429-zero"}))
    received: list[str] = []

    @service.server.route("GET", "/echo")
    def echo(request: Request) -> Reply:
        sent = request.arg("apiKey") or request.headers.get("X-Api-Key")
        sent = sent or request.headers.get("Authorization", "")
        received.append(sent)
        return Reply(401, f"denied for {sent}\n".encode(), {})

    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    client = service.client(auth=auth)
    with pytest.raises(HttpError) as caught:
        client.get("/echo", params={"q": "x"})

    assert service.server.count() == 3
    assert caught.value.status == 401 and "credentials" in str(caught.value)
    assert received and received[0]  # the credential did go out
    shown = [str(caught.value), repr(caught.value), caplog.text, repr(auth)]
    shown += [str(record.args) for record in caplog.records]
    for secret in [*secrets, received[0]]:
        for text in shown:
            assert secret not in text
    assert "REDACTED" in str(caught.value)  # the echo was scrubbed, not dropped silently


def test_redact_url_hides_userinfo_and_secret_parameters():
    url = "https://user:pw@api.dk/x?apiKey=1&token=2&q=keep&X-Custom=3"
    assert redact_url(url, ["x-custom"]) == (
        "https://api.dk/x?apiKey=REDACTED&token=REDACTED&q=keep&X-Custom=REDACTED"
    )
