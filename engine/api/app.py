"""The FastAPI application: routers, auth, limits, errors, logs, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import MB, Settings
from ..e2b import E2BSandboxes
from ..egress.policy import parse_cap
from ..runtime import SessionHost
from ..services import Engine
from ..sessions.surface import SessionSurface
from . import (
    assistants,
    azure,
    e2b,
    mcp,
    openai_containers,
    openai_files,
    ops,
    playground,
    responses,
    sessions,
)
from . import errors as api_errors
from .access_log import RequestLog
from .auth import KeyRing
from .hosts import HostGuard, HostPolicy
from .limits import BodyLimits
from .vector_stores import router as vector_stores_router

log = logging.getLogger("engine.api")


def create_app(
    settings: Settings | None = None, engine: Engine | None = None, *, exclusive: bool = False
) -> FastAPI:
    """The service. It starts (and at shutdown drains and closes) ``engine``, or its own;
    ``exclusive``: its own engine refuses to start beside another on the same data folder.

    Uvicorn stops taking connections and lets the requests in flight finish first (up to its
    graceful-shutdown timeout); the lifespan then lets running executions finish (up to
    ``drain_timeout``) before the engine closes, keeping or closing sandboxes as configured."""
    settings = settings or (engine.settings if engine else Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        the_engine = engine or Engine(settings, exclusive=exclusive)
        await the_engine.start()
        the_engine.services()  # built now: the server recovers what an earlier process left
        app.state.engine = the_engine
        app.state.e2b = E2BSandboxes(
            the_engine,
            the_engine.runtime.store,
            parse_cap(the_engine.settings.egress_allowed_domains),
        )
        try:
            async with app.state.mcp.serve(the_engine):  # the /mcp session manager
                yield
        finally:
            await app.state.e2b.close()
            await _drain(the_engine, settings.drain_timeout)
            await the_engine.close()

    app = FastAPI(
        title="Sandbox Engine",
        version="0.1.0",
        description="Run model-written code in Jupyter kernels inside locked-down containers. "
        "Native API, plus OpenAI- and Azure-sessions-compatible endpoints and MCP at /mcp.",
        lifespan=lifespan,
    )

    async def before_shutdown() -> None:
        """The server stops (see ``connections.py``): running responses and runs fail now, saying
        so, and their streams end, instead of holding the shutdown up."""
        running: Engine | None = getattr(app.state, "engine", None)
        if running is not None:
            await running.responses.service.close()
            await running.assistants.service.close()

    app.state.before_shutdown = before_shutdown
    app.state.keys = KeyRing(settings.load_api_keys())
    app.state.settings = settings
    app.state.mcp = mcp.McpEndpoint(settings, app.state.keys)
    api_errors.install(app)
    app.include_router(ops.router)
    app.include_router(sessions.router)
    app.include_router(openai_files.router)
    app.include_router(openai_containers.router)
    app.include_router(azure.router)
    app.include_router(assistants.router)
    app.include_router(responses.router)
    app.include_router(vector_stores_router)
    app.include_router(mcp.router)
    app.include_router(e2b.router)
    app.include_router(playground.config_router)
    app.include_router(playground.router)  # /playground, and / redirects there
    app.router.routes.append(app.state.mcp.route())
    # A foreign Host or Origin is refused before its body is read.
    app.add_middleware(AzureOpenAIPaths)
    _guard(app, settings)
    return app


def _guard(app: FastAPI, settings: Settings) -> None:
    """Starlette runs the middleware added last first: the log (and its request id) wraps the
    Host/Origin guard and the body limits, so that their refusals are logged too."""
    app.add_middleware(
        BodyLimits,
        max_body=settings.max_body_mb * MB,
        max_upload=settings.max_file_mb * MB + MB,
        max_depth=settings.max_json_depth,
    )
    app.add_middleware(HostGuard, policy=HostPolicy(settings))
    app.add_middleware(RequestLog)


def create_cluster_app(settings: Settings, host: SessionHost[SessionSurface]) -> FastAPI:
    """An API replica of a cluster (``serve --cluster``, docs/cluster.md): the native sessions
    API over ``host``, whose sessions live on node agents. The other faces need the shared
    store (PostgreSQL) first."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await host.start()
        app.state.engine = host
        try:
            yield
        finally:
            await _drain(host, settings.drain_timeout)
            await host.close()

    app = FastAPI(
        title="Sandbox Engine (cluster replica)",
        version="0.1.0",
        description="The native sessions API, served by the cluster's node agents.",
        lifespan=lifespan,
    )
    app.state.keys = KeyRing(settings.load_api_keys())
    app.state.settings = settings
    api_errors.install(app)
    app.include_router(sessions.router)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _guard(app, settings)
    return app


class AzureOpenAIPaths:
    """``AzureOpenAI(azure_endpoint=...)`` clients call ``/openai/<resource>?api-version=``,
    and Azure's v1 API ``/openai/v1/<resource>``: the same resources as ``/v1/<resource>``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith("/openai/"):
            rest = path[len("/openai/") :]
            rest = rest[len("v1/") :] if rest.startswith("v1/") else rest
            scope = {**scope, "path": "/v1/" + rest, "raw_path": None}
        await self.app(scope, receive, send)


async def _drain(engine: SessionHost[SessionSurface], timeout: float) -> None:
    """Let running executions finish, up to ``timeout`` seconds."""
    waits = [asyncio.ensure_future(s.wait_idle()) for s in engine.sessions.live() if s.busy]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for task in pending:
            task.cancel()
