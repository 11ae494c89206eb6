// The assistants view: threads, messages with attachments, and streamed runs (Assistants v2
// server-sent events) with their steps, tool-output form, cancel and usage.
import { get, post, del, stream, uploadFile } from "./api.js";
import { el } from "./render.js";
import { initAssistants, loadAssistants, ensureAssistant, toolTypes } from "./assistants.js";
import * as transcript from "./transcript.js";

const $ = (id) => document.getElementById(id);
const INCLUDE = "include[]=step_details.tool_calls[*].file_search.results[*].content";
let config = {};
let report = console.error;
let threads = [];
let threadId = null;
let shownLoad = 0;  // the latest history load: an older one that ends later draws nothing
let run = null;  // {id, threadId, waiting, view}: a message being sent, or its run

export function initChat(reportError, cfg) {
  report = reportError;
  config = cfg;
  initAssistants(reportError, cfg);
  transcript.initTranscript(reportError);
  if (!config.model_configured) {
    const help = $("model-help");
    help.hidden = false;
    help.replaceChildren(
      el("strong", { text: "No model is configured, so the assistants cannot answer. " }),
      "Start the server with an OpenAI-compatible Chat Completions endpoint and its key, e.g. ",
      el("code", { text: "SANDBOX_LLM_BASE_URL=https://api.openai.com/v1 SANDBOX_LLM_API_KEY=sk-... sandbox-engine serve" }),
      " (any /v1 endpoint works: OpenAI, Azure OpenAI, vLLM, Ollama). The sandbox console works without a model.");
    $("send").disabled = true;
  }
  $("chat-form").addEventListener("submit", (e) => { e.preventDefault(); send().catch(failRun); });
  $("message").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); if (!$("send").disabled) send().catch(failRun); }
  });
  $("attach").addEventListener("change", showAttached);
  $("cancel-run").addEventListener("click", () => cancel().catch(report));
  $("thread-new").addEventListener("click", () => pickThread("").catch(report));
  $("thread-delete").addEventListener("click", () => deleteThread().catch(report));
  $("thread-select").addEventListener("change", (e) => pickThread(e.target.value).catch(report));
  $("tool-form").addEventListener("submit", (e) => { e.preventDefault(); submitOutputs().catch(failRun); });
}

function failRun(error) {
  $("run-status").textContent = `Failed: ${error.message}`;
  endRun();
  report(error);
}

export async function loadChat() {
  const [, page] = await Promise.all([loadAssistants(), get("/v1/threads?limit=50&order=desc")]);
  threads = [...threads.filter((t) => !page.data.some((p) => p.id === t.id)), ...page.data];
  fillThreads();
  if (!threadId) await pickThread("");  // a visit starts a new conversation; earlier ones are listed
}

// --- threads ---

function threadLabel(t) {
  const when = new Date(t.created_at * 1000).toLocaleString();
  return `${(t.metadata && t.metadata.title) || t.id} · ${when}`;
}

function fillThreads() {
  $("thread-select").replaceChildren(...threads.map((t) => el("option", { value: t.id, text: threadLabel(t) })),
    el("option", { value: "", text: "New thread (on first message)" }));
  $("thread-select").value = threadId || "";
}

async function pickThread(id) {
  if (run && !run.waiting) { $("thread-select").value = threadId || ""; return; }
  if (run) { $("tool-form").hidden = true; endRun(); }  // a paused run waits; coming back resumes it
  threadId = id || null;
  $("thread-select").value = threadId || "";
  $("thread-delete").disabled = !threadId;
  transcript.clear();
  transcript.showUsage(null);
  $("run-status").textContent = "";
  if (threadId) await showHistory(threadId);
}

async function deleteThread() {
  const id = threadId;
  if (!id || run) return;
  await del(`/v1/threads/${id}`);
  threads = threads.filter((t) => t.id !== id);
  if (threadId !== id) return fillThreads();
  threadId = null;
  fillThreads();
  await pickThread(threads.length ? threads[0].id : "");
}

// A thread as it was (its last 100 messages and runs): messages in the order they were written,
// each run's steps and replies where its first reply was, a run with no reply before the next
// later message.
async function showHistory(id) {
  const load = ++shownLoad;
  const [messages, runs] = await Promise.all([
    get(`/v1/threads/${id}/messages?order=asc&limit=100`),
    get(`/v1/threads/${id}/runs?order=asc&limit=100`),
  ]);
  const steps = await Promise.all(runs.data.map((r) => get(`/v1/threads/${id}/runs/${r.id}/steps?order=asc&limit=100&${INCLUDE}`)));
  if (load !== shownLoad || threadId !== id) return;
  const byId = new Map(messages.data.map((m) => [m.id, m]));
  const pending = runs.data.map((r, i) => ({ run: r, steps: steps[i].data }));
  const showRunsBefore = (at) => {
    while (pending.length && pending[0].run.created_at < at) showRun(pending.shift(), byId);
  };
  for (const m of messages.data) {
    if (!m.run_id) { showRunsBefore(m.created_at); transcript.showMessage(m); continue; }
    const at = pending.findIndex((p) => p.run.id === m.run_id);
    if (at >= 0) { pending.splice(0, at).forEach((p) => showRun(p, byId)); showRun(pending.shift(), byId); }
  }
  pending.forEach((p) => showRun(p, byId));
  const last = runs.data[runs.data.length - 1];
  if (last) transcript.showUsage(last.usage);
  if (last) resume(last, load).catch(report);
}

// The thread's last run, if it has not ended: a paused one gets its form again; a running one
// (from another tab, or before a reload) is watched, and the thread redrawn once it ends.
async function resume(last, load) {
  if (last.status === "requires_action") {
    run = { id: last.id, threadId: last.thread_id, waiting: true, view: { messages: {}, steps: {} } };
    $("send").disabled = true;
    $("cancel-run").disabled = false;
    return showToolForm(last);
  }
  let current = last;
  while (["queued", "in_progress", "cancelling"].includes(current.status)) {
    $("run-status").textContent = `${current.status.replace("_", " ")} (started earlier; shown when it ends)`;
    await new Promise((resolve) => setTimeout(resolve, 1000));
    if (load !== shownLoad || run) return;
    current = await get(`/v1/threads/${last.thread_id}/runs/${last.id}`);
  }
  if (current !== last && load === shownLoad) {
    transcript.clear();
    await showHistory(last.thread_id);
    $("run-status").textContent = current.status;
  }
}

function showRun({ run: r, steps }, byId) {
  const shown = new Set();
  for (const step of steps) {
    if (step.type === "tool_calls") transcript.showStep(step);
    const made = step.step_details.message_creation;
    if (made && byId.has(made.message_id)) { transcript.showMessage(byId.get(made.message_id)); shown.add(made.message_id); }
  }
  for (const m of byId.values()) if (m.run_id === r.id && !shown.has(m.id)) transcript.showMessage(m);
}

// --- sending and following a run ---

function showAttached() {
  $("attach-list").replaceChildren(...[...$("attach").files].map((f) => el("li", { class: "chip", text: f.name })));
}

async function attachments() {
  const tools = toolTypes().filter((t) => t === "code_interpreter" || t === "file_search");
  const uses = (tools.length ? tools : ["code_interpreter"]).map((type) => ({ type }));
  const attached = [];
  for (const file of $("attach").files) attached.push({ file_id: await uploadFile(file), tools: uses });
  return attached;
}

async function send() {
  const text = $("message").value.trim();
  if (!text || run) return;
  if (!config.model_configured) { $("model-help").scrollIntoView(); return; }
  run = { threadId, view: { messages: {}, steps: {} } };  // the thread stays put from here
  $("send").disabled = true;
  let message;
  let assistantId;
  try {
    assistantId = await ensureAssistant();
    if (!run.threadId) {
      const thread = await post("/v1/threads", { metadata: { title: text.slice(0, 60) } });
      threads = [thread, ...threads];
      threadId = run.threadId = thread.id;
      fillThreads();
      $("thread-delete").disabled = false;
    }
    message = await post(`/v1/threads/${run.threadId}/messages`, { role: "user", content: text, attachments: await attachments() });
  } catch (error) {
    endRun();
    throw error;
  }
  $("message").value = "";
  $("attach").value = "";
  showAttached();
  transcript.showMessage(message);
  await follow(`/v1/threads/${run.threadId}/runs`, { assistant_id: assistantId, stream: true });
}

async function follow(path, body) {
  $("send").disabled = true;
  $("run-status").textContent = "Running…";
  for await (const { event, data } of stream(path, body)) {
    if (event === "done") break;
    handle(event, data, run.view);
  }
  if (!run || !run.waiting) endRun();
}

function endRun() {
  run = null;
  $("send").disabled = !config.model_configured;
  $("cancel-run").disabled = true;
}

function handle(event, data, view) {
  if (event.startsWith("thread.run.step.")) return step(event, data, view);
  if (event === "error") {
    $("run-status").textContent = `Failed: ${(data && data.message) || data}`;
  } else if (event.startsWith("thread.run.")) {
    run.id = data.id;
    run.waiting = false;
    $("cancel-run").disabled = false;
    $("run-status").textContent = data.status.replace("_", " ");
    if (data.usage) transcript.showUsage(data.usage);
    if (event === "thread.run.requires_action") { run.waiting = true; showToolForm(data); }
    if (event === "thread.run.failed" && data.last_error) $("run-status").textContent = `Failed: ${data.last_error.message}`;
  } else if (event === "thread.message.created") {
    view.messages[data.id] = { node: transcript.item(data.role), text: null };
  } else if (event === "thread.message.delta") {
    const m = view.messages[data.id] || (view.messages[data.id] = { node: transcript.item("assistant"), text: null });
    for (const part of data.delta.content || []) {
      if (part.type !== "text" || !part.text || !part.text.value) continue;
      if (!m.text) { m.text = el("div", { class: "text streaming" }); m.node.append(m.text); }
      m.text.append(part.text.value);
    }
  } else if (event === "thread.message.completed" || event === "thread.message.incomplete") {
    const m = view.messages[data.id] || (view.messages[data.id] = { node: transcript.item(data.role) });
    if (m.text) m.text.remove();
    m.text = null;
    transcript.fillMessage(m.node, data);
    transcript.announce(data);
  }
}

function step(event, data, view) {
  const delta = event === "thread.run.step.delta";
  if (!delta && data.type !== "tool_calls") return;
  const s = view.steps[data.id] || (view.steps[data.id] = { node: transcript.item("tool"), calls: {} });
  const details = delta ? data.delta.step_details : data.step_details;
  for (const [i, tool] of ((details && details.tool_calls) || []).entries()) {
    const index = tool.index ?? i;
    const c = s.calls[index] || (s.calls[index] = { node: el("div", { class: "step" }), input: "", args: "" });
    if (!c.node.isConnected) s.node.append(c.node);
    if (tool.type === "code_interpreter" || tool.code_interpreter) {
      const ci = tool.code_interpreter || {};
      c.input = delta ? c.input + (ci.input || "") : ci.input || c.input;
      transcript.drawCode(c.node, c.input, ci.outputs || [], !delta && data.status !== "in_progress");
    } else if (tool.type === "function" || tool.function) {
      const fn = tool.function || {};
      c.name = fn.name || c.name;
      c.args = delta ? c.args + (fn.arguments || "") : fn.arguments || c.args;
      transcript.drawFunction(c.node, c.name, c.args, fn.output);
    } else if (tool.type === "file_search") {
      transcript.drawSearch(c.node, tool.file_search);
    }
  }
}

function showToolForm(data) {
  const calls = data.required_action.submit_tool_outputs.tool_calls;
  $("tool-calls").replaceChildren(...calls.map((c, i) => el("div", {},
    el("p", { text: `${c.function.name}(${c.function.arguments})` }),
    el("label", { for: `tool-out-${i}`, text: `Output of ${c.function.name}` }),
    el("textarea", { id: `tool-out-${i}`, rows: "2", "data-call": c.id }))));
  $("tool-form").hidden = false;
  $("run-status").textContent = "Waiting for tool outputs";
  $("tool-out-0").focus();
}

async function submitOutputs() {
  const tool_outputs = [...$("tool-calls").querySelectorAll("textarea")].map((t) => ({ tool_call_id: t.dataset.call, output: t.value }));
  $("tool-form").hidden = true;
  $("message").focus();
  run.waiting = false;
  await follow(`/v1/threads/${run.threadId}/runs/${run.id}/submit_tool_outputs`, { tool_outputs, stream: true });
}

async function cancel() {
  if (!run || !run.id) return;
  const { id, threadId: tid } = run;
  await post(`/v1/threads/${tid}/runs/${id}/cancel`);
  if (!$("tool-form").hidden) { $("tool-form").hidden = true; $("message").focus(); }
  $("run-status").textContent = "Cancelling…";
  if (run && run.waiting) { endRun(); $("run-status").textContent = "cancelled"; }
}
