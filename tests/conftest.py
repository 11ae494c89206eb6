"""Fixtures: a real engine on the real Docker daemon with the real sandbox image.

Two tiers, one folder each. Every test under tests/docker/ is marked ``docker`` by its folder and
uses the Docker engine; tests/unit/ holds the rest, which ``pytest -m "not docker"`` runs with no
Docker engine at all. Helpers that both tiers import live in tests/support/. Every fixture here is
lazy: nothing reaches Docker until a test that asks for ``engine``, ``session`` or a live server
runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker.api.client
import docker.errors
import pytest
import pytest_asyncio

from engine import Engine, Session, Settings

from .support.strict_skips import pytest_runtest_makereport as pytest_runtest_makereport

DOCKER_FIXTURES = frozenset({"settings", "engine", "session", "live_server"})
"""Fixtures that start engines on Docker (``settings`` is the one ``engine`` runs on)."""

DOCKER_TIER = Path(__file__).parent / "docker"
UNIT_TIER = Path(__file__).parent / "unit"

MISSING_MARKER = (
    "{test} uses Docker ({what}) but is not marked `docker`: move it to tests/docker/, whose "
    'tests the folder marks, so that `pytest -m "not docker"` stays a tier that runs without Docker'
)


# First, so that `-m docker` and `-m "not docker"` see the folder's marker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/docker/ is marked ``docker``; one marked so under tests/unit/ is a
    usage error. Tests that restart the Docker daemon run last: every container dies with it."""
    for item in items:
        if item.path.is_relative_to(DOCKER_TIER):
            item.add_marker(pytest.mark.docker)
        elif item.path.is_relative_to(UNIT_TIER) and item.get_closest_marker("docker"):
            raise pytest.UsageError(f"{item.nodeid} is marked `docker`: move it to tests/docker/")
    items.sort(key=lambda item: item.get_closest_marker("restarts_docker") is not None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that asks for a Docker fixture without the marker fails before the fixture runs."""
    used = DOCKER_FIXTURES.intersection(getattr(item, "fixturenames", ()))
    if used and item.get_closest_marker("docker") is None:
        what = "the " + ", ".join(sorted(used)) + " fixture" + ("s" if len(used) > 1 else "")
        pytest.fail(MISSING_MARKER.format(test=item.nodeid, what=what), pytrace=False)


class DockerNotAllowed(docker.errors.DockerException):
    """Raised by any Docker client created in a test without the ``docker`` marker."""


@pytest.fixture(autouse=True)
def _no_docker_without_marker(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catches what the fixture check cannot see: a test that builds its own Engine or client."""
    if request.node.get_closest_marker("docker") is not None:
        return
    message = MISSING_MARKER.format(test=request.node.nodeid, what="a Docker client")

    def refuse(*args: object, **kwargs: object) -> None:
        raise DockerNotAllowed(message)

    # Every docker-py client (from_env, DockerClient, APIClient) is built by this one constructor.
    monkeypatch.setattr(docker.api.client.APIClient, "__init__", refuse)


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        data_dir=tmp_path_factory.mktemp("engine"), memory_limit_mb=512, shutdown_sandboxes="close"
    )


@pytest_asyncio.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    async with Engine(settings) as engine:
        yield engine


@pytest_asyncio.fixture
async def session(engine: Engine) -> AsyncIterator[Session]:
    session = await engine.session()
    yield session
    await engine.sessions.close(session.id)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data folder for ``serve`` processes (tests/support/serve_process.py); its containers and
    volumes are removed after the test."""
    from .support.serve_process import remove_all

    folder = tmp_path / "engine"
    try:
        yield folder
    finally:
        remove_all(folder)


@contextlib.contextmanager
def small_tmpfs(mount: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of ``size_mb`` at ``mount``, as a data folder whose disk fills up (needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test's own engine; no warm pool unless the test asks for one, and its
    sandboxes removed when it closes unless the test keeps them."""
    overrides = {"pool_size": 0, "pool_min": 0, "shutdown_sandboxes": "close", **overrides}
    return Settings(data_dir=tmp_path / "engine", **overrides)  # type: ignore[arg-type]


class ServerThread:
    """A real uvicorn serving ``app`` on a free loopback port, in a background thread, with the
    connection layer of ``sandbox-engine serve``."""

    def __init__(self, app: Any) -> None:
        import socket
        import threading

        from engine.api.connections import EdgeServer, server_config

        self.app = app
        self._sock = socket.socket()
        # Accepted connections inherit it: without it each request waits ~40 ms on a delayed ACK.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        settings = getattr(getattr(app, "state", None), "settings", None)
        # The connection layer of `serve` (head deadline, connection cap), with its settings.
        self.server = EdgeServer(server_config(app, settings, log_level="warning"))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        import time

        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=60)
        self._sock.close()


class LiveServer(ServerThread):
    """``sandbox-engine serve`` in a background thread: a real uvicorn on a real socket."""

    keys = ("key-a", "key-b")

    def __init__(self, settings: Settings) -> None:
        from engine.api import create_app

        self.settings = settings
        super().__init__(create_app(settings))

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine


@pytest.fixture(scope="session")
def model_server() -> Iterator[ServerThread]:
    """The scripted OpenAI-compatible model (tests/support/model_server.py) on a real socket."""
    from .support.model_server import app

    server = ServerThread(app)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, model_server: ServerThread
) -> Iterator[LiveServer]:
    yield from serve_live(tmp_path_factory, model_server)


def serve_live(
    tmp_path_factory: pytest.TempPathFactory,
    model_server: ServerThread,
    keys: tuple[str, ...] = LiveServer.keys,
) -> Iterator[LiveServer]:
    """A live server with a data folder of its own, ``keys`` (key-a and key-b), the scripted
    model."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("server"),
        api_keys=",".join(keys),
        memory_limit_mb=512,
        llm_base_url=f"{model_server.url}/v1",
        llm_api_key="model-key",
        shutdown_sandboxes="close",
    )
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()
