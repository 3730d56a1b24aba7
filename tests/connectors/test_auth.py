"""Auth strategies against a fake API and a fake OAuth2 token endpoint on 127.0.0.1."""

from __future__ import annotations

import base64
import itertools
import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest

from connectors.http import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    HttpClient,
    HttpError,
    OAuth2ClientCredentials,
)
from connectors.paging import paginate
from tests.connectors.fakeserver import FaultSchedule, Reply, Request
from tests.connectors.sample_apis import SCENARIOS

CLIENT_ID = "kommunelake-ballerup"
CLIENT_SECRET = "cs-Qm9vbWVyYW5n-0151"


@dataclass
class TokenEndpoint:
    """Hands out tok-1, tok-2, ... for the right client; the API takes only `valid` ones."""

    expires_in: int | None = 3600
    accept: bool = True  # False: the API refuses every token, even fresh ones
    numbers: itertools.count = field(default_factory=lambda: itertools.count(1))
    valid: set[str] = field(default_factory=set)
    forms: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mount(self, service, samples) -> None:
        @service.server.route("POST", "/oauth/token")
        def token(request: Request) -> Reply:
            form = parse_qs(request.body.decode())
            self.forms.append(form)
            basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
            by_header = request.headers.get("Authorization") == basic
            by_form = form.get("client_id") == [CLIENT_ID] and form.get("client_secret") == [
                CLIENT_SECRET
            ]
            if form.get("grant_type") != ["client_credentials"] or not (by_header or by_form):
                return Reply.json(
                    {"error": "invalid_client", "error_description": "bad creds"}, 401
                )
            with self.lock:
                issued = f"tok-{next(self.numbers)}"
                self.valid.add(issued)
            payload = {"access_token": issued, "token_type": "Bearer"}
            if self.expires_in is not None:
                payload["expires_in"] = self.expires_in
            return Reply.json(payload)

        @service.server.route("GET", "/bbr/bygninger")
        def protected(request: Request) -> Reply:
            presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not self.accept or presented not in self.valid:
                return Reply.json({"error": "invalid_token"}, 401)
            return Reply.json(samples.bbr_bygninger)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    service: Any
    endpoint: TokenEndpoint
    auth: OAuth2ClientCredentials
    clock: Clock
    client: HttpClient


@pytest.fixture
def oauth(serve, samples):
    def start(endpoint: TokenEndpoint | None = None, faults=None, **auth_kwargs):
        endpoint = endpoint or TokenEndpoint()
        service = serve(faults=faults)
        endpoint.mount(service, samples)
        clock = Clock()
        auth = OAuth2ClientCredentials(
            f"{service.server.url}/oauth/token",
            CLIENT_ID,
            auth_kwargs.pop("secret", CLIENT_SECRET),
            "bbr:read",
            clock=clock,
            **auth_kwargs,
        )
        return Rig(service, endpoint, auth, clock, service.client(auth=auth))

    return start


def test_the_token_is_fetched_once_and_cached(oauth, samples):
    rig = oauth()
    for _ in range(3):
        assert rig.client.get("/bbr/bygninger").json() == samples.bbr_bygninger
    assert rig.service.server.count("/oauth/token") == 1
    assert rig.auth.tokens_fetched == 1
    assert rig.endpoint.forms[0]["scope"] == ["bbr:read"]
    assert "client_secret" not in rig.endpoint.forms[0]  # sent as HTTP Basic by default


def test_the_token_is_refreshed_shortly_before_it_expires(oauth):
    rig = oauth()
    rig.client.get("/bbr/bygninger")
    rig.clock.now += 3600 - 61  # still more than the 60 s leeway left
    rig.client.get("/bbr/bygninger")
    assert rig.service.server.count("/oauth/token") == 1
    rig.clock.now += 2
    rig.client.get("/bbr/bygninger")
    assert rig.service.server.count("/oauth/token") == 2


def test_a_token_without_expiry_is_kept_until_a_401(oauth):
    rig = oauth(TokenEndpoint(expires_in=None))
    rig.client.get("/bbr/bygninger")
    rig.clock.now += 10**6
    rig.client.get("/bbr/bygninger")
    assert rig.service.server.count("/oauth/token") == 1


def test_a_401_fetches_a_new_token_once_and_repeats_the_request(oauth, samples):
    rig = oauth()
    rig.client.get("/bbr/bygninger")
    rig.endpoint.valid.clear()  # the service revoked every token

    assert rig.client.get("/bbr/bygninger").json() == samples.bbr_bygninger
    assert rig.service.server.count("/oauth/token") == 2
    assert rig.service.server.count("/bbr/bygninger") == 3  # ok, 401, ok


def test_a_token_the_api_never_accepts_ends_in_one_clear_error_not_a_loop(oauth):
    rig = oauth()
    rig.endpoint.accept = False
    with pytest.raises(HttpError) as caught:
        rig.client.get("/bbr/bygninger")
    assert caught.value.status == 401 and "credentials" in str(caught.value)
    assert rig.service.server.count("/oauth/token") == 2  # the first token, one refresh
    assert rig.service.server.count("/bbr/bygninger") == 2


def test_wrong_client_credentials_are_explained_without_the_secret(oauth, caplog):
    caplog.set_level(logging.DEBUG)
    rig = oauth(secret="cs-wrong-secret-9")
    with pytest.raises(HttpError) as caught:
        rig.client.get("/bbr/bygninger")
    message = str(caught.value)
    assert caught.value.status == 401 and caught.value.attempts == 1
    assert "invalid_client: bad creds" in message and "client_id, client_secret" in message
    assert "cs-wrong-secret-9" not in message + caplog.text
    assert rig.service.server.count("/bbr/bygninger") == 0


def test_a_failing_token_endpoint_is_retried_like_any_request(oauth, samples):
    rig = oauth(faults=FaultSchedule({0: "503", 1: "reset"}))
    assert rig.client.get("/bbr/bygninger").json() == samples.bbr_bygninger
    assert rig.service.server.count("/oauth/token") == 3


def test_client_credentials_can_go_in_the_form_body(oauth):
    rig = oauth(client_auth="body")
    rig.client.get("/bbr/bygninger")
    assert rig.endpoint.forms[0]["client_id"] == [CLIENT_ID]


def test_concurrent_first_requests_share_one_token(oauth):
    rig = oauth()
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def work() -> None:
        barrier.wait()
        try:
            rig.client.get("/bbr/bygninger")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not failures
    assert rig.service.server.count("/oauth/token") == 1


def test_oauth_secrets_stay_out_of_logs_and_errors(oauth, caplog):
    caplog.set_level(logging.DEBUG)
    rig = oauth(faults=FaultSchedule({1: "503"}))
    rig.client.get("/bbr/bygninger")
    rig.endpoint.accept = False
    with pytest.raises(HttpError) as caught:
        rig.client.get("/bbr/bygninger")
    shown = str(caught.value) + repr(rig.auth) + caplog.text
    for secret in (CLIENT_SECRET, "tok-1", "tok-2"):
        assert secret not in shown


def test_paging_through_an_authenticated_api(serve, samples):
    # Datafordeler GraphQL takes its API key as a query parameter.
    service = serve()
    keys: list[str | None] = []
    original = service.server.routes[("POST", "/graphql")]

    def checked(request: Request) -> Reply:
        keys.append(request.arg("apiKey"))
        return original(request)

    service.server.routes[("POST", "/graphql")] = checked
    client = service.client(auth=ApiKeyAuth("k-123", param="apiKey"))
    scenario = SCENARIOS["graphql-relay/bbr"]
    pages = list(paginate(client, scenario.first_request(client), scenario.strategy))
    assert [r for p in pages for r in p.records] == samples.bbr_bygninger
    assert keys == ["k-123"] * len(pages)
    assert all("k-123" not in str(p.state) for p in pages)


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        (ApiKeyAuth("k"), "X-API-Key", "k"),
        (ApiKeyAuth("k", header="Ocp-Apim-Subscription-Key"), "Ocp-Apim-Subscription-Key", "k"),
        (BearerAuth("t"), "Authorization", "Bearer t"),
        (BasicAuth("u", "p"), "Authorization", "Basic dTpw"),
    ],
)
def test_header_auths_send_the_expected_header(auth, header, value, serve):
    service = serve()
    service.client(auth=auth).get("/api/pxwebapi/v2/tables")
    assert service.server.arrivals[0].headers[header] == value


def test_api_key_auth_takes_one_place():
    with pytest.raises(ValueError):
        ApiKeyAuth("k", header="X", param="y")
    with pytest.raises(ValueError):
        ApiKeyAuth("")
