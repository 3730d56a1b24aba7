"""SFTP pickup against a real asyncssh SFTP server on 127.0.0.1, run in a background thread.

The server serves a temporary folder as its root (chroot), has a freshly generated host key,
and knows a password user and a key user.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest

from connectors import sftp as sftp_module
from connectors.sftp import SftpError, SftpSource, from_settings, pull

PASSWORD = "s3cret-Pa55word!"
OLD = time.time() - 3600  # mtime of settled remote files


@pytest.fixture(scope="module")
def host_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def user_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


class _Auth(asyncssh.SSHServer):
    def __init__(
        self, authorized: asyncssh.SSHAuthorizedKeys, live: set[asyncssh.SSHServerConnection]
    ) -> None:
        self._authorized = authorized
        self._live = live
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._live.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self._conn)  # type: ignore[arg-type]

    def begin_auth(self, username: str) -> bool:
        if username == "keyuser" and self._conn is not None:
            self._conn.set_authorized_keys(self._authorized)
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "vendor" and password == PASSWORD


class Server:
    """An asyncssh SFTP server on 127.0.0.1 with its own event loop in a thread."""

    def __init__(self, root: Path, host_key: asyncssh.SSHKey, user_key: asyncssh.SSHKey) -> None:
        self.root = root
        self.host_key = host_key
        self._authorized = asyncssh.import_authorized_keys(user_key.export_public_key().decode())
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sftp-server", daemon=True)

    def __enter__(self) -> Server:
        self._thread.start()
        if not self._ready.wait(10) or self._error:
            raise RuntimeError(f"SFTP test server did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "SFTP test server did not stop"

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())  # cancels leftover tasks and closes the loop
        except BaseException as error:  # surfaced by __enter__
            self._error = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        root = os.fsencode(self.root)
        acceptor = await asyncssh.listen(
            "127.0.0.1",
            0,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Auth(self._authorized, self._connections),
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root),
            allow_scp=False,
        )
        self.port = acceptor.get_port()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            acceptor.close()
            await acceptor.wait_closed()
            for conn in list(self._connections):
                conn.close()
                await conn.wait_closed()

    def known_hosts_line(self, key: asyncssh.SSHKey | None = None) -> str:
        public = (key or self.host_key).export_public_key().decode().strip()
        return f"[127.0.0.1]:{self.port} {public}\n"

    def put(self, relative: str, data: bytes, mtime: float = OLD) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
        return path


@pytest.fixture
def server(
    tmp_path: Path, host_key: asyncssh.SSHKey, user_key: asyncssh.SSHKey
) -> Iterator[Server]:
    root = tmp_path / "remote"
    (root / "outbox").mkdir(parents=True)
    with Server(root, host_key, user_key) as running:
        yield running


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "home" / "drop" / "sick_leave"


def source(server: Server, **overrides: object) -> SftpSource:
    settings: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "username": "vendor",
        "password": PASSWORD,
        "remote_dir": "/outbox",
        "pattern": "*.csv",
        "host_key": server.host_key.get_fingerprint("sha256"),
        "connect_timeout": 5,
        "io_timeout": 5,
    }
    settings.update(overrides)
    return SftpSource(**settings)  # type: ignore[arg-type]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_pulls_matching_regular_files_with_their_bytes_and_mtime(server: Server, target: Path):
    server.put("outbox/a.csv", b"id;x\n1;2\n")
    server.put("outbox/UPPER.CSV", b"id;x\n3;4\n")
    server.put("outbox/readme.txt", b"not an export")
    server.put("outbox/.hidden.csv", b"hidden")
    server.put("outbox/upload.csv.part", b"half")
    server.put("outbox/dir.csv/inner.csv", b"in a sub-folder")
    (server.root / "outbox" / "link.csv").symlink_to("a.csv")

    got = pull(source(server), target)

    assert sorted(p.name for p in got) == ["UPPER.CSV", "a.csv"]
    assert sorted(p.name for p in target.iterdir()) == ["UPPER.CSV", "a.csv"]
    assert (target / "a.csv").read_bytes() == b"id;x\n1;2\n"
    assert (target / "UPPER.CSV").read_bytes() == b"id;x\n3;4\n"
    assert int((target / "a.csv").stat().st_mtime) == int(OLD)
    assert (server.root / "outbox" / "a.csv").exists()  # delete_after defaults to keep


def test_second_pull_downloads_nothing_but_a_changed_file_again(server: Server, target: Path):
    server.put("outbox/a.csv", b"one")
    assert [p.name for p in pull(source(server), target)] == ["a.csv"]
    assert pull(source(server), target) == []

    server.put("outbox/a.csv", b"one, re-exported", mtime=OLD + 60)
    assert [p.name for p in pull(source(server), target)] == ["a.csv"]
    assert (target / "a.csv").read_bytes() == b"one, re-exported"


def test_recently_modified_file_is_left_until_it_settles(server: Server, target: Path):
    written = time.time()
    server.put("outbox/fresh.csv", b"still uploading?", mtime=written)
    src = source(server, settle_seconds=10, delete_after=True)

    assert pull(src, target, now=written + 3) == []
    assert not target.joinpath("fresh.csv").exists()
    assert (server.root / "outbox" / "fresh.csv").exists()  # not settled: not deleted either

    assert [p.name for p in pull(src, target, now=written + 11)] == ["fresh.csv"]


def test_delete_after_removes_remote_files_after_a_good_download(server: Server, target: Path):
    server.put("outbox/a.csv", b"a" * 3_000_000)  # several read blocks
    server.put("outbox/b.csv", b"b")
    server.put("outbox/keep.txt", b"not matched")

    got = pull(source(server, delete_after=True), target)

    assert sorted(p.name for p in got) == ["a.csv", "b.csv"]
    assert (target / "a.csv").read_bytes() == b"a" * 3_000_000
    assert sorted(p.name for p in (server.root / "outbox").iterdir()) == ["keep.txt"]


def test_a_file_the_server_will_not_delete_does_not_stop_the_others(
    server: Server, target: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """delete_after on a file the vendor's user may not remove (owned by another account):
    the refusal ended the whole pickup, and as the file stays on the server it did so on
    every tick, so files listed after it never arrived."""
    server.put("outbox/a.csv", b"locked")
    server.put("outbox/b.csv", b"fine")
    real_remove = asyncssh.SFTPClient.remove

    async def refuses_a(self: asyncssh.SFTPClient, path: str) -> None:  # type: ignore[no-untyped-def]
        if path.endswith("/a.csv"):
            raise asyncssh.SFTPPermissionDenied("Permission denied")
        await real_remove(self, path)

    monkeypatch.setattr(asyncssh.SFTPClient, "remove", refuses_a)
    with caplog.at_level("WARNING", logger="connectors.sftp"):
        got = pull(source(server, delete_after=True), target)

    assert sorted(p.name for p in got) == ["a.csv", "b.csv"]
    assert sorted(p.name for p in (server.root / "outbox").iterdir()) == ["a.csv"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "Permission denied deleting '/outbox/a.csv'" in warning and "delete rights" in warning
    assert pull(source(server, delete_after=True), target) == []  # fetched once, still there


def test_failed_download_keeps_the_remote_file_and_leaves_no_temp_file(
    server: Server, target: Path, monkeypatch: pytest.MonkeyPatch
):
    server.put("outbox/a.csv", b"payload")

    def broken_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sftp_module.os, "replace", broken_replace)
    with pytest.raises(SftpError, match="No space left on device") as caught:
        pull(source(server, delete_after=True), target)

    assert "\n" not in str(caught.value)
    assert (server.root / "outbox" / "a.csv").exists()
    assert list(target.iterdir()) == []


def test_changed_while_downloading_is_skipped_and_not_deleted(
    server: Server, target: Path, monkeypatch: pytest.MonkeyPatch
):
    server.put("outbox/a.csv", b"complete")
    real_readdir = asyncssh.SFTPClient.readdir

    async def grows_after_listing(self: asyncssh.SFTPClient, path: str):  # type: ignore[no-untyped-def]
        names = await real_readdir(self, path)
        server.put("outbox/a.csv", b"complete plus more bytes")
        return names

    monkeypatch.setattr(asyncssh.SFTPClient, "readdir", grows_after_listing)
    assert pull(source(server, delete_after=True), target) == []
    assert (server.root / "outbox" / "a.csv").exists()
    assert leftovers(target) == []
    assert list(target.iterdir()) == []


def test_key_user_with_key_file_or_key_text_and_known_hosts(
    server: Server, target: Path, tmp_path: Path, user_key: asyncssh.SSHKey
):
    server.put("outbox/a.csv", b"by key")
    key_file = tmp_path / "id_ed25519"
    key_file.write_bytes(user_key.export_private_key())
    known = tmp_path / "known_hosts"
    known.write_text(server.known_hosts_line())
    by_path = source(
        server,
        username="keyuser",
        password=None,
        private_key=str(key_file),
        host_key=None,
        known_hosts=str(known),
    )
    assert [p.name for p in pull(by_path, target)] == ["a.csv"]

    other = tmp_path / "other"
    by_text = source(
        server,
        username="keyuser",
        password=None,
        private_key=user_key.export_private_key().decode(),
    )
    assert [p.name for p in pull(by_text, other)] == ["a.csv"]


def test_wrong_password_is_a_clear_error_without_the_password(server: Server, target: Path):
    wrong = "Wr0ng-Secret-Value"
    with pytest.raises(SftpError) as caught:
        pull(source(server, password=wrong), target)
    message = str(caught.value)
    assert "127.0.0.1" in message and "login refused" in message and "'vendor'" in message
    assert wrong not in message and PASSWORD not in message and "\n" not in message
    assert wrong not in repr(source(server, password=wrong))


def test_host_key_not_in_known_hosts_is_refused(server: Server, target: Path, tmp_path: Path):
    server.put("outbox/a.csv", b"x")
    known = tmp_path / "known_hosts"
    impostor = asyncssh.generate_private_key("ssh-ed25519")
    known.write_text(server.known_hosts_line(impostor))
    with pytest.raises(SftpError) as caught:
        pull(source(server, host_key=None, known_hosts=str(known)), target)
    message = str(caught.value)
    assert "host key not trusted" in message
    assert server.host_key.get_fingerprint("sha256") in message  # what the server offered
    assert PASSWORD not in message
    assert not target.exists() or list(target.iterdir()) == []


def test_wrong_pinned_fingerprint_is_refused(server: Server, target: Path):
    other = asyncssh.generate_private_key("ssh-ed25519").get_fingerprint("sha256")
    with pytest.raises(SftpError, match="host key not trusted"):
        pull(source(server, host_key=other), target)


def test_missing_known_hosts_file_and_no_host_key_are_refused(
    server: Server, target: Path, tmp_path: Path
):
    with pytest.raises(SftpError, match=r"known_hosts file .* not found"):
        pull(source(server, host_key=None, known_hosts=str(tmp_path / "nope")), target)
    with pytest.raises(SftpError, match="never accepted"):
        pull(source(server, host_key=None), target)


def test_accept_any_host_key_is_for_tests(server: Server, target: Path):
    server.put("outbox/a.csv", b"x")
    assert len(pull(source(server, host_key=None, accept_any_host_key=True), target)) == 1


def test_closed_port_is_a_clear_error(target: Path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = SftpSource(
        host="127.0.0.1",
        port=port,
        username="vendor",
        password=PASSWORD,
        remote_dir="/outbox",
        host_key="SHA256:" + "A" * 43,
        connect_timeout=2,
    )
    with pytest.raises(SftpError) as caught:
        pull(src, target)
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "refused" in message
    assert PASSWORD not in message


def test_silent_server_times_out(target: Path):
    with socket.socket() as silent:  # accepts TCP but never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        src = SftpSource(
            host="127.0.0.1",
            port=port,
            username="vendor",
            password=PASSWORD,
            remote_dir="/outbox",
            host_key="SHA256:" + "A" * 43,
            connect_timeout=0.5,
        )
        started = time.monotonic()
        with pytest.raises(SftpError, match=r"timed out after 0.5s while connecting"):
            pull(src, target)
        assert time.monotonic() - started < 5


def test_missing_remote_dir_is_a_clear_error(server: Server, target: Path):
    with pytest.raises(SftpError) as caught:
        pull(source(server, remote_dir="/no/such/dir"), target)
    message = str(caught.value)
    assert "remote folder '/no/such/dir' does not exist" in message
    assert "remote_dir" in message and PASSWORD not in message


def test_works_from_a_thread_and_from_inside_an_event_loop(server: Server, target: Path):
    server.put("outbox/a.csv", b"x")
    result: list[list[Path]] = []
    worker = threading.Thread(target=lambda: result.append(pull(source(server), target)))
    worker.start()
    worker.join(20)
    assert [p.name for p in result[0]] == ["a.csv"]

    async def inside_a_loop() -> list[Path]:
        return pull(source(server), target.parent / "other")

    assert [p.name for p in asyncio.run(inside_a_loop())] == ["a.csv"]


# from_settings


BLOCK = {
    "type": "sftp",
    "host": "sftp.vendor.example",
    "port": 2222,
    "username": "kommune",
    "remote_dir": "/out",
    "pattern": "*.csv",
    "known_hosts": "/etc/kommunelake/known_hosts",
    "delete_after": True,
}


def test_from_settings_reads_secrets_only_from_env():
    env = {
        "SOURCES__SICK_LEAVE__PASSWORD": "from-env",
        "SOURCES__OTHER__PRIVATE_KEY": "/not/mine",
    }
    src = from_settings("sick_leave", BLOCK, env)
    assert (src.host, src.port, src.username, src.remote_dir) == (
        "sftp.vendor.example",
        2222,
        "kommune",
        "/out",
    )
    assert src.password == "from-env" and src.private_key is None
    assert src.delete_after is True and src.known_hosts == "/etc/kommunelake/known_hosts"
    assert src.settle_seconds == 10 and src.accept_any_host_key is False
    assert "from-env" not in repr(src)

    by_key = from_settings("sick_leave", BLOCK, {"SOURCES__SICK_LEAVE__PRIVATE_KEY": "/k"})
    assert by_key.private_key == "/k" and by_key.password is None


def test_from_settings_refuses_a_password_in_the_yaml():
    with pytest.raises(ValueError, match="SOURCES__SICK_LEAVE__PASSWORD") as caught:
        from_settings("sick_leave", {**BLOCK, "password": "oops-in-yaml"}, {})
    assert "oops-in-yaml" not in str(caught.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"host": None}, "missing required key 'host'"),
        ({"remote_dir": ""}, "missing required key 'remote_dir'"),
        ({"known_hosts": None}, "missing required key 'known_hosts'"),
        ({"type": "files"}, "type must be 'sftp'"),
        ({"known_host": "/typo"}, "unknown key"),
        ({"accept_any_host_key": True}, "unknown key"),
        ({"delete_after": "yes"}, "delete_after must be true or false"),
    ],
)
def test_from_settings_errors_name_the_key(change: dict, expected: str):
    block = {k: v for k, v in {**BLOCK, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=expected) as caught:
        from_settings("sick_leave", block, {"SOURCES__SICK_LEAVE__PASSWORD": "p"})
    assert "\n" not in str(caught.value) and "sick_leave" in str(caught.value)


def test_from_settings_needs_credentials_in_env():
    with pytest.raises(ValueError, match="SOURCES__SICK_LEAVE__PASSWORD or"):
        from_settings("sick_leave", BLOCK, {})


def test_a_file_fetched_once_is_not_fetched_again_when_its_copy_is_gone(
    server: Server, target: Path, tmp_path: Path
):
    # Rejected (moved to rejected/) or deleted here while it stays on the server: without a
    # record of what was fetched, every pickup brought it back and rejected it again.
    record = tmp_path / "cache" / "sftp.json"
    server.put("outbox/bad.csv", b"broken export")
    assert [p.name for p in pull(source(server), target, record=record)] == ["bad.csv"]
    (target / "bad.csv").unlink()
    assert pull(source(server), target, record=record) == []
    assert not (target / "bad.csv").exists()

    server.put("outbox/bad.csv", b"corrected export", mtime=OLD + 60)  # a new delivery
    assert [p.name for p in pull(source(server), target, record=record)] == ["bad.csv"]
    assert (target / "bad.csv").read_bytes() == b"corrected export"


def test_a_name_at_the_file_system_limit_is_fetched_with_the_others(server: Server, target: Path):
    """The download's temp file is named `.<name>.<random>.part`: for a name near 255 bytes
    that name was too long, and the error ended the whole pickup, on every tick, so the
    vendor's other files never arrived either."""
    long = "x" * 251 + ".csv"
    server.put(f"outbox/{long}", b"id;x\n1;2\n")
    server.put("outbox/b.csv", b"id;x\n3;4\n")

    got = pull(source(server), target)

    assert sorted(p.name for p in got) == ["b.csv", long]
    assert (target / long).read_bytes() == b"id;x\n1;2\n"
    assert leftovers(target) == []
