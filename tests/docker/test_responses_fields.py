"""Every field of ``responses.create`` is honoured, passed on to the model, or accepted and
ignored as docs/responses.md says; an unknown field is refused, naming it.

Structured output end to end: ``text.format`` reaches the scripted model as Chat Completions
``response_format``; the model answers JSON only when it received one
(tests/support/model_server.py, "as JSON"), so a format dropped on the way shows up as free text
the client cannot parse.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import agents
import openai
import pytest
from openai.types.responses import ResponseFormatTextJSONSchemaConfig
from openai.types.shared import ResponseFormatJSONObject, ResponseFormatText
from pydantic import BaseModel

from ..support.servers import LiveServer, ServerThread

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "temperature": {"type": "integer"},
        "sunny": {"type": "boolean"},
    },
    "required": ["city", "temperature", "sunny"],
    "additionalProperties": False,
}


class Weather(BaseModel):
    city: str
    temperature: int
    sunny: bool


def last_request(model_server: ServerThread) -> dict[str, Any]:
    requests: list[dict[str, Any]] = model_server.app.state.requests
    return requests[-1]


def test_json_schema_reaches_the_model_and_is_echoed(
    client: openai.OpenAI, model_server: ServerThread
) -> None:
    fmt: Any = {"type": "json_schema", "name": "weather", "schema": WEATHER_SCHEMA, "strict": True}
    r = client.responses.create(
        model="m", input="The weather in Paris as JSON", text={"format": fmt}
    )
    assert r.status == "completed", r.error
    sent = last_request(model_server)["response_format"]
    assert sent == {
        "type": "json_schema",
        "json_schema": {"name": "weather", "schema": WEATHER_SCHEMA, "strict": True},
    }
    assert json.loads(r.output_text) == {"city": "Paris", "temperature": 21, "sunny": True}
    assert r.text is not None
    echoed = r.text.format
    assert isinstance(echoed, ResponseFormatTextJSONSchemaConfig)
    assert echoed.name == "weather" and echoed.schema_ == WEATHER_SCHEMA and echoed.strict
    assert client.responses.retrieve(r.id).text == r.text  # stored as echoed


def test_responses_parse_gives_an_object(client: openai.OpenAI) -> None:
    parsed = client.responses.parse(
        model="m", input="The weather in Paris as JSON", text_format=Weather
    )
    assert parsed.output_parsed == Weather(city="Paris", temperature=21, sunny=True)


def test_json_object_and_reasoning_reach_the_model(
    client: openai.OpenAI, model_server: ServerThread
) -> None:
    r = client.responses.create(
        model="m",
        input="The weather as JSON",
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        reasoning={"effort": "low", "summary": "auto"},
        safety_identifier="user-123",
        prompt_cache_key="weather",
        top_logprobs=2,
        stream_options={"include_obfuscation": False},
    )
    sent = last_request(model_server)
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["reasoning_effort"] == "low" and sent["verbosity"] == "low"
    assert sent["safety_identifier"] == "user-123" and sent["prompt_cache_key"] == "weather"
    assert "top_logprobs" not in sent and "stream_options" not in sent  # accepted, ignored
    assert json.loads(r.output_text)["city"] == "Paris"
    assert r.text is not None and isinstance(r.text.format, ResponseFormatJSONObject)
    assert r.text.verbosity == "low"
    assert r.reasoning is not None and r.reasoning.effort == "low"
    assert r.safety_identifier == "user-123" and r.top_logprobs == 2


def test_plain_text_sends_no_format(client: openai.OpenAI, model_server: ServerThread) -> None:
    r = client.responses.create(model="m", input="The weather as JSON")
    assert "response_format" not in last_request(model_server)
    assert r.output_text == "It is sunny in Paris, 21 degrees."
    assert r.text is not None and isinstance(r.text.format, ResponseFormatText)


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"frobnicate": 1}, "frobnicate"),
        ({"text": {"format": {"type": "text"}, "colour": "red"}}, "text.colour"),
        ({"reasoning": {"effort": "low", "depth": 3}}, "reasoning.depth"),
    ],
)
def test_an_unknown_field_is_refused_naming_it(
    client: openai.OpenAI, extra: dict[str, Any], named: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input="hello", extra_body=extra)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "unknown_parameter" and body["param"] == named
    assert named in body["message"]


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"moderation": {"model": "omni-moderation-latest"}}, "moderation"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "needs a name and a schema"),
    ],
)
def test_fields_that_cannot_be_honoured_are_refused(
    client: openai.OpenAI, extra: dict[str, Any], says: str
) -> None:
    with pytest.raises(openai.BadRequestError, match=says):
        client.responses.create(model="m", input="hello", extra_body=extra)


def test_agents_sdk_output_type_gets_a_parsed_object(
    live_server: LiveServer, model_server: ServerThread
) -> None:
    agent = agents.Agent(name="forecaster", model="gpt-4.1", output_type=Weather)

    async def go() -> Any:
        client = openai.AsyncOpenAI(base_url=f"{live_server.url}/v1", api_key=LiveServer.keys[0])
        agents.set_default_openai_client(client, use_for_tracing=False)
        agents.set_default_openai_api("responses")
        agents.set_tracing_disabled(True)
        try:
            return await agents.Runner.run(agent, "The weather in Paris as JSON")
        finally:
            await client.close()

    result = asyncio.run(go())
    assert result.final_output == Weather(city="Paris", temperature=21, sunny=True)
    sent = last_request(model_server)["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert set(sent["json_schema"]["schema"]["properties"]) == {"city", "temperature", "sunny"}


def test_a_long_string_input_is_accepted(client: openai.OpenAI, model_server: ServerThread) -> None:
    prompt = "Please read this. " + "x" * 5000
    r = client.responses.create(model="m", input=prompt)
    assert r.status == "completed", r.error
    user = [m for m in last_request(model_server)["messages"] if m["role"] == "user"]
    assert user[-1]["content"] == prompt


def test_an_over_budget_input_is_refused_or_trimmed(
    live_server: LiveServer, client: openai.OpenAI, model_server: ServerThread
) -> None:
    budget = live_server.settings.llm_context_tokens
    prompt = "filler " * (budget * 4 // 7 + 1000) + "the end marker"
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="m", input=prompt)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["code"] == "context_length_exceeded" and body["param"] == "input"
    assert "truncation" in body["message"]
    r = client.responses.create(model="m", input=prompt, truncation="auto")
    assert r.status == "completed", r.error
    assert r.truncation == "auto"
    sent = [m for m in last_request(model_server)["messages"] if m["role"] == "user"][-1]
    assert sent["content"].endswith("the end marker")
    assert budget * 2 < len(sent["content"]) < budget * 4  # trimmed to the budget, not emptied
