"""Controlled egress: a sandbox's network policy, and the proxy that enforces it."""

from .policy import DISABLED, DomainSecret, EgressPolicy, parse_cap, parse_policy, policy_from_e2b

__all__ = [
    "DISABLED",
    "DomainSecret",
    "EgressPolicy",
    "parse_cap",
    "parse_policy",
    "policy_from_e2b",
]
