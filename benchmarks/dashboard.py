#!/usr/bin/env python
"""Benchmark of the dashboard and the report on big experiments: is a 100k-job page well under a second?

    pip install -e ".[test]"     # plotly and playwright; Debian's chromium at /usr/bin/chromium
    python benchmarks/dashboard.py [--quick] [--jobs N] [--dir DIR] [--json out.json]

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

Figures are ratios against the 1-second limit and against the 1,000-job
peer, measured in the same run; nothing is asserted. ``--dir`` keeps the
databases between runs (building 100,000 jobs takes about a minute).
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10,000 jobs instead of 100,000, one page load each")
    parser.add_argument("--jobs", type=int, default=None, help="jobs of the big experiments")
    parser.add_argument("--dir", help="keep the databases in this directory (reused when present)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    big = args.jobs or (10_000 if args.quick else 100_000)
    repeat = 1 if args.quick else 3
    folder = args.dir or tempfile.mkdtemp(prefix="schedy-dash-bench-", dir=os.environ.get("TMPDIR", "/work"))
    out = {"machine": describe(["plotly", "playwright"]), "jobs": big, "limit_s": LIMIT}
    print(
        f"Machine: {out['machine']['usable_cpus']} CPUs, Python {out['machine']['python']}, "
        f"plotly {out['machine']['plotly']}, commit {out['machine']['schedy_commit']}"
    )
    try:
        t = time.perf_counter()
        for n in (1000, big):
            build(folder, n)
        print(f"databases ready in {time.perf_counter() - t:.1f} s ({folder})")
        out["server"] = {
            f"{kind}-{n}": server_figures(folder, f"{kind}-{n}") for n in (1000, big) for kind in ("pbt", "random")
        }
        out["server_peak_mib"] = command_memory(folder, [f"pbt-{big}", f"random-{big}"])
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
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
                        out["page"][name].update(revisit_table_s=again["table_s"], revisit_charts_s=again["charts_s"])
            finally:
                server.shutdown()
                server.server_close()
            out["report"] = {f"pbt-{n}": report_figures(browser, folder, f"pbt-{n}", folder) for n in (1000, big)}
            browser.close()
    finally:
        if not args.dir:
            shutil.rmtree(folder, ignore_errors=True)

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
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
