// The certificates dashboard: one chart per named query of `divoc serve` (GET /api/dashboard),
// filters bound as query parameters, optional auto-refresh. No build step, no framework.
//
// What tests and scripts can read (stable):
//   body[data-loaded]        "false" while loading, "true" once every chart rendered, "error"
//   body[data-generation]    completed loads so far
//   body[data-filter-*]      from, to, tenant, state, vaccine of the last completed load
//   [data-query=<name>]      each chart's card (data-chart, data-state="ok|error|empty")
//   #<name> (number charts)  the figure, with data-value (the raw number)
//   table.chart-data         beside each chart: the categories and values the chart drew
// Text from the data goes into the page with textContent only.
"use strict";

(() => {
  const TOKEN_KEY = "divoc.dashboard.token";
  const REFRESH_KEY = "divoc.dashboard.refresh";
  const FILTERS = ["from", "to", "tenant", "state", "vaccine"];
  // The dropdowns' choices; certificate_counts is the small rollup table.
  const CHOICES = {
    tenant: "SELECT DISTINCT tenant AS v FROM certificate_counts WHERE tenant IS NOT NULL ORDER BY 1",
    state: "SELECT DISTINCT state AS v FROM certificate_counts WHERE state IS NOT NULL ORDER BY 1",
    vaccine: "SELECT DISTINCT vaccine AS v FROM certificate_counts WHERE vaccine IS NOT NULL ORDER BY 1",
  };
  const COLORS = ["#2f6fb0", "#e08a2c", "#3a9d6a", "#c2474f", "#7b5ea7", "#8c6d4f", "#d46fb0", "#6b7a8f", "#b8b13a", "#3bb3c4"];
  const $ = (id) => document.getElementById(id);
  const numberFormat = new Intl.NumberFormat(undefined);

  let token = "";
  let queries = null; // [{name, title, chart}]
  const charts = new Map(); // name -> {card, chart (echarts) | figure}
  let generation = 0; // loads started; answers of older loads are dropped
  let timer = null;
  let inFlight = false;

  // ---- token: the URL fragment first (then removed from the address bar), else localStorage ----
  function readToken() {
    const hash = new URLSearchParams(location.hash.replace(/^#/, ""));
    const fromHash = hash.get("token");
    if (fromHash) {
      try { localStorage.setItem(TOKEN_KEY, fromHash); } catch (_) { /* private mode */ }
      hash.delete("token");
      const rest = hash.toString();
      history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
      return fromHash;
    }
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (_) { return ""; }
  }

  // ---- API ----
  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(path, body) {
    const init = { headers: { Authorization: "Bearer " + token, Accept: "application/json" }, cache: "no-store" };
    if (body !== undefined) {
      init.method = "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "NETWORK", "cannot reach the server (" + e.message + ")");
    }
    let json = null;
    try { json = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) {
      const err = (json && json.error) || {};
      throw new ApiError(res.status, err.code || "HTTP_" + res.status, err.message || res.statusText);
    }
    if (!json) throw new ApiError(res.status, "NOT_JSON", "the answer is not JSON");
    return json;
  }

  const apiBase = () => new URL("../api/", location.href).pathname;

  // ---- filters ----
  function currentFilters() {
    const f = {};
    for (const k of FILTERS) f[k] = $("filter-" + k).value || "";
    return f;
  }

  function filterQuery(f) {
    const p = new URLSearchParams();
    for (const k of FILTERS) if (f[k]) p.set(k, f[k]);
    const s = p.toString();
    return s ? "?" + s : "";
  }

  async function fillChoices() {
    await Promise.all(Object.entries(CHOICES).map(async ([name, sql]) => {
      const answer = await api(apiBase() + "sql", { sql });
      const select = $("filter-" + name);
      const keep = select.value;
      const values = answer.rows.map((r) => r.v).filter((v) => v !== undefined && v !== null).map(String);
      if (keep && !values.includes(keep)) values.push(keep);
      const have = Array.from(select.options).slice(1).map((o) => o.value);
      if (have.length === values.length && have.every((v, i) => v === values[i])) return;
      while (select.options.length > 1) select.remove(1);
      for (const v of values) {
        const o = document.createElement("option");
        o.value = v;
        o.textContent = v;
        select.appendChild(o);
      }
      select.value = keep;
    }));
  }

  // ---- cards ----
  function makeCard(q) {
    const card = document.createElement("article");
    card.className = "card card-" + q.chart;
    card.dataset.query = q.name;
    card.dataset.chart = q.chart;
    card.dataset.state = "loading";
    const h = document.createElement("h2");
    h.textContent = q.title;
    card.appendChild(h);
    const note = document.createElement("p");
    note.className = "note";
    note.hidden = true;
    card.appendChild(note);
    const entry = { card, note, q };
    if (q.chart === "number") {
      const fig = document.createElement("div");
      fig.className = "figure";
      fig.id = q.name;
      fig.textContent = "…";
      card.appendChild(fig);
      const caption = document.createElement("p");
      caption.className = "caption";
      card.appendChild(caption);
      entry.figure = fig;
      entry.caption = caption;
      $("figures").appendChild(card);
    } else {
      const box = document.createElement("div");
      box.className = "chart";
      box.setAttribute("role", "img");
      box.setAttribute("aria-label", q.title);
      card.appendChild(box);
      const details = document.createElement("details");
      details.className = "data";
      const summary = document.createElement("summary");
      summary.textContent = "Data";
      details.appendChild(summary);
      const table = document.createElement("table");
      table.className = "chart-data";
      table.dataset.query = q.name;
      details.appendChild(table);
      card.appendChild(details);
      $("charts").appendChild(card);
      entry.box = box;
      entry.table = table;
      entry.chart = echarts.init(box, null, { renderer: "canvas" });
    }
    charts.set(q.name, entry);
    return entry;
  }

  function showNote(entry, text) {
    entry.note.textContent = text || "";
    entry.note.hidden = !text;
  }

  // The filters of an answer in words, e.g. "Kerala · COVISHIELD · 2021-05-01 to 2021-05-31".
  function describe(f) {
    const parts = [f.tenant, f.state, f.vaccine].filter(Boolean);
    if (f.from || f.to) parts.push((f.from || "…") + " to " + (f.to || "…"));
    return parts.length ? parts.join(" · ") : "All tenants, states, vaccines and dates";
  }

  const asNumber = (v) => (v === undefined || v === null || v === "" ? null : Number(v));
  const asLabel = (v) => (v === undefined || v === null ? "(none)" : String(v));

  // ---- rendering ----
  function render(entry, answer) {
    const cols = answer.columns.map((c) => c.name);
    const rows = answer.rows;
    const { card, q } = entry;
    card.dataset.rows = String(rows.length);
    showNote(entry, answer.truncated ? "Only the first " + rows.length + " rows are shown." : "");
    if (q.chart === "number") {
      const v = rows.length ? asNumber(rows[0][cols[0]]) : null;
      entry.figure.dataset.value = v === null ? "" : String(v);
      entry.figure.textContent = v === null ? "–" : numberFormat.format(v);
      entry.caption.textContent = describe(entry.filters);
      card.dataset.state = "ok";
      return;
    }
    if (!rows.length) {
      entry.chart.clear();
      entry.box.hidden = true;
      card.dataset.state = "empty";
      showNote(entry, "No data for these filters.");
      writeTable(entry, { category: cols[0] || "", categories: [], series: [] });
      return;
    }
    entry.box.hidden = false;
    const categories = rows.map((r) => asLabel(r[cols[0]]));
    const series = cols.slice(1).map((c) => ({ name: c, values: rows.map((r) => asNumber(r[c])) }));
    entry.chart.setOption(optionFor(q.chart, cols[0], categories, series), { notMerge: true });
    resize(entry, q.chart, categories);
    card.dataset.state = "ok";
    writeTable(entry, drawn(entry, q.chart, cols[0]));
  }

  function horizontal(categories) {
    return categories.length > 12 || categories.some((c) => c.length > 10);
  }

  function resize(entry, kind, categories) {
    let height = 300;
    if (kind === "bar" && horizontal(categories)) height = Math.max(220, categories.length * 24 + 70);
    if (entry.box.style.height !== height + "px") {
      entry.box.style.height = height + "px";
    }
    entry.chart.resize();
  }

  const tooltipNumber = (v) => (v === null || v === undefined ? "–" : numberFormat.format(v));

  function optionFor(kind, category, categories, series) {
    const base = {
      animation: false,
      color: COLORS,
      tooltip: { trigger: kind === "pie" ? "item" : "axis", valueFormatter: tooltipNumber },
      legend: series.length > 1 ? { top: 0 } : { show: false },
    };
    if (kind === "pie") {
      const s = series[0] || { values: [] };
      return Object.assign(base, {
        legend: { type: "scroll", bottom: 0 },
        series: [{
          type: "pie",
          name: s.name,
          radius: ["38%", "68%"],
          center: ["50%", "45%"],
          label: { formatter: "{b}: {d}%" },
          data: categories.map((c, i) => ({ name: c, value: s.values[i] })),
        }],
      });
    }
    const sideways = kind === "bar" && horizontal(categories);
    const valueAxis = {
      type: "value",
      // Sideways bars carry their values as labels; the title says what they count.
      name: sideways ? "" : series.map((s) => s.name).join(", "),
      nameTextStyle: { color: "#555" },
      axisLabel: { formatter: (v) => numberFormat.format(v) },
      splitLine: { lineStyle: { color: "#e6e9ee" } },
    };
    const categoryAxis = {
      type: "category",
      name: sideways || kind === "line" ? "" : category,
      nameLocation: "middle",
      nameGap: 28,
      data: categories,
      inverse: sideways,
      axisTick: { alignWithLabel: true },
      axisLabel: sideways ? { width: 190, overflow: "truncate" } : { hideOverlap: true },
    };
    // Long series (years of days) get a zoom slider under the axis.
    const zoom = kind === "line" && categories.length > 60;
    const out = Object.assign(base, {
      dataZoom: zoom ? [{ type: "inside" }, { type: "slider", height: 18, bottom: 6 }] : [],
      grid: { left: 12, right: 36, top: series.length > 1 ? 36 : 30, bottom: zoom ? 64 : sideways ? 8 : 36, containLabel: true },
      xAxis: sideways ? valueAxis : categoryAxis,
      yAxis: sideways ? categoryAxis : valueAxis,
      series: series.map((s) => ({
        type: kind,
        name: s.name,
        data: s.values,
        barMaxWidth: 36,
        showSymbol: categories.length <= 40,
        smooth: false,
        areaStyle: kind === "line" && series.length === 1 ? { opacity: 0.12 } : undefined,
        label: kind === "bar" && sideways ? { show: true, position: "right", formatter: (p) => numberFormat.format(p.value) } : undefined,
      })),
    });
    return out;
  }

  // What the chart holds after setOption: read back from ECharts, not from the answer.
  function drawn(entry, kind, category) {
    const o = entry.chart.getOption();
    if (kind === "pie") {
      const data = (o.series[0] && o.series[0].data) || [];
      return {
        category,
        categories: data.map((d) => String(d.name)),
        series: [{ name: o.series[0].name, values: data.map((d) => d.value) }],
      };
    }
    const axis = [].concat(o.xAxis, o.yAxis).find((a) => a && a.type === "category");
    return {
      category,
      categories: (axis.data || []).map((c) => String(typeof c === "object" && c ? c.value : c)),
      series: o.series.map((s) => ({ name: s.name, values: s.data.map((v) => (typeof v === "object" && v ? v.value : v)) })),
    };
  }

  function writeTable(entry, d) {
    const t = entry.table;
    t.replaceChildren();
    const head = t.createTHead().insertRow();
    for (const name of [d.category].concat(d.series.map((s) => s.name))) {
      const th = document.createElement("th");
      th.textContent = name;
      head.appendChild(th);
    }
    const body = t.createTBody();
    d.categories.forEach((c, i) => {
      const tr = body.insertRow();
      tr.dataset.category = c;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = c;
      tr.appendChild(th);
      for (const s of d.series) {
        const td = tr.insertCell();
        const v = s.values[i];
        td.dataset.series = s.name;
        td.dataset.value = v === null || v === undefined ? "" : String(v);
        td.textContent = tooltipNumber(v);
      }
    });
  }

  function renderError(entry, err) {
    entry.card.dataset.state = "error";
    showNote(entry, "Query failed: " + err.message);
    if (entry.figure) {
      entry.figure.textContent = "–";
      entry.figure.dataset.value = "";
    } else {
      entry.chart.clear();
      entry.table.replaceChildren();
    }
  }

  // ---- loading ----
  function setStatus(text) { $("status").textContent = text; }

  function setError(text) {
    $("error").textContent = text || "";
    $("error").hidden = !text;
  }

  async function load() {
    if (!token) {
      document.body.dataset.loaded = "false";
      setStatus("Enter an access token to see the dashboard.");
      $("token-input").focus();
      return;
    }
    const mine = ++generation;
    inFlight = true;
    document.body.dataset.loaded = "false";
    const started = performance.now();
    const filters = currentFilters();
    try {
      if (!queries) {
        queries = (await api(apiBase() + "dashboard")).queries;
        for (const q of queries) makeCard(q);
      }
      const choices = fillChoices().catch((e) => e);
      const results = await Promise.all(queries.map((q) =>
        api(apiBase() + "dashboard/" + encodeURIComponent(q.name) + filterQuery(filters)).then(
          (answer) => ({ q, answer }), (error) => ({ q, error }))));
      const choiceError = await choices;
      if (mine !== generation) return; // a newer load superseded this one
      const failed = [];
      for (const r of results) {
        const entry = charts.get(r.q.name);
        if (r.error) {
          renderError(entry, r.error);
          failed.push(r.q.name + ": " + r.error.message);
        } else {
          entry.filters = filters;
          render(entry, r.answer);
        }
      }
      if (choiceError instanceof Error) failed.push("filter choices: " + choiceError.message);
      const unauthorized = results.some((r) => r.error && r.error.status === 401);
      setError(unauthorized ? "The server refused the token; enter a valid one above." : failed.join("\n"));
      for (const k of FILTERS) document.body.dataset["filter" + k[0].toUpperCase() + k.slice(1)] = filters[k];
      document.body.dataset.generation = String(Number(document.body.dataset.generation) + 1);
      document.body.dataset.loaded = failed.length ? "error" : "true";
      const ms = Math.round(performance.now() - started);
      setStatus("Updated " + new Date().toLocaleTimeString() + " · " + queries.length + " queries in " + ms + " ms");
    } catch (e) {
      if (mine !== generation) return;
      document.body.dataset.loaded = "error";
      setError(e.status === 401 ? "The server refused the token; enter a valid one above." : e.message);
      setStatus("Not loaded");
    } finally {
      if (mine === generation) inFlight = false;
      schedule();
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = null;
    if (!$("auto-refresh").checked || !token) return;
    const s = Math.min(3600, Math.max(1, Number($("refresh-seconds").value) || 10));
    timer = setTimeout(() => { if (!inFlight) load(); else schedule(); }, s * 1000);
  }

  // ---- wiring ----
  function start() {
    token = readToken();
    $("token-input").value = token;
    try {
      const saved = JSON.parse(localStorage.getItem(REFRESH_KEY) || "null");
      if (saved) {
        $("auto-refresh").checked = !!saved.on;
        $("refresh-seconds").value = String(saved.seconds || 10);
      }
    } catch (_) { /* defaults */ }

    $("token-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      token = $("token-input").value.trim();
      try { localStorage.setItem(TOKEN_KEY, token); } catch (_) { /* private mode */ }
      load();
    });
    for (const k of FILTERS) $("filter-" + k).addEventListener("change", () => load());
    $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    $("filter-clear").addEventListener("click", () => {
      for (const k of FILTERS) $("filter-" + k).value = "";
      load();
    });
    const saveRefresh = () => {
      try {
        localStorage.setItem(REFRESH_KEY, JSON.stringify({ on: $("auto-refresh").checked, seconds: Number($("refresh-seconds").value) || 10 }));
      } catch (_) { /* private mode */ }
      schedule();
    };
    $("auto-refresh").addEventListener("change", saveRefresh);
    $("refresh-seconds").addEventListener("change", saveRefresh);
    $("refresh-now").addEventListener("click", () => load());
    window.addEventListener("resize", () => { for (const e of charts.values()) if (e.chart) e.chart.resize(); });
    load();
  }

  if (typeof echarts === "undefined") {
    document.body.dataset.loaded = "error";
    setError("The charting library (vendor/echarts.min.js) did not load.");
  } else {
    start();
  }
})();
