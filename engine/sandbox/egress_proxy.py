"""The Docker side of controlled egress: per sandbox with an allowlist, an internal network (no
default route, no way to the host) whose only other member is that sandbox's own mitmproxy
container, which alone also joins the outward network and enforces the policy
(``engine/egress/proxy_image/egress_addon.py``). One proxy per sandbox: no proxy ever holds
another sandbox's policy, so tenants' policies cannot mix.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import docker
from docker.errors import APIError, ImageNotFound, NotFound
from docker.types import LogConfig, Ulimit

from .. import errors
from ..egress.policy import EgressPolicy

PROXY_PORT = 8080
TRUST_FILE = "egress-ca.pem"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
_MAKE_CA = """
import datetime
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
now = datetime.datetime.now(datetime.timezone.utc)
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sandbox-engine egress CA")])
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                       critical=True)
        .sign(key, hashes.SHA256()))
print(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                        serialization.NoEncryption()).decode()
      + cert.public_bytes(serialization.Encoding.PEM).decode())
"""
PROXY_LABEL = "org.sandbox-engine.egress-proxy"
"""On a proxy container and its network: the sandbox they serve (never the managed label, so
that a sweep of sandboxes does not take a proxy for one)."""
PROXY_USER = "10002:10002"
PROXY_PIDS = 64
READY_TIMEOUT = 30.0
ORPHAN_AGE = 300.0
_READY_LINE = b"proxy listening at"
# No address on the host side of the bridge: the sandbox cannot reach the host through it.
_INTERNAL_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}


@dataclass(frozen=True)
class EgressRoute:
    """How a sandbox reaches its proxy."""

    network: str
    proxy_ip: str
    placeholders: dict[str, str] = field(default_factory=dict)
    """A variable per domain secret, holding what the proxy replaces by the secret."""
    trust: bytes | None = None
    """With domain secrets: the CA bundle the sandbox must trust (the public CAs the host
    trusts, and the engine's CA), for the backend to place at ``TRUST_FILE``."""

    @property
    def env(self) -> dict[str, str]:
        """The proxy variables that pip, requests, httpx and urllib read."""
        url = f"http://{self.proxy_ip}:{PROXY_PORT}"
        names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
        env = {**dict.fromkeys(names, url), "NO_PROXY": "", "no_proxy": "", **self.placeholders}
        if self.trust is not None:
            for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "CURL_CA_BUNDLE"):
                env[name] = f"/conn/{TRUST_FILE}"
        return env


def _epoch(created: str) -> float:
    """Docker's RFC 3339 time (nanoseconds, ``Z``) as seconds since the epoch."""
    when = datetime.datetime.fromisoformat(created[:19]).replace(tzinfo=datetime.UTC)
    return when.timestamp()


def _certificate_of(pem: str) -> str:
    start = pem.index("-----BEGIN CERTIFICATE-----")
    return pem[start:]


def _public_cas() -> bytes:
    return HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""


def proxy_name(sandbox_id: str) -> str:
    return f"sandbox-engine-egress-{sandbox_id}"


class EgressProxies:
    """Starts and removes sandboxes' egress proxies and their networks (blocking calls)."""

    def __init__(
        self,
        client: Callable[[], docker.DockerClient],
        image: str,
        outward_network: str,
        memory_mb: int,
        ca_file: Path,
        upstream_ca: Path | None = None,
    ) -> None:
        """``ca_file`` holds the engine's CA (made on first use), for domain secrets;
        ``upstream_ca`` replaces the public CAs for the servers whose requests are decrypted."""
        self._client = client
        self.image = image
        self._outward = outward_network
        self._memory = f"{memory_mb}m"
        self._ca_file = ca_file
        self._upstream_ca = upstream_ca

    def start(
        self, sandbox_id: str, session_id: str, policy: EgressPolicy, labels: dict[str, str]
    ) -> EgressRoute:
        """The sandbox's internal network with its proxy up and listening on it."""
        api = self._client().api
        name = proxy_name(sandbox_id)
        labels = {**labels, PROXY_LABEL: sandbox_id}
        try:
            network = api.create_network(
                name, driver="bridge", internal=True, labels=labels, options=_INTERNAL_OPTIONS
            )
            subnet = api.inspect_network(network["Id"])["IPAM"]["Config"][0]["Subnet"]
            placeholders = {
                s.name: f"egress-placeholder-{secrets.token_hex(16)}" for s in policy.domain_secrets
            }
            config = {
                "sandbox": sandbox_id,
                "session": session_id,
                "allowed_domains": list(policy.allowed_domains),
                "client_subnet": subnet,
                "secrets": [
                    {"domain": s.domain, "placeholder": placeholders[s.name], "value": s.value}
                    for s in policy.domain_secrets
                ],
            }
            environment = {"EGRESS_POLICY": json.dumps(config)}
            trust = None
            if placeholders:
                ca = self._engine_ca(api)
                environment["EGRESS_CA"] = ca
                if self._upstream_ca is not None:
                    environment["EGRESS_UPSTREAM_CA"] = self._upstream_ca.read_text()
                trust = _public_cas() + _certificate_of(ca).encode()
            container = api.create_container(
                self.image,
                name=name,
                user=PROXY_USER,
                hostname="egress",
                environment=environment,
                labels=labels,
                host_config=self._host_config(api, name),
                networking_config=api.create_networking_config(
                    {name: api.create_endpoint_config()}
                ),
            )["Id"]
            api.connect_container_to_network(container, self._outward)
            api.start(container)
            self._wait_ready(api, container)
            ip = api.inspect_container(container)["NetworkSettings"]["Networks"][name]
        except ImageNotFound as exc:
            raise errors.ImageNotFound(
                f"egress proxy image {self.image!r} is not built; run "
                "`sandbox-engine image build --egress-proxy`"
            ) from exc
        except APIError as exc:
            raise errors.SandboxUnavailable(f"could not start the egress proxy: {exc}") from exc
        return EgressRoute(name, ip["IPAddress"], placeholders, trust)

    def _engine_ca(self, api: docker.APIClient) -> str:
        """The engine's CA, key and certificate, made once in the proxy image (no host
        dependency); the file is the engine's alone (0600)."""
        if not self._ca_file.is_file():
            container = api.create_container(
                self.image,
                ["python3", "-c", _MAKE_CA],
                user=PROXY_USER,
                network_disabled=True,
                host_config=api.create_host_config(network_mode="none", read_only=True),
            )["Id"]
            try:
                api.start(container)
                if api.wait(container, timeout=60)["StatusCode"] != 0:
                    raise errors.SandboxUnavailable("could not make the engine's egress CA")
                pem = api.logs(container, stdout=True, stderr=False).decode()
            finally:
                api.remove_container(container, force=True)
            tmp = self._ca_file.with_suffix(".new")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pem)
            os.replace(tmp, self._ca_file)
        return self._ca_file.read_text()

    def _host_config(self, api: docker.APIClient, network: str) -> dict[str, object]:
        return dict(
            api.create_host_config(
                init=True,
                network_mode=network,
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                pids_limit=PROXY_PIDS,
                mem_limit=self._memory,
                memswap_limit=self._memory,
                nano_cpus=int(0.5e9),
                ulimits=[Ulimit(name="core", soft=0, hard=0)],
                tmpfs={"/tmp": "rw,nosuid,nodev,noexec,size=16m,mode=1777"},
                log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            )
        )

    def _wait_ready(self, api: docker.APIClient, container: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            logs = api.logs(container, stdout=True, stderr=True)
            if _READY_LINE in logs:
                return
            if not api.inspect_container(container)["State"]["Running"]:
                raise errors.SandboxUnavailable(
                    f"the egress proxy exited: {logs[-2000:].decode(errors='replace')}"
                )
            time.sleep(0.05)
        raise errors.SandboxUnavailable(f"the egress proxy did not listen in {READY_TIMEOUT} s")

    def refusals(self, sandbox_id: str) -> list[str]:
        """The proxy's log lines for refused requests (session, sandbox, host, reason)."""
        try:
            logs = self._client().api.logs(proxy_name(sandbox_id), stdout=True, stderr=True)
        except NotFound:
            return []
        return [line for line in logs.decode(errors="replace").splitlines() if "refused" in line]

    def remove_orphans(self, labels: dict[str, str], keep: set[str]) -> int:
        """Remove the proxies and networks carrying ``labels`` whose sandbox is not in
        ``keep`` (an engine that died between starting a proxy and its sandbox); how many.
        Only those older than ``ORPHAN_AGE``: another engine may be starting its sandbox."""
        api = self._client().api
        filters = {"label": [f"{k}={v}" for k, v in labels.items()] + [PROXY_LABEL]}
        old = time.time() - ORPHAN_AGE
        found = {
            c["Labels"][PROXY_LABEL]
            for c in api.containers(all=True, filters=filters)
            if c["Created"] < old
        }
        found |= {
            n["Labels"][PROXY_LABEL]
            for n in api.networks(filters=filters)
            if _epoch(n["Created"]) < old
        }
        orphans = found - keep
        for sandbox_id in orphans:
            self.remove(sandbox_id)
        return len(orphans)

    def remove(self, sandbox_id: str) -> None:
        """Remove the proxy and its network, if there are any. Idempotent."""
        api = self._client().api
        name = proxy_name(sandbox_id)
        try:
            with contextlib.suppress(NotFound):
                api.remove_container(name, force=True)
            with contextlib.suppress(NotFound):
                api.remove_network(name)
        except APIError as exc:
            raise errors.SandboxError(f"could not remove egress proxy {name}: {exc}") from exc
