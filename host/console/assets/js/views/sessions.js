// Sessions: the daemon's list (GET /v1/sessions filters by user, status,
// type and provider, and pages with limit/offset), newest activity first.
import { api, ApiError, enc } from "../api.js";
import { h, fill, badge, when, errorBox } from "../dom.js";

const PAGE = 25;

function readState() {
  const q = new URLSearchParams(sessionStorage.getItem("swarmhost.console.sessions") || "");
  return { user: q.get("user") || "", status: q.get("status") || "", type: q.get("type") || "",
    provider: q.get("provider") || "", offset: Number(q.get("offset") || 0) };
}

function saveState(state) {
  sessionStorage.setItem("swarmhost.console.sessions", new URLSearchParams(state).toString());
}

export async function render(main) {
  const state = readState();
  const search = h("input", { id: "search", type: "search", placeholder: "session id — press Enter to open",
    "data-search": "", "aria-label": "Open a session by id", autocomplete: "off" });
  const user = h("input", { id: "f-user", value: state.user, placeholder: "any" });
  const status = h("select", { id: "f-status" },
    ["", "active", "archived"].map((s) => h("option", { value: s, selected: s === state.status }, s || "any")));
  const type = h("input", { id: "f-type", value: state.type, placeholder: "any (plain: none)" });
  const provider = h("input", { id: "f-provider", value: state.provider, placeholder: "any" });
  const result = h("div", { id: "sessions-result" }, h("p", { class: "muted" }, "Loading…"));
  const pager = h("div", { class: "row" });
  const found = h("div");

  const form = h("form", {
    class: "filters panel", onsubmit: (e) => { e.preventDefault(); state.offset = 0; load(); },
  },
  h("label", { class: "field wide" }, "Search by id", search),
  h("label", { class: "field" }, "User", user),
  h("label", { class: "field" }, "Status", status),
  h("label", { class: "field" }, "Type", type),
  h("label", { class: "field" }, "Provider", provider),
  h("button", { class: "primary", type: "submit" }, "Filter"));

  search.addEventListener("keydown", async (e) => {
    if (e.key !== "Enter" || !search.value.trim()) return;
    e.preventDefault();
    const id = search.value.trim();
    try {
      await api("GET", "/v1/sessions/" + enc(id));
      location.hash = "#/sessions/" + enc(id);
    } catch (err) {
      fill(found, errorBox(err instanceof ApiError && err.status === 404 ? new Error("No session " + id) : err));
    }
  });

  fill(main, h("h1", {}, "Sessions"), form, found, result, pager);

  async function load() {
    Object.assign(state, { user: user.value.trim(), status: status.value, type: type.value.trim(),
      provider: provider.value.trim() });
    saveState(state);
    const q = new URLSearchParams({ limit: PAGE, offset: state.offset });
    if (state.user) q.set("user_id", state.user);
    if (state.status) q.set("status", state.status);
    if (state.type) q.set("type", state.type);
    if (state.provider) q.set("provider", state.provider);
    let list;
    try {
      list = (await api("GET", "/v1/sessions?" + q)).sessions;
    } catch (err) {
      return fill(result, errorBox(err));
    }
    fill(result, table(list));
    result.dataset.query = q.toString(); // the query the rows answer
    fill(pager,
      h("button", { type: "button", disabled: state.offset === 0,
        onclick: () => { state.offset = Math.max(0, state.offset - PAGE); load(); } }, "← Newer"),
      h("span", { class: "muted" }, list.length
        ? `${state.offset + 1}–${state.offset + list.length}` : "nothing here"),
      h("button", { type: "button", disabled: list.length < PAGE,
        onclick: () => { state.offset += PAGE; load(); } }, "Older →"));
  }
  await load();
}

function table(sessions) {
  if (!sessions.length) return h("div", { class: "panel muted" }, "No sessions match.");
  const open = (s) => { location.hash = "#/sessions/" + enc(s.id); };
  return h("div", { class: "table-wrap panel", style: "padding:0" }, h("table", { id: "sessions" },
    h("thead", {}, h("tr", {}, ["Session", "User", "Type", "Provider", "Status", "Msgs", "Last activity"]
      .map((t, i) => h("th", { class: i === 5 ? "num" : i === 2 || i === 6 ? "hide-narrow" : "" }, t)))),
    h("tbody", {}, sessions.map((s) => h("tr", {
      tabindex: "0", dataset: { id: s.id },
      onclick: () => open(s), onkeydown: (e) => { if (e.key === "Enter") open(s); },
    },
    h("td", {}, h("a", { href: "#/sessions/" + enc(s.id), class: "mono", title: s.id }, s.id.slice(0, 8) + "…"),
      s.metadata && s.metadata.title ? h("div", { class: "muted" }, String(s.metadata.title)) : null),
    h("td", {}, s.user_id),
    h("td", { class: "hide-narrow" }, s.type ? badge(s.type, "accent") : h("span", { class: "muted" }, "plain")),
    h("td", {}, s.provider, s.model ? h("div", { class: "muted mono" }, s.model) : null),
    h("td", {}, badge(s.status, s.status === "active" ? "ok" : "")),
    h("td", { class: "num" }, s.message_count),
    h("td", { class: "hide-narrow", title: s.last_activity }, when(s.last_activity)))))));
}
