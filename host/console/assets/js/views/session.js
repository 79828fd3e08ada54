// One session: its conversation rendered (tool calls, tool results,
// attachments, metadata), kept live through GET /v1/sessions/{id}/events,
// a box that sends with stream:true and shows the reply as it arrives, and
// archive / delete.
import { api, stream, enc } from "../api.js";
import { h, fill, badge, kv, pretty, when, errorBox, toast } from "../dom.js";

export async function render(main, [id]) {
  const base = "/v1/sessions/" + enc(id);
  const SHOWN = 500; // the newest: enough to read a conversation, bounded for the page
  const [session, { messages }] = await Promise.all([api("GET", base), api("GET", base + "/messages?limit=" + SHOWN)]);
  const seen = new Set();
  const conversation = h("div", { class: "conversation", id: "conversation", "aria-label": "Conversation" });
  const side = h("aside", { class: "panel" });
  const live = badge("connecting…");
  const stop = new AbortController();

  const add = (message) => {
    if (seen.has(message.id)) return;
    seen.add(message.id);
    // The stored reply may come through the live events before the send's
    // own stream ends: it takes the streaming bubble's place either way.
    const bubble = document.getElementById("streaming");
    if (bubble && message.role === "assistant" && bubble.dataset.replyTo === message.metadata?.reply_to) bubble.remove();
    conversation.append(messageCard(message));
  };
  if (messages.length === SHOWN)
    conversation.append(h("p", { class: "muted" }, `Showing the newest ${SHOWN} of ${session.message_count} messages.`));
  messages.forEach(add);
  if (!messages.length) conversation.append(h("p", { class: "muted", id: "empty" }, "No messages yet."));

  const showSession = (s) => fill(side,
    h("h2", {}, "Session"),
    h("dl", { class: "kv" },
      h("dt", {}, "id"), h("dd", { class: "mono" }, s.id),
      h("dt", {}, "user"), h("dd", {}, s.user_id),
      h("dt", {}, "status"), h("dd", {}, badge(s.status, s.status === "active" ? "ok" : "")),
      h("dt", {}, "type"), h("dd", {}, s.type || "plain"),
      h("dt", {}, "provider"), h("dd", {}, s.provider + (s.model ? " · " + s.model : "")),
      h("dt", {}, "messages"), h("dd", {}, String(s.message_count)),
      h("dt", {}, "created"), h("dd", { title: s.created_at }, when(s.created_at)),
      h("dt", {}, "last activity"), h("dd", { title: s.last_activity }, when(s.last_activity))),
    h("h2", {}, "Metadata"), kv(s.metadata),
    h("h2", {}, "Config"), kv(s.config),
    h("h2", {}, "Context"), kv(Object.assign({}, s.context?.user_context, s.context?.system_context)),
    h("div", { class: "row", style: "margin-top:14px" },
      h("button", { type: "button", id: "archive", disabled: s.status === "archived", onclick: archive }, "Archive"),
      h("button", { type: "button", id: "delete", class: "danger", onclick: remove }, "Delete")));
  showSession(session);

  async function archive() {
    try { showSession(await api("POST", base + "/archive")); toast("Archived"); } catch (e) { toast(e.message); }
  }
  async function remove() {
    if (!confirm("Delete session " + id + " and all its messages?")) return;
    try { await api("DELETE", base); toast("Deleted"); location.hash = "#/sessions"; } catch (e) { toast(e.message); }
  }

  const composer = composerBox(base, add, conversation);
  fill(main,
    h("h1", {}, h("a", { href: "#/sessions", class: "sub" }, "Sessions /"), h("span", { class: "mono" }, id.slice(0, 13)), live),
    h("div", { class: "session-layout" },
      h("section", {}, conversation, composer),
      side));

  // Live: messages sent by anyone else (another tab, a client, another
  // daemon on the same store) appear as they are stored.
  stream("GET", base + "/events", undefined, (type, data) => {
    if (type === "ready") fill(live, "live").className = "badge ok";
    else if (type === "message" && data && data.id) { document.getElementById("empty")?.remove(); add(data); }
    else if (type === "session_updated" || type === "session_archived") showSession(data);
    else if (type === "session_deleted") { toast("This session was deleted"); location.hash = "#/sessions"; }
  }, stop.signal).then(() => { fill(live, "offline").className = "badge"; })
    .catch((e) => { if (!stop.signal.aborted) { fill(live, "offline").className = "badge warn"; live.title = e.message; } });
  return () => stop.abort();
}

function composerBox(base, add, conversation) {
  const text = h("textarea", { id: "compose", placeholder: "Message… (Ctrl+Enter sends)", "aria-label": "Message",
    rows: 3 });
  const send = h("button", { class: "primary", type: "submit", id: "send" }, "Send");
  const status = h("span", { class: "muted", id: "send-status" });
  const form = h("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); go(); } },
    text, h("div", { class: "row" }, status, h("span", { class: "spacer" }), send));
  text.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); go(); } });

  async function go() {
    const content = text.value;
    if (!content.trim()) return;
    send.disabled = true;
    fill(status, "sending…");
    let bubble = null, body = null;
    try {
      await stream("POST", base + "/messages", { content, stream: true }, (type, data) => {
        if (type === "user_message") {
          document.getElementById("empty")?.remove();
          add(data);
          text.value = "";
          bubble = h("article", { class: "msg assistant streaming", id: "streaming", dataset: { replyTo: data.id } },
            h("header", {}, h("span", { class: "role" }, "assistant"), badge("streaming…", "accent")));
          body = h("div", { class: "content" });
          bubble.append(body);
          conversation.append(bubble);
        } else if (type === "chunk" && body && bubble.isConnected) {
          body.append(document.createTextNode(data.text));
          bubble.scrollIntoView({ block: "nearest" });
        } else if (type === "assistant_message") {
          bubble?.remove();
          add(data);
        } else if (type === "error") {
          bubble?.remove();
          fill(status, errorBox(new Error(data.error ? data.error.message : pretty(data))));
        } else if (type === "done") {
          fill(status, `done · gateway ${Number(data.gateway_overhead_ms).toFixed(2)} ms`);
        }
      });
    } catch (e) {
      bubble?.remove();
      fill(status, errorBox(e));
    } finally {
      send.disabled = false;
      text.focus();
    }
  }
  return form;
}

// One message as a card: text, tool calls, the result it answers, parts.
export function messageCard(m) {
  const card = h("article", { class: "msg " + m.role, id: "m-" + m.id, dataset: { role: m.role } },
    h("header", {},
      h("span", { class: "role" }, m.role),
      m.tool_call_id ? badge("result of " + m.tool_call_id, "accent") : null,
      m.metadata?.provider ? badge(m.metadata.provider) : null,
      m.metadata?.response_time_ms !== undefined ? h("span", {}, Number(m.metadata.response_time_ms).toFixed(0) + " ms") : null,
      h("span", { class: "spacer" }),
      h("time", { datetime: m.timestamp, title: m.timestamp }, when(m.timestamp))));
  if (m.reasoning) card.append(h("details", {}, h("summary", {}, "thinking"), h("div", { class: "content" }, m.reasoning)));
  if (m.content) card.append(h("div", { class: "content" }, m.content));
  for (const call of m.tool_calls || [])
    card.append(h("div", { class: "call" }, h("span", { class: "muted" }, "calls "),
      h("span", { class: "name" }, call.name), h("span", { class: "muted mono" }, " " + (call.id || "")),
      h("pre", {}, prettyArguments(call.arguments))));
  const parts = (m.parts || []).filter((p) => p.type !== "text");
  if (parts.length) card.append(h("div", { class: "row attachment" }, parts.map(attachment)));
  const usage = m.provider_metadata?.usage;
  const meta = { ...m.metadata };
  if (usage) meta.usage = usage;
  if (m.provider_metadata?.finish_reason) meta.finish_reason = m.provider_metadata.finish_reason;
  if (Object.keys(meta).length)
    card.append(h("details", {}, h("summary", {}, "metadata"), kv(meta)));
  card.append(h("details", {}, h("summary", {}, "raw JSON"), h("pre", {}, JSON.stringify(m, null, 2))));
  return card;
}

function prettyArguments(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return String(text ?? ""); }
}

function attachment(part) {
  if (part.type === "image" && typeof part.url === "string" && part.url.startsWith("data:image/"))
    return h("figure", {}, h("img", { src: part.url, alt: "attached image" }));
  const label = part.type + (part.filename ? ": " + part.filename : "") + (part.media_type ? " (" + part.media_type + ")" : "");
  // Remote images are linked, not loaded: the console fetches nothing but the daemon.
  if (part.url && /^https?:/.test(part.url))
    return h("a", { href: part.url, target: "_blank", rel: "noopener noreferrer", class: "badge" }, label);
  return badge(label);
}
