"""Every stream ends: a streamed background response that is cancelled, deleted, or whose
server stops, and a streamed Assistants run that is cancelled or whose server stops, each get a
terminal event the official ``openai`` SDK parses, and the stream closes.

The stream is read in a thread with the SDK (``stream=True, background=True``); the main thread
waits until the response's code runs (the scripted model's "slow" script sleeps 60 s), then acts.
Before the fix each of these streams went on forever with a ping every 15 s. How fast they end
(within 2 s) is measured by the security bench (benchmarks/security/cases/responses.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest

from ..support.clients import CODE, coder, sdk
from ..support.servers import LiveServer, ServerThread, server_settings

ENDS_WITHIN = 30.0  # generous on a loaded machine: without the fix the stream never ends


class Reader:
    """Reads a stream to its end in a thread, noting each event and when the stream closed."""

    def __init__(self, stream: Any, started: Callable[[Any], bool]) -> None:
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.started = threading.Event()
        self.ended_at = 0.0
        self._stream = stream
        self._is_start = started
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in self._stream:
                self.events.append(event)
                if self._is_start(event):
                    self.started.set()
        except BaseException as exc:  # what the SDK raised is what the test reports
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.started.set()

    def wait_started(self) -> None:
        assert self.started.wait(120), "the code never started"
        assert not self.ended_at, f"the stream ended early: {self.error or self.events[-1:]}"

    def join(self) -> float:
        """Seconds from now until the stream ended."""
        asked = time.monotonic()
        self._thread.join(ENDS_WITHIN)
        assert not self._thread.is_alive(), "the stream did not end"
        assert self.error is None, self.error
        return max(0.0, self.ended_at - asked)


def _interpreting(event: Any) -> bool:
    return bool(event.type == "response.code_interpreter_call.interpreting")


def _slow_stream(client: openai.OpenAI) -> tuple[Reader, str]:
    stream = client.responses.create(
        model="m", tools=CODE, input="Something slow", background=True, stream=True
    )
    reader = Reader(stream, _interpreting)
    reader.wait_started()
    return reader, reader.events[0].response.id


def test_cancel_ends_the_stream(client: openai.OpenAI) -> None:
    reader, response_id = _slow_stream(client)
    cancelled = client.responses.cancel(response_id)
    reader.join()
    assert cancelled.status == "cancelled"
    last = reader.events[-1]
    assert last.type == "response.failed"  # the SDK has no response.cancelled event
    assert last.response.id == response_id and last.response.status == "cancelled"
    assert last.response.error is None
    assert [e.sequence_number for e in reader.events] == list(range(len(reader.events)))
    call = next(o for o in last.response.output if o.type == "code_interpreter_call")
    assert call.status in ("completed", "incomplete")  # nothing is left in progress
    assert client.responses.retrieve(response_id).status == "cancelled"


def test_delete_ends_the_stream(client: openai.OpenAI) -> None:
    reader, response_id = _slow_stream(client)
    client.responses.delete(response_id)
    reader.join()
    last = reader.events[-1]
    assert last.type == "response.failed" and last.response.status == "cancelled"
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response_id)


def _stop_while_streaming(server: LiveServer, stream: Callable[[openai.OpenAI], Reader]) -> Reader:
    """Start ``server``, open a stream on it, stop the server: the stream, read to its end."""
    server.start()
    try:
        reader = stream(sdk(server))
    finally:
        stopping = threading.Thread(target=server.stop)
        stopping.start()
    reader.join()
    stopping.join(120)
    assert not stopping.is_alive(), "the server did not stop"
    return reader


def test_a_stopping_server_ends_the_stream(tmp_path: Path, model_server: ServerThread) -> None:
    server = LiveServer(server_settings(tmp_path / "data", model_server))
    response_ids: list[str] = []

    def stream(client: openai.OpenAI) -> Reader:
        reader, response_id = _slow_stream(client)
        response_ids.append(response_id)
        return reader

    last = _stop_while_streaming(server, stream).events[-1]
    (response_id,) = response_ids
    assert last.type == "response.failed" and last.response.status == "failed"
    assert last.response.error is not None and last.response.error.code == "server_error"
    assert "shut down" in last.response.error.message
    again = LiveServer(server.settings)
    again.start()
    try:  # what the stream said is what was stored
        stored = sdk(again).responses.retrieve(response_id)
        assert stored.status == "failed" and stored.error is not None
        assert "shut down" in stored.error.message
    finally:
        again.stop()


def _run_stream(client: openai.OpenAI) -> tuple[Reader, str, str]:
    assistant_id = coder(client)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Do something slow"}])
    stream = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant_id, stream=True
    )
    # The code call's step is told when the code starts running.
    reader = Reader(stream, lambda e: e.event == "thread.run.step.created")
    reader.wait_started()
    return reader, thread.id, reader.events[0].data.id


def test_cancel_ends_an_assistants_run_stream(client: openai.OpenAI) -> None:
    reader, thread_id, run_id = _run_stream(client)
    client.beta.threads.runs.cancel(thread_id=thread_id, run_id=run_id)
    reader.join()
    names = [e.event for e in reader.events]
    assert names[-1] == "thread.run.cancelled", names[-3:]
    assert reader.events[-1].data.status == "cancelled"


def test_a_stopping_server_ends_an_assistants_run_stream(
    tmp_path: Path, model_server: ServerThread
) -> None:
    server = LiveServer(server_settings(tmp_path / "data", model_server))
    last = _stop_while_streaming(server, lambda client: _run_stream(client)[0]).events[-1]
    assert last.event == "thread.run.failed"
    assert last.data.last_error is not None and "shut down" in last.data.last_error.message
