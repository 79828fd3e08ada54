// Manifest: check it (POST /v1/admin/manifest/check: the reload's checks,
// nothing applied), or re-read and apply it (POST /v1/admin/reload, as SIGHUP). A
// refused manifest leaves the running pipeline serving; its error names
// file:line:col, shown on its own line. Below, every route the daemon answers.
import { api } from "../api.js";
import { h, fill, badge, kv } from "../dom.js";

const WHERE = /([^\s:'"]+\.(?:ya?ml|json)):(\d+)(?::(\d+))?/;

// The error box of a refused check or reload: file:line:col on a line of
// its own when the message names one.
function refused(result, title, message) {
  const where = WHERE.exec(message);
  fill(result, h("div", { class: "error-box", role: "alert" },
    h("strong", {}, title),
    where ? h("div", { class: "where", id: "where" }, where[0]) : null,
    h("pre", {}, message)));
}

function details(answer) {
  return kv(Object.fromEntries(Object.entries(answer).filter(([k]) => k !== "status" && k !== "generation")));
}

export async function render(main) {
  const result = h("div", { id: "reload-result" });
  const check = h("button", { type: "button", id: "check" }, "Check");
  const reload = h("button", { class: "primary", type: "button", id: "reload" }, "Check and reload");
  // One action at a time: both buttons wait for the answer.
  const run = async (busy, action) => {
    check.disabled = reload.disabled = true;
    fill(result, h("p", { class: "muted" }, busy));
    try {
      await action();
    } finally {
      check.disabled = reload.disabled = false;
    }
  };
  check.addEventListener("click", () => run("Checking…", async () => {
    try {
      const answer = await api("POST", "/v1/admin/manifest/check");
      fill(result, h("div", { class: "ok-box" }, h("strong", {}, "The manifest is sound; nothing was applied"),
        details(answer)));
    } catch (e) {
      refused(result, "A reload would refuse this manifest", e.message);
    }
  }));
  reload.addEventListener("click", () => run("Reloading…", async () => {
    try {
      const answer = await api("POST", "/v1/admin/reload");
      fill(result, h("div", { class: "ok-box" }, h("strong", {}, `Reloaded: generation ${answer.generation}`),
        details(answer)));
    } catch (e) {
      refused(result, "Refused — the running pipeline keeps serving", e.message);
    }
  }));
  const routes = h("div", {}, h("p", { class: "muted" }, "Loading routes…"));
  fill(main, h("h1", {}, "Manifest"),
    h("section", { class: "panel" },
      h("p", {}, "The daemon re-reads its manifest (and keys file) and applies it without a restart, as ",
        h("code", {}, "SIGHUP"), " does. A manifest it refuses changes nothing; the error says where. ",
        h("em", {}, "Check"), " makes the same checks and applies nothing."),
      h("div", { class: "row" }, check, reload), result),
    h("h2", {}, "Routes"), routes);
  try {
    const report = await api("GET", "/v1/admin/routes");
    fill(routes, h("div", { class: "table-wrap panel", style: "padding:0" }, h("table", {},
      h("thead", {}, h("tr", {}, ["Method", "Path", "Caller", "Action", "Source"].map((t) => h("th", {}, t)))),
      h("tbody", {}, report.routes.map((r) => h("tr", {},
        h("td", {}, badge(r.method, "accent")), h("td", { class: "mono" }, r.path), h("td", {}, r.caller),
        h("td", {}, r.action || "—"), h("td", { class: "muted" }, r.source)))))));
  } catch (e) {
    fill(routes, h("p", { class: "muted" }, e.message));
  }
}
