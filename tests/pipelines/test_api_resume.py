"""An API load cut off mid-pagination resumes after its last landed page: no gap, no repeat.

The cut is made at the HTTP edge: a proxy on 127.0.0.1 in front of the demo's Datafordeler
(or CVR) service forwards a few requests and then answers 404, as a service that went away
would. A real SIGKILL mid-pagination is tests/pipelines/test_api_kill.py.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import polars as pl
import pytest

from connectors.http import HttpError
from lake import cursors
from lake.home import Home
from lake.landing import manifest, read_landed
from pipelines.ingest import load_dataset
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY

BASE = spec_by_name("dar_address_history")
SPEC = dataclasses.replace(BASE, source={**BASE.source, "first": 40})  # many small pages
ROW = ["address_id", "registreringFra", "virkningFra"]


class ForwardingProxy:
    """Forwards every request (method, path, headers, body) to `target`; after `allow`
    requests it answers 404 to everything, as a service that went away would."""

    def __init__(self, target: str, allow: int | None) -> None:
        self.allow, self.forwarded, self.refused = allow, 0, 0
        self.paths: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.allow is not None and proxy.forwarded >= proxy.allow:
                    proxy.refused += 1
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                proxy.forwarded += 1
                proxy.paths.append(self.path.split("?")[0])
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                answer = httpx.request(
                    self.command, target + self.path, content=body, headers=headers,
                    trust_env=False,
                )  # fmt: skip
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_POST = do_DELETE = _forward

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def proxy(demo_apis, monkeypatch) -> Iterator[ForwardingProxy]:
    cut = ForwardingProxy(demo_apis.datafordeler, allow=3)
    monkeypatch.setenv("SOURCES__DATAFORDELER__BASE_URL", cut.url)
    yield cut
    cut.server.shutdown()
    cut.server.server_close()


def _silver(home: Home) -> pl.DataFrame:
    return pl.read_delta(home.table_uri("silver", SPEC.name)).select(ROW).sort(ROW)


def test_cut_off_run_resumes_after_its_last_landed_page(tmp_path, proxy) -> None:
    reference = Home(tmp_path / "reference")
    proxy.allow = None
    load_dataset(SPEC, reference, TEST_KEY)
    pages = len(manifest(reference.manifest_uri, SPEC.name))
    assert pages > 4
    proxy.forwarded, proxy.allow = 0, 3

    home = Home(tmp_path / "home")
    with pytest.raises(HttpError):
        load_dataset(SPEC, home, TEST_KEY)
    assert len(manifest(home.manifest_uri, SPEC.name)) == 3  # landed before the cut

    proxy.allow = None
    report = load_dataset(SPEC, home, TEST_KEY)

    # The second run asked only for the pages after the third: nothing fetched twice.
    assert proxy.forwarded == pages and proxy.refused == 1
    assert len(report.batches) == pages and all(b.status == "loaded" for b in report.batches)
    silver = _silver(home)
    assert silver.equals(_silver(reference))
    assert silver.height == silver.unique().height


CVR_BASE = spec_by_name("cvr_company_register")
CVR_SPEC = dataclasses.replace(CVR_BASE, source={**CVR_BASE.source, "size": 3})  # small pages


def test_cut_off_cvr_scroll_resumes_without_gaps_or_repeats(tmp_path, demo_apis, monkeypatch):
    """A scroll cannot be resumed as it was (its context expires, and repeating a scroll call
    skips a page): the next run starts a new scroll and skips the hits already landed."""
    proxy = ForwardingProxy(demo_apis.cvr, allow=None)
    monkeypatch.setenv("SOURCES__CVR__BASE_URL", proxy.url)
    try:
        reference = Home(tmp_path / "reference")
        load_dataset(CVR_SPEC, reference, TEST_KEY)
        expected = pl.read_delta(reference.table_uri("silver", CVR_SPEC.name)).select("cvr")
        assert expected.height > 9

        home = Home(tmp_path / "home")
        proxy.allow, proxy.forwarded, proxy.paths = 3, 0, []
        with pytest.raises(HttpError):
            load_dataset(CVR_SPEC, home, TEST_KEY)
        assert len(manifest(home.manifest_uri, CVR_SPEC.name)) == 3  # three pages of rows
        saved = cursors.latest(home, CVR_SPEC.name)
        assert saved is not None and not saved.finished and saved.page == 3
        assert saved.state is not None and saved.state["seen"] == 9  # the resume point

        proxy.allow, proxy.forwarded, proxy.paths = None, 0, []
        report = load_dataset(CVR_SPEC, home, TEST_KEY)
    finally:
        proxy.server.shutdown()
        proxy.server.server_close()
    assert all(b.status == "loaded" for b in report.batches)
    assert proxy.paths[0].endswith("/_search")  # a new scroll, not the lost one
    table = pl.read_delta(home.table_uri("silver", CVR_SPEC.name)).select("cvr")
    assert table.sort("cvr").equals(expected.sort("cvr"))
    assert table["cvr"].n_unique() == table.height
    # Every company row landed once: the restarted scroll's first pages added no batch rows.
    rows = sum(len(read_landed(f).splitlines()) for f in manifest(home.manifest_uri, CVR_SPEC.name))
    assert rows == expected.height
