"""The HTTP edge without Docker: the Host/Origin policy, and the connection layer of ``serve``
(request-head deadline, connection cap, accept() errors logged once per interval) on a real
uvicorn serving a small app."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine import Settings
from engine.api.connections import EVICT_AFTER, EdgeServer
from engine.api.hosts import HostPolicy

from ..support.servers import ServerThread

ROOT = Path(__file__).resolve().parents[2]
HALF_HEAD = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Stall: "


def policy(**settings: object) -> HostPolicy:
    return HostPolicy(Settings(**settings))  # type: ignore[arg-type]


def scope(method: str = "GET", **headers: str) -> dict[str, object]:
    raw = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return {"type": "http", "method": method, "scheme": "http", "headers": raw}


def test_loopback_hosts_on_any_port_and_nothing_else_by_default() -> None:
    p = policy()
    for host in ("127.0.0.1", "127.0.0.1:8000", "localhost:1", "LOCALHOST", "[::1]:8000", "[::1]"):
        assert p.host_allowed(host), host
    for host in ("attacker.example", "attacker.example:8000", "127.0.0.2", "localhost.evil", ""):
        assert not p.host_allowed(host), host


def test_listed_names_and_the_bind_name_are_served() -> None:
    p = policy(host="engine.lan", allowed_hosts="api.example.com, pinned.example:8443")
    assert p.host_allowed("engine.lan:8000")
    assert p.host_allowed("api.example.com") and p.host_allowed("api.example.com:9")
    assert p.host_allowed("pinned.example:8443")
    assert not p.host_allowed("pinned.example:8444") and not p.host_allowed("pinned.example")
    assert not policy(host="0.0.0.0").host_allowed("0.0.0.0")


def test_the_old_mcp_setting_still_adds_names(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "engine.api"):
        p = policy(mcp_allowed_hosts="mcp.example")
    assert p.host_allowed("mcp.example:8000")
    assert "SANDBOX_MCP_ALLOWED_HOSTS is deprecated" in caplog.text


def test_a_bad_entry_is_refused_at_start_with_the_setting_named() -> None:
    with pytest.raises(ValueError, match="SANDBOX_ALLOWED_HOSTS"):
        policy(allowed_hosts="ok.example, http://bad.example/")


def test_origin_is_checked_on_state_changing_calls_only() -> None:
    p = policy(allowed_hosts="app.example.com")
    own = {"host": "127.0.0.1:8000"}
    assert p.refusal(scope("POST", **own, origin="http://127.0.0.1:8000")) is None
    assert p.refusal(scope("POST", **own)) is None  # not a browser
    assert p.refusal(scope("POST", **own, origin="https://app.example.com")) is None
    for origin in ("http://127.0.0.1:9999", "http://evil.example", "null", "garbage"):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            refused = p.refusal(scope(method, **own, origin=origin))
            assert refused is not None and refused[0] == 403, (method, origin)
            assert "SANDBOX_ALLOWED_HOSTS" in refused[1]
        assert p.refusal(scope("GET", **own, origin=origin)) is None
        assert p.refusal(scope("GET", **own, origin=origin), every_method=True) is not None
    # Default ports: an https origin on 443 is the same origin as a Host without a port.
    https = {"type": "http", "method": "POST", "scheme": "https"}
    headers = [(b"host", b"app.example.com"), (b"origin", b"https://app.example.com")]
    assert p.refusal({**https, "headers": headers}) is None


def test_a_foreign_host_is_421_whatever_the_origin() -> None:
    refused = policy().refusal(
        scope("POST", host="attacker.example:8123", origin="http://attacker.example:8123")
    )
    assert refused is not None and refused[0] == 421 and refused[2] == "host_not_allowed"
    assert "SANDBOX_ALLOWED_HOSTS" in refused[1]


# --- the connection layer, on a real uvicorn ---


async def small_app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    assert scope["type"] in ("http", "lifespan")
    if scope["type"] == "lifespan":
        while True:
            message = await receive()  # type: ignore[operator]
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})  # type: ignore[operator]
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})  # type: ignore[operator]
                return
    if scope["path"] == "/hold":  # a request in flight until its client goes away
        while (await receive())["type"] != "http.disconnect":  # type: ignore[operator]
            pass
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]


class Small:
    """The ASGI app above with ``state.settings``, as ServerThread reads them from an app."""

    def __init__(self, settings: Settings) -> None:
        self.state = type("State", (), {"settings": settings})()

    async def __call__(self, scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        await small_app(scope, receive, send)


@pytest.fixture
def edge(request: pytest.FixtureRequest) -> Iterator[ServerThread]:
    timeout = getattr(request, "param", 1.0)
    server = ServerThread(Small(Settings(header_timeout=timeout, max_connections=20)))
    server.start()
    yield server
    server.stop()


def stalled(server: ServerThread, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        s.sendall(HALF_HEAD)
        socks.append(s)
    return socks


def closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while chunk := s.recv(4096):
            if b"HTTP/1.1" in chunk:
                continue
        return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_the_tests_servers_use_the_connection_layer(edge: ServerThread) -> None:
    assert isinstance(edge.server, EdgeServer)
    assert edge.server.config.header_timeout == 1.0
    assert edge.server.config.max_connections == 20


def test_stalled_heads_are_dropped_while_a_normal_request_answers(edge: ServerThread) -> None:
    socks = stalled(edge, 10)
    started = time.monotonic()
    assert httpx.get(f"{edge.url}/", timeout=5).text == "ok"
    for s in socks:
        assert closed_by_server(s, within=5), "a stalled connection was not dropped"
    took = time.monotonic() - started
    assert 0.8 <= took < 4, f"stalled heads dropped after {took:.1f} s (deadline 1 s)"
    # A head that trickles in one byte at a time is no longer than its deadline either.
    s = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    begun = time.monotonic()
    dropped = False
    for byte in HALF_HEAD * 20:
        try:
            s.sendall(bytes([byte]))
        except OSError:
            dropped = True
            break
        time.sleep(0.05)
        if time.monotonic() - begun > 5:
            break
    assert dropped or closed_by_server(s, within=1)
    assert time.monotonic() - begun < 4
    for s in socks:
        s.close()


def test_an_idle_keep_alive_connection_has_the_same_deadline(edge: ServerThread) -> None:
    s = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert b"200 OK" in s.recv(4096)
    begun = time.monotonic()
    # Keep uvicorn's keep-alive timer from firing: a byte every 0.3 s, never a full head.
    for byte in HALF_HEAD:
        try:
            s.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.3)
        if time.monotonic() - begun > 4:
            break
    assert closed_by_server(s, within=1)
    assert time.monotonic() - begun < 4


@pytest.mark.parametrize("edge", [6.0], indirect=True)
def test_at_the_cap_a_stalled_head_makes_room_for_a_new_connection(
    edge: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "engine.serve"):
        held = stalled(edge, 20)
        # A head awaited for less than EVICT_AFTER may just not have been read: kept, and
        # the newcomer is refused.
        assert httpx.get(f"{edge.url}/", timeout=5).status_code == 503
        time.sleep(EVICT_AFTER + 0.2)  # only a head awaited that long can be evicted
        newer = stalled(edge, 10)
        # The ten that waited longest were closed, oldest first; the rest still wait.
        assert all(closed_by_server(s, within=1) for s in held[:10])
        assert not any(closed_by_server(s, within=0.05) for s in held[10:] + newer)
        begun = time.monotonic()
        assert httpx.get(f"{edge.url}/", timeout=5).text == "ok"
        assert time.monotonic() - begun < 1
        assert closed_by_server(held[10], within=1)
        for s in held + newer:
            s.close()
    lines = [r for r in caplog.records if "to make room" in r.getMessage()]
    assert 1 <= len(lines) <= 2, [r.getMessage() for r in lines]


IN_FLIGHT = b"POST /hold HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\n"


@pytest.mark.parametrize("edge", [6.0], indirect=True)
def test_over_the_cap_with_every_request_in_flight_new_connections_get_503_at_once(
    edge: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "engine.serve"):
        held = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", edge.port), timeout=10)
            s.sendall(IN_FLIGHT)
            held.append(s)
        time.sleep(0.3)  # the server has parsed their heads
        for _ in range(15):
            begun = time.monotonic()
            r = httpx.get(f"{edge.url}/", timeout=5)
            assert r.status_code == 503 and time.monotonic() - begun < 1
            assert r.json()["error"]["code"] == "too_many_connections"
            assert "SANDBOX_MAX_CONNECTIONS" in r.json()["error"]["message"]
        for s in held:
            s.close()
    lines = [r for r in caplog.records if "over the cap" in r.getMessage()]
    assert 1 <= len(lines) <= 2, [r.getMessage() for r in lines]
    # Once those requests are gone, the server takes connections again.
    deadline = time.monotonic() + 5
    while httpx.get(f"{edge.url}/", timeout=5).status_code == 503:
        assert time.monotonic() < deadline, "the cap was not released"
        time.sleep(0.05)


ACCEPT_STORM = textwrap.dedent(
    """
    import resource, socket, sys
    from engine.api.connections import EdgeConfig, EdgeServer
    from tests.unit.test_http_edge import small_app
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = EdgeConfig(small_app, header_timeout=3.0, max_connections=10_000, lifespan="off")
    EdgeServer(config).run(sockets=[sock])
    """
)


def test_accept_errors_are_logged_once_per_interval() -> None:
    """Past the open-files limit (here a cap above it, so that accept() fails), the log gets
    a line per interval, not one per failed accept()."""
    proc = subprocess.Popen(
        [sys.executable, "-c", ACCEPT_STORM],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        socks = []
        for _ in range(150):  # over the 64 descriptors the server has
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            socks.append(s)
        time.sleep(2.5)  # the server keeps failing accept() while they are held
        for s in socks:
            s.close()
        time.sleep(4)  # stalled heads dropped (3 s); the queued connections come and go
        assert httpx.get(f"http://127.0.0.1:{port}/", timeout=10).text == "ok"
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    storm = stderr.count("accept() failed")
    raw = stderr.count("socket.accept() out of system resource")
    assert 1 <= storm <= 2 and raw == 0, stderr[-2000:]
