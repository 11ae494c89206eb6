// The assistants view: assistants, threads, streamed runs (Assistants v2 server-sent events).
import { get, post, del, call, stream, blobUrl, download } from "./api.js";
import { el, highlight, safeHref } from "./render.js";

const $ = (id) => document.getElementById(id);
const THREADS = "sandbox-engine-threads";
let config = {};
let report = console.error;
let assistants = [];
let assistantId = null;
let threadId = null;
let fileIds = [];
let run = null;  // {id, threadId, controller}

export function initChat(reportError, cfg) {
  report = reportError;
  config = cfg;
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
  $("cancel-run").addEventListener("click", () => cancel().catch(report));
  $("assistant-select").addEventListener("change", (e) => pickAssistant(e.target.value));
  $("assistant-new").addEventListener("click", () => pickAssistant(""));
  $("assistant-delete").addEventListener("click", () => deleteAssistant().catch(report));
  $("assistant-form").addEventListener("submit", (e) => { e.preventDefault(); saveAssistant().catch(formError); });
  $("a-files").addEventListener("change", () => uploadFiles().catch(formError));
  $("thread-new").addEventListener("click", () => newThread().catch(report));
  $("thread-select").addEventListener("change", (e) => pickThread(e.target.value).catch(report));
  $("tool-form").addEventListener("submit", (e) => { e.preventDefault(); submitOutputs().catch(failRun); });
}

function formError(error) { say(error.message, true); }
function say(text, bad = false) {
  $("assistant-error").textContent = text;
  $("assistant-error").className = bad ? "error" : "ok";
}
function failRun(error) {
  $("run-status").textContent = `Failed: ${error.message}`;
  endRun();
  report(error);
}

export async function loadChat() {
  const page = await get("/v1/assistants?limit=100&order=desc");
  assistants = page.data;
  fillAssistants();
  pickAssistant(assistants.length ? assistants[0].id : "");
}

function fillAssistants() {
  const select = $("assistant-select");
  select.replaceChildren(...assistants.map((a) => el("option", { value: a.id, text: `${a.name || "(unnamed)"} · ${a.model}` })));
  select.append(el("option", { value: "", text: assistants.length ? "New assistant…" : "Playground assistant (created on first message)" }));
}

function pickAssistant(id) {
  assistantId = id || null;
  $("assistant-select").value = id || "";
  const a = assistants.find((x) => x.id === id);
  $("a-name").value = a ? a.name || "" : "Playground assistant";
  $("a-instructions").value = a ? a.instructions || "" : "You are a helpful assistant. Use the code interpreter for calculations, data and charts.";
  $("a-model").value = a ? a.model : config.default_model || "";
  const tools = a ? a.tools : [{ type: "code_interpreter" }];
  $("a-code").checked = tools.some((t) => t.type === "code_interpreter");
  $("a-search").checked = tools.some((t) => t.type === "file_search");
  const fns = tools.filter((t) => t.type === "function").map((t) => t.function);
  $("a-functions").value = fns.length ? JSON.stringify(fns, null, 2) : "";
  fileIds = a && a.tool_resources && a.tool_resources.code_interpreter ? [...a.tool_resources.code_interpreter.file_ids] : [];
  showFiles();
  $("assistant-error").textContent = "";
  $("assistant-delete").disabled = !a;
  $("assistant-save").textContent = a ? "Save assistant" : "Create assistant";
  fillThreads();
}

function showFiles() {
  $("a-file-list").replaceChildren(...fileIds.map((id) => el("li", { class: "file" },
    el("span", { class: "name", text: id }),
    el("button", { type: "button", text: "Remove", "aria-label": `Remove ${id}`, onclick: () => { fileIds = fileIds.filter((x) => x !== id); showFiles(); } }))));
}

async function uploadFiles() {
  for (const file of $("a-files").files) {
    const form = new FormData();
    form.append("purpose", "assistants");
    form.append("file", file, file.name);
    const uploaded = await call("POST", "/v1/files", form);
    fileIds.push(uploaded.id);
  }
  $("a-files").value = "";
  showFiles();
  say("Files attached: save the assistant to keep them.");
}

function assistantBody() {
  const tools = [];
  if ($("a-code").checked) tools.push({ type: "code_interpreter" });
  if ($("a-search").checked) tools.push({ type: "file_search" });
  const text = $("a-functions").value.trim();
  if (text) {
    let fns;
    try { fns = JSON.parse(text); } catch (e) { throw new Error(`Function definitions are not JSON: ${e.message}`); }
    for (const fn of Array.isArray(fns) ? fns : [fns]) tools.push({ type: "function", function: fn });
  }
  const body = { name: $("a-name").value, instructions: $("a-instructions").value, model: $("a-model").value || config.default_model, tools };
  body.tool_resources = { code_interpreter: { file_ids: fileIds } };
  return body;
}

async function saveAssistant() {
  const body = assistantBody();
  const saved = assistantId ? await post(`/v1/assistants/${assistantId}`, body) : await post("/v1/assistants", body);
  assistants = [saved, ...assistants.filter((a) => a.id !== saved.id)];
  fillAssistants();
  pickAssistant(saved.id);
  say("Saved.");
  return saved;
}

async function deleteAssistant() {
  if (!assistantId) return;
  await del(`/v1/assistants/${assistantId}`);
  assistants = assistants.filter((a) => a.id !== assistantId);
  fillAssistants();
  pickAssistant(assistants.length ? assistants[0].id : "");
}

// Threads have no list in the API: the page remembers this tab's, per assistant.
function savedThreads() { try { return JSON.parse(sessionStorage.getItem(THREADS) || "{}"); } catch { return {}; } }
function fillThreads() {
  const ids = (savedThreads()[assistantId || ""] || []);
  $("thread-select").replaceChildren(...ids.map((id) => el("option", { value: id, text: id })),
    el("option", { value: "", text: "New thread (on first message)" }));
  pickThread(ids[0] || "").catch(report);
}

async function newThread() {
  const thread = await post("/v1/threads", {});
  const all = savedThreads();
  all[assistantId || ""] = [thread.id, ...(all[assistantId || ""] || [])];
  sessionStorage.setItem(THREADS, JSON.stringify(all));
  $("thread-select").prepend(el("option", { value: thread.id, text: thread.id }));
  await pickThread(thread.id);
  return thread;
}

async function pickThread(id) {
  threadId = id || null;
  $("thread-select").value = id || "";
  $("messages").replaceChildren();
  $("usage").textContent = "";
  if (!threadId) return;
  const page = await get(`/v1/threads/${threadId}/messages?order=asc&limit=100`);
  for (const m of page.data) showMessage(m);
}

// --- messages and runs ---

function messageItem(role) {
  const item = el("li", { class: `message ${role}` }, el("div", { class: "role", text: role }));
  $("messages").append(item);
  return item;
}

function showMessage(m) {
  const item = messageItem(m.role);
  fillMessage(item, m);
  return item;
}

function fillMessage(item, m) {
  item.querySelectorAll(".body").forEach((n) => n.remove());
  const body = el("div", { class: "body" });
  for (const part of m.content || []) {
    if (part.type === "text") body.append(...renderText(part.text));
    else if (part.type === "image_file") body.append(fileImage(part.image_file.file_id));
  }
  item.append(body);
}

function renderText(text) {
  const nodes = [el("div", { class: "text", text: text.value })];
  const files = [];
  const cites = [];
  for (const a of text.annotations || []) {
    if (a.type === "file_path") files.push(a);
    else if (a.type === "file_citation") cites.push(a);
  }
  if (files.length) {
    nodes.push(el("div", { class: "row files" }, ...files.map((a) => {
      const name = decodeURIComponent(a.text.split("/").pop() || a.file_path.file_id);
      return el("button", { type: "button", class: "download", text: `Download ${name}`, onclick: () => download(`/v1/files/${a.file_path.file_id}/content`, name).catch(report) });
    })));
  }
  if (cites.length) {
    nodes.push(el("ol", { class: "citations" }, ...cites.map((a) => el("li", { text: `${a.text} → ${a.file_citation.file_id}${a.file_citation.quote ? `: “${a.file_citation.quote}”` : ""}` }))));
  }
  const links = [...new Set((text.value.match(/https?:\/\/[^\s)\]]+/g) || []).map(safeHref).filter(Boolean))];
  if (links.length) nodes.push(el("div", { class: "row links" }, ...links.map((href) => el("a", { href, rel: "noopener noreferrer", target: "_blank", text: href }))));
  return nodes;
}

function fileImage(fileId) {
  const img = el("img", { class: "figure", alt: `image ${fileId}` });
  blobUrl(`/v1/files/${fileId}/content`).then((url) => { img.src = url; }).catch(report);
  return img;
}

async function ensureAssistant() {
  if (assistantId) return assistantId;
  const saved = await saveAssistant();
  return saved.id;
}

async function send() {
  const text = $("message").value.trim();
  if (!text || run) return;
  if (!config.model_configured) { $("model-help").scrollIntoView(); return; }
  $("send").disabled = true;
  try {
    await ensureAssistant();
    if (!threadId) await newThread();
    await post(`/v1/threads/${threadId}/messages`, { role: "user", content: text });
  } catch (error) {
    $("send").disabled = false;
    throw error;
  }
  $("message").value = "";
  showMessage({ role: "user", content: [{ type: "text", text: { value: text, annotations: [] } }] });
  await follow(`/v1/threads/${threadId}/runs`, { assistant_id: assistantId, stream: true });
}

async function follow(path, body) {
  run = run || { controller: new AbortController(), threadId };
  $("send").disabled = true;
  $("cancel-run").disabled = false;
  $("run-status").textContent = "Running…";
  const view = run.view || (run.view = { messages: {}, steps: {} });
  for await (const { event, data } of stream(path, body, run.controller.signal)) {
    if (event === "done") break;
    handle(event, data, view);
  }
  if (!run || !run.waiting) endRun();
}

function endRun() {
  run = null;
  $("send").disabled = !config.model_configured;
  $("cancel-run").disabled = true;
}

function handle(event, data, view) {
  if (event.startsWith("thread.run.") && !event.startsWith("thread.run.step")) {
    run.id = data.id;
    run.waiting = false;
    $("run-status").textContent = data.status.replace("_", " ");
    if (data.usage) $("usage").textContent = `Tokens: ${data.usage.prompt_tokens} in, ${data.usage.completion_tokens} out, ${data.usage.total_tokens} total`;
    if (event === "thread.run.requires_action") { run.waiting = true; showToolForm(data); }
    if (event === "thread.run.failed" && data.last_error) $("run-status").textContent = `Failed: ${data.last_error.message}`;
    return;
  }
  if (event === "thread.message.created") {
    view.messages[data.id] = { item: messageItem(data.role), text: null };
  } else if (event === "thread.message.delta") {
    const m = view.messages[data.id] || (view.messages[data.id] = { item: messageItem("assistant"), text: null });
    for (const part of data.delta.content || []) {
      if (part.type !== "text" || !part.text || !part.text.value) continue;
      if (!m.text) { m.text = el("div", { class: "text streaming" }); m.item.append(m.text); }
      m.text.append(part.text.value);
    }
  } else if (event === "thread.message.completed") {
    const m = view.messages[data.id] || (view.messages[data.id] = { item: messageItem(data.role) });
    if (m.text) m.text.remove();
    m.text = null;
    fillMessage(m.item, data);
  } else if (event === "thread.run.step.created" || event === "thread.run.step.delta" || event === "thread.run.step.completed") {
    if (event !== "thread.run.step.delta" && data.type !== "tool_calls") return;
    const s = view.steps[data.id] || (view.steps[data.id] = { item: messageItem("tool"), calls: {} });
    const details = event === "thread.run.step.delta" ? data.delta.step_details : data.step_details;
    for (const [i, call] of ((details && details.tool_calls) || []).entries()) {
      const index = call.index ?? i;
      const c = s.calls[index] || (s.calls[index] = { node: el("div", { class: "step" }), input: "", args: "" });
      if (!c.node.isConnected) s.item.append(c.node);
      if (call.type === "code_interpreter" || call.code_interpreter) {
        const ci = call.code_interpreter || {};
        if (event === "thread.run.step.delta") c.input += ci.input || "";
        else c.input = ci.input || c.input;
        renderCall(c, ci.outputs || [], event === "thread.run.step.completed");
      } else if (call.type === "function" || call.function) {
        const fn = call.function || {};
        c.name = fn.name || c.name;
        if (event === "thread.run.step.delta") c.args += fn.arguments || ""; else c.args = fn.arguments || c.args;
        c.node.replaceChildren(el("div", { class: "role", text: `function ${c.name || ""}` }), el("pre", { text: c.args }),
          fn.output ? el("pre", { class: "logs", text: `→ ${fn.output}` }) : null);
      } else if (call.type === "file_search") {
        c.node.replaceChildren(el("div", { class: "role", text: "file search" }));
      }
    }
  }
}

function renderCall(c, outputs, final) {
  c.node.replaceChildren(el("div", { class: "role", text: "code interpreter" }), highlight(c.input));
  for (const out of outputs) {
    if (out.type === "logs") c.node.append(el("pre", { class: `logs${/Traceback|Error/.test(out.logs) ? " traceback" : ""}`, text: out.logs }));
    else if (out.type === "image" && out.image) c.node.append(fileImage(out.image.file_id));
  }
  if (!final) c.node.classList.add("running"); else c.node.classList.remove("running");
}

function showToolForm(data) {
  const calls = data.required_action.submit_tool_outputs.tool_calls;
  run.toolCalls = calls;
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
  run.waiting = false;
  await follow(`/v1/threads/${run.threadId}/runs/${run.id}/submit_tool_outputs`, { tool_outputs, stream: true });
}

async function cancel() {
  if (!run || !run.id) return;
  const { id, threadId: tid } = run;
  $("tool-form").hidden = true;
  await post(`/v1/threads/${tid}/runs/${id}/cancel`);
  $("run-status").textContent = "Cancelling…";
  if (run && run.waiting) { endRun(); $("run-status").textContent = "cancelled"; }
}
