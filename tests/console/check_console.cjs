// The console's checks against the real daemon (run by run_console.py):
// each step drives chromium as an operator would and asserts what shows.
const assert = require("node:assert/strict");
const fs = require("node:fs");
const { launch, newPage, signIn, signedIn, go, apiCall, BASE, OPEN, ADMIN_KEY, USER_KEY, SEEDED } = require("./common.cjs");

const XSS_MARK = "window.__swh_xss";
const checks = [];
const check = (name, fn) => checks.push({ name, fn });
const text = (page, selector) => page.$eval(selector, (el) => el.textContent);

check("assets are served without a key, with their types, CSP and ETag; the API still needs one", async () => {
  const index = await fetch(BASE + "/console");
  assert.equal(index.status, 200);
  assert.match(index.headers.get("content-type"), /^text\/html/);
  assert.match(index.headers.get("content-security-policy"), /script-src 'self'/);
  const html = await index.text();
  assert.match(html, /<script type="module" src="\/console\/js\/app.js">/);
  const js = await fetch(BASE + "/console/js/app.js");
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type"), /^text\/javascript/);
  const etag = js.headers.get("etag");
  assert.ok(etag, "an ETag");
  const again = await fetch(BASE + "/console/js/app.js", { headers: { "If-None-Match": etag } });
  assert.equal(again.status, 304);
  const missing = await fetch(BASE + "/console/nope.js");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "not_found");
  const post = await fetch(BASE + "/console", { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal((await fetch(BASE + "/v1/sessions")).status, 401, "the API itself needs a key");
});

check("sign in: an unknown key and a user's key are refused, an admin key lists the sessions", async (browser) => {
  const page = await newPage(browser);
  await signIn(page, "swhk-not-a-key");
  await page.waitForSelector(".error-box");
  assert.match(await text(page, ".error-box"), /does not know that key/);
  await page.type("#key", USER_KEY);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /not an admin key/.test(document.querySelector(".error-box")?.textContent || ""));
  await page.type("#key", ADMIN_KEY);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#sessions tbody tr");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("swarmhost.console.key")), ADMIN_KEY);
  assert.ok(!page.url().includes(ADMIN_KEY), "the key is never in the URL");
  const ids = await page.$$eval("#sessions tbody tr", (rows) => rows.map((r) => r.dataset.id));
  for (const id of [SEEDED.tools, SEEDED.image, SEEDED.xss]) assert.ok(ids.includes(id), `session ${id} listed`);
  await page.close();
});

check("sessions: filters by status and user page through the daemon, search by id opens one", async (browser) => {
  const page = await signedIn(browser);
  await page.select("#f-status", "archived");
  await page.click("form.filters button[type=submit]");
  await page.waitForFunction((id) => {
    const rows = [...document.querySelectorAll("#sessions tbody tr")];
    return rows.length === 1 && rows[0].dataset.id === id;
  }, {}, SEEDED.archived);
  await page.select("#f-status", "");
  await page.type("#f-user", "ann");
  await page.click("form.filters button[type=submit]");
  await page.waitForFunction(() => {
    const users = [...document.querySelectorAll("#sessions tbody tr td:nth-child(2)")].map((td) => td.textContent);
    return users.length >= 2 && users.every((u) => u === "ann");
  });
  // Type and provider: filtered by the daemon, with paging counting matches.
  const rowsFor = async (field, value) => {
    await page.$eval("#f-user", (i) => { i.value = ""; });
    for (const id of ["#f-type", "#f-provider"]) await page.$eval(id, (i) => { i.value = ""; });
    await page.type(field, value);
    await page.click("form.filters button[type=submit]");
    const param = field === "#f-type" ? "type" : "provider";
    await page.waitForFunction((p, v) => new URLSearchParams(document.getElementById("sessions-result")?.dataset.query)
      .get(p) === v, {}, param, value);
    return page.$$eval("#sessions tbody tr", (rows) => rows.map((r) => r.dataset.id));
  };
  assert.deepEqual(await rowsFor("#f-provider", "backup"), [SEEDED.backup]);
  assert.deepEqual(await rowsFor("#f-type", "collaborative"), [SEEDED.collaborative]);
  const plain = await rowsFor("#f-type", "plain");
  assert.ok(plain.includes(SEEDED.tools) && !plain.includes(SEEDED.collaborative), plain.join());
  // limit and offset count matching sessions, not the store's rows.
  const page2 = await apiCall("GET", "/v1/sessions?type=plain&limit=2&offset=1");
  assert.deepEqual(page2.body.sessions.map((s) => s.id), plain.slice(1, 3));
  assert.equal((await apiCall("GET", "/v1/sessions?provider=nope")).body.sessions.length, 0);
  await page.keyboard.press("/"); // focus is on the Filter button: "/" is a shortcut there
  assert.equal(await page.evaluate(() => document.activeElement.id), "search", "/ focuses the search");
  await page.keyboard.type(SEEDED.image);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#conversation article.msg.user`);
  assert.ok(page.url().endsWith("#/sessions/" + SEEDED.image));
  await page.close();
});

check("one session: tool call, tool result, attachment and metadata are rendered", async (browser) => {
  const page = await signedIn(browser);
  await go(page, "#/sessions/" + SEEDED.tools, "#conversation .call");
  assert.equal(await text(page, "#conversation .call .name"), "get_weather");
  assert.match(await text(page, "#conversation .call pre"), /"city": /);
  const result = await page.$eval("#conversation article.msg.tool", (el) => el.textContent);
  assert.ok(result.includes("result of " + SEEDED.tool_call_id), result);
  assert.ok(result.includes('"temperature_c": 21'), result);
  const side = await page.$eval("aside", (el) => el.textContent);
  assert.match(side, /Weather in Lisbon/);
  assert.match(side, /support/);
  const summaries = await page.$$eval("#conversation details summary", (s) => s.map((x) => x.textContent));
  assert.ok(summaries.includes("metadata"), "messages carry their metadata");
  await go(page, "#/sessions/" + SEEDED.image, "#conversation .attachment img");
  assert.match(await page.$eval("#conversation .attachment img", (img) => img.src), /^data:image\/png;base64,/);
  await page.close();
});

check("a message carrying markup renders as text and runs nothing", async (browser) => {
  const page = await signedIn(browser);
  await page.waitForSelector(`#sessions tbody tr[data-id="${SEEDED.xss}"]`);
  const title = await page.$eval(`#sessions tbody tr[data-id="${SEEDED.xss}"] td:first-child div`, (d) => d.textContent);
  assert.ok(title.includes("<script>"), "the title shows its markup as text");
  await go(page, "#/sessions/" + SEEDED.xss, "#conversation article.msg.user");
  const content = await page.$eval("#conversation article.msg.user .content", (el) => el.textContent);
  assert.ok(content.startsWith("<script>" + XSS_MARK + " = 1</script><img src=x onerror="), content);
  assert.equal(await page.$$eval("#conversation script, #conversation img[src=x], aside script", (e) => e.length), 0);
  assert.equal(await page.evaluate(() => window.__swh_xss), undefined, "no injected script ran");
  await page.close();
});

check("send: the reply streams in piece by piece; another client's message arrives live", async (browser) => {
  const page = await signedIn(browser);
  await go(page, "#/sessions/" + SEEDED.stream, "#compose");
  await page.waitForFunction(() => document.querySelector("h1 .badge")?.textContent === "live");
  // Record what the conversation goes through: the streaming bubble and
  // each piece of text added to it before the stored reply replaces it.
  await page.evaluate(() => {
    window.__pieces = [];
    window.__bubble = false;
    new MutationObserver((records) => {
      for (const r of records) {
        for (const node of r.addedNodes) {
          if (node.id === "streaming") window.__bubble = true;
          if (node.nodeType === Node.TEXT_NODE && r.target.closest?.("#streaming")) window.__pieces.push(node.data);
        }
      }
    }).observe(document.getElementById("conversation"), { childList: true, subtree: true });
  });
  const words = "alpha beta gamma delta epsilon zeta eta theta";
  await page.type("#compose", words);
  await page.keyboard.down("Control");
  await page.keyboard.press("Enter");
  await page.keyboard.up("Control");
  await page.waitForFunction((w) => [...document.querySelectorAll("#conversation article.msg.assistant:not(.streaming) .content")]
    .some((c) => c.textContent.endsWith(w)), {}, words);
  assert.equal(await page.$("#streaming"), null, "the stored reply replaced the streaming bubble");
  const pieces = await page.evaluate(() => window.__pieces);
  assert.ok(await page.evaluate(() => window.__bubble), "a streaming bubble was shown");
  assert.ok(pieces.length >= 4, "the reply arrived in pieces: " + JSON.stringify(pieces));
  assert.ok(words.endsWith(pieces[pieces.length - 1].trim()), JSON.stringify(pieces));
  assert.match(await text(page, "#send-status"), /done · gateway/);
  // Another client sends to the same session: the page shows it unasked.
  const sent = await apiCall("POST", `/v1/sessions/${SEEDED.stream}/messages`, { content: "from another client" });
  assert.equal(sent.status, 201);
  await page.waitForSelector(`#m-${sent.body.assistant_message.id}`);
  assert.ok(await page.$(`#m-${sent.body.user_message.id}`));
  await page.close();
});

check("plugins: every instance with kind, version, ABI, health and its config schema", async (browser) => {
  const page = await signedIn(browser);
  await page.keyboard.press("2");
  await page.waitForSelector('#plugins [data-instance="echo"]');
  const card = await page.$eval('#plugins [data-instance="echo"]', (el) => el.textContent);
  assert.match(card, /provider/);
  assert.match(card, /healthy/);
  assert.match(card, /ABI/);
  await page.$eval('#plugins [data-instance="echo"] details.schema-box', (d) => { d.open = true; });
  const keys = await page.$$eval('#plugins [data-instance="echo"] table.schema tbody td:first-child', (t) => t.map((x) => x.textContent));
  for (const key of ["prefix", "chunk_words", "fail_on"]) assert.ok(keys.includes(key), `schema lists ${key}: ${keys}`);
  const kinds = await page.$$eval("#plugins section .badge.accent", (b) => b.map((x) => x.textContent));
  assert.ok(kinds.includes("storage") && kinds.includes("provider"), kinds.join());
  await page.close();
});

check("providers: metadata shown, runtime config changed through PATCH, a refused key shows its error", async (browser) => {
  const page = await signedIn(browser);
  await page.keyboard.press("3");
  await page.waitForSelector('#providers [data-provider="echo"] textarea');
  const sel = '#providers [data-provider="echo"]';
  await page.type(sel + " textarea", '{"prefix": "ECHO2"}');
  await page.click(sel + " button[type=submit]");
  await page.waitForFunction((s) => document.querySelector(s + " dl.kv")?.textContent.includes("ECHO2"), {}, sel);
  const provider = await apiCall("GET", "/v1/providers/echo");
  assert.equal(provider.body.metadata.prefix, "ECHO2");
  await page.$eval(sel + " textarea", (t) => { t.value = ""; });
  await page.type(sel + " textarea", '{"no_such_setting": 1}');
  await page.click(sel + " button[type=submit]");
  await page.waitForSelector(sel + " .error-box");
  assert.match(await text(page, sel + " .error-box"), /no_such_setting/);
  assert.equal((await apiCall("PATCH", "/v1/providers/echo", { prefix: "echo" })).status, 200);
  await page.close();
});

check("metrics: the daemon's own traffic drawn over the last minutes", async (browser) => {
  const page = await signedIn(browser);
  await page.keyboard.press("4");
  await page.waitForSelector('[data-stat="requests"] .stat');
  const requests = Number(await text(page, '[data-stat="requests"] .stat'));
  assert.ok(requests > 10, "requests counted: " + requests);
  const tokens = Number(await text(page, '[data-stat="tokens"] .stat'));
  assert.ok(tokens > 0, "tokens counted: " + tokens);
  // Something was drawn on the request chart: not every pixel is blank.
  const inked = await page.$eval("#chart-rps", (c) => {
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return n;
  });
  assert.ok(inked > 100, "pixels drawn: " + inked);
  const series = await apiCall("GET", "/v1/admin/traffic?seconds=60&step=5");
  assert.equal(series.body.points.length, 12);
  assert.equal((await apiCall("GET", "/v1/admin/traffic", undefined, USER_KEY)).status, 403);
  assert.equal((await apiCall("GET", "/v1/admin/traffic?step=0")).status, 400);
  await page.close();
});

check("manifest: a broken manifest's check and reload show file:line:col and the old pipeline keeps serving", async (browser) => {
  const manifest = process.env.SWH_MANIFEST;
  const good = fs.readFileSync(manifest, "utf8");
  const lines = good.split("\n");
  const at = lines.findIndex((l) => l.trim() === "plugin: echo");
  assert.ok(at >= 0, "the test manifest names the echo plugin");
  lines[at] = lines[at].replace("plugin: echo", "plugin: no_such_plugin");
  // The daemon names the provider entry the plugin is missing for: its
  // "- name: echo" line, at the column of the entry's first key.
  const entry = at - 1;
  assert.match(lines[entry], /- name: echo$/);
  const where = `${manifest}:${entry + 1}:${lines[entry].indexOf("name: echo") + 1}`;
  const page = await signedIn(browser);
  try {
    fs.writeFileSync(manifest, lines.join("\n"));
    await page.keyboard.press("5");
    await page.waitForSelector("#check");
    // Check first: the same error, nothing applied.
    await page.click("#check");
    await page.waitForSelector("#reload-result .error-box");
    assert.equal(await text(page, "#where"), where);
    assert.match(await text(page, "#reload-result .error-box strong"), /would refuse/);
    const checked = await apiCall("POST", "/v1/admin/manifest/check");
    assert.equal(checked.status, 400);
    assert.match(checked.body.error.message, /no_such_plugin/);
    assert.equal((await apiCall("POST", "/v1/admin/manifest/check", undefined, USER_KEY)).status, 403);
    await page.click("#reload");
    await page.waitForSelector("#reload-result .error-box strong");
    await page.waitForFunction(
      () => /keeps serving/.test(document.querySelector("#reload-result .error-box strong")?.textContent || ""));
    await page.waitForSelector("#reload-result .error-box");
    assert.equal(await text(page, "#where"), where);
    assert.match(await text(page, "#reload-result pre"), /no_such_plugin/);
  } finally {
    fs.writeFileSync(manifest, good);
  }
  const s = await apiCall("POST", "/v1/sessions", { user_id: "ann" });
  assert.equal(s.status, 201, "still serving");
  await page.click("#check");
  await page.waitForSelector("#reload-result .ok-box");
  assert.match(await text(page, "#reload-result .ok-box"), /nothing was applied/);
  const sound = await apiCall("POST", "/v1/admin/manifest/check");
  assert.equal(sound.status, 200);
  assert.equal(sound.body.status, "ok");
  assert.ok(sound.body.storage, "names its storage plugin");
  assert.equal(sound.body.providers, 2, "echo and backup");
  await page.click("#reload");
  await page.waitForFunction(() => /Reloaded: generation \d+/.test(document.querySelector("#reload-result .ok-box")?.textContent || ""));
  await page.close();
});

check("archive and delete from the session view", async (browser) => {
  const created = await apiCall("POST", "/v1/sessions", { user_id: "zoe", metadata: { title: "to delete" } });
  const id = created.body.id;
  const page = await signedIn(browser);
  page.on("dialog", (d) => d.accept()); // Delete asks first
  await go(page, "#/sessions/" + id, "#archive");
  // Clicked inside the page in one step: the session's live events re-render
  // the side panel (its buttons too) at any moment.
  await page.$eval("#archive", (b) => b.click());
  await page.waitForFunction(() => document.querySelector("#archive")?.disabled);
  assert.equal((await apiCall("GET", "/v1/sessions/" + id)).body.status, "archived");
  await page.$eval("#delete", (b) => b.click());
  await page.waitForFunction(() => location.hash === "#/sessions");
  assert.equal((await apiCall("GET", "/v1/sessions/" + id)).status, 404);
  await page.close();
});

check("auth: none on loopback opens directly, no sign-in", async (browser) => {
  const page = await newPage(browser);
  await page.goto(OPEN + "/console", { waitUntil: "domcontentloaded" });
  await page.waitForSelector("main h1");
  await page.waitForFunction(() => document.querySelector("#who")?.textContent.includes("auth: none"));
  assert.equal(await page.$("#key"), null);
  assert.equal(await text(page, "main h1"), "Sessions");
  await page.close();
});

check("phone width: no view scrolls sideways", async (browser) => {
  const page = await signedIn(browser, 390, 844);
  for (const [hash, selector] of [["#/sessions", "#sessions"], ["#/sessions/" + SEEDED.tools, "#conversation .call"],
    ["#/plugins", "#plugins section"], ["#/providers", "#providers section"], ["#/metrics", "#chart-rps"],
    ["#/manifest", "#reload"]]) {
    await go(page, hash, selector);
    const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    assert.ok(scroll <= client, `${hash}: page is ${scroll}px wide in a ${client}px window`);
  }
  await page.close();
});

(async () => {
  const browser = await launch();
  let failed = 0;
  try {
    for (const [i, { name, fn }] of checks.entries()) {
      try {
        await fn(browser);
        console.log(`ok ${i + 1} - ${name}`);
      } catch (e) {
        failed++;
        console.log(`not ok ${i + 1} - ${name}\n  ${String(e.stack || e).split("\n").join("\n  ")}`);
      }
    }
  } finally {
    await browser.close();
  }
  console.log(`${checks.length - failed}/${checks.length} console checks passed`);
  process.exit(failed ? 1 : 0);
})();
