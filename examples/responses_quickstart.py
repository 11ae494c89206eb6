"""The Responses API against a local Sandbox Engine: plot, cite, download, continue.

Start the service with a model behind it, for example:
    SANDBOX_API_KEYS=sk-local-example SANDBOX_LLM_BASE_URL=https://api.openai.com/v1 \\
    SANDBOX_LLM_API_KEY=sk-... sandbox-engine serve
then run ``python examples/responses_quickstart.py``. Variables, as in assistants_tutorial.py:
SANDBOX_URL (the service's root, without /v1; default http://127.0.0.1:8000), SANDBOX_KEY
(default sk-local-example), SANDBOX_MODEL (default gpt-4.1).
"""

from __future__ import annotations

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("SANDBOX_URL", "http://127.0.0.1:8000").rstrip("/") + "/v1",
    api_key=os.environ.get("SANDBOX_KEY", "sk-local-example"),
)
MODEL = os.environ.get("SANDBOX_MODEL", "gpt-4.1")
TOOLS = [{"type": "code_interpreter", "container": {"type": "auto"}}]

first = client.responses.create(
    model=MODEL,
    tools=TOOLS,  # type: ignore[arg-type]
    include=["code_interpreter_call.outputs"],
    input="Plot a sine wave, save it as /mnt/data/sine.png and link it.",
)
for item in first.output:
    if item.type == "code_interpreter_call":
        print("ran in", item.container_id, ":\n", item.code)
print(first.output_text)

message = first.output[-1]
if message.type == "message" and message.content[0].type == "output_text":
    for cite in message.content[0].annotations:
        if cite.type == "container_file_citation":
            data = client.containers.files.content.retrieve(
                cite.file_id, container_id=cite.container_id
            ).read()
            with open(cite.filename, "wb") as f:
                f.write(data)
            print("saved", cite.filename, len(data), "bytes")

# The same container and kernel: variables from the first turn are still there.
with client.responses.stream(
    model=MODEL,
    tools=TOOLS,  # type: ignore[arg-type]
    previous_response_id=first.id,
    input="Now the same plot in dark mode.",
) as stream:
    for event in stream:
        if event.type in (
            "response.code_interpreter_call_code.delta",
            "response.output_text.delta",
        ):
            print(getattr(event, "delta", ""), end="", flush=True)
print()
