"""Assistants files for the code interpreter: through tool resources, message attachments and
thread resources, with the official openai SDK against a live server and the scripted model."""

from __future__ import annotations

import openai
import pytest

from ..support.assistants import CSV, ask, code_steps, last_answer, model_mark, model_requests_since
from ..support.clients import coder

# --- files for the code interpreter ---


def test_file_through_the_assistants_tool_resources(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("expenses.csv", CSV), purpose="assistants")
    assistant = client.beta.assistants.create(
        model="gpt-4o",
        instructions="Answer questions about the data.",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
    )
    assert assistant.tool_resources.code_interpreter.file_ids == [upload.id]
    mark = model_mark()
    thread_id, run = ask(client, assistant.id, "What is the sum of the amount column in the csv?")
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread_id) == "The total amount is 1600.0."
    (call,) = code_steps(client, thread_id, run.id)
    assert "read_csv" in call.code_interpreter.input
    assert call.code_interpreter.outputs[0].logs.strip() == "1600.0"
    system = model_requests_since(mark)[0]["messages"][0]
    assert system["role"] == "system" and "expenses.csv" in system["content"]


def test_file_through_a_message_attachment(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("sales.csv", b"amount\n1\n2\n3.5\n"), purpose="assistants")
    assistant_id = coder(client)
    thread = client.beta.threads.create()
    message = client.beta.threads.messages.create(
        thread_id=thread.id,
        role="user",
        content="Add up the amount column of the csv.",
        attachments=[{"file_id": upload.id, "tools": [{"type": "code_interpreter"}]}],
    )
    assert message.attachments[0].file_id == upload.id
    assert message.attachments[0].tools[0].type == "code_interpreter"
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread.id) == "The total amount is 6.5."
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create(
            thread_id=thread.id, role="user", content="x", attachments=[{"file_id": "file-nope"}]
        )


def test_file_through_the_threads_tool_resources(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("t.csv", b"amount\n10\n20\n"), purpose="assistants")
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Sum the amount column of the csv"}],
        tool_resources={"code_interpreter": {"file_ids": [upload.id]}},
    )
    assert thread.tool_resources.code_interpreter.file_ids == [upload.id]
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=coder(client))
    assert run.status == "completed", run.last_error
    assert last_answer(client, thread.id) == "The total amount is 30."


def test_code_changes_to_input_files_are_kept(client: openai.OpenAI) -> None:
    upload = client.files.create(file=("ledger.csv", CSV), purpose="assistants")
    assistant_id = coder(client, tool_resources={"code_interpreter": {"file_ids": [upload.id]}})
    thread_id, run = ask(client, assistant_id, "Please append a row to the file")
    assert run.status == "completed", run.last_error
    client.beta.threads.messages.create(
        thread_id=thread_id, role="user", content="Now sum the amount column of the csv"
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id)
    assert run.status == "completed", run.last_error
    # the input is placed once per session, not copied again over the code's change
    assert last_answer(client, thread_id) == "The total amount is 1700.0."
    assert client.files.content(upload.id).content == CSV
