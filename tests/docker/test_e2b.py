"""The E2B face, driven by the unmodified SDKs (``e2b`` and ``e2b-code-interpreter`` from PyPI,
``@e2b/code-interpreter`` from npm) against a real uvicorn serving the engine."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2b import (
    AuthenticationException,
    CommandExitException,
    NotFoundException,
    SandboxException,
    SandboxQuery,
    SandboxState,
    TimeoutException,
)
from e2b_code_interpreter import Sandbox

from engine import Settings

from ..support.servers import LiveServer, ServerThread, serve_live

KEY_A = "e2b_" + "a1" * 20
KEY_B = "e2b_" + "b2" * 20
JS_PROJECT = Path(__file__).resolve().parents[1] / "js" / "e2b"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_server: ServerThread
) -> Iterator[LiveServer]:
    yield from serve_live(tmp_path_factory, model_server, keys=(KEY_A, KEY_B))


def params(server: LiveServer, key: str = KEY_A) -> dict[str, Any]:
    url = f"{server.url}/e2b"
    return {"api_key": key, "api_url": url, "sandbox_url": url, "request_timeout": 60}


@pytest.fixture(scope="module")
def sandbox(server: LiveServer) -> Iterator[Sandbox]:
    box = Sandbox.create(timeout=600, metadata={"suite": "e2b"}, **params(server))
    yield box
    box.kill()


def test_create_answers_the_sdks_shape(server: LiveServer, sandbox: Sandbox) -> None:
    info = sandbox.get_info()
    assert info.sandbox_id == sandbox.sandbox_id
    assert info.template_id == "code-interpreter-v1"
    assert info.metadata == {"suite": "e2b"}
    assert info.state.value == "running"
    assert sandbox.is_running()


def test_a_sandbox_lives_300_s_by_default(server: LiveServer) -> None:
    box = Sandbox.create(**params(server))  # no timeout: E2B's default for /v2/sandboxes
    try:
        info = box.get_info()
        assert 290 <= (info.end_at - info.started_at).total_seconds() <= 310
    finally:
        box.kill()


def test_run_code_keeps_state(sandbox: Sandbox) -> None:
    sandbox.run_code("x = 41")
    execution = sandbox.run_code("x + 1")
    assert execution.text == "42"
    assert execution.results[0].is_main_result
    assert execution.execution_count is not None and execution.execution_count >= 2


def test_a_figure_is_a_png_result(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [3, 1, 2])\nplt.show()"
    )
    pngs = [r.png for r in execution.results if r.png]
    assert pngs and pngs[0].startswith("iVBOR")  # base64 of the PNG signature


def test_a_dataframe_is_html_and_text(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
    result = execution.results[0]
    assert result.html is not None and "<table" in result.html
    assert result.text is not None and "a  b" in result.text


def test_an_error_carries_its_traceback(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("def f():\n    return 1 / 0\nf()")
    assert execution.error is not None
    assert execution.error.name == "ZeroDivisionError"
    assert "division by zero" in execution.error.value
    assert "f()" in execution.error.traceback


def test_streaming_callbacks(sandbox: Sandbox) -> None:
    out: list[str] = []
    results: list[Any] = []
    sandbox.run_code(
        "print('hello')\nimport sys; print('oops', file=sys.stderr)\n7 * 6",
        on_stdout=lambda m: out.append(m.line),
        on_result=results.append,
    )
    assert "".join(out) == "hello\n"
    assert [r.text for r in results] == ["42"]


def test_a_timeout_interrupts_the_code(sandbox: Sandbox) -> None:
    sandbox.run_code("x = 41")
    with pytest.raises(TimeoutException):
        sandbox.run_code("import time\nfor i in range(300):\n    time.sleep(0.1)", timeout=2)
    # The client left, the kernel was interrupted: the next cell runs at once, with state intact.
    assert sandbox.run_code("x", timeout=30).text == "41"


def test_env_vars_hold_for_one_run(sandbox: Sandbox) -> None:
    code = "import os; os.environ.get('GREETING', 'unset')"
    assert sandbox.run_code(code, envs={"GREETING": "hi"}).text == "'hi'"
    assert sandbox.run_code(code).text == "'unset'"


def test_contexts_are_separate_interpreters(sandbox: Sandbox) -> None:
    context = sandbox.create_code_context(cwd="/home/user/work")
    try:
        assert sandbox.run_code("import os; os.getcwd()", context=context).text == (
            "'/home/sandbox/work'"
        )
        sandbox.run_code("y = 'context'", context=context)
        assert sandbox.run_code("'y' in dir()").text == "False"
        assert sandbox.run_code("y", context=context).text == "'context'"
        assert context.id in [c.id for c in sandbox.list_code_contexts()]
        sandbox.restart_code_context(context)
        assert sandbox.run_code("'y' in dir()", context=context).text == "False"
    finally:
        sandbox.remove_code_context(context)
    assert context.id not in [c.id for c in sandbox.list_code_contexts()]
    with pytest.raises(Exception, match="not found"):
        sandbox.run_code("1", context=context)
    with pytest.raises(Exception, match="could not set up the context"):
        sandbox.create_code_context(cwd="/etc/not-writable")  # the read-only root
    assert [c.id for c in sandbox.list_code_contexts()] == ["default"]


def test_files(sandbox: Sandbox) -> None:
    info = sandbox.files.write("/home/user/notes/hello.txt", "hello files")
    assert info.path == "/home/sandbox/notes/hello.txt"
    assert sandbox.files.read("/home/user/notes/hello.txt") == "hello files"
    assert sandbox.files.exists("notes/hello.txt")
    # Code written for E2B names /home/user: the same file is there.
    assert sandbox.run_code("open('/home/user/notes/hello.txt').read()").text == "'hello files'"
    assert sandbox.commands.run("cat /home/user/notes/hello.txt").stdout == "hello files"
    big = bytes(range(256)) * 1024  # 256 KiB: several write steps
    sandbox.files.write("/mnt/data/big.bin", big)
    assert sandbox.files.read("/mnt/data/big.bin", format="bytes") == big
    assert sandbox.files.make_dir("/home/user/notes/sub")
    assert not sandbox.files.make_dir("/home/user/notes/sub")  # already there
    names = {e.name: e.type.value for e in sandbox.files.list("/home/user/notes")}
    assert names == {"hello.txt": "file", "sub": "dir"}
    sandbox.files.rename("/home/user/notes/hello.txt", "/home/user/notes/sub/moved.txt")
    assert sandbox.files.get_info("/home/user/notes/sub/moved.txt").size == len("hello files")
    sandbox.files.remove("/home/user/notes")
    assert not sandbox.files.exists("/home/user/notes/sub/moved.txt")
    with pytest.raises(NotFoundException):
        sandbox.files.read("/home/user/nothing-here")


def test_commands(sandbox: Sandbox) -> None:
    result = sandbox.commands.run("echo out; echo err >&2; echo $WHO; pwd", envs={"WHO": "me"})
    assert result.exit_code == 0
    assert result.stdout == "out\nme\n/home/sandbox\n"
    assert result.stderr == "err\n"
    assert sandbox.commands.run("pwd", cwd="/tmp").stdout == "/tmp\n"
    assert sandbox.commands.run("id -u").stdout.strip() == "10001"
    with pytest.raises(CommandExitException) as failed:
        sandbox.commands.run("echo no >&2; exit 3")
    assert failed.value.exit_code == 3
    assert failed.value.stderr == "no\n"


def test_commands_run_inside_the_sandbox(sandbox: Sandbox) -> None:
    """Not on the host: no network, the read-only root, the sandbox's own files."""
    sandbox.files.write("/mnt/data/marker.txt", "inside")
    assert sandbox.commands.run("cat /mnt/data/marker.txt").stdout == "inside"
    result = sandbox.commands.run("touch /etc/x 2>&1; ls /sys/class/net", timeout=30)
    assert "Read-only file system" in result.stdout
    assert result.stdout.split()[-1] == "lo"


def test_a_background_command_is_killed(sandbox: Sandbox) -> None:
    handle = sandbox.commands.run("sleep 300", background=True)
    assert handle.pid in [p.pid for p in sandbox.commands.list()]
    assert handle.kill()
    with pytest.raises(CommandExitException):
        handle.wait()
    assert handle.pid not in [p.pid for p in sandbox.commands.list()]


def test_set_timeout_and_list_by_metadata(server: LiveServer, sandbox: Sandbox) -> None:
    sandbox.set_timeout(900)
    end = sandbox.get_info().end_at
    assert 880 < (end - sandbox.get_info().started_at).total_seconds() < 960
    Sandbox.connect(sandbox.sandbox_id, timeout=60, **params(server))  # never shortens it
    assert sandbox.get_info().end_at == end
    found = Sandbox.list(query=SandboxQuery(metadata={"suite": "e2b"}), **params(server))
    assert [s.sandbox_id for s in found.next_items()] == [sandbox.sandbox_id]
    none = Sandbox.list(query=SandboxQuery(metadata={"suite": "other"}), **params(server))
    assert none.next_items() == []


def test_list_pages_with_the_next_token(server: LiveServer, sandbox: Sandbox) -> None:
    second = Sandbox.create(timeout=120, metadata={"suite": "e2b"}, **params(server))
    try:
        query = SandboxQuery(metadata={"suite": "e2b"})
        pages = Sandbox.list(query=query, limit=1, **params(server))
        first = pages.next_items()
        assert pages.has_next  # the server sent x-next-token
        rest = pages.next_items()
        assert not pages.has_next
        seen = [s.sandbox_id for s in first + rest]
        assert sorted(seen) == sorted([sandbox.sandbox_id, second.sandbox_id])
    finally:
        second.kill()


def test_pause_then_connect_resumes_with_variables(server: LiveServer) -> None:
    box = Sandbox.create(timeout=300, **params(server))
    try:
        box.run_code("import pandas as pd\nframe = pd.DataFrame({'n': [1, 2, 3]})\ncount = 7")
        box.files.write("/mnt/data/kept.txt", "kept")
        assert box.pause()
        paused = Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED]), **params(server))
        assert box.sandbox_id in [s.sandbox_id for s in paused.next_items()]
        again = Sandbox.connect(box.sandbox_id, **params(server))
        assert again.run_code("count + int(frame['n'].sum())").text == "13"
        assert again.files.read("/mnt/data/kept.txt") == "kept"
    finally:
        box.kill()


def test_kill(server: LiveServer) -> None:
    box = Sandbox.create(timeout=60, **params(server))
    box.kill()
    assert not box.is_running()
    with pytest.raises(Exception, match="not found"):
        Sandbox.connect(box.sandbox_id, **params(server))


def test_one_keys_sandboxes_are_invisible_to_another(server: LiveServer, sandbox: Sandbox) -> None:
    other = params(server, KEY_B)
    assert sandbox.sandbox_id not in [s.sandbox_id for s in Sandbox.list(**other).next_items()]
    with pytest.raises(Exception, match="not found"):
        Sandbox.connect(sandbox.sandbox_id, **other)
    assert Sandbox.kill(sandbox.sandbox_id, **other) is False  # not found for that key
    assert sandbox.is_running()
    with pytest.raises(AuthenticationException):
        Sandbox.create(**params(server, "e2b_" + "c3" * 20))


def test_envd_checks_the_access_token(server: LiveServer, sandbox: Sandbox) -> None:
    headers = {"E2b-Sandbox-Id": sandbox.sandbox_id, "E2b-Sandbox-Port": "49983"}
    base = f"{server.url}/e2b"
    for token in (None, "wrong", sandbox._envd_access_token + "x"):
        sent = {**headers, **({"X-Access-Token": token} if token else {})}
        read = httpx.get(f"{base}/files", params={"path": "/etc/hostname"}, headers=sent)
        assert read.status_code == 401, read.text
        assert read.json()["message"]
        rpc = httpx.post(
            f"{base}/filesystem.Filesystem/Stat",
            json={"path": "/"},
            headers={**sent, "Connect-Protocol-Version": "1"},
        )
        assert rpc.status_code == 401 and rpc.json()["code"] == "unauthenticated"
        code = httpx.post(f"{base}/execute", json={"code": "1"}, headers=sent)
        assert code.status_code == 401
    good = {**headers, "X-Access-Token": sandbox._envd_access_token or ""}
    assert httpx.get(f"{base}/files", params={"path": "/etc/hostname"}, headers=good).is_success


def test_unserved_routes_say_so(server: LiveServer, sandbox: Sandbox) -> None:
    base = f"{server.url}/e2b"
    key = {"X-API-Key": KEY_A}
    for method, path in [
        ("GET", "/templates"),
        ("POST", "/v3/templates"),
        ("GET", "/snapshots"),
        ("GET", "/volumes"),
        ("GET", f"/sandboxes/{sandbox.sandbox_id}/metrics"),
        ("POST", "/nothing/here/at/all"),
    ]:
        answer = httpx.request(method, base + path, headers=key)
        assert answer.status_code in (404, 501), path
        body = answer.json()
        assert body["code"] == answer.status_code and body["message"], path
    rpc = httpx.post(
        f"{base}/filesystem.Filesystem/WatchDir",
        json={},
        headers={"E2b-Sandbox-Id": sandbox.sandbox_id, "Connect-Protocol-Version": "1"},
    )
    assert rpc.status_code == 501 and rpc.json()["code"] == "unimplemented"
    with pytest.raises(SandboxException, match="the templates are code-interpreter-v1, base"):
        Sandbox.create(template="no-such-template", **params(server))
    # Egress follows the engine's policy, which this server's operator left off.
    with pytest.raises(SandboxException, match="SANDBOX_EGRESS_ALLOWED_DOMAINS"):
        Sandbox.create(allow_internet_access=True, **params(server))
    with pytest.raises(SandboxException, match="SANDBOX_EGRESS_ALLOWED_DOMAINS"):
        Sandbox.create(network={"allow_out": ["example.com"]}, **params(server))


def test_the_js_sdk(server: LiveServer) -> None:
    node = shutil.which("node")
    if node is None or not (JS_PROJECT / "node_modules" / "@e2b" / "code-interpreter").is_dir():
        pytest.fail("run scripts/setup: it installs the JavaScript SDK into tests/js/e2b (Node 20)")
    url = f"{server.url}/e2b"
    env = {"E2B_API_KEY": KEY_A, "E2B_API_URL": url, "E2B_SANDBOX_URL": url}
    done = subprocess.run(
        [node, "smoke.mjs"], cwd=JS_PROJECT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer == {
        "text": "42",
        "stdout": "hi\n",
        "file": "from js",
        "listed": True,
        "command": "js command\n",
        "background": True,
        "contextIsolated": True,
        "killed": True,
    }


def test_a_sandbox_is_found_again_after_a_restart(tmp_path: Path) -> None:
    """The engine re-adopts the sessions; the E2B face finds its sandbox, metadata, token and
    contexts again, so an SDK that connects carries on with its variables."""
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys=KEY_A,
        memory_limit_mb=512,
        shutdown_sandboxes="keep",
    )
    first = LiveServer(settings)
    first.start()
    try:
        box = Sandbox.create(timeout=300, metadata={"run": "restart"}, **params(first))
        box.run_code("x = 5")
        context = box.create_code_context()
        box.run_code("y = 6", context=context)
    finally:
        first.stop()
    second = LiveServer(settings.model_copy(update={"shutdown_sandboxes": "close"}))
    second.start()
    try:
        again = Sandbox.connect(box.sandbox_id, **params(second))
        assert again.get_info().metadata == {"run": "restart"}
        assert again.run_code("x").text == "5"
        assert again.run_code("y", context=context).text == "6"
        assert context.id in [c.id for c in again.list_code_contexts()]
        assert again.commands.run("echo after").stdout == "after\n"  # the token still holds
        again.kill()
    finally:
        second.stop()


def test_run_code_is_bounded_by_the_clients_timeout_not_the_engines_default(
    tmp_path: Path,
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        api_keys=KEY_A,
        memory_limit_mb=512,
        default_timeout=1,
        shutdown_sandboxes="close",
    )
    server = LiveServer(settings)
    server.start()
    try:
        box = Sandbox.create(**params(server))
        try:
            done = box.run_code("import time; time.sleep(3); 'done'", timeout=30)
            assert done.error is None and done.text == "'done'"
        finally:
            box.kill()
    finally:
        server.stop()
