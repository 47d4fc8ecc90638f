// The certificate verify page in a real browser (Debian's /usr/bin/chromium through playwright-core).
//
//   node tests/browser/verify-page.mjs <base url> <cases.json> [screenshot.png]
//
// cases.json: [{"name": "...", "paste": "<text>" | null, "image": "<path to a PNG>" | null,
//               "expect": "VALID" | "REVOKED" | "SUSPENDED" | "INVALID"}]
// Steps, each failing with a message naming what differed:
//  1. opens <url>/verify and waits until #trust-status reports keys fetched from the server;
//  2. online: runs every case (paste: fills #payload and clicks #verify-text; image: sets the file
//     of #image), waits for a new result in #result and compares its data-outcome; every result
//     must be reported with one POST /verify/v1/outcomes whose body is exactly
//     {outcome, format, reason} (no name, id or payload);
//  3. offline: cuts the network to the server (context.setOffline(true) and every request
//     aborted, the service worker's included) and runs every case again: the page decides with
//     what it fetched before;
//  4. still offline, reloads the page: the service worker must serve it, #trust-status must say
//     it uses cached keys, and the first case must decide as expected.
// Prints one JSON line {"online": [...], "offline": [...], "reloadOffline": {...}, ...}; exits 1
// on any mismatch (the reasons on stderr), 0 otherwise. With a third argument, saves a screenshot
// of the last VALID result there.

import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [baseArg, casesFile, screenshot] = process.argv.slice(2);
if (!baseArg || !casesFile) {
  console.error("usage: node verify-page.mjs <base url> <cases.json> [screenshot.png]");
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, "");
const OUTCOMES = ["VALID", "REVOKED", "SUSPENDED", "INVALID"];
const cases = JSON.parse(readFileSync(casesFile, "utf8"));
if (!Array.isArray(cases) || cases.length === 0) {
  console.error(`${casesFile}: expected a non-empty JSON array of cases`);
  process.exit(2);
}
for (const c of cases) {
  const ok = c && typeof c.name === "string" && OUTCOMES.includes(c.expect) &&
    ((typeof c.paste === "string") !== (typeof c.image === "string"));
  if (!ok) {
    console.error(`${casesFile}: bad case ${JSON.stringify(c)}: needs name, expect (${OUTCOMES.join("|")}) and one of paste/image`);
    process.exit(2);
  }
  if (c.image && !existsSync(c.image)) {
    console.error(`${casesFile}: case ${c.name}: image ${c.image} does not exist`);
    process.exit(2);
  }
}

const LOAD_TIMEOUT = 30_000;
const RESULT_TIMEOUT = 30_000;
class Mismatch extends Error {}
const fail = (msg) => { throw new Mismatch(msg); };

const profile = mkdtempSync(join(tmpdir(), "divoc-verify-chromium-"));
let context;
let exitCode = 0;
const mismatches = [];
const summary = { online: [], offline: [], reloadOffline: null, outcomesPosted: 0 };
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 900, height: 1000 },
    locale: "en-US",
    timezoneId: "UTC",
    serviceWorkers: "allow",
  });
  const page = context.pages()[0] || (await context.newPage());

  let offline = false;
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    // Offline, the browser logs each refused request (the outcome reports) as an error: expected.
    if (m.type() === "error" && !(offline && /Failed to load resource|ERR_INTERNET_DISCONNECTED|ERR_FAILED/.test(m.text()))) {
      problems.push("console error: " + m.text());
    }
  });
  page.on("response", (r) => {
    if (r.status() >= 400 && !r.url().endsWith("/favicon.ico")) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`);
  });
  const checkProblems = (when) => {
    if (problems.length) fail(`${when}:\n  ${problems.splice(0).join("\n  ")}`);
  };

  // What the page reports: every POST of an outcome, checked for its shape.
  const reports = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === "/verify/v1/outcomes") {
      let body;
      try { body = JSON.parse(r.postData() || ""); } catch { body = r.postData(); }
      reports.push({ body, offline });
    }
  });

  const waitTrust = async (source, what) => {
    try {
      await page.waitForFunction((want) => document.body.dataset.trust === want || document.body.dataset.trust === "none",
        source, { timeout: LOAD_TIMEOUT, polling: 100 });
    } catch {
      fail(`${what}: the page did not load its keys in ${LOAD_TIMEOUT / 1000} s (#trust-status: ${await page.textContent("#trust-status")})`);
    }
    const status = await page.textContent("#trust-status");
    const got = await page.evaluate(() => document.body.dataset.trust);
    if (got !== source) fail(`${what}: expected keys ${source === "fresh" ? "fetched from the server" : "from the cache"}, #trust-status says: ${status}`);
    return status;
  };

  // Runs one case; returns {name, expect, got, text, ok}.
  const runCase = async (c, phase) => {
    const before = await page.evaluate(() => Number(document.getElementById("result").dataset.seq || 0));
    if (c.paste !== null && c.paste !== undefined) {
      await page.fill("#payload", c.paste);
      await page.click("#verify-text");
    } else {
      await page.setInputFiles("#image", c.image);
    }
    try {
      await page.waitForFunction((before) => {
        const r = document.getElementById("result");
        return Number(r.dataset.seq || 0) > before && r.hasAttribute("data-outcome");
      }, before, { timeout: RESULT_TIMEOUT, polling: 50 });
    } catch {
      fail(`${phase}: case "${c.name}": no result within ${RESULT_TIMEOUT / 1000} s (#result: ${await page.textContent("#result")})`);
    }
    const got = await page.getAttribute("#result", "data-outcome");
    const text = (await page.textContent("#result")).trim();
    const entry = { name: c.name, expect: c.expect, got, text, ok: got === c.expect };
    if (!entry.ok) mismatches.push(`${phase}: case "${c.name}": expected ${c.expect}, the page shows ${text}`);
    if (got === "VALID" && screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    return entry;
  };

  // 1. the first load
  const first = await page.goto(`${base}/verify`);
  if (!first || !first.ok()) fail(`GET ${base}/verify: HTTP ${first ? first.status() : "no response"}`);
  const onlineStatus = await waitTrust("fresh", "first load");
  console.error(`loaded: ${onlineStatus}`);
  checkProblems("first load");

  // 2. online
  for (const c of cases) summary.online.push(await runCase(c, "online"));
  // Reports are sent without waiting for them; give the last one a moment to leave.
  const deadline = Date.now() + 5_000;
  while (reports.filter((r) => !r.offline).length < cases.length && Date.now() < deadline) await page.waitForTimeout(100);
  const onlineReports = reports.filter((r) => !r.offline);
  summary.outcomesPosted = onlineReports.length;
  if (onlineReports.length !== cases.length) {
    mismatches.push(`online: ${onlineReports.length} outcome reports were POSTed for ${cases.length} results`);
  }
  onlineReports.forEach((r, i) => {
    const body = r.body;
    const keys = body && typeof body === "object" ? Object.keys(body).sort().join(",") : "";
    if (keys !== "format,outcome,reason") mismatches.push(`outcome report ${i + 1}: body must be exactly {outcome, format, reason}, got ${JSON.stringify(body)}`);
    else if (body.outcome !== summary.online[i].got) mismatches.push(`outcome report ${i + 1}: reports ${body.outcome}, the page showed ${summary.online[i].got}`);
    else if (body.reason !== null && !/^[a-z0-9-]{1,40}$/.test(body.reason)) mismatches.push(`outcome report ${i + 1}: reason must be a short code, got ${JSON.stringify(body.reason)}`);
  });
  checkProblems("online");

  // The service worker must be installed (with the page and its script cached) before going offline.
  const worker = await page.evaluate(async () => {
    if (!("serviceWorker" in navigator)) return { error: "no service worker support" };
    const registration = await Promise.race([
      navigator.serviceWorker.getRegistration("/verify"),
      new Promise((resolve) => setTimeout(() => resolve(null), 10_000)),
    ]);
    if (!registration) return { error: "no service worker registered for /verify (does /verify/sw.js answer with Service-Worker-Allowed: /verify?)" };
    const started = Date.now();
    while (!registration.active && Date.now() - started < 15_000) await new Promise((r) => setTimeout(r, 100));
    if (!registration.active) return { error: "the service worker never became active" };
    while (Date.now() - started < 15_000) {
      if ((await caches.match("/verify")) && (await caches.match("/verify/app.js"))) return { scope: registration.scope };
      await new Promise((r) => setTimeout(r, 100));
    }
    return { error: "the service worker did not cache /verify and /verify/app.js" };
  });
  if (worker.error) fail(`service worker: ${worker.error}`);

  // 3. offline: nothing reaches the server any more, neither from the page nor from its worker
  offline = true;
  await context.setOffline(true);
  await context.route("**", (route) => route.abort("internetdisconnected"));
  await page.route("**", (route) => route.abort("internetdisconnected"));
  for (const c of cases) summary.offline.push(await runCase(c, "offline"));
  checkProblems("offline");

  // 4. offline reload: the service worker brings the page back, the keys come from the cache
  const reloaded = await page.reload({ waitUntil: "load" }).catch((e) => fail(`offline reload failed: ${e.message}`));
  const servedByServiceWorker = Boolean(reloaded && reloaded.fromServiceWorker());
  const reloadStatus = await waitTrust("cached", "offline reload");
  if (!/offline/i.test(reloadStatus)) mismatches.push(`offline reload: #trust-status should say it is offline, says: ${reloadStatus}`);
  if (!servedByServiceWorker) mismatches.push("offline reload: the page was not served by the service worker");
  const again = await runCase(cases[0], "offline reload");
  summary.reloadOffline = { ...again, servedByServiceWorker, trustStatus: reloadStatus };
  checkProblems("offline reload");
} catch (e) {
  mismatches.push(e instanceof Mismatch ? e.message : (e.stack || String(e)));
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(summary));
if (mismatches.length) {
  exitCode = 1;
  console.error(`verify page check failed:\n  ${mismatches.join("\n  ")}`);
} else {
  console.error(`verify page ok: ${summary.online.length} cases online, ${summary.offline.length} offline, offline reload ${summary.reloadOffline.got}`);
}
process.exit(exitCode);
