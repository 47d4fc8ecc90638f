// The dashboard page in a real browser (Debian's /usr/bin/chromium through playwright-core).
//
//   node tests/browser/dashboard.mjs <base url> <token> <expected.json> <screenshot.png>
//
// expected.json: {"total": N, "by_state": {"<state>": N, ...}, "more": true|false}
// Steps, each failing with a message naming what differed:
//  1. opens <url>/dashboard/#token=<token>, waits for every chart (body[data-loaded="true"]);
//     the token must have left the address bar; the "total" figure must equal `total`; the
//     by_state chart must have drawn exactly `by_state` (read from the table beside the chart,
//     which the page fills from what ECharts holds);
//  2. if `more` is true: sets the refresh to 2 s, prints "waiting for more events" on stdout and
//     reads one line of JSON from stdin: the expectations after the caller published more events
//     ({"total", "by_state", "state", "state_total", "from", "to", "range_total"}); then, without
//     touching the page, waits for auto-refresh to show the new total and by_state;
//  3. selects `state` in the state filter: the total must become `state_total` and by_state must
//     show that state only;
//  4. clears the state, sets the date range from..to: the total must become `range_total`;
//  5. clears the filters, waits for the load and saves a full-page screenshot.
// Any page error or failed request of the page's own files fails the run.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [url, token, expectedFile, screenshot] = process.argv.slice(2);
if (!screenshot) {
  console.error("usage: node dashboard.mjs <base url> <token> <expected.json> <screenshot.png>");
  process.exit(2);
}
const expected = JSON.parse(readFileSync(expectedFile, "utf8"));
const LOAD_TIMEOUT = 60_000;

class Mismatch extends Error {}
const fail = (msg) => { throw new Mismatch(msg); };
const log = (msg) => console.log(msg);

const profile = mkdtempSync(join(tmpdir(), "divoc-dashboard-chromium-"));
let context;
let exitCode = 0;
const problems = [];
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1440, height: 900 },
    locale: "en-US",
    timezoneId: "UTC",
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") problems.push("console error: " + m.text()); });
  page.on("requestfailed", (r) => problems.push("request failed: " + r.url() + " " + (r.failure() || {}).errorText));
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.request().method()} ${r.url()}`); });
  const checkProblems = () => { if (problems.length) fail(problems.join("\n")); };

  // Waits for a completed load (after generation `after`) whose filters are `filters`.
  const waitLoaded = async (after, filters, what) => {
    try {
      await page.waitForFunction(([after, filters]) => {
        const b = document.body.dataset;
        if (b.loaded === "error") return true;
        if (b.loaded !== "true" || Number(b.generation) <= after) return false;
        return Object.entries(filters).every(([k, v]) => (b["filter" + k[0].toUpperCase() + k.slice(1)] || "") === v);
      }, [after, filters], { timeout: LOAD_TIMEOUT, polling: 100 });
    } catch (e) {
      fail(`${what}: the page did not finish loading in ${LOAD_TIMEOUT / 1000} s (status: ${await page.textContent("#status")}; error: ${await page.textContent("#error")})`);
    }
    const state = await page.evaluate(() => ({ loaded: document.body.dataset.loaded, generation: Number(document.body.dataset.generation) }));
    if (state.loaded === "error") fail(`${what}: the page reports errors: ${await page.textContent("#error")}`);
    checkProblems();
    return state.generation;
  };
  const generation = () => page.evaluate(() => Number(document.body.dataset.generation));
  const total = async () => Number(await page.getAttribute("#total", "data-value"));
  const byState = () => page.$$eval('table.chart-data[data-query="by_state"] tbody tr', (rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.category, Number(r.querySelector("td").dataset.value)])));
  const sameMap = (got, want, what) => {
    const keys = [...new Set([...Object.keys(got), ...Object.keys(want)])].sort();
    const diff = keys.filter((k) => got[k] !== want[k]).map((k) => `  ${k}: page ${got[k] ?? "(missing)"}, expected ${want[k] ?? "(missing)"}`);
    if (diff.length) fail(`${what} differ:\n${diff.join("\n")}`);
  };
  const expectTotal = async (want, what) => {
    const got = await total();
    if (got !== want) fail(`${what}: the total figure shows ${got}, expected ${want}`);
    const shown = (await page.textContent("#total")).replace(/[^0-9]/g, "");
    if (shown !== String(want)) fail(`${what}: the total figure's text is ${shown}, expected ${want}`);
  };

  // 1. the first load
  await page.goto(`${url}/dashboard/#token=${encodeURIComponent(token)}`);
  let gen = await waitLoaded(0, {}, "first load");
  if (page.url().includes(token)) fail(`the token is still in the address bar: ${page.url()}`);
  const cards = await page.$$eval("[data-query]", (els) => els.filter((e) => e.tagName === "ARTICLE").map((e) => e.dataset.query + ":" + e.dataset.state));
  log(`loaded ${cards.length} charts: ${cards.join(", ")}`);
  if (!cards.includes("total:ok") || !cards.includes("by_state:ok")) fail(`charts total and by_state must be rendered, got ${cards.join(", ")}`);
  await expectTotal(expected.total, "first load");
  sameMap(await byState(), expected.by_state, "first load: by_state bars");
  const stateOptions = await page.$$eval("#filter-state option", (os) => os.map((o) => o.value).filter(Boolean));
  sameMap(Object.fromEntries(stateOptions.map((s) => [s, true])), Object.fromEntries(Object.keys(expected.by_state).filter((s) => s !== "(none)").map((s) => [s, true])), "state filter choices");
  log(`first load: total ${expected.total}, ${Object.keys(expected.by_state).length} states`);

  // 2. new events appear by themselves
  let after = expected;
  if (expected.more) {
    await page.fill("#refresh-seconds", "2");
    await page.dispatchEvent("#refresh-seconds", "change");
    log("waiting for more events");
    const rl = createInterface({ input: process.stdin });
    const line = await new Promise((resolve, reject) => {
      rl.once("line", resolve);
      rl.once("close", () => reject(new Mismatch("stdin closed before the second expectations")));
    });
    rl.close();
    after = JSON.parse(line);
    const started = Date.now();
    try {
      await page.waitForFunction((want) => document.getElementById("total").dataset.value === String(want), after.total, { timeout: 30_000, polling: 200 });
    } catch (e) {
      fail(`auto-refresh: the total stayed ${await total()} for 30 s, expected ${after.total}`);
    }
    gen = await waitLoaded(gen, {}, "auto-refresh");
    // The load that showed the new total may have been before the last barrier; take the next one.
    gen = await waitLoaded(gen, {}, "auto-refresh");
    await expectTotal(after.total, "after auto-refresh");
    sameMap(await byState(), after.by_state, "after auto-refresh: by_state bars");
    log(`auto-refresh showed the new total ${after.total} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    await page.uncheck("#auto-refresh");
  }

  // 3. a state
  gen = await generation();
  await page.selectOption("#filter-state", after.state);
  gen = await waitLoaded(gen, { state: after.state }, `state filter ${after.state}`);
  await expectTotal(after.state_total, `state filter ${after.state}`);
  sameMap(await byState(), { [after.state]: after.state_total }, `state filter ${after.state}: by_state bars`);
  log(`state ${after.state}: total ${after.state_total}`);

  // 4. a date range
  await page.selectOption("#filter-state", "");
  gen = await waitLoaded(gen, { state: "" }, "state filter cleared");
  await page.fill("#filter-from", after.from);
  await page.dispatchEvent("#filter-from", "change");
  gen = await waitLoaded(gen, { from: after.from }, "from date");
  await page.fill("#filter-to", after.to);
  await page.dispatchEvent("#filter-to", "change");
  gen = await waitLoaded(gen, { from: after.from, to: after.to }, "date range");
  await expectTotal(after.range_total, `dates ${after.from}..${after.to}`);
  log(`dates ${after.from}..${after.to}: total ${after.range_total}`);

  // 5. everything, for the picture (with the default refresh settings)
  if (expected.more) {
    await page.fill("#refresh-seconds", "10");
    await page.check("#auto-refresh");
  }
  await page.click("#filter-clear");
  gen = await waitLoaded(gen, { from: "", to: "", state: "" }, "filters cleared");
  await expectTotal(after.total, "filters cleared");
  await page.screenshot({ path: screenshot, fullPage: true });
  checkProblems();
  log(`screenshot: ${screenshot}`);
  log("dashboard ok");
} catch (e) {
  exitCode = 1;
  console.error(e instanceof Mismatch ? `dashboard check failed: ${e.message}` : `dashboard check failed: ${e.stack || e}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
