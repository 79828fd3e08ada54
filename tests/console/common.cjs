// What check_console.cjs and screenshots.cjs share: the browser, signing in,
// waiting for a view.
const puppeteer = require("puppeteer-core");

const BASE = process.env.SWH_BASE_URL;
const OPEN = process.env.SWH_OPEN_URL;
const ADMIN_KEY = process.env.SWH_ADMIN_KEY;
const USER_KEY = process.env.SWH_USER_KEY;
const SEEDED = JSON.parse(process.env.SWH_SEEDED || "{}");
const STEP_MS = 15000; // the longest any one wait may take

async function launch() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM,
    // --no-sandbox: chromium refuses to run as root with its sandbox.
    args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", "--metrics-recording-only"],
    headless: true,
    timeout: 60000,
  });
}

async function newPage(browser, width = 1280, height = 860) {
  const page = await browser.newPage();
  page.setDefaultTimeout(STEP_MS);
  await page.setViewport({ width, height, deviceScaleFactor: 1 });
  page.on("pageerror", (e) => console.error("page error:", e.message));
  return page;
}

async function signIn(page, key = ADMIN_KEY, base = BASE) {
  await page.goto(base + "/console", { waitUntil: "domcontentloaded" });
  await page.waitForSelector("#key");
  await page.type("#key", key);
  await page.keyboard.press("Enter");
}

// A page signed in with the admin key, the sessions list shown.
async function signedIn(browser, width, height) {
  const page = await newPage(browser, width, height);
  await signIn(page);
  await page.waitForSelector("#sessions tbody tr");
  return page;
}

async function go(page, hash, selector) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  if (selector) await page.waitForSelector(selector);
}

// The daemon's API from node (what another client does while the console looks).
async function apiCall(method, path, body, key = ADMIN_KEY) {
  const response = await fetch(BASE + path, {
    method, headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = (response.headers.get("content-type") || "").startsWith("application/json");
  return { status: response.status, headers: response.headers, body: json && text ? JSON.parse(text) : text };
}

module.exports = { launch, newPage, signIn, signedIn, go, apiCall, BASE, OPEN, ADMIN_KEY, USER_KEY, SEEDED, STEP_MS };
