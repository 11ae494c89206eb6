"""The Assistants layer's logic without Docker: tool checks, statuses, state, paging, context, loop.

The loop tests drive ``AgentLoop`` with a scripted model and a fake session: they test the loop's
own rules (rounds, tool choice, dispatch, stopping), not the engine, which the Docker tests in
``test_assistants.py`` cover end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from engine import errors
from engine.agent import tool_text
from engine.agent.loop import (
    AgentLoop,
    LoopHost,
    LoopRequest,
    LoopState,
    Outcome,
    TokenUsage,
    ToolHandler,
)
from engine.agent.provider import ModelProvider, ModelReply, ModelToolCall, OpenAIChatProvider
from engine.agent.tool_text import code_of, model_tool_choice
from engine.assistants import context
from engine.assistants.events import RunEvents, message_delta
from engine.assistants.models import (
    ACTIVE_RUN,
    TERMINAL_RUN,
    Annotation,
    ContentPart,
    FilePathRef,
    FunctionDef,
    Message,
    MessageRole,
    Run,
    RunStatus,
    TextValue,
    Tool,
    TruncationStrategy,
)
from engine.assistants.repository import Repository
from engine.assistants.state import RunState, ThreadState
from engine.assistants.tools import check_tool_choice, check_tools
from engine.config import Settings
from engine.paging import page_list
from engine.results import ErrorInfo, ExecutionResult, ExecutionStatus, OutputFile
from engine.store import Store

CODE = Tool(type="code_interpreter")


def function(name: str) -> Tool:
    return Tool(type="function", function=FunctionDef(name=name))


# --- tool validation ---


def test_file_search_is_one_tool_and_its_name_is_taken() -> None:
    check_tools([CODE, Tool(type="file_search")])
    with pytest.raises(errors.InvalidRequest, match="only one file_search"):
        check_tools([Tool(type="file_search"), Tool(type="file_search")])
    with pytest.raises(errors.InvalidRequest, match="file_search"):
        check_tools([Tool(type="file_search"), function("file_search")])


def test_function_names_are_unique_and_not_the_code_tool() -> None:
    check_tools([CODE, function("get_weather"), function("get_time")])
    with pytest.raises(errors.InvalidRequest, match="used twice"):
        check_tools([function("get_weather"), function("get_weather")])
    with pytest.raises(errors.InvalidRequest, match="code interpreter"):
        check_tools([CODE, function(tool_text.CODE_TOOL)])
    check_tools([function(tool_text.CODE_TOOL)])  # no clash without the code interpreter
    with pytest.raises(errors.InvalidRequest, match="'function' definition"):
        check_tools([Tool(type="function")])


@pytest.mark.parametrize(
    ("choice", "tools", "ok"),
    [
        ("auto", [], True),
        ("none", [CODE], True),
        ("required", [CODE], True),
        ("always", [CODE], False),
        ({"type": "code_interpreter"}, [CODE], True),
        ({"type": "code_interpreter"}, [function("f")], False),
        ({"type": "function", "function": {"name": "f"}}, [function("f")], True),
        ({"type": "function", "function": {"name": "g"}}, [function("f")], False),
        ({"type": "function", "name": "f"}, [function("f")], False),
        (["auto"], [CODE], False),
    ],
)
def test_tool_choice_forms(choice: Any, tools: list[Tool], ok: bool) -> None:
    if ok:
        assert check_tool_choice(choice, tools) == choice
    else:
        with pytest.raises(errors.InvalidRequest, match="invalid tool_choice"):
            check_tool_choice(choice, tools)


def test_a_forced_tool_applies_to_the_first_turn_only() -> None:
    forced_code = {"type": "function", "function": {"name": tool_text.CODE_TOOL}}
    assert model_tool_choice({"type": "code_interpreter"}, first_turn=True) == forced_code
    assert model_tool_choice({"type": "code_interpreter"}, first_turn=False) == "auto"
    named = {"type": "function", "function": {"name": "f"}}
    assert model_tool_choice(named, first_turn=True) == named
    assert model_tool_choice(named, first_turn=False) == "auto"
    assert model_tool_choice("required", first_turn=True) == "required"
    assert model_tool_choice("required", first_turn=False) == "auto"
    assert model_tool_choice("none", first_turn=False) == "none"


def test_code_of_a_call() -> None:
    assert code_of(json.dumps({"code": "print(1)"})) == "print(1)"
    assert code_of("print(2)") == "print(2)"  # a model that sent bare code
    assert code_of(json.dumps({"source": "x"})) == '{"source": "x"}'
    assert code_of(json.dumps({"code": 3})) == '{"code": 3}'
    assert code_of("[1, 2]") == "[1, 2]"


# --- statuses and state ---


def test_run_statuses_and_their_sets() -> None:
    assert {s.value for s in RunStatus} == {
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
        "cancelled",
        "failed",
        "completed",
        "incomplete",
        "expired",
    }
    assert {"queued", "in_progress", "requires_action", "cancelling"} == ACTIVE_RUN
    assert set(RunStatus) == ACTIVE_RUN | TERMINAL_RUN and not ACTIVE_RUN & TERMINAL_RUN
    assert "expired" in TERMINAL_RUN and f"thread.run.{RunStatus.EXPIRED}" == "thread.run.expired"
    run = Run(
        id="run_1",
        created_at=1,
        thread_id="thread_1",
        assistant_id="asst_1",
        status=RunStatus.REQUIRES_ACTION,
        model="m",
        instructions="",
    )
    assert json.loads(run.model_dump_json())["status"] == "requires_action"
    assert run.model_dump(mode="json")["status"] == "requires_action"
    assert Run.model_validate_json(run.model_dump_json()).status is RunStatus.REQUIRES_ACTION


def test_run_state_round_trips_and_reads_the_old_dict_shape() -> None:
    state = RunState(additional_instructions="be brief", images=["file_1"], rounds=2)
    state.conversation.append({"role": "tool", "tool_call_id": "call_1", "content": "{}"})
    assert RunState.model_validate_json(state.model_dump_json()) == state
    old: dict[str, object] = {
        "additional_instructions": None,
        "conversation": [],
        "images": [],
        "rounds": 0,
    }
    assert RunState.model_validate_json(json.dumps(old)) == RunState()
    assert isinstance(RunState(), LoopState)


def test_repository_upsert_ownership_and_private_state(tmp_path: Path, database_url: str) -> None:
    store = Store(tmp_path / "store.db", database_url)
    try:
        repo = Repository(store)
        message = Message(
            id="msg_1",
            created_at=1,
            thread_id="thread_1",
            role=MessageRole.USER,
            content=[ContentPart(type="text", text=TextValue(value="hi"))],
        )
        repo.put(message, "message", "alice", "thread_1")
        message.metadata = {"k": "v"}
        repo.put(message, "message", "bob", "elsewhere")  # an update keeps owner and parent
        got = repo.get(Message, "message", "msg_1", "alice", "thread_1")
        assert got.metadata == {"k": "v"} and got.role == "user"
        for kind, owner, parent in [
            ("message", "bob", None),
            ("run", "alice", None),
            ("message", "alice", "thread_2"),
        ]:
            with pytest.raises(errors.NotFound, match=r"No .* found with id 'msg_1'"):
                repo.get(Message, kind, "msg_1", owner, parent)
        with pytest.raises(errors.InvalidRequest):
            repo.get(Message, "message", 7, "alice")
        assert repo.get_private("msg_1", ThreadState) == ThreadState()
        repo.set_private("msg_1", ThreadState(session="sess_1", placed=["file_1"]))
        assert repo.get_private("msg_1", ThreadState).placed == ["file_1"]
        assert repo.get_private("nothing", RunState) == RunState()
    finally:
        store.close()


# --- paging ---


class Item:
    def __init__(self, id: str) -> None:
        self.id = id


def ids(page: Any) -> list[str]:
    return [i.id for i in page.data]


def test_page_list_cursor_rules() -> None:
    items = [Item(f"m{n}") for n in range(1, 6)]  # oldest first
    assert ids(page_list(items)) == ["m5", "m4", "m3", "m2", "m1"]
    page = page_list(items, limit=2, order="asc")
    assert ids(page) == ["m1", "m2"] and page.has_more and page.last_id == "m2"
    assert ids(page_list(items, limit=2, order="asc", after="m2")) == ["m3", "m4"]
    assert ids(page_list(items, limit=2, after="m4")) == ["m3", "m2"]
    # `before` alone gives the objects just before the cursor, still in order
    page = page_list(items, limit=2, order="asc", before="m5")
    assert ids(page) == ["m3", "m4"] and page.has_more
    assert ids(page_list(items, order="asc", after="m1", before="m4")) == ["m2", "m3"]
    last = page_list(items, limit=5, order="asc")
    assert not last.has_more and last.first_id == "m1"
    with pytest.raises(errors.InvalidRequest, match="after cursor 'nope'"):
        page_list(items, after="nope")
    with pytest.raises(errors.InvalidRequest, match="limit"):
        page_list(items, limit=0)
    with pytest.raises(errors.InvalidRequest, match="order"):
        page_list(items, order="up")


# --- what the model sees ---


def test_truncation_and_token_estimates() -> None:
    assert tool_text.estimate_tokens("") == 4
    assert tool_text.estimate_tokens("x" * 400) == 104
    history = [{"role": "user", "content": "x" * 400} for _ in range(5)]
    history[-1] = {"role": "user", "content": "newest"}
    last_two = context.truncate(
        history, TruncationStrategy(type="last_messages", last_messages=2), 10_000
    )
    assert last_two == history[-2:]
    assert context.truncate(history, TruncationStrategy(), budget=250) == history[-3:]
    # the newest message is kept even when it alone is over the budget
    assert context.truncate(history[:1], TruncationStrategy(), budget=1) == history[:1]


def test_tool_result_text_caps_and_reports_errors() -> None:
    result = ExecutionResult(
        status=ExecutionStatus.ERROR,
        stdout="a" * 3000,
        error=ErrorInfo(name="NameError", value="name 'prnt' is not defined", traceback=["tb"]),
        outputs=[
            OutputFile(
                type="image", file_id="f1", filename="i.png", mime_type="image/png", bytes=1
            ),
            OutputFile(
                type="file",
                file_id="f2",
                filename="o.csv",
                mime_type="text/csv",
                bytes=1,
                path="/mnt/data/o.csv",
            ),
        ],
        state_lost=True,
    )
    report = json.loads(tool_text.tool_result_text(result, limit=1000))
    assert report["status"] == "error"
    assert len(report["stdout"]) < 1100 and "2000 characters cut" in report["stdout"]
    assert report["error"] == {
        "name": "NameError",
        "value": "name 'prnt' is not defined",
        "traceback": "tb",
    }
    assert report["images"] == "1 image(s) shown to the user"
    assert report["files"] == ["sandbox:/mnt/data/o.csv"]
    assert "restarted" in report["note"]
    quiet = json.loads(tool_text.tool_result_text(ExecutionResult(status=ExecutionStatus.OK), 1000))
    assert quiet == {"status": "ok"}


def test_sandbox_links() -> None:
    text = 'See [it](sandbox:/mnt/data/out.csv) or "sandbox:/mnt/data/a b.png" and sandbox:/x.'
    found = [m.group(0) for m in tool_text.SANDBOX_LINK.finditer(text)]
    assert found == ["sandbox:/mnt/data/out.csv", "sandbox:/mnt/data/a"]


def test_events_and_message_deltas() -> None:
    import asyncio

    events = RunEvents()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = events.listen("run_1", queue)
    part = ContentPart(
        type="text",
        text=TextValue(
            value="at sandbox:/mnt/data/x",
            annotations=[
                Annotation(text="x", start_index=3, end_index=4, file_path=FilePathRef(file_id="f"))
            ],
        ),
    )
    events.emit("run_1", "thread.message.delta", message_delta("msg_1", 2, part))
    events.emit("run_2", "thread.run.created", {"other": True})
    name, data = queue.get_nowait()
    assert name == "thread.message.delta" and data["id"] == "msg_1"
    (content,) = data["delta"]["content"]
    assert content["index"] == 2 and content["text"]["annotations"][0]["index"] == 0
    assert queue.empty()
    stop()
    events.emit("run_1", "thread.run.completed", {})
    assert queue.empty()


# --- the loop ---


class ScriptedModel(ModelProvider):
    def __init__(self, *replies: ModelReply) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    async def complete(self, **request: Any) -> ModelReply:
        self.requests.append(request)
        return self.replies.pop(0)


class FakeSession:
    def __init__(self) -> None:
        self.ran: list[str] = []

    async def execute(self, code: str, timeout: float) -> ExecutionResult:
        self.ran.append(code)
        if "prnt" in code:
            error = ErrorInfo(name="NameError", value="prnt", traceback=["NameError: prnt"])
            return ExecutionResult(status=ExecutionStatus.ERROR, error=error)
        return ExecutionResult(status=ExecutionStatus.OK, stdout="45\n")


class RecordingHost(LoopHost):
    def __init__(self, state: LoopState) -> None:
        self.state = state
        self.fake = FakeSession()
        self.seen: list[str] = []
        self.cancel = False
        self.abandon_on_code = False
        self.gone = False

    async def session(self) -> Any:
        self.seen.append("session")
        return self.fake

    async def prompt(self, session: Any) -> list[dict[str, Any]] | None:
        return [{"role": "user", "content": "sum"}, *self.state.conversation]

    def cancelled(self) -> bool:
        return self.cancel

    def abandoned(self) -> bool:
        return self.gone

    async def on_model_turn(self, reply: ModelReply, usage: TokenUsage) -> None:
        self.seen.append(f"turn {usage.completion_tokens}")

    async def on_code_started(
        self, index: int, call: ModelToolCall, code: str, session: Any
    ) -> None:
        self.seen.append(f"start {index} {call.id}")
        self.gone = self.abandon_on_code

    async def on_code_finished(
        self, index: int, call: ModelToolCall, result: ExecutionResult | None, text: str
    ) -> None:
        self.seen.append(f"done {index} {json.loads(text)['status']}")

    async def on_code_calls_finished(self) -> None:
        self.seen.append("code calls done")

    async def on_round_finished(self) -> None:
        self.seen.append("round")


def code_call(call_id: str, code: str) -> ModelToolCall:
    return ModelToolCall(call_id, tool_text.CODE_TOOL, json.dumps({"code": code}))


def reply(*calls: ModelToolCall, content: str | None = None, **usage: Any) -> ModelReply:
    return ModelReply(content=content, tool_calls=list(calls), completion_tokens=10, **usage)


def make_loop(tmp_path: Path, model: ModelProvider, **settings: Any) -> AgentLoop:
    return AgentLoop(model, Settings(data_dir=tmp_path, **settings))


async def test_the_loop_feeds_errors_back_until_the_model_answers(tmp_path: Path) -> None:
    model = ScriptedModel(
        reply(code_call("c1", "prnt(45)")),
        reply(code_call("c2", "print(45)")),
        reply(content="The total is 45."),
    )
    state = LoopState()
    host = RecordingHost(state)
    request = LoopRequest(
        model="m", code_interpreter=True, tool_choice={"type": "code_interpreter"}
    )
    request.max_completion_tokens = 100
    result = await make_loop(tmp_path, model).run(host, request, state)
    assert result.outcome is Outcome.ANSWERED and result.reply is not None
    assert result.reply.content == "The total is 45." and result.session is host.fake
    assert host.fake.ran == ["prnt(45)", "print(45)"]
    assert [m["role"] for m in state.conversation] == ["assistant", "tool", "assistant", "tool"]
    error = json.loads(state.conversation[1]["content"])
    assert error["error"]["name"] == "NameError" and state.rounds == 2
    assert host.seen == [
        "session",
        "turn 10",
        "start 0 c1",
        "done 0 error",
        "code calls done",
        "round",
        "session",
        "turn 20",
        "start 0 c2",
        "done 0 ok",
        "code calls done",
        "round",
        "session",
        "turn 30",
    ]
    choices = [r["tool_choice"] for r in model.requests]
    assert choices[0] == {"type": "function", "function": {"name": tool_text.CODE_TOOL}}
    assert choices[1:] == ["auto", "auto"]
    assert [r["max_tokens"] for r in model.requests] == [100, 90, 80]
    assert model.requests[0]["tools"] == [tool_text.CODE_TOOL_SPEC]


async def test_the_rounds_limit(tmp_path: Path) -> None:
    model = ScriptedModel(*[reply(code_call(f"c{n}", "1")) for n in range(3)])
    state = LoopState()
    host = RecordingHost(state)
    loop = make_loop(tmp_path, model, llm_max_tool_rounds=2)
    result = await loop.run(host, LoopRequest(model="m", code_interpreter=True), state)
    assert result.outcome is Outcome.TOO_MANY_ROUNDS
    assert "more than 2 rounds" in result.detail and "SANDBOX_LLM_MAX_TOOL_ROUNDS" in result.detail
    assert len(host.fake.ran) == 2 and len(model.requests) == 3


async def test_function_calls_pause_and_unknown_tools_are_answered(tmp_path: Path) -> None:
    weather = {"type": "function", "function": {"name": "get_weather"}}
    calls = [ModelToolCall("f1", "get_weather", "{}"), ModelToolCall("u1", "nope", "{}")]
    model = ScriptedModel(reply(*calls))
    state = LoopState()
    host = RecordingHost(state)
    request = LoopRequest(model="m", functions=[weather], tool_choice="required")
    result = await make_loop(tmp_path, model).run(host, request, state)
    assert result.outcome is Outcome.FUNCTION_CALLS
    assert [c.id for c in result.function_calls] == ["f1"]
    assert state.conversation[1] == {
        "role": "tool",
        "tool_call_id": "u1",
        "content": "error: there is no tool named 'nope'",
    }
    assert "session" not in host.seen and host.fake.ran == []  # no code interpreter: no sandbox
    assert model.requests[0]["tools"] == [weather]
    assert model.requests[0]["tool_choice"] == "required"


async def test_an_engine_run_tool_answers_through_its_handler(tmp_path: Path) -> None:
    class Search(ToolHandler):
        spec: ClassVar[dict[str, Any]] = {"type": "function", "function": {"name": "file_search"}}

        async def call(self, arguments: str) -> str:
            return f"found {json.loads(arguments)['query']}"

    model = ScriptedModel(
        reply(ModelToolCall("s1", "file_search", '{"query": "q"}')), reply(content="done")
    )
    state = LoopState()
    request = LoopRequest(model="m", handlers={"file_search": Search()})
    result = await make_loop(tmp_path, model).run(RecordingHost(state), request, state)
    assert result.outcome is Outcome.ANSWERED
    assert state.conversation[-1]["content"] == "found q"
    assert model.requests[0]["tools"] == [Search.spec]


async def test_the_loop_stops_when_asked(tmp_path: Path) -> None:
    state = LoopState()
    host = RecordingHost(state)
    host.cancel = True
    model = ScriptedModel()
    result = await make_loop(tmp_path, model).run(host, LoopRequest(model="m"), state)
    assert result.outcome is Outcome.CANCELLED and model.requests == []

    host = RecordingHost(state)
    host.abandon_on_code = True  # the run expires while its code runs
    model = ScriptedModel(reply(code_call("c1", "1"), code_call("c2", "2")))
    request = LoopRequest(model="m", code_interpreter=True)
    result = await make_loop(tmp_path, model).run(host, request, state)
    assert result.outcome is Outcome.ABANDONED
    assert host.fake.ran == ["1"] and not any(s.startswith("done") for s in host.seen)
    assert "round" not in host.seen


async def test_prompt_and_completion_limits(tmp_path: Path) -> None:
    class TooLong(RecordingHost):
        async def prompt(self, session: Any) -> list[dict[str, Any]] | None:
            return None

    state = LoopState()
    model = ScriptedModel()
    result = await make_loop(tmp_path, model).run(TooLong(state), LoopRequest(model="m"), state)
    assert result.outcome is Outcome.MAX_PROMPT_TOKENS and model.requests == []

    model = ScriptedModel(reply(content="cut", finish_reason="length"))
    request = LoopRequest(model="m", max_completion_tokens=5, usage=TokenUsage(0, 20))
    result = await make_loop(tmp_path, model).run(RecordingHost(state), request, state)
    assert result.outcome is Outcome.MAX_COMPLETION_TOKENS
    assert model.requests[0]["max_tokens"] == 1  # never below one
    model = ScriptedModel(reply(content="long", finish_reason="length"))
    result = await make_loop(tmp_path, model).run(RecordingHost(state), LoopRequest("m"), state)
    assert result.outcome is Outcome.ANSWERED  # no cap was asked for


async def test_no_model_configured_sends_nothing(tmp_path: Path) -> None:
    provider = OpenAIChatProvider(base_url=None, api_key=None)
    assert provider.unavailable is not None
    assert "SANDBOX_LLM_BASE_URL and SANDBOX_LLM_API_KEY are not set" in provider.unavailable
    keyed = OpenAIChatProvider(base_url=None, api_key="k").unavailable
    assert keyed is not None and keyed.endswith("SANDBOX_LLM_BASE_URL is not set")
    assert OpenAIChatProvider(base_url="http://127.0.0.1:9/v1", api_key=None).unavailable is None
    state = LoopState()
    host = RecordingHost(state)
    request = LoopRequest(model="m", code_interpreter=True)
    with pytest.raises(errors.ModelError, match="no model is configured"):
        await make_loop(tmp_path, provider).run(host, request, state)
    assert host.seen == []  # not even a sandbox was asked for
    with pytest.raises(errors.ModelError, match="SANDBOX_LLM_BASE_URL"):
        await provider.complete(
            model="m",
            messages=[],
            tools=[],
            tool_choice="auto",
            temperature=None,
            top_p=None,
            max_tokens=None,
            parallel_tool_calls=True,
        )
