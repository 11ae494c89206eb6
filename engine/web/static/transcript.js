// The transcript: messages and run steps (code, logs, images, function calls, file searches),
// drawn from the API's objects or as they stream in. Untrusted text goes in as text only.
import { get, blobUrl, download } from "./api.js";
import { el, highlight, safeHref } from "./render.js";

const $ = (id) => document.getElementById(id);
const names = new Map();  // file id -> Promise of its file name
let report = console.error;

export function initTranscript(reportError) { report = reportError; }

function fileName(id) {
  if (!names.has(id)) names.set(id, get(`/v1/files/${id}`).then((f) => f.filename, () => id));
  return names.get(id);
}

const urls = [];  // the blob: URLs of the images shown, freed with them

export function clear() {
  $("messages").replaceChildren();
  urls.splice(0).forEach((url) => URL.revokeObjectURL(url));
}

// A finished reply, read out once by screen readers (the streaming text is not).
export function announce(m) {
  const text = (m.content || []).filter((p) => p.type === "text").map((p) => p.text.value).join(" ");
  if (text) $("announce").textContent = `${m.role}: ${text}`;
}

export function item(role) {
  const node = el("li", { class: `message ${role}` }, el("div", { class: "role", text: role }));
  $("messages").append(node);
  return node;
}

export function showMessage(m) {
  const node = item(m.role);
  fillMessage(node, m);
  return node;
}

export function fillMessage(node, m) {
  node.querySelectorAll(".body").forEach((n) => n.remove());
  const body = el("div", { class: "body" });
  for (const part of m.content || []) {
    if (part.type === "text") body.append(...renderText(part.text));
    else if (part.type === "image_file") body.append(fileImage(part.image_file.file_id));
  }
  const attached = (m.attachments || []).map((a) => {
    const chip = el("span", { class: "chip", text: a.file_id });
    fileName(a.file_id).then((name) => { chip.textContent = `Attached: ${name}`; });
    return chip;
  });
  if (attached.length) body.append(el("div", { class: "row" }, ...attached));
  node.append(body);
}

function renderText(text) {
  const value = text.value;
  const annotations = text.annotations || [];
  const shown = el("div", { class: "text" });
  const sources = [];
  let at = 0;
  // Marks are found by their text: the API counts code points, JavaScript counts UTF-16 units.
  for (const a of annotations) {
    if (a.type !== "file_citation" || !a.text) continue;
    const found = value.indexOf(a.text, at);
    if (found < 0) continue;
    shown.append(value.slice(at, found));
    let n = sources.indexOf(a.file_citation.file_id);
    if (n < 0) n = sources.push(a.file_citation.file_id) - 1;
    shown.append(el("sup", { class: "cite", text: `[${n + 1}]` }));
    at = found + a.text.length;
  }
  shown.append(value.slice(at));
  const nodes = [shown];
  const files = annotations.filter((a) => a.type === "file_path");
  if (files.length) {
    nodes.push(el("div", { class: "row files" }, ...files.map((a) => {
      const name = fileLabel(a.text.split("/").pop()) || a.file_path.file_id;
      return el("button", { type: "button", class: "download", text: `Download ${name}`, onclick: () => download(`/v1/files/${a.file_path.file_id}/content`, name).catch(report) });
    })));
  }
  if (sources.length) {
    nodes.push(el("ol", { class: "citations", "aria-label": "Sources" }, ...sources.map((id) => {
      const source = el("li", { text: id });
      fileName(id).then((name) => { source.textContent = name; });
      return source;
    })));
  }
  const links = [...new Set((value.match(/https?:\/\/[^\s)\]]+/g) || []).map(safeHref).filter(Boolean))];
  if (links.length) nodes.push(el("div", { class: "row links" }, ...links.map((href) => el("a", { href, rel: "noopener noreferrer", target: "_blank", text: href }))));
  return nodes;
}

function fileLabel(name) {
  try { return decodeURIComponent(name); } catch { return name; }  // e.g. a file named 100%.csv
}

// Whatever type the server gives the bytes, an <img> only decodes them as a picture; a blob: URL
// opened in a tab of its own is then a download, never a document of this origin.
function fileImage(fileId) {
  const img = el("img", { class: "figure", alt: `image ${fileId}` });
  blobUrl(`/v1/files/${fileId}/content`, "application/octet-stream").then((url) => { urls.push(url); img.src = url; }).catch(report);
  return img;
}

// --- one tool call of a step ---

export function drawCode(node, input, outputs, final) {
  node.replaceChildren(el("div", { class: "role", text: "code interpreter" }), highlight(input));
  for (const out of outputs) {
    if (out.type === "logs") node.append(el("pre", { class: `logs${/Traceback|Error/.test(out.logs) ? " traceback" : ""}`, text: out.logs }));
    else if (out.type === "image" && out.image) node.append(fileImage(out.image.file_id));
  }
  node.classList.toggle("running", !final);
}

export function drawFunction(node, name, args, output) {
  node.replaceChildren(el("div", { class: "role", text: `function ${name || ""}` }), el("pre", { text: args }),
    output ? el("pre", { class: "logs", text: `→ ${output}` }) : null);
}

export function drawSearch(node, search) {
  const results = (search && search.results) || [];
  for (const r of results) names.set(r.file_id, Promise.resolve(r.file_name));
  const list = results.map((r) => {
    const text = (r.content || []).map((c) => c.text).join(" ");
    return el("li", {}, el("span", { class: "name", text: r.file_name }), el("span", { class: "size", text: ` · score ${Number(r.score).toFixed(2)}` }),
      text ? el("blockquote", { text: text.length > 300 ? `${text.slice(0, 300)}…` : text }) : null);
  });
  node.replaceChildren(el("div", { class: "role", text: "file search" }),
    list.length ? el("ol", { class: "results" }, ...list) : el("p", { class: "muted", text: "No results." }));
}

// A finished tool_calls step, as the steps list returns it.
export function showStep(step) {
  const node = item("tool");
  for (const call of step.step_details.tool_calls || []) {
    const part = el("div", { class: "step" });
    node.append(part);
    if (call.type === "code_interpreter") drawCode(part, call.code_interpreter.input, call.code_interpreter.outputs || [], true);
    else if (call.type === "function") drawFunction(part, call.function.name, call.function.arguments, call.function.output);
    else if (call.type === "file_search") drawSearch(part, call.file_search);
  }
}

export function showUsage(usage) {
  $("usage").textContent = usage ? `Tokens: ${usage.prompt_tokens} in, ${usage.completion_tokens} out, ${usage.total_tokens} total` : "";
}
