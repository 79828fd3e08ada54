// Manifest: re-read and apply it (POST /v1/admin/reload, as SIGHUP). A
// refused manifest leaves the running pipeline serving; its error names
// file:line:col, shown on its own line. Below, every route the daemon answers.
import { api } from "../api.js";
import { h, fill, badge, kv } from "../dom.js";

const WHERE = /([^\s:'"]+\.(?:ya?ml|json)):(\d+)(?::(\d+))?/;

export async function render(main) {
  const result = h("div", { id: "reload-result" });
  const button = h("button", { class: "primary", type: "button", id: "reload" }, "Check and reload");
  button.addEventListener("click", async () => {
    button.disabled = true;
    fill(result, h("p", { class: "muted" }, "Reloading…"));
    try {
      const answer = await api("POST", "/v1/admin/reload");
      fill(result, h("div", { class: "ok-box" }, h("strong", {}, `Reloaded: generation ${answer.generation}`),
        kv(Object.fromEntries(Object.entries(answer).filter(([k]) => k !== "status" && k !== "generation")))));
    } catch (e) {
      const where = WHERE.exec(e.message);
      fill(result, h("div", { class: "error-box", role: "alert" },
        h("strong", {}, "Refused — the running pipeline keeps serving"),
        where ? h("div", { class: "where", id: "where" }, where[0]) : null,
        h("pre", {}, e.message)));
    } finally {
      button.disabled = false;
    }
  });
  const routes = h("div", {}, h("p", { class: "muted" }, "Loading routes…"));
  fill(main, h("h1", {}, "Manifest"),
    h("section", { class: "panel" },
      h("p", {}, "The daemon re-reads its manifest (and keys file) and applies it without a restart, as ",
        h("code", {}, "SIGHUP"), " does. A manifest it refuses changes nothing; the error says where."),
      button, result),
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
