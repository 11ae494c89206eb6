"""Fixtures: a real engine on the real Docker daemon with the real sandbox image."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from engine import Engine, Session, Settings


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("engine"), memory_limit_mb=512)


@pytest_asyncio.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[Engine]:
    async with Engine(settings) as engine:
        yield engine


@pytest_asyncio.fixture
async def session(engine: Engine) -> AsyncIterator[Session]:
    session = await engine.session()
    yield session
    await engine.sessions.close(session.id)


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test's own engine; no warm pool unless the test asks for one."""
    overrides = {"pool_size": 0, "pool_min": 0, **overrides}
    return Settings(data_dir=tmp_path / "engine", **overrides)  # type: ignore[arg-type]


class LiveServer:
    """``sandbox-engine serve`` in a background thread: a real uvicorn on a real socket."""

    keys = ("key-a", "key-b")

    def __init__(self, settings: Settings) -> None:
        import socket
        import threading

        import uvicorn

        from engine.api import create_app

        self.settings = settings
        self.app = create_app(settings)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        import time

        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=60)
        self._sock.close()

    @property
    def engine(self) -> Engine:
        engine: Engine = self.app.state.engine
        return engine


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("server"),
        api_keys=",".join(LiveServer.keys),
        memory_limit_mb=512,
    )
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()
