"""The playground page (/playground) in a real browser: Debian's chromium driven by playwright,
against a live server and the scripted model. The page shows output of untrusted code and
models, so the script-injection cases check that nothing runs in the playground's origin."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import playwright.sync_api as playwright_api
import pytest
from playwright.sync_api import expect

from ..support.browser import CHROMIUM, FLAGS
from ..support.servers import LiveServer, ServerThread, serve_live, server_settings

IMAGES = Path(__file__).parents[2] / "docs" / "images"
KEY = LiveServer.keys[0]
PWNED = "window.__pwned=1;alert(1)"  # no quotes: it goes inside Python and HTML strings
# What the page waits on starts containers and kernels: on a loaded 2-core machine that can take
# longer than playwright's defaults (30 s for waits, 5 s for expect). A passing wait ends early.
WAIT_MS = 90_000
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, model_server: ServerThread
) -> Iterator[LiveServer]:
    """A server of its own: the first visitor's tenant must not see other tests' assistants."""
    yield from serve_live(tmp_path_factory, model_server)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    assert Path(CHROMIUM).exists(), "no /usr/bin/chromium: scripts/setup installs it"
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


class Watched:
    """A page, with the dialogs it opened and the errors that reached its console."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        # The sandboxed frames of untrusted HTML report what they were refused (scripts,
        # requests): that is the protection working, not an error of the page.
        if where.startswith("about:srcdoc") or "sandboxed" in message.text:
            return
        if message.text.startswith("Failed to load resource") and "/playground/x" in where:
            return
        self.errors.append(f"console: {message.text} at {where}")

    def clean(self) -> None:
        assert self.page.evaluate("typeof window.__pwned") == "undefined"
        assert self.dialogs == []
        assert self.errors == []


def open_page(browser: Any, server: ServerThread, key: str | None = KEY, view: str = "") -> Watched:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    watched = Watched(context.new_page())
    page = watched.page
    page.goto(server.url + "/" + view)
    if key:
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Use key").click()
        page.get_by_text("Key set for this tab").wait_for()
        page.locator("body[data-ready]").wait_for(state="attached")
    return watched


def reload(page: Any) -> None:
    """Reload the page and wait until it has loaded its lists: its streams end, runs go on."""
    page.reload()
    page.locator("body[data-ready]").wait_for(state="attached")


def new_assistant(browser: Any, server: ServerThread, name: str) -> Watched:
    """The page, with the assistant form cleared for a new assistant of this name."""
    watched = open_page(browser, server)
    watched.page.get_by_role("button", name="New assistant").click()
    watched.page.get_by_label("Name").fill(name)
    return watched


def run_cell(page: Any, code: str, timeout: float = WAIT_MS) -> Any:
    cells = page.locator("#cells > li.cell:not(.note)")
    before = cells.count()
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_label("Code", exact=True).press("Shift+Enter")
    cell = cells.nth(before)
    cell.locator(".cell-footer").wait_for(timeout=timeout)
    return cell


# --- item 1: where it lives, headers, key ---


def test_root_redirects_and_the_page_has_a_strict_csp(live_server: LiveServer) -> None:
    answer = httpx.get(live_server.url + "/", follow_redirects=False)
    assert answer.status_code in (302, 307) and answer.headers["location"] == "/playground"
    page = httpx.get(live_server.url + "/playground")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    for part in (
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
        "img-src 'self' data: blob:",
    ):
        assert part in csp
    assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert (
        httpx.get(live_server.url + "/playground/app.js")
        .headers["content-type"]
        .startswith("text/javascript")
    )
    assert httpx.get(live_server.url + "/playground/../engine/config.py").status_code == 404
    config = httpx.get(live_server.url + "/v1/playground/config").json()
    assert config["key_required"] is True and config["model_configured"] is True
    assert config["default_model"] == "scripted"  # the first the model endpoint lists
    models = live_server.url + "/v1/playground/models"
    assert httpx.get(models).status_code == 401  # the endpoint's list is for key holders
    listed = httpx.get(models, headers={"Authorization": f"Bearer {KEY}"}).json()
    assert [m["id"] for m in listed["data"]] == ["scripted"]
    check = live_server.url + "/v1/playground/key"
    assert httpx.get(check).json()["valid"] is False
    assert httpx.get(check, headers={"Authorization": "Bearer nope"}).json()["valid"] is False
    assert httpx.get(check, headers={"Authorization": f"Bearer {KEY}"}).json()["valid"] is True


def test_the_key_prompt_refuses_a_bad_key_and_keeps_a_good_one_in_the_tab(
    browser: Any, live_server: LiveServer
) -> None:
    watched = open_page(browser, live_server, key=None)
    page = watched.page
    page.get_by_label("API key").fill("wrong")
    page.get_by_role("button", name="Use key").click()
    page.get_by_text("invalid API key").wait_for()
    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    page.get_by_text("Key set for this tab").wait_for()
    assert page.evaluate("sessionStorage.getItem('sandbox-engine-key')") == KEY
    assert page.evaluate("localStorage.length") == 0
    page.reload()
    page.get_by_text("Key set for this tab").wait_for()  # the tab keeps it, without asking
    watched.clean()
    page.context.close()


# --- item 2: the console ---


def test_console_streams_cells_figures_html_and_tracebacks(
    browser: Any, live_server: LiveServer
) -> None:
    watched = open_page(browser, live_server, view="playground#console")
    page = watched.page
    cell = run_cell(
        page, "import time\nfor i in range(3):\n    print('tick', i, flush=True); time.sleep(0.7)"
    )
    assert "tick 0\ntick 1\ntick 2" in cell.locator("pre.stdout").inner_text()
    # Streaming: the first line shows before the cell is done.
    page.get_by_label("Code", exact=True).fill(
        "import time\nprint('first', flush=True)\ntime.sleep(3)\nprint('second')"
    )
    page.get_by_role("button", name="Run").click()
    streaming = page.locator("#cells > li.cell").last
    streaming.locator("pre.stdout").get_by_text("first").wait_for(timeout=WAIT_MS)
    assert streaming.locator(".cell-footer").count() == 0  # read at once: it must not be there yet
    streaming.locator(".cell-footer").wait_for(timeout=WAIT_MS)

    figure = run_cell(
        page,
        "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('3 points')\nplt.show()",
    )
    src = figure.locator("img.figure").get_attribute("src")
    assert src and src.startswith("data:image/png;base64,")
    assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")

    table = run_cell(page, "import pandas as pd\npd.DataFrame({'city': ['Oslo'], 'temp': [4]})")
    frame = table.locator("iframe.html-output")
    assert frame.get_attribute("sandbox") == ""
    expect(page.frame_locator("#cells iframe.html-output").last.get_by_text("Oslo")).to_be_visible()

    failing = run_cell(page, "def f():\n    return 1 / 0\nf()")
    expect(failing.locator("pre.traceback")).to_contain_text("ZeroDivisionError")
    expect(failing).to_have_attribute("data-status", "error")
    expect(page.locator("#session-info")).to_contain_text("Expires")
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / "playground-console.png"), full_page=True)
    watched.clean()
    page.context.close()


def test_console_upload_download_delete_and_restart(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    watched = open_page(browser, live_server, view="playground#console")
    page = watched.page
    page.locator("#session-info").get_by_text("Status").or_(
        page.get_by_text("Run a cell to start a session")
    ).wait_for()
    before = page.locator("#session-select").input_value()
    page.get_by_role("button", name="New session").click()
    page.wait_for_function(
        "v => { const s = document.getElementById('session-select'); "
        "return s.value && s.value !== v }",
        arg=before,
    )
    page.get_by_text("No files yet.").wait_for()
    source = tmp_path / "sales.csv"
    source.write_text("region,amount\nnorth,3\nsouth,4\n")
    page.get_by_label("Upload").set_input_files(str(source))
    page.get_by_role("button", name="Download sales.csv").wait_for()
    cell = run_cell(
        page, "import pandas as pd\nprint(pd.read_csv('/mnt/data/sales.csv').amount.sum())"
    )
    assert cell.locator("pre.stdout").inner_text().strip() == "7"
    with page.expect_download() as waiting:
        page.get_by_role("button", name="Download sales.csv").click()
    got = waiting.value
    assert got.suggested_filename == "sales.csv"
    assert Path(got.path()).read_text() == source.read_text()

    run_cell(page, "x = 41")
    page.get_by_role("button", name="Restart kernel").click()
    page.get_by_text("The kernel was restarted").wait_for()
    gone = run_cell(page, "x")
    assert "NameError" in gone.locator("pre.traceback").inner_text()

    page.get_by_role("button", name="Delete sales.csv").click()
    page.get_by_text("No files yet.").wait_for()

    deleted = page.locator("#session-select").input_value()
    page.get_by_role("button", name="Delete session").click()
    page.wait_for_function(
        "id => ![...document.querySelectorAll('#session-select option')].some(o => o.value === id)",
        arg=deleted,
    )
    fresh = run_cell(page, "print('new session')")  # a cell after it starts a session again
    assert fresh.locator("pre.stdout").inner_text().strip() == "new session"
    assert page.locator("#session-select").input_value() not in ("", deleted)
    watched.clean()
    page.context.close()


def test_output_of_untrusted_code_never_runs_script_in_the_page(
    browser: Any, live_server: LiveServer
) -> None:
    watched = open_page(browser, live_server, view="playground#console")
    page = watched.page
    printed = run_cell(page, f'print("<script>{PWNED}</script><b>bold</b>")')
    assert "<script>" in printed.locator("pre.stdout").inner_text()  # shown as text
    assert page.locator("#cells b").count() == 0
    run_cell(
        page,
        "from IPython.display import HTML, display\n"
        f"display(HTML('<img src=x onerror=\"{PWNED}\"><p id=plain>html ok</p>'))\n"
        f"display(HTML('<a id=js href=\"javascript:{PWNED}\">click me</a>'))\n"
        f"display(HTML('<svg><script>{PWNED}</script></svg>'))\n"
        "display(HTML('<iframe srcdoc=\"<script>parent.__pwned=1</script>\"></iframe>'))\n"
        "from IPython.display import SVG\n"
        'display(SVG(\'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">'
        f'<script>{PWNED}</script><circle cx="10" cy="10" r="9"/></svg>\'))',
    )
    svg = page.locator("#cells img.figure").last
    assert (svg.get_attribute("src") or "").startswith("data:image/svg+xml")
    frames = page.frame_locator("#cells iframe.html-output")
    page.frame_locator("#cells iframe.html-output >> nth=0").get_by_text("html ok").wait_for()
    page.frame_locator("#cells iframe.html-output >> nth=1").get_by_text("click me").click()
    # A result whose text/plain looks like HTML, and a text/markdown link.
    run_cell(
        page,
        "class X:\n    def _repr_html_(self):\n        return '<img src=x onerror=\""
        + PWNED
        + "\">'\nX()",
    )
    expect(frames.first.get_by_text("html ok")).to_have_count(1)
    expect(page.locator("#cells img:not(.figure)")).to_have_count(0)  # no <img> came in
    watched.clean()
    page.context.close()


# --- item 3: the assistants view ---


def test_a_first_visitor_chats_at_once_and_gets_a_chart_streamed(
    browser: Any, live_server: LiveServer
) -> None:
    watched = open_page(browser, live_server)
    page = watched.page
    page.get_by_label("Message", exact=True).fill(
        "Create a visualization of a sinewave, and stream slowly"
    )
    page.get_by_role("button", name="Send").click()
    # Visible streaming: a reply's text grows over time, while the run goes on.
    seen: set[int] = set()
    for _ in range(600):
        # Read in one go: a streaming text node is replaced when its message completes.
        status, lengths = page.evaluate(
            "() => [document.getElementById('run-status').textContent, "
            "[...document.querySelectorAll('#messages .text.streaming')]"
            ".map(e => e.textContent.length)]"
        )
        if status == "completed":
            break
        seen.update(lengths)
        page.wait_for_timeout(50)
    assert len(seen - {0}) >= 3, seen
    page.get_by_text("completed").wait_for(timeout=120_000)
    step = page.locator("#messages .message.tool .step").first
    expect(step.locator("pre.code")).to_contain_text("np.sin")
    step.locator(".tok-keyword").first.wait_for()  # highlighted
    image = page.locator("#messages .message.tool img.figure").first
    page.wait_for_function(
        "img => img.src.startsWith('blob:') && img.naturalWidth > 0", arg=image.element_handle()
    )
    page.get_by_role("button", name="Download sine.png").wait_for()
    expect(page.locator("#usage")).to_contain_text(re.compile(r"Tokens: \d+ in, \d+ out"))
    expect(page.locator("#assistant-select")).to_contain_text("Playground assistant")
    page.screenshot(path=str(IMAGES / "playground-chat.png"))
    with page.expect_download() as waiting:
        page.get_by_role("button", name="Download sine.png").click()
    assert Path(waiting.value.path()).read_bytes().startswith(b"\x89PNG")
    # Reloaded, the thread shows again as it was: the code, its figure, the file.
    thread_id = page.locator("#thread-select").input_value()
    reload(page)
    page.get_by_label("Thread", exact=True).select_option(thread_id)
    page.get_by_role("button", name="Download sine.png").wait_for()
    expect(page.locator("#messages .message.tool pre.code").first).to_contain_text("np.sin")
    image = page.locator("#messages .message.tool img.figure").first
    page.wait_for_function(
        "img => img.src.startsWith('blob:') && img.naturalWidth > 0", arg=image.element_handle()
    )
    watched.clean()
    page.context.close()


WEATHER = (
    '[{"name": "get_weather", "parameters": {"type": "object", "properties": '
    '{"city": {"type": "string"}}}}, {"name": "get_time", "parameters": {"type": "object", '
    '"properties": {"timezone": {"type": "string"}}}}]'
)


def test_a_function_call_opens_a_form_for_its_output(browser: Any, live_server: LiveServer) -> None:
    watched = new_assistant(browser, live_server, "Weather bot")
    page = watched.page
    page.get_by_label("Function definitions (JSON list)").fill(WEATHER)
    page.get_by_role("button", name="Create assistant").click()
    page.get_by_text("Saved.").wait_for()
    page.get_by_label("Message", exact=True).fill("What are the weather and time in Paris?")
    page.get_by_label("Message", exact=True).press("Enter")
    page.get_by_label("Output of get_weather").wait_for()
    # A paused run waits: after a reload, its thread brings the form back.
    thread_id = page.locator("#thread-select").input_value()
    reload(page)
    expect(page.locator("#tool-form")).to_be_hidden()
    page.get_by_label("Thread", exact=True).select_option(thread_id)
    page.get_by_label("Output of get_weather").fill("sunny, 21 C")
    page.get_by_label("Output of get_time").fill("14:05")
    page.get_by_role("button", name="Submit tool outputs").click()
    page.locator("#messages").get_by_text("Weather: sunny, 21 C. Time: 14:05.").wait_for(
        timeout=WAIT_MS
    )
    watched.clean()
    page.context.close()


def test_without_a_model_the_chat_says_how_and_the_console_works(
    browser: Any, tmp_path: Path, model_server: ServerThread
) -> None:
    server = LiveServer(
        server_settings(tmp_path, model_server, llm_base_url=None, llm_api_key=None)
    )
    server.start()
    try:
        watched = open_page(browser, server)
        page = watched.page
        help_text = page.locator("#model-help")
        expect(help_text).to_contain_text("SANDBOX_LLM_BASE_URL")
        expect(help_text).to_contain_text("SANDBOX_LLM_API_KEY")
        expect(page.get_by_role("button", name="Send")).to_be_disabled()
        page.get_by_role("button", name="Sandbox console").click()
        cell = run_cell(page, "print(6 * 7)")
        assert cell.locator("pre.stdout").inner_text().strip() == "42"
        watched.clean()
        page.context.close()
    finally:
        server.stop()


def test_assistants_are_edited_deleted_given_files_and_runs_cancelled(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    watched = new_assistant(browser, live_server, "Analyst")
    page = watched.page
    data = tmp_path / "numbers.csv"
    data.write_text("amount\n1\n2\n")
    page.get_by_label("Code interpreter files").set_input_files(str(data))
    page.locator("#a-file-list li").wait_for()
    page.get_by_role("button", name="Create assistant").click()
    page.get_by_text("Saved.").wait_for()
    created = page.locator("#assistant-select").input_value()
    headers = {"Authorization": f"Bearer {KEY}"}
    stored = httpx.get(f"{live_server.url}/v1/assistants/{created}", headers=headers).json()
    assert stored["name"] == "Analyst"
    assert len(stored["tool_resources"]["code_interpreter"]["file_ids"]) == 1
    page.get_by_label("Name").fill("Analyst 2")
    page.get_by_label("Instructions").fill("Be brief.")
    page.get_by_role("button", name="Save assistant").click()
    page.get_by_text("Saved.").wait_for()
    stored = httpx.get(f"{live_server.url}/v1/assistants/{created}", headers=headers).json()
    assert (stored["name"], stored["instructions"]) == ("Analyst 2", "Be brief.")

    page.get_by_label("Message", exact=True).fill(
        "Create a visualization of a sinewave, and stream slowly"
    )
    page.get_by_role("button", name="Send").click()
    page.locator("#messages .message.assistant .text").first.wait_for(timeout=WAIT_MS)
    page.get_by_role("button", name="Cancel run").click()
    page.locator("#run-status").get_by_text("cancelled").wait_for(timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()

    page.get_by_role("button", name="Delete assistant").click()
    page.wait_for_function(
        "id => ![...document.querySelectorAll('#assistant-select option')]"
        ".some(o => o.value === id)",
        arg=created,
    )
    assert (
        httpx.get(f"{live_server.url}/v1/assistants/{created}", headers=headers).status_code == 404
    )
    watched.clean()
    page.context.close()


def test_a_run_shows_the_errors_of_its_code(browser: Any, live_server: LiveServer) -> None:
    watched = open_page(browser, live_server)
    page = watched.page
    page.get_by_label("Message", exact=True).fill("Sum 0..9 and print it; fix it if it fails")
    page.get_by_role("button", name="Send").click()
    page.locator("#messages").get_by_text("Fixed. The total is 45.").wait_for(timeout=90_000)
    logs = page.locator("#messages .step pre.logs")
    expect(logs.first).to_contain_text("NameError")
    expect(page.locator("#messages .step pre.code")).to_have_count(2)
    watched.clean()
    page.context.close()


# --- file search: vector stores, attachments, citations; threads come back ---

HANDBOOK = (
    "Office handbook.\n\nThe office plants are watered every Tuesday by the night porter, "
    "who keeps the can in the basement. <img src=x onerror=" + PWNED + ">\n\n"
    "Parking is free for bicycles."
)


def wait_run(page: Any, timeout: float = WAIT_MS) -> None:
    page.locator("#run-status").get_by_text("completed").wait_for(timeout=timeout)


def test_file_search_cites_the_files_of_a_vector_store(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    watched = new_assistant(browser, live_server, "Librarian")
    page = watched.page
    source = tmp_path / "handbook.txt"
    source.write_text(HANDBOOK)
    page.get_by_label("Add files to a new vector store").set_input_files(str(source))
    page.get_by_text("Indexed 1 of 1 file into Librarian files.").wait_for(timeout=120_000)
    expect(page.get_by_label("Librarian files · 1 file")).to_be_checked()
    expect(page.get_by_label("File search")).to_be_checked()
    page.get_by_role("button", name="Create assistant").click()
    page.get_by_text("Saved.").wait_for()
    headers = {"Authorization": f"Bearer {KEY}"}
    created = page.locator("#assistant-select").input_value()
    stored = httpx.get(f"{live_server.url}/v1/assistants/{created}", headers=headers).json()
    assert {"file_search", "code_interpreter"} <= {t["type"] for t in stored["tools"]}
    (store_id,) = stored["tool_resources"]["file_search"]["vector_store_ids"]
    store = httpx.get(f"{live_server.url}/v1/vector_stores/{store_id}", headers=headers).json()
    assert store["file_counts"]["completed"] == 1

    page.get_by_label("Message", exact=True).fill("search my files for watering the plants")
    page.get_by_role("button", name="Send").click()
    wait_run(page)
    search = page.locator("#messages .message.tool .step").filter(has_text="file search")
    expect(search.locator("ol.results")).to_contain_text("handbook.txt")
    expect(search.locator("blockquote").first).to_contain_text("watered every Tuesday")
    reply = page.locator("#messages .message.assistant").last
    expect(reply.locator(".text")).to_contain_text("watered every Tuesday")
    expect(reply.locator(".text")).not_to_contain_text("【")  # the mark became a footnote
    expect(reply.locator("sup.cite").first).to_have_text("[1]")
    expect(reply.get_by_role("list", name="Sources")).to_have_text("handbook.txt")
    expect(page.locator("#messages img:not(.figure)")).to_have_count(0)  # the document's <img>
    page.screenshot(path=str(IMAGES / "playground-file-search.png"))
    watched.clean()
    page.context.close()


def test_an_attached_file_is_searched_and_the_thread_comes_back(
    browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    watched = new_assistant(browser, live_server, "Reader")
    page = watched.page
    page.get_by_label("File search").check()
    page.get_by_role("button", name="Create assistant").click()
    page.get_by_text("Saved.").wait_for()
    menu = tmp_path / "menu.md"
    menu.write_text("# Menu\n\nFor dessert there is a lemon tart with fresh cream.\n")
    page.get_by_label("Attach files to the message").set_input_files(str(menu))
    page.get_by_label("Message", exact=True).fill("search my files for the dessert")
    page.get_by_role("button", name="Send").click()
    page.locator("#messages .message.user").get_by_text("Attached: menu.md").wait_for()
    wait_run(page)
    reply = page.locator("#messages .message.assistant").last
    expect(reply.locator(".text")).to_contain_text("lemon tart")
    expect(reply.get_by_role("list", name="Sources")).to_have_text("menu.md")
    thread_id = page.locator("#thread-select").input_value()
    assert thread_id.startswith("thread_")
    watched.clean()
    page.context.close()

    # Another visit lists the thread by its first message, and shows it as it was.
    watched = open_page(browser, live_server)
    page = watched.page
    title = page.locator("#thread-select option", has_text="search my files for the dessert")
    expect(title).to_have_attribute("value", thread_id)
    page.get_by_label("Thread", exact=True).select_option(thread_id)
    # The thread is drawn in steps (messages, then run steps, then usage): wait for each.
    reply = page.locator("#messages .message.assistant").last
    expect(reply.get_by_role("list", name="Sources")).to_have_text("menu.md")
    expect(reply.locator(".text")).to_contain_text("lemon tart")
    expect(page.locator("#messages .message.tool").filter(has_text="file search")).to_have_count(1)
    attached = page.locator("#messages .message.user").get_by_text("Attached: menu.md")
    expect(attached).to_have_count(1)
    expect(page.locator("#usage")).to_contain_text(re.compile(r"Tokens: \d+ in"))
    page.get_by_role("button", name="Delete thread").click()
    page.wait_for_function(
        "id => ![...document.querySelectorAll('#thread-select option')].some(o => o.value === id)",
        arg=thread_id,
    )
    headers = {"Authorization": f"Bearer {KEY}"}
    gone = httpx.get(f"{live_server.url}/v1/threads/{thread_id}", headers=headers)
    assert gone.status_code == 404
    watched.clean()
    page.context.close()


# --- item 6: names and the keyboard ---

NAMES = """() => [...document.querySelectorAll('button, input, select, textarea')]
  .filter(e => e.offsetParent !== null)
  .filter(e => !(e.getAttribute('aria-label') || (e.labels && e.labels.length
    && e.labels[0].textContent.trim()) || e.textContent.trim()))
  .map(e => e.outerHTML.slice(0, 80))"""


def tab_to(page: Any, name: str, limit: int = 80) -> None:
    """Press Tab until the control with this accessible name has the focus."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(
            "() => { const e = document.activeElement; return e.getAttribute('aria-label') || "
            "(e.labels && e.labels.length ? e.labels[0].textContent : e.textContent).trim() }"
        )
        if focused == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_every_control_is_named_and_the_page_works_from_the_keyboard(
    browser: Any, live_server: LiveServer
) -> None:
    watched = open_page(browser, live_server)
    page = watched.page
    assert page.evaluate(NAMES) == []
    assert page.locator("#a-models option").evaluate_all("os => os.map(o => o.value)") == [
        "scripted"
    ]
    for name in ("Message", "Send"):
        assert page.get_by_role("textbox" if name == "Message" else "button", name=name).count()
    tab_to(page, "Message")
    page.keyboard.type("hello from the keyboard")
    page.keyboard.press("Enter")
    page.locator("#messages .message.assistant").get_by_text(
        "echo: hello from the keyboard"
    ).wait_for(timeout=WAIT_MS)
    # A screen reader hears the finished reply once, through a status region.
    expect(page.get_by_role("status").filter(has_text="assistant: echo: hello")).to_have_count(1)

    page.evaluate("document.activeElement.blur()")
    tab_to(page, "Sandbox console")
    page.keyboard.press("Enter")
    expect(page.locator("#view-console")).to_be_visible()
    assert page.evaluate(NAMES) == []
    tab_to(page, "Upload")
    tab_to(page, "Code")
    page.keyboard.type("print(6 * 7)")
    page.keyboard.press("Shift+Enter")
    cell = page.locator("#cells > li.cell:not(.note)").last
    cell.locator(".cell-footer").wait_for(timeout=WAIT_MS)
    assert cell.locator("pre.stdout").inner_text().strip() == "42"
    tab_to(page, "Run")
    watched.clean()
    page.context.close()


def test_a_thread_whose_run_goes_on_is_shown_once_the_run_ends(
    browser: Any, live_server: LiveServer
) -> None:
    watched = open_page(browser, live_server)
    page = watched.page
    page.get_by_label("Message", exact=True).fill("Take a nap, then say so")
    page.get_by_role("button", name="Send").click()
    page.locator("#messages .message.tool pre.code").first.wait_for(timeout=WAIT_MS)
    thread_id = page.locator("#thread-select").input_value()
    reload(page)  # mid-run: the page's stream is gone, the run is not
    page.get_by_label("Thread", exact=True).select_option(thread_id)
    page.locator("#run-status").get_by_text("started earlier").wait_for()
    page.locator("#messages").get_by_text("Rested: rested.").wait_for(timeout=WAIT_MS)
    expect(page.locator("#run-status")).to_have_text("completed")
    expect(page.locator("#messages .message.tool pre.code")).to_contain_text("time.sleep(6)")
    watched.clean()
    page.context.close()
