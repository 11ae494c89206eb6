"""API keys: ``Authorization: Bearer <key>``, or ``api-key: <key>`` as Azure clients send it.
Each key is a tenant; tenants never meet. With no keys configured everyone is tenant "" (and
the service binds localhost only: see engine/cli.py)."""

from __future__ import annotations

import hashlib
import hmac
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


def presented_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None, api_key: str | None
) -> str:
    """The key the caller sent, or a 401 that says what was wrong with what it sent."""
    if credentials is not None:
        return credentials.credentials
    if api_key:
        return api_key
    if request.headers.get("authorization"):
        raise unauthorized(
            'the Authorization header must look like "Bearer <key>"', "invalid_api_key"
        )
    raise unauthorized(
        "missing API key: send `Authorization: Bearer <key>` (or `api-key: <key>`)",
        "missing_api_key",
    )


# async: FastAPI runs a plain `def` dependency in a worker thread, a hop on every request.
async def tenant(request: Request, credentials: BearerCredentials, api_key: AzureKey) -> str:
    """The caller's tenant id, or 401."""
    ring: KeyRing = request.app.state.keys
    if not ring.enabled:
        return ""
    found = ring.tenant(presented_key(request, credentials, api_key))
    if found is None:
        raise unauthorized("invalid API key", "invalid_api_key")
    return found


async def metrics_access(
    request: Request, credentials: BearerCredentials, api_key: AzureKey
) -> None:
    """/metrics is open to scrapers unless ``SANDBOX_METRICS_REQUIRE_KEY`` is set."""
    if request.app.state.settings.metrics_require_key:
        await tenant(request, credentials, api_key)


Tenant = Annotated[str, Depends(tenant)]
MetricsAccess = Annotated[None, Depends(metrics_access)]
