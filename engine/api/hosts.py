"""The Host names the service answers and the Origins it takes state-changing calls from.

A page that rebinds its own DNS name to 127.0.0.1 reaches the service with its own name in
``Host``, and a page on another site sends its own ``Origin``: both are refused before any
route runs (421 and 403), for the whole app, ``/mcp`` included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from .errors import error_body, send_json

log = logging.getLogger("engine.api")

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("", "0.0.0.0", "::", "[::]")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class Authority:
    """A ``name`` or ``name:port`` (port None: any port)."""

    name: str
    port: int | None

    @classmethod
    def parse(cls, text: str) -> Authority | None:
        text = text.strip().lower()
        if text.startswith("["):
            end = text.find("]")
            if end < 0:
                return None
            name, rest = text[: end + 1], text[end + 1 :]
            if rest and not rest.startswith(":"):
                return None
            port = rest[1:]
        elif text.count(":") > 1:  # a bare IPv6 address
            name, port = f"[{text}]", ""
        else:
            name, _, port = text.partition(":")
        name = name.rstrip(".")
        if not name or any(c in name for c in "/@?#\\ "):
            return None
        if not port:
            return cls(name, None)
        if not port.isdigit() or not 0 < int(port) < 65536:
            return None
        return cls(name, int(port))

    def matches(self, other: Authority) -> bool:
        return self.name == other.name and (self.port is None or self.port == other.port)

    def __str__(self) -> str:
        return self.name if self.port is None else f"{self.name}:{self.port}"


def _entries(setting: str, name: str) -> list[Authority]:
    found = []
    for item in setting.split(","):
        if not item.strip():
            continue
        entry = Authority.parse(item)
        if entry is None:
            raise ValueError(f"{name}: {item.strip()!r} is not a host name or name:port")
        found.append(entry)
    return found


class HostPolicy:
    """Which ``Host`` and ``Origin`` headers a request may carry.

    Host: loopback names on any port, the bind address unless it is a wildcard, and
    ``SANDBOX_ALLOWED_HOSTS``. Origin (checked on state-changing methods): the request's own
    origin (the Host it was sent to), or a name listed in ``SANDBOX_ALLOWED_HOSTS``; a page on
    another port of this machine is another origin."""

    def __init__(self, settings: Settings) -> None:
        self.listed = _entries(settings.allowed_hosts, "SANDBOX_ALLOWED_HOSTS")
        if settings.mcp_allowed_hosts.strip():
            log.warning(
                "SANDBOX_MCP_ALLOWED_HOSTS is deprecated: it now applies to the whole service; "
                "use SANDBOX_ALLOWED_HOSTS"
            )
            self.listed += _entries(settings.mcp_allowed_hosts, "SANDBOX_MCP_ALLOWED_HOSTS")
        hosts = [Authority(name, None) for name in LOOPBACK]
        bind = Authority.parse(settings.host)
        if bind is not None and bind.name not in WILDCARDS:
            hosts.append(Authority(bind.name, None))
        self.hosts = hosts + self.listed

    def host_allowed(self, host: str) -> bool:
        seen = Authority.parse(host)
        return seen is not None and any(entry.matches(seen) for entry in self.hosts)

    def origin_allowed(self, origin: str, host: str | None, scheme: str) -> bool:
        seen = _origin(origin)
        if seen is None:
            return False  # "null" (a sandboxed frame, a file:// page) or garbage
        if host is not None and (own := Authority.parse(host)) is not None:
            own = Authority(own.name, own.port or DEFAULT_PORTS.get(scheme))
            if own == seen:
                return True
        return any(entry.matches(seen) for entry in self.listed)

    def refusal(self, scope: Scope, *, every_method: bool = False) -> tuple[int, str, str] | None:
        """(status, message, code) when the request must be refused, else None.
        ``every_method``: check Origin on reads too (MCP asks servers to)."""
        host = _header(scope, b"host")
        if host is not None and not self.host_allowed(host):
            return (
                421,
                f"this service does not answer the Host {host!r} (a DNS-rebinding guard); "
                "to serve that name, add it to SANDBOX_ALLOWED_HOSTS",
                "host_not_allowed",
            )
        origin = _header(scope, b"origin")
        if origin is None or not (every_method or scope.get("method") in STATE_CHANGING):
            return None
        if self.origin_allowed(origin, host, str(scope.get("scheme", "http"))):
            return None
        return (
            403,
            f"requests from the web page origin {origin!r} may not change anything here; "
            "to allow that site, add its name (name or name:port) to SANDBOX_ALLOWED_HOSTS",
            "origin_not_allowed",
        )


ORIGIN_ON_EVERY_METHOD = frozenset({"/mcp"})
"""Paths whose Origin is checked on reads too: the MCP specification asks it of servers."""


class HostGuard:
    """ASGI middleware: every HTTP request passes ``HostPolicy.refusal`` before the app."""

    def __init__(self, app: ASGIApp, policy: HostPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            every_method = (
                scope["type"] == "websocket" or scope.get("path") in ORIGIN_ON_EVERY_METHOD
            )
            refused = self.policy.refusal(scope, every_method=every_method)
            if refused is not None:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                status, message, code = refused
                await send_json(send, status, error_body(message, "invalid_request_error", code))
                return
        await self.app(scope, receive, send)


def _origin(origin: str) -> Authority | None:
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return Authority(name.lower().rstrip("."), port or DEFAULT_PORTS[scheme])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value).decode("latin-1")
    return None
