"""API keys: ``Authorization: Bearer <key>``. Each key is a tenant; tenants never meet."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request

from ..errors import APIError


class KeyRing:
    def __init__(self, keys: list[str]) -> None:
        self._keys = [(k.encode(), _tenant_of(k)) for k in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def tenant(self, presented: str) -> str | None:
        """The tenant of a key, comparing against every key in constant time."""
        found = None
        candidate = presented.encode()
        for key, tenant in self._keys:
            if hmac.compare_digest(key, candidate):
                found = tenant
        return found


def _tenant_of(key: str) -> str:
    return "t_" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("api-key")  # Azure clients send their key this way


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop on every request.
async def tenant(request: Request) -> str:
    """The caller's tenant id, or 401. With no keys configured everyone is tenant ""."""
    ring: KeyRing = request.app.state.keys
    if not ring.enabled:
        return ""
    token = _bearer(request)
    if token is None:
        raise APIError(
            401,
            "missing API key: send `Authorization: Bearer <key>`",
            "invalid_request_error",
            "missing_api_key",
        )
    found = ring.tenant(token)
    if found is None:
        raise APIError(401, "invalid API key", "invalid_request_error", "invalid_api_key")
    return found


Tenant = Annotated[str, Depends(tenant)]
