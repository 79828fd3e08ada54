// Plugins: every running instance (GET /v1/plugins) with its plugin's
// version, ABI and declared config schema, and its health (GET /healthz).
import { api } from "../api.js";
import { h, fill, badge, pretty } from "../dom.js";

async function health() {
  try { return await api("GET", "/healthz"); } catch (e) { return { status: "unhealthy", error: e.message }; }
}

function healthOf(report, instance) {
  const entry = instance.kind === "storage" ? report.storage
    : instance.kind === "provider" ? report.providers?.[instance.name] : undefined;
  if (!entry) return badge("n/a");
  const healthy = entry.healthy ?? entry.status === "healthy";
  return h("span", { title: pretty(entry) }, badge(healthy ? "healthy" : "unhealthy", healthy ? "ok" : "bad"));
}

export async function render(main) {
  const [report, healthReport] = await Promise.all([api("GET", "/v1/plugins"), health()]);
  const byName = new Map((report.plugins || []).map((p) => [p.name, p]));
  const filter = h("input", { type: "search", placeholder: "filter by name or kind", "data-search": "",
    "aria-label": "Filter plugins" });
  const list = h("div", { class: "grid wide", id: "plugins" });
  const show = () => {
    const q = filter.value.trim().toLowerCase();
    fill(list, report.instances
      .filter((i) => !q || [i.name, i.plugin, i.kind].some((t) => String(t).toLowerCase().includes(q)))
      .map((i) => card(i, byName.get(i.plugin) || {}, healthReport)));
  };
  filter.addEventListener("input", show);
  fill(main, h("h1", {}, "Plugins", h("span", { class: "sub" },
    `${report.instances.length} running instances of ${byName.size} plugins`),
  h("span", { class: "spacer" }), badge("daemon " + healthReport.status, healthReport.status === "healthy" ? "ok" : "bad")),
  h("div", { class: "row", style: "margin-bottom:12px" }, filter), list);
  show();
}

function card(instance, plugin, healthReport) {
  const schema = plugin.config_schema || [];
  return h("section", { class: "panel", dataset: { instance: instance.name } },
    h("div", { class: "row" }, h("h2", { style: "margin:0" }, instance.name), badge(instance.kind, "accent"),
      h("span", { class: "spacer" }), healthOf(healthReport, instance)),
    h("dl", { class: "kv" },
      h("dt", {}, "plugin"), h("dd", {}, instance.plugin),
      h("dt", {}, "version"), h("dd", {}, plugin.version || "?"),
      h("dt", {}, "ABI"), h("dd", { class: "mono" }, typeof plugin.abi === "object" ? JSON.stringify(plugin.abi) : String(plugin.abi ?? "?")),
      plugin.file ? [h("dt", {}, "file"), h("dd", { class: "mono" }, plugin.file)] : null),
    plugin.description ? h("p", { class: "muted" }, plugin.description) : null,
    instance.routes?.length ? h("details", {}, h("summary", {}, `${instance.routes.length} routes`),
      h("pre", {}, instance.routes.join("\n"))) : null,
    h("details", { class: "schema-box", open: schema.length > 0 && schema.length <= 4 },
      h("summary", {}, `config schema (${schema.length} keys)`),
      schema.length ? h("div", { class: "table-wrap" }, h("table", { class: "schema" },
        h("thead", {}, h("tr", {}, h("th", {}, "key"), h("th", {}, "type"), h("th", {}, "default"), h("th", {}, "description"))),
        h("tbody", {}, schema.map((row) => h("tr", {},
          h("td", {}, row.key ?? row.name ?? ""),
          h("td", {}, row.type ?? "", row.required ? [" ", badge("required", "warn")] : null),
          h("td", { class: "mono" }, row.default === undefined ? "" : JSON.stringify(row.default)),
          h("td", {}, row.description ?? "")))))) : h("p", { class: "muted" }, "This plugin declares no settings.")));
}
