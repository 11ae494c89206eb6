"""API abuse over a real HTTP socket: malformed bodies, ids, keys, races and disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from ..harness import KEYS, Context
from ..model import API, Case, Verdict, clip

ERROR_KEYS = {"message", "type", "param", "code"}
Probe = Callable[[httpx.AsyncClient, str], Awaitable[httpx.Response]]


def _shape_ok(r: httpx.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and set(body.get("error") or {}) == ERROR_KEYS


async def _session(http: httpx.AsyncClient) -> str:
    r = await http.post("/v1/sessions", json={})
    r.raise_for_status()
    return str(r.json()["id"])


def _judge(results: dict[str, httpx.Response | str], allowed: range) -> tuple[bool, str]:
    """Every probe must get a status in ``allowed`` and OpenAI's error shape; never a 5xx."""
    bad = {}
    statuses: dict[str, int | str] = {}
    for name, r in results.items():
        if isinstance(r, str):
            statuses[name] = r
            bad[name] = r
            continue
        statuses[name] = r.status_code
        if r.status_code not in allowed or not _shape_ok(r):
            bad[name] = f"{r.status_code} {clip(r.text, 80)}"
    codes = sorted({s for s in statuses.values() if isinstance(s, int)})
    if bad:
        return False, f"UNEXPECTED {bad}"
    return True, f"{len(results)} requests, all answered {codes} with the error shape"


def posting(path: str, content: bytes, ctype: str = "application/json") -> Probe:
    async def send(http: httpx.AsyncClient, sid: str) -> httpx.Response:
        return await http.post(
            path.replace("{sid}", sid), content=content, headers={"content-type": ctype}
        )

    return send


async def _run_probes(ctx: Context, probes: dict[str, Probe], allowed: range) -> Verdict:
    async with ctx.client(0) as http:
        sid = await _session(http)
        results: dict[str, httpx.Response | str] = {}
        for name, probe in probes.items():
            try:
                results[name] = await probe(http, sid)
            except httpx.HTTPError as exc:
                results[name] = f"transport error {type(exc).__name__}"
        healthy = (await http.get("/healthz")).status_code == 200
    end = time.perf_counter()
    ok, evidence = _judge(results, allowed)
    return Verdict(ok and healthy, f"{evidence}; server healthy={healthy}", None, end)


def probes_case(
    name: str,
    attack: str,
    expected: str,
    probes: dict[str, Probe],
    allowed: range = range(400, 500),
    quick: bool = False,
) -> Case:
    async def run(ctx: Context) -> Verdict:
        return await _run_probes(ctx, probes, allowed)

    return Case(name, API, attack, expected, run, quick)


EXECUTE = "/v1/sessions/{sid}/execute"

MALFORMED = {
    "truncated": posting(EXECUTE, b'{"code": "1"'),
    "not-json": posting(EXECUTE, b"{not json"),
    "empty": posting(EXECUTE, b""),
    "array": posting(EXECUTE, b"[1, 2, 3]"),
    "string": posting(EXECUTE, b'"print(1)"'),
    "trailing-garbage": posting(EXECUTE, b'{"code": "1"} xyz'),
    "duplicate-ctype": posting(EXECUTE, b"code=1", "application/x-www-form-urlencoded"),
    "create-not-json": posting("/v1/sessions", b"{{{{"),
    "keepalive-not-json": posting("/v1/sessions/{sid}/keepalive", b"{"),
    "files-bad-json": posting("/v1/sessions/{sid}/files", b"{bad"),
}

WRONG_TYPES = {
    "code-int": posting(EXECUTE, b'{"code": 5}'),
    "code-list": posting(EXECUTE, b'{"code": ["print(1)"]}'),
    "code-null": posting(EXECUTE, b'{"code": null}'),
    "timeout-string": posting(EXECUTE, b'{"code": "1", "timeout": "soon"}'),
    "timeout-object": posting(EXECUTE, b'{"code": "1", "timeout": {}}'),
    "thread-int": posting("/v1/sessions", b'{"thread_id": 5}'),
    "file-ids-string": posting("/v1/sessions", b'{"file_ids": "file-x"}'),
    "file-ids-ints": posting("/v1/sessions", b'{"file_ids": [1, 2]}'),
    "memory-words": posting("/v1/sessions", b'{"memory_limit": "lots"}'),
    "memory-negative": posting("/v1/sessions", b'{"memory_limit": -5}'),
    "memory-huge": posting("/v1/sessions", b'{"memory_limit": 100000000000000000000}'),
    "expires-zero": posting("/v1/sessions", b'{"expires_after": {"minutes": 0}}'),
    "extend-string": posting("/v1/sessions/{sid}/keepalive", b'{"seconds": "x"}'),
    "add-file-int": posting("/v1/sessions/{sid}/files", b'{"file_id": 7}'),
}

TIMEOUTS = {
    "nan": posting(EXECUTE, b'{"code": "1", "timeout": NaN}'),
    "infinity": posting(EXECUTE, b'{"code": "1", "timeout": Infinity}'),
    "minus-infinity": posting(EXECUTE, b'{"code": "1", "timeout": -Infinity}'),
    "negative": posting(EXECUTE, b'{"code": "1", "timeout": -1}'),
    "zero": posting(EXECUTE, b'{"code": "1", "timeout": 0}'),
    "1e308": posting(EXECUTE, b'{"code": "1", "timeout": 1e308}'),
    "1e400": posting(EXECUTE, b'{"code": "1", "timeout": 1e400}'),
    "huge-int": posting(EXECUTE, b'{"code": "1", "timeout": ' + b"9" * 400 + b"}"),
    "over-max": posting(EXECUTE, b'{"code": "1", "timeout": 100000}'),
}


async def tiny_timeout(ctx: Context) -> Verdict:
    async with ctx.client(0) as http:
        sid = await _session(http)
        r = await http.post(
            f"/v1/sessions/{sid}/execute",
            json={"code": "import time; time.sleep(5)", "timeout": 1e-300},
        )
        after = await http.post(f"/v1/sessions/{sid}/execute", json={"code": "6 * 7"})
    end = time.perf_counter()
    status = r.json().get("status") if r.status_code == 200 else r.status_code
    ok = r.status_code in (200, 400) and after.json().get("result") == {"text/plain": "42"}
    if r.status_code == 200:
        ok = ok and status == "timeout"
    return Verdict(ok, f"timeout=1e-300: {status}; next execute ok={ok}", None, end)


def _huge_json() -> bytes:
    return b'{"code": "' + b"x" * (9 * 1024 * 1024) + b'"}'


async def _chunked(http: httpx.AsyncClient, sid: str) -> httpx.Response:
    async def body() -> Any:
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    return await http.post(
        f"/v1/sessions/{sid}/execute", content=body(), headers={"content-type": "application/json"}
    )


async def _multipart_huge(http: httpx.AsyncClient, sid: str) -> httpx.Response:
    return await http.post(
        f"/v1/sessions/{sid}/files", files={"file": ("big.bin", bytes(40 * 1024 * 1024))}
    )


HUGE = {
    "json-9mb": posting(EXECUTE, _huge_json()),
    "chunked-10mb": _chunked,
    "multipart-40mb": _multipart_huge,
    "create-9mb": posting("/v1/sessions", _huge_json()),
}

DEEP = {
    "arrays-100k": posting(EXECUTE, b"[" * 100_000 + b"]" * 100_000),
    "objects-50k": posting(EXECUTE, b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    "unbalanced-1m": posting(EXECUTE, b"[" * 1_000_000),
    "deep-in-string": posting(EXECUTE, b'{"code": 5, "x": "' + b"[" * 100_000 + b'"}'),
    "create-deep": posting("/v1/sessions", b'{"file_ids":' + b"[" * 5000 + b"]" * 5000 + b"}"),
}

INVALID_UTF8 = {
    "code-ff": posting(EXECUTE, b'{"code": "\xff\xfe"}'),
    "lone-surrogate-bytes": posting(EXECUTE, b'{"code": "\xed\xa0\x80"}'),
    "overlong": posting(EXECUTE, b'{"code": "\xc0\xaf"}'),
    "escaped-lone-surrogate": posting(EXECUTE, b'{"code": "\\ud800"}'),
    "thread-ff": posting("/v1/sessions", b'{"thread_id": "\xff"}'),
}


def getting(path: str, method: str = "GET", **kw: Any) -> Probe:
    async def send(http: httpx.AsyncClient, sid: str) -> httpx.Response:
        return await http.request(method, path.replace("{sid}", sid), **kw)

    return send


UNKNOWN = {
    "get-session": getting("/v1/sessions/sess_00000000000000000000000000000000"),
    "execute": getting("/v1/sessions/sess_unknown/execute", "POST", json={"code": "1"}),
    "files": getting("/v1/sessions/sess_unknown/files"),
    "content": getting("/v1/sessions/sess_unknown/files/content", params={"path": "a"}),
    "delete": getting("/v1/sessions/sess_unknown", "DELETE"),
    "restart": getting("/v1/sessions/sess_unknown/restart", "POST"),
    "file": getting("/v1/files/file-000000000000000000000000"),
    "file-content": getting("/v1/files/file-nope/content"),
    "file-delete": getting("/v1/files/file-nope", "DELETE"),
    "long-id": getting("/v1/sessions/" + "a" * 10_000),
    "encoded-traversal": getting("/v1/sessions/..%2f..%2fetc%2fpasswd"),
    "invalid-utf8-id": getting("/v1/sessions/%ff%fe"),
    "nul-id": getting("/v1/sessions/sess%00x"),
    "add-unknown-file": getting("/v1/sessions/{sid}/files", "POST", json={"file_id": "file-x"}),
    "create-with-unknown-file": getting("/v1/sessions", "POST", json={"file_ids": ["file-x"]}),
}


async def expired_ids(ctx: Context) -> Verdict:
    owner = ctx.canary.owner
    short = await ctx.engine.session("expiring", owner=owner, ttl=1)
    closed = await ctx.engine.session("closing", owner=owner)
    await ctx.engine.sessions.close(closed.id)
    await asyncio.sleep(ctx.settings.reaper_interval * 2 + 1.5)
    results: dict[str, httpx.Response | str] = {}
    async with ctx.client(0) as http:
        info = (await http.get(f"/v1/sessions/{short.id}")).json()
        for label, sid in (("expired", short.id), ("closed", closed.id)):
            results[f"{label}-execute"] = await http.post(
                f"/v1/sessions/{sid}/execute", json={"code": "1"}
            )
            results[f"{label}-files"] = await http.get(f"/v1/sessions/{sid}/files")
            results[f"{label}-restart"] = await http.post(f"/v1/sessions/{sid}/restart")
    end = time.perf_counter()
    ok, evidence = _judge(results, range(409, 410))
    ok = ok and info.get("status") == "expired"
    return Verdict(ok, f"status {info.get('status')}; {evidence}", None, end)


async def other_tenant(ctx: Context) -> Verdict:
    canary = ctx.canary.session
    assert canary is not None
    sid = canary.id
    fid = next(iter(ctx.canary.file_ids.values()))
    results: dict[str, httpx.Response | str] = {}
    requests: list[tuple[str, str, str, dict[str, Any]]] = [
        ("get", "GET", f"/v1/sessions/{sid}", {}),
        ("execute", "POST", f"/v1/sessions/{sid}/execute", {"json": {"code": "1/0"}}),
        ("files", "GET", f"/v1/sessions/{sid}/files", {}),
        (
            "content",
            "GET",
            f"/v1/sessions/{sid}/files/content",
            {"params": {"path": "notes.txt"}},
        ),
        ("upload", "POST", f"/v1/sessions/{sid}/files", {"files": {"file": ("x", b"x")}}),
        ("restart", "POST", f"/v1/sessions/{sid}/restart", {}),
        ("interrupt", "POST", f"/v1/sessions/{sid}/interrupt", {}),
        ("keepalive", "POST", f"/v1/sessions/{sid}/keepalive", {}),
        ("delete", "DELETE", f"/v1/sessions/{sid}", {}),
        ("file", "GET", f"/v1/files/{fid}", {}),
        ("file-content", "GET", f"/v1/files/{fid}/content", {}),
        ("file-delete", "DELETE", f"/v1/files/{fid}", {}),
        ("attach-file", "POST", "/v1/sessions", {"json": {"file_ids": [fid]}}),
        ("same-thread", "POST", "/v1/sessions", {"json": {"thread_id": canary.thread_id}}),
    ]
    async with ctx.client(1) as http:
        for name, method, path, kw in requests:
            results[name] = await http.request(method, path, **kw)
        sessions = (await http.get("/v1/sessions", params={"limit": 100})).json()["data"]
        files = (await http.get("/v1/files")).json()["data"]
    end = time.perf_counter()
    same_thread = results.pop("same-thread")
    assert not isinstance(same_thread, str)
    ok, evidence = _judge(results, range(404, 405))
    listed = sid in {s["id"] for s in sessions} or fid in {f["id"] for f in files}
    own = same_thread.status_code == 200 and same_thread.json().get("id") != sid
    ok = ok and not listed and own
    return Verdict(
        ok,
        f"tenant B on tenant A's session and file: {evidence}; listed to B={listed}; "
        f"B's same thread id got its own session={own}",
        None,
        end,
    )


async def keys(ctx: Context) -> Verdict:
    results: dict[str, httpx.Response | str] = {}
    headers: dict[str, dict[str, Any]] = {  # bytes too: a non-ASCII header on the wire
        "none": {},
        "empty-bearer": {"Authorization": "Bearer"},
        "wrong": {"Authorization": "Bearer nope"},
        "basic": {"Authorization": f"Basic {KEYS[0]}"},
        "case": {"Authorization": f"Bearer {KEYS[0].upper()}"},
        "prefix": {"Authorization": f"Bearer {KEYS[0][:-1]}"},
        "longer": {"Authorization": f"Bearer {KEYS[0]}x"},
        "api-key-wrong": {"api-key": "nope"},
        "huge": {"Authorization": "Bearer " + "k" * 60_000},
        "non-ascii": {"Authorization": "Bearer kéy".encode()},
    }
    async with httpx.AsyncClient(base_url=ctx.api_url, timeout=60) as http:
        for name, h in headers.items():
            for route, method in (("/v1/sessions", "POST"), ("/v1/files", "GET")):
                try:
                    results[f"{name} {method} {route}"] = await http.request(
                        method, route, headers=h, json={} if method == "POST" else None
                    )
                except httpx.HTTPError as exc:
                    results[f"{name} {route}"] = f"transport error {type(exc).__name__}"
    end = time.perf_counter()
    huge = {k: v for k, v in results.items() if k.startswith("huge")}
    rest = {k: v for k, v in results.items() if not k.startswith("huge")}
    ok, evidence = _judge(rest, range(401, 402))
    huge_codes = [v.status_code if not isinstance(v, str) else v for v in huge.values()]
    ok = ok and all(isinstance(c, int) and 400 <= c < 500 for c in huge_codes)
    return Verdict(ok, f"{evidence}; 60 KB key -> {huge_codes}", None, end)


async def concurrent_executes(ctx: Context) -> Verdict:
    async with ctx.client(0) as http:
        sid = await _session(http)

        async def one(i: int) -> tuple[int, dict[str, Any]]:
            code = (
                f"import time\nprint('M{i}-start')\ntime.sleep(0.2)\nprint('M{i}-end')\nx = {i}\nx"
            )
            r = await http.post(f"/v1/sessions/{sid}/execute", json={"code": code})
            return r.status_code, r.json()

        results = await asyncio.gather(*(one(i) for i in range(8)))
    end = time.perf_counter()
    mixed: list[tuple[int, object, object]] = []
    for i, (status, body) in enumerate(results):
        if status != 200 or body.get("stdout") != f"M{i}-start\nM{i}-end\n":
            mixed.append((i, status, clip(json.dumps(body), 80)))
        elif body.get("result") != {"text/plain": str(i)}:
            mixed.append((i, "result", body.get("result")))
    counts = sorted(b.get("execution_count") or 0 for _, b in results)
    ok = not mixed and counts == list(range(counts[0], counts[0] + 8))
    return Verdict(
        ok,
        "8 concurrent executes on one session: "
        + (f"MIXED {mixed}" if mixed else f"each got only its own output, serialised {counts}"),
        None,
        end,
    )


async def rapid_create_delete(ctx: Context) -> Verdict:
    statuses: list[int | str] = []
    async with ctx.client(1) as http:

        async def churn(worker: int) -> None:
            for _ in range(3):
                try:
                    r = await http.post("/v1/sessions", json={})
                    statuses.append(r.status_code)
                    if r.status_code != 200:
                        continue
                    sid = r.json()["id"]
                    run = asyncio.ensure_future(
                        http.post(
                            f"/v1/sessions/{sid}/execute",
                            json={"code": "import time; time.sleep(2)"},
                        )
                    )
                    await asyncio.sleep(0.05 * worker)
                    statuses.append((await http.delete(f"/v1/sessions/{sid}")).status_code)
                    statuses.append((await run).status_code)
                    statuses.append((await http.delete(f"/v1/sessions/{sid}")).status_code)
                except httpx.HTTPError as exc:
                    statuses.append(f"transport {type(exc).__name__}")

        await asyncio.gather(*(churn(w) for w in range(4)))
        live = (await http.get("/v1/sessions", params={"limit": 100})).json()["data"]
    end = time.perf_counter()
    live_ids = [s["id"] for s in live if s["status"] == "active"]
    errors = [s for s in statuses if not isinstance(s, int) or s >= 500]
    ok = not errors and not live_ids
    counts = {s: statuses.count(s) for s in set(statuses)}
    return Verdict(
        ok,
        f"4 workers x 3 create/execute/delete/delete: statuses {counts}; "
        f"active sessions left {len(live_ids)}",
        None,
        end,
    )


async def disconnect_sse(ctx: Context) -> Verdict:
    async with ctx.client(0) as http:
        sid = await _session(http)
        code = "import time\nfor i in range(1000):\n    print(i, flush=True)\n    time.sleep(0.05)"
        async with http.stream(
            "POST",
            f"/v1/sessions/{sid}/execute",
            json={"code": code, "timeout": 120},
            headers={"Accept": "text/event-stream"},
        ) as r:
            async for line in r.aiter_lines():
                if line.startswith("data:"):
                    break
        gone = time.perf_counter()
        session = ctx.engine.get_session(sid, ctx.canary.owner)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.wait_idle(), 30)
        idle_s = time.perf_counter() - gone
        after = await http.post(f"/v1/sessions/{sid}/execute", json={"code": "6 * 7"})
    end = time.perf_counter()
    ok = idle_s < ctx.settings.interrupt_grace + 5 and after.json().get("result") == {
        "text/plain": "42"
    }
    return Verdict(
        ok,
        f"SSE client left after the first event: execution stopped {idle_s:.2f} s later; "
        f"next execute {after.status_code} {after.json().get('status')}",
        None,
        end,
    )


async def disconnect_plain(ctx: Context) -> Verdict:
    async with ctx.client(0) as http:
        sid = await _session(http)
        gone = time.perf_counter()
        with contextlib.suppress(httpx.ReadTimeout):
            await http.post(
                f"/v1/sessions/{sid}/execute",
                json={"code": "import time; time.sleep(60)", "timeout": 4},
                timeout=httpx.Timeout(60, read=1.0),
            )
        after = await http.post(f"/v1/sessions/{sid}/execute", json={"code": "6 * 7"})
        waited = time.perf_counter() - gone
    end = time.perf_counter()
    ok = after.status_code == 200 and after.json().get("result") == {"text/plain": "42"}
    ok = ok and waited < 4 + ctx.settings.interrupt_grace + 10
    return Verdict(
        ok,
        f"a JSON client gave up after 1 s on a 4 s-timeout cell: the cell ran to its timeout; "
        f"the next execute answered {after.status_code} after {waited:.1f} s",
        None,
        end,
    )


def _raw_request(port: int, data: bytes, pause: float = 0.0) -> bytes:
    """Send raw bytes to the API on loopback; return what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if pause:
            time.sleep(pause)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


async def raw_http(ctx: Context) -> Verdict:
    port = int(ctx.api_url.rsplit(":", 1)[1])
    auth = f"Authorization: Bearer {KEYS[0]}\r\n".encode()
    cases = {
        "huge-header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
        + b"a" * 200_000
        + b"\r\n\r\n",
        "many-headers": b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 5000 + b"\r\n",
        "bad-request-line": b"GARBAGE\r\n\r\n",
        "lying-content-length": b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{}",
        "negative-content-length": b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Length: -5\r\n\r\n{}",
        "smuggling": b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    }
    answers = {}
    for name, data in cases.items():
        raw = await asyncio.to_thread(_raw_request, port, data)
        answers[name] = raw.split(b"\r\n", 1)[0].decode("latin-1")[:40] or "closed"
    # A slow client must not hold up everyone else.
    slow = asyncio.ensure_future(
        asyncio.to_thread(
            _raw_request,
            port,
            b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{",
            3.0,
        )
    )
    await asyncio.sleep(0.5)
    async with ctx.client(0) as http:
        t = time.perf_counter()
        health = await http.get("/healthz")
        health_s = time.perf_counter() - t
    await slow
    end = time.perf_counter()
    fives = {k: v for k, v in answers.items() if " 5" in v}
    ok = not fives and health.status_code == 200 and health_s < 2
    return Verdict(
        ok,
        f"raw malformed HTTP: {answers}; /healthz during a slow body: {health_s * 1000:.0f} ms",
        None,
        end,
    )


CASES = [
    probes_case(
        "malformed-json",
        "truncated, non-JSON, empty, wrong top-level and form-encoded bodies",
        "400/422 with the error shape; never a 5xx",
        MALFORMED,
        quick=True,
    ),
    probes_case(
        "wrong-types",
        "numbers for strings, lists for numbers, nulls, out-of-range memory and lifetimes",
        "400/422 with the error shape",
        WRONG_TYPES,
    ),
    probes_case(
        "nan-and-huge-timeouts",
        "timeout NaN, ±Infinity, negative, zero, 1e308, 1e400, a 400-digit integer, over max",
        "400/422; nothing runs with a bogus timeout",
        TIMEOUTS,
    ),
    Case(
        "tiny-timeout",
        API,
        "timeout 1e-300 seconds",
        "a clean timeout (or a 400), the session answers next",
        tiny_timeout,
    ),
    probes_case(
        "huge-bodies",
        "9 MB JSON, 10 MB chunked without Content-Length, 40 MB multipart",
        "413 before the body reaches a route",
        HUGE,
        allowed=range(413, 414),
    ),
    probes_case(
        "deep-json",
        "100,000-deep arrays, 50,000-deep objects, a million unbalanced brackets",
        "400 without recursing; brackets inside strings do not count",
        DEEP,
    ),
    probes_case(
        "invalid-utf8",
        "invalid UTF-8 bytes, overlong encodings and lone surrogates in JSON strings",
        "400/422, never a 5xx",
        INVALID_UTF8,
    ),
    probes_case(
        "unknown-ids",
        "unknown, 10 KB long, encoded-traversal, NUL and invalid-UTF-8 session and file ids",
        "404 (or 4xx) with the error shape",
        UNKNOWN,
        allowed=range(400, 500),
    ),
    Case(
        "expired-and-closed-ids",
        API,
        "use a session the reaper expired and one that was deleted",
        "409 session_closed; status reads expired",
        expired_ids,
    ),
    Case(
        "other-tenants-ids",
        API,
        "tenant B reads, runs code in, uploads to, restarts, deletes tenant A's session and file",
        "404 for every call, as if they did not exist; tenant A's canary intact",
        other_tenant,
        quick=True,
    ),
    Case(
        "missing-and-invalid-keys",
        API,
        "no key, empty, wrong, Basic, case-changed, truncated, extended, 60 KB and non-ASCII keys",
        "401 with the error shape (the 60 KB one may be refused as a 4xx by the HTTP layer)",
        keys,
    ),
    Case(
        "concurrent-executes",
        API,
        "8 executes at once on one session",
        "run one at a time; each response holds only its own output",
        concurrent_executes,
    ),
    Case(
        "rapid-create-delete",
        API,
        "4 workers create, execute, delete and delete again, concurrently",
        "no 5xx, no session or container left behind",
        rapid_create_delete,
        limit=180,
    ),
    Case(
        "disconnect-mid-stream",
        API,
        "an SSE client goes away while its cell runs",
        "the execution is interrupted; the session answers next",
        disconnect_sse,
    ),
    Case(
        "disconnect-mid-request",
        API,
        "a JSON client gives up while its cell runs",
        "the cell ends at its own timeout; the session answers next",
        disconnect_plain,
    ),
    Case(
        "malformed-http",
        API,
        "a 200 KB header, 5,000 headers, garbage, lying and negative Content-Length, "
        "CL+TE smuggling, a slow body",
        "4xx or a closed connection, never a 5xx; other clients still served",
        raw_http,
    ),
]
