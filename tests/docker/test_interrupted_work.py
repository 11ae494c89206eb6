"""Work cut short keeps what it produced: a session closed mid-execution answers with the output so
far, its stream ends with ``done``, and a client that gives up on an execution interrupts it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx
import pytest

from engine import Engine, ExecutionStatus

from ..support.servers import LiveServer

SLOW = "print('before', flush=True)\nimport time\ntime.sleep(120)\nprint('never')"


@pytest.fixture
def client(live_server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=live_server.url,
        timeout=60,
        headers={"Authorization": f"Bearer {LiveServer.keys[0]}"},
    )


def _new_session(client: httpx.Client) -> str:
    r = client.post("/v1/sessions", json={})
    assert r.status_code == 200, r.text
    sid: str = r.json()["id"]
    return sid


def _assert_cut_short(result: dict[str, Any], sid: str) -> None:
    assert result["status"] == "cancelled", result
    assert result["stdout"] == "before\n"
    assert result["error"]["name"] == "SessionClosed"
    assert sid in result["error"]["value"] and "kept" in result["error"]["value"]


async def test_a_session_closed_mid_execution_returns_its_output(engine: Engine) -> None:
    session = await engine.session()
    seen = asyncio.Event()
    task = asyncio.ensure_future(session.execute(SLOW, timeout=120, on_event=lambda e: seen.set()))
    await asyncio.wait_for(seen.wait(), 30)
    await engine.sessions.close(session.id)
    result = await asyncio.wait_for(task, 10)
    assert result.status is ExecutionStatus.CANCELLED
    assert result.stdout == "before\n" and result.error is not None
    assert result.error.name == "SessionClosed"


def test_closing_a_session_answers_a_waiting_execute(client: httpx.Client) -> None:
    sid = _new_session(client)
    answer: dict[str, Any] = {}

    def run() -> None:
        answer.update(client.post(f"/v1/sessions/{sid}/execute", json={"code": SLOW}).json())

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(3)  # the print is out by then
    assert client.delete(f"/v1/sessions/{sid}").json()["deleted"] is True
    thread.join(30)
    assert not thread.is_alive()
    _assert_cut_short(answer, sid)


def test_closing_a_session_ends_its_stream_with_done(client: httpx.Client) -> None:
    sid = _new_session(client)
    events: list[tuple[str | None, Any]] = []
    with client.stream(
        "POST",
        f"/v1/sessions/{sid}/execute",
        json={"code": SLOW},
        headers={"Accept": "text/event-stream"},
    ) as r:
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
                if name == "stdout":
                    client.delete(f"/v1/sessions/{sid}")
    names = [n for n, _ in events]
    assert names == ["stdout", "done"], names
    assert events[0][1]["text"] == "before\n"
    _assert_cut_short(events[-1][1], sid)


def test_a_client_that_gives_up_interrupts_its_execution(client: httpx.Client) -> None:
    sid = _new_session(client)
    busy = "n = 0\nwhile True:\n    n += 1"
    with pytest.raises(httpx.ReadTimeout):
        client.post(f"/v1/sessions/{sid}/execute", json={"code": busy, "timeout": 600}, timeout=2)
    started = time.perf_counter()
    r = client.post(f"/v1/sessions/{sid}/execute", json={"code": "print(n > 0)"}, timeout=30)
    waited = time.perf_counter() - started
    body = r.json()
    # Interrupted, not restarted: the loop's variable is there, and the next call ran at once.
    assert body["status"] == "ok" and body["stdout"] == "True\n", body
    assert waited < 10, f"the next execute waited {waited:.1f} s behind the abandoned one"
    client.delete(f"/v1/sessions/{sid}")
