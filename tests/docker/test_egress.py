"""Controlled egress against a real network with no internet: the tests make their own.

An HTTPS and HTTP server (a container on an internal Docker network, its certificate from a
test CA) answers to api.good.test, other.good.test and api.bad.test; only the egress proxies
join that network, and they resolve the names through Docker's DNS on it. The sandboxes under
test run real kernels and reach it, or not, through their own proxy only.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import pytest_asyncio

from benchmarks.egress_internet import Internet, running_internet
from engine import Engine, ExecutionStatus, Session, Settings, errors
from engine.egress import parse_policy
from engine.image import build_proxy_image
from engine.sandbox import egress_proxy
from engine.sandbox.egress_proxy import EgressProxies, proxy_name

from ..support.clients import execute, sdk
from ..support.servers import LiveServer


@pytest.fixture(scope="module")
def internet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Internet]:
    with running_internet(tmp_path_factory.mktemp("certs")) as running:
        yield running


@pytest.fixture(scope="module")
def egress_settings(tmp_path_factory: pytest.TempPathFactory, internet: Internet) -> Settings:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("egress-engine"),
        memory_limit_mb=512,
        shutdown_sandboxes="close",
        pool_size=0,
        resume_pool_size=0,
        **internet.settings(),
    )
    build_proxy_image(settings)
    return settings


@pytest_asyncio.fixture(scope="module")
async def egress_engine(egress_settings: Settings) -> AsyncIterator[Engine]:
    async with Engine(egress_settings) as engine:
        yield engine


def allowlist(*domains: str) -> dict[str, object]:
    return {"type": "allowlist", "allowed_domains": list(domains)}


@pytest_asyncio.fixture(scope="module")
async def api_session(egress_engine: Engine) -> AsyncIterator[Session]:
    session = await egress_engine.session(network_policy=allowlist("api.good.test"))
    yield session
    await egress_engine.sessions.close(session.id)


async def run(session: Session, code: str, internet: Internet) -> dict[str, Any]:
    """Run ``code`` (which sets ``out``, a dict) with the test CA at ``ca``; return ``out``."""
    result = await session.execute(
        internet.prelude() + code + "\nimport json; print(json.dumps(out))", 60
    )
    assert result.status is ExecutionStatus.OK, result.error
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


async def test_an_allowed_domain_works_through_the_proxy_variables(
    api_session: Session, internet: Internet
) -> None:
    out = await run(
        api_session,
        """
import http.client, os
out["https"] = get("https://api.good.test/hello")
out["http"] = get("http://api.good.test/p")
host, port = os.environ["HTTPS_PROXY"].removeprefix("http://").split(":")
connection = http.client.HTTPSConnection(host, int(port), context=context, timeout=20)
connection.set_tunnel("api.good.test", 443)
connection.request("GET", "/tunnel")
out["http.client"] = json.loads(connection.getresponse().read())
out["variables"] = sorted(k for k in os.environ if k.lower().endswith("_proxy"))
out["trusts_engine_ca"] = "SSL_CERT_FILE" in os.environ or os.path.exists("/conn/egress-ca.pem")
""",
        internet,
    )
    assert out["https"] == [200, {"host": "api.good.test", "path": "/hello", "port": 443}]
    assert out["http"] == [200, {"host": "api.good.test", "path": "/p", "port": 80}]
    assert out["http.client"] == {"host": "api.good.test", "path": "/tunnel", "port": 443}
    assert out["trusts_engine_ca"] is False  # only sandboxes with domain secrets do
    assert out["variables"] == sorted(
        ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy"]
    )


async def test_denied_domains_ip_literals_and_other_ports_get_a_403_naming_the_policy(
    egress_engine: Engine, api_session: Session, internet: Internet
) -> None:
    out = await run(
        api_session,
        f"""
for name, url in (("denied", "https://api.bad.test/"), ("other_tenant", "https://other.good.test/"),
                  ("ip", "https://{internet.server_ip}/"), ("port", "https://api.good.test:8443/"),
                  ("redirect", "https://api.good.test/redirect"), ("ipv6", "https://[::1]/"),
                  ("decimal_ip", "https://2130706433/")):
    out[name] = get(url)
out["plain"] = get("http://api.bad.test/")
out["host_header"] = get("http://api.good.test/", {{"Host": "api.bad.test"}})
""",
        internet,
    )
    # urllib writes an IPv6 CONNECT without brackets, which the proxy cannot even parse: a 400
    assert out["ipv6"][0] == "refused" and "400" in out["ipv6"][1]
    for case in ("denied", "other_tenant", "ip", "port", "redirect", "decimal_ip"):
        assert out[case][0] == "refused", (case, out[case])
        assert "403" in out[case][1], (case, out[case])
    status, body = out["plain"]
    assert status == 403 and "network policy" in body and "api.bad.test" in body
    status, body = out["host_header"]
    assert status == 403 and "Host header" in body
    logged = proxies_log(egress_engine, api_session)
    assert any("api.bad.test:443" in line and api_session.id in line for line in logged), logged


def proxies_log(engine: Engine, session: Session) -> list[str]:
    egress = getattr(engine.backend, "egress", None)
    assert isinstance(egress, EgressProxies)
    return egress.refusals(session.sandbox.id)


async def test_raw_sockets_dns_and_tunnels_other_than_tls_to_the_host_go_nowhere(
    api_session: Session, internet: Internet
) -> None:
    host_listener = socket.create_server(("0.0.0.0", 0))
    host_port = host_listener.getsockname()[1]
    try:
        out = await run(
            api_session,
            f"""
import os, socket, ssl
def attempt(host, port):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); return "CONNECTED"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
out["direct"] = attempt("{internet.server_ip}", 443)
out["outside"] = attempt("1.1.1.1", 443)
routes = [line.split() for line in open("/proc/net/route").read().splitlines()[1:]]
gateways = {{socket.inet_ntoa(bytes.fromhex(r[2])[::-1]) for r in routes if r[1] == "00000000"}}
out["host"] = [attempt(gateway, {host_port}) for gateway in sorted(gateways)]
for name in ("api.good.test", "example.com"):
    try:
        socket.getaddrinfo(name, 443); out["dns_" + name] = "RESOLVED"
    except OSError as e:
        out["dns_" + name] = "no dns"
proxy_host, proxy_port = os.environ["HTTPS_PROXY"].removeprefix("http://").split(":")

def tunnel():
    s = socket.create_connection((proxy_host, int(proxy_port)), timeout=10)
    s.sendall(b"CONNECT api.good.test:443 HTTP/1.1\\r\\nHost: api.good.test:443\\r\\n\\r\\n")
    head = b""
    while b"\\r\\n\\r\\n" not in head:
        head += s.recv(1024)
    assert head.startswith(b"HTTP/1.1 200"), head
    return s

s = tunnel()
s.sendall(b"GET / HTTP/1.1\\r\\nHost: api.good.test\\r\\n\\r\\n")
try:
    out["plain_in_tunnel"] = s.recv(1024).decode() or "closed"
except OSError as e:
    out["plain_in_tunnel"] = "closed"
context = ssl.create_default_context(cafile=ca)
context.check_hostname = False
try:
    context.wrap_socket(tunnel(), server_hostname="api.bad.test").do_handshake()
    out["sni_mismatch"] = "HANDSHAKE"
except (OSError, ssl.SSLError) as e:
    out["sni_mismatch"] = "closed"
good = ssl.create_default_context(cafile=ca).wrap_socket(tunnel(), server_hostname="api.good.test")
out["sni_match"] = good.version()
""",
            internet,
        )
    finally:
        host_listener.close()
    assert out["direct"] != "CONNECTED" and out["outside"] != "CONNECTED", out
    assert "CONNECTED" not in out["host"]
    assert out["dns_api.good.test"] == "no dns" and out["dns_example.com"] == "no dns"
    assert out["plain_in_tunnel"] == "closed", out
    assert out["sni_mismatch"] == "closed"
    assert str(out["sni_match"]).startswith("TLS")


async def test_two_sessions_policies_do_not_mix(
    egress_engine: Engine, api_session: Session, internet: Internet
) -> None:
    other = await egress_engine.session(network_policy=allowlist("other.good.test"))
    try:
        code = """
for name in ("api.good.test", "other.good.test"):
    answer = get(f"https://{name}/")
    out[name] = answer[0] if answer[0] != "refused" else "refused 403" * ("403" in answer[1])
"""
        assert await run(other, code, internet) == {
            "api.good.test": "refused 403",
            "other.good.test": 200,
        }
        assert await run(api_session, code, internet) == {
            "api.good.test": 200,
            "other.good.test": "refused 403",
        }
        assert other.info.network_policy["allowed_domains"] == ["other.good.test"]
    finally:
        await egress_engine.sessions.close(other.id)


async def test_a_disabled_session_still_has_only_loopback(egress_engine: Engine) -> None:
    session = await egress_engine.session()
    try:
        result = await session.execute("import os; print(sorted(os.listdir('/sys/class/net')))")
        assert result.stdout.strip() == "['lo']"
        assert session.info.network_policy == {"type": "disabled"}
    finally:
        await egress_engine.sessions.close(session.id)


async def test_the_cap_refuses_domains_the_operator_did_not_allow(egress_engine: Engine) -> None:
    with pytest.raises(errors.InvalidRequest, match="outside what this server allows"):
        await egress_engine.session(network_policy=allowlist("api.bad.test"))


async def test_closing_a_session_removes_its_proxy_and_network(egress_engine: Engine) -> None:
    session = await egress_engine.session(network_policy=allowlist("api.good.test"))
    sandbox_id = session.sandbox.id
    client = docker.from_env()
    try:
        name = f"sandbox-engine-egress-{sandbox_id}"
        proxy = client.containers.get(name)
        host = proxy.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
        assert host["SecurityOpt"] == ["no-new-privileges"] and host["PidsLimit"] > 0
        assert proxy.attrs["Config"]["User"] != "" and not host["PortBindings"]
        assert client.networks.get(name).attrs["Internal"] is True
        assert not any(v.startswith("EGRESS_CA=") for v in proxy.attrs["Config"]["Env"])
        await egress_engine.sessions.close(session.id)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(name)
    finally:
        client.close()


async def test_a_paused_session_resumes_with_its_policy_and_a_new_proxy(
    egress_engine: Engine, internet: Internet
) -> None:
    session = await egress_engine.session(network_policy=allowlist("other.good.test"))
    try:
        before = session.sandbox.id
        await session.pause()
        assert session.info.network_policy["allowed_domains"] == ["other.good.test"]
        code = 'out["other"] = get("https://other.good.test/")[0]\nout["api"] = get("https://api.good.test/")[0]'
        assert await run(session, code, internet) == {"other": 200, "api": "refused"}
        assert session.sandbox.id != before
    finally:
        await egress_engine.sessions.close(session.id)


async def test_a_domain_secret_is_put_in_for_its_domain_only_and_never_seen(
    egress_engine: Engine, internet: Internet
) -> None:
    secret = "real-secret-7f3a9c"
    policy = {
        **allowlist("api.good.test", "other.good.test"),
        "domain_secrets": [{"domain": "api.good.test", "name": "API_TOKEN", "value": secret}],
    }
    session = await egress_engine.session(network_policy=policy)
    try:
        code = f"""
import glob, os
token = os.environ["API_TOKEN"]
out["placeholder"] = token
plain = ssl.create_default_context()  # SSL_CERT_FILE: the public CAs and the engine's
for name in ("api.good.test", "other.good.test"):
    headers = {{"Authorization": "Bearer " + token}}
    request = urllib.request.Request(f"https://{{name}}/s", headers=headers)
    context = plain if name == "api.good.test" else ssl.create_default_context(cafile=ca)
    with urllib.request.urlopen(request, context=context, timeout=20) as page:
        out[name] = json.loads(page.read()).get("auth")
seen = []
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
    try:
        if b{secret!r} in open(path, "rb").read():
            seen.append(path)
    except OSError:
        pass
for root in ("/conn", "/mnt/data", "/tmp", "/home/sandbox", "/etc"):
    for folder, _, files in os.walk(root):
        for f in files:
            try:
                if b{secret!r} in open(os.path.join(folder, f), "rb").read():
                    seen.append(os.path.join(folder, f))
            except OSError:
                pass
out["seen"] = seen
"""
        out = await run(session, code, internet)
        assert out["placeholder"] != secret and out["placeholder"].startswith("egress-placeholder")
        assert out["api.good.test"] == f"Bearer {secret}"
        assert out["other.good.test"] == f"Bearer {out['placeholder']}"
        assert out["seen"] == []
        shown = json.dumps(session.info.model_dump(mode="json"))
        assert secret not in shown and "API_TOKEN" in shown
    finally:
        await egress_engine.sessions.close(session.id)


async def test_pip_installs_from_an_allowed_package_index(
    api_session: Session, internet: Internet
) -> None:
    code = """
import subprocess, sys
done = subprocess.run(
    [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-cache-dir",
     "--index-url", "https://api.good.test/simple/", "--cert", ca, "--target", "/tmp/pkgs",
     "egress-probe"], capture_output=True, text=True, timeout=120)
sys.path.insert(0, "/tmp/pkgs")
import egress_probe
out["answer"] = egress_probe.ANSWER
out["returncode"] = done.returncode
"""
    assert await run(api_session, code, internet) == {"answer": 42, "returncode": 0}


async def test_a_proxy_whose_sandbox_never_started_is_swept(
    egress_engine: Engine, api_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    egress = getattr(egress_engine.backend, "egress", None)
    assert isinstance(egress, EgressProxies)
    policy = parse_policy(allowlist("api.good.test"), ["*.good.test"])
    orphan = f"orphan{uuid.uuid4().hex[:10]}"
    await asyncio.to_thread(egress.start, orphan, "", policy, egress_engine.labels)
    client = docker.from_env()
    try:
        client.containers.get(proxy_name(orphan))
        await egress_engine.backend.find_leftovers(egress_engine.labels)
        client.containers.get(proxy_name(orphan))  # too young: maybe another engine's
        monkeypatch.setattr(egress_proxy, "ORPHAN_AGE", -60.0)
        await egress_engine.backend.find_leftovers(egress_engine.labels)
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(proxy_name(orphan))
        with pytest.raises(docker.errors.NotFound):
            client.networks.get(proxy_name(orphan))
        client.containers.get(proxy_name(api_session.sandbox.id))  # a live sandbox keeps its own
    finally:
        egress.remove(orphan)
        client.close()


def test_an_openai_sdk_container_with_an_allowlist_reaches_its_domain_only(
    tmp_path: Path, egress_settings: Settings, internet: Internet
) -> None:
    keys = ",".join(LiveServer.keys)
    server = LiveServer(
        egress_settings.model_copy(update={"data_dir": tmp_path / "server", "api_keys": keys})
    )
    server.start()
    try:
        client = sdk(server)
        created = client.containers.create(
            name="egress",
            network_policy={"type": "allowlist", "allowed_domains": ["api.good.test"]},
        )
        policy = server.engine.get_session(created.id).info.network_policy
        assert policy["allowed_domains"] == ["api.good.test"]
        code = (
            internet.prelude()
            + 'out["allowed"] = get("https://api.good.test/sdk")\n'
            + 'out["denied"] = get("https://api.bad.test/")\n'
            + "print(json.dumps(out))"
        )
        answer = execute(server, created.id, code)
        out = json.loads(answer["stdout"].strip().splitlines()[-1])
        assert out["allowed"] == [200, {"host": "api.good.test", "path": "/sdk", "port": 443}]
        assert out["denied"][0] == "refused" and "403" in out["denied"][1], out
        client.containers.delete(created.id)
    finally:
        server.stop()


async def test_requests_reaches_an_allowed_domain_and_reads_a_refusal(
    api_session: Session, internet: Internet
) -> None:
    code = """
import requests
page = requests.get("https://api.good.test/requests", verify=ca, timeout=20)
out["allowed"] = [page.status_code, page.json()]
out["http"] = requests.get("http://api.good.test/plain", timeout=20).json()
try:
    requests.get("https://api.bad.test/", verify=ca, timeout=20)
    out["denied"] = "REACHED"
except requests.exceptions.ProxyError as e:
    out["denied"] = str(e)
refused = requests.get("http://api.bad.test/", timeout=20)
out["refused"] = [refused.status_code, refused.json()["error"]["type"]]
"""
    out = await run(api_session, code, internet)
    assert out["allowed"] == [200, {"host": "api.good.test", "path": "/requests", "port": 443}]
    assert out["http"] == {"host": "api.good.test", "path": "/plain", "port": 80}
    assert "403" in out["denied"], out
    assert out["refused"] == [403, "egress_refused"]
