"""A dataset whose source is a vendor's SFTP server, end to end against a real server."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time

import asyncssh
import dagster as dg
import pytest

from connectors.demo import generate
from lake.errors import LakeError
from pipelines.definitions import build_definitions
from pipelines.delivery import pick_up
from pipelines.drop_sensor import drop_folder_sensor
from pipelines.ingest import load_dataset
from pipelines.resources import LakeResource
from pipelines.specs import spec_by_name
from tests.conftest import TEST_KEY
from tests.connectors.test_sftp import PASSWORD, host_key, server, user_key  # noqa: F401


def _sftp_spec(server):  # noqa: F811
    return dataclasses.replace(
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


def _upload(home, server, name: str | None = None):  # noqa: F811
    """The demo's sick-leave export, moved to the vendor's outbox a minute ago (settled)."""
    generate(home.root, persons=400)
    local = next((home.drop / "sick_leave").glob("*.csv"))
    remote = server.root / "outbox" / (name or local.name)
    remote.write_bytes(local.read_bytes())
    local.unlink()
    old = time.time() - 60
    os.utime(remote, (old, old))
    return local, remote


def test_an_sftp_source_is_picked_up_landed_and_loaded(server, home, monkeypatch) -> None:  # noqa: F811
    local, remote = _upload(home, server)
    spec = _sftp_spec(server)
    with pytest.raises(LakeError, match="SOURCES__SICK_LEAVE__PASSWORD"):
        load_dataset(spec, home, TEST_KEY)  # no credentials: a clear error, nothing loaded
    monkeypatch.setenv("SOURCES__SICK_LEAVE__PASSWORD", PASSWORD)
    [batch] = load_dataset(spec, home, TEST_KEY).batches
    assert batch.status == "loaded" and batch.source_file == local.name
    assert (home.drop / "sick_leave" / local.name).read_bytes() == remote.read_bytes()
    assert load_dataset(spec, home, TEST_KEY).batches == ()  # picked up once, loaded once


def test_a_file_named_after_a_cpr_number_is_not_named_in_logs_or_the_record(
    server,  # noqa: F811
    home,
    monkeypatch,
    caplog,
) -> None:
    cpr = "2512894321"  # synthetic, with a valid date part
    _upload(home, server, name=f"borger_{cpr}.csv")
    monkeypatch.setenv("SOURCES__SICK_LEAVE__PASSWORD", PASSWORD)
    with caplog.at_level(logging.DEBUG):
        [batch] = load_dataset(_sftp_spec(server), home, TEST_KEY).batches
    assert batch.status == "loaded" and batch.source_file == "borger_NNNNNNNNNN.csv"
    assert (home.drop / "sick_leave" / f"borger_{cpr}.csv").exists()  # the sender's name
    # Our own log lines; asyncssh's DEBUG output (off unless someone turns it on) names files.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("asyncssh"))
    assert "fetched borger_NNNNNNNNNN.csv" in ours
    assert cpr not in ours
    assert cpr not in home.sftp_record("sick_leave").read_text()


def test_a_server_gone_after_the_pickup_leaves_the_picked_up_file_to_load(
    server,  # noqa: F811
    home,
    monkeypatch,
    caplog,
) -> None:
    """The sensor's tick picked the file up; the run it started found the server gone (a
    restart, a network blip). The run failed on the pickup, and the file, already in the
    drop folder with its run key used, waited until the vendor sent another one."""
    local, _ = _upload(home, server)
    spec = _sftp_spec(server)
    monkeypatch.setenv("SOURCES__SICK_LEAVE__PASSWORD", PASSWORD)
    assert [p.name for p in pick_up(spec, home)] == [local.name]  # the sensor's tick
    with socket.socket() as probe:  # a port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    gone = dataclasses.replace(spec, source={**spec.source, "port": closed})
    with caplog.at_level(logging.WARNING):
        [batch] = load_dataset(gone, home, TEST_KEY).batches
    assert batch.status == "loaded" and batch.source_file == local.name
    [warning] = [r.getMessage() for r in caplog.records if "SFTP" in r.getMessage()]
    assert f"127.0.0.1:{closed}" in warning and "connection refused" in warning
    assert "Files already in the drop folder are loaded" in warning


def _tick_refusing_deletes(home, spec, monkeypatch, reason):
    """One drop-folder sensor tick whose SFTP server refuses every delete with `reason(path)`."""
    monkeypatch.setenv("SOURCES__SICK_LEAVE__PASSWORD", PASSWORD)

    async def refuses(self, path):
        raise asyncssh.SFTPPermissionDenied(reason(path))

    monkeypatch.setattr(asyncssh.SFTPClient, "remove", refuses)
    sensor = drop_folder_sensor(lambda: [spec], clock=lambda: time.time() + 60)
    with (
        dg.DagsterInstance.ephemeral() as instance,
        dg.build_sensor_context(
            instance=instance,
            definitions=build_definitions(),
            resources={"lake": LakeResource(home=str(home.root), pseudonym_key=TEST_KEY.decode())},
        ) as context,
    ):
        return sensor.evaluate_tick(context)


def test_a_pickup_warning_shows_in_the_sensors_tick_log(server, home, monkeypatch, capsys) -> None:  # noqa: F811
    """The daemon shows a tick's log in the UI from the sensor's own logger only: a pickup's
    warnings (a file the server will not delete, one changed while downloading) went to
    the daemon's stderr alone, where no operator looks."""
    local, _ = _upload(home, server)
    spec = dataclasses.replace(
        _sftp_spec(server), source={**_sftp_spec(server).source, "delete_after": True}
    )
    # the vendor's account may not delete
    result = _tick_refusing_deletes(home, spec, monkeypatch, lambda path: "Permission denied")
    assert [r.tags["kommunelake/file"] for r in result.run_requests] == [local.name]
    err = capsys.readouterr().err
    assert f"WARNING - sick_leave: sftp 127.0.0.1:{server.port}: Permission denied deleting" in err


def test_a_server_reason_naming_a_cpr_is_masked_in_the_tick_log(
    server,  # noqa: F811
    home,
    monkeypatch,
    capsys,
) -> None:
    """A server's refusal may quote the file it refused, and a per-citizen export is named
    after its CPR number: the warning that reaches the tick's log masks it."""
    _upload(home, server, name="borger_0101901234.csv")
    spec = dataclasses.replace(
        _sftp_spec(server), source={**_sftp_spec(server).source, "delete_after": True}
    )
    _tick_refusing_deletes(home, spec, monkeypatch, lambda path: f"Permission denied: {path}")
    err = capsys.readouterr().err
    assert "Permission denied: /outbox/borger_NNNNNNNNNN.csv deleting" in err
    assert "0101901234" not in err
