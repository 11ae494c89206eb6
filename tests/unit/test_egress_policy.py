"""The network policy model: what a session, a container or an auto container may ask for, and
what the operator's cap lets through. No Docker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine import errors
from engine.egress import EgressPolicy, parse_cap, parse_policy, policy_from_e2b
from engine.egress.hosts import host_allowed
from engine.egress.policy import MAX_DOMAINS, normalize_domain
from engine.responses.tools import parse_tools
from engine.sessions.models import SessionInfo

CAP = parse_cap("pypi.org, *.example.com files.pythonhosted.org")


def allowlist(*domains: str, secrets: list[dict[str, str]] | None = None) -> dict[str, Any]:
    policy: dict[str, Any] = {"type": "allowlist", "allowed_domains": list(domains)}
    if secrets is not None:
        policy["domain_secrets"] = secrets
    return policy


def refused(raw: dict[str, Any], cap: list[str] = CAP) -> str:
    with pytest.raises(errors.InvalidRequest) as caught:
        parse_policy(raw, cap)
    return str(caught.value)


def test_disabled_is_the_default_and_takes_nothing_else() -> None:
    assert not parse_policy(None, CAP).enabled
    assert parse_policy({"type": "disabled"}, []).public() == {"type": "disabled"}
    assert "takes no allowed_domains" in refused({"type": "disabled", "allowed_domains": ["a.io"]})


def test_an_empty_cap_refuses_every_allowlist_and_names_the_setting() -> None:
    message = refused(allowlist("pypi.org"), cap=[])
    assert "SANDBOX_EGRESS_ALLOWED_DOMAINS" in message
    with pytest.raises(errors.InvalidRequest, match="SANDBOX_EGRESS_ALLOWED_DOMAINS"):
        policy_from_e2b([], allow_internet_access=True)


def test_domains_are_normalised_and_must_be_inside_the_cap() -> None:
    policy = parse_policy(allowlist("PyPI.org.", "api.Example.com", "*.b.example.com"), CAP)
    assert policy.allowed_domains == ("pypi.org", "api.example.com", "*.b.example.com")
    assert "example.com is outside" in refused(allowlist("example.com"))
    assert "*.pypi.org is outside" in refused(allowlist("*.pypi.org"))
    assert "evil.org" in refused(allowlist("pypi.org", "evil.org"))
    assert normalize_domain("bücher.example.com") == "xn--bcher-kva.example.com"


@pytest.mark.parametrize(
    "domain",
    [
        "10.0.0.1",
        "::1",
        "[::1]",
        "127.1",
        "0x7f000001",
        "pypi.org:8443",
        "https://pypi.org",
        "pypi.org/simple",
        "user@pypi.org",
        "*",
        "a.*.example.com",
        "localhost",
        "-bad.example.com",
        "a" * 64 + ".example.com",
        "example.123",
        "",
    ],
)
def test_ip_literals_ports_and_malformed_names_are_refused(domain: str) -> None:
    message = refused(allowlist(domain))
    assert "outside" not in message


def test_sizes_are_capped() -> None:
    too_many = allowlist(*(f"d{i}.example.com" for i in range(MAX_DOMAINS + 1)))
    assert "allowed_domains" in refused(too_many)
    secret = {"domain": "api.example.com", "name": "EXAMPLE_API_KEY", "value": "x" * 5000}
    assert "domain_secrets" in refused(allowlist("api.example.com", secrets=[secret]))


def test_secrets_are_for_allowed_domains_and_never_shown() -> None:
    secret = {"domain": "API.example.com", "name": "EXAMPLE_API_KEY", "value": "Bearer s3cret"}
    policy = parse_policy(allowlist("api.example.com", secrets=[secret]), CAP)
    assert policy.domain_secrets[0].domain == "api.example.com"
    shown = json.dumps(policy.public())
    assert "s3cret" not in shown and "EXAMPLE_API_KEY" in shown
    assert "s3cret" not in repr(policy)
    elsewhere = {**secret, "domain": "pypi.org"}
    assert "not in allowed_domains" in refused(allowlist("api.example.com", secrets=[elsewhere]))
    bad_name = {**secret, "name": "X-Bad name"}
    assert "name" in refused(allowlist("api.example.com", secrets=[bad_name]))
    newline = {**secret, "value": "a\r\nInjected: 1"}
    assert "control characters" in refused(allowlist("api.example.com", secrets=[newline]))


def test_a_stored_policy_round_trips_and_the_row_shows_no_secret() -> None:
    secret = {"domain": "api.example.com", "name": "X_KEY", "value": "hidden-value"}
    policy = parse_policy(allowlist("api.example.com", secrets=[secret]), CAP)
    assert EgressPolicy.from_json(policy.to_json()) == policy
    row = {
        "id": "sess_1",
        "thread_id": "t",
        "status": "active",
        "created_at": 1,
        "last_active_at": 1,
        "expires_at": 100,
        "idle_timeout": 10,
        "network_policy": policy.to_json(),
    }
    info = SessionInfo.from_row(row)
    assert info.network_policy["allowed_domains"] == ["api.example.com"]
    assert "hidden-value" not in info.model_dump_json()
    assert SessionInfo.from_row({**row, "network_policy": None}).network_policy == {
        "type": "disabled"
    }


def test_wildcards_match_names_below_only() -> None:
    allowed = ["*.example.com", "pypi.org"]
    assert host_allowed("a.b.example.com", allowed)
    assert host_allowed("PYPI.ORG.", allowed)
    assert not host_allowed("example.com", allowed)
    assert not host_allowed("evilexample.com", allowed)
    assert not host_allowed("pypi.org.evil.net", allowed)
    assert not host_allowed("10.0.0.1", allowed)


def test_e2b_fields_map_onto_the_same_policy() -> None:
    assert not policy_from_e2b(CAP).enabled
    assert not policy_from_e2b(CAP, allow_internet_access=False).enabled
    assert policy_from_e2b(CAP, allow_internet_access=True).allowed_domains == tuple(CAP)
    only = policy_from_e2b(CAP, allow_out=["pypi.org"], deny_out=["0.0.0.0/0"])
    assert only.allowed_domains == ("pypi.org",)
    assert not policy_from_e2b(CAP, allow_internet_access=True, deny_out=["0.0.0.0/0"]).enabled
    with pytest.raises(errors.InvalidRequest, match="denyOut"):
        policy_from_e2b(CAP, deny_out=["evil.org"])
    with pytest.raises(errors.InvalidRequest, match="IP address"):
        policy_from_e2b(CAP, allow_out=["10.0.0.0"])


def test_the_auto_container_takes_the_policy_within_the_cap() -> None:
    tool = {
        "type": "code_interpreter",
        "container": {"type": "auto", "network_policy": allowlist("pypi.org")},
    }
    assert parse_tools([tool], "auto", CAP).code.network_policy.allowed_domains == ("pypi.org",)  # type: ignore[union-attr]
    with pytest.raises(errors.InvalidRequest, match="SANDBOX_EGRESS_ALLOWED_DOMAINS"):
        parse_tools([tool], "auto")


def test_e2b_sandbox_fields_become_the_engine_policy(tmp_path: Path) -> None:
    """What the E2B face does with ``allow_internet_access`` and ``network`` at create."""
    from engine.e2b import E2BSandboxes
    from engine.store import Store

    store = Store(tmp_path / "engine.db")
    try:
        e2b = E2BSandboxes(None, store, CAP)  # type: ignore[arg-type]  # no session is made
        assert not e2b.policy(None, None).enabled
        assert list(e2b.policy(True, None).allowed_domains) == CAP
        only = e2b.policy(None, {"allowOut": ["pypi.org"], "denyOut": ["0.0.0.0/0"]})
        assert list(only.allowed_domains) == ["pypi.org"]
        with pytest.raises(errors.InvalidRequest, match=r"evil\.com"):
            e2b.policy(None, {"allowOut": ["evil.com"]})
        with pytest.raises(errors.InvalidRequest, match="denyOut"):
            e2b.policy(True, {"denyOut": ["10.0.0.0/8"]})
        with pytest.raises(errors.InvalidRequest, match="list of strings"):
            e2b.policy(None, {"allowOut": "pypi.org"})
        with pytest.raises(errors.InvalidRequest, match="SANDBOX_EGRESS_ALLOWED_DOMAINS"):
            E2BSandboxes(None, store).policy(True, None)  # type: ignore[arg-type]
    finally:
        store.close()
