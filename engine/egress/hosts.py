"""Domain names as an allowlist holds them, and whether a host matches one. Standard library
only: the egress proxy's addon imports this very file (it is copied into the proxy image)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

WILDCARD = "*."

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# What a proxy or client would take as a literal address rather than a name.
_NUMERIC_HOST = re.compile(r"^[0-9.]+$|^0x[0-9a-f.x]+$")


def normalize_domain(raw: str, *, wildcard: bool = True) -> str:
    """``raw`` as an allowlist stores it (lower case, IDNA, no trailing dot); raises ValueError
    for an IP literal, a port, a scheme or path, or a malformed name."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("a domain must be a non-empty string")
    text = raw.strip().lower().rstrip(".")
    if any(c in text for c in ":/@[]? \t"):
        raise ValueError(
            f"{raw!r} is not a domain: write a bare name such as api.example.com (no scheme, "
            "port, path or IP address; only ports 443 and 80 are ever allowed)"
        )
    prefix = ""
    if text.startswith(WILDCARD):
        if not wildcard:
            raise ValueError(f"{raw!r}: a wildcard is not allowed here")
        prefix, text = WILDCARD, text.removeprefix(WILDCARD)
    if "*" in text:
        raise ValueError(f"{raw!r}: a wildcard may only be a leading '*.', as in *.example.com")
    if is_ip_literal(text):
        raise ValueError(f"{raw!r} is an IP address; only domain names can be allowed")
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(f"{raw!r} is not a valid domain name") from None
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        raise ValueError(
            f"{raw!r} is not a valid domain name (at least two labels of letters, digits "
            "and hyphens, e.g. example.com)"
        )
    if labels[-1].isdigit():
        raise ValueError(f"{raw!r} is not a valid domain name (numeric top level)")
    return prefix + ascii_name


def is_ip_literal(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return bool(_NUMERIC_HOST.match(text))
    return True


def domain_matches(host: str, pattern: str) -> bool:
    """Whether ``host`` (normalised) is ``pattern``, or below it when the pattern is
    ``*.example.com`` (which does not match example.com itself)."""
    if pattern.startswith(WILDCARD):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Whether a request's host name (as a client sent it) matches one of ``allowed``."""
    try:
        name = normalize_domain(host, wildcard=False)
    except ValueError:
        return False
    return any(domain_matches(name, pattern) for pattern in allowed)
