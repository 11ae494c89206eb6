"""PostgreSQL and S3 (SeaweedFS) for the tests of the shared state: a throwaway database on the
machine's PostgreSQL (Debian's, started with ``pg_ctlcluster`` if it is down) and a throwaway
bucket on a ``weed mini`` of the test run's own, bound to 127.0.0.1 (it opens an
unauthenticated admin port), both removed afterwards. scripts/setup installs both.

Run as a script, it starts both and prints the settings that point an engine at them, until
Ctrl-C or SIGTERM: ``python3 -m tests.support.cluster_services``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

STARTUP_TIMEOUT_S = 60.0


class Unavailable(Exception):
    """A service the cluster tests need is not installed or cannot be started here."""


def _psql(sql: str) -> str:
    """Run ``sql`` as the database superuser (root runs it as the ``postgres`` user)."""
    if os.geteuid() != 0:
        raise Unavailable("making a throwaway PostgreSQL database needs root (runuser postgres)")
    command = ["runuser", "-u", "postgres", "--", "psql", "-XAtq", "-v", "ON_ERROR_STOP=1"]
    done = subprocess.run(
        [*command, "-c", sql], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise Unavailable(f"psql failed: {done.stderr.strip()}")
    return done.stdout


def ensure_postgres() -> int:
    """Start the machine's first PostgreSQL cluster when it is down; its port."""
    if shutil.which("pg_ctlcluster") is None:
        raise Unavailable("PostgreSQL is not installed (scripts/setup installs it)")
    listed = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    if not listed.stdout.strip():
        raise Unavailable("PostgreSQL has no cluster (pg_createcluster makes one)")
    version, name, _port, status = listed.stdout.split()[:4]
    if status != "online":
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True, timeout=60)
    return int(_psql("SHOW port").strip())


@contextmanager
def throwaway_database() -> Iterator[str]:
    """A new role and database of their own; their ``postgresql://`` URL, dropped after."""
    port = ensure_postgres()
    name = "sandbox_test_" + secrets.token_hex(6)
    password = secrets.token_hex(16)
    _psql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
    try:
        _psql(f"CREATE DATABASE {name} OWNER {name}")
        try:
            yield f"postgresql://{name}:{password}@127.0.0.1:{port}/{name}"
        finally:
            _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        _psql(f"DROP ROLE IF EXISTS {name}")


def with_schema(url: str, schema: str) -> str:
    """``url`` with its tables in ``schema`` (the search path of every connection)."""
    return f"{url}?options=-csearch_path%3D{schema}"


@contextmanager
def throwaway_schema(url: str) -> Iterator[str]:
    """A fresh, empty schema in the database ``url`` names: the URL that uses it."""
    import psycopg

    schema = "t_" + secrets.token_hex(6)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")  # type: ignore[arg-type]
    try:
        yield with_schema(url, schema)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


@dataclass(frozen=True)
class S3:
    """A running S3 endpoint and the credentials it accepts."""

    endpoint: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The standard AWS settings that point a client at it."""
        return {
            "AWS_ENDPOINT_URL_S3": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }


def _free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ports() -> dict[str, int]:
    """Ports of our own for every server ``weed mini`` runs (its defaults may be taken)."""
    names = ("master.port", "volume.port", "filer.port", "s3.port", "admin.port")
    while True:
        ports = {name: _free_port() for name in names}
        # weed listens for gRPC on each port + 10000 too.
        if all(p + 10000 < 65536 for p in ports.values()) and len(set(ports.values())) == 5:
            return ports


def _s3_config(path: Path, access_key: str, secret_key: str) -> None:
    identity = {
        "name": "tests",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    path.write_text(json.dumps({"identities": [identity]}))


@contextmanager
def seaweedfs() -> Iterator[S3]:
    """``weed mini`` in a temporary folder, on loopback only, with credentials of its own."""
    weed = shutil.which("weed")
    if weed is None:
        raise Unavailable("SeaweedFS's weed is not installed (scripts/setup installs it)")
    folder = Path(tempfile.mkdtemp(prefix="sandbox-s3-"))
    access_key, secret_key = "test" + secrets.token_hex(8), secrets.token_hex(20)
    _s3_config(folder / "s3.json", access_key, secret_key)
    ports = _ports()
    data = folder / "data"
    data.mkdir()
    command = [
        weed,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        # What the tests do not use stays closed, so that two runs never fight for a port.
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={folder / 's3.json'}",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    log = (folder / "weed.log").open("wb")
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True
    )
    s3 = S3(f"http://127.0.0.1:{ports['s3.port']}", access_key, secret_key)
    try:
        _wait_for_s3(s3, process, folder / "weed.log")
        yield s3
    finally:
        with_suppressed_kill(process)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def with_suppressed_kill(process: subprocess.Popen[bytes]) -> None:
    """Stop ``weed`` and everything it started (its own process group)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def client(s3: S3):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
    )


def _wait_for_s3(s3: S3, process: subprocess.Popen[bytes], log: Path) -> None:
    s3_client = client(s3)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"weed mini exited: {log.read_text()[-2000:]}")
        try:
            s3_client.list_buckets()
            return
        except Exception as exc:  # not up yet; the last error is reported
            last = exc
            time.sleep(0.2)
    raise Unavailable(f"weed mini's S3 did not answer in {STARTUP_TIMEOUT_S:.0f} s: {last}")


@contextmanager
def throwaway_bucket(s3: S3) -> Iterator[str]:
    """A new bucket, emptied and removed after."""
    s3_client = client(s3)
    bucket = "sandbox-test-" + secrets.token_hex(6)
    s3_client.create_bucket(Bucket=bucket)
    try:
        yield bucket
    finally:
        paginator = s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                s3_client.delete_object(Bucket=bucket, Key=item["Key"])
        s3_client.delete_bucket(Bucket=bucket)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    # A shell starts a background job with SIGINT ignored: both signals stop it, cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    with throwaway_database() as url, seaweedfs() as s3, throwaway_bucket(s3) as bucket:
        print(f"SANDBOX_DATABASE_URL={url}")
        print(f"SANDBOX_FILES_URL=s3://{bucket}/engine")
        for key, value in s3.env().items():
            print(f"{key}={value}")
        print("# Ctrl-C stops them and removes the database and the bucket", flush=True)
        with suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
