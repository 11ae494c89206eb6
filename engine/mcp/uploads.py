"""Short-lived signed upload tokens: ``upload_file`` hands a client a URL on the HTTP API for
files too large to send inline through MCP (whose request bodies are capped at 4 MiB)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from .. import errors


@dataclass(frozen=True)
class UploadGrant:
    session_id: str
    owner: str
    filename: str
    expires_at: int


class UploadSigner:
    """HMAC-SHA256 over the grant; the key is per process, so a restart voids every URL.

    The owner is not in the token: it is bound into the MAC, and the route checks it against
    the caller's key. The URL thus says nothing about the key (not even a hash of it).
    """

    def __init__(self, ttl: int = 600, key: bytes | None = None) -> None:
        self.ttl = ttl
        self._key = key or secrets.token_bytes(32)

    def _mac(self, payload: bytes, owner: str) -> bytes:
        return hmac.new(self._key, payload + b"." + owner.encode(), hashlib.sha256).digest()

    def sign(self, session_id: str, owner: str, filename: str) -> tuple[str, int]:
        expires = int(time.time()) + self.ttl
        body = json.dumps(
            {"s": session_id, "f": filename, "e": expires}, separators=(",", ":")
        ).encode()
        payload = base64.urlsafe_b64encode(body).rstrip(b"=")
        mac = self._mac(payload, owner)
        return f"{payload.decode()}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}", expires

    def verify(self, token: str, owner: str) -> UploadGrant:
        """The grant, if ``token`` was signed for ``owner``; another tenant's key is refused."""
        payload, _, mac = token.partition(".")
        expected = self._mac(payload.encode(), owner)
        try:
            given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
            valid = hmac.compare_digest(expected, given)
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            grant = UploadGrant(str(data["s"]), owner, str(data["f"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise errors.NotFound("invalid upload URL")
        if grant.expires_at < time.time():
            raise errors.NotFound("this upload URL has expired: call upload_file again")
        return grant
