// Building the page from data without ever parsing it as HTML: every string
// becomes a text node, so a message holding "<script>" shows as those
// characters. (innerHTML is not used anywhere in the console.)

// h("a", {href: "#x", class: "badge"}, "text", childNode, [more…])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    // Through the CSSOM: the console's Content-Security-Policy refuses
    // style attributes (style-src 'self'), not styles set from its own code.
    else if (key === "style") el.style.cssText = value;
    else if (key in el && key !== "list" && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replace everything inside `el`.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function badge(text, kind = "") {
  return h("span", { class: "badge " + kind }, text);
}

// A value of unknown shape, readable: strings as text, the rest as JSON.
export function pretty(value) {
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

// Keys and values of an object as a definition list (nested values as JSON).
export function kv(object) {
  const entries = Object.entries(object || {});
  if (!entries.length) return h("span", { class: "muted" }, "none");
  return h("dl", { class: "kv" }, entries.map(([k, v]) => [
    h("dt", {}, k),
    h("dd", {}, typeof v === "object" && v !== null ? h("code", {}, JSON.stringify(v)) : String(v)),
  ]));
}

export function when(iso) {
  if (!iso) return "";
  const t = new Date(iso);
  if (isNaN(t)) return iso;
  const seconds = (Date.now() - t.getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
  return t.toISOString().slice(0, 16).replace("T", " ");
}

export function toast(text) {
  const box = document.getElementById("toast");
  const item = h("div", {}, text);
  box.append(item);
  setTimeout(() => item.remove(), 4000);
}

export function errorBox(error) {
  return h("div", { class: "error-box", role: "alert" }, error.message || String(error));
}
