// The daemon's JSON API as the console calls it. The admin key lives in
// sessionStorage (gone with the tab) and travels in the Authorization
// header only, never in a URL.

const KEY = "swarmhost.console.key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function savedKey() { return sessionStorage.getItem(KEY) || ""; }
export function saveKey(key) { key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY); }

function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const key = savedKey();
  if (key) out.Authorization = "Bearer " + key;
  return out;
}

async function failure(response) {
  let code = "http_" + response.status, message = response.status + " " + response.statusText;
  try {
    const body = await response.json();
    if (body && body.error) ({ code, message } = { code: body.error.code, message: body.error.message });
  } catch { /* not JSON: keep the status line */ }
  return new ApiError(response.status, code, message);
}

// fetch + JSON; throws ApiError with the daemon's code and message.
export async function api(method, path, body, extraHeaders) {
  const init = { method, headers: headers(extraHeaders) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

// A text/event-stream answer read through fetch (EventSource cannot send an
// Authorization header). Calls onEvent(type, data, id) per event until the
// stream ends or `signal` aborts.
export async function stream(method, path, body, onEvent, signal) {
  const init = { method, headers: headers({ Accept: "text/event-stream" }), signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "", type = "message", data = [], id = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      if (line === "") {
        if (data.length) onEvent(type, parse(data.join("\n")), id);
        type = "message"; data = []; id = "";
      } else if (line.startsWith(":")) {
        continue; // keep-alive comment
      } else {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") type = text;
        else if (field === "data") data.push(text);
        else if (field === "id") id = text;
      }
    }
  }
}

function parse(text) {
  try { return JSON.parse(text); } catch { return text; }
}

export const enc = encodeURIComponent;
