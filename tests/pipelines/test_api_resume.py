"""An API load cut off mid-pagination resumes after its last landed page: no gap, no repeat.

The cut is made at the HTTP edge: a proxy on 127.0.0.1 in front of the demo's Datafordeler
service forwards a few requests and then answers 404, as a service that went away would.
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
from lake.home import Home
from lake.landing import manifest
from pipelines.ingest import load_dataset
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY

BASE = spec_by_name("dar_address_history")
SPEC = dataclasses.replace(BASE, source={**BASE.source, "first": 40})  # many small pages
ROW = ["address_id", "registreringFra", "virkningFra"]


class CutOffProxy:
    def __init__(self, target: str, allow: int | None) -> None:
        self.allow, self.forwarded, self.refused = allow, 0, 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if proxy.allow is not None and proxy.forwarded >= proxy.allow:
                    proxy.refused += 1
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                proxy.forwarded += 1
                answer = httpx.post(
                    target + self.path, content=body, headers={"Content-Type": "application/json"}
                )
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers["Content-Type"])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def proxy(demo_apis, monkeypatch) -> Iterator[CutOffProxy]:
    cut = CutOffProxy(demo_apis.datafordeler, allow=3)
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
