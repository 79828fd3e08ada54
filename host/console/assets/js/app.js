// The console's shell: signing in, the views behind the #/hash routes, and
// the keyboard shortcuts. Each view is a module exporting
// render(main, params) that may return a function called when it is left.
import { api, ApiError, saveKey, savedKey } from "./api.js";
import { h, fill, errorBox } from "./dom.js";
import * as sessions from "./views/sessions.js";
import * as session from "./views/session.js";
import * as plugins from "./views/plugins.js";
import * as providers from "./views/providers.js";
import * as metrics from "./views/metrics.js";
import * as manifest from "./views/manifest.js";

const views = { sessions, session, plugins, providers, metrics, manifest };
const main = document.getElementById("view");
let leave = null;
let signedIn = false;

// Whether the daemon lets us in: /v1/plugins needs an admin key when auth is
// on and nothing with `auth: none` (loopback), so it tells both apart.
async function probe() {
  try {
    await api("GET", "/v1/plugins");
    return { ok: true };
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) return { ok: false, error: e };
    throw e;
  }
}

function showWho() {
  const who = document.getElementById("who");
  if (!savedKey()) return fill(who, h("span", { class: "badge" }, "auth: none (loopback)"));
  fill(who, h("span", { class: "badge ok" }, "admin key"),
    h("button", { type: "button", onclick: () => { saveKey(""); signedIn = false; route(); } }, "Sign out"));
}

function signInView(error) {
  if (leave) { leave(); leave = null; }
  fill(document.getElementById("who"));
  document.getElementById("nav").hidden = true; // nothing to navigate to yet
  const input = h("input", { type: "password", id: "key", name: "key", autocomplete: "off", required: true,
    placeholder: "swhk-…", "aria-describedby": "key-help" });
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      saveKey(input.value.trim());
      route();
    },
  },
  h("label", { class: "field", for: "key" }, "Admin API key"), input,
  h("p", { id: "key-help", class: "muted" },
    "Kept in this tab only (sessionStorage) and sent as an Authorization header. Keys with the role ",
    h("code", {}, "admin"), " see everything; see docs/security.md."),
  error ? errorBox(error) : null,
  h("button", { class: "primary", type: "submit" }, "Sign in"));
  fill(main, h("section", { class: "panel signin" }, h("h1", {}, "Sign in"), form));
  input.focus();
}

async function route() {
  if (!signedIn) {
    let verdict;
    try { verdict = await probe(); } catch (e) { return fill(main, errorBox(e)); }
    if (!verdict.ok) {
      const hadKey = savedKey() !== "";
      saveKey("");
      const error = hadKey ? new Error(verdict.error.status === 403
        ? "That key is not an admin key: the console needs one (" + verdict.error.message + ")"
        : "The daemon does not know that key.") : null;
      return signInView(error);
    }
    signedIn = true;
  }
  showWho();
  document.getElementById("nav").hidden = false;
  const [name, ...rest] = (location.hash.replace(/^#\/?/, "") || "sessions").split("/");
  const params = rest.map(decodeURIComponent);
  const view = name === "sessions" && params.length ? views.session : views[name] || views.sessions;
  const navName = view === views.session ? "sessions" : name in views ? name : "sessions";
  for (const a of document.querySelectorAll("#nav a"))
    if (a.dataset.view === navName) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  if (leave) { leave(); leave = null; }
  main.replaceChildren();
  try {
    leave = (await view.render(main, params)) || null;
  } catch (e) {
    // The key stopped working (a reload took it out of the keys file): back
    // to signing in rather than an error on every view.
    if (e instanceof ApiError && e.status === 401 && savedKey()) {
      saveKey("");
      signedIn = false;
      return signInView(new Error("The daemon no longer accepts that key: " + e.message));
    }
    fill(main, errorBox(e));
  }
}

function typing(target) {
  return target.closest("input, textarea, select, [contenteditable]") !== null;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Escape" && typing(event.target)) return event.target.blur();
  if (typing(event.target)) return;
  const link = document.querySelector(`#nav a[data-key="${event.key}"]`);
  if (link) { event.preventDefault(); location.hash = link.getAttribute("href"); return; }
  if (event.key === "/") {
    const search = main.querySelector("[data-search]");
    if (search) { event.preventDefault(); search.focus(); search.select?.(); }
  } else if (event.key === "?") {
    document.getElementById("help").showModal();
  } else if (event.key === "j" || event.key === "k") {
    const rows = [...main.querySelectorAll("tbody tr[tabindex]")];
    if (!rows.length) return;
    const at = rows.indexOf(document.activeElement);
    const next = event.key === "j" ? Math.min(at + 1, rows.length - 1) : Math.max(at - 1, 0);
    rows[at < 0 ? 0 : next].focus();
  }
});

window.addEventListener("hashchange", route);
route();
