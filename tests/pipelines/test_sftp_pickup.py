"""A dataset whose source is a vendor's SFTP server, end to end against a real server."""

from __future__ import annotations

import dataclasses
import os
import time

import pytest

from connectors.demo import generate
from lake.errors import LakeError
from pipelines.ingest import load_dataset
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY
from tests.connectors.test_sftp import PASSWORD, host_key, server, user_key  # noqa: F401


def test_an_sftp_source_is_picked_up_landed_and_loaded(server, home, monkeypatch) -> None:  # noqa: F811
    generate(home.root, persons=400)
    local = next((home.drop / "sick_leave").glob("*.csv"))
    remote = server.root / "outbox" / local.name
    remote.write_bytes(local.read_bytes())
    local.unlink()
    old = time.time() - 60  # uploaded a minute ago: settled
    os.utime(remote, (old, old))
    spec = dataclasses.replace(
        spec_by_name("sick_leave"),
        source={
            "type": "sftp",
            "host": "127.0.0.1",
            "port": server.port,
            "username": "vendor",
            "remote_dir": "/outbox",
            "pattern": "*.csv",
            "host_key": server.host_key.get_fingerprint("sha256"),
        },
    )

    with pytest.raises(LakeError, match="SOURCES__SICK_LEAVE__PASSWORD"):
        load_dataset(spec, home, TEST_KEY)  # no credentials: a clear error, nothing loaded
    monkeypatch.setenv("SOURCES__SICK_LEAVE__PASSWORD", PASSWORD)
    [batch] = load_dataset(spec, home, TEST_KEY).batches
    assert batch.status == "loaded" and batch.source_file == local.name
    assert (home.drop / "sick_leave" / local.name).read_bytes() == remote.read_bytes()
    assert load_dataset(spec, home, TEST_KEY).batches == ()  # picked up once, loaded once
