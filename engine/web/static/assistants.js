// The assistant panel: pick, create, edit and delete assistants; their code-interpreter files
// and the vector stores that file_search reads.
import { get, post, del, uploadFile } from "./api.js";
import { el } from "./render.js";

const $ = (id) => document.getElementById(id);
const INDEX_WAIT_MS = 300000;
let config = {};
let report = console.error;
let assistants = [];
let assistantId = null;
let fileIds = [];
let stores = [];
let storeIds = [];
let touched = false;  // the visitor picked before the list arrived: keep their form

export function initAssistants(reportError, cfg) {
  report = reportError;
  config = cfg;
  $("assistant-select").addEventListener("change", (e) => { touched = true; pick(e.target.value); });
  $("assistant-new").addEventListener("click", () => { touched = true; pick(""); });
  $("assistant-delete").addEventListener("click", () => remove().catch(report));
  $("assistant-form").addEventListener("submit", (e) => { e.preventDefault(); save().catch(formError); });
  $("a-files").addEventListener("change", () => uploadFiles().catch(formError));
  $("a-search-files").addEventListener("change", () => newStore().catch(storeError));
}

function formError(error) { say(error.message, true); }
function storeError(error) { $("a-search-files").disabled = false; $("a-store-status").textContent = error.message; $("a-store-status").className = "error"; }
function say(text, bad = false) {
  $("assistant-error").textContent = text;
  $("assistant-error").className = bad ? "error" : "ok";
}

export async function loadAssistants() {
  const [page, storePage, models] = await Promise.all([
    get("/v1/assistants?limit=100&order=desc"),
    get("/v1/vector_stores?limit=100&order=desc"),
    get("/v1/playground/models"),
  ]);
  $("a-models").replaceChildren(...models.data.map((m) => el("option", { value: m.id })));
  assistants = page.data;
  stores = storePage.data;
  fill();
  if (touched) $("assistant-select").value = assistantId || "";
  else pick(assistants.length ? assistants[0].id : "");
  showStores();
}

export const current = () => assistants.find((a) => a.id === assistantId) || null;

// The tools the current assistant has, or will have once the form is saved.
export function toolTypes() {
  const a = current();
  if (a) return a.tools.map((t) => t.type);
  return [$("a-code").checked && "code_interpreter", $("a-search").checked && "file_search"].filter(Boolean);
}

// The assistant to run: the one picked, or the form saved as a new one (a first visitor's).
export async function ensureAssistant() {
  return assistantId || (await save()).id;
}

function fill() {
  const select = $("assistant-select");
  select.replaceChildren(...assistants.map((a) => el("option", { value: a.id, text: `${a.name || "(unnamed)"} · ${a.model}` })));
  select.append(el("option", { value: "", text: assistants.length ? "New assistant…" : "Playground assistant (created on first message)" }));
}

function pick(id) {
  assistantId = id || null;
  $("assistant-select").value = id || "";
  const a = current();
  $("a-name").value = a ? a.name || "" : "Playground assistant";
  $("a-instructions").value = a ? a.instructions || "" : "You are a helpful assistant. Use the code interpreter for calculations, data and charts.";
  $("a-model").value = a ? a.model : config.default_model || "";
  const tools = a ? a.tools : [{ type: "code_interpreter" }];
  $("a-code").checked = tools.some((t) => t.type === "code_interpreter");
  $("a-search").checked = tools.some((t) => t.type === "file_search");
  const fns = tools.filter((t) => t.type === "function").map((t) => t.function);
  $("a-functions").value = fns.length ? JSON.stringify(fns, null, 2) : "";
  const resources = (a && a.tool_resources) || {};
  fileIds = resources.code_interpreter ? [...resources.code_interpreter.file_ids] : [];
  storeIds = resources.file_search ? [...resources.file_search.vector_store_ids] : [];
  showFiles();
  showStores();
  $("a-store-status").textContent = "";
  $("assistant-error").textContent = "";
  $("assistant-delete").disabled = !a;
  $("assistant-save").textContent = a ? "Save assistant" : "Create assistant";
}

function showFiles() {
  $("a-file-list").replaceChildren(...fileIds.map((id) => el("li", { class: "file" },
    el("span", { class: "name", text: id }),
    el("button", { type: "button", text: "Remove", "aria-label": `Remove ${id}`, onclick: () => { fileIds = fileIds.filter((x) => x !== id); showFiles(); } }))));
}

function showStores() {
  const known = new Set(stores.map((s) => s.id));
  const missing = storeIds.filter((id) => !known.has(id)).map((id) => ({ id, name: null, file_counts: null }));
  const rows = [...stores, ...missing].map((s) => {
    const counts = s.file_counts ? ` · ${s.file_counts.completed} file${s.file_counts.completed === 1 ? "" : "s"}` : "";
    const box = el("input", { type: "checkbox", id: `store-${s.id}`, value: s.id, checked: storeIds.includes(s.id) });
    box.addEventListener("change", () => {
      storeIds = box.checked ? [...storeIds, s.id] : storeIds.filter((x) => x !== s.id);
      if (box.checked) $("a-search").checked = true;
    });
    return el("li", { class: "file" }, box, el("label", { for: box.id, class: "name", text: `${s.name || s.id}${counts}` }));
  });
  $("a-store-list").replaceChildren(...(rows.length ? rows : [el("li", { class: "muted", text: "No vector stores yet." })]));
}

async function uploadFiles() {
  for (const file of $("a-files").files) fileIds.push(await uploadFile(file));
  $("a-files").value = "";
  showFiles();
  say("Files attached: save the assistant to keep them.");
}

// The chosen files become a new vector store, indexed before it is offered for file_search.
async function newStore() {
  const files = [...$("a-search-files").files];
  if (!files.length) return;
  const status = $("a-store-status");
  status.className = "";
  $("a-search-files").disabled = true;
  status.textContent = `Uploading ${files.length} file${files.length === 1 ? "" : "s"}…`;
  const ids = [];
  for (const file of files) ids.push(await uploadFile(file));
  const name = `${$("a-name").value || "Playground"} files`;
  let store = await post("/v1/vector_stores", { name, file_ids: ids });
  status.textContent = "Indexing…";
  const deadline = Date.now() + INDEX_WAIT_MS;
  while (store.file_counts.in_progress && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    store = await get(`/v1/vector_stores/${store.id}`);
  }
  const { completed, failed } = store.file_counts;
  let text = `Indexed ${completed} of ${ids.length} file${ids.length === 1 ? "" : "s"} into ${store.name}.`;
  if (failed) {
    const bad = await get(`/v1/vector_stores/${store.id}/files?filter=failed&limit=100`);
    text += " Failed: " + bad.data.map((f) => `${f.id}: ${f.last_error ? f.last_error.message : "unknown error"}`).join("; ");
  }
  stores = [store, ...stores];
  storeIds = [...storeIds, store.id];
  $("a-search").checked = true;
  showStores();
  $("a-search-files").value = "";
  $("a-search-files").disabled = false;
  status.textContent = `${text} Save the assistant to keep it.`;
  status.className = failed ? "error" : "ok";
}

function body() {
  const tools = [];
  if ($("a-code").checked) tools.push({ type: "code_interpreter" });
  if ($("a-search").checked) tools.push({ type: "file_search" });
  const text = $("a-functions").value.trim();
  if (text) {
    let fns;
    try { fns = JSON.parse(text); } catch (e) { throw new Error(`Function definitions are not JSON: ${e.message}`); }
    for (const fn of Array.isArray(fns) ? fns : [fns]) tools.push({ type: "function", function: fn });
  }
  const tool_resources = { code_interpreter: { file_ids: fileIds }, file_search: { vector_store_ids: storeIds } };
  return { name: $("a-name").value, instructions: $("a-instructions").value, model: $("a-model").value || config.default_model, tools, tool_resources };
}

async function save() {
  const saved = assistantId ? await post(`/v1/assistants/${assistantId}`, body()) : await post("/v1/assistants", body());
  assistants = [saved, ...assistants.filter((a) => a.id !== saved.id)];
  fill();
  pick(saved.id);
  say("Saved.");
  return saved;
}

async function remove() {
  const id = assistantId;
  if (!id) return;
  await del(`/v1/assistants/${id}`);
  assistants = assistants.filter((a) => a.id !== id);
  fill();
  if (assistantId === id) pick(assistants.length ? assistants[0].id : "");
  else $("assistant-select").value = assistantId || "";
}
