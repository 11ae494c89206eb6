"""A sandbox's network policy: ``disabled`` (no network, the default) or an allowlist of domains.

One model for every face: the native sessions API, OpenAI containers and the Responses auto
container take it as is; the E2B face maps its own fields onto it (``policy_from_e2b``). Every
domain is checked, normalised (lower case, IDNA) and must be covered by the operator's cap,
``SANDBOX_EGRESS_ALLOWED_DOMAINS``: empty by default, so that no tenant gets a way out until the
operator opens one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .. import errors
from . import hosts
from .hosts import WILDCARD, domain_matches

CAP_SETTING = "SANDBOX_EGRESS_ALLOWED_DOMAINS"
MAX_DOMAINS = 100
MAX_SECRETS = 20
MAX_SECRET_VALUE = 4096

_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def normalize_domain(raw: str, *, wildcard: bool = True) -> str:
    """``hosts.normalize_domain``, its refusal as an InvalidRequest."""
    try:
        return hosts.normalize_domain(raw, wildcard=wildcard)
    except ValueError as exc:
        raise errors.InvalidRequest(str(exc)) from None


def _covered(domain: str, cap: Sequence[str]) -> bool:
    """Whether everything ``domain`` (maybe a wildcard) names is inside the cap."""
    if domain.startswith(WILDCARD):
        return any(
            c == domain or (c.startswith(WILDCARD) and domain_matches(domain[2:], c)) for c in cap
        )
    return any(domain_matches(domain, c) for c in cap)


def parse_cap(raw: str) -> list[str]:
    """The operator's cap, a comma- or space-separated list of domains (wildcards allowed)."""
    return [normalize_domain(part) for part in re.split(r"[,\s]+", raw) if part]


class DomainSecret(BaseModel):
    """A secret for requests to ``domain``: the sandbox is to see only a placeholder under
    ``name``, which the proxy replaces by ``value`` in that domain's request headers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str
    name: str = Field(min_length=1, max_length=128)
    """What the sandbox knows it by, an environment variable's name (``EXAMPLE_API_KEY``)."""
    value: str = Field(min_length=1, max_length=MAX_SECRET_VALUE, repr=False)

    @field_validator("name")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not _SECRET_NAME.match(value):
            raise ValueError("must be an environment variable's name (letters, digits, '_')")
        return value

    @field_validator("value")
    @classmethod
    def _header_value(cls, value: str) -> str:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not hold control characters")
        return value


class EgressPolicy(BaseModel):
    """``{"type": "disabled"}`` or ``{"type": "allowlist", "allowed_domains": [...],
    "domain_secrets": [{"domain", "name", "value"}]}``; build it with ``parse_policy``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["disabled", "allowlist"] = "disabled"
    allowed_domains: tuple[str, ...] = Field(default=(), max_length=MAX_DOMAINS)
    domain_secrets: tuple[DomainSecret, ...] = Field(default=(), max_length=MAX_SECRETS)

    @property
    def enabled(self) -> bool:
        return self.type == "allowlist"

    def public(self) -> dict[str, Any]:
        """What an API response may show: secrets by domain and name, never their values."""
        if not self.enabled:
            return {"type": "disabled"}
        return {
            "type": "allowlist",
            "allowed_domains": list(self.allowed_domains),
            "domain_secrets": [{"domain": s.domain, "name": s.name} for s in self.domain_secrets],
        }

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | None) -> EgressPolicy:
        return DISABLED if not text else cls.model_validate_json(text)


DISABLED = EgressPolicy()


def parse_policy(raw: Mapping[str, Any] | BaseModel | None, cap: Sequence[str]) -> EgressPolicy:
    """A request's ``network_policy``, checked and normalised, within the operator's ``cap``
    (``parse_cap`` of ``SANDBOX_EGRESS_ALLOWED_DOMAINS``); raises InvalidRequest."""
    if raw is None:
        return DISABLED
    data = raw.model_dump(exclude_none=True) if isinstance(raw, BaseModel) else dict(raw)
    try:
        policy = EgressPolicy.model_validate(data)
    except ValidationError as exc:
        at, what = errors.first_problem(exc)
        raise errors.InvalidRequest(f"network_policy.{at}: {what}" if at else what) from None
    if not policy.enabled:
        if policy.allowed_domains or policy.domain_secrets:
            raise errors.InvalidRequest(
                'network_policy {"type": "disabled"} takes no allowed_domains or domain_secrets'
            )
        return DISABLED
    domains = list(dict.fromkeys(normalize_domain(d) for d in policy.allowed_domains))
    if not domains:
        raise errors.InvalidRequest("network_policy.allowed_domains must name at least one domain")
    if not cap:
        raise _no_egress()
    outside = [d for d in domains if not _covered(d, cap)]
    if outside:
        raise errors.InvalidRequest(
            f"network_policy.allowed_domains: {', '.join(outside)} is outside what this server "
            f"allows ({CAP_SETTING}: {', '.join(cap)})"
        )
    secrets = []
    for secret in policy.domain_secrets:
        domain = normalize_domain(secret.domain, wildcard=False)
        if not any(domain_matches(domain, d) for d in domains):
            raise errors.InvalidRequest(
                f"network_policy.domain_secrets: {domain} is not in allowed_domains"
            )
        secrets.append(secret.model_copy(update={"domain": domain}))
    return EgressPolicy(
        type="allowlist", allowed_domains=tuple(domains), domain_secrets=tuple(secrets)
    )


def _no_egress() -> errors.InvalidRequest:
    return errors.InvalidRequest(
        f"this server allows no network egress: its operator has not set {CAP_SETTING}, "
        'so only network_policy {"type": "disabled"} is accepted'
    )


def policy_from_e2b(
    cap: Sequence[str],
    *,
    allow_internet_access: bool | None = None,
    allow_out: Sequence[str] | None = None,
    deny_out: Sequence[str] | None = None,
) -> EgressPolicy:
    """E2B's sandbox fields as a policy. ``allow_internet_access`` alone means every domain
    the operator allows (the cap); ``allow_out`` names domains (E2B's CIDRs and IPs are
    refused); ``deny_out`` may only say "everything else" (``0.0.0.0/0``), which is what an
    allowlist means anyway."""
    for entry in deny_out or ():
        if entry.strip() not in ("0.0.0.0/0", "::/0"):
            raise errors.InvalidRequest(
                f"network.denyOut {entry!r}: only 0.0.0.0/0 (deny all but allowOut) is "
                "supported; egress is an allowlist of domains"
            )
    if allow_out:
        return parse_policy({"type": "allowlist", "allowed_domains": list(allow_out)}, cap)
    if allow_internet_access and not deny_out:
        if not cap:
            raise _no_egress()
        return parse_policy({"type": "allowlist", "allowed_domains": list(cap)}, cap)
    return DISABLED
