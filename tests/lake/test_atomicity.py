"""lake.atomicity: stores that cannot commit Delta versions atomically (network shares,
unreadable paths, S3 without conditional PUT, unreachable or misconfigured Azure) are
refused at the start with what to change; the probe retries transient store errors and
signs its requests like the AWS SDK."""

from __future__ import annotations

import datetime as dt
import os

import polars as pl
import pytest
from deltalake import write_deltalake

from lake import atomicity, storage
from lake.errors import ConfigError
from lake.home import Home
from lake.landing import land
from tests.lake import objectstores
from tests.lake.commit_faults import ambiguous_commit_proxy

MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/sda1 / ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev 0 0
fileserver:/export/data /mnt/data nfs4 rw,relatime,vers=4.2 0 0
/dev/sdb1 /mnt/data/scratch xfs rw,relatime 0 0
//nas/kommune /mnt/kommune\\040share cifs rw,relatime,vers=3.0 0 0
user@vendor:/drop /home/etl/vendor fuse.sshfs rw,nosuid,nodev 0 0
"""


@pytest.mark.parametrize(
    ("path", "fs_type"),
    [
        ("/mnt/data/lake", "nfs4"),
        ("/mnt/kommune share/lake", "cifs"),
        ("/home/etl/vendor/lake", "fuse.sshfs"),
        ("/mnt/data/scratch/lake", None),  # a local disk mounted inside the share
        ("/srv/lake", None),
        ("/tmp/lake", None),
    ],
)
def test_network_shares_are_found_from_the_mount_table(path: str, fs_type: str | None) -> None:
    share = atomicity.network_share(path, MOUNTS)
    assert (share.fs_type if share else None) == fs_type


def test_a_lake_on_a_network_share_is_refused_with_what_to_change() -> None:
    with pytest.raises(ConfigError) as error:
        atomicity.require_atomic("/mnt/data/kommune/lake", mounts_text=MOUNTS)
    message = str(error.value)
    assert "nfs4 fileserver:/export/data mounted at /mnt/data" in message
    assert "KOMMUNELAKE_HOME on a local disk" in message
    assert "KOMMUNELAKE_LAKE_URI" in message
    atomicity.require_atomic("/srv/kommune/lake", mounts_text=MOUNTS)


@pytest.mark.parametrize("path", ["/srv/Demo Kommune/lake", "/home/søren/lake", "/srv/lake#2"])
def test_a_local_lake_whose_path_readers_cannot_open_is_refused_at_the_start(path) -> None:
    # deltalake percent-encodes these characters in the file URIs it hands polars, which then
    # cannot find the files: the first load failed with a FileNotFoundError on the manifest.
    with pytest.raises(ConfigError) as error:
        atomicity.require_atomic(path, mounts_text=MOUNTS)
    message = str(error.value)
    assert path in message and "KOMMUNELAKE_HOME" in message


def test_a_lake_in_a_path_with_a_space_cannot_be_read_back(tmp_path) -> None:
    # why the path is refused: if this starts passing, the refusal can go
    uri = str(tmp_path / "Demo Kommune" / "t")
    write_deltalake(uri, pl.DataFrame({"a": [1]}).to_arrow())
    with pytest.raises(FileNotFoundError):
        pl.read_delta(uri)


def test_an_azure_lake_without_an_account_is_refused_at_the_start(monkeypatch) -> None:
    # deltalake only says "Generic MicrosoftAzure error: Account must be specified", deep in
    # the first read, which the CLI shows as an internal error
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)
    monkeypatch.delenv("AZURE_STORAGE_USE_EMULATOR", raising=False)
    with pytest.raises(ConfigError, match="set AZURE_STORAGE_ACCOUNT_NAME or use abfss://"):
        atomicity.require_atomic("az://lake/prod")
    # with an account, the next check is access (see the Azurite test below), not the account
    closed = f"http://127.0.0.1:{objectstores.free_port()}"
    monkeypatch.setenv("AZURE_STORAGE_ENDPOINT", closed)
    monkeypatch.setenv("AZURE_ALLOW_HTTP", "true")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", objectstores.EMULATOR_KEY)
    with pytest.raises(ConfigError, match="cannot reach it"):
        atomicity.require_atomic("abfss://lake@aarhusdata.dfs.core.windows.net/prod")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "aarhusdata")
    with pytest.raises(ConfigError, match="cannot reach it"):
        atomicity.require_atomic("az://lake/prod")


@pytest.mark.parametrize(
    ("mistake", "says"),
    [
        ("none", None),
        ("missing container", "container 'nope' not found: create it first"),
        ("wrong key", "Azure refused the credentials"),
        # no key, token or secret: the managed identity is tried, and there is none here
        ("no credentials", "no Azure credential worked"),
        # object_store's own words for these point at neither the variable nor the value
        ("key not base64", "AZURE_STORAGE_ACCOUNT_KEY is not an account key"),
        ("http not allowed", "the endpoint {url} is plain http, which is refused unless "),
        # Azurite's path-style endpoint: the container would be taken for the account
        ("endpoint without the account", "container '{container}' not found at {url}: "),
        # the emulator's address is AZURITE_BLOB_STORAGE_URL, not AZURE_STORAGE_ENDPOINT
        ("emulator elsewhere", "cannot reach the emulator at {closed}: set AZURITE_BLOB_"),
    ],
)
def test_azure_access_mistakes_are_one_line_at_the_start(
    azurite, monkeypatch, mistake, says
) -> None:
    # deltalake fails on them deep in the first table read, which the CLI can only show as
    # an internal error with a colour-coded cause chain
    for name in [n for n in os.environ if n.startswith("AZURE")]:
        monkeypatch.delenv(name)
    env = {
        "AZURE_STORAGE_ACCOUNT_NAME": "devstoreaccount1",
        "AZURE_STORAGE_ENDPOINT": f"{azurite.url}/devstoreaccount1",
        "AZURE_ALLOW_HTTP": "true",
        "AZURE_STORAGE_ACCOUNT_KEY": objectstores.EMULATOR_KEY,
    }
    if mistake == "wrong key":
        env["AZURE_STORAGE_ACCOUNT_KEY"] = "d3Jvbmc="
    if mistake == "no credentials":
        del env["AZURE_STORAGE_ACCOUNT_KEY"]
        env["AZURE_MSI_ENDPOINT"] = f"http://127.0.0.1:{objectstores.free_port()}/token"
    if mistake == "key not base64":
        env["AZURE_STORAGE_ACCOUNT_KEY"] = "pasted with a space"
    if mistake == "http not allowed":
        del env["AZURE_ALLOW_HTTP"]
    if mistake == "endpoint without the account":
        env["AZURE_STORAGE_ENDPOINT"] = azurite.url
    closed = f"http://127.0.0.1:{objectstores.free_port()}"
    if mistake == "emulator elsewhere":
        env |= {"AZURE_STORAGE_USE_EMULATOR": "true", "AZURITE_BLOB_STORAGE_URL": closed}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(atomicity, "_checked", set())  # probed once per process otherwise
    container = "nope" if mistake == "missing container" else objectstores.create_container(azurite)

    uri = f"az://{container}/lake"
    # The probe itself: `require_atomic` refuses the path-style endpoint before it (below).
    if says is None:
        atomicity.probe_azure_access(uri, storage.storage_options(uri))
        return
    with pytest.raises(ConfigError) as error:
        atomicity.probe_azure_access(uri, storage.storage_options(uri))
    message = str(error.value)
    says = says.format(container=container, url=azurite.url, closed=closed)
    assert message.startswith(f"Azure lake at az://{container}/lake: {says}")
    assert "\x1b" not in message and "\n" not in message and "<?xml" not in message
    assert objectstores.EMULATOR_KEY not in message


def test_this_machines_temporary_directory_is_accepted(tmp_path) -> None:
    Home(tmp_path).require_atomic()  # reads the real /proc/self/mounts


def test_s3_without_conditional_put_is_refused(tmp_path, monkeypatch) -> None:
    # A careless S3 (see objectstores) accepts every PUT, If-None-Match or not, as S3-like
    # services did before conditional writes. (Delta commits there "work": the harm only
    # shows when two writers race for one version, which cannot be staged deterministically,
    # since deltalake re-reads the log just before each commit.)
    with objectstores.careless_s3() as server:
        for name, value in objectstores.s3_environment(server).items():
            monkeypatch.setenv(name, value)
        home = Home(tmp_path, "s3://careless/lake")
        with pytest.raises(ConfigError) as error:
            home.require_atomic()
        message = str(error.value)
        assert "ignores conditional PUT (If-None-Match: *)" in message
        assert "unsetting KOMMUNELAKE_LAKE_URI" in message
        with pytest.raises(ConfigError, match="conditional PUT"):  # not cached as good
            land(
                home.landing_uri,
                home.manifest_uri,
                dataset="d",
                source="drop",
                data=b"x",
                original_name="x.csv",
                media_type="text/csv",
            )


def test_unreachable_s3_says_what_to_check(tmp_path, monkeypatch) -> None:
    server = objectstores.Server(f"http://127.0.0.1:{objectstores.free_port()}")
    for name, value in objectstores.s3_environment(server).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=r"cannot reach.*check AWS_ENDPOINT_URL"):
        atomicity.require_atomic("s3://nowhere/lake")


def test_a_missing_bucket_is_named(moto, monkeypatch) -> None:
    for name, value in objectstores.s3_environment(moto).items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket' not found"):
        atomicity.require_atomic("s3://no-such-bucket/lake")


@pytest.fixture(scope="module")
def faulty_s3(moto, tmp_path_factory):
    with ambiguous_commit_proxy(moto.url, tmp_path_factory.mktemp("proxy")) as proxy:
        yield proxy


# A 503 SlowDown is answered without storing; the others after S3 stored the object.
@pytest.mark.parametrize("how", ["503", "500", "drop"])
def test_a_store_error_during_the_conditional_put_probe_is_tried_again(
    how, faulty_s3, moto, monkeypatch
) -> None:
    # S3 throttles and fails now and then; one such answer to the probe every command runs
    # first must not refuse the lake, least of all as a service without conditional PUT.
    monkeypatch.setattr(atomicity, "PROBE_RETRY_DELAYS", (0.05, 0.05))
    for name, value in objectstores.s3_environment(faulty_s3).items():
        monkeypatch.setenv(name, value)
    bucket = objectstores.create_bucket(moto)
    faulty_s3.arm(f"{bucket}/", how, entries="/_atomic_probe/")
    atomicity.require_atomic(f"s3://{bucket}/lake")
    assert any(key.startswith(f"{bucket}/lake/_atomic_probe/") for key in faulty_s3.injected())
    assert objectstores.s3_keys(moto, bucket) == []  # every probe object removed


def test_a_store_that_keeps_failing_the_probe_says_so(faulty_s3, moto, monkeypatch) -> None:
    monkeypatch.setattr(atomicity, "PROBE_RETRY_DELAYS", (0.05, 0.05))
    for name, value in objectstores.s3_environment(faulty_s3).items():
        monkeypatch.setenv(name, value)
    bucket = objectstores.create_bucket(moto)
    for _ in range(len(atomicity.PROBE_RETRY_DELAYS) + 1):
        faulty_s3.arm(f"{bucket}/", "503", entries="/_atomic_probe/")
    with pytest.raises(ConfigError) as error:
        atomicity.require_atomic(f"s3://{bucket}/lake")
    message = str(error.value)
    assert "HTTP 503" in message and "again later" in message
    assert "conditional PUT" not in message  # not the diagnosis of a careless service


def test_the_probe_signs_like_the_aws_sdk() -> None:
    # The probe signs its two PUTs itself (no SDK at run time); botocore is the reference.
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    now = dt.datetime(2026, 11, 5, 12, 30, 0, tzinfo=dt.UTC)
    options = {
        "aws_access_key_id": "AKIDEXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "aws_session_token": "token-from-sts",
        "aws_region": "eu-north-1",
        "aws_endpoint_url": "http://127.0.0.1:9000",
    }
    signer = atomicity._S3Signer.from_options(options, "kommune-lake")
    url = signer.object_url("a prefix/ünicode/_atomic_probe/x")
    assert url == "http://127.0.0.1:9000/kommune-lake/a%20prefix/%C3%BCnicode/_atomic_probe/x"
    ours = signer.headers("PUT", url, b"kommunelake", {"If-None-Match": "*"}, now=now)

    request = AWSRequest("PUT", url, data=b"kommunelake", headers={"If-None-Match": "*"})
    request.context["timestamp"] = now.strftime("%Y%m%dT%H%M%SZ")
    request.headers["X-Amz-Content-SHA256"] = ours["x-amz-content-sha256"]
    credentials = Credentials(
        options["aws_access_key_id"],
        options["aws_secret_access_key"],
        options["aws_session_token"],
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda: now.replace(tzinfo=None))
        S3SigV4Auth(credentials, "s3", "eu-north-1").add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]

    aws = atomicity._S3Signer.from_options({**options, "aws_endpoint_url": ""}, "kommune-lake")
    assert aws.object_url("k") == "https://kommune-lake.s3.eu-north-1.amazonaws.com/k"


@pytest.mark.parametrize("setting", ["variable", "connection string"])
def test_an_endpoint_with_the_account_in_its_path_is_refused_at_the_start(
    azurite, tmp_path, monkeypatch, setting
):
    # Azurite addressed as http://host/account: the probe and a table's first commit pass,
    # then every table failed at its second version ("Invalid table version: 1").
    for name in [n for n in os.environ if n.startswith("AZURE")]:
        monkeypatch.delenv(name)
    path_style = f"{azurite.url}/{storage.EMULATOR_ACCOUNT}"
    if setting == "variable":
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", storage.EMULATOR_ACCOUNT)
        monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", objectstores.EMULATOR_KEY)
        monkeypatch.setenv("AZURE_STORAGE_ENDPOINT", path_style)
        monkeypatch.setenv("AZURE_ALLOW_HTTP", "true")
    else:
        monkeypatch.setenv(
            "AZURE_STORAGE_CONNECTION_STRING",
            f"DefaultEndpointsProtocol=http;AccountName={storage.EMULATOR_ACCOUNT};"
            f"AccountKey={objectstores.EMULATOR_KEY};BlobEndpoint={path_style};",
        )
    monkeypatch.setattr(atomicity, "_checked", set())
    container = objectstores.create_container(azurite)

    with pytest.raises(ConfigError) as error:
        Home(tmp_path / "home", f"az://{container}/kommune").require_atomic()

    message = str(error.value)
    assert f"the endpoint {path_style} has a path" in message
    assert f"AZURE_STORAGE_USE_EMULATOR=true and AZURITE_BLOB_STORAGE_URL={azurite.url}" in message
    assert objectstores.EMULATOR_KEY not in message
