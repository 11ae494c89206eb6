"""Fixtures: a real engine on the real Docker daemon with the real sandbox image."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
    return Settings(data_dir=tmp_path / "engine", **overrides)  # type: ignore[arg-type]
