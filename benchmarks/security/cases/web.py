"""The web faces: list cursors as a cross-tenant oracle, and hostile output in the playground.

A cursor (``after``/``before``) that names another tenant's object must answer exactly as a
made-up id does, or it tells whether the object exists and when it was made. Output of untrusted
code and of a model (here, an assistant message the attacker wrote through the API) is drawn by
the real playground page in Chromium: nothing in it may run script in the page's origin, which
the payloads would prove by setting a flag on the top window or opening a dialog.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from ..harness import KEYS, Context
from ..model import API, Case, Verdict, clip

Make = Callable[[httpx.AsyncClient], Awaitable[tuple[str, str]]]
"""Makes one object as a tenant: (the list path it belongs to, its id)."""


async def _file(http: httpx.AsyncClient) -> tuple[str, str]:
    r = await http.post(
        "/v1/files", files={"file": ("n.txt", b"cursor probe\n")}, data={"purpose": "assistants"}
    )
    r.raise_for_status()
    return "/v1/files", str(r.json()["id"])


async def _store(http: httpx.AsyncClient) -> tuple[str, str]:
    r = await http.post("/v1/vector_stores", json={"name": "cursor probe"})
    r.raise_for_status()
    return "/v1/vector_stores", str(r.json()["id"])


async def _thread(http: httpx.AsyncClient) -> tuple[str, str]:
    r = await http.post("/v1/threads", json={})
    r.raise_for_status()
    return "/v1/threads", str(r.json()["id"])


async def _message(http: httpx.AsyncClient) -> tuple[str, str]:
    _, thread = await _thread(http)
    r = await http.post(f"/v1/threads/{thread}/messages", json={"role": "user", "content": "hi"})
    r.raise_for_status()
    return f"/v1/threads/{thread}/messages", str(r.json()["id"])


def cursor_case(name: str, what: str, make: Make) -> Case:
    async def run(ctx: Context) -> Verdict:
        async with ctx.client(0) as mine, ctx.client(1) as theirs:
            path, own = await make(mine)
            _, foreign = await make(theirs)  # the victim's object, of the same kind
            answers: dict[str, tuple[int, str]] = {}
            for cursor in ("after", "before"):
                for label, value in (
                    ("own", own),
                    ("made-up", foreign[:-4] + "zzzz"),
                    ("other tenant's", foreign),
                ):
                    r = await mine.get(path, params={cursor: value})
                    message = r.json().get("error", {}).get("message", "") if r.is_error else ""
                    answers[f"{cursor} {label}"] = (r.status_code, message.replace(value, "ID"))
        end = time.perf_counter()
        same = all(
            answers[f"{c} other tenant's"] == answers[f"{c} made-up"] for c in ("after", "before")
        )
        control = all(answers[f"{c} own"][0] == 200 for c in ("after", "before"))
        refused = all(answers[f"{c} made-up"][0] == 400 for c in ("after", "before"))
        codes = {k: v[0] for k, v in answers.items()}
        if not (same and control and refused):
            return Verdict(False, f"ORACLE or broken list: {codes}", None, end)
        return Verdict(True, f"another tenant's id answers as a made-up one: {codes}", None, end)

    return Case(
        name,
        API,
        f"list {what} with after=/before= set to another tenant's id, to learn that it exists",
        "400, the same answer as for a made-up id; the tenant's own ids page normally",
        run,
        quick=True,
    )


# --- the playground ---

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
FLAG = "try{top.__pwned=1}catch(e){};window.__pwned=1;alert(1)"  # no quotes: goes in strings
WAIT_MS = 90_000
# Markup of the payloads that would be in the page itself had it been drawn as HTML.
INJECTED = (
    "#cells b, #cells script, #cells img:not(.figure), #messages script, #messages img.probe, "
    "#messages svg[onload]"
)


async def _browse(ctx: Context, drive: Callable[[Any], Awaitable[tuple[bool, str]]]) -> Verdict:
    """Open the playground with the attacker's key, let ``drive`` draw the payloads, then look
    for the flag, dialogs and script errors that a payload would leave."""
    from playwright.async_api import async_playwright

    if not await asyncio.to_thread(Path(CHROMIUM).exists):
        return Verdict(False, f"no {CHROMIUM}: scripts/setup installs it")
    dialogs: list[str] = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = await browser.new_context()
            context.set_default_timeout(WAIT_MS)
            page = await context.new_page()

            async def dialog(d: Any) -> None:
                dialogs.append(d.message)
                await d.dismiss()

            page.on("dialog", dialog)
            await page.goto(ctx.api_url + "/playground")
            await page.get_by_label("API key").fill(KEYS[0])
            await page.get_by_role("button", name="Use key").click()
            await page.get_by_text("Key set for this tab").wait_for()
            await page.locator("body[data-ready]").wait_for(state="attached")
            drawn_ok, drawn = await drive(page)
            pwned = await page.evaluate("typeof window.__pwned")
            injected = await page.locator(INJECTED).count()
        finally:
            await browser.close()
    end = time.perf_counter()
    ok = drawn_ok and pwned == "undefined" and not dialogs and injected == 0
    evidence = f"{drawn}; flag {pwned}, dialogs {dialogs}, injected <img> {injected}"
    return Verdict(ok, clip(evidence, 400), None, end)


CELLS = [
    f'print("<script>{FLAG}</script><b>bold</b>")',
    "from IPython.display import HTML, SVG, display\n"
    f"display(HTML('<img src=x onerror=\"{FLAG}\"><p>html ok</p>'))\n"
    f"display(HTML('<a href=\"javascript:{FLAG}\">click me</a>'))\n"
    f"display(HTML('<svg><script>{FLAG}</script></svg>'))\n"
    f"display(HTML('<iframe srcdoc=\"<script>{FLAG}</script>\"></iframe>'))\n"
    'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" '
    f'onload="{FLAG}"><script>{FLAG}</script><circle cx="10" cy="10" r="9"/></svg>\'))',
    f"class X:\n    def _repr_html_(self):\n        return '<img src=x onerror=\"{FLAG}\">'\n"
    "    def _repr_markdown_(self):\n"
    f"        return '[md](javascript:{FLAG}) <img src=x onerror=\"{FLAG}\">'\nX()",
]


async def _kernel_output(page: Any) -> tuple[bool, str]:
    await page.get_by_role("button", name="Sandbox console").click()
    cells = page.locator("#cells > li.cell:not(.note)")
    for code in CELLS:
        before = await cells.count()
        await page.get_by_label("Code", exact=True).fill(code)
        await page.get_by_label("Code", exact=True).press("Shift+Enter")
        await cells.nth(before).locator(".cell-footer").wait_for()
    frames = page.frame_locator("#cells iframe.html-output")
    await frames.first.get_by_text("html ok").wait_for()
    await page.frame_locator("#cells iframe.html-output >> nth=1").get_by_text("click me").click()
    shown = await page.locator("#cells pre.stdout").first.inner_text()
    if "<script>" not in shown:
        return False, f"the printed <script> was not shown as text: {shown!r}"
    return True, f"{len(CELLS)} cells of hostile output drawn, a javascript: link clicked"


MODEL_TEXT = (
    f'Here you go <script>{FLAG}</script> <img class=probe src=x onerror="{FLAG}">\n\n'
    f"[a link](javascript:{FLAG}) and ![an image](javascript:{FLAG})\n\n"
    f'<svg onload="{FLAG}"><script>{FLAG}</script></svg>\n\n'
    f'<a href="javascript:{FLAG}">raw link</a> 【0†source】'
)


def _model_output(thread: str) -> Callable[[Any], Awaitable[tuple[bool, str]]]:
    async def drive(page: Any) -> tuple[bool, str]:
        await page.get_by_label("Thread", exact=True).select_option(thread)
        reply = page.locator("#messages .message.assistant").last
        await reply.get_by_text("Here you go").wait_for()
        links = reply.locator("a")
        hrefs = await links.evaluate_all("as => as.map(a => a.getAttribute('href') || '')")
        scripted = [n for n, h in enumerate(hrefs) if h.strip().lower().startswith("javascript:")]
        for n in scripted:  # a link that kept its javascript: URL: clicking it must do nothing
            await links.nth(n).click()
        return True, (
            f"an assistant message with script, handlers and javascript: links drawn; "
            f"{len(hrefs)} links, {len(scripted)} with javascript: URLs clicked"
        )

    return drive


async def _model_case(ctx: Context) -> Verdict:
    async with ctx.client(0) as http:
        r = await http.post(
            "/v1/threads",
            json={
                "messages": [
                    {"role": "user", "content": "show me something"},
                    {"role": "assistant", "content": MODEL_TEXT},
                ]
            },
        )
        r.raise_for_status()
        thread = str(r.json()["id"])
    return await _browse(ctx, _model_output(thread))


CASES = [
    cursor_case("cursor-oracle-files", "files", _file),
    cursor_case("cursor-oracle-vector-stores", "vector stores", _store),
    cursor_case("cursor-oracle-threads", "threads", _thread),
    cursor_case("cursor-oracle-messages", "a thread's messages", _message),
    Case(
        "playground-kernel-output",
        API,
        "kernel output with <script>, onerror=, javascript: links, SVG with script and a "
        "srcdoc iframe, drawn by the playground console in Chromium",
        "shown as text or in script-less sandboxed frames: no flag set, no dialog",
        lambda ctx: _browse(ctx, _kernel_output),
        limit=300,
    ),
    Case(
        "playground-model-output",
        API,
        "an assistant message carrying <script>, onerror=, javascript: links and SVG with "
        "script, drawn by the playground chat in Chromium, its links clicked",
        "drawn as text and safe links: no flag set, no dialog",
        _model_case,
        limit=300,
    ),
]
