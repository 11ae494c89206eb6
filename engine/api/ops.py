"""Operations: liveness, readiness, and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import errors
from .auth import MetricsAccess
from .deps import EngineDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz(engine: EngineDep) -> dict[str, Any] | JSONResponse:
    try:
        await engine.backend.check(engine.image)
    except errors.EngineError as exc:
        return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
    out = {"status": "ready", "image": engine.image, "sessions": len(engine.sessions)}
    out["file_search"] = engine.file_search.status  # the embedder, or why keyword-only
    return out


@router.get("/metrics")
async def metrics(_: MetricsAccess) -> Response:
    """Open to scrapers, unless ``SANDBOX_METRICS_REQUIRE_KEY`` asks for an API key."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
