"""Vector stores and file search with the official openai SDK against a live server: CRUD,
files and batches, ingestion (documents parsed inside a sandbox, hostile ones contained),
hybrid search with filters, and the 4xx answers to bad input."""

from __future__ import annotations

import asyncio
import io
import sys
import time
from typing import Any

import docker
import httpx
import openai
import pytest

from benchmarks.security.cases import tenancy
from engine import Engine, errors
from engine.retrieval import FileSearch, SearchRequest, extract
from engine.sandbox.docker_sandbox import SANDBOX_LABEL
from engine.sessions import sandbox_spec

from ..support import documents
from ..support.clients import sdk
from ..support.servers import LiveServer

KEY_A, KEY_B = LiveServer.keys
CORPUS = {
    "refunds.md": "# Refund policy\n\nCustomers may return any item within 30 days of delivery "
    "for a full refund. Refunds are paid to the original card within five business days.",
    "kernel.py": "def restart_kernel(session):\n    '''Restart the Jupyter kernel of a session "
    "after a timeout; variables are lost.'''\n    session.kernel.restart()\n",
    "garden.txt": "Tomatoes need six hours of sunlight and deep watering twice a week. Mulch "
    "keeps the soil moist in summer.",
    "config.json": '{"service": "billing", "retries": 5, "region": "eu-west"}',
    "page.html": "<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
    "<body><h1>Office hours</h1><p>The help desk opens at nine in the morning.</p></body></html>",
}


def upload(client: openai.OpenAI, name: str, data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return client.files.create(file=(name, io.BytesIO(raw)), purpose="assistants").id


def wait_store(client: openai.OpenAI, store_id: str, timeout: float = 180) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        store = client.vector_stores.retrieve(store_id)
        if store.file_counts.in_progress == 0 or time.monotonic() > deadline:
            return store
        time.sleep(0.2)


@pytest.fixture(scope="module")
def corpus_store(live_server: LiveServer) -> tuple[str, dict[str, str]]:
    client = sdk(live_server)
    ids = {name: upload(client, name, text) for name, text in CORPUS.items()}
    store = client.vector_stores.create(name="corpus", metadata={"team": "docs"})
    attributes: dict[str, dict[str, Any]] = {
        "refunds.md": {"topic": "billing", "year": 2024, "public": True},
        "kernel.py": {"topic": "engine", "year": 2023, "public": False},
        "garden.txt": {"topic": "garden", "year": 2022, "public": True},
        "config.json": {"topic": "billing", "year": 2021},
        "page.html": {"topic": "support", "year": 2024},
    }
    for name, file_id in ids.items():
        client.vector_stores.files.create(
            vector_store_id=store.id, file_id=file_id, attributes=attributes[name]
        )
    done = wait_store(client, store.id)
    assert done.file_counts.completed == len(CORPUS), client.vector_stores.files.list(store.id)
    return store.id, ids


def test_store_crud_with_expiry_metadata_and_counts(client: openai.OpenAI) -> None:
    file_id = upload(client, "note.txt", "A note about the quarterly budget review.")
    store = client.vector_stores.create(
        name="crud",
        metadata={"owner": "qa"},
        expires_after={"anchor": "last_active_at", "days": 7},
        file_ids=[file_id],
        chunking_strategy={
            "type": "static",
            "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50},
        },
    )
    assert store.object == "vector_store" and store.name == "crud"
    assert store.metadata == {"owner": "qa"}
    assert store.expires_after is not None and store.expires_after.days == 7
    assert store.expires_at == (store.last_active_at or 0) + 7 * 86400
    assert store.file_counts.total == 1
    done = wait_store(client, store.id)
    assert done.status == "completed" and done.file_counts.completed == 1
    assert done.usage_bytes > 0
    vs_file = client.vector_stores.files.retrieve(file_id, vector_store_id=store.id)
    assert vs_file.chunking_strategy is not None
    assert vs_file.chunking_strategy.static.max_chunk_size_tokens == 200  # type: ignore[union-attr]
    updated = client.vector_stores.update(store.id, name="renamed", metadata={"owner": "ops"})
    assert updated.name == "renamed" and updated.metadata == {"owner": "ops"}
    assert store.id in [s.id for s in client.vector_stores.list(limit=100)]
    assert client.vector_stores.delete(store.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve(store.id)


def test_files_list_filter_content_and_attributes(
    client: openai.OpenAI, corpus_store: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = corpus_store
    listed = client.vector_stores.files.list(store_id, filter="completed", limit=100)
    assert {f.id for f in listed} == set(ids.values())
    assert not list(client.vector_stores.files.list(store_id, filter="failed"))
    page = client.vector_stores.files.content(ids["page.html"], vector_store_id=store_id)
    text = "".join(part.text or "" for part in page)
    assert "help desk opens at nine" in text and "alert" not in text and "color" not in text
    f = client.vector_stores.files.retrieve(ids["refunds.md"], vector_store_id=store_id)
    assert f.attributes == {"topic": "billing", "year": 2024, "public": True}
    assert f.chunking_strategy is not None and f.chunking_strategy.type == "static"


def test_search_hybrid_filters_ranking_and_rewrite(
    client: openai.OpenAI, corpus_store: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = corpus_store
    best = client.vector_stores.search(store_id, query="refund within 30 days").data[0]
    assert best.file_id == ids["refunds.md"] and best.filename == "refunds.md"
    assert 0 < best.score <= 1 and best.content[0].type == "text"
    # Paraphrase, no shared key word: only the semantic half can find it.
    para = client.vector_stores.search(store_id, query="how much sun do my vegetables want")
    assert para.data[0].file_id == ids["garden.txt"]
    several = client.vector_stores.search(
        store_id, query=["restart the kernel", "office hours"], max_num_results=3
    )
    assert {ids["kernel.py"], ids["page.html"]} <= {r.file_id for r in several.data}
    assert len(several.data) <= 3
    billing = client.vector_stores.search(
        store_id,
        query="money",
        filters={"type": "eq", "key": "topic", "value": "billing"},
    )
    assert billing.data and {r.file_id for r in billing.data} <= {
        ids["refunds.md"],
        ids["config.json"],
    }
    compound = client.vector_stores.search(
        store_id,
        query="anything at all",
        filters={
            "type": "and",
            "filters": [
                {"type": "gte", "key": "year", "value": 2023},
                {
                    "type": "or",
                    "filters": [
                        {"type": "eq", "key": "public", "value": False},
                        {"type": "in", "key": "topic", "value": ["support"]},
                    ],
                },
            ],
        },
    )
    assert {r.file_id for r in compound.data} <= {ids["kernel.py"], ids["page.html"]}
    strict = client.vector_stores.search(
        store_id, query="tomatoes", ranking_options={"ranker": "auto", "score_threshold": 0.99}
    )
    assert all(r.score >= 0.99 for r in strict.data)
    rewritten = client.vector_stores.search(
        store_id, query="Can you tell me what the refund policy is?", rewrite_query=True
    )
    raw = rewritten.model_dump()
    assert raw["search_query"] == ["refund policy"]
    assert rewritten.data[0].file_id == ids["refunds.md"]


def test_documents_are_parsed_inside_a_sandbox(
    client: openai.OpenAI, live_server: LiveServer
) -> None:
    http = httpx.Client(
        base_url=live_server.url, headers={"Authorization": f"Bearer {KEY_A}"}, timeout=120
    )
    session = http.post("/v1/sessions", json={}).json()
    ran = http.post(
        f"/v1/sessions/{session['id']}/execute",
        json={"code": documents.PPTX_CODE},
        timeout=120,
    ).json()
    pptx_id = next(o["file_id"] for o in ran["outputs"] if o["path"].endswith("plan.pptx"))
    pdf_id = upload(client, "manual.pdf", documents.pdf(["The blue heron nests by the dam."]))
    docx_id = upload(client, "memo.docx", documents.docx(["Payroll closes on the 25th."]))
    store = client.vector_stores.create(name="docs")
    batch = client.vector_stores.file_batches.create(
        store.id, file_ids=[pptx_id, pdf_id, docx_id], attributes={"kind": "document"}
    )
    # A session's output added to a vector store is kept: it outlives its session.
    http.delete(f"/v1/sessions/{session['id']}")
    assert client.files.retrieve(pptx_id).expires_at is None
    assert batch.object == "vector_store.files_batch"
    wait_store(client, store.id)
    batch = client.vector_stores.file_batches.retrieve(batch.id, vector_store_id=store.id)
    assert batch.status == "completed" and batch.file_counts.completed == 3, list(
        client.vector_stores.files.list(store.id)
    )
    for query, file_id in [
        ("lighthouse brass lantern", pptx_id),
        ("heron nests", pdf_id),
        ("payroll closes", docx_id),
    ]:
        assert client.vector_stores.search(store.id, query=query).data[0].file_id == file_id
    files = client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    assert {f.id for f in files} == {pptx_id, pdf_id, docx_id}
    assert all(f.attributes == {"kind": "document"} for f in files)
    assert live_server.engine.file_search.parser.sandboxes_started >= 1


def test_hostile_documents_fail_alone_inside_the_sandbox(client: openai.OpenAI) -> None:
    good = upload(client, "ok.txt", "The ferry leaves at noon.")
    broken = upload(client, "broken.pdf", b"%PDF-1.4\n this is not a pdf at all \x00\xff")
    bomb = upload(client, "bomb.docx", documents.zip_bomb_docx(1024))
    pdf_bomb = upload(client, "bomb.pdf", documents.pdf_bomb(1536))
    binary = upload(client, "blob.txt", b"\x00\x01\x02" * 100)
    store = client.vector_stores.create(name="hostile")
    batch = client.vector_stores.file_batches.create(
        store.id, file_ids=[good, broken, bomb, pdf_bomb, binary]
    )
    wait_store(client, store.id, timeout=300)
    files = {
        f.id: f
        for f in client.vector_stores.file_batches.list_files(batch.id, vector_store_id=store.id)
    }
    assert files[good].status == "completed"
    for bad in (broken, bomb, pdf_bomb, binary):
        assert files[bad].status == "failed", files[bad]
        error = files[bad].last_error
        assert error is not None and error.code == "invalid_file"
    assert "zip bomb" in files[bomb].last_error.message  # type: ignore[union-attr]
    assert client.vector_stores.search(store.id, query="ferry").data[0].file_id == good


def test_batch_cancel(client: openai.OpenAI, live_server: LiveServer) -> None:
    ids = [upload(client, f"n{i}.txt", f"note number {i} about ravens") for i in range(30)]
    store = client.vector_stores.create(name="cancel")
    batch = client.vector_stores.file_batches.create(store.id, file_ids=ids)
    cancelled = client.vector_stores.file_batches.cancel(batch.id, vector_store_id=store.id)
    assert cancelled.status in ("cancelled", "completed")
    wait_store(client, store.id)
    after = client.vector_stores.retrieve(store.id).file_counts
    assert after.in_progress == 0 and after.total == 30
    assert after.cancelled + after.completed == 30


def test_bad_input_is_4xx(client: openai.OpenAI, live_server: LiveServer) -> None:
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.retrieve("vs_nope")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.search("vs_nope", query="x")
    store = client.vector_stores.create(name="bad")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.create(vector_store_id=store.id, file_id="file-nope")
    with pytest.raises(openai.NotFoundError):
        client.vector_stores.files.retrieve("file-nope", vector_store_id=store.id)
    exe = upload(client, "tool.exe", b"MZ\x90\x00")
    with pytest.raises(openai.BadRequestError, match="file_search reads"):
        client.vector_stores.files.create(vector_store_id=store.id, file_id=exe)
    stores = live_server.engine.file_search.stores
    big = upload(client, "big.txt", "x" * 5000)
    limit, stores.max_file_bytes = stores.max_file_bytes, 4096
    try:
        with pytest.raises(openai.APIStatusError) as too_big:
            client.vector_stores.files.create(vector_store_id=store.id, file_id=big)
        assert too_big.value.status_code == 413
    finally:
        stores.max_file_bytes = limit
    for filters in [
        {"type": "eq", "key": "a"},
        {"type": "xor", "filters": []},
        {"type": "and", "filters": [{"type": "eq"}]},
    ]:
        with pytest.raises(openai.APIStatusError) as bad:
            client.vector_stores.search(store.id, query="x", filters=filters)  # type: ignore[arg-type]
        assert 400 <= bad.value.status_code < 500
    with pytest.raises(openai.APIStatusError) as empty:
        client.vector_stores.search(store.id, query="")
    assert empty.value.status_code in (400, 422)
    stores.index.execute("UPDATE vector_stores SET expires_at = 1 WHERE id = ?", (store.id,))
    assert client.vector_stores.retrieve(store.id).status == "expired"
    with pytest.raises(openai.BadRequestError, match="expired"):
        client.vector_stores.search(store.id, query="x")
    other = sdk(live_server, KEY_B)
    with pytest.raises(openai.NotFoundError):
        other.vector_stores.retrieve(store.id)


def test_the_server_says_which_embedder_it_uses(live_server: LiveServer) -> None:
    used = {"embedder": "local:all-MiniLM-L6-v2", "semantic": True, "reason": None}
    assert httpx.get(live_server.url + "/v1/playground/config").json()["file_search"] == used
    assert httpx.get(live_server.url + "/readyz").json()["file_search"] == used


def test_azure_paths(live_server: LiveServer) -> None:
    http = httpx.Client(base_url=live_server.url, headers={"api-key": KEY_A}, timeout=60)
    made = http.post("/openai/vector_stores?api-version=2025-04-01-preview", json={"name": "az"})
    assert made.status_code == 200, made.text
    again = http.get(f"/openai/v1/vector_stores/{made.json()['id']}")
    assert again.status_code == 200 and again.json()["name"] == "az"


async def test_a_crashing_or_hanging_parser_is_contained(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = sandbox_spec(engine.settings, engine.image, engine.labels)
    parser = extract.DocumentParser(engine.backend, spec, timeout=120)
    sample = documents.pdf(["Otters hold hands while they sleep."])
    used: list[str | None] = []
    try:
        assert "Otters hold hands" in await parser.parse("pdf", sample, "a.pdf", owner="t")
        used.append(parser.last_sandbox_id)
        # The parser dies by a signal (as a segfault or the OOM killer would end it).
        monkeypatch.setattr(extract, "PARSER", "import os, signal; os.kill(os.getpid(), 9)")
        with pytest.raises(extract.InvalidFile, match=r"ran out of memory|crashed"):
            await parser.parse("pdf", sample, "b.pdf", owner="t")
        used.append(parser.last_sandbox_id)
        monkeypatch.setattr(extract, "PARSER", "import time; time.sleep(600)")
        monkeypatch.setattr(parser, "timeout", 3)
        with pytest.raises(extract.InvalidFile, match="longer than 3 s"):
            await parser.parse("pdf", sample, "c.pdf", owner="t")
        used.append(parser.last_sandbox_id)
        monkeypatch.undo()
        assert "Otters" in await parser.parse("pdf", sample, "d.pdf", owner="t")
        used.append(parser.last_sandbox_id)
        # Every document had a sandbox of its own, removed after its parse; only a spare (that
        # never ran anything) may be up.
        assert len(set(used)) == 4 and None not in used
        live = {s.id for s in parser.live_sandboxes()}
        assert len(live) <= 1 and not live & {u for u in used if u}
        # The host never ran a parser: nothing of pypdf is imported in this process.
        assert "pypdf" not in sys.modules
    finally:
        await parser.close()
    assert parser.live_sandboxes() == []


def _parsed(client: openai.OpenAI, name: str, text: str) -> tuple[str, str, str]:
    """A document ingested into a store of its own: (store id, file id, extracted text)."""
    file_id = upload(client, name, text)
    store = client.vector_stores.create(name=name, file_ids=[file_id])
    wait_store(client, store.id)
    vs_file = client.vector_stores.files.retrieve(file_id, vector_store_id=store.id)
    if vs_file.status != "completed":
        return store.id, file_id, f"<{vs_file.status}: {vs_file.last_error}>"
    pages = client.vector_stores.files.content(file_id, vector_store_id=store.id)
    return store.id, file_id, "".join(p.text or "" for p in pages)


def test_each_document_is_parsed_in_a_sandbox_of_its_own(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parser taken over by its document plants files and a process; the next parse, the
    same tenant's or another's, sees none of it (on a shared sandbox it would)."""
    parser = live_server.engine.file_search.parser
    monkeypatch.setattr(extract, "PARSER", tenancy.EXPLOIT)
    a, b = sdk(live_server, KEY_A), sdk(live_server, KEY_B)
    _, _, first = _parsed(a, "a.html", "<p>alpha payroll secret</p>")
    sandbox_a = parser.last_sandbox_id
    _, _, again = _parsed(a, "a2.html", "<p>alpha, a second document</p>")
    _, _, other = _parsed(b, "b.html", "<p>beta document</p>")
    sandbox_b = parser.last_sandbox_id
    assert "alpha payroll secret" in first and "SEEN[]" in first
    assert "SEEN[]" in again, again
    assert "SEEN[]" in other and "alpha" not in other, other
    assert sandbox_a is not None and sandbox_b is not None and sandbox_a != sandbox_b
    assert sandbox_a not in {s.id for s in parser.live_sandboxes()}
    # Docker agrees: the containers of both parses are gone, labelled as parsers.
    for sandbox_id in (sandbox_a, sandbox_b):
        label = f"{SANDBOX_LABEL}={sandbox_id}"
        assert docker.from_env().containers.list(all=True, filters={"label": label}) == []
    spares = [s for s in parser.live_sandboxes() if s.id not in (sandbox_a, sandbox_b)]
    for spare in spares:
        assert spare.labels.get("org.sandbox-engine.role") == "document-parser"


def test_a_hanging_parse_holds_up_only_its_tenant(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    parser = live_server.engine.file_search.parser
    monkeypatch.setattr(extract, "PARSER", tenancy.EXPLOIT)
    monkeypatch.setattr(parser, "timeout", 20.0)
    a, b = sdk(live_server, KEY_A), sdk(live_server, KEY_B)
    hang = upload(a, "hang.html", f"<p>{tenancy.HANG_WORD}</p>")
    hang_store = a.vector_stores.create(name="hang", file_ids=[hang])
    _, _, other = _parsed(b, "b.html", "<p>beta is not held up</p>")
    assert "beta is not held up" in other, other
    # Tenant B's document was parsed while A's parse still hung.
    assert a.vector_stores.files.retrieve(hang, vector_store_id=hang_store.id).status == (
        "in_progress"
    )
    wait_store(a, hang_store.id)
    failed = a.vector_stores.files.retrieve(hang, vector_store_id=hang_store.id)
    assert failed.status == "failed" and failed.last_error is not None
    assert "longer than 20 s" in failed.last_error.message
    _, _, after = _parsed(a, "after.html", "<p>alpha parses again</p>")
    assert "alpha parses again" in after, after


def test_deleting_a_file_removes_it_from_every_store(client: openai.OpenAI) -> None:
    gone = upload(client, "walrus.md", "The walrus choir rehearses on Tuesday evenings.")
    kept = upload(client, "lark.md", "The lark sings over the barley fields at dawn.")
    both = client.vector_stores.create(name="both", file_ids=[gone, kept])
    alone = client.vector_stores.create(name="alone", file_ids=[gone])
    for store in (both, alone):
        assert wait_store(client, store.id).file_counts.completed == store.file_counts.total
    assert client.vector_stores.search(both.id, query="walrus choir").data[0].file_id == gone
    kept_usage = client.vector_stores.files.retrieve(kept, vector_store_id=both.id).usage_bytes
    assert client.vector_stores.retrieve(both.id).usage_bytes > kept_usage

    assert client.files.delete(gone).deleted

    after_both, after_alone = (client.vector_stores.retrieve(s.id) for s in (both, alone))
    assert (after_both.file_counts.total, after_both.file_counts.completed) == (1, 1)
    assert after_both.usage_bytes == kept_usage
    assert after_alone.file_counts.total == 0 and after_alone.usage_bytes == 0
    for store in (both, alone):
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.retrieve(gone, vector_store_id=store.id)
        with pytest.raises(openai.NotFoundError):
            client.vector_stores.files.content(gone, vector_store_id=store.id)
        hits = client.vector_stores.search(store.id, query="walrus choir rehearses").data
        assert all(h.file_id != gone for h in hits), hits
    assert [f.id for f in client.vector_stores.files.list(both.id)] == [kept]
    assert list(client.vector_stores.files.list(alone.id)) == []


def test_another_tenant_cannot_delete_or_attach_a_file(live_server: LiveServer) -> None:
    a, b = sdk(live_server, KEY_A), sdk(live_server, KEY_B)
    file_id = upload(a, "heron.md", "The grey heron fishes at the weir.")
    store = a.vector_stores.create(name="a", file_ids=[file_id])
    wait_store(a, store.id)
    with pytest.raises(openai.NotFoundError):
        b.files.delete(file_id)
    b_store = b.vector_stores.create(name="b")
    with pytest.raises(openai.NotFoundError):
        b.vector_stores.files.create(vector_store_id=b_store.id, file_id=file_id)
    with pytest.raises(openai.NotFoundError):
        b.vector_stores.files.retrieve(file_id, vector_store_id=store.id)
    assert a.vector_stores.retrieve(store.id).file_counts.completed == 1
    assert a.vector_stores.search(store.id, query="heron weir").data[0].file_id == file_id


async def test_library_files_delete_leaves_the_stores(engine: Engine) -> None:
    file_search = FileSearch(engine.runtime, embedder=None).start()
    try:
        stores = file_search.stores
        obj = await engine.files.create(b"Moles dig tunnels under the lawn.", "m.md", owner="t")
        vs = stores.create("t", name="lib", file_ids=[obj.id])
        await asyncio.wait_for(file_search.ingestion.idle(), 60)
        assert stores.retrieve(vs.id, "t").file_counts.completed == 1
        engine.files.delete(obj.id, "t")
        assert stores.retrieve(vs.id, "t").file_counts.total == 0
        with pytest.raises(errors.FileNotFound):
            stores.file_content(vs.id, obj.id, "t")
        page = await stores.search([vs.id], "t", SearchRequest(query="moles tunnels"))
        assert page.data == []
    finally:
        await file_search.close()


# --- the file_search tool ---

ASSISTANTS_WARNINGS = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@ASSISTANTS_WARNINGS
def test_assistants_run_searches_and_cites(
    client: openai.OpenAI, corpus_store: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = corpus_store
    assistant = client.beta.assistants.create(
        model="scripted",
        tools=[
            {
                "type": "file_search",
                "file_search": {
                    "max_num_results": 3,
                    "ranking_options": {"ranker": "auto", "score_threshold": 0.0},
                },
            }
        ],
        tool_resources={"file_search": {"vector_store_ids": [store_id]}},
    )
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Search my files for refund window and office hours"}]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    message = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    text = message.content[0].text  # type: ignore[union-attr]
    assert "30 days" in text.value
    cited = {a.file_citation.file_id for a in text.annotations if a.type == "file_citation"}  # type: ignore[union-attr]
    assert ids["refunds.md"] in cited
    for a in text.annotations:
        assert text.value[a.start_index : a.end_index] == a.text
    steps = client.beta.threads.runs.steps.list(run.id, thread_id=thread.id)
    search = next(s for s in steps if s.type == "tool_calls")
    call = search.step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "file_search"
    assert call.file_search.results and len(call.file_search.results) <= 3  # type: ignore[union-attr]
    assert call.file_search.results[0].content is None  # type: ignore[union-attr]
    full = client.beta.threads.runs.steps.retrieve(
        search.id,
        thread_id=thread.id,
        run_id=run.id,
        include=["step_details.tool_calls[*].file_search.results[*].content"],
    )
    results = full.step_details.tool_calls[0].file_search.results  # type: ignore[union-attr]
    assert results and results[0].content and results[0].content[0].text
    assert {r.file_id for r in results} >= {ids["refunds.md"], ids["page.html"]}


@ASSISTANTS_WARNINGS
def test_message_attachments_build_the_threads_store(client: openai.OpenAI) -> None:
    file_id = upload(client, "lease.txt", "The tenant must give sixty days notice before moving.")
    assistant = client.beta.assistants.create(model="scripted", tools=[{"type": "file_search"}])
    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": "Search my files for notice before moving",
                "attachments": [{"file_id": file_id, "tools": [{"type": "file_search"}]}],
            }
        ]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    thread = client.beta.threads.retrieve(thread.id)
    assert thread.tool_resources and thread.tool_resources.file_search
    store_ids = thread.tool_resources.file_search.vector_store_ids or []
    assert len(store_ids) == 1
    assert client.vector_stores.retrieve(store_ids[0]).file_counts.completed == 1
    reply = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert "sixty days" in reply.content[0].text.value  # type: ignore[union-attr]


def test_responses_file_search_with_results_and_citations(
    client: openai.OpenAI, corpus_store: tuple[str, dict[str, str]]
) -> None:
    store_id, ids = corpus_store
    tool: Any = {"type": "file_search", "vector_store_ids": [store_id], "max_num_results": 4}
    r = client.responses.create(
        model="scripted",
        input="Search my files for refund window and restart the kernel",
        tools=[tool],
        include=["file_search_call.results"],
    )
    assert r.status == "completed", r.error
    call = r.output[0]
    assert call.type == "file_search_call" and call.status == "completed"
    assert call.queries == ["refund window", "restart the kernel"]
    assert call.results and len(call.results) <= 4
    assert {ids["refunds.md"], ids["kernel.py"]} <= {x.file_id for x in call.results}
    message = r.output[-1]
    assert message.type == "message"
    text = message.content[0]
    assert text.type == "output_text"
    cites = [a for a in text.annotations if a.type == "file_citation"]
    assert cites and {c.file_id for c in cites} <= set(ids.values())
    assert all(c.filename for c in cites)
    plain = client.responses.create(
        model="scripted", input="Search my files for tomatoes", tools=[tool]
    )
    assert plain.output[0].type == "file_search_call" and plain.output[0].results is None
    again = client.responses.retrieve(r.id)
    assert again.output[0].results  # type: ignore[union-attr]
    with client.responses.stream(
        model="scripted", input="Search my files for office hours", tools=[tool]
    ) as stream:
        kinds = [event.type for event in stream]
    assert "response.file_search_call.in_progress" in kinds
    assert kinds.index("response.file_search_call.searching") < kinds.index(
        "response.file_search_call.completed"
    )
    follow = client.responses.create(
        model="scripted", input="thanks", previous_response_id=r.id, tools=[tool]
    )
    assert follow.status == "completed"


def test_responses_file_search_bad_stores(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model="scripted",
            input="hi",
            tools=[{"type": "file_search", "vector_store_ids": ["vs_missing"]}],
        )
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model="scripted", input="hi", tools=[{"type": "file_search", "vector_store_ids": []}]
        )


@ASSISTANTS_WARNINGS
def test_tool_resources_vector_stores_helper_makes_a_store(client: openai.OpenAI) -> None:
    file_id = upload(client, "menu.md", "Friday lunch is grilled sardines with lemon.")
    assistant = client.beta.assistants.create(
        model="scripted",
        tools=[{"type": "file_search"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [file_id]}]}},
    )
    resources = assistant.tool_resources
    assert resources and resources.file_search and resources.file_search.vector_store_ids
    store_id = resources.file_search.vector_store_ids[0]
    assert wait_store(client, store_id).file_counts.completed == 1
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Search my files for friday lunch"}]
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    reply = client.beta.threads.messages.list(thread.id, order="desc").data[0]
    assert "sardines" in reply.content[0].text.value  # type: ignore[union-attr]
