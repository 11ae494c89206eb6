// The sandbox console: sessions, cells streamed over the native SSE execute, /mnt/data files.
import { get, post, del, call, stream, download } from "./api.js";
import { el, bundle, traceback, when } from "./render.js";

const $ = (id) => document.getElementById(id);
let sessionId = null;
let running = null;  // the cell's AbortController, or true while its session is being made
let report = console.error;

export function initConsole(reportError) {
  report = reportError;
  $("cell-form").addEventListener("submit", (e) => { e.preventDefault(); run().catch(report); });
  $("code").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && e.shiftKey) { e.preventDefault(); run().catch(report); }
  });
  $("session-new").addEventListener("click", () => newSession().catch(report));
  $("session-select").addEventListener("change", (e) => pick(e.target.value).catch(report));
  $("session-restart").addEventListener("click", () => restart().catch(report));
  $("session-delete").addEventListener("click", () => removeSession().catch(report));
  $("interrupt").addEventListener("click", () => sessionId && post(`/v1/sessions/${sessionId}/interrupt`).catch(report));
  $("upload").addEventListener("change", () => upload().catch(report));
  $("files-refresh").addEventListener("click", () => listFiles().catch(report));
  setInterval(() => sessionId && showInfo().catch(() => {}), 30000);
}

export async function loadConsole() {
  const page = await get("/v1/sessions?limit=100&order=desc");
  if (sessionId) return;  // the visitor already made one
  const live = page.data.filter((s) => s.status === "active");
  fillSessions(live);
  if (live.length) await pick(live[0].id); else showNone();
}

function fillSessions(sessions) {
  const select = $("session-select");
  select.replaceChildren(...sessions.map((s) => el("option", { value: s.id, text: s.id })));
  if (!sessions.length) select.append(el("option", { value: "", text: "(no session yet)" }));
}

function showNone() {
  sessionId = null;
  $("session-info").replaceChildren(el("dd", { text: "Run a cell to start a session, or press New session." }));
  $("files").replaceChildren();
}

async function newSession() {
  const session = await post("/v1/sessions", {});
  const select = $("session-select");
  if (!sessionId) select.replaceChildren();
  select.prepend(el("option", { value: session.id, text: session.id }));
  await pick(session.id);
  return session;
}

async function pick(id) {
  if (!id) return showNone();
  sessionId = id;
  $("session-select").value = id;
  $("cells").replaceChildren();
  await Promise.all([showInfo(), listFiles()]);
}

async function showInfo(info) {
  const id = sessionId;
  info = info || (await get(`/v1/sessions/${id}`));
  if (id !== sessionId) return;  // another session was picked meanwhile
  const rows = [
    ["Status", info.status],
    ["Expires", when(info.expires_at)],
    ["Idle timeout", `${Math.round(info.idle_timeout / 60)} min`],
    ["Last active", when(info.last_active_at)],
  ];
  $("session-info").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
}

async function restart() {
  if (!sessionId) return;
  $("cell-status").textContent = "Restarting the kernel…";
  await showInfo(await post(`/v1/sessions/${sessionId}/restart`));
  $("cells").append(el("li", { class: "cell note", text: "The kernel was restarted; files in /mnt/data stay." }));
  $("cell-status").textContent = "Kernel restarted";
}

async function removeSession() {
  if (!sessionId || running) return;
  await del(`/v1/sessions/${sessionId}`);
  sessionId = null;
  $("cells").replaceChildren();
  await loadConsole();
}

async function run() {
  const code = $("code").value;
  if (!code.trim() || running) return;
  running = true;
  $("run").disabled = true;
  try {
    if (!sessionId) await newSession();
  } catch (error) {
    running = null;
    $("run").disabled = false;
    throw error;
  }
  const cell = el("li", { class: "cell" });
  const out = el("div", { class: "outputs", "aria-live": "polite" });
  cell.append(el("pre", { class: "cell-code", text: code }), out);
  $("cells").append(cell);
  $("cell-status").textContent = "Running…";
  running = new AbortController();
  let result = null;
  try {
    for await (const { event, data } of stream(`/v1/sessions/${sessionId}/execute`, { code }, running.signal)) {
      if (event === "stdout" || event === "stderr") appendText(out, event, data.text);
      else if (event === "display" || event === "result") out.append(bundle(data.data));
      else if (event === "error") out.append(traceback(data.error || data));
      else if (event === "done") result = data;
    }
  } catch (error) {
    $("cell-status").textContent = `Failed: ${error.message}`;
    throw error;
  } finally {
    running = null;
    $("run").disabled = false;
  }
  if (result) {
    const secs = result.duration_ms ? ` in ${(result.duration_ms / 1000).toFixed(2)} s` : "";
    cell.dataset.status = result.status;
    cell.append(el("p", { class: `cell-footer ${result.status}`, text: `[${result.execution_count ?? " "}] ${result.status}${secs}${result.state_lost ? " (the kernel was restarted: state lost)" : ""}` }));
    $("cell-status").textContent = `Done: ${result.status}`;
    if (result.outputs && result.outputs.some((o) => o.type === "file")) listFiles().catch(() => {});
  }
  showInfo().catch(() => {});
  cell.scrollIntoView({ block: "nearest" });
}

function appendText(out, kind, text) {
  let last = out.lastElementChild;
  if (!last || last.dataset.stream !== kind) {
    last = el("pre", { class: kind });
    last.dataset.stream = kind;
    out.append(last);
  }
  last.append(text);
}

async function listFiles() {
  if (!sessionId) return;
  const id = sessionId;
  const page = await get(`/v1/sessions/${id}/files`);
  if (id !== sessionId) return;  // another session was picked meanwhile
  const items = page.data.map((f) => {
    const path = `/v1/sessions/${id}/files/content?path=${encodeURIComponent(f.path)}`;
    return el("li", { class: "file" },
      el("span", { class: "name", text: f.filename }),
      el("span", { class: "size", text: `${f.bytes} B` }),
      el("button", { type: "button", text: "Download", "aria-label": `Download ${f.filename}`, onclick: () => download(path, f.filename).catch(report) }),
      el("button", { type: "button", text: "Delete", "aria-label": `Delete ${f.filename}`, onclick: () => deleteFile(path).catch(report) }));
  });
  $("files").replaceChildren(...(items.length ? items : [el("li", { text: "No files yet." })]));
}

async function deleteFile(path) {
  await call("DELETE", path);
  await listFiles();
}

async function upload() {
  const input = $("upload");
  if (!input.files.length) return;
  if (!sessionId) await newSession();
  for (const file of input.files) {
    const form = new FormData();
    form.append("file", file, file.name);
    await call("POST", `/v1/sessions/${sessionId}/files`, form);
  }
  input.value = "";
  await listFiles();
  $("cell-status").textContent = "Uploaded";
}
