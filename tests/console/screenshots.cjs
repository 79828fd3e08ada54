// The docs' screenshots (docs/console/*.png): each view at a laptop width
// and at a phone width, in light and dark. Run through run_console.py
// --screenshots DIR (tools/console-screenshots.sh), which seeds the daemon.
const path = require("node:path");
const fs = require("node:fs");
const { launch, newPage, signIn, go, apiCall, SEEDED } = require("./common.cjs");

const dir = process.env.SWH_SHOTS_DIR;

async function traffic() {
  // A few minutes' worth of figures would take minutes; a burst of sends
  // (one of them refused mid-stream by echo's fail_on hook) fills the charts.
  for (let i = 0; i < 40; i++) {
    await apiCall("POST", `/v1/sessions/${SEEDED.stream}/messages`, { content: `load ${i} ` + "word ".repeat(i % 7) });
    if (i % 10 === 0) await apiCall("GET", "/v1/sessions/no-such-session");
  }
  await apiCall("POST", `/v1/sessions/${SEEDED.stream}/messages`, { content: "__swh_fail_now__", stream: true });
}

// `tall`: the window grows to the whole page first (a full-page capture
// would paint the sticky message box in the middle of the conversation).
async function shoot(page, name, hash, selector, settle, tall = false) {
  await go(page, hash, selector);
  if (settle) await settle(page);
  const viewport = page.viewport();
  if (tall) {
    const height = await page.evaluate(() => document.documentElement.scrollHeight);
    await page.setViewport({ ...viewport, height: Math.min(height, 2400) });
  }
  await new Promise((r) => setTimeout(r, 400)); // fonts and the charts' first draw
  await page.screenshot({ path: path.join(dir, name + ".png") });
  if (tall) await page.setViewport(viewport);
  console.log("wrote", name + ".png");
}

(async () => {
  fs.mkdirSync(dir, { recursive: true });
  await traffic();
  const browser = await launch();
  try {
    for (const [suffix, width, height, scheme] of [["", 1280, 820, "light"], ["-dark", 1280, 820, "dark"], ["-phone", 390, 844, "light"]]) {
      const page = await newPage(browser, width, height);
      await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
      if (suffix === "") {
        await page.goto(process.env.SWH_BASE_URL + "/console", { waitUntil: "domcontentloaded" });
        await page.waitForSelector("#key");
        await page.screenshot({ path: path.join(dir, "signin.png") });
      }
      await signIn(page);
      await page.waitForSelector("#sessions tbody tr");
      await shoot(page, "sessions" + suffix, "#/sessions", "#sessions");
      await shoot(page, "session" + suffix, "#/sessions/" + SEEDED.tools, "#conversation .call",
        (p) => p.waitForFunction(() => document.querySelector("h1 .badge")?.textContent === "live"), suffix !== "-phone");
      if (suffix === "-dark") continue;
      await shoot(page, "plugins" + suffix, "#/plugins", "#plugins section");
      await shoot(page, "providers" + suffix, "#/providers", "#providers section");
      await shoot(page, "metrics" + suffix, "#/metrics", '[data-stat="requests"]');
      const manifest = process.env.SWH_MANIFEST;
      const good = fs.readFileSync(manifest, "utf8");
      try {
        fs.writeFileSync(manifest, good.replace("plugin: echo", "plugin: no_such_plugin"));
        await shoot(page, "manifest" + suffix, "#/manifest", "#reload", async (p) => {
          await p.click("#reload");
          await p.waitForSelector("#reload-result .error-box");
        });
      } finally {
        fs.writeFileSync(manifest, good);
      }
      await page.close();
    }
  } finally {
    await browser.close();
  }
})().catch((e) => { console.error(e); process.exit(1); });
