"""Fixtures: a real engine on the real Docker daemon with the real sandbox image.

Two tiers, one folder each. Every test under tests/docker/ is marked ``docker`` by its folder and
uses the Docker engine; tests/unit/ holds the rest, which ``pytest -m "not docker"`` runs with no
Docker engine at all. Helpers that both tiers import live in tests/support/. Every fixture here is
lazy: nothing reaches Docker until a test that asks for ``engine``, ``session`` or a live server
runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker.api.client
import docker.errors
import pytest
import pytest_asyncio

from engine import Engine, Session, Settings

from .support import cluster_services
from .support.servers import LiveServer, ServerThread, serve_live
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


# --- the shared state on PostgreSQL and S3 (tests/support/cluster_services.py) ---


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for the run, dropped after."""
    try:
        with cluster_services.throwaway_database() as url:
            yield url
    except cluster_services.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.cluster)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The store's two backends: "" (SQLite in the data folder) and PostgreSQL (a fresh schema
    of the run's throwaway database per test)."""
    if request.param == "sqlite":
        yield ""
        return
    with cluster_services.throwaway_schema(request.getfixturevalue("postgres_database")) as url:
        yield url


@pytest.fixture(scope="session")
def s3_bucket() -> Iterator[tuple[cluster_services.S3, str]]:
    """A SeaweedFS of the run's own (loopback only) and a throwaway bucket on it."""
    try:
        with cluster_services.seaweedfs() as s3, cluster_services.throwaway_bucket(s3) as bucket:
            yield s3, bucket
    except cluster_services.Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.cluster)])
def files_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The blob stores: "" (the data folder) and S3 (a prefix of its own in the run's bucket,
    reached through the standard AWS settings)."""
    if request.param == "local":
        return ""
    s3, bucket = request.getfixturevalue("s3_bucket")
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return f"s3://{bucket}/{request.node.name.replace('[', '-').rstrip(']')[:40]}-{id(request)}"
