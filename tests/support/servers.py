"""Live servers for tests: a real uvicorn on a real socket, in a background thread, serving the
engine's app (or any app, such as the scripted model), and their settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, Settings


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


def server_settings(data_dir: Path, model_server: ServerThread, **overrides: Any) -> Settings:
    """Settings for a test's own live server, speaking to the scripted model."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "api_keys": ",".join(LiveServer.keys),
        "memory_limit_mb": 512,
        "llm_base_url": f"{model_server.url}/v1",
        "llm_api_key": "model-key",
        "pool_size": 0,
        "pool_min": 0,
        "shutdown_sandboxes": "close",
        **overrides,
    }
    return Settings(**values)
