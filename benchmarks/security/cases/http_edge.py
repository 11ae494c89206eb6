"""The HTTP edge: foreign Host names and Origins (DNS rebinding, cross-site writes), slow-loris
connections, and the log volume of a server out of descriptors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import selectors
import socket
import statistics
import threading
import time
from typing import Any

import httpx

from engine.api.connections import EdgeServer

from ..harness import Context
from ..model import API, RESOURCES, Case, Verdict, clip

ATTACKER = "attacker.example:8123"
ATTACKER_ORIGIN = f"http://{ATTACKER}"
REBINDING = {"Host": ATTACKER, "Origin": ATTACKER_ORIGIN}
MCP_INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def _refused(r: httpx.Response, status: int, code: str) -> str | None:
    """None when ``r`` is the refusal expected, else what it was."""
    try:
        error = r.json().get("error") or {}
    except ValueError:
        error = {}
    if r.status_code == status and error.get("code") == code:
        if "SANDBOX_ALLOWED_HOSTS" in str(error.get("message")):
            return None
        return f"{status} without the setting named"
    return f"{r.status_code} {clip(r.text, 80)}"


async def _state(ctx: Context) -> tuple[int, int]:
    """Sessions and file objects of tenant A, to show that a refused call changed nothing."""
    async with ctx.client(0) as http:
        files = (await http.get("/v1/files", params={"limit": 100})).json()["data"]
    return len(ctx.engine.sessions.live()), len(files)


async def _probe(
    ctx: Context, requests: dict[str, tuple[str, str, dict[str, Any]]], status: int, code: str
) -> Verdict:
    before = await _state(ctx)
    bad: dict[str, str] = {}
    async with ctx.client(0) as http:
        for name, (method, path, kwargs) in requests.items():
            problem = _refused(await http.request(method, path, **kwargs), status, code)
            if problem is not None:
                bad[name] = problem
    after = await _state(ctx)
    end = time.perf_counter()
    if after != before:
        bad["state"] = f"sessions/files {before} -> {after}"
    if bad:
        return Verdict(False, f"UNEXPECTED {bad}", None, end)
    return Verdict(
        True, f"{len(requests)} requests, all {status} {code}; nothing created", None, end
    )


def _upload(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "files": {"file": ("planted.txt", b"planted")},
        "data": {"purpose": "assistants"},
        "headers": headers,
    }


async def foreign_host_read(ctx: Context) -> Verdict:
    evil = {"Host": ATTACKER}
    return await _probe(
        ctx,
        {
            "files": ("GET", "/v1/files", {"headers": evil}),
            "sessions": ("GET", "/v1/sessions", {"headers": evil}),
            "config": ("GET", "/v1/playground/config", {"headers": evil}),
            "no-port": ("GET", "/v1/files", {"headers": {"Host": "attacker.example"}}),
        },
        421,
        "host_not_allowed",
    )


async def foreign_origin_write(ctx: Context) -> Verdict:
    evil = {"Origin": ATTACKER_ORIGIN}
    local_other_port = {"Origin": "http://127.0.0.1:1"}
    opaque = {"Origin": "null"}
    return await _probe(
        ctx,
        {
            "create-session": ("POST", "/v1/sessions", {"json": {}, "headers": evil}),
            "upload": ("POST", "/v1/files", _upload(evil)),
            "delete": ("DELETE", "/v1/files/file-none", {"headers": evil}),
            "other-local-port": ("POST", "/v1/sessions", {"json": {}, "headers": local_other_port}),
            "null-origin": ("POST", "/v1/files", _upload(opaque)),
        },
        403,
        "origin_not_allowed",
    )


async def rebinding_sessions(ctx: Context) -> Verdict:
    return await _probe(
        ctx,
        {
            "create": ("POST", "/v1/sessions", {"json": {}, "headers": REBINDING}),
            "list": ("GET", "/v1/sessions", {"headers": REBINDING}),
        },
        421,
        "host_not_allowed",
    )


async def rebinding_files(ctx: Context) -> Verdict:
    return await _probe(
        ctx,
        {
            "list": ("GET", "/v1/files", {"headers": REBINDING}),
            "upload": ("POST", "/v1/files", _upload(REBINDING)),
        },
        421,
        "host_not_allowed",
    )


async def rebinding_mcp(ctx: Context) -> Verdict:
    headers = {**REBINDING, **MCP_HEADERS}
    return await _probe(
        ctx,
        {
            "initialize": ("POST", "/mcp", {"json": MCP_INIT, "headers": headers}),
            "stream": ("GET", "/mcp", {"headers": headers}),
        },
        421,
        "host_not_allowed",
    )


# --- slow-loris ---

HALF_HEAD = b"POST /v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


class Loris:
    """Holds ``n`` connections that never finish their request head, in a thread of its own;
    each one the server drops is opened again at once."""

    def __init__(self, port: int, n: int) -> None:
        self.address = ("127.0.0.1", port)
        self.n = n
        self.held = 0
        self.dropped = 0
        self.failed = 0
        self.ready = threading.Event()
        """Set once all ``n`` were open (or opening gave up)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Loris:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _open(self, selector: selectors.BaseSelector) -> None:
        s = socket.socket()
        try:
            s.settimeout(5)
            s.connect(self.address)
            s.sendall(HALF_HEAD)
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
            self.held += 1
        except OSError:
            self.failed += 1
            s.close()

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        try:
            while self.held < self.n and self.failed < self.n and not self._stop.is_set():
                self._open(selector)
            self.ready.set()
            while not self._stop.is_set():
                for key, _ in selector.select(0.2):
                    s = key.fileobj
                    assert isinstance(s, socket.socket)
                    with contextlib.suppress(OSError):
                        if s.recv(4096):
                            continue  # an answer (a 503 over the cap): the close follows
                    selector.unregister(s)
                    s.close()
                    self.held -= 1
                    self.dropped += 1
                    if not self._stop.is_set():
                        self._open(selector)
        finally:
            for key in list(selector.get_map().values()):
                with contextlib.suppress(OSError):
                    key.fileobj.close()  # type: ignore[union-attr]
            selector.close()


async def _latencies(http: httpx.AsyncClient, sid: str, count: int, at_least: float) -> list[float]:
    """Tenant B's execute round trips: ``count`` of them, for at least ``at_least`` seconds."""
    samples: list[float] = []
    begun = time.monotonic()
    while len(samples) < count or time.monotonic() - begun < at_least:
        t0 = time.perf_counter()
        try:
            r = await http.post(f"/v1/sessions/{sid}/execute", json={"code": "6 * 7"})
        except httpx.HTTPError as exc:
            raise RuntimeError(
                f"tenant B's execute {len(samples) + 1} failed after "
                f"{time.perf_counter() - t0:.2f} s: {type(exc).__name__} {exc!r}"
            ) from exc
        samples.append(time.perf_counter() - t0)
        if r.status_code != 200 or r.json().get("result") != {"text/plain": "42"}:
            raise RuntimeError(f"tenant B's execute failed: {r.status_code} {clip(r.text, 80)}")
    return samples


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


async def slowloris(ctx: Context) -> Verdict:
    """2,000 connections stall in their request head for longer than the head deadline, and
    are opened again as the server drops them, while tenant B runs cells over HTTP."""
    port = int(ctx.api_url.rsplit(":", 1)[1])
    deadline = ctx.settings.header_timeout
    async with ctx.client(1, timeout=30) as http:
        r = await http.post("/v1/sessions", json={})
        r.raise_for_status()
        sid = r.json()["id"]
        await _latencies(http, sid, 20, 0)  # warm
        quiet = await _latencies(http, sid, 150, 3)
        with Loris(port, 2000) as loris:
            await asyncio.to_thread(loris.ready.wait, 60)
            full = loris.held
            attacked = await _latencies(http, sid, 150, deadline + 3)
            dropped, failed = loris.dropped, loris.failed
        after = (await http.get("/healthz")).status_code
        await http.delete(f"/v1/sessions/{sid}")
    end = time.perf_counter()
    q, a = p99(quiet), p99(attacked)
    ok = full >= 2000 and dropped >= 2000 and a < 2 * q and after == 200
    return Verdict(
        ok,
        f"held {full} half-open connections (dropped and reopened {dropped} after the "
        f"{deadline:g} s head deadline; {failed} failed to connect); tenant B execute p99 "
        f"{q * 1000:.1f} ms quiet, {a * 1000:.1f} ms under attack ({a / q:.2f}x, must be < 2x; "
        f"p50 {statistics.median(quiet) * 1000:.1f} -> {statistics.median(attacked) * 1000:.1f}"
        f" ms; {len(attacked)} requests); healthz {after}",
        None,
        end,
    )


def _hold_from_another_process(port: int, n: int, seconds: float, ready: Any) -> None:
    with Loris(port, n) as loris:
        loris.ready.wait(60)
        ready.set()
        time.sleep(seconds)


async def slowloris_over_cap(ctx: Context) -> Verdict:
    """Twice as many stalled heads as the connection cap (lowered to 300 for the case), from
    another process that reopens each one the moment it is closed: a connection flood. The
    cap must not lock tenant B out: every request on its open connection is answered."""
    import multiprocessing

    config = _server(ctx).config
    port = int(ctx.api_url.rsplit(":", 1)[1])
    cap, config.max_connections = config.max_connections, 300
    evicted_before = config.evicted.total
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    attacker = spawn.Process(target=_hold_from_another_process, args=(port, 600, 8.0, ready))
    try:
        async with ctx.client(1, timeout=30) as http:
            r = await http.post("/v1/sessions", json={})
            r.raise_for_status()
            sid = r.json()["id"]
            await _latencies(http, sid, 20, 0)
            quiet = await _latencies(http, sid, 100, 2)
            attacker.start()
            began = time.monotonic()
            while not ready.is_set() and time.monotonic() - began < 60:
                await _latencies(http, sid, 1, 0)  # its connection stays open meanwhile
            attacked = await _latencies(http, sid, 50, 4)
            await asyncio.to_thread(attacker.join, 30)
            await http.delete(f"/v1/sessions/{sid}")
    finally:
        config.max_connections = cap
        if attacker.is_alive():
            attacker.kill()
    end = time.perf_counter()
    evicted = config.evicted.total - evicted_before
    ok = evicted >= 300
    return Verdict(
        ok,
        f"600 stalled heads against a cap of 300, reopened at once: {evicted} closed to make "
        f"room; all {len(attacked)} of tenant B's executes answered (p50 "
        f"{statistics.median(quiet) * 1000:.1f} ms quiet, "
        f"{statistics.median(attacked) * 1000:.1f} ms under the flood; p99 "
        f"{p99(quiet) * 1000:.1f} -> {p99(attacked) * 1000:.1f} ms)",
        None,
        end,
    )


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _server(ctx: Context) -> EdgeServer:
    server = ctx.scratch.get("edge_server")
    if isinstance(server, EdgeServer):
        return server
    raise RuntimeError("the bench harness did not hand over its EdgeServer")


async def accept_error_log(ctx: Context) -> Verdict:
    """The process at its descriptor limit with connections still arriving (the cap lifted, to
    reach accept() failures at all): the log gets a line per interval, not one per failure."""
    server = _server(ctx)
    config = server.config
    port = int(ctx.api_url.rsplit(":", 1)[1])
    records = Records()
    root = logging.getLogger()
    root.addHandler(records)
    old_level = root.level
    root.setLevel(logging.WARNING)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = config.max_connections
    socks: list[socket.socket] = []
    try:
        open_now = len(os.listdir("/proc/self/fd"))
        # The client sockets are opened first; then the server has 40 descriptors to spare.
        for _ in range(300):
            s = socket.socket()
            s.setblocking(False)
            socks.append(s)
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_now + 300 + 40, hard))
        config.max_connections = 1_000_000
        for s in socks:
            with contextlib.suppress(BlockingIOError):
                s.connect(("127.0.0.1", port))
        await asyncio.sleep(3)
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        config.max_connections = cap
        root.removeHandler(records)
        root.setLevel(old_level)
    await asyncio.sleep(1.5)  # asyncio retries accept() after 1 s
    async with ctx.client(0) as http:
        healthy = (await http.get("/healthz")).status_code == 200
    end = time.perf_counter()
    accept_lines = [r for r in records.records if "accept" in r.getMessage()]
    failures = config.accept_errors.total
    ok = healthy and failures > 0 and len(accept_lines) <= 2 and len(records.records) <= 20
    return Verdict(
        ok,
        f"{failures} accept() failures in 3 s gave {len(accept_lines)} log line(s) about "
        f"accept and {len(records.records)} warning(s) in all; healthy after={healthy}",
        None,
        end,
    )


CASES = [
    Case(
        "host-foreign-read",
        API,
        "read routes (files, sessions, playground config) with Host: attacker.example",
        "421 host_not_allowed naming SANDBOX_ALLOWED_HOSTS, no data",
        foreign_host_read,
        quick=True,
    ),
    Case(
        "origin-foreign-write",
        API,
        "create a session, upload, delete with a foreign, another-local-port and null Origin",
        "403 origin_not_allowed naming SANDBOX_ALLOWED_HOSTS; no session or file made",
        foreign_origin_write,
        quick=True,
    ),
    Case(
        "rebinding-sessions",
        API,
        "DNS-rebinding shape (Host and Origin attacker.example:8123) on /v1/sessions",
        "421 before any route runs; no session made",
        rebinding_sessions,
    ),
    Case(
        "rebinding-files",
        API,
        "DNS-rebinding shape on /v1/files: list the uploads, plant one",
        "421; nothing listed, nothing stored",
        rebinding_files,
    ),
    Case(
        "rebinding-mcp",
        API,
        "DNS-rebinding shape on /mcp: initialize and open the stream",
        "421 from the same policy as every route",
        rebinding_mcp,
    ),
    Case(
        "slowloris-2000",
        RESOURCES,
        "2,000 connections that never finish their request head, reopened as they are dropped",
        "each dropped at the head deadline; another tenant's execute p99 stays under 2x quiet",
        slowloris,
        limit=240.0,
    ),
    Case(
        "slowloris-over-cap",
        RESOURCES,
        "twice as many stalled request heads as the connection cap, reopened the moment they "
        "close, from another process",
        "the longest-stalled heads make room; every request of another tenant is answered",
        slowloris_over_cap,
        limit=180.0,
    ),
    Case(
        "accept-error-log-volume",
        RESOURCES,
        "300 connections into a server held at its descriptor limit (accept() fails)",
        "the failures are logged once per interval, not once each; the server answers after",
        accept_error_log,
    ),
]
