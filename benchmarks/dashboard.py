#!/usr/bin/env python
"""Benchmark of the dashboard and the report on big experiments: is a 100k-job page well under a second?

    pip install -e ".[test]"     # plotly and playwright; Debian's chromium at /usr/bin/chromium
    python benchmarks/dashboard.py [--quick] [--jobs N] [--population-only] [--dir DIR] [--json out.json]

Builds, with the offline simulation (real decisions, simulated clock), a PBT
experiment (50 members) and a random search of N jobs each (default 100,000;
10,000 with --quick), and the same two with 1,000 jobs as the peer whose
page costs the same fixed work. Then measures, in this run:

1. The server: the first request for an experiment (opening its log from the
   snapshot and reading every commit's time), a repeated request (answered
   from the cache of the version), a request after one new commit (only the
   changed jobs are sent), the size of the full answer, and the peak memory
   of a ``schedy dashboard`` process that served both big experiments.
2. The page in headless Chromium (median of 3 fresh pages): time from
   navigation to the table drawn (summary, jobs table, lineage), and to the
   charts drawn. The charts wait for plotly.js, whose loading and evaluation
   is measured alone in the same browser: it is the same for any size. Then
   from a click in the list (plotly.js already read there), and a page
   visited again in a browser profile with a disk cache, where Chromium
   keeps plotly.js compiled.
3. The report: the time to write it and its size, and the time to open it
   (file://, network blocked) to the charts drawn.
4. The PBT population views (genealogy, members chart, lineage) of a PBT of
   100 members x 100 generations (50 x 50 with --quick) against one of
   16 x 20 (the browser tests'), both of the lr-schedule problem, served by a
   ``schedy dashboard --poll 0.1`` process, on fresh pages (median of 3):
   navigation to the table and to every chart drawn (the genealogy
   included), and the longest main-thread task until then (a "longtask"
   PerformanceObserver); one commit appended while the page is open (a
   segment's score reported again with ``job.put()``) to ``body[data-version]``
   showing it, drawn; and a click on the best job's genealogy node to its row
   in the lineage table and its lineage in the genealogy's ``layout.meta``.
   ``--population-only`` runs this section alone (under a minute).

Figures are ratios against the 1-second limit and against the 1,000-job
peer (the 16 x 20 PBT in section 4), measured in the same run; nothing is
asserted. ``--dir`` keeps the databases between runs (building 100,000 jobs
takes about a minute); section 4 writes one commit per page to its PBTs.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmark the checkout this script lives in

from machine import describe  # noqa: E402

import schedy  # noqa: E402
from schedy.dashboard import DashboardServer, write_report  # noqa: E402
from schedy.pbt import MINIMIZE, Perturb, Truncate  # noqa: E402
from schedy.random import LogUniform  # noqa: E402
from schedy.simulation import lr_schedule, simulate  # noqa: E402

LIMIT = 1.0  # seconds: the page of a 100k-job experiment must be well under it
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
POPULATION = 50


def build(path, jobs):
    """A PBT experiment and a random search of ``jobs`` jobs each, in the database at ``path`` (kept if there)."""
    db = schedy.SchedyDB(path)
    names = {f"pbt-{jobs}", f"random-{jobs}"}
    if names <= {e.name for e in db.get_experiments()}:
        return
    # Renewals every 15 minutes of a 1-hour lease: two commits per segment, as with long segments.
    pbt = schedy.PopulationBasedTraining(
        f"pbt-{jobs}",
        MINIMIZE,
        "loss",
        Truncate(0.25),
        {"lr": Perturb(0.8, 1.2)},
        {"lr": LogUniform(1e-3, 1.0)},
        population_size=POPULATION,
        max_generations=jobs // POPULATION,
        lease=3600,
    )
    simulate(pbt, lr_schedule(), workers=8, budget=jobs, seed=1, heartbeat=900, db=db)
    rs = schedy.RandomSearch(f"random-{jobs}", {"lr": LogUniform(1e-3, 1.0), "wd": LogUniform(1e-5, 1e-1)}, lease=3600)
    simulate(rs, lr_schedule(), workers=8, budget=jobs, seed=1, heartbeat=900, segments_per_job=1, db=db)


def get(url):
    t = time.perf_counter()
    with urllib.request.urlopen(url) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)


def server_figures(path, name):
    """Times of the first, a repeated, and a post-commit request for ``name``, on a fresh server."""
    db = schedy.SchedyDB(path)
    server = DashboardServer(db._store, port=0, min_interval=0.0)
    server.start()
    try:
        url = f"{server.url}api/experiment?name={name}"
        first, size = get(url)
        again = min(get(url)[0] for _ in range(5))
        exp = db.get_experiment(name)
        doc = json.loads(urllib.request.urlopen(url).read())
        version, created = doc["jobs"]["version"], doc["jobs"]["created"]
        # One commit (the experiment's status flips): the server reads it, recounts, and sends no job.
        exp.status = "RUNNING" if exp.status == "DONE" else "DONE"
        exp.push_updates()
        delta_t, delta_size = get(f"{url}&since={version}&created={created}")
        return {
            "first_request_s": first,
            "repeat_request_s": again,
            "after_commit_s": delta_t,
            "full_bytes": size,
            "delta_bytes": delta_size,
        }
    finally:
        server.shutdown()
        server.server_close()


def command_memory(path, names):
    """Peak resident memory (MiB) of a ``schedy dashboard`` process that served ``names`` in full."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedy", "dashboard", "--db", path, "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        url = proc.stdout.readline().split(" on ", 1)[1].split()[0]
        for name in names:
            get(f"{url}api/experiment?name={name}")
        get(f"{url}api/experiments")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(next(line for line in status.splitlines() if line.startswith("VmHWM")).split()[1]) / 1024
    finally:
        proc.terminate()
        proc.wait()


def browser_figures(browser, url, repeat=3):
    """Median times (s) from navigation to the table and to the charts, over ``repeat`` new pages of ``browser``
    (a Browser, or a BrowserContext)."""
    table, charts = [], []
    for _ in range(repeat):
        # A browser gets a fresh page of its own; a persistent context's pages share its cache (and viewport).
        page = (
            browser.new_page(viewport={"width": 1400, "height": 1000})
            if hasattr(browser, "new_context")
            else browser.new_page()
        )
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        marks = page.evaluate(
            "() => Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, m.startTime]))"
        )
        table.append(marks["schedy:table"] / 1000)
        charts.append(marks["schedy:drawn"] / 1000)
        page.close()
    return {"table_s": statistics.median(table), "charts_s": statistics.median(charts)}


def from_list(browser, base, name, repeat=3):
    """Median time (s) from a click on ``name`` in the list (plotly.js already read) to its charts drawn."""
    times = []
    for _ in range(repeat):
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(base)
        page.wait_for_function("() => window.Plotly !== undefined", timeout=120_000)
        page.evaluate("() => performance.clearMarks()")
        t0 = page.evaluate("() => performance.now()")
        page.click(f"tr[data-name='{name}'] a")
        page.wait_for_function("() => performance.getEntriesByName('schedy:drawn').length > 0", timeout=120_000)
        times.append((page.evaluate("() => performance.getEntriesByName('schedy:drawn')[0].startTime") - t0) / 1000)
        page.close()
    return statistics.median(times)


def revisit(playwright, url, repeat=3):
    """Median times (s) to the table and to the charts on a page visited before, as a browser with a disk cache
    sees it: Chromium keeps plotly.js compiled (V8's code cache) from the third visit on."""
    profile = tempfile.mkdtemp(prefix="schedy-chromium-profile-")
    context = playwright.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=FLAGS, viewport={"width": 1400, "height": 1000}
    )
    try:
        for _ in range(3):  # the visits that fill the cache
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=120_000)
            page.close()
        return browser_figures(context, url, repeat)
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


def plotly_alone(browser, base, repeat=3):
    """Median time (s) to load and evaluate plotly.js alone, in a page of the same server."""
    times = []
    for _ in range(repeat):
        page = browser.new_page()
        page.goto(base + "static/app.css")  # same origin, no script of ours
        times.append(
            page.evaluate("""() => new Promise((resolve, reject) => {
            const t = performance.now(), s = document.createElement('script');
            s.src = '/static/plotly.min.js';
            s.onload = () => resolve((performance.now() - t) / 1000);
            s.onerror = reject;
            document.head.append(s);
        })""")
        )
        page.close()
    return statistics.median(times)


def report_figures(browser, path, name, folder):
    db = schedy.SchedyDB(path)
    out = os.path.join(folder, f"{name}.html")
    t = time.perf_counter()
    size = write_report(db._store, name, out)
    written = time.perf_counter() - t
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://") else route.abort())
    page = context.new_page()
    t = time.perf_counter()
    page.goto("file://" + out)
    page.wait_for_selector("body[data-ready='1']", timeout=120_000)
    opened = time.perf_counter() - t
    context.close()
    return {"write_s": written, "bytes": size, "open_s": opened}


# -- 4. the PBT population views: genealogy, members chart, lineage --------------------------------------------

POP_PEER = (16, 20)  # members x generations: the PBT of tests/test_dashboard_population.py
POP_BIG, POP_QUICK = (100, 100), (50, 50)
POLL = 0.1  # the page's poll interval (the smallest `schedy dashboard --poll` takes): a live update waits for it
WAIT_MS = 120_000  # every wait on the page

# Installed in every page before its own script: the long tasks of the main thread, from the start, and a probe
# that resolves with the page's clock at the first moment a condition holds: checked when <body>'s data-ready or
# data-version changes (a microtask after the draw that set it) and at every frame (for anything else).
PROBES = """
window.__schedyLongTasks = [];
try {
  const note = (entries) => { for (const e of entries) window.__schedyLongTasks.push([e.startTime, e.duration]); };
  const tasks = new PerformanceObserver((list) => note(list.getEntries()));
  tasks.observe({ type: "longtask", buffered: true });
  // The tasks so far, those not yet delivered to the observer included (a task is reported once it has ended).
  window.__schedyTasks = () => { note(tasks.takeRecords()); return window.__schedyLongTasks; };
} catch (e) { window.__schedyTasks = () => null; }
try { performance.setResourceTimingBufferSize(100000); } catch (e) {}
window.__schedyWhen = (test, timeoutMs) => new Promise((resolve, reject) => {
  let done = false;
  const finish = (ok) => {
    if (done) return;
    done = true; observer.disconnect(); clearTimeout(timer);
    ok ? resolve(performance.now()) : reject(new Error("the page never got there in " + timeoutMs + " ms"));
  };
  const check = () => { let ok = false; try { ok = Boolean(test()); } catch (e) {} if (ok) finish(true); };
  const observer = new MutationObserver(check);
  const timer = setTimeout(() => finish(false), timeoutMs);
  const frame = () => { check(); if (!done) requestAnimationFrame(frame); };
  observer.observe(document.body, { attributes: true, attributeFilter: ["data-ready", "data-version"] });
  frame();
});
"""

# Every chart the page shows (each [id^=chart-] not hidden) is drawn, the genealogy among them.
ALL_CHARTS = """() => {
  const shown = [...document.querySelectorAll('[id^="chart-"]')].filter((d) => !d.closest("[hidden]"));
  return shown.some((d) => d.id === "chart-genealogy") && shown.every((d) => d.querySelector(".main-svg"));
}"""

# The genealogy's node to click: the best job's (the summary's link) in the trace of scored segments, else the
# last node; its trace's rank among the SVG scatter traces (-1 if it is drawn otherwise, e.g. WebGL) and where
# it is on screen (for a click by position then).
NODE = """() => {
  const gd = document.getElementById("chart-genealogy"), data = gd._fullData || gd.data;
  const ids = (t) => Array.from(t.customdata || []);
  const marks = (t) => String(t.mode || "").includes("markers") && !String(t.name).startsWith("lineage");
  let k = data.findIndex((t) => String(t.name).startsWith("segment (colour"));
  if (k < 0) k = data.reduce((b, t, i) => marks(t) && (b < 0 || ids(t).length > ids(data[b]).length) ? i : b, -1);
  const best = document.querySelector("tr#summary a.best-job");
  if (data[k].type === "heatmap") {  // a cell per node: customdata is a grid, rows by member, columns by generation
    const t = data[k], grid = t.customdata;
    let at = null, n = 0;
    grid.forEach((row, r) => row.forEach((id, c) => {
      if (id === null || id === undefined) return;
      n++;
      if (at === null || (best && id === best.textContent)) at = [r, c, id];
    }));
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
    return { trace: -1, point: -1, job: at[2], nodes: n,
             x: box.left + xa._offset + xa.d2p(t.x[at[1]]), y: box.top + ya._offset + ya.d2p(t.y[at[0]]) };
  }
  const t = data[k], all = ids(t);
  let i = best ? all.indexOf(best.textContent) : -1;
  if (i < 0) i = all.length - 1;
  const svg = t.type === "scatter"
    ? data.slice(0, k).filter((u) => u.type === "scatter" && u.visible !== false).length : -1;
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  return { trace: svg, point: i, job: all[i], nodes: all.length,
           x: box.left + xa._offset + xa.d2p(t.x[i]), y: box.top + ya._offset + ya.d2p(t.y[i]) };
}"""


def build_population(path, members, generations):
    """A PBT of ``members`` x ``generations`` segments of the lr-schedule problem, as the browser tests build it."""
    name = f"pbt-{members}x{generations}"
    db = schedy.SchedyDB(path)
    if name not in {e.name for e in db.get_experiments()}:
        problem = lr_schedule(population=members, segments=generations, steps=100)
        simulate(problem.strategies()["pbt"], problem, seed=3, db=db, name=name)
    return name


def one_commit(path, name):
    """Open ``name``, then append one commit: its newest segment's score reported again (a worker's correction),
    through ``job.put()``. Returns the wall-clock time (s) right after the commit."""
    exp = schedy.SchedyDB(path, worker="dashboard-benchmark").get_experiment(name)
    job = max(exp.all_jobs(), key=lambda j: int(j.job_id))
    job.results["loss"] = job.results["loss"] * (1 + 1e-9)
    job.put()
    return time.time()


def dashboard_command(path):
    """A ``schedy dashboard`` process serving ``path``, polled by its pages every POLL seconds; (process, url)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "schedy", "dashboard", "--db", path, "--port", "0", "--poll", str(POLL)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,  # `-m schedy`: the checkout's
    )
    line = proc.stdout.readline()
    if " on " not in line:
        proc.terminate()
        proc.wait()
        raise RuntimeError(f"schedy dashboard printed no address: {line!r}")
    return proc, line.split(" on ", 1)[1].split()[0]


def population_page(browser, path, url, name):
    """One fresh page of ``name``: (1) navigation to the table and to every chart, and the longest task of the
    main thread until then; (2) one commit appended while it is open, to the page redrawn at its version; (3) a
    click on a genealogy node, to that job's lineage shown. Times in s, tasks in ms; None where it failed."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(WAIT_MS)
    context.add_init_script(PROBES)
    page = context.new_page()
    errors, out = [], {}
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    try:
        page.goto(url)
        page.wait_for_selector('body[data-ready="1"][data-view="experiment"]', state="attached")
        marks = page.evaluate(
            """() => ["schedy:table", "schedy:plotly", "schedy:drawn"].map((name) => {
                       const m = performance.getEntriesByName(name)[0];
                       return m ? m.startTime : null; })"""
        )
        # Drawn by the mark that says so, unless a chart (the genealogy, say) comes later than the mark.
        charts = page.evaluate(f"() => ({ALL_CHARTS})() ? null : __schedyWhen({ALL_CHARTS}, {WAIT_MS})")
        drawn = max(marks[2], charts or 0)
        out["table_s"], out["charts_s"] = marks[0] / 1000, drawn / 1000
        out["drawing_s"] = None if marks[1] is None else (drawn - marks[1]) / 1000
        tasks = page.evaluate("() => __schedyTasks()")
        if tasks is None:  # a browser without long-task timing
            out["longest_task_ms"] = out["blocking_ms"] = None
        else:  # the tasks begun before the charts were drawn (the last of them drew them)
            tasks = [d for start, d in tasks if start <= drawn]
            out["longest_task_ms"] = max(tasks, default=0.0)
            out["blocking_ms"] = sum(max(0.0, d - 50) for d in tasks)  # total blocking time, as Lighthouse counts it
            out["long_tasks"] = len(tasks)

        # 2. One commit while the page is open: until <body> shows a later version, drawn (data-ready 1).
        try:
            v0 = int(page.get_attribute("body", "data-version"))
            page.evaluate(
                """([v0, ms]) => {
                  performance.clearResourceTimings();
                  window.__schedyWait = __schedyWhen(() => Number(document.body.dataset.version) > v0
                    && document.body.dataset.ready === "1", ms);
                }""",
                [v0, WAIT_MS],
            )
            written = one_commit(path, name)
            got = page.evaluate(
                """async () => {
                  const done = await window.__schedyWait;
                  // The page's request that brought the commit: the last one answered before the redraw.
                  const asked = performance.getEntriesByType("resource")
                    .filter((r) => r.name.includes("/api/experiment?") && r.responseEnd <= done)
                    .sort((a, b) => a.responseEnd - b.responseEnd).pop();
                  return { done, origin: performance.timeOrigin, asked: asked ? asked.startTime : null,
                           answered: asked ? asked.responseEnd : null };
                }"""
            )
            out["update_s"] = (got["origin"] + got["done"]) / 1000 - written
            out["update_request_s"] = None if got["asked"] is None else (got["done"] - got["asked"]) / 1000
            out["update_answer_s"] = None if got["asked"] is None else (got["answered"] - got["asked"]) / 1000
        except Exception as e:  # noqa: BLE001 - a page being changed elsewhere: say what failed, measure the rest
            out["update_s"] = out["update_request_s"] = out["update_answer_s"] = None
            errors.append(f"update: {e}")

        # 3. A click on the best job's node: until its row is in the lineage table and the genealogy's meta holds
        # its lineage (timed from the mouse press, in the page).
        try:
            node = page.evaluate(NODE)
            out["clicked_job"], out["nodes"] = node["job"], node["nodes"]
            page.evaluate(
                """([job, ms]) => {
                  window.__schedyPress = null;
                  addEventListener("mousedown", () => { window.__schedyPress = performance.now(); },
                                   { capture: true, once: true });
                  window.__schedyWait = __schedyWhen(() => {
                    const gd = document.getElementById("chart-genealogy"), meta = gd.layout && gd.layout.meta;
                    return document.querySelector('#lineage-table tr[data-job="' + CSS.escape(job) + '"]')
                      && meta && (meta.lineage || []).length > 0;
                  }, ms);
                }""",
                [node["job"], WAIT_MS],
            )
            points = page.locator("#chart-genealogy .scatterlayer .trace").nth(max(node["trace"], 0))
            point = points.locator("path.point").nth(max(node["point"], 0))
            if node["trace"] >= 0 and points.locator("path.point").count() == node["nodes"]:
                point.click(force=True)
            else:  # not one SVG path per node: a click where the node is drawn, scrolled to the middle
                page.evaluate("y => window.scrollBy(0, y - innerHeight / 2)", node["y"])
                node = page.evaluate(NODE)
                page.mouse.click(node["x"], node["y"])
            done = page.evaluate("() => window.__schedyWait")
            press = page.evaluate("() => window.__schedyPress")
            out["click_s"] = (done - press) / 1000
            out["lineage"] = page.evaluate(
                "() => document.getElementById('chart-genealogy').layout.meta.lineage.length"
            )
        except Exception as e:  # noqa: BLE001 - as above
            out["click_s"] = None
            errors.append(f"click: {e}")
    finally:
        context.close()
    out["errors"] = errors
    return out


def population_figures(browser, path, url, name, repeat):
    """Medians over ``repeat`` fresh pages of ``name``, and every page's figures."""
    pages = [population_page(browser, path, url, name) for _ in range(repeat)]
    keys = [k for k in pages[0] if k.endswith(("_s", "_ms"))]
    median = {}
    for k in keys:
        values = [p[k] for p in pages if p.get(k) is not None]
        median[k] = statistics.median(values) if values else None
    return {**median, "pages": pages}


POP_ROWS = [  # key, what, unit
    ("table_s", "navigation → table drawn", "s"),
    ("charts_s", "navigation → every chart drawn (genealogy included)", "s"),
    ("drawing_s", "… of which drawing them, plotly.js read", "s"),
    ("longest_task_ms", "longest main-thread task until then", "ms"),
    ("blocking_ms", "total blocking time until then (Σ of task − 50 ms)", "ms"),
    ("update_s", f"one commit → page redrawn at its version (poll {POLL} s)", "s"),
    ("update_request_s", "the page's request for it → page redrawn", "s"),
    ("update_answer_s", "… of which the server's answer", "s"),
    ("click_s", "click on a genealogy node → its lineage shown", "s"),
]


def population_table(pop, small, big):
    """The Markdown table of section 4: each figure, its ratio to the peer and to the limit."""

    def fmt(v, unit):
        return "failed" if v is None else (f"{v:.0f}" if unit == "ms" else f"{v:.3f}")

    def ratio(a, b):
        return "–" if a is None or not b else f"{a / b:.2f}"

    s, b = pop[small], pop[big]
    lines = [
        f"| measurement | {small} | {big} | {big} / {small} | {small} / limit | {big} / limit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, what, unit in POP_ROWS:
        scale = 1000 * LIMIT if unit == "ms" else LIMIT
        lines.append(
            f"| {what} ({unit}) | {fmt(s[key], unit)} | {fmt(b[key], unit)} | {ratio(b[key], s[key])} | "
            f"{ratio(s[key], scale)} | {ratio(b[key], scale)} |"
        )
    return "\n".join(lines)


def main(argv=None):
    started = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="10,000 jobs instead of 100,000, a PBT of 50 x 50, one page load each"
    )
    parser.add_argument("--jobs", type=int, default=None, help="jobs of the big experiments")
    parser.add_argument("--population-only", action="store_true", help="only section 4 (the PBT population views)")
    parser.add_argument("--dir", help="keep the databases in this directory (reused when present)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    big = args.jobs or (10_000 if args.quick else 100_000)
    repeat = 1 if args.quick else 3
    members, generations = POP_QUICK if args.quick else POP_BIG
    folder = args.dir or tempfile.mkdtemp(prefix="schedy-dash-bench-", dir=os.environ.get("TMPDIR", "/work"))
    out = {"machine": describe(["plotly", "playwright"]), "jobs": big, "limit_s": LIMIT}
    print(
        f"Machine: {out['machine']['usable_cpus']} CPUs, Python {out['machine']['python']}, "
        f"plotly {out['machine']['plotly']}, commit {out['machine']['schedy_commit']}"
    )
    try:
        if not args.population_only:
            t = time.perf_counter()
            for n in (1000, big):
                build(folder, n)
            print(f"databases ready in {time.perf_counter() - t:.1f} s ({folder})")
            out["server"] = {
                f"{kind}-{n}": server_figures(folder, f"{kind}-{n}") for n in (1000, big) for kind in ("pbt", "random")
            }
            out["server_peak_mib"] = command_memory(folder, [f"pbt-{big}", f"random-{big}"])
        pop_db = os.path.join(folder, "population")
        t = time.perf_counter()
        small, large = (build_population(pop_db, m, g) for m, g in (POP_PEER, (members, generations)))
        print(f"PBT populations ready in {time.perf_counter() - t:.1f} s ({pop_db})")
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            if not args.population_only:
                server = DashboardServer(schedy.SchedyDB(folder)._store, port=0)
                server.start()
                try:
                    out["plotly_alone_s"] = plotly_alone(browser, server.url, repeat)
                    out["page"] = {}
                    for n in (1000, big):
                        for kind in ("pbt", "random"):
                            name = f"{kind}-{n}"
                            get(f"{server.url}api/experiment?name={name}")  # the server has it open, as it would
                            out["page"][name] = browser_figures(browser, f"{server.url}#/experiment/{name}", repeat)
                            out["page"][name]["from_list_s"] = from_list(browser, server.url, name, repeat)
                            again = revisit(p, f"{server.url}#/experiment/{name}", repeat)
                            out["page"][name].update(
                                revisit_table_s=again["table_s"], revisit_charts_s=again["charts_s"]
                            )
                finally:
                    server.shutdown()
                    server.server_close()
                out["report"] = {f"pbt-{n}": report_figures(browser, folder, f"pbt-{n}", folder) for n in (1000, big)}
            proc, url = dashboard_command(pop_db)
            try:
                out["population"] = {"poll_s": POLL, "repeat": repeat}
                for name in (small, large):
                    get(f"{url}api/experiment?name={name}")  # the server has it open, as it would
                    out["population"][name] = population_figures(
                        browser, pop_db, f"{url}#/experiment/{name}", name, repeat
                    )
            finally:
                proc.terminate()
                proc.wait()
            browser.close()
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

    if not args.population_only:
        print_sections(out, big, repeat)
    print(
        f"\n4. PBT population views: {small} (members x generations) against {large}, served by `schedy dashboard "
        f"--poll {POLL}`; median of {repeat} fresh page{'s' if repeat > 1 else ''} (1400 x 1000); "
        f"limit {LIMIT:g} s (1000 ms for tasks)\n"
    )
    print(population_table(out["population"], small, large))
    for name in (small, large):
        for i, page in enumerate(out["population"][name]["pages"]):
            for error in page["errors"]:
                print(f"{name}, page {i + 1}: {error}")
    clicked = out["population"][large]["pages"][0]
    if clicked.get("click_s") is not None:
        print(
            f"\nThe click: job {clicked['clicked_job']} (the best) among {clicked['nodes']:,} scored nodes, "
            f"a lineage of {clicked['lineage']} segments."
        )
    out["elapsed_s"] = time.perf_counter() - started
    print(f"\nRun time: {out['elapsed_s']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


def print_sections(out, big, repeat):
    """Sections 1 to 3."""
    print("\n1. Server (fresh server each; full answer = every job)")
    print(
        f"{'experiment':>14} {'first (s)':>10} {'repeat (s)':>11} {'after a commit (s)':>19} "
        f"{'full MB':>8} {'delta B':>8}"
    )
    for name, s in out["server"].items():
        print(
            f"{name:>14} {s['first_request_s']:10.3f} {s['repeat_request_s']:11.4f} {s['after_commit_s']:19.4f} "
            f"{s['full_bytes'] / 1e6:8.2f} {s['delta_bytes']:8d}"
        )
    print(
        f"peak memory of `schedy dashboard` after serving both {big:,}-job experiments: "
        f"{out['server_peak_mib']:.0f} MiB"
    )
    print(f"\n2. Page in headless Chromium (median of {repeat}); plotly.js alone: {out['plotly_alone_s']:.3f} s")
    print(
        "Opened by its address: time to the table, and to the charts (which wait for plotly.js); "
        "opened from the list (plotly.js already read): time to the charts."
    )
    print("Visited again (a browser profile with a disk cache, after 3 visits): time to the table and the charts.")
    print(
        f"{'experiment':>14} {'table (s)':>10} {'/ limit':>8} {'charts (s)':>11} {'/ limit':>8} "
        f"{'from list (s)':>14} {'/ limit':>8} {'again: table':>13} {'charts (s)':>11} {'/ limit':>8}"
    )
    for name, s in out["page"].items():
        print(
            f"{name:>14} {s['table_s']:10.3f} {s['table_s'] / LIMIT:8.2f} {s['charts_s']:11.3f} "
            f"{s['charts_s'] / LIMIT:8.2f} {s['from_list_s']:14.3f} {s['from_list_s'] / LIMIT:8.2f} "
            f"{s['revisit_table_s']:13.3f} {s['revisit_charts_s']:11.3f} {s['revisit_charts_s'] / LIMIT:8.2f}"
        )
    for kind in ("pbt", "random"):
        a, b = out["page"][f"{kind}-1000"], out["page"][f"{kind}-{big}"]
        print(
            f"{kind}: {big:,} jobs vs 1,000: table {b['table_s'] / a['table_s']:.2f}x, charts "
            f"{b['charts_s'] / a['charts_s']:.2f}x, from the list {b['from_list_s'] / a['from_list_s']:.2f}x"
        )
    print("\n3. Report")
    for name, r in out["report"].items():
        print(
            f"{name:>14}: written in {r['write_s']:.2f} s, {r['bytes'] / 1e6:.1f} MB, opened to the charts in "
            f"{r['open_s']:.2f} s"
        )


if __name__ == "__main__":
    main()
