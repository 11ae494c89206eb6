// Rendering untrusted output: text only through textContent, HTML only in sandbox="" iframes,
// images only as data:/blob: URLs, links only http(s).

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function safeHref(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch { return null; }
}

const BASE64 = /^[A-Za-z0-9+/=\s]*$/;
// Untrusted HTML shows data: images and nothing else: no requests, no script. (A srcdoc frame
// also inherits the page's policy, so inline styles stay blocked.)
const FRAME_CSP = "default-src 'none'; img-src data:";

export function htmlFrame(html) {
  const frame = el("iframe", { sandbox: "", title: "HTML output", class: "html-output", referrerpolicy: "no-referrer" });
  frame.srcdoc = `<!doctype html><meta http-equiv="Content-Security-Policy" content="${FRAME_CSP}">` +
    String(html);
  return frame;
}

// One MIME bundle: the richest kind we show safely.
export function bundle(data) {
  if (!data) return null;
  const png = data["image/png"] || data["image/jpeg"];
  if (typeof png === "string" && BASE64.test(png)) {
    const kind = data["image/png"] ? "image/png" : "image/jpeg";
    return el("img", { src: `data:${kind};base64,${png.replace(/\s/g, "")}`, alt: data["text/plain"] || "figure", class: "figure" });
  }
  if (typeof data["image/svg+xml"] === "string") {
    // As an image, SVG runs no script; a data: URL (not blob:) never opens as a page of this origin.
    const src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(data["image/svg+xml"])}`;
    return el("img", { src, alt: "figure", class: "figure" });
  }
  if (typeof data["text/html"] === "string") return htmlFrame(data["text/html"]);
  if (data["text/markdown"] !== undefined && data["text/plain"] === undefined) return el("pre", { text: String(data["text/markdown"]) });
  if (data["application/json"] !== undefined && data["text/plain"] === undefined) return el("pre", { text: JSON.stringify(data["application/json"], null, 2) });
  if (data["text/plain"] !== undefined) return el("pre", { class: "result", text: String(data["text/plain"]) });
  return el("pre", { text: `[${Object.keys(data).join(", ")}]` });
}

export function traceback(error) {
  const lines = error.traceback && error.traceback.length ? error.traceback : [`${error.name}: ${error.value}`];
  return el("pre", { class: "traceback", text: lines.join("\n") });
}

// A tiny Python highlighter: spans with textContent, never HTML from the code.
const TOKENS = /(#[^\n]*)|("""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|[rbfu]{0,2}"(?:\\.|[^"\\\n])*"?|[rbfu]{0,2}'(?:\\.|[^'\\\n])*'?)|\b(\d[\d_]*\.?\d*(?:e[+-]?\d+)?j?)\b|\b(False|None|True|and|as|assert|async|await|break|class|continue|def|del|elif|else|except|finally|for|from|global|if|import|in|is|lambda|nonlocal|not|or|pass|raise|return|try|while|with|yield|match|case)\b|\b(print|len|range|open|int|str|float|list|dict|set|tuple|sum|min|max|abs|enumerate|zip|sorted|isinstance|type|super|self)\b/g;
const KINDS = [null, "tok-comment", "tok-string", "tok-number", "tok-keyword", "tok-builtin"];

export function highlight(code) {
  const pre = el("pre", { class: "code" });
  const codeEl = el("code", { class: "language-python" });
  let at = 0;
  for (const match of code.matchAll(TOKENS)) {
    if (match.index > at) codeEl.append(code.slice(at, match.index));
    const kind = KINDS.findIndex((_, i) => i > 0 && match[i] !== undefined);
    codeEl.append(el("span", { class: KINDS[kind], text: match[0] }));
    at = match.index + match[0].length;
  }
  if (at < code.length) codeEl.append(code.slice(at));
  pre.append(codeEl);
  return pre;
}

export function when(seconds) {
  if (!seconds) return "never";
  const date = new Date(seconds * 1000);
  const left = Math.round(seconds - Date.now() / 1000);
  const span = Math.abs(left) >= 120 ? `${Math.round(left / 60)} min` : `${left} s`;
  return `${date.toLocaleTimeString()} (${left >= 0 ? "in " + span : span.replace("-", "") + " ago"})`;
}
