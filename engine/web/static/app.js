// The playground's entry: config, the key prompt, the two views.
import { auth, get, ApiError } from "./api.js";
import { initConsole, loadConsole } from "./console.js";
import { initChat, loadChat } from "./chat.js";

const $ = (id) => document.getElementById(id);

function report(error) {
  const text = error instanceof ApiError || error instanceof Error ? error.message : String(error);
  if (error instanceof ApiError && error.status === 401) askKey(text);
  $("fatal").textContent = text;
  setTimeout(() => { if ($("fatal").textContent === text) $("fatal").textContent = ""; }, 15000);
}

function show(view) {
  for (const name of ["chat", "console"]) {
    $(`view-${name}`).hidden = name !== view;
    $(`tab-${name}`).setAttribute("aria-pressed", String(name === view));
  }
  location.hash = view === "console" ? "#console" : "#chat";
}

let config = null;
let started = false;

function askKey(message) {
  $("key-form").hidden = false;
  $("key-error").textContent = message || "";
  $("key-input").focus();
}

async function start() {
  $("key-form").hidden = true;
  $("key-status").textContent = config.key_required ? "Key set for this tab" : "Local server, no key needed";
  if (!started) {
    started = true;
    initConsole(report);
    initChat(report, config);
  }
  await Promise.all([loadConsole().catch(report), loadChat().catch(report)]);
  document.body.dataset.ready = "true";
}

async function main() {
  $("tab-chat").addEventListener("click", () => show("chat"));
  $("tab-console").addEventListener("click", () => show("console"));
  show(location.hash === "#console" ? "console" : "chat");
  config = await get("/v1/playground/config");
  $("key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    auth.key = $("key-input").value.trim();
    try {
      if (!(await get("/v1/playground/key")).valid) throw new Error("invalid API key");
      $("key-input").value = "";
      await start();
    } catch (error) {
      auth.key = "";
      askKey(error.message);
    }
  });
  if (config.key_required && !auth.key) return askKey("");
  if (config.key_required) {
    if (!(await get("/v1/playground/key")).valid) { auth.key = ""; return askKey("The key kept in this tab is no longer valid."); }
  }
  await start();
}

main().catch(report);
