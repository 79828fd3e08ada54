// Providers: each instance with its status, metadata (plugins leave secrets
// out), and its runtime config changed through PATCH /v1/providers/{name}.
import { api, enc } from "../api.js";
import { h, fill, badge, kv, errorBox, toast } from "../dom.js";

export async function render(main) {
  const [{ providers }, health] = await Promise.all([api("GET", "/v1/providers"),
    api("GET", "/healthz").catch((e) => ({ providers: {}, error: e.message }))]);
  fill(main, h("h1", {}, "Providers", h("span", { class: "sub" }, `${providers.length} instances`)),
    h("div", { class: "grid wide", id: "providers" }, providers.map((p) => card(p, health.providers?.[p.name]))));
}

function card(p, health) {
  const healthy = health ? (health.healthy ?? health.status === "healthy") : undefined;
  const editor = h("textarea", { rows: 4, "aria-label": `Config changes for ${p.name}`, placeholder: '{"model": "…"}' });
  const result = h("div");
  const body = h("div");
  const show = (provider) => fill(body, kv(provider.metadata));
  show(p);
  const apply = async (e) => {
    e.preventDefault();
    let changes;
    try { changes = JSON.parse(editor.value); } catch (err) { return fill(result, errorBox(new Error("Not JSON: " + err.message))); }
    try {
      show(await api("PATCH", "/v1/providers/" + enc(p.name), changes));
      fill(result);
      toast(`${p.name}: config applied`);
    } catch (err) { fill(result, errorBox(err)); }
  };
  return h("section", { class: "panel", dataset: { provider: p.name } },
    h("div", { class: "row" }, h("h2", { style: "margin:0" }, p.name), badge(p.plugin, "accent"),
      p.default ? badge("default", "ok") : null,
      h("span", { class: "spacer" }),
      healthy === undefined ? badge("health n/a") : badge(healthy ? "healthy" : "unhealthy", healthy ? "ok" : "bad")),
    p.fallback?.length ? h("p", { class: "muted" }, "falls back to " + p.fallback.join(", ")) : null,
    h("h2", {}, "Metadata"), body,
    h("form", { onsubmit: apply },
      h("h2", {}, "Change runtime config"),
      editor, result,
      h("div", { class: "row", style: "margin-top:6px" }, h("span", { class: "muted" },
        "Calls already running finish on the old settings."), h("span", { class: "spacer" }),
        h("button", { class: "primary", type: "submit" }, "Apply"))));
}
