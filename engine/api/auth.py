"""API keys: ``Authorization: Bearer <key>``, or ``api-key: <key>`` as Azure clients send it.
Each key is a tenant; tenants never meet. With no keys configured everyone is tenant "" (and
the service binds localhost only: see engine/cli.py)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from ..errors import APIError

bearer = HTTPBearer(
    auto_error=False, description="An API key, sent as `Authorization: Bearer <key>`."
)
azure_key = APIKeyHeader(
    name="api-key", auto_error=False, description="An API key, as Azure clients send it."
)
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
AzureKey = Annotated[str | None, Security(azure_key)]


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


def unauthorized(message: str, code: str) -> APIError:
    """A 401; the error handler adds ``WWW-Authenticate: Bearer``."""
    return APIError(401, message, "invalid_request_error", code)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key sent as ``Authorization: Bearer <key>``, else as ``api-key: <key>``; None if
    neither. The one reading of the headers for every route, /mcp and the playground."""
    scheme, _, key = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and key.strip():
        return key.strip()
    return headers.get("api-key", "").strip() or None


def tenant_of(keys: KeyRing, headers: Mapping[str, str]) -> str | None:
    """The tenant of the key the headers carry ("" with no keys configured), or None."""
    if not keys.enabled:
        return ""
    key = presented_key(headers)
    return keys.tenant(key) if key is not None else None


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop on every request.
# The two security parameters only document the schemes in the OpenAPI schema.
async def tenant(request: Request, _bearer: BearerCredentials, _api_key: AzureKey) -> str:
    """The caller's tenant id, or a 401 that says what was wrong with what it sent."""
    found = tenant_of(request.app.state.keys, request.headers)
    if found is not None:
        return found
    if presented_key(request.headers) is not None:
        raise unauthorized("invalid API key", "invalid_api_key")
    if request.headers.get("authorization"):
        raise unauthorized(
            'the Authorization header must look like "Bearer <key>"', "invalid_api_key"
        )
    raise unauthorized(
        "missing API key: send `Authorization: Bearer <key>` (or `api-key: <key>`)",
        "missing_api_key",
    )


async def metrics_access(request: Request, bearer: BearerCredentials, api_key: AzureKey) -> None:
    """/metrics is open to scrapers unless ``SANDBOX_METRICS_REQUIRE_KEY`` is set."""
    if request.app.state.settings.metrics_require_key:
        await tenant(request, bearer, api_key)


Tenant = Annotated[str, Depends(tenant)]
MetricsAccess = Annotated[None, Depends(metrics_access)]
