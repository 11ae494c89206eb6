"""The playground: a no-code page at ``/playground`` to try the sandbox and the assistants.

Its assets are the static files of ``engine/web/``. The page shows output written by untrusted
code and models, so everything under ``/playground`` is served with a strict
Content-Security-Policy: no inline script, no script from anywhere but this origin, no plugins,
no framing. HTML outputs go into ``sandbox=""`` iframes (no scripts, an opaque origin), and text
goes in through ``textContent``."""

from __future__ import annotations

import mimetypes
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from ..config import Settings
from ..errors import APIError
from ..openai_client import OpenAICompatibleClient
from .auth import Tenant, tenant_of

STATIC = Path(__file__).parents[1] / "web" / "static"
DEFAULT_MODEL = "gpt-4o-mini"
MODELS_KEPT_S = 60.0

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "frame-src 'self'",
        "child-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".svg": "image/svg+xml",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse("/playground", status_code=307)


@router.get("/playground")
async def page() -> Response:
    return _file(STATIC / "index.html")


@router.get("/playground/{name:path}")
async def asset(name: str) -> Response:
    if name in ("", "index.html"):
        return _file(STATIC / "index.html")
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC.resolve()) or not path.is_file():
        raise APIError(404, f"no playground asset {name!r}", "invalid_request_error", "not_found")
    return _file(path)


def _file(path: Path) -> Response:
    kind = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "text/plain"
    return FileResponse(path, media_type=kind, headers=HEADERS)


config_router = APIRouter(tags=["playground"])


@config_router.get("/v1/playground/config")
async def config(request: Request) -> dict[str, Any]:
    """What the page needs before it asks anything: whether a key is needed, whether a model is
    configured, and the model to start with. Open without a key: it tells nothing secret."""
    settings: Settings = request.app.state.settings
    model = None
    if settings.llm_base_url:
        model = settings.llm_model or next(iter(await _models(request)), DEFAULT_MODEL)
    return {
        "object": "playground.config",
        "key_required": request.app.state.keys.enabled,
        "model_configured": bool(settings.llm_base_url),
        "default_model": model,
        "file_search": _file_search(request, settings),
    }


def _file_search(request: Request, settings: Settings) -> dict[str, Any]:
    """The embedder file search uses, or why it is keyword-only."""
    from ..retrieval import embedder_status

    running = getattr(request.app.state, "engine", None)
    status: dict[str, Any] = (
        running.file_search.status if running is not None else embedder_status(settings)
    )
    return status


@config_router.get("/v1/playground/models")
async def models(request: Request, tenant: Tenant) -> dict[str, Any]:
    """The models the endpoint lists, for the assistant form's suggestions; a key holder's only."""
    names = await _models(request)
    return {"object": "list", "data": [{"id": name, "object": "model"} for name in names]}


@config_router.get("/v1/playground/key")
async def check_key(request: Request) -> dict[str, Any]:
    """Whether the key sent is good, as a 200 either way: the page checks a key before keeping
    it, and a refused check would be a red line in the browser's console."""
    valid = tenant_of(request.app.state.keys, request.headers) is not None
    return {"object": "playground.key", "valid": valid}


async def _models(request: Request) -> list[str]:
    """The models the endpoint lists (the first 100), or none if it cannot say. Kept a minute:
    each page load asks twice, and the config route, which needs no key, never reaches the model
    endpoint more often than that."""
    settings: Settings = request.app.state.settings
    if not settings.llm_base_url:
        return []
    kept: tuple[float, list[str]] | None = getattr(request.app.state, "playground_models", None)
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    names = await _list_models(settings.llm_base_url, settings.llm_api_key)
    request.app.state.playground_models = (time.monotonic() + MODELS_KEPT_S, names)
    return names


async def _list_models(base_url: str, api_key: str | None) -> list[str]:
    client = OpenAICompatibleClient(base_url, api_key, timeout=3, max_retries=0)
    try:
        return await client.model_ids(100)
    finally:
        await client.close()
