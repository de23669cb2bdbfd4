// Schedy dashboard: draws the views the server (or the report's embedded data) gives it.
// Every name and value from a log is shown as text: DOM nodes get textContent, never innerHTML,
// and strings given to Plotly (which reads a few HTML tags in labels) are escaped first.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("schedy-config").textContent);
  const embedded = document.getElementById("schedy-data");
  const STATIC = config.mode === "report";
  const PAGE_SIZE = 50;
  const MAX_POINTS = 1500; // per line chart: more would slow the page without showing more
  const MAX_MARKERS = 1000; // per trace of markers (an SVG element each)
  const STATUSES = ["QUEUED", "RUNNING", "DONE", "CRASHED", "PRUNED"];
  const FINISHED = new Set(["DONE", "CRASHED", "PRUNED"]);
  const PLOT = { displaylogo: false, responsive: true };

  const app = {
    list: null, // summaries of every experiment
    // {name, summary, rows: Map id -> row, version, created, kind, hpNames, resultNames}. A row's hp and results are
    // Maps: a name from a log ("__proto__", "constructor", "toString") must never reach a plain object's prototype.
    exp: null,
    table: { sort: "id", desc: false, status: "", filter: "", page: 0 },
    score: null, // {name, goal} the charts rank by
    job: null, // the job whose lineage is shown
    drawn: null, // the version last drawn
    nav: 0, // counts the reader's moves between pages: a read started before the last move is dropped
    compare: new Set(), // names of the experiments whose best scores the list draws on one chart
    curves: new Map(), // name -> its best score so far (/api/best), of the version it was read at
    compareX: "jobs",
    error: null,
  };

  // -- small helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function plotText(s) {
    // Plotly reads <b>, <br>, <a> and entities in labels: escape, so that a name is shown as written.
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function show(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(+v.toPrecision(6));
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function isNum(v) { return typeof v === "number" && Number.isFinite(v); }

  function when(t) {
    if (!isNum(t)) return "";
    return new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function thin(n, limit) {
    // Indices 0..n-1 kept when at most `limit` points are drawn: an even stride, the last one always kept.
    if (n <= limit) return null;
    const step = n / limit, keep = [];
    for (let x = 0; x < n; x += step) keep.push(Math.floor(x));
    if (keep[keep.length - 1] !== n - 1) keep.push(n - 1);
    return keep;
  }

  function pick(arr, keep) { return keep ? keep.map((i) => arr[i]) : arr; }

  // -- reading the data ------------------------------------------------------------------------
  async function fetchJSON(url) {
    const r = await fetch(url, { cache: "no-store" });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || r.statusText);
    return body;
  }

  function merge(doc) {
    // doc: {summary, jobs: {version, created, since, count, columns, hp, results}}
    const jobs = doc.jobs;
    let exp = app.exp;
    if (!exp || exp.name !== doc.summary.name || jobs.since === 0) {
      exp = app.exp = { name: doc.summary.name, rows: new Map(), hpNames: new Set(), resultNames: new Set() };
    }
    exp.summary = doc.summary;
    exp.kind = doc.summary.kind;
    // ASHA and Hyperband: the rung view, computed by the server, sent whole unless nothing changed.
    if (doc.rungs !== undefined) exp.rungs = doc.rungs;
    if (doc.importance !== undefined) exp.importance = doc.importance; // a report's: computed when it was written
    else if (exp.rungs === undefined || !doc.summary.halving) exp.rungs = null;
    if (jobs.columns.id.length) { exp.sorted = undefined; exp.children = undefined; }
    const c = jobs.columns, n = c.id.length;
    // [name, column] pairs: the names are never used to index an object (JSON.parse made them own properties,
    // but a lookup of a name such as "constructor" that a later answer lacks would find the prototype's).
    const hpCols = Object.entries(jobs.hp), resCols = Object.entries(jobs.results);
    hpCols.forEach(([h]) => exp.hpNames.add(h));
    resCols.forEach(([h]) => exp.resultNames.add(h));
    for (let i = 0; i < n; i++) {
      const hp = new Map(), results = new Map();
      for (const [h, col] of hpCols) { const v = col[i]; if (v !== null) hp.set(h, v); }
      for (const [h, col] of resCols) { const v = col[i]; if (v !== null) results.set(h, v); }
      exp.rows.set(c.id[i], {
        id: c.id[i], num: Number(c.id[i]), status: c.status[i], generation: c.generation[i], member: c.member[i],
        parent: c.parent[i], added_at: c.added_at[i], finished_at: c.finished_at[i], worker: c.worker[i],
        resource: c.resource ? c.resource[i] : null, bracket: c.bracket ? c.bracket[i] : null,
        hp, results,
      });
    }
    // A job deleted since the last read leaves the counts unequal: read everything again next time.
    exp.version = jobs.count === exp.rows.size ? jobs.version : 0;
    exp.created = jobs.created;
    if (!app.score || !exp.resultNames.has(app.score.name)) app.score = doc.summary.score;
  }

  async function load() {
    // A read answered after the reader moved to another page is dropped: merging or drawing it would show a
    // page the address no longer names (and draw charts into a page that no longer holds them).
    const route = parseRoute(), nav = app.nav;
    try {
      if (STATIC) {
        const data = app.embedded || (app.embedded = JSON.parse(embedded.textContent));
        app.list = data.experiments;
        if (data.experiment && !app.exp) merge(data.experiment);
      } else if (route.bad) {
        // Nothing to ask the server: the page says what is wrong and keeps polling, for the next address.
      } else if (route.name === null) {
        const list = await fetchJSON("/api/experiments");
        if (nav !== app.nav) return;
        app.list = list;
      } else {
        const known = app.exp && app.exp.name === route.name;
        const q = new URLSearchParams({ name: route.name });
        if (known) { q.set("since", app.exp.version); q.set("created", app.exp.created); }
        else { // another experiment: start from its defaults, not from the last one's sorting and filter
          app.exp = null; app.score = null; app.scatterX = null; app.logScale = null;
          app.membersX = null; app.focus = null; app.colorBy = null; app.importance = null;
          app.table = { sort: "id", desc: false, status: "", filter: "", page: 0 };
        }
        const doc = await fetchJSON("/api/experiment?" + q);
        if (nav !== app.nav) return;
        performance.mark("schedy:fetched");
        merge(doc);
        performance.mark("schedy:merged");
      }
      app.error = route.bad ? badAddress(route.bad) : null;
    } catch (e) {
      if (nav !== app.nav) return;
      app.error = String(e.message || e);
    }
    render(parseRoute()); // the address as it is now: a link to another job of this experiment may have been followed
  }

  function badAddress(address) {
    return "no such page: " + address + " is a malformed address (a % in a name is written %25)";
  }

  // -- routing ---------------------------------------------------------------------------------
  function parseRoute() {
    // {name, job}: the list (name null) or an experiment; {bad} for an address that names nothing readable.
    const h = location.hash.replace(/^#\/?/, "");
    if (h.startsWith("experiment/")) {
      const [path, query] = h.slice("experiment/".length).split("?");
      const job = new URLSearchParams(query || "").get("job");
      const name = decoded(path);
      // Typed or pasted by hand ("#/experiment/100%"): say so rather than throw, which would stop the page.
      if (name === null) return { name: null, job: null, bad: "#/" + h };
      return { name, job };
    }
    if (STATIC && app.list && app.list.length === 1 && h === "") return { name: app.list[0].name, job: null };
    return { name: null, job: null };
  }

  function decoded(text) {
    try {
      return decodeURIComponent(text);
    } catch (e) { // a % not followed by two hex digits, or escapes that are not UTF-8
      return null;
    }
  }

  function experimentHref(name, job) {
    return "#/experiment/" + encodeURIComponent(name) + (job ? "?job=" + encodeURIComponent(job) : "");
  }

  // -- rendering -------------------------------------------------------------------------------
  function render(route) {
    const main = document.getElementById("main");
    const banner = document.getElementById("error");
    banner.textContent = app.error || "";
    banner.hidden = !app.error;
    if (route.bad) { drawMissing(main); return; }
    if (route.name === null) {
      const shown = JSON.stringify(app.list);
      if (app.list && (shown !== app.listShown || document.body.dataset.view !== "list")) {
        main.replaceChildren(listView(app.list));
        app.listShown = shown;
        if (app.compare.size) drawCompare(); // a new chart element: draw it again, with what changed
      }
      app.drawn = null;
      document.title = "Schedy: experiments";
      document.body.dataset.view = "list";
      document.body.dataset.ready = "1";
      // Read plotly.js while the reader looks at the list, so that an experiment opens with its charts at once.
      if (!STATIC) setTimeout(() => withPlotly().catch(() => {}), 300);
      return;
    }
    if (!app.exp || app.exp.name !== route.name) {
      if (app.error) drawMissing(main);
      return;
    }
    app.job = route.job;
    const key = app.exp.summary.version + "|" + route.job + "|" + JSON.stringify(app.score);
    if (document.body.dataset.view === "experiment" && app.drawn === key) return;
    if (document.body.dataset.view !== "experiment" || app.drawnName !== app.exp.name) {
      main.replaceChildren(experimentSkeleton());
      app.drawnName = app.exp.name;
    }
    document.title = "Schedy: " + app.exp.name;
    document.body.dataset.view = "experiment";
    document.body.dataset.ready = "0";
    drawExperiment();
    performance.mark("schedy:table");
    app.drawn = key;
    // The table is on screen before plotly.js (megabytes of script) is even read: charts follow when it is.
    withPlotly().then(() => {
      performance.mark("schedy:plotly");
      // A newer draw came meanwhile and will draw its own charts, or the page is no longer this experiment's.
      if (app.drawn !== key || document.body.dataset.view !== "experiment") return;
      // Live updates of a big experiment: charts that took T to draw are drawn again at most every 3 T (the last
      // commits then follow), so that a page redrawing a 10,000-segment PBT at every poll still answers the reader.
      // A change of job, score or experiment is drawn at once.
      const same = JSON.stringify([app.exp.name, route.job, app.score, app.log]);
      const wait = app.chartsFor === same ? app.chartsAt + 3 * app.chartsCost - performance.now() : 0;
      if (wait > 0) { clearTimeout(app.chartsTimer); app.chartsTimer = setTimeout(redraw, wait); return; }
      const began = performance.now();
      drawCharts();
      app.chartsAt = performance.now(); app.chartsCost = app.chartsAt - began; app.chartsFor = same;
      performance.mark("schedy:drawn");
      document.body.dataset.version = String(app.exp.summary.version);
      document.body.dataset.ready = "1";
    }, (e) => {
      app.error = "the charts cannot be drawn: " + (e.message || e);
      document.getElementById("error").textContent = app.error;
      document.getElementById("error").hidden = false;
    });
  }

  function drawMissing(main) {
    // No experiment by that name, or an address that names none: the banner says which; a link leads back (drawn
    // once: live updates keep asking, and must not replace a link the reader is about to click).
    if (document.body.dataset.view !== "missing") main.replaceChildren(el("p", {}, backLink()));
    document.body.dataset.view = "missing";
    document.body.dataset.ready = "1";
  }

  function backLink() {
    if (!STATIC) return el("a", { href: "#/" }, "← all experiments");
    // A report has no other experiment to list: its own (a report written by Schedy holds one).
    const only = app.list && app.list.length === 1 ? app.list[0].name : null;
    return only === null ? null : el("a", { href: experimentHref(only) }, "← " + only);
  }

  let plotlyLoading = null;
  function withPlotly() {
    if (window.Plotly) return Promise.resolve();
    if (!plotlyLoading) {
      plotlyLoading = new Promise((resolve, reject) => {
        if (STATIC) { // the report holds plotly.js inline, after this script
          window.addEventListener("load", () => (window.Plotly ? resolve() : reject(new Error("plotly.js is missing"))));
          return;
        }
        const script = el("script", { src: "/static/plotly.min.js" });
        script.addEventListener("load", () => resolve());
        script.addEventListener("error", () => reject(new Error("plotly.js could not be loaded")));
        document.head.append(script);
      });
    }
    return plotlyLoading;
  }

  function counts(summary) {
    return STATUSES.map((s) => el("td", { class: "num", dataset: { status: s } }, summary.counts[s]));
  }

  function bestText(summary) {
    // The best job is one click away: its link opens the experiment at that job's lineage.
    if (!summary.best) return "";
    return [show(summary.best.value) + " (" + summary.score.name + ", job ",
      el("a", { href: experimentHref(summary.name, summary.best.job), class: "job best-job" }, summary.best.job), ")"];
  }

  function listView(list) {
    const head = el("tr", {}, el("th", {}, "experiment"), el("th", {}, "kind"), el("th", {}, "status"),
      el("th", {}, "jobs"), STATUSES.map((s) => el("th", {}, s)), el("th", {}, "best score"),
      el("th", {}, "last change"), STATIC ? null : el("th", {}, "compare"));
    const width = 7 + STATUSES.length + (STATIC ? 0 : 1);
    const rows = list.map((s) => s.error !== undefined ? damagedRow(s, width) : el("tr", { dataset: { name: s.name } },
      el("td", {}, el("a", { href: experimentHref(s.name) }, s.name)), el("td", {}, s.kind),
      el("td", {}, s.status), el("td", { class: "num" }, s.jobs), counts(s),
      el("td", { class: "best" }, bestText(s)), el("td", {}, when(s.updated_at)), STATIC ? null : compareBox(s)));
    const compare = STATIC || list.length < 2 ? null : el("div", { id: "compare" },
      el("p", { class: "dim" }, "Tick experiments to draw their best scores so far on one chart, against ",
        el("select", { id: "compare-x", onchange: (e) => { app.compareX = e.target.value; drawCompare(); } },
          el("option", { value: "jobs", selected: app.compareX === "jobs" }, "the scored jobs finished"),
          el("option", { value: "time", selected: app.compareX === "time" }, "the time since each was created")), "."),
      el("div", { class: "chart", id: "chart-compare", hidden: true }));
    return el("section", {},
      el("h1", {}, "Experiments"),
      list.length ? el("table", { id: "experiments" }, el("thead", {}, head), el("tbody", {}, rows))
        : el("p", {}, "This database holds no experiment yet."), compare);
  }

  function damagedRow(s, width) {
    // An experiment whose log cannot be read: its name and the error, on one line (whole in the tooltip and on its
    // page), so that one damaged log hides nothing of the others.
    return el("tr", { dataset: { name: s.name }, class: "damaged" },
      el("td", {}, el("a", { href: experimentHref(s.name) }, s.name)),
      el("td", { class: "error", colspan: width - 1, title: s.error }, s.error));
  }

  // -- the list: comparing experiments ---------------------------------------------------------------
  function compareBox(s) {
    // Ticked experiments have their best score so far drawn on one chart under the list.
    return el("td", { class: "compare" }, el("input", { type: "checkbox", "aria-label": "compare " + s.name,
      dataset: { compare: s.name }, checked: app.compare.has(s.name),
      onchange: (e) => { if (e.target.checked) app.compare.add(s.name); else app.compare.delete(s.name); drawCompare(); } }));
  }

  function drawCompare() {
    // Each ticked experiment's best score after each of its scored jobs (x: jobs finished, or the time since it
    // was created), read from the server when its version moved; a reply for a page left meanwhile is dropped.
    const node = document.getElementById("chart-compare");
    if (!node) return;
    const names = (app.list || []).filter((s) => s.error === undefined && app.compare.has(s.name));
    if (!names.length) { if (node.dataset.drawn) Plotly.purge(node); node.hidden = true; delete node.dataset.drawn; return; }
    const nav = app.nav;
    Promise.all([withPlotly(), ...names.map((s) => {
      const have = app.curves.get(s.name);
      if (have && have.version === s.version) return have;
      return fetchJSON("/api/best?" + new URLSearchParams({ name: s.name })).then((doc) => {
        app.curves.set(s.name, doc);
        return doc;
      });
    })]).then(([, ...docs]) => {
      if (nav !== app.nav || document.getElementById("chart-compare") !== node) return;
      const byTime = app.compareX === "time";
      const scored = docs.filter((d) => d.score !== null);
      const ys = scored.flatMap((d) => d.best);
      const log = ys.length > 1 && ys.every((v) => v > 0) && Math.max(...ys) / Math.min(...ys) > 100;
      const traces = scored.map((d) => ({ name: plotText(d.name + " (" + d.score.name + ", " + goalText(d.score.goal) + ")"),
        type: "scatter", mode: "lines", line: { shape: "hv", width: 2 }, x: byTime ? d.at : d.jobs, y: d.best,
        text: d.job.map((j) => "job " + plotText(j)), hoverinfo: "x+y+text+name" }));
      node.hidden = false;
      Plotly.react(node, traces, { title: { text: "Best score so far" }, height: 380, margin: { l: 60, r: 20, t: 40, b: 50 },
        xaxis: { title: { text: byTime ? "seconds since the experiment was created" : "scored jobs finished" }, zeroline: false },
        yaxis: { title: { text: [...new Set(scored.map((d) => plotText(d.score.name)))].join(", ") }, ...scale(log) },
        legend: { orientation: "h", y: -0.2 }, uirevision: JSON.stringify([app.compareX, names.map((s) => s.name)]),
        meta: { experiments: scored.map((d) => d.name) } }, PLOT);
      node.dataset.drawn = "1";
    }, (e) => {
      if (nav !== app.nav) return;
      app.error = "the comparison cannot be drawn: " + (e.message || e);
      document.getElementById("error").textContent = app.error;
      document.getElementById("error").hidden = false;
    });
  }

  function experimentSkeleton() {
    return el("section", {},
      STATIC ? null : el("p", { class: "back" }, el("a", { href: "#/" }, "← all experiments")),
      el("h1", { id: "title" }),
      el("div", { id: "facts" }),
      el("div", { id: "rungs" }),
      el("div", { class: "controls", id: "score-controls" }),
      el("div", { class: "charts" },
        el("div", { class: "chart", id: "chart-best" }),
        el("div", { class: "chart-box", id: "members-box", hidden: true },
          el("div", { class: "controls", id: "members-controls" }),
          el("div", { class: "chart", id: "chart-members" })),
        el("div", { class: "chart", id: "chart-rungs", hidden: true }),
        el("div", { class: "chart-box", id: "scatter-box" },
          el("label", { class: "scatter-label" }, "hyperparameter ",
            el("select", { id: "scatter-x", onchange: (e) => { app.scatterX = e.target.value; redraw(); } })),
          el("div", { class: "chart", id: "chart-scatter" }))),
      el("div", { class: "chart wide", id: "chart-genealogy", hidden: true }),
      el("section", { id: "hp-views", hidden: true },
        el("h2", {}, "Hyperparameters and the score"),
        el("div", { class: "chart wide", id: "chart-parcoords" }),
        el("div", { class: "charts" },
          el("div", { class: "chart", id: "chart-importance" }),
          el("div", { class: "chart", id: "chart-slices" }))),
      el("div", { id: "lineage" }),
      el("h2", {}, "Jobs"),
      el("div", { class: "controls", id: "table-controls" }),
      el("div", { id: "jobs" }));
  }

  function drawExperiment() {
    const exp = app.exp, s = exp.summary;
    document.getElementById("title").textContent = s.name;
    document.getElementById("facts").replaceChildren(el("table", { class: "facts" },
      el("tr", {}, el("th", {}, "kind"), el("th", {}, "status"), el("th", {}, "jobs"),
        STATUSES.map((x) => el("th", {}, x)), el("th", {}, "best score"), el("th", {}, "commits")),
      el("tr", { id: "summary" }, el("td", {}, s.kind), el("td", {}, s.status), el("td", { class: "num" }, s.jobs),
        counts(s), el("td", { class: "best" }, bestText(s)), el("td", { class: "num" }, s.version))),
      ...(s.halving ? [halvingFacts(s)] : []));
    drawRungTable();
    drawScoreControls();
    drawLineage();
    drawTable(sortedRows());
  }

  function sortedRows() {
    const exp = app.exp;
    if (exp.sorted === undefined) exp.sorted = [...exp.rows.values()].sort((a, b) => a.num - b.num);
    return exp.sorted;
  }

  function drawCharts() {
    const rows = sortedRows();
    app.log = logScale(rows);
    drawBest(rows);
    performance.mark("schedy:best");
    if (app.exp.kind === "pbt") { drawMembers(rows); drawGenealogy(rows); hide("chart-scatter"); hide("chart-rungs"); }
    else if (app.exp.rungs) { drawRungChart(); hide("chart-members"); hide("chart-genealogy"); hide("chart-scatter"); }
    else { drawScatter(rows); hide("chart-members"); hide("chart-genealogy"); hide("chart-rungs"); }
    if (!app.exp.rungs) drawHpViews(rows);
    drawSchedule();
  }

  function hide(id) {
    const node = document.getElementById(id);
    if (node.dataset.drawn) Plotly.purge(node);
    node.hidden = true;
    if (node.parentElement.classList.contains("chart-box")) node.parentElement.hidden = true;
    delete node.dataset.drawn;
  }

  function plot(id, traces, layout) {
    const node = document.getElementById(id);
    node.hidden = false;
    if (node.parentElement.classList.contains("chart-box")) node.parentElement.hidden = false;
    Plotly.react(node, traces, Object.assign({
      margin: { l: 60, r: 20, t: 40, b: 50 }, height: 340, hovermode: "closest",
      // New commits redraw the charts but keep the reader's zoom, pan and hidden members.
      uirevision: JSON.stringify([app.exp.name, app.score, app.log]),
      legend: { orientation: "v" },
    }, layout), PLOT);
    node.dataset.drawn = "1";
  }

  function drawScoreControls() {
    const box = document.getElementById("score-controls");
    const names = [...app.exp.resultNames].sort();
    if (!app.score || !names.length) { box.replaceChildren(); return; }
    const nameSel = el("select", { id: "score-name", onchange: (e) => { app.score = { ...app.score, name: e.target.value }; redraw(); } },
      names.map((n) => el("option", { value: n, selected: n === app.score.name }, n)));
    const goalSel = el("select", { id: "score-goal", onchange: (e) => { app.score = { ...app.score, goal: e.target.value }; redraw(); } },
      el("option", { value: "max", selected: app.score.goal === "max" }, "higher is better"),
      el("option", { value: "min", selected: app.score.goal === "min" }, "lower is better"));
    const logBox = el("input", { id: "score-log", type: "checkbox", checked: logScale(sortedRows()),
      onchange: (e) => { app.logScale = e.target.checked; redraw(); } });
    box.replaceChildren(el("label", {}, "score ", nameSel), " ", goalSel, " ", el("label", {}, logBox, " log scale"));
  }

  function logScale(rows) {
    // Unless the reader chose: a log axis when every score is positive and they span more than two decades.
    if (app.logScale !== undefined && app.logScale !== null) return app.logScale;
    if (!app.score) return false;
    let lo = Infinity, hi = -Infinity;
    for (const r of rows) {
      const v = scoreOf(r);
      if (v === null) continue;
      if (v <= 0) return false;
      lo = Math.min(lo, v); hi = Math.max(hi, v);
    }
    return hi / lo > 100;
  }

  function scale(log) {
    // Plotly labels the ticks of a log axis between decades by their first digit alone ("2" and "5" beside 0.1),
    // which reads as a value. plotly.js 3.1 and later leave them unlabelled (minorloglabels), so that only decades
    // are labelled (zoomed within a decade, plotly labels its ticks in full anyway); an older one is given a tick
    // format, which makes it write every label in full (0.02, 0.05, 0.1).
    if (!log) return { type: "linear" };
    const [major, minor] = String(Plotly.version).split(".").map(Number);
    return major > 3 || (major === 3 && minor >= 1) ? { type: "log", minorloglabels: "none" } : { type: "log", tickformat: "~g" };
  }

  function scoreAxis() { return { title: { text: plotText(app.score.name) }, ...scale(app.log) }; }

  function retable() { drawTable(sortedRows()); } // sorting, filtering and paging redraw the table alone

  function redraw() { app.drawn = null; render(parseRoute()); }

  function scoreOf(row) {
    const v = row.results.get(app.score.name);
    return row.status === "DONE" && isNum(v) ? v : null;
  }

  function better(a, b) { return app.score.goal === "max" ? a > b : a < b; }

  function finishedScored(rows) {
    // Shared by the charts of one draw: sorting 100,000 jobs twice would cost as much as drawing.
    const key = app.exp.summary.version + "|" + app.score.name;
    if (app.exp.scoredKey !== key) {
      app.exp.scored = rows.filter((r) => isNum(r.finished_at) && scoreOf(r) !== null)
        .sort((a, b) => a.finished_at - b.finished_at || a.num - b.num);
      app.exp.scoredKey = key;
    }
    return app.exp.scored;
  }

  function drawBest(rows) {
    if (!app.score) { hide("chart-best"); return; }
    const done = finishedScored(rows);
    const bx = [], by = [], bj = [];
    let best = null;
    for (const r of done) {
      const v = scoreOf(r);
      if (best === null || better(v, best)) { best = v; bx.push(r.finished_at * 1000); by.push(v); bj.push(r.id); }
    }
    if (done.length && bx[bx.length - 1] !== done[done.length - 1].finished_at * 1000) {
      bx.push(done[done.length - 1].finished_at * 1000); by.push(best); bj.push(bj[bj.length - 1]);
    }
    const keep = thin(done.length, MAX_MARKERS);
    const all = pick(done, keep);
    plot("chart-best", [
      { name: "each job", type: "scatter", mode: "markers", x: all.map((r) => r.finished_at * 1000),
        y: all.map(scoreOf), text: all.map((r) => "job " + plotText(r.id)), hoverinfo: "x+y+text",
        marker: { size: 4, color: "#9db4cf" } },
      { name: "best so far", type: "scatter", mode: "lines+markers", line: { shape: "hv", color: "#d62728" },
        x: bx, y: by, text: bj.map((j) => "job " + plotText(j)), hoverinfo: "x+y+text" },
    ], { title: { text: "Best " + plotText(app.score.name) + " over time" }, xaxis: { type: "date", title: { text: "finished at (UTC)" } },
      yaxis: scoreAxis() });
  }

  // -- PBT: the population ---------------------------------------------------------------------
  const TOP_K = 5;
  const GENEALOGY_GENERATIONS = 200; // the genealogy's columns at most: the latest generations
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];

  function membersOf(rows) {
    // member -> its scored segments, by generation.
    const out = new Map();
    for (const r of finishedScored(rows)) {
      if (!isNum(r.member)) continue;
      if (!out.has(r.member)) out.set(r.member, []);
      out.get(r.member).push(r);
    }
    for (const segs of out.values()) segs.sort((a, b) => (a.generation - b.generation) || (a.num - b.num));
    return out;
  }

  function current(segs) { return segs[segs.length - 1]; } // a member's latest scored segment

  function viridis(t) {
    // The colour at t in [0, 1] of the Viridis scale plotly draws its colour bars with.
    const x = Math.min(1, Math.max(0, t)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x));
    const f = x - i, c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
    return "rgb(" + c.join(",") + ")";
  }

  function numericHps(rows) {
    return [...app.exp.hpNames].sort().filter((h) => rows.some((r) => isNum(r.hp.get(h))));
  }

  function select(id, options, value, onchange) {
    return el("select", { id, onchange: (e) => { onchange(e.target.value); redraw(); } },
      options.map(([v, label]) => el("option", { value: v, selected: v === value }, label)));
  }

  function drawMembersControls(members, hps) {
    // The x axis (generation, the reader's unit of training, or the wall clock), which members, and what the
    // lines' colours say (each member apart, or the current value of one hyperparameter).
    if (app.focus.startsWith("m:") && !members.has(Number(app.focus.slice(2)))) app.focus = "";
    if (app.colorBy && !hps.includes(app.colorBy)) app.colorBy = "";
    const ids = [...members.keys()].sort((a, b) => a - b);
    document.getElementById("members-controls").replaceChildren(
      el("label", {}, "x axis ", select("members-x", [["generation", "generation"], ["time", "finished at"]],
        app.membersX, (v) => { app.membersX = v; })), " ",
      el("label", {}, "show ", select("members-focus", [["", "every member"], ["top", "the top " + TOP_K],
        ...ids.map((m) => ["m:" + m, "member " + m])], app.focus, (v) => { app.focus = v; })), " ",
      el("label", {}, "colour ", select("members-color", [["", "one per member"], ...hps.map((h) => [h, "by " + h])],
        app.colorBy, (v) => { app.colorBy = v; })));
  }

  function shownMembers(members) {
    // The members the reader focuses on: all, the top k by their latest score, or one.
    const entries = [...members.entries()].sort((a, b) => a[0] - b[0]);
    if (app.focus === "top") {
      const rank = (a, b) => better(scoreOf(current(a[1])), scoreOf(current(b[1]))) ? -1
        : better(scoreOf(current(b[1])), scoreOf(current(a[1]))) ? 1 : a[0] - b[0];
      return entries.slice().sort(rank).slice(0, TOP_K);
    }
    if (app.focus.startsWith("m:")) return entries.filter(([m]) => "m:" + m === app.focus);
    return entries;
  }

  function colouring(entries) {
    // Lines coloured by a hyperparameter: each takes the colour of its member's current value (on a log scale
    // when the values are positive and span more than two decades); a colour bar says which value is which.
    const vals = entries.map(([, segs]) => current(segs).hp.get(app.colorBy)).filter(isNum);
    if (!vals.length) return [() => "#999", null]; // the members shown have no number for it now
    const log = vals.length > 1 && vals.every((v) => v > 0) && Math.max(...vals) / Math.min(...vals) > 100;
    const f = log ? Math.log10 : (v) => v;
    const lo = Math.min(...vals.map(f)), hi = Math.max(...vals.map(f));
    const colorOf = (v) => isNum(v) && (!log || v > 0) ? viridis(hi > lo ? (f(v) - lo) / (hi - lo) : 0.5) : "#999";
    const bar = { name: plotText(app.colorBy), type: "scatter", mode: "markers", x: [null], y: [null], hoverinfo: "skip",
      showlegend: false, marker: { color: [lo, hi], cmin: lo, cmax: hi, colorscale: "Viridis", showscale: true,
        colorbar: { title: { text: plotText((log ? "log10 " : "") + app.colorBy) } } } };
    return [colorOf, bar];
  }

  function drawMembers(rows) {
    if (!app.score) { hide("chart-members"); return; }
    const byId = app.exp.rows, members = membersOf(rows), hps = numericHps(rows);
    app.membersX = app.membersX || "generation";
    app.focus = app.focus || "";
    app.colorBy = app.colorBy || "";
    drawMembersControls(members, hps);
    const byTime = app.membersX === "time";
    const xOf = byTime ? (r) => r.finished_at * 1000 : (r) => r.generation;
    const entries = shownMembers(members);
    const [colorOf, bar] = app.colorBy ? colouring(entries) : [null, null];
    const perMember = Math.max(20, Math.floor(MAX_POINTS / Math.max(1, entries.length)));
    const traces = [];
    for (const [m, segs] of entries) {
      const kept = pick(segs, thin(segs.length, perMember));
      traces.push({ name: "member " + m, type: "scatter", mode: "lines", x: kept.map(xOf),
        y: kept.map(scoreOf), text: kept.map((r) => "job " + plotText(r.id) + ", generation " + r.generation +
          (app.colorBy ? ", " + plotText(app.colorBy) + " " + show(r.hp.get(app.colorBy)) : "")),
        customdata: kept.map((r) => r.id), hoverinfo: "x+y+text+name",
        line: colorOf ? { width: 1.5, color: colorOf(current(segs).hp.get(app.colorBy)) } : { width: 1.5 } });
    }
    if (bar) traces.push(bar);
    // An exploit: a segment that continues from another member's segment (it copied that member's weights).
    const shown = new Set(entries.map(([m]) => m)), ex = [];
    for (const r of rows) {
      const p = r.parent !== null ? byId.get(r.parent) : undefined;
      if (p && p.member !== r.member && shown.has(r.member) && isNum(byTime ? r.added_at : r.generation) &&
        scoreOf(p) !== null) ex.push([r, p]);
    }
    const keptEx = pick(ex, thin(ex.length, MAX_MARKERS));
    traces.push({ name: "exploit (copied a better member)", type: "scatter", mode: "markers",
      x: keptEx.map(([r]) => byTime ? r.added_at * 1000 : r.generation), y: keptEx.map(([, p]) => scoreOf(p)),
      text: keptEx.map(([r, p]) => "member " + r.member + " copied member " + p.member + " (job " + plotText(p.id) + " → job " + plotText(r.id) + ")"),
      customdata: keptEx.map(([r]) => r.id),
      hoverinfo: "x+y+text", marker: { symbol: "x", size: 7, color: "rgba(20,20,20,0.75)" } });
    const focus = app.focus === "top" ? ": the top " + TOP_K : app.focus.startsWith("m:") ? ": member " + app.focus.slice(2) : "";
    plot("chart-members", traces, { title: { text: "Every member's " + plotText(app.score.name) + focus + " (× marks an exploit)" },
      xaxis: byTime ? { type: "date", title: { text: "finished at (UTC)" } } : { title: { text: "generation" }, zeroline: false },
      yaxis: scoreAxis(), showlegend: !app.colorBy,
      uirevision: JSON.stringify([app.exp.name, app.score, app.log, app.membersX, app.focus, app.colorBy]),
      meta: { exploits: ex.length, members: entries.map(([m]) => m) } });
    onClickJob("chart-members");
  }

  function onClickJob(id) {
    // A click on a point opens its job: the lineage below, the genealogy highlighting it.
    const node = document.getElementById(id);
    if (node.dataset.clicks) return;
    node.dataset.clicks = "1";
    node.on("plotly_click", (e) => {
      const point = e.points && e.points[0];
      // A heatmap's point is a cell: its customdata is that cell's job.
      const job = point && (Array.isArray(point.pointNumber) && point.data.customdata
        ? point.data.customdata[point.pointNumber[0]][point.pointNumber[1]] : point.customdata);
      if (typeof job === "string" && app.exp && app.exp.rows.has(job)) location.hash = experimentHref(app.exp.name, job);
    });
  }

  function drawGenealogy(rows) {
    // Members (rows) by generation (columns): each segment a cell coloured by its score (blank without one), an
    // edge from the segment it continued from, along its member's row, or across rows where it copied another
    // member (an exploit). A heatmap is one image however many segments (a marker each would be an SVG element
    // each: seconds for 10,000). The job shown below has its lineage drawn over the others, faded.
    const byId = app.exp.rows;
    let nodes = rows.filter((r) => isNum(r.member) && isNum(r.generation));
    if (!app.score || !nodes.length) { hide("chart-genealogy"); return; }
    let mlo = Infinity, mhi = -Infinity, glo = Infinity, ghi = -Infinity;
    for (const r of nodes) {
      mlo = Math.min(mlo, r.member); mhi = Math.max(mhi, r.member);
      glo = Math.min(glo, r.generation); ghi = Math.max(ghi, r.generation);
    }
    // A long run shows its last GENEALOGY_GENERATIONS generations: thousands of columns are no longer readable,
    // and their edges (a path of every segment) took seconds to draw.
    const first = glo;
    if (ghi - glo + 1 > GENEALOGY_GENERATIONS) {
      glo = ghi - GENEALOGY_GENERATIONS + 1;
      nodes = nodes.filter((r) => r.generation >= glo);
    }
    const members = mhi - mlo + 1, gens = ghi - glo + 1;
    // On a log score axis the colours are the score's logarithm too: a population's score falls by decades, and a
    // linear scale would give every segment after the first generations one colour.
    const colour = app.log ? (r) => Math.log10(scoreOf(r)) : scoreOf;
    const grid = () => Array.from({ length: members }, () => new Array(gens).fill(null));
    const z = grid(), ids = grid(), text = grid();
    const along = { x: [], y: [] }, across = { x: [], y: [] };
    let exploits = 0;
    for (const r of nodes) {
      const i = r.member - mlo, j = r.generation - glo;
      // One cell per member and generation: its scored segment (a redone one replaces a crash), else the first.
      if (scoreOf(r) !== null || ids[i][j] === null) {
        ids[i][j] = r.id; z[i][j] = scoreOf(r) === null ? null : colour(r);
        text[i][j] = "job " + plotText(r.id) + ", member " + r.member + ", generation " + r.generation + ", " +
          (scoreOf(r) === null ? r.status : plotText(app.score.name) + " " + show(scoreOf(r)));
      }
      const p = r.parent !== null ? byId.get(r.parent) : undefined;
      if (!p || !isNum(p.member) || !isNum(p.generation) || p.generation < glo) continue;
      const edge = p.member === r.member ? along : across;
      if (edge === across) exploits++;
      edge.x.push(p.generation, r.generation, null); edge.y.push(p.member, r.member, null);
    }
    const chain = app.job && byId.has(app.job)
      ? lineage(app.job).filter((r) => isNum(r.member) && isNum(r.generation) && r.generation >= glo) : [];
    const faded = chain.length > 0;
    const traces = [
      { name: "segment (colour: " + plotText(app.score.name) + ")", type: "heatmap", z, customdata: ids, text, hoverinfo: "text",
        x: Array.from({ length: gens }, (_, j) => glo + j), y: Array.from({ length: members }, (_, i) => mlo + i),
        colorscale: "Viridis", reversescale: app.score.goal === "min", zsmooth: false, opacity: faded ? 0.35 : 1,
        xgap: gens > 60 ? 0 : 1, ygap: members > 60 ? 0 : 1, hoverongaps: false,
        colorbar: { title: { text: (app.log ? "log10 " : "") + plotText(app.score.name) } } },
      { name: "continued its own training", type: "scatter", mode: "lines", x: along.x, y: along.y, hoverinfo: "skip",
        line: { width: 1, color: faded ? "rgba(90,100,110,0.12)" : "rgba(90,100,110,0.35)" } },
      { name: "exploit: continued from another member", type: "scatter", mode: "lines", x: across.x, y: across.y, hoverinfo: "skip",
        line: { width: 1, color: faded ? "rgba(214,39,40,0.15)" : "rgba(214,39,40,0.8)" } },
    ];
    if (chain.length) {
      traces.push({ name: "lineage of job " + plotText(app.job), type: "scatter", mode: "lines+markers",
        x: chain.map((r) => r.generation), y: chain.map((r) => r.member), customdata: chain.map((r) => r.id),
        text: chain.map((r) => "job " + plotText(r.id) + ", member " + r.member + ", generation " + r.generation),
        hoverinfo: "text", line: { color: "#111", width: 2.5 }, marker: { size: 6, color: "#111" } });
    }
    plot("chart-genealogy", traces, {
      title: { text: "Genealogy: each member's segments by generation; a red edge is an exploit" +
        (glo > first ? " (the last " + GENEALOGY_GENERATIONS + " of " + (ghi - first + 1) + " generations)" : "") +
        (chain.length ? " (job " + plotText(app.job) + "'s lineage in black)" : "") },
      xaxis: { title: { text: "generation" }, zeroline: false, showgrid: false },
      yaxis: { title: { text: "member" }, autorange: "reversed", zeroline: false, showgrid: false, dtick: members > 40 ? undefined : 1 },
      height: Math.max(380, Math.min(1000, 160 + 12 * members)), legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom" },
      margin: { l: 60, r: 20, t: 80, b: 50 },
      meta: { segments: nodes.length, exploits, lineage: chain.map((r) => r.id), from: glo } });
    onClickJob("chart-genealogy");
  }

  function drawScatter(rows) {
    const names = [...app.exp.hpNames].sort();
    if (!app.score || !names.length) { hide("chart-scatter"); return; }
    const done = rows.filter((r) => scoreOf(r) !== null);
    let x = app.scatterX;
    if (!names.includes(x)) x = app.scatterX = names[0];
    const shown = pick(done, thin(done.length, MAX_MARKERS)).filter((r) => r.hp.has(x));
    const numeric = shown.every((r) => isNum(r.hp.get(x)));
    const xs = numeric ? shown.map((r) => r.hp.get(x)) : [];
    const logX = numeric && xs.length > 1 && xs.every((v) => v > 0) && Math.max(...xs) / Math.min(...xs) > 100;
    plot("chart-scatter", [{
      name: "jobs", type: "scatter", mode: "markers", x: shown.map((r) => numeric ? r.hp.get(x) : plotText(show(r.hp.get(x)))),
      y: shown.map(scoreOf), text: shown.map((r) => "job " + plotText(r.id)), hoverinfo: "x+y+text",
      marker: { size: 6, color: shown.map(scoreOf), colorscale: "Viridis", showscale: true },
    }], { title: { text: plotText(app.score.name) + " against " + plotText(x) },
      uirevision: JSON.stringify([app.exp.name, app.score, app.log, x]),
      xaxis: { title: { text: plotText(x) }, ...(numeric ? scale(logX) : { type: "category" }) },
      yaxis: scoreAxis() });
    document.getElementById("scatter-box").hidden = false;
    document.getElementById("scatter-x").replaceChildren(...names.map((n) => el("option", { value: n, selected: n === x }, n)));
  }

  // -- hyperparameters and the score ---------------------------------------------------------------------
  const MAX_LINES = 2000; // parallel coordinates: an SVG path each colour, of every job's line
  const IMPORTANCE_EVERY = 30000; // ms: fANOVA takes seconds, so a live page asks again at most this often

  function hpColumns(done) {
    // The hyperparameters every scored job has, with more than one value: [name, values, numeric, log].
    const out = [];
    for (const h of [...app.exp.hpNames].sort()) {
      if (!done.every((r) => r.hp.has(h))) continue; // a line needs a value on every axis
      const vals = done.map((r) => r.hp.get(h));
      if (new Set(vals.map((v) => JSON.stringify(v))).size < 2) continue;
      const numeric = vals.every(isNum);
      const log = numeric && vals.every((v) => v > 0) && Math.max(...vals) / Math.min(...vals) > 100;
      out.push([h, vals, numeric, log]);
    }
    return out;
  }

  function drawHpViews(rows) {
    const box = document.getElementById("hp-views");
    // An even stride through the scored jobs: 100,000 of them would cost more to sift than to draw.
    const scored = app.score ? finishedScored(rows) : [], done = pick(scored, thin(scored.length, MAX_LINES));
    const cols = done.length > 1 ? hpColumns(done) : [];
    if (!cols.length) {
      for (const id of ["chart-parcoords", "chart-slices", "chart-importance"]) hide(id);
      box.hidden = true;
      return;
    }
    box.hidden = false;
    drawParcoords(done);
    drawSlices(pick(done, thin(done.length, MAX_MARKERS)));
    drawImportance();
  }

  function drawParcoords(done) {
    // One line per scored job across an axis per hyperparameter and one for the score; the lines are coloured by
    // the score's rank (the best in yellow, drawn on top), so that the good region shows as one colour gathering
    // on each axis. Drawn as SVG lines: plotly's WebGL parcoords compiles code at run time, which the page's
    // Content-Security-Policy forbids (no eval), and needs a GPU context that some browsers refuse.
    const f = app.log ? Math.log10 : (v) => v;
    const axes = hpColumns(done).map(([h, vals, numeric, log]) => {
      if (numeric) return { label: (log ? "log10 " : "") + h, values: log ? vals.map(Math.log10) : vals, ticks: null };
      const keys = [...new Set(vals.map((v) => JSON.stringify(v)))].sort();
      const index = new Map(keys.map((k, i) => [k, i]));
      return { label: h, values: vals.map((v) => index.get(JSON.stringify(v))), ticks: keys.map((k) => show(JSON.parse(k))) };
    });
    axes.push({ label: (app.log ? "log10 " : "") + app.score.name, values: done.map((r) => f(scoreOf(r))), ticks: null });
    for (const a of axes) {
      a.lo = Math.min(...a.values); a.hi = Math.max(...a.values);
      a.at = (v) => a.hi > a.lo ? (v - a.lo) / (a.hi - a.lo) : 0.5;
    }
    // Ranked worst first: each of BINS colours is one trace, the better ones drawn over the worse.
    const BINS = 8, score = done.map(scoreOf);
    const order = done.map((r, i) => i).sort((i, j) => better(score[i], score[j]) ? 1 : better(score[j], score[i]) ? -1 : i - j);
    const bins = Array.from({ length: BINS }, () => ({ x: [], y: [] }));
    order.forEach((i, rank) => {
      const b = bins[Math.min(BINS - 1, Math.floor(rank * BINS / order.length))];
      axes.forEach((a, k) => { b.x.push(k); b.y.push(a.at(a.values[i])); });
      b.x.push(null); b.y.push(null);
    });
    const traces = bins.map((b, k) => ({ name: k === BINS - 1 ? "best" : k === 0 ? "worst" : "", type: "scatter", mode: "lines",
      x: b.x, y: b.y, hoverinfo: "skip", showlegend: k === 0 || k === BINS - 1,
      line: { width: 1, color: viridis(k / (BINS - 1)) }, opacity: 0.55 }));
    const notes = [], shapes = [];
    axes.forEach((a, k) => {
      shapes.push({ type: "line", x0: k, x1: k, y0: 0, y1: 1, line: { color: "#444", width: 1 } });
      notes.push({ x: k, y: 1.1, text: plotText(a.label), showarrow: false, font: { size: 12 } });
      const ticks = a.ticks ? a.ticks.map((t, i) => [i, t]) : [[a.lo, show(a.lo)], [a.hi, show(a.hi)]];
      for (const [v, t] of ticks) notes.push({ x: k, y: a.at(v), text: plotText(t), showarrow: false, xanchor: "right", xshift: -4, font: { size: 10, color: "#555" } });
    });
    plot("chart-parcoords", traces, {
      title: { text: "Parallel coordinates: " + done.length + " scored jobs, coloured by " + plotText(app.score.name) + " (yellow: the best)" },
      xaxis: { visible: false, range: [-0.5, axes.length - 0.7] }, yaxis: { visible: false, range: [-0.06, 1.16] },
      shapes, annotations: notes, margin: { l: 40, r: 20, t: 60, b: 20 }, legend: { orientation: "h", x: 1, xanchor: "right", y: 1.12 },
      meta: { jobs: done.map((r) => r.id), axes: axes.map((a) => ({ label: a.label, lo: a.lo, hi: a.hi, values: a.values, ticks: a.ticks })) } });
  }

  function drawSlices(done) {
    // The score against each hyperparameter on its own (a slice of the space), one panel each; the colour is the
    // job's number, so that where the search went late shows.
    const cols = hpColumns(done), across = Math.min(3, cols.length), down = Math.ceil(cols.length / across);
    const traces = [], layout = {};
    cols.forEach(([h, vals, numeric, log], k) => {
      const axis = k === 0 ? "" : String(k + 1);
      traces.push({ name: plotText(h), type: "scatter", mode: "markers", xaxis: "x" + axis, yaxis: "y" + axis,
        x: numeric ? vals : vals.map((v) => plotText(show(v))), y: done.map(scoreOf), customdata: done.map((r) => r.id),
        text: done.map((r) => "job " + plotText(r.id)), hoverinfo: "x+y+text", showlegend: false,
        marker: { size: 5, color: done.map((r) => r.num), colorscale: "Blues", showscale: k === 0,
          colorbar: { title: { text: "job" } } } });
      layout["xaxis" + axis] = { title: { text: plotText(h) }, ...(numeric ? scale(log) : { type: "category" }) };
      layout["yaxis" + axis] = { title: { text: k % across === 0 ? plotText(app.score.name) : "" }, ...scale(app.log) };
    });
    plot("chart-slices", traces, Object.assign(layout, {
      title: { text: plotText(app.score.name) + " against each hyperparameter" },
      grid: { rows: down, columns: across, pattern: "independent" }, height: 90 + 250 * down,
      meta: { panels: cols.map(([h]) => h) } }));
    onClickJob("chart-slices");
  }

  function drawImportance() {
    // fANOVA's importance, computed by the server (seconds: at most every IMPORTANCE_EVERY on a live page) or
    // written into the report; drawn when it comes, if the page still shows what it was asked for.
    const key = JSON.stringify([app.exp.name, app.score.name, app.score.goal]);
    const have = app.importance && app.importance.key === key ? app.importance : null;
    if (have && have.doc) drawImportanceChart(have.doc);
    if (STATIC) {
      const doc = app.exp.importance;
      if (doc && doc.score === app.score.name && doc.goal === app.score.goal) drawImportanceChart(doc);
      else drawImportanceChart({ importances: [], reason: "the report holds the importance for " + (doc ? doc.score : "its result") + " only" });
      return;
    }
    if (have && (have.pending || Date.now() - have.at < IMPORTANCE_EVERY)) {
      if (!have.doc) drawImportanceChart({ importances: [], reason: "computing…" });
      return;
    }
    const asked = app.importance = { key, pending: true, at: Date.now(), doc: have ? have.doc : null };
    if (!asked.doc) drawImportanceChart({ importances: [], reason: "computing…" });
    const q = new URLSearchParams({ name: app.exp.name, score: app.score.name, goal: app.score.goal });
    fetchJSON("/api/importance?" + q).then((doc) => {
      asked.pending = false; asked.doc = doc; asked.at = Date.now();
      if (app.importance === asked && document.getElementById("chart-importance") && app.exp && key === JSON.stringify([app.exp.name, app.score.name, app.score.goal])) {
        drawImportanceChart(doc);
      }
    }, (e) => {
      asked.pending = false;
      if (app.importance === asked && document.getElementById("chart-importance")) drawImportanceChart({ importances: [], reason: String(e.message || e) });
    });
  }

  function drawImportanceChart(doc) {
    const imp = doc.importances || [];
    const title = imp.length
      ? "Importance for " + plotText(doc.score) + " (fANOVA, " + doc.trials + (doc.of > doc.trials ? " of " + doc.of : "") + " jobs)"
      : "Hyperparameter importance: " + plotText(doc.reason || "none");
    const shown = imp.slice().reverse(); // the most important on top
    plot("chart-importance", [{ type: "bar", orientation: "h", x: shown.map((d) => d.importance),
      y: shown.map((d) => plotText(d.name)), hoverinfo: "x+y", marker: { color: "#3b6ea8" } }],
    { title: { text: title }, xaxis: { title: { text: "share of the score's variance" }, range: [0, 1] },
      yaxis: { type: "category", automargin: true }, height: Math.max(260, 120 + 28 * imp.length),
      meta: { importances: imp, reason: imp.length ? null : doc.reason || null } });
  }

  // -- ASHA and Hyperband: the rungs ------------------------------------------------------------
  function goalText(goal) { return goal === "max" ? "higher is better" : "lower is better"; }

  function halvingFacts(s) {
    // The definition and where the search stands, one fact a row: every value a text node.
    const h = s.halving, rows = [];
    const fact = (key, label, ...value) => rows.push(el("tr", { dataset: { fact: key } }, el("th", {}, label), el("td", {}, ...value)));
    fact("result", "result", h.result + " (" + goalText(h.objective) + ")");
    fact("resources", "resources", show(h.min_resource) + " to " + show(h.max_resource) + "; rungs of bracket 0 at " +
      h.resources.map(show).join(", "));
    fact("reduction_factor", "reduction factor", show(h.reduction_factor));
    if (h.brackets > 1) fact("brackets", "brackets", show(h.brackets) + " (bracket b starts at rung b)");
    fact("max_jobs", "max jobs", h.max_jobs === null ? "none" : show(h.max_jobs));
    fact("jobs", "jobs so far", show(s.jobs) + (h.max_jobs === null ? "" : " of " + show(h.max_jobs)));
    const b = h.best;
    fact("best", "best at the highest rung reached", b === null ? "none yet" : [show(b.value) + " (" + h.result + "), job ",
      jobLink(b.job), ", configuration " + show(b.member) + ", rung " + show(b.rung) +
      (h.brackets > 1 ? " of bracket " + show(b.bracket) : "") + ", resource " + show(b.resource)]);
    return el("table", { class: "facts", id: "halving-facts" }, el("tbody", {}, rows));
  }

  function drawRungTable() {
    const box = document.getElementById("rungs"), view = app.exp.rungs;
    if (!view) { box.replaceChildren(); return; }
    const several = view.brackets.length > 1;
    const head = el("tr", {}, several ? el("th", {}, "bracket") : null, el("th", {}, "rung"), el("th", {}, "resource"),
      el("th", { title: "configurations with a job at this rung, in any status" }, "configurations"),
      STATUSES.map((x) => el("th", {}, x)), el("th", {}, "best " + view.result),
      el("th", { title: "jobs of this rung that a job of the next rung continues from" }, "promoted"),
      el("th", {}, "promoted jobs (best first)"));
    const body = [];
    for (const b of view.brackets) {
      for (const r of b.rungs) {
        const more = r.promoted - r.promoted_jobs.length;
        const links = [];
        r.promoted_jobs.forEach((p, i) => {
          if (i) links.push(" ");
          links.push(el("a", { href: experimentHref(app.exp.name, p.job), class: "job",
            title: "configuration " + show(p.member) + ", " + view.result + " " + show(p.value) + ", promoted as job " + p.to }, p.job));
        });
        if (more > 0) links.push(" … and " + more + " more");
        body.push(el("tr", { dataset: { bracket: b.bracket, rung: r.rung }, class: several && r.rung === 0 ? "bracket-start" : null },
          several ? el("td", { class: "num" }, b.bracket) : null, el("td", { class: "num" }, r.rung),
          el("td", { class: "num" }, show(r.resource)), el("td", { class: "num", dataset: { key: "reached" } }, r.reached),
          STATUSES.map((x) => el("td", { class: "num", dataset: { status: x } }, r.counts[x])),
          el("td", { dataset: { key: "best" } }, r.best ? [show(r.best.value) + " (job ", jobLink(r.best.job), ")"] : ""),
          el("td", { class: "num", dataset: { key: "promoted" } }, r.promotable === null ? "" : r.promoted,
            r.promotable === null ? "" : el("span", { class: "dim" }, " (top " + r.promotable + " now)")),
          el("td", { class: "promoted", dataset: { key: "promoted-jobs" } }, links)));
      }
    }
    box.replaceChildren(el("h2", {}, "Rungs"),
      el("p", {}, "Each job trains one configuration up to the resource of its rung; the best " +
        "1/" + show(app.exp.summary.halving.reduction_factor) + " of the DONE jobs of a rung are promoted to the next rung " +
        "(top n now: what the rule allows from what is done so far)."),
      el("table", { id: "rungs-table" }, el("thead", {}, head), el("tbody", {}, body)));
  }

  function drawRungChart() {
    // Every configuration's score against the resource it was trained to, one line across its rungs, one trace
    // per bracket (a null between configurations breaks the line); a triangle marks a promoted job.
    const view = app.exp.rungs, lines = view.lines, several = view.brackets.length > 1;
    const byBracket = new Map(), px = [], py = [], pt = [];
    let lo = Infinity, hi = -Infinity;
    for (const c of lines.configurations) {
      if (!byBracket.has(c.bracket)) byBracket.set(c.bracket, { x: [], y: [], text: [] });
      const t = byBracket.get(c.bracket);
      if (t.x.length) { t.x.push(null); t.y.push(null); t.text.push(null); }
      c.jobs.forEach((job, i) => {
        const label = "configuration " + c.member + ", job " + plotText(job) + ", rung " + c.rungs[i] +
          (several ? ", bracket " + c.bracket : "");
        t.x.push(c.resources[i]); t.y.push(c.values[i]); t.text.push(label);
        lo = Math.min(lo, c.resources[i]); hi = Math.max(hi, c.resources[i]);
        if (c.promoted[i]) { px.push(c.resources[i]); py.push(c.values[i]); pt.push(label + " (promoted)"); }
      });
    }
    const traces = [...byBracket.entries()].sort((a, b) => a[0] - b[0]).map(([b, t]) => ({
      name: several ? "bracket " + b : "configurations", type: "scatter", mode: "lines+markers", x: t.x, y: t.y,
      text: t.text, hoverinfo: "x+y+text", line: { width: 1 }, marker: { size: 4 }, connectgaps: false,
    }));
    traces.push({ name: "promoted to the next rung", type: "scatter", mode: "markers", x: px, y: py, text: pt,
      hoverinfo: "x+y+text", marker: { symbol: "triangle-up", size: 8, color: "rgba(20,20,20,0.8)" } });
    const title = view.result + " against resource, one line per configuration (▲ promoted)" +
      (lines.shown < lines.total ? ": " + lines.shown + " of " + lines.total + " configurations" : "");
    const logY = app.log && app.score && app.score.name === view.result;
    plot("chart-rungs", traces, { title: { text: plotText(title) },
      xaxis: { title: { text: "resource" }, ...scale(hi / lo > 10) },
      yaxis: { title: { text: plotText(view.result) }, ...scale(logY) },
      meta: { shown: lines.shown, total: lines.total, promoted: px.length } });
  }

  function childrenOf() {
    // job id -> the first job that continues from it (its promotion), from the rows the page has.
    const exp = app.exp;
    if (exp.children === undefined) {
      exp.children = new Map();
      for (const r of sortedRows()) if (r.parent !== null && !exp.children.has(r.parent)) exp.children.set(r.parent, r.id);
    }
    return exp.children;
  }

  // -- lineage ---------------------------------------------------------------------------------
  function lineage(id) {
    const chain = [], seen = new Set();
    let row = app.exp.rows.get(id);
    while (row && !seen.has(row.id)) {
      seen.add(row.id);
      chain.push(row);
      row = row.parent !== null ? app.exp.rows.get(row.parent) : undefined;
    }
    return chain.reverse();
  }

  function drawLineage() {
    const box = document.getElementById("lineage");
    const id = app.job;
    if (!id || !app.exp.rows.has(id)) {
      box.replaceChildren(id ? el("p", { class: "warn" }, "There is no job " + id + " in this experiment.") : "");
      return;
    }
    const chain = lineage(id);
    const hps = [...new Set(chain.flatMap((r) => [...r.hp.keys()]))].sort();
    // ASHA and Hyperband: a lineage is one configuration promoted rung by rung, its hyperparameters fixed.
    const halving = Boolean(app.exp.summary.halving);
    const first = halving
      ? [["rung", (r) => show(r.generation)], ["resource", (r) => show(r.resource)], ["job", (r) => jobLink(r.id)],
        ["configuration", (r) => show(r.member)]]
      : [["generation", (r) => show(r.generation)], ["job", (r) => jobLink(r.id)], ["member", (r) => show(r.member)],
        ["continued from", (r, i) => continuedFrom(chain, i, hps)]];
    const head = el("tr", {}, first.map(([h]) => el("th", {}, h)), el("th", {}, "status"),
      app.score ? el("th", {}, app.score.name) : null, hps.map((h) => el("th", {}, h)));
    const body = chain.map((r, i) => el("tr", { dataset: { job: r.id }, class: !halving && exploited(chain, i) ? "exploit" : null },
      first.map(([h, cell]) => el("td", { class: h === "job" || h === "continued from" ? null : "num", dataset: { key: h } }, cell(r, i))),
      el("td", {}, r.status), app.score ? el("td", { class: "num" }, show(r.results.get(app.score.name))) : null,
      hps.map((h) => el("td", { class: "num" }, show(r.hp.get(h))))));
    const charts = el("div", { class: "charts" });
    const says = halving
      ? "Each row is a promotion of the row above it: the same configuration, trained on from that job's checkpoint to the next rung's resource. "
      : "Each row continued training from the one above it; the hyperparameters of the rows are the schedule that produced job " + id + ". ";
    box.replaceChildren(el("h2", {}, "Lineage of job " + id),
      el("p", {}, says, el("a", { href: experimentHref(app.exp.name) }, "close")),
      el("table", { id: "lineage-table" }, el("thead", {}, head), el("tbody", {}, body)), charts);
    if (!halving && chain.length > 1 && hps.some((h) => chain.some((r) => isNum(r.hp.get(h))))) {
      charts.append(el("div", { class: "chart schedule", id: "chart-schedule" }));
    }
  }

  function exploited(chain, i) {
    // Whether the i-th segment of a lineage continued from another member's segment (an exploit).
    return i > 0 && chain[i - 1].member !== chain[i].member;
  }

  function continuedFrom(chain, i, hps) {
    // How the i-th segment began: from scratch, from its own member's last segment, or, an exploit, from another
    // member's ("member 14 (job 78)"); then how its hyperparameters moved from there ("lr ×0.86", "opt sgd → adam").
    if (i === 0) return "start";
    const r = chain[i], p = chain[i - 1];
    const changes = [];
    for (const h of hps) {
      const a = p.hp.get(h), b = r.hp.get(h);
      if (show(a) === show(b)) continue;
      changes.push(isNum(a) && isNum(b) && a !== 0 ? h + " ×" + show(+(b / a).toPrecision(3)) : h + " " + show(a) + " → " + show(b));
    }
    const from = exploited(chain, i) ? ["member " + p.member + " (job ", jobLink(p.id), ")"] : ["its own segment (job ", jobLink(p.id), ")"];
    return changes.length ? [...from, ", " + changes.join(", ")] : from;
  }

  function drawSchedule() {
    const div = document.getElementById("chart-schedule");
    if (!div) return;
    const chain = lineage(app.job), id = app.job;
    const hps = [...new Set(chain.flatMap((r) => [...r.hp.keys()]))].sort();
    const numeric = hps.filter((h) => chain.some((r) => isNum(r.hp.get(h))));
    // No zero line on the generation axis: it drew a dark vertical line at generation 0 that read as a change.
    // The score each segment reached is drawn under its schedule, on the same generations.
    const panels = numeric.map((h) => [plotText(h), (r) => isNum(r.hp.get(h)) ? r.hp.get(h) : null, {}, "hv"]);
    if (app.score) {
      const score = (r) => isNum(r.results.get(app.score.name)) ? r.results.get(app.score.name) : null;
      panels.push([plotText(app.score.name), score, scale(app.log), "linear"]);
    }
    plot("chart-schedule", panels.map(([name, y, , shape], k) => ({
      name, type: "scatter", mode: "lines+markers", line: { shape },
      x: chain.map((r, i) => isNum(r.generation) ? r.generation : i), y: chain.map(y),
      yaxis: k === 0 ? "y" : "y" + (k + 1),
    })), Object.assign({
      title: { text: "Hyperparameter schedule of job " + plotText(id) + (app.score ? ", and its " + plotText(app.score.name) : "") },
      xaxis: { title: { text: "generation" }, dtick: 1, zeroline: false },
      grid: { rows: panels.length, columns: 1, pattern: "coupled" }, height: 120 + 140 * panels.length },
    Object.fromEntries(panels.map(([name, , axis], k) => ["yaxis" + (k === 0 ? "" : k + 1), { title: { text: name }, ...axis }]))));
  }

  function jobLink(id) {
    return el("a", { href: experimentHref(app.exp.name, id), class: "job" }, id);
  }

  // -- the jobs table ----------------------------------------------------------------------------
  function columns() {
    const exp = app.exp, pbt = exp.kind === "pbt";
    const cols = [
      { key: "id", label: "job", get: (r) => r.num, cell: (r) => jobLink(r.id) },
      { key: "status", label: "status", get: (r) => r.status },
    ];
    if (exp.summary.halving) { // ASHA and Hyperband: the rung of a job is its generation
      const children = childrenOf();
      cols.push({ key: "rung", label: "rung", get: (r) => r.generation });
      cols.push({ key: "resource", label: "resource", get: (r) => r.resource });
      if (exp.summary.halving.brackets > 1) cols.push({ key: "bracket", label: "bracket", get: (r) => r.bracket });
      cols.push({ key: "member", label: "configuration", get: (r) => r.member });
      cols.push({ key: "parent", label: "promoted from", get: (r) => r.parent === null ? null : Number(r.parent),
        cell: (r) => r.parent === null ? "" : jobLink(r.parent) });
      cols.push({ key: "child", label: "promoted to", get: (r) => children.has(r.id) ? Number(children.get(r.id)) : null,
        cell: (r) => children.has(r.id) ? jobLink(children.get(r.id)) : "" });
    }
    if (pbt) {
      cols.push({ key: "generation", label: "generation", get: (r) => r.generation });
      cols.push({ key: "member", label: "member", get: (r) => r.member });
      cols.push({ key: "parent", label: "continues from", get: (r) => r.parent === null ? null : Number(r.parent),
        cell: (r) => r.parent === null ? "" : jobLink(r.parent) });
    }
    cols.push({ key: "finished_at", label: "finished at", get: (r) => r.finished_at, cell: (r) => when(r.finished_at) });
    if (app.exp.summary.counts.RUNNING > 0) cols.push({ key: "worker", label: "worker", get: (r) => r.worker }); // the claimant
    for (const h of [...exp.hpNames].sort()) cols.push({ key: "hp." + h, label: h, get: (r) => r.hp.get(h), group: "hp" });
    for (const h of [...exp.resultNames].sort()) cols.push({ key: "result." + h, label: h, get: (r) => r.results.get(h), group: "result" });
    return cols;
  }

  function compare(a, b) {
    // Missing values last; numbers before text; numbers by value, text in alphabetical order.
    const na = a === null || a === undefined, nb = b === null || b === undefined;
    if (na || nb) return na && nb ? 0 : na ? 1 : -1;
    const ta = typeof a === "number", tb = typeof b === "number";
    if (ta && tb) return a - b;
    if (ta !== tb) return ta ? -1 : 1;
    return show(a) < show(b) ? -1 : show(a) > show(b) ? 1 : 0;
  }

  const OPS = { "=": (c) => c === 0, "!=": (c) => c !== 0, "<": (c) => c < 0, "<=": (c) => c <= 0, ">": (c) => c > 0, ">=": (c) => c >= 0 };

  function matcher(cols, text) {
    // "lr > 0.01", "result.loss <= 2", "status = DONE": compare one column; anything else: text found in any cell.
    text = text.trim();
    if (!text) return null;
    const m = text.match(/^([^<>=!]+?)\s*(<=|>=|!=|=|<|>)\s*(.+)$/);
    if (m) {
      const name = m[1].trim();
      const col = cols.find((c) => c.key === name || c.label === name || c.key === "hp." + name || c.key === "result." + name);
      if (col) {
        const raw = m[3].trim(), num = Number(raw), value = raw !== "" && Number.isFinite(num) ? num : raw;
        const op = OPS[m[2]];
        return (r) => { const v = col.get(r); return v !== null && v !== undefined && op(compare(v, value)); };
      }
    }
    const needle = text.toLowerCase();
    return (r) => cols.some((c) => show(c.get(r)).toLowerCase().includes(needle));
  }

  function drawTable(rows) {
    const t = app.table, cols = columns();
    const sortCol = cols.find((c) => c.key === t.sort) || cols[0];
    let shown = t.status ? rows.filter((r) => r.status === t.status) : rows;
    const match = matcher(cols, t.filter);
    if (match) shown = shown.filter(match);
    if (sortCol.key !== "id" || t.desc) {
      const keyed = shown.map((r) => [sortCol.get(r), r]);
      keyed.sort((a, b) => { const c = compare(a[0], b[0]); return (c === 0 ? a[1].num - b[1].num : t.desc && a[0] != null && b[0] != null ? -c : c); });
      shown = keyed.map((k) => k[1]);
    }
    const pages = Math.max(1, Math.ceil(shown.length / PAGE_SIZE));
    t.page = Math.min(t.page, pages - 1);
    const first = t.page * PAGE_SIZE, page = shown.slice(first, first + PAGE_SIZE);

    if (!document.getElementById("status-filter")) {
      let timer = null;
      document.getElementById("table-controls").replaceChildren(
        el("select", { id: "status-filter", onchange: (e) => { t.status = e.target.value; t.page = 0; retable(); } },
          el("option", { value: "" }, "every status"), STATUSES.map((s) => el("option", { value: s, selected: s === t.status }, s))),
        " ",
        el("input", { id: "job-filter", type: "search", value: t.filter, size: 40,
          placeholder: "filter: text, or lr > 0.01, status = DONE", "aria-label": "filter the jobs",
          oninput: (e) => { clearTimeout(timer); timer = setTimeout(() => { t.filter = e.target.value; t.page = 0; retable(); }, 200); } }),
        " ",
        el("span", { class: "pager", id: "pager" }));
    }
    document.getElementById("pager").replaceChildren(
      el("button", { id: "prev-page", disabled: t.page === 0, onclick: () => { t.page--; retable(); } }, "‹ previous"),
      el("span", { id: "page-info" }, shown.length ? `jobs ${first + 1}–${first + page.length} of ${shown.length}` : "no job matches"),
      el("button", { id: "next-page", disabled: t.page >= pages - 1, onclick: () => { t.page++; retable(); } }, "next ›"));

    const head = el("tr", {}, cols.map((c) => el("th", {
      class: "sortable " + (c.group || ""), dataset: { key: c.key }, title: "sort by " + c.key,
      onclick: () => { if (t.sort === c.key) t.desc = !t.desc; else { t.sort = c.key; t.desc = false; } retable(); },
    }, c.label, c.key === sortCol.key ? (t.desc ? " ▼" : " ▲") : "")));
    const body = page.map((r) => el("tr", { dataset: { job: r.id, status: r.status } },
      cols.map((c) => el("td", { dataset: { key: c.key }, class: typeof c.get(r) === "number" && !c.cell ? "num" : null },
        c.cell ? c.cell(r) : show(c.get(r))))));
    document.getElementById("jobs").replaceChildren(el("table", { id: "jobs-table" }, el("thead", {}, head), el("tbody", {}, body)));
  }

  // -- start -----------------------------------------------------------------------------------
  window.addEventListener("hashchange", () => {
    const r = parseRoute();
    // Another job of the experiment shown is drawn from what the page has; after an error (a malformed address
    // since), read again, which clears it.
    if (r.name !== null && app.exp && app.exp.name === r.name && !app.error) { render(r); return; }
    app.drawn = null;
    app.nav++;
    document.body.dataset.view = "";
    load();
  });
  // Live updates start whatever the first read gave: a failure there must not leave the page still for good.
  function poll() { setTimeout(() => load().finally(poll), config.poll * 1000); }
  load().finally(() => { if (!STATIC) poll(); });
})();
