"""Fast Responses tests without Docker: the streamed-code decoder, input items, items told to
the model, tools and tool choices, include values, and the event stream's numbering."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, get_args

import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseError as SDKResponseError
from openai.types.responses.response_create_params import ResponseCreateParamsBase
from pydantic import ValidationError

from engine import errors
from engine.agent.code_stream import CodeDecoder
from engine.files import FileStore
from engine.responses import repository
from engine.responses.events import Event, ResponseEvents
from engine.responses.items import message_tokens, parse_input, to_messages, truncate
from engine.responses.models import (
    CodeInterpreterCall,
    CodeLogs,
    CreateResponse,
    ErrorCode,
    InputText,
    MessageItem,
    Response,
    ResponseError,
    UnknownParameter,
    Usage,
)
from engine.responses.tools import parse_tools
from engine.store import Store


@pytest.fixture
def files(tmp_path: Path, database_url: str) -> FileStore:
    return FileStore(Store(tmp_path / "db.sqlite", database_url), tmp_path / "files", 1024 * 1024)


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
        queue: asyncio.Queue[Event] = asyncio.Queue()
        events.listen(queue)
        for _ in range(5):
            events.emit("response.output_text.delta", delta="x")
        return [queue.get_nowait().data["sequence_number"] for _ in range(5)]

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


def test_a_long_string_input_is_one_item_not_many() -> None:
    body = CreateResponse.model_validate({"model": "m", "input": "x" * 100_000})
    assert isinstance(body.input, str) and len(body.input) == 100_000
    with pytest.raises(ValidationError, match="at most 2048 items"):
        CreateResponse.model_validate({"model": "m", "input": [{"role": "user"}] * 2049})


def test_auto_truncation_keeps_the_end_of_an_overlong_message() -> None:
    text = "filler " * 10_000 + "the question?"
    history = [{"role": "user", "content": "old turn"}, {"role": "user", "content": text}]
    kept = truncate(history, 1000)
    assert len(kept) == 1 and kept[0]["role"] == "user"
    assert kept[0]["content"].endswith("the question?") and len(kept[0]["content"]) > 3000
    assert sum(message_tokens(m) for m in kept) <= 1000
    small = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    assert truncate(small, 1000) == small  # what fits is kept whole


def test_error_codes_and_usage_are_the_sdks() -> None:
    sdk_codes = set(get_args(SDKResponseError.model_fields["code"].annotation))
    assert set(get_args(ErrorCode)) <= sdk_codes
    with pytest.raises(ValidationError):
        ResponseError(code="context_length_exceeded", message="x")  # type: ignore[arg-type]
    response = Response(model="m", error=ResponseError(code="invalid_prompt", message="too long"))
    response.usage = Usage(input_tokens=3, output_tokens=2, total_tokens=5)
    parsed = SDKResponse.model_validate(response.shown(set()))
    assert parsed.usage is not None and parsed.usage.input_tokens_details.cache_write_tokens == 0
    assert parsed.error is not None and parsed.error.code == "invalid_prompt"


def test_history_is_the_newest_items_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    monkeypatch.setattr(repository, "MAX_LISTED_ITEMS", 3)
    repo = repository.Repository(Store(tmp_path / "db.sqlite", database_url))
    items = [MessageItem(role="user", content=[InputText(text=str(n))]) for n in range(5)]
    repo.add_items("conv_1", "tenant", list(items))
    assert [i.id for i in repo.items("conv_1", "tenant")] == [i.id for i in items[2:]]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"frobnicate": 1}, "frobnicate"),
        ({"text": {"verbosity": "low", "colour": 1}}, "text.colour"),
        ({"text": {"format": {"type": "text", "shape": 1}}}, "text.format.shape"),
        ({"reasoning": {"depth": 1}}, "reasoning.depth"),
    ],
)
def test_unknown_fields_are_named(extra: dict[str, Any], named: str) -> None:
    body = CreateResponse.model_validate({"model": "m", "input": "hi", **extra})
    with pytest.raises(UnknownParameter) as caught:
        body.check_fields()
    assert caught.value.param == named and named in str(caught.value)


def test_every_sdk_create_field_has_a_decision() -> None:
    """A field added to the SDK's ResponseCreateParams must be decided here too (and in
    docs/responses.md): this fails until it is."""
    sdk_fields = set(ResponseCreateParamsBase.__annotations__) | {"stream"}
    ours = set(CreateResponse.model_fields)
    assert sdk_fields - ours == set()
    body = CreateResponse.model_validate(
        {
            "model": "m",
            "text": {"format": {"type": "json_schema", "name": "w", "schema": {}}},
            "reasoning": {"effort": "high", "summary": "auto"},
            "service_tier": "flex",
            "top_logprobs": 3,
        }
    )
    body.check_fields()
    assert body.model_options() == {
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {}}},
        "reasoning_effort": "high",
        "service_tier": "flex",
    }
