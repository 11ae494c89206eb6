"""The seed tutorials of the Assistants API (code interpreter, the Azure client, the example
script) with the official openai SDK against a live server and the scripted model
(tests/support/model_server.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openai

from ..support.assistants import visualizer
from ..support.clients import KEY_A, sdk
from ..support.servers import LiveServer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROOT = Path(__file__).resolve().parents[2]


# --- the seed tutorials ---


def test_code_interpreter_tutorial(client: openai.OpenAI) -> None:
    assistant_id = visualizer(client)
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    data = json.loads(messages.model_dump_json())
    answer = data["data"][0]
    assert answer["role"] == "assistant" and answer["run_id"] == run.id
    image_file_id = answer["content"][0]["image_file"]["file_id"]
    assert client.files.content(image_file_id).content.startswith(PNG_MAGIC)
    text = answer["content"][-1]["text"]
    (annotation,) = text["annotations"]
    assert annotation["type"] == "file_path"
    assert annotation["text"] == "sandbox:/mnt/data/sine.png"
    assert text["value"][annotation["start_index"] : annotation["end_index"]] == annotation["text"]
    sine = client.files.content(annotation["file_path"]["file_id"]).content
    assert sine.startswith(PNG_MAGIC)
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id)
    kinds = [s.type for s in reversed(steps.data)]
    # "Let me plot it." came with the code call: a message of its own, as OpenAI's runs make it
    assert kinds == ["message_creation", "tool_calls", "message_creation"]
    call = steps.data[1].step_details.tool_calls[0]
    assert call.type == "code_interpreter" and "np.sin" in call.code_interpreter.input
    assert any(o.type == "image" for o in call.code_interpreter.outputs)

    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="Show me the code you used to generate the sinewave",
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    latest = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert "np.sin" in latest.content[0].text.value

    client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="I prefer visualizations in dark mode, can you "
        "change the colors to make a dark mode version?",
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed"
    latest = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    dark_id = latest.content[0].image_file.file_id
    assert client.files.content(dark_id).content.startswith(PNG_MAGIC)
    (link,) = latest.content[-1].text.annotations  # the sentence's full stop is not in the link
    assert link.text == "sandbox:/mnt/data/sine_dark.png"
    assert client.files.retrieve(link.file_path.file_id).filename == "sine_dark.png"
    assert len(client.beta.threads.messages.list(thread_id=thread.id).data) == 7


def test_tutorial_with_the_azure_client(live_server: LiveServer) -> None:
    """``AzureOpenAI(azure_endpoint=...)`` calls /openai/...?api-version=: the same routes."""
    client = openai.AzureOpenAI(
        api_key=KEY_A,
        api_version="2024-05-01-preview",
        azure_endpoint=live_server.url,
        max_retries=0,
        timeout=120,
    )
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        model="my-gpt-4o-deployment",
        instructions="You are a helpful AI assistant who makes interesting visualizations.",
        tools=[{"type": "code_interpreter"}],
    )
    assert client.beta.assistants.retrieve(assistant.id).name == "Data Visualization"
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user", content="Create a visualization of a sinewave"
    )
    run = client.beta.threads.runs.create(thread_id=thread.id, assistant_id=assistant.id)
    while run.status not in ("completed", "cancelled", "expired", "failed"):
        time.sleep(0.2)
        run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
    assert run.status == "completed", run.last_error
    assert run.model == "my-gpt-4o-deployment"
    messages = client.beta.threads.messages.list(thread_id=thread.id)
    data = json.loads(messages.model_dump_json(indent=2))
    image_file_id = data["data"][0]["content"][0]["image_file"]["file_id"]
    assert client.files.content(image_file_id).read().startswith(PNG_MAGIC)
    assert sdk(live_server).beta.threads.retrieve(thread.id).id == thread.id


def test_example_script_imports_cleanly() -> None:
    spec = importlib.util.spec_from_file_location(
        "assistants_tutorial", ROOT / "examples" / "assistants_tutorial.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # nothing runs on import
    assert callable(module.main)


def test_example_script_runs_against_the_scripted_model(
    live_server: LiveServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SANDBOX_URL": live_server.url,
        "SANDBOX_KEY": KEY_A,
        "SANDBOX_MODEL": "gpt-4o",
        "OUTPUT_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "assistants_tutorial.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert "DeprecationWarning" not in done.stderr
    assert (tmp_path / "sinewave.png").read_bytes().startswith(PNG_MAGIC)
    assert (tmp_path / "dark_sine.png").read_bytes().startswith(PNG_MAGIC)
    assert "np.sin" in done.stdout
