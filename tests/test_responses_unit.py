"""Fast Responses tests without Docker: the streamed-code decoder, input items, items told to
the model, tools and tool choices, include values, and the event stream's numbering."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from engine import errors
from engine.assistants.code_stream import CodeDecoder
from engine.files import FileStore
from engine.responses.events import ResponseEvents
from engine.responses.items import parse_input, to_messages
from engine.responses.models import CodeInterpreterCall, CodeLogs, CreateResponse, Response
from engine.responses.tools import parse_tools
from engine.store import Store


@pytest.fixture
def files(tmp_path: Path) -> FileStore:
    return FileStore(Store(tmp_path / "db.sqlite"), tmp_path / "files", 1024 * 1024)


def decode(fragments: list[str]) -> list[str]:
    decoder = CodeDecoder()
    return [decoder.feed(f) for f in fragments]


def test_code_decoder_follows_json_fragments() -> None:
    code = 'print("héllo")\nfor i in range(3):\n\tx = "\\\\" + "😀"'
    arguments = json.dumps({"code": code})
    for size in (1, 2, 3, 7, 16, len(arguments)):
        pieces = [arguments[i : i + size] for i in range(0, len(arguments), size)]
        assert "".join(decode(pieces)) == code, size


def test_code_decoder_never_splits_an_escape() -> None:
    out = decode(['{"code": "a\\', "nb\\u00", 'e9c"}'])
    assert out == ["a", "\nb", "éc"]


def test_code_decoder_ignores_what_is_not_code() -> None:
    assert "".join(decode(['{"lang": "py", ', '"code": "x=1"', ', "more": "no"}'])) == "x=1"
    assert decode(["not json at all"]) == [""]


def test_parse_input_forms() -> None:
    items = parse_input(
        [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "d"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ]
    )
    assert [i.type for i in items] == ["message"] * 3 + ["function_call", "function_call_output"]
    assert parse_input("") == []
    with pytest.raises(errors.InvalidRequest, match=r"input\[0\]"):
        parse_input([{"type": "bogus"}])
    with pytest.raises(errors.InvalidRequest, match="item_reference"):
        parse_input([{"type": "item_reference", "id": "x"}])


def test_calls_become_one_assistant_turn(files: FileStore) -> None:
    items = [
        *parse_input("plot it"),
        *parse_input([{"role": "assistant", "content": "Let me run it."}]),
        CodeInterpreterCall(
            id="ci_1",
            code="1+1",
            container_id="s",
            outputs=[CodeLogs(logs="2")],
            status="completed",
        ),
        *parse_input(
            [
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "done"},
            ]
        ),
    ]
    messages = to_messages(items, files, "")
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    assert messages[1]["content"] == "Let me run it."
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["ci_1", "c1"]
    assert json.loads(messages[2]["content"])["logs"] == "2"
    assert messages[3] == {"role": "tool", "tool_call_id": "c1", "content": "done"}


def test_function_call_without_output_is_refused(files: FileStore) -> None:
    items = parse_input(
        [
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"role": "user", "content": "next"},
        ]
    )
    with pytest.raises(errors.InvalidRequest, match="No tool output found"):
        to_messages(items, files, "")
    orphan = parse_input([{"type": "function_call_output", "call_id": "zz", "output": "x"}])
    with pytest.raises(errors.InvalidRequest, match="No function call found"):
        to_messages(orphan, files, "")


FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object"}}
CODE = {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "4g"}}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "code_interpreter"}, {"type": "code_interpreter"}),
        ({"type": "function", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
        (
            {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "f"}],
            },
            "required",
        ),
    ],
)
def test_tool_choice_forms(choice: Any, expected: Any) -> None:
    tools = parse_tools([CODE, FUNCTION], choice)
    assert tools.choice == expected
    assert tools.code is not None or choice["type"] == "allowed_tools"


def test_tools_checked() -> None:
    tools = parse_tools([CODE, FUNCTION], "auto")
    assert tools.code is not None and tools.code.memory_limit_mb == 4096
    assert tools.functions[0]["function"]["name"] == "f"
    explicit = parse_tools([{"type": "code_interpreter", "container": "sess_1"}], "auto")
    assert explicit.code is not None and explicit.code.container_id == "sess_1"
    for bad in (
        [{"type": "code_interpreter"}],
        [{"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "3g"}}],
        [{"type": "function", "name": "python"}],
        [FUNCTION, FUNCTION],
        [{"type": "file_search", "vector_store_ids": []}],
        [{"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 99}],
        [{"type": "function", "name": "file_search"}],
        [{"type": "web_search"}],
        [{"type": "function", "name": "f", "surprise": 1}],
    ):
        with pytest.raises(errors.InvalidRequest):
            parse_tools(bad, "auto")
    with pytest.raises(errors.InvalidRequest, match="tool_choice"):
        parse_tools([FUNCTION], {"type": "function", "name": "g"})


def test_file_search_tool_is_parsed() -> None:
    spec = {"type": "file_search", "vector_store_ids": ["vs_1"], "max_num_results": 5}
    tools = parse_tools([spec], {"type": "file_search"})
    assert tools.file_search is not None and tools.file_search.max_num_results == 5
    assert tools.choice == {"type": "function", "function": {"name": "file_search"}}
    with pytest.raises(errors.InvalidRequest, match="only one file_search"):
        parse_tools([spec, spec], "auto")


def test_events_are_numbered_from_zero() -> None:
    async def go() -> list[int]:
        events = ResponseEvents()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        events.listen(queue)
        for _ in range(5):
            events.emit("response.output_text.delta", delta="x")
        return [queue.get_nowait()["sequence_number"] for _ in range(5)]

    assert asyncio.run(go()) == [0, 1, 2, 3, 4]


def test_outputs_hidden_unless_included() -> None:
    call = CodeInterpreterCall(container_id="s", outputs=[CodeLogs(logs="x")], status="completed")
    response = Response(model="m", output=[call])
    assert response.shown(set())["output"][0]["outputs"] is None
    assert response.shown({"code_interpreter_call.outputs"})["output"][0]["outputs"]
    assert "store" not in response.shown(set())


def test_request_body_defaults() -> None:
    body = CreateResponse.model_validate({"model": "m", "input": "hi", "reasoning": {}})
    assert body.store and not body.background and body.truncation == "disabled"
    assert (
        CreateResponse.model_validate(
            {"model": "m", "conversation": {"id": "conv_1"}}
        ).conversation_id
        == "conv_1"
    )
