"""The Azure OpenAI Assistants "getting started" tutorial, against a self-hosted sandbox engine.

It follows the tutorial step by step: an assistant with the code interpreter plots a sine wave,
shows the code it ran, makes a dark-mode version, and the images are downloaded. The code runs in
the engine's sandbox; the model is whatever Chat Completions endpoint the service points at.

1. Start the service with a model endpoint (OpenAI, Azure OpenAI's v1 endpoint, vLLM, Ollama):

       export SANDBOX_API_KEYS=my-key
       export SANDBOX_LLM_BASE_URL=https://api.openai.com/v1
       export SANDBOX_LLM_API_KEY=sk-...
       sandbox-engine serve

2. Run this script against it:

       SANDBOX_URL=http://127.0.0.1:8000 SANDBOX_KEY=my-key SANDBOX_MODEL=gpt-4o \\
           python examples/assistants_tutorial.py

Variables: SANDBOX_URL (the service's root, without /v1; default http://127.0.0.1:8000),
SANDBOX_KEY (default sk-local-example; any value for a service without keys), SANDBOX_MODEL
(default gpt-4o; the name the model endpoint knows), OUTPUT_DIR
(where the images go; default the current folder), POLL_TIMEOUT (seconds a run may take; 600).
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from openai import OpenAI
from openai.types.beta.threads import Run

# The SDK marks the Assistants API as deprecated in favour of Responses; this example is about it.
warnings.filterwarnings(
    "ignore", message=r"deprecated$|The Assistants API is deprecated", category=DeprecationWarning
)

INSTRUCTIONS = (
    "You are a helpful AI assistant who makes interesting visualizations based on data."
    "You have access to a sandboxed environment for writing and testing code."
    "When you are asked to create a visualization you should follow these steps:"
    "1. Write the code."
    "2. Anytime you write new code display a preview of the code to show your work."
    "3. Run the code to confirm that it runs."
    "4. If the code is successful display the visualization."
    "5. If the code is unsuccessful display the error message and try to revise the code and "
    "rerun going through the steps from above again."
)
FINISHED = ("completed", "cancelled", "expired", "failed", "incomplete")


def wait(client: OpenAI, run: Run, timeout: float) -> Run:
    """Poll the run until it finishes, as the tutorial does."""
    start_time = time.time()
    while run.status not in FINISHED:
        if time.time() - start_time > timeout:
            client.beta.threads.runs.cancel(thread_id=run.thread_id, run_id=run.id)
            sys.exit(f"the run took longer than {timeout:g} s; cancelled")
        time.sleep(1)
        run = client.beta.threads.runs.retrieve(thread_id=run.thread_id, run_id=run.id)
        elapsed = int(time.time() - start_time)
        print(f"Status: {run.status} (elapsed {elapsed // 60} min {elapsed % 60} s)")
    if run.status != "completed":
        sys.exit(f"the run ended {run.status}: {run.last_error or run.incomplete_details}")
    return run


def ask(client: OpenAI, thread_id: str, assistant_id: str, question: str, timeout: float) -> Run:
    print(f"\n>>> {question}")
    client.beta.threads.messages.create(thread_id=thread_id, role="user", content=question)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    return wait(client, run, timeout)


def answer_of(client: OpenAI, thread_id: str, run: Run) -> list[dict[str, Any]]:
    """The content parts of the messages the run wrote, oldest first."""
    messages = client.beta.threads.messages.list(thread_id=thread_id, run_id=run.id, order="asc")
    data = json.loads(messages.model_dump_json())
    return [part for message in data["data"] for part in message["content"]]


def print_text(parts: list[dict[str, Any]]) -> None:
    for part in parts:
        if part["type"] == "text":
            print(part["text"]["value"])


def download_image(client: OpenAI, parts: list[dict[str, Any]], path: Path) -> None:
    image_ids = [p["image_file"]["file_id"] for p in parts if p["type"] == "image_file"]
    if not image_ids:
        sys.exit("the assistant answered without an image")
    client.files.content(image_ids[-1]).write_to_file(path)
    print(f"[image {image_ids[-1]} saved to {path}]")


def main() -> None:
    base_url = os.environ.get("SANDBOX_URL", "http://127.0.0.1:8000").rstrip("/")
    model = os.environ.get("SANDBOX_MODEL", "gpt-4o")
    output = Path(os.environ.get("OUTPUT_DIR", "."))
    timeout = float(os.environ.get("POLL_TIMEOUT", "600"))
    output.mkdir(parents=True, exist_ok=True)
    client = OpenAI(
        base_url=f"{base_url}/v1", api_key=os.environ.get("SANDBOX_KEY", "sk-local-example")
    )

    # Create an assistant
    assistant = client.beta.assistants.create(
        name="Data Visualization",
        instructions=INSTRUCTIONS,
        tools=[{"type": "code_interpreter"}],
        model=model,
    )
    print(assistant.model_dump_json(indent=2))

    # Create a thread
    thread = client.beta.threads.create()
    print(thread)

    # Plot a sine wave, then download the image
    run = ask(client, thread.id, assistant.id, "Create a visualization of a sinewave", timeout)
    parts = answer_of(client, thread.id, run)
    print_text(parts)
    download_image(client, parts, output / "sinewave.png")

    # A follow-up question in the same thread
    run = ask(
        client,
        thread.id,
        assistant.id,
        "Show me the code you used to generate the sinewave",
        timeout,
    )
    print_text(answer_of(client, thread.id, run))

    # Dark mode: the kernel still holds the earlier state, the thread the conversation
    run = ask(
        client,
        thread.id,
        assistant.id,
        "I prefer visualizations in darkmode can you change the colors to make a darkmode "
        "version of this visualization.",
        timeout,
    )
    parts = answer_of(client, thread.id, run)
    print_text(parts)
    download_image(client, parts, output / "dark_sine.png")

    # What the code interpreter ran, from the run steps
    steps = client.beta.threads.runs.steps.list(thread_id=thread.id, run_id=run.id, order="asc")
    for step in steps.data:
        if step.step_details.type == "tool_calls":
            for call in step.step_details.tool_calls:
                if call.type == "code_interpreter":
                    print(f"\n[code interpreter ran]\n{call.code_interpreter.input}")

    client.beta.threads.delete(thread.id)
    client.beta.assistants.delete(assistant.id)


if __name__ == "__main__":
    main()
