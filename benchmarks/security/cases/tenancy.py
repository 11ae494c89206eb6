"""Tenancy of file_search: one tenant's document parse, vector stores and files are out of
another tenant's reach, and a deleted file leaves every vector store.

The parser cases stand in for a document that exploits the parser (lxml and pypdf are large):
the parser program is swapped for the attacker's, which plants files and a process in every
writable place, reports any that an earlier parse left, and hangs when its document asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from engine.retrieval import FileSearch, extract

from ..harness import Context
from ..model import API, ISOLATION, Case, Verdict, clip

HANG_WORD = "HANG-THE-PARSER"
# Runs in the parser's sandbox as the parser would: python3 -c EXPLOIT kind src dst limit.
EXPLOIT = r"""
import os, secrets, subprocess, sys, time
kind, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
places = ("/tmp", "/mnt/data", "/home/sandbox", "/dev/shm")
seen = []
for place in places:
    try:
        names = os.listdir(place)
    except OSError:
        continue
    for name in names:
        if name.startswith("leftover-"):
            try:
                seen.append(name + ":" + open(os.path.join(place, name)).read()[:200])
            except OSError:
                seen.append(name)
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        cmdline = b"" if pid == str(os.getpid()) else open("/proc/%s/cmdline" % pid, "rb").read()
        if b"leftover-watcher" in cmdline:
            seen.append("process " + pid)
    except OSError:
        pass
doc = open(src, encoding="utf-8", errors="replace").read()
for place in places:
    try:
        open(os.path.join(place, "leftover-" + secrets.token_hex(4)), "w").write(doc)
    except OSError:
        pass
subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)  # leftover-watcher"],
    start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
)
if "HANG-THE-PARSER" in doc:
    time.sleep(3600)
open(dst, "w").write(doc + "\nSEEN[" + "|".join(seen) + "]")
"""


@contextlib.asynccontextmanager
async def exploited_parser(ctx: Context, timeout: float | None = None) -> AsyncIterator[FileSearch]:
    """The parser program replaced by ``EXPLOIT`` for the case; afterwards the real one is back
    and no parser sandbox is left (the runner's host watch counts containers)."""
    file_search: FileSearch = ctx.scratch["file_search"]
    parser = file_search.parser
    saved_program, saved_timeout = extract.PARSER, parser.timeout
    extract.PARSER = EXPLOIT
    if timeout is not None:
        parser.timeout = timeout
    try:
        yield file_search
    finally:
        extract.PARSER, parser.timeout = saved_program, saved_timeout
        await file_search.ingestion.idle()
        await parser.release()


async def _upload(http: httpx.AsyncClient, name: str, text: str) -> str:
    r = await http.post(
        "/v1/files",
        files={"file": (name, io.BytesIO(text.encode()))},
        data={"purpose": "assistants"},
    )
    r.raise_for_status()
    return str(r.json()["id"])


async def _store(http: httpx.AsyncClient, file_ids: list[str]) -> str:
    r = await http.post("/v1/vector_stores", json={"name": "tenancy", "file_ids": file_ids})
    r.raise_for_status()
    return str(r.json()["id"])


async def _file(http: httpx.AsyncClient, store_id: str, file_id: str) -> dict[str, Any]:
    r = await http.get(f"/v1/vector_stores/{store_id}/files/{file_id}")
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def _settled(
    http: httpx.AsyncClient, store_id: str, file_id: str, timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = await _file(http, store_id, file_id)
        if body["status"] != "in_progress" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def _content(http: httpx.AsyncClient, store_id: str, file_id: str) -> str:
    r = await http.get(f"/v1/vector_stores/{store_id}/files/{file_id}/content")
    r.raise_for_status()
    return "".join(part["text"] for part in r.json()["data"])


async def _ingest_one(http: httpx.AsyncClient, name: str, text: str) -> tuple[str, str, str]:
    """A document ingested into a new store of its own: (store id, file id, extracted text)."""
    file_id = await _upload(http, name, text)
    store_id = await _store(http, [file_id])
    body = await _settled(http, store_id, file_id)
    if body["status"] != "completed":
        return store_id, file_id, f"<{body['status']}: {body.get('last_error')}>"
    return store_id, file_id, await _content(http, store_id, file_id)


async def parse_cannot_see_another_tenants(ctx: Context) -> Verdict:
    secret = f"tenant-a-secret-{secrets.token_hex(6)}"
    async with exploited_parser(ctx) as file_search, ctx.client(0) as a, ctx.client(1) as b:
        parser = file_search.parser
        _, _, first = await _ingest_one(a, "a.html", f"<p>{secret}</p>")
        sandbox_a = parser.last_sandbox_id
        _, _, again = await _ingest_one(a, "a2.html", "<p>the same tenant, a second time</p>")
        _, _, other = await _ingest_one(b, "b.html", "<p>tenant b's own document</p>")
        sandbox_b = parser.last_sandbox_id
        live = {s.id for s in parser.live_sandboxes()}
    end = time.perf_counter()
    problems = []
    if "SEEN[]" not in first:
        problems.append(f"the first parse did not run as planted: {clip(first, 120)}")
    for label, text in (("tenant A's next parse", again), ("tenant B's parse", other)):
        if "SEEN[]" not in text or secret in text:
            problems.append(f"{label} saw a leftover: {clip(text, 160)}")
    if sandbox_a is None or sandbox_a == sandbox_b or sandbox_a in live:
        problems.append(f"sandboxes: A {sandbox_a}, B {sandbox_b}, still live {sorted(live)}")
    if problems:
        return Verdict(False, "; ".join(problems), None, end)
    return Verdict(
        True,
        "each parse ran in a sandbox of its own (A's removed before B's), and neither the "
        "planted files in /tmp, /mnt/data, home and /dev/shm nor the planted process were there",
        None,
        end,
    )


async def hanging_parse_is_bounded(ctx: Context) -> Verdict:
    timeout = 20.0
    async with exploited_parser(ctx, timeout=timeout), ctx.client(0) as a, ctx.client(1) as b:
        hang_id = await _upload(a, "hang.html", f"<p>{HANG_WORD}</p>")
        hang_store = await _store(a, [hang_id])
        started = time.monotonic()
        _, _, other = await _ingest_one(b, "b.html", "<p>tenant b is not held up</p>")
        b_took = time.monotonic() - started
        hang_state = (await _file(a, hang_store, hang_id))["status"]
        hung = await _settled(a, hang_store, hang_id, timeout=timeout + 60)
        _, _, after = await _ingest_one(a, "after.html", "<p>tenant a parses again</p>")
    end = time.perf_counter()
    error = str((hung.get("last_error") or {}).get("message", ""))
    ok = (
        "tenant b is not held up" in other
        and hang_state == "in_progress"
        and hung["status"] == "failed"
        and "longer than" in error
        and "tenant a parses again" in after
    )
    return Verdict(
        ok,
        f"tenant B's document done in {b_took:.1f} s while A's parse hung ({hang_state}); A's "
        f"hanging parse: {hung['status']} ({clip(error, 80)}); A's next parse: "
        f"{'completed' if 'tenant a parses again' in after else clip(after, 80)}",
        None,
        end,
    )


async def _statuses(http: httpx.AsyncClient, probes: dict[str, Any]) -> dict[str, int]:
    out = {}
    for name, (method, path, body) in probes.items():
        r = await http.request(method, path, json=body)
        out[name] = r.status_code
    return out


async def cross_tenant_by_store_id(ctx: Context) -> Verdict:
    async with ctx.client(0) as a, ctx.client(1) as b:
        mark = f"quokka-{secrets.token_hex(4)}"
        store_id, file_id, _ = await _ingest_one(a, "a.md", f"The {mark} sleeps in the shade.")
        b_file = await _upload(b, "b.md", "tenant b's note")
        base = f"/v1/vector_stores/{store_id}"
        statuses = await _statuses(
            b,
            {
                "retrieve": ("GET", base, None),
                "update": ("POST", base, {"name": "mine now"}),
                "search": ("POST", f"{base}/search", {"query": mark}),
                "list files": ("GET", f"{base}/files", None),
                "attach B's file": ("POST", f"{base}/files", {"file_id": b_file}),
                "batch into it": ("POST", f"{base}/file_batches", {"file_ids": [b_file]}),
                "read a file": ("GET", f"{base}/files/{file_id}", None),
                "file content": ("GET", f"{base}/files/{file_id}/content", None),
                "remove a file": ("DELETE", f"{base}/files/{file_id}", None),
                "delete": ("DELETE", base, None),
            },
        )
        r = await a.post(f"{base}/search", json={"query": mark})
        intact = r.status_code == 200 and any(h["file_id"] == file_id for h in r.json()["data"])
        store = (await a.get(base)).json()
    end = time.perf_counter()
    leaked = {k: v for k, v in statuses.items() if v != 404}
    ok = not leaked and intact and store.get("file_counts", {}).get("total") == 1
    return Verdict(
        ok,
        (f"NOT 404: {leaked}; " if leaked else f"{len(statuses)} calls of tenant B all 404; ")
        + f"A's store intact and searchable={intact}",
        None,
        end,
    )


async def cross_tenant_by_file_id(ctx: Context) -> Verdict:
    async with ctx.client(0) as a, ctx.client(1) as b:
        mark = f"narwhal-{secrets.token_hex(4)}"
        a_store, a_file, _ = await _ingest_one(a, "a.md", f"The {mark} sings at dawn.")
        b_own = await _upload(b, "b.md", "tenant b's own note")
        b_store = await _store(b, [b_own])
        base = f"/v1/vector_stores/{b_store}"
        statuses = await _statuses(
            b,
            {
                "attach A's file": ("POST", f"{base}/files", {"file_id": a_file}),
                "batch A's file": ("POST", f"{base}/file_batches", {"file_ids": [a_file]}),
                "new store with A's file": ("POST", "/v1/vector_stores", {"file_ids": [a_file]}),
                "A's file via B's store": ("GET", f"{base}/files/{a_file}", None),
                "A's file content via B's store": ("GET", f"{base}/files/{a_file}/content", None),
                "delete A's file object": ("DELETE", f"/v1/files/{a_file}", None),
                "read A's file object": ("GET", f"/v1/files/{a_file}", None),
            },
        )
        r = await b.post(f"{base}/search", json={"query": mark})
        b_sees = r.status_code != 200 or any(h["file_id"] == a_file for h in r.json()["data"])
        a_file_row = await _file(a, a_store, a_file)
    end = time.perf_counter()
    leaked = {k: v for k, v in statuses.items() if v != 404}
    ok = not leaked and not b_sees and a_file_row["status"] == "completed"
    return Verdict(
        ok,
        (f"NOT 404: {leaked}; " if leaked else f"{len(statuses)} calls of tenant B all 404; ")
        + f"B's search finds A's file={b_sees}; A's file {a_file_row['status']} in A's store",
        None,
        end,
    )


async def deleted_file_is_not_searchable(ctx: Context) -> Verdict:
    async with ctx.client(0) as a:
        mark = f"axolotl-{secrets.token_hex(4)}"
        store_id, file_id, _ = await _ingest_one(a, "gone.md", f"The {mark} regrows its legs.")
        before = (await a.post(f"/v1/vector_stores/{store_id}/search", json={"query": mark})).json()
        deleted = await a.delete(f"/v1/files/{file_id}")
        after = await a.post(f"/v1/vector_stores/{store_id}/search", json={"query": mark})
        row = await a.get(f"/v1/vector_stores/{store_id}/files/{file_id}")
        content = await a.get(f"/v1/vector_stores/{store_id}/files/{file_id}/content")
        store = (await a.get(f"/v1/vector_stores/{store_id}")).json()
    end = time.perf_counter()
    found_before = any(h["file_id"] == file_id for h in before["data"])
    found_after = after.status_code != 200 or any(
        h["file_id"] == file_id or mark in str(h) for h in after.json()["data"]
    )
    ok = (
        found_before
        and deleted.status_code == 200
        and not found_after
        and row.status_code == content.status_code == 404
        and store["file_counts"]["total"] == 0
        and store["usage_bytes"] == 0
    )
    return Verdict(
        ok,
        f"found before delete={found_before}; delete {deleted.status_code}; found after="
        f"{found_after}; store file {row.status_code}, content {content.status_code}; store "
        f"counts total={store['file_counts']['total']} usage_bytes={store['usage_bytes']}",
        None,
        end,
    )


CASES = [
    Case(
        "parse-cross-tenant-leftover",
        ISOLATION,
        "a document takes over the parser: it plants files in every writable place and a "
        "process, then the next documents (the same tenant's and another tenant's) are parsed",
        "every parse runs in a fresh sandbox, removed afterwards: the next parse sees nothing",
        parse_cannot_see_another_tenants,
        limit=240,
    ),
    Case(
        "parse-hang-bounded",
        ISOLATION,
        "a tenant's document makes the parser hang, while another tenant's document waits",
        "the other tenant's document is done meanwhile; the hanging parse is killed at the "
        "timeout; the tenant's next document parses",
        hanging_parse_is_bounded,
        limit=240,
    ),
    Case(
        "vector-store-cross-tenant-store-id",
        API,
        "tenant B reads, updates, searches, attaches to, lists, removes files from and "
        "deletes tenant A's vector store by its id",
        "every call answers 404, as for a store that does not exist; A's store is unchanged",
        cross_tenant_by_store_id,
        quick=True,
    ),
    Case(
        "vector-store-cross-tenant-file-id",
        API,
        "tenant B attaches tenant A's file id to its own stores, reads it through them and "
        "deletes A's file object",
        "every call answers 404; B's search never finds A's file; A's file stays ingested",
        cross_tenant_by_file_id,
    ),
    Case(
        "deleted-file-not-searchable",
        API,
        "a file is deleted while it is in a vector store",
        "it leaves the store: search no longer finds it, its store file and content are 404, "
        "the store's counts and usage drop to zero",
        deleted_file_is_not_searchable,
        quick=True,
    ),
]
