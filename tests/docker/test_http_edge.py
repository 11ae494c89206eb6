"""Host and Origin on the live service: httpx setting the headers against a real uvicorn, and
Chromium from a page on another origin, and from a page whose name rebinds to 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import playwright.sync_api as playwright_api
import pytest

from engine import Settings
from engine.api.connections import EVICT_AFTER

from ..support.browser import CHROMIUM, FLAGS
from ..support.servers import LiveServer, ServerThread

KEY = LiveServer.keys[0]
AUTH = {"Authorization": f"Bearer {KEY}"}
MCP_BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "edge-test", "version": "1"},
    },
}
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def refused(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code and "SANDBOX_ALLOWED_HOSTS" in error["message"]
    assert r.headers.get("x-request-id")


def own_sessions(server: LiveServer, tenant: str | None = None) -> int:
    return len([s for s in server.engine.sessions.live() if tenant is None or s.owner == tenant])


def test_a_foreign_host_is_421_on_every_route(live_server: LiveServer) -> None:
    before = own_sessions(live_server)
    with httpx.Client(base_url=live_server.url, headers=AUTH, timeout=30) as http:
        evil = {"Host": "attacker.example:8123"}
        refused(http.get("/v1/files", headers=evil), 421, "host_not_allowed")
        refused(http.get("/v1/sessions", headers=evil), 421, "host_not_allowed")
        rebinding = {**evil, "Origin": "http://attacker.example:8123"}
        refused(http.post("/v1/sessions", json={}, headers=rebinding), 421, "host_not_allowed")
        refused(
            http.post("/v1/files", files={"file": ("x.txt", b"x")}, headers=rebinding),
            421,
            "host_not_allowed",
        )
        refused(http.get("/playground", headers=evil), 421, "host_not_allowed")
        refused(
            http.post("/mcp", json=MCP_BODY, headers={**rebinding, **MCP_ACCEPT}),
            421,
            "host_not_allowed",
        )
        # Loopback names on any port are this machine's.
        port = live_server.port
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
            assert http.get("/v1/files", headers={"Host": host}).status_code == 200, host
    assert own_sessions(live_server) == before


def test_a_foreign_origin_may_read_nothing_new_and_change_nothing(
    live_server: LiveServer,
) -> None:
    before = own_sessions(live_server)
    with httpx.Client(base_url=live_server.url, headers=AUTH, timeout=60) as http:
        for origin in ("http://attacker.example", "http://127.0.0.1:1", "null"):
            foreign = {"Origin": origin}
            refused(http.post("/v1/sessions", json={}, headers=foreign), 403, "origin_not_allowed")
            refused(
                http.post("/v1/files", files={"file": ("x.txt", b"x")}, headers=foreign),
                403,
                "origin_not_allowed",
            )
            refused(http.delete("/v1/files/file-x", headers=foreign), 403, "origin_not_allowed")
            refused(
                http.post("/mcp", json=MCP_BODY, headers={**foreign, **MCP_ACCEPT}),
                403,
                "origin_not_allowed",
            )
            # A read from another origin is not refused here (no CORS: its page cannot read it).
            assert http.get("/v1/files", headers=foreign).status_code == 200
        assert own_sessions(live_server) == before
        # The service's own origin, and clients that send no Origin, work.
        own = http.post("/v1/sessions", json={}, headers={"Origin": live_server.url})
        assert own.status_code == 200, own.text
        assert http.delete(f"/v1/sessions/{own.json()['id']}").status_code == 200


@pytest.fixture(scope="module")
def named_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server told to answer two public names, one of them through the old MCP setting."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("named"),
        api_keys=KEY,
        pool_size=0,
        allowed_hosts="engine.example.com,pinned.example:8443",
        mcp_allowed_hosts="old-mcp.example",
        shutdown_sandboxes="close",
    )
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()


def test_allowed_hosts_adds_names_for_every_route_and_mcp(named_server: LiveServer) -> None:
    with httpx.Client(base_url=named_server.url, headers=AUTH, timeout=30) as http:
        for host in ("engine.example.com", "engine.example.com:8000", "pinned.example:8443"):
            assert http.get("/v1/files", headers={"Host": host}).status_code == 200, host
        refused(http.get("/v1/files", headers={"Host": "pinned.example"}), 421, "host_not_allowed")
        mcp = http.post(
            "/mcp",
            json=MCP_INIT,
            headers={
                "Host": "old-mcp.example",
                "Origin": "https://engine.example.com",
                **MCP_ACCEPT,
            },
        )
        assert mcp.status_code == 200, mcp.text
        page_origin = {"Host": "127.0.0.1", "Origin": "https://engine.example.com"}
        made = http.post(
            "/v1/files",
            files={"file": ("a.txt", b"a")},
            data={"purpose": "assistants"},
            headers=page_origin,
        )
        assert made.status_code == 200, made.text


# --- in Chromium ---

ATTACK_PAGE = """<!doctype html><title>elsewhere</title><script>
async function attempt(url, init) {
  try { const r = await fetch(url, init); return r.type === "opaque" ? "opaque" : r.status; }
  catch (e) { return "failed: " + e.name; }
}
window.attack = async (engine) => {
  const form = new FormData();
  form.append("purpose", "assistants");
  form.append("file", new Blob(["stolen"], {type: "text/plain"}), "planted.txt");
  return {
    json: await attempt(engine + "/v1/sessions", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: "{}"}),
    simple: await attempt(engine + "/v1/sessions", {method: "POST", mode: "no-cors"}),
    upload: await attempt(engine + "/v1/files", {method: "POST", mode: "no-cors", body: form}),
  };
};
</script>"""


async def attack_page(scope: dict, receive: Any, send: Any) -> None:  # type: ignore[type-arg]
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = ATTACK_PAGE.encode()
    headers = [(b"content-type", b"text/html"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def keyless_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The default `serve`: no keys, loopback only (what a rebinding page goes after)."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("keyless"), pool_size=0, shutdown_sandboxes="close"
    )
    server = LiveServer(settings)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def elsewhere() -> Iterator[ServerThread]:
    server = ServerThread(attack_page)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), "no /usr/bin/chromium: scripts/setup installs it"
    with playwright_api.sync_playwright() as p:
        # attacker.test resolves to this machine: the state of a page after a DNS rebinding.
        # Chromium's own local-network checks are off, as in browsers that have none: the
        # service must refuse by itself.
        args = [
            *FLAGS,
            "--host-resolver-rules=MAP attacker.test 127.0.0.1",
            "--disable-features=LocalNetworkAccessChecks,BlockInsecurePrivateNetworkRequests,"
            "PrivateNetworkAccessSendPreflights,PrivateNetworkAccessRespectPreflightResults",
        ]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


def files(server: LiveServer) -> int:
    return len(httpx.get(f"{server.url}/v1/files", timeout=30).json()["data"])


def test_a_page_on_another_origin_cannot_post_but_the_engines_own_page_can(
    chromium: Any, keyless_server: LiveServer, elsewhere: ServerThread
) -> None:
    statuses: dict[str, int] = {}
    page = chromium.new_page()
    page.on("response", lambda r: statuses.__setitem__(r.request.method + " " + r.url, r.status))
    before, files_before = own_sessions(keyless_server), files(keyless_server)
    page.goto(f"http://localhost:{elsewhere.port}/")
    outcome = page.evaluate("engine => window.attack(engine)", keyless_server.url)
    assert str(outcome["json"]).startswith("failed"), outcome  # its preflight is refused
    assert outcome["simple"] == "opaque" and outcome["upload"] == "opaque", outcome
    assert statuses[f"POST {keyless_server.url}/v1/sessions"] == 403, statuses
    assert statuses[f"POST {keyless_server.url}/v1/files"] == 403, statuses
    assert own_sessions(keyless_server) == before and files(keyless_server) == files_before
    # The same call from the engine's own origin (the playground's) works.
    page.goto(f"{keyless_server.url}/playground")
    made = page.evaluate(
        """async () => {
          const r = await fetch("/v1/sessions", {method: "POST",
            headers: {"Content-Type": "application/json"}, body: "{}"});
          return [r.status, (await r.json()).id];
        }"""
    )
    assert made[0] == 200, made
    assert own_sessions(keyless_server) == before + 1
    httpx.delete(f"{keyless_server.url}/v1/sessions/{made[1]}", timeout=30).raise_for_status()
    page.close()


def test_a_rebound_name_reaches_nothing(chromium: Any, keyless_server: LiveServer) -> None:
    """The attacker's page was served under attacker.test:<port>; the name now points here."""
    page = chromium.new_page()
    origin = f"http://attacker.test:{keyless_server.port}"
    page.route(
        f"{origin}/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=ATTACK_PAGE),
    )
    before, files_before = own_sessions(keyless_server), files(keyless_server)
    page.goto(f"{origin}/")
    outcome = page.evaluate("engine => window.attack(engine)", origin)
    # Same-origin now, so the page could read the answers: each one is the Host refusal.
    assert outcome["json"] == 421, outcome
    read = page.evaluate(
        "async () => { const r = await fetch('/v1/files'); return [r.status, await r.text()]; }"
    )
    assert read[0] == 421 and "SANDBOX_ALLOWED_HOSTS" in read[1], read
    assert own_sessions(keyless_server) == before and files(keyless_server) == files_before
    page.close()


# --- `sandbox-engine serve` runs the connection layer ---


def closed(s: Any, within: float) -> bool:
    """Whether the server closed ``s`` (an end of file or a reset) within ``within`` s."""
    s.settimeout(within)
    try:
        return bool(s.recv(4096) == b"")
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_serve_drops_stalled_heads_caps_connections_and_raises_its_file_limit(
    tmp_path: Path,
) -> None:
    import socket
    import time

    from ..support.serve_process import ServeProcess, remove_all

    data_dir = tmp_path / "engine"
    serve = ServeProcess(data_dir, header_timeout=3, max_connections=5, shutdown_sandboxes="close")
    try:
        serve.wait_ready()
        assert "connections: at most 5 open, request heads within 3 s" in serve.output()
        limits = Path(f"/proc/{serve.proc.pid}/limits").read_text()
        soft, hard = next(
            line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")
        )
        assert soft == hard, limits
        serve.client.close()  # its keep-alive connection would count towards the cap

        def stall() -> socket.socket:
            s = socket.create_connection(("127.0.0.1", serve.port), timeout=10)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            return s

        begun = time.monotonic()
        socks = [stall() for _ in range(5)]
        # Over the cap while every stalled head is younger than 1 s: the newcomer gets a 503.
        refused = stall()
        refused.settimeout(2)
        assert b"503 Service Unavailable" in refused.recv(4096)
        time.sleep(EVICT_AFTER + 0.2)
        socks.append(stall())  # now the oldest stalled head makes room
        assert closed(socks[0], 0.5)
        assert all(closed(s, 5) for s in socks[1:5])  # the others at their deadline
        assert 2.5 < time.monotonic() - begun < 6  # the stalled heads' deadline is 3 s
        for s in [*socks, refused]:
            s.close()
        assert httpx.get(f"{serve.url}/healthz", timeout=10).status_code == 200
        assert "(SANDBOX_HEADER_TIMEOUT)" in serve.output()
    finally:
        serve.stop()
        remove_all(data_dir)
