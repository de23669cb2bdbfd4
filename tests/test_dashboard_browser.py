"""The dashboard and the report in a real browser (Debian's chromium driven by Playwright; see tests/browser.py).

One browser for the session, one fresh context (and page) per test. Two
databases, each served by one ``schedy dashboard`` subprocess for the whole
module: ``main`` holds a short simulated PBT and random search of the
lr-schedule problem (never written to after it is filled, so its pages are
the documentation's screenshots), ``scratch`` holds hostile names and the
experiments the live-update test writes to while a page watches.

Every number the page shows is compared with the same number computed
through the Python API. Every test waits on conditions (``body[data-ready]``,
``body[data-version]``, a row appearing), never on fixed sleeps.

Screenshots: every view is saved as a full-page PNG under the test's
tmp_path; with ``SCHEDY_DOCS_SCREENSHOTS=DIR`` the list, the PBT page, the
lineage, the random search and the report are also saved into DIR under the
names the documentation uses.
"""

import math
import os
import re
import selectors
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import browser
import pytest
from conftest import SCHEDY_EXE, log_size

import schedy
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import Choice, LogUniform, Uniform
from schedy.simulation import Durations, Failures, Problem, lr_schedule, simulate

PBT, RANDOM = "lr-schedule-pbt", "lr-schedule-random"
STATUSES = ["QUEUED", "RUNNING", "DONE", "CRASHED", "PRUNED"]
TIMEOUT_MS = 30_000  # every wait; the machine is shared and slow at times
DOCS_ENV = "SCHEDY_DOCS_SCREENSHOTS"

# Hostile text: names and values that are HTML, and an entity that must stay as written.
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
BOLD = "<b>bold</b>"
ITALIC = "<i>it</i>"
LOSS = "<i>loss</i> &amp;"  # a result name holding HTML and an entity (minimised: the name says loss)
NOTE = "<b>note</b>"
HOSTILE_PBT = "<img src=x onerror=alert(2)> & <b>pbt</b>"
URLISH = "50% /a?job=1#b c+d&e=%41"  # a name full of URL syntax: the route must carry it intact
TWO_HP = "pbt of two hyperparameters"


# -- the browser -----------------------------------------------------------------------------------------------


class Tab:
    """One page of a fresh browser context, with what went wrong on it: console errors, page errors, dialogs."""

    def __init__(self, context, tmp_path):
        self.context, self.tmp_path = context, tmp_path
        self.page = context.new_page()
        self.errors, self.dialogs = [], []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("dialog", self._dialog)

    def _console(self, message):
        if message.type == "error":
            self.errors.append(f"console {message.type}: {message.text}")

    def _dialog(self, dialog):
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def open(self, url, view):
        """Load ``url`` and wait until the page has drawn ``view`` ("list" or "experiment")."""
        self.page.goto(url)
        return self.ready(view)

    def ready(self, view):
        self.page.wait_for_selector(f'body[data-ready="1"][data-view="{view}"]', state="attached")
        return self

    def version(self):
        return int(self.page.get_attribute("body", "data-version"))

    def wait_version_after(self, version):
        """Wait until the page has drawn a commit after ``version``; return the new one."""
        self.page.wait_for_function("v => Number(document.body.dataset.version) > v", arg=version)
        return self.version()

    def traces(self, chart):
        """The traces Plotly holds for the chart div ``chart``: name, x, y and hover text of each."""
        return self.page.evaluate(
            """id => { const d = document.getElementById(id);
                       return (d.data || []).map(t => ({name: t.name, x: Array.from(t.x || []),
                                                        y: Array.from(t.y || []), text: t.text})); }""",
            chart,
        )

    def wait_charts(self, *charts):
        """Wait until Plotly has drawn each chart (its SVG is in the page)."""
        for c in charts:
            self.page.wait_for_selector(f"#{c} .main-svg", state="attached")

    def texts(self, selector):
        return self.page.locator(selector).all_inner_texts()

    def shot(self, name, docs_name=None):
        """A full-page PNG under tmp_path, and under $SCHEDY_DOCS_SCREENSHOTS as ``docs_name`` if both are set."""
        path = self.tmp_path / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000, f"the screenshot {path} is nearly empty"
        docs = os.environ.get(DOCS_ENV)
        if docs and docs_name:
            os.makedirs(docs, exist_ok=True)
            shutil.copyfile(path, os.path.join(docs, docs_name))
        return path

    def assert_clean(self):
        assert self.errors == [], "the page logged errors"
        assert self.dialogs == [], "the page opened a dialog: a name or value from a log ran as code"


@pytest.fixture
def tab(chromium, tmp_path):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    t = Tab(context, tmp_path)
    yield t
    context.close()


# -- the databases and their servers ---------------------------------------------------------------------------


class Dashboard:
    """``schedy dashboard --db DB --port 0 --poll 0.2`` in a subprocess; ``url`` is the address it prints."""

    def __init__(self, db, log_path):
        if not os.path.exists(SCHEDY_EXE):
            pytest.fail("the schedy executable is not installed next to the Python running the tests: pip install -e .")
        self.db = db
        self._stderr = open(log_path, "wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("SCHEDY_DB", None)
        self.proc = subprocess.Popen(
            [SCHEDY_EXE, "dashboard", "--db", db, "--port", "0", "--poll", "0.2"],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.first_line = self._first_line(timeout=60)
        m = re.search(r" on (http://127\.0\.0\.1:\d+/) \(read only; Ctrl-C to stop\)$", self.first_line)
        if not m:
            self.stop()
            pytest.fail(
                f"unexpected first line from schedy dashboard: {self.first_line!r}; "
                f"stderr: {Path(log_path).read_text(errors='replace')[-2000:]}"
            )
        self.url = m.group(1)

    def _first_line(self, timeout):
        deadline = time.monotonic() + timeout
        out = self.proc.stdout
        with selectors.DefaultSelector() as waiting:  # not select.select: it refuses descriptors past 1023
            waiting.register(out, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if waiting.select(0.5):
                    line = out.readline()
                    if line:
                        return line.decode("utf-8", "replace").rstrip("\n")
                if self.proc.poll() is not None:
                    break
        self.stop()
        pytest.fail(f"schedy dashboard printed no address (exit status {self.proc.returncode})")

    def page(self, name=None, job=None):
        """The address of the list (no name) or of one experiment's page, as the page's own links spell it."""
        if name is None:
            return self.url + "#/"
        return self.url + "#/experiment/" + quote(name, safe="") + (f"?job={quote(job, safe='')}" if job else "")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self._stderr.close()


@pytest.fixture(scope="module")
def main_db(tmp_path_factory):
    """A short simulated PBT (with crashed segments) and a random search of the lr-schedule problem."""
    path = str(tmp_path_factory.mktemp("dashboard") / "db")
    db = schedy.SchedyDB(path)
    problem = lr_schedule(population=8, segments=10, steps=100)
    strategies = problem.strategies()
    # Seed 1: 75 segments (5 crashed), 34 of them under a loss of 0.01: every table test has something to count.
    simulate(strategies["pbt"], problem, seed=1, failures=Failures(0.1), db=db, name=PBT)
    simulate(strategies["random"], problem, seed=0, segments_per_job=4, budget=80, db=db, name=RANDOM)
    return path


@pytest.fixture(scope="module")
def main(main_db, tmp_path_factory):
    server = Dashboard(main_db, tmp_path_factory.mktemp("dashboard-log") / "stderr.txt")
    yield server
    server.stop()


def _train(a, b):
    """A toy problem whose score (a loss) falls faster with larger hyperparameters ``a`` and ``b``."""

    def train(hps, state, steps, rng):
        x = (0.0 if state is None else state) + steps * hps[a] * hps[b]
        return x, 1.0 / (1.0 + x)

    return train


@pytest.fixture(scope="module")
def scratch_db(tmp_path_factory):
    """Hostile names (a manual search named <script>, a PBT whose hyperparameters and result are HTML, a name
    made of URL syntax) and a PBT of two numeric hyperparameters; the live-update tests add their own."""
    path = str(tmp_path_factory.mktemp("dashboard") / "db")
    db = schedy.SchedyDB(path, worker="browser-test")
    exp = db.add_experiment(schedy.ManualSearch(SCRIPT))
    values = [BOLD, IMG, ITALIC, "plain", "a & b"]
    for i, v in enumerate(values):
        exp.add_job({BOLD: v, IMG: 0.1 * (i + 1), "lr": 10.0 ** -(i + 1)})
    exp.add_job({BOLD: IMG, IMG: 9.0, "lr": 1.0})  # stays QUEUED
    for i in range(len(values)):
        with exp.next_job() as job:
            job.results = {LOSS: 1.0 / (i + 2), NOTE: IMG if i % 2 else BOLD}
    urlish = db.add_experiment(schedy.ManualSearch(URLISH))
    urlish.add_job({"lr": 0.5}, status="DONE", results={"loss": 0.25})
    pbt = schedy.PopulationBasedTraining(
        HOSTILE_PBT,
        MINIMIZE,
        LOSS,
        Truncate(0.25),
        {BOLD: Perturb(0.8, 1.2), IMG: Perturb(0.8, 1.2)},
        {BOLD: LogUniform(0.01, 1.0), IMG: Uniform(0.5, 2.0), NOTE: Choice([BOLD, ITALIC, SCRIPT])},
        population_size=4,
        max_generations=5,
    )
    problem = Problem(_train(BOLD, IMG), steps=1, segments=5, workers=2, durations=Durations(mean=60.0))
    simulate(pbt, problem, seed=1, db=db, name=HOSTILE_PBT)
    simulate_two_hyperparameters(db, TWO_HP)
    return path


def simulate_two_hyperparameters(db, name):
    """A short simulated PBT of ``lr`` and ``momentum`` (4 members, 6 generations) named ``name`` in ``db``."""
    pbt = schedy.PopulationBasedTraining(
        name,
        MINIMIZE,
        "loss",
        Truncate(0.25),
        {"lr": Perturb(0.8, 1.2), "momentum": Perturb(0.8, 1.2)},
        {"lr": LogUniform(0.01, 1.0), "momentum": Uniform(0.5, 0.99)},
        population_size=4,
        max_generations=6,
    )
    problem = Problem(_train("lr", "momentum"), steps=1, segments=6, workers=2, durations=Durations(mean=60.0))
    simulate(pbt, problem, seed=2, db=db, name=name)


@pytest.fixture(scope="module")
def scratch(scratch_db, tmp_path_factory):
    server = Dashboard(scratch_db, tmp_path_factory.mktemp("dashboard-log") / "stderr.txt")
    yield server
    server.stop()


# -- what the Python API says ---------------------------------------------------------------------------------


def is_num(v):
    return type(v) in (int, float) and math.isfinite(v)


def kind_of(exp):
    for cls, kind in (
        (schedy.PopulationBasedTraining, "pbt"),
        (schedy.RandomSearch, "random"),
        (schedy.ManualSearch, "manual"),
    ):
        if isinstance(exp, cls):
            return kind
    raise AssertionError(f"unknown kind of experiment {exp!r}")


class Expected:
    """One experiment as the Python API reads it, and the numbers the page must show for it."""

    def __init__(self, db_path, name, score="loss", goal="min"):
        self.exp = schedy.SchedyDB(db_path).get_experiment(name)
        self.name, self.score, self.goal = name, score, goal
        self.jobs = sorted(self.exp.all_jobs(), key=lambda j: int(j.job_id))
        self.by_id = {j.job_id: j for j in self.jobs}
        self.counts = Counter(j.status for j in self.jobs)
        self.scored = [j for j in self.jobs if j.status == "DONE" and is_num(j.results.get(score))]
        pick = min if goal == "min" else max
        self.best = pick(self.scored, key=lambda j: j.results[score]) if self.scored else None

    @property
    def best_value(self):
        return self.best.results[self.score]


def close(text, value):
    """The page shows numbers to 6 significant digits (``+v.toPrecision(6)``): ``text`` is ``value`` rounded so."""
    return float(text) == float(f"{value:.6g}")


def css(s):
    """``s`` as a double-quoted CSS string, for attribute selectors holding any text."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ") + '"'


def check_best_text(text, expected):
    """The "best score" cell: ``<value> (<score name>, job <id>)``."""
    m = re.fullmatch(r"(\S+) \((.*), job (\S+)\)", text.strip())
    assert m, f"unexpected best score cell {text!r}"
    assert close(m.group(1), expected.best_value), (text, expected.best_value)
    assert m.group(2) == expected.score
    assert m.group(3) == expected.best.job_id


def check_summary(tab, expected):
    """tr#summary of an experiment's page: kind, status, jobs, counts by status, best score."""
    row = tab.page.locator("tr#summary")
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == kind_of(expected.exp)
    assert cells[1] == expected.exp.status
    assert int(cells[2]) == len(expected.jobs)
    for s in STATUSES:
        assert int(row.locator(f'td[data-status="{s}"]').inner_text()) == expected.counts.get(s, 0), s
    check_best_text(row.locator("td.best").inner_text(), expected)


def check_best_chart(tab, expected):
    """#chart-best: every finished scored job once, and the best so far ending on the best score."""
    traces = {t["name"]: t for t in tab.traces("chart-best")}
    assert set(traces) == {"each job", "best so far"}
    assert len(traces["each job"]["y"]) == len(expected.scored)
    assert sorted(traces["each job"]["y"]) == sorted(j.results[expected.score] for j in expected.scored)
    best = traces["best so far"]["y"]
    assert best[-1] == expected.best_value
    pairs = zip(best, best[1:])
    assert all((b <= a) if expected.goal == "min" else (b >= a) for a, b in pairs), "the best so far got worse"


def check_pbt_charts(tab, expected):
    """#chart-members: one trace per member with each of its scored segments, and one marker per exploit."""
    traces = tab.traces("chart-members")
    exploit = "exploit (copied a better member)"
    names = [t["name"] for t in traces]
    assert names[-1] == exploit and names.count(exploit) == 1
    per_member = Counter(j.member for j in expected.scored)
    assert {t["name"]: len(t["y"]) for t in traces[:-1]} == {f"member {m}": n for m, n in per_member.items()}
    for t in traces[:-1]:
        m = int(t["name"].split()[-1])
        assert sorted(t["y"]) == sorted(j.results[expected.score] for j in expected.scored if j.member == m)
    exploits = [j for j in expected.jobs if j.parent_id is not None and expected.by_id[j.parent_id].member != j.member]
    assert exploits, "the simulation should have exploited at least once"
    assert len(traces[-1]["x"]) == len(traces[-1]["y"]) == len(exploits)
    assert sorted(traces[-1]["y"]) == sorted(expected.by_id[j.parent_id].results[expected.score] for j in exploits)


def shown_number(v):
    """A number as the page writes it (JavaScript's String of a 6-digit float; an integer without a point)."""
    v = float(f"{v:.6g}")
    return str(int(v)) if v == int(v) else repr(v)


def continued_from(chain, i, hps):
    """The lineage table's "continued from" cell of segment ``i`` of ``chain``, from the Python API."""
    if i == 0:
        return "start"
    job, parent = chain[i], chain[i - 1]
    text = (
        f"member {parent.member} (job {parent.job_id})"
        if parent.member != job.member
        else f"its own segment (job {parent.job_id})"
    )
    changes = []
    for h in hps:
        a, b = parent.hyperparameters[h], job.hyperparameters[h]
        if shown_number(a) != shown_number(b):
            changes.append(f"{h} ×{shown_number(float(f'{b / a:.3g}'))}")
    return text + "".join(", " + c for c in changes)


def page_info(tab):
    return tab.page.inner_text("#page-info")


def wait_page_info(tab, text):
    """Wait until the table's pager reads ``text`` (the table is redrawn 200 ms after typing in the filter)."""
    tab.page.wait_for_function("t => document.getElementById('page-info').textContent === t", arg=text)


def job_ids(tab):
    return tab.page.locator("#jobs-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)")


def column(tab, key):
    return tab.page.locator(f"#jobs-table tbody td[data-key={css(key)}]").all_inner_texts()


# -- 1. the list of experiments ---------------------------------------------------------------------------------


def test_experiments_list(tab, main, main_db):
    """Every experiment of the database, with its kind, status, jobs by status and best score."""
    tab.open(main.page(), "list")
    db = schedy.SchedyDB(main_db)
    names = sorted(e.name for e in db.get_experiments())
    assert names == [PBT, RANDOM]
    rows = tab.page.locator("table#experiments tbody tr")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.name)") == names
    for name in names:
        expected = Expected(main_db, name)
        row = tab.page.locator(f"table#experiments tr[data-name={css(name)}]")
        cells = row.locator("td").all_inner_texts()
        assert cells[0] == name
        assert row.locator("td").first.locator("a").get_attribute("href") == "#/experiment/" + quote(name, safe="")
        # The best job is one click away: its link opens the experiment at its lineage.
        best = row.locator("td.best a.best-job")
        assert best.inner_text() == expected.best.job_id
        assert best.get_attribute("href") == "#/experiment/" + quote(name, safe="") + "?job=" + expected.best.job_id
        assert cells[1] == kind_of(expected.exp)
        assert cells[2] == expected.exp.status
        assert int(cells[3]) == len(expected.jobs)
        for s in STATUSES:
            assert int(row.locator(f'td[data-status="{s}"]').inner_text()) == expected.counts.get(s, 0), (name, s)
        check_best_text(row.locator("td.best").inner_text(), expected)
    assert Expected(main_db, PBT).counts["CRASHED"] > 0, "the simulation should have crashed segments to count"
    tab.shot("list", "dashboard-list.png")
    tab.assert_clean()


def test_the_list_compares_the_best_scores_of_ticked_experiments(tab, main, main_db):
    """Ticking PBT and random search on the same problem draws each one's best loss so far on one chart."""
    tab.open(main.page(), "list")
    assert tab.page.locator("#chart-compare").is_hidden()
    for name in (PBT, RANDOM):
        tab.page.locator(f"input[data-compare={css(name)}]").check()
    tab.page.wait_for_function(
        "n => { const m = (document.getElementById('chart-compare').layout || {}).meta;"
        " return m && m.experiments.length === n; }",
        arg=2,
    )
    traces = tab.traces("chart-compare")
    assert [t["name"] for t in traces] == [f"{n} (loss, lower is better)" for n in sorted((PBT, RANDOM))]
    for t, name in zip(traces, sorted((PBT, RANDOM))):
        expected = Expected(main_db, name)
        scores = sorted(j.results["loss"] for j in expected.scored)
        assert t["x"] == list(range(1, len(expected.scored) + 1))  # one point per scored job, in finishing order
        assert t["y"] == sorted(t["y"], reverse=True), "the best so far got worse"
        assert t["y"][-1] == expected.best_value and t["y"][0] in scores
        holders = {text.removeprefix("job ") for text in t["text"]}
        assert all(expected.by_id[j].results["loss"] in t["y"] for j in holders)
    tab.shot("compare", "dashboard-compare.png")
    tab.page.select_option("#compare-x", "time")
    tab.page.wait_for_function(
        "() => document.getElementById('chart-compare').layout.xaxis.title.text.startsWith('seconds')"
    )
    for t in tab.traces("chart-compare"):
        assert t["x"] == sorted(t["x"]) and t["x"][0] >= 0
    tab.page.locator(f"input[data-compare={css(RANDOM)}]").uncheck()
    tab.page.wait_for_function("() => document.getElementById('chart-compare').layout.meta.experiments.length === 1")
    tab.assert_clean()


# -- 2. a PBT experiment ------------------------------------------------------------------------------------------


def test_pbt_experiment(tab, main, main_db):
    """A PBT experiment: summary, best-so-far and members charts, exploits, and the jobs table's controls."""
    expected = Expected(main_db, PBT)
    n = len(expected.jobs)
    assert 50 < n < 100, "the simulation should fill more than one page of jobs but less than two"
    tab.open(main.page(PBT), "experiment")
    tab.wait_charts("chart-best", "chart-members")
    assert tab.page.inner_text("h1#title") == PBT
    assert tab.version() == log_size(schedy.SchedyDB(main_db), PBT)  # one record per commit
    check_summary(tab, expected)
    check_best_chart(tab, expected)
    check_pbt_charts(tab, expected)
    assert tab.page.locator("#chart-scatter").is_hidden()
    tab.shot("pbt", "dashboard-pbt.png")

    # The jobs table: the first page of 50, in the order they were added.
    assert page_info(tab) == f"jobs 1–50 of {n}"
    assert job_ids(tab) == [j.job_id for j in expected.jobs[:50]]
    assert tab.page.is_disabled("#prev-page") and tab.page.is_enabled("#next-page")

    # Sorting by loss: the minimum first, then (clicked again) the maximum first; unscored jobs last either way.
    losses = [j.results["loss"] for j in expected.jobs if is_num(j.results.get("loss"))]
    header = tab.page.locator('#jobs-table th[data-key="result.loss"]')
    header.click()
    tab.page.wait_for_selector('#jobs-table th[data-key="result.loss"]:has-text("▲")')
    first = column(tab, "result.loss")
    assert close(first[0], min(losses))
    assert [float(x) for x in first] == sorted(float(x) for x in first)
    assert (
        job_ids(tab)[0]
        == min((j for j in expected.jobs if is_num(j.results.get("loss"))), key=lambda j: j.results["loss"]).job_id
    )
    header.click()
    tab.page.wait_for_selector('#jobs-table th[data-key="result.loss"]:has-text("▼")')
    first = column(tab, "result.loss")
    assert close(first[0], max(losses))
    assert [float(x) for x in first] == sorted((float(x) for x in first), reverse=True)
    tab.page.locator('#jobs-table th[data-key="id"]').click()
    tab.page.wait_for_selector('#jobs-table th[data-key="id"]:has-text("▲")')

    # The status filter.
    for status in ("CRASHED", "DONE"):
        tab.page.select_option("#status-filter", status)
        k = expected.counts[status]
        want = f"jobs 1–{min(k, 50)} of {k}"
        wait_page_info(tab, want)
        assert set(column(tab, "status")) == {status}
        assert job_ids(tab) == [j.job_id for j in expected.jobs if j.status == status][:50]
    tab.page.select_option("#status-filter", "")

    # The text filter: a comparison on one column.
    low = [j for j in expected.jobs if is_num(j.results.get("loss")) and j.results["loss"] < 0.01]
    assert 0 < len(low) < 50
    tab.page.fill("#job-filter", "loss < 0.01")
    want = f"jobs 1–{len(low)} of {len(low)}"
    wait_page_info(tab, want)
    assert job_ids(tab) == [j.job_id for j in low]
    tab.page.fill("#job-filter", "")
    wait_page_info(tab, f"jobs 1–50 of {n}")

    # The next page.
    tab.page.click("#next-page")
    wait_page_info(tab, f"jobs 51–{n} of {n}")
    assert job_ids(tab) == [j.job_id for j in expected.jobs[50:]]
    assert tab.page.is_disabled("#next-page") and tab.page.is_enabled("#prev-page")
    tab.page.click("#prev-page")
    wait_page_info(tab, f"jobs 1–50 of {n}")
    tab.assert_clean()


# -- 3. the lineage of the best job ----------------------------------------------------------------------------


def test_lineage_of_best_job(tab, main, main_db):
    """?job=ID shows the chain of segments that produced the job, as exp.lineage() gives it, and its schedule."""
    expected = Expected(main_db, PBT)
    best = expected.best
    chain = expected.exp.lineage(best.job_id)
    assert len(chain) > 2 and chain[-1].job_id == best.job_id
    tab.open(main.page(PBT, best.job_id), "experiment")
    tab.page.wait_for_selector("#lineage-table")
    tab.wait_charts("chart-schedule")
    rows = tab.page.locator("#lineage-table tbody tr")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == [j.job_id for j in chain]
    heads = tab.texts("#lineage-table thead th")
    assert heads[:6] == ["generation", "job", "member", "continued from", "status", "loss"] and "lr" in heads
    table = [row.locator("td").all_inner_texts() for row in rows.all()]
    assert [int(r[0]) for r in table] == [j.generation for j in chain] == list(range(len(chain)))
    assert [r[1] for r in table] == [j.job_id for j in chain]
    assert [int(r[2]) for r in table] == [j.member for j in chain]
    lr = heads.index("lr")
    for r, j in zip(table, chain):
        assert close(r[lr], j.hyperparameters["lr"]), (r, j)
        assert close(r[5], j.results["loss"]), (r, j)
    # How each segment began, an exploit named with the member and job it copied and how lr moved from there.
    assert [r[3] for r in table] == [continued_from(chain, i, ["lr"]) for i in range(len(chain))]
    exploit_rows = rows.evaluate_all("rows => rows.map(r => r.classList.contains('exploit'))")
    assert exploit_rows == [i > 0 and chain[i - 1].member != j.member for i, j in enumerate(chain)]
    assert any(exploit_rows), "the best job's lineage should hold an exploit"
    schedule = tab.traces("chart-schedule")
    assert [t["name"] for t in schedule] == ["lr", "loss"]  # the score under the schedule
    assert schedule[0]["x"] == schedule[1]["x"] == [j.generation for j in chain]
    assert schedule[0]["y"] == [j.hyperparameters["lr"] for j in chain]
    assert schedule[1]["y"] == [j.results["loss"] for j in chain]
    tab.shot("lineage", "dashboard-lineage.png")

    # "close" hides the lineage; the same lineage is reached as a reader does: sort by loss, click the first job.
    tab.page.locator("#lineage a", has_text="close").click()
    tab.page.wait_for_selector("#lineage-table", state="detached")
    assert tab.page.evaluate("location.hash") == "#/experiment/" + quote(PBT, safe="")
    tab.page.locator('#jobs-table th[data-key="result.loss"]').click()
    tab.page.wait_for_selector('#jobs-table th[data-key="result.loss"]:has-text("▲")')
    assert job_ids(tab)[0] == best.job_id
    tab.page.locator("#jobs-table tbody tr").first.locator('td[data-key="id"] a').click()
    tab.page.wait_for_selector(f"#lineage-table tr[data-job={css(best.job_id)}]")
    tab.ready("experiment")
    tab.wait_charts("chart-schedule")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == [j.job_id for j in chain]
    tab.assert_clean()


# -- 4. a random search -----------------------------------------------------------------------------------------


def test_random_search(tab, main, main_db):
    """A random search: the score against the hyperparameter instead of the members chart."""
    expected = Expected(main_db, RANDOM)
    tab.open(main.page(RANDOM), "experiment")
    tab.wait_charts("chart-best", "chart-scatter")
    check_summary(tab, expected)
    check_best_chart(tab, expected)
    assert tab.page.locator("#chart-scatter").is_visible()
    assert tab.page.locator("#chart-members").is_hidden()
    assert tab.page.locator("#chart-members .main-svg").count() == 0
    assert tab.page.locator("select#scatter-x option").all_inner_texts() == ["lr"]
    (scatter,) = tab.traces("chart-scatter")
    assert len(scatter["x"]) == len(scatter["y"]) == len(expected.scored) > 5
    assert sorted(zip(scatter["x"], scatter["y"])) == sorted(
        (j.hyperparameters["lr"], j.results["loss"]) for j in expected.scored
    )
    assert tab.page.locator("#chart-scatter .xtitle").text_content() == "lr"
    assert page_info(tab) == f"jobs 1–{len(expected.jobs)} of {len(expected.jobs)}"
    tab.shot("random", "dashboard-random.png")
    tab.assert_clean()


# -- 5. live updates ---------------------------------------------------------------------------------------------


def test_live_update(tab, scratch, scratch_db):
    """A page left open follows the log: new jobs, finished jobs, a better best score, a new experiment."""
    db = schedy.SchedyDB(scratch_db, worker="browser-test")
    name = "live queue"
    exp = db.add_experiment(schedy.ManualSearch(name))
    exp.add_job({"lr": 0.1})
    with exp.next_job() as job:
        job.results = {"loss": 0.5}
    exp.add_job({"lr": 0.05})
    tab.open(scratch.page(name), "experiment")
    assert job_ids(tab) == ["1", "2"]
    v0 = tab.version()
    summary = tab.page.locator("tr#summary")
    assert summary.locator('td[data-status="QUEUED"]').inner_text() == "1"

    # A new job appears, without reloading.
    new = exp.add_job({"lr": 0.02})
    tab.page.wait_for_selector(f"#jobs-table tr[data-job={css(new.job_id)}]")
    v1 = tab.wait_version_after(v0)
    assert job_ids(tab) == ["1", "2", new.job_id]
    assert summary.locator('td[data-status="QUEUED"]').inner_text() == "2"
    assert page_info(tab) == "jobs 1–3 of 3"

    # A worker finishes job 2 with a better loss: the counts, the row, the best score and the chart follow.
    with exp.next_job() as job:
        assert job.job_id == "2"
        job.results = {"loss": 0.0125}
    tab.page.wait_for_function(
        "() => document.querySelector('tr#summary td.best').textContent === '0.0125 (loss, job 2)'"
    )
    assert tab.version() > v1
    assert summary.locator('td[data-status="DONE"]').inner_text() == "2"
    assert summary.locator('td[data-status="QUEUED"]').inner_text() == "1"
    assert tab.page.inner_text('#jobs-table tr[data-job="2"] td[data-key="status"]') == "DONE"
    assert tab.page.inner_text('#jobs-table tr[data-job="2"] td[data-key="result.loss"]') == "0.0125"
    best = {t["name"]: t for t in tab.traces("chart-best")}["best so far"]
    assert best["y"][-1] == 0.0125
    tab.assert_clean()

    # The list follows too: a new experiment appears.
    tab.open(scratch.page(), "list")
    tab.page.wait_for_selector(f"table#experiments tr[data-name={css(name)}]")
    added = "live: appeared later"
    db.add_experiment(schedy.ManualSearch(added))
    row = tab.page.locator(f"table#experiments tr[data-name={css(added)}]")
    row.wait_for()
    assert row.locator("td").first.inner_text() == added
    assert row.locator("td").nth(1).inner_text() == "manual"
    assert row.locator("td").nth(3).inner_text() == "0"
    assert tab.page.locator("table#experiments tbody tr").count() == len(list(db.get_experiments()))
    tab.assert_clean()


def test_a_reply_that_comes_after_the_reader_moved_on_is_dropped(tab, scratch, scratch_db):
    """A live update asked for on one page and answered after the reader went to another is not drawn.

    Failed before the fix: load() drew the route it had started with, so a poll of an experiment answered after
    the reader had opened the list put the experiment's page back over the list, its address still the list's
    (and, when the list came in between, drew its charts into a page that no longer held them: "Cannot set
    properties of null"). The browser holds the poll's reply until the reader has moved.
    """
    db = schedy.SchedyDB(scratch_db, worker="browser-test")
    name = "stale reply"
    exp = db.add_experiment(schedy.ManualSearch(name))
    exp.add_job({"lr": 0.1}, status="DONE", results={"loss": 0.5})
    tab.open(scratch.page(name), "experiment")
    tab.wait_charts("chart-best")
    held = []

    def hold(route):
        held.append(route)

    tab.page.route("**/api/experiment?*", hold)
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not held:  # the next live update asks within the poll interval (0.2 s)
        assert time.monotonic() < deadline, "the page asked for no live update"
        tab.page.wait_for_timeout(20)
    tab.page.evaluate("location.hash = '#/'")
    tab.ready("list")
    # Every page the body says it shows from now on (a stale draw would be undone by the next live update).
    tab.page.evaluate(
        """() => { window.viewsShown = [];
                   new MutationObserver(() => window.viewsShown.push(document.body.dataset.view))
                       .observe(document.body, {attributes: true, attributeFilter: ["data-view"]}); }"""
    )
    # Live updates run one after another: the next one asks for the list only once the held one is answered.
    with tab.page.expect_request(lambda r: r.url.endswith("/api/experiments")):
        held[0].continue_()
    tab.page.unroute("**/api/experiment?*")
    assert tab.page.get_attribute("body", "data-view") == "list"
    assert "experiment" not in tab.page.evaluate("window.viewsShown"), "the held reply drew its experiment's page"
    assert tab.page.locator(f"table#experiments tr[data-name={css(name)}]").count() == 1
    assert tab.page.title() == "Schedy: experiments"
    tab.assert_clean()


def test_missing_experiment(tab, main):
    """The page of an experiment that does not exist says so, with a way back."""
    tab.open(main.page("no such experiment"), "missing")
    assert tab.page.inner_text("#error") == "no experiment named 'no such experiment'"
    assert tab.page.locator("#main a").get_attribute("href") == "#/"
    # The 404 of the API call is the only error the browser reports (once, or again if a live update asked
    # again before this line: how often depends on the machine's speed, not on the page).
    assert tab.errors and all("404" in e for e in tab.errors), tab.errors
    assert tab.dialogs == []


# -- 6. hostile names and values ---------------------------------------------------------------------------------


NO_MARKUP = """() => ({
    img: document.querySelectorAll('img').length,
    b: document.querySelectorAll('main b, main i, main script, header b').length,
    scripts: Array.from(document.scripts)
        .filter(s => s.type !== 'application/json' && s.textContent.includes('alert(')).length,
    bold_svg: document.querySelectorAll('.main-svg tspan[style*="bold"], .main-svg tspan[style*="italic"]').length,
})"""


def check_no_markup(tab):
    """No element was made from a name or a value: no <img>, <b>, <i> or <script>, no bold or italic SVG text."""
    assert tab.page.evaluate(NO_MARKUP) == {"img": 0, "b": 0, "scripts": 0, "bold_svg": 0}


def svg_texts(tab, selector):
    return tab.page.locator(selector).evaluate_all("nodes => nodes.map(n => n.textContent)")


def check_hostile_manual(tab, expected):
    """The manual search named <script>: every name and value shown as written, in the DOM and in the charts."""
    assert tab.page.inner_text("h1#title") == SCRIPT
    assert tab.page.title() == "Schedy: " + SCRIPT
    heads = tab.texts("#jobs-table thead th")
    for h in (BOLD, IMG, LOSS, NOTE):
        assert any(x.rstrip(" ▲▼") == h for x in heads), (h, heads)
    assert column(tab, "hp." + BOLD) == [j.hyperparameters[BOLD] for j in expected.jobs]
    assert column(tab, "result." + NOTE) == [j.results.get(NOTE, "") for j in expected.jobs]
    assert tab.page.get_attribute(f"#jobs-table th[data-key={css('hp.' + IMG)}]", "title") == "sort by hp." + IMG
    check_best_text(tab.page.locator("tr#summary td.best").inner_text(), expected)
    # The charts: Plotly reads <b>, <i> and entities in labels; what the reader sees must be the literal text.
    assert svg_texts(tab, "#chart-best .gtitle") == [f"Best {LOSS} over time"]
    assert svg_texts(tab, "#chart-best .ytitle") == [LOSS]
    assert svg_texts(tab, "#chart-scatter .gtitle") == [f"{LOSS} against {BOLD}"]
    assert svg_texts(tab, "#chart-scatter .xtitle") == [BOLD]
    done_values = {j.hyperparameters[BOLD] for j in expected.scored}
    assert set(svg_texts(tab, "#chart-scatter .xtick text")) == done_values
    assert [o for o in tab.texts("select#scatter-x option")] == sorted([BOLD, IMG, "lr"])
    assert tab.texts("select#score-name option") == sorted([LOSS, NOTE])
    assert tab.page.eval_on_selector("select#score-name", "s => s.value") == LOSS


def test_hostile_names(tab, scratch, scratch_db):
    expected = Expected(scratch_db, SCRIPT, score=LOSS)
    assert expected.counts == {"DONE": 5, "QUEUED": 1}

    # The list: both hostile experiments, their names as text, in the cells and in the data attributes.
    tab.open(scratch.page(), "list")
    for name, score in ((SCRIPT, LOSS), (HOSTILE_PBT, LOSS)):
        row = tab.page.locator(f"table#experiments tr[data-name={css(name)}]")
        assert row.locator("td a").first.inner_text() == name
        check_best_text(row.locator("td.best").inner_text(), Expected(scratch_db, name, score=score))
    check_no_markup(tab)

    # The manual search named <script>, reached by its link in the list.
    tab.page.locator(f"table#experiments tr[data-name={css(SCRIPT)}] td:first-child a").click()
    tab.ready("experiment")
    tab.wait_charts("chart-best", "chart-scatter")
    check_hostile_manual(tab, expected)
    check_no_markup(tab)
    tab.shot("hostile-manual")

    # The numeric hyperparameter named <img ...> on the scatter's x axis.
    tab.page.select_option("#scatter-x", IMG)
    tab.page.wait_for_function(
        "t => { const n = document.querySelector('#chart-scatter .xtitle'); return n && n.textContent === t; }", arg=IMG
    )
    assert svg_texts(tab, "#chart-scatter .gtitle") == [f"{LOSS} against {IMG}"]

    # The text filter finds HTML as text, in hyperparameter and result values alike.
    tab.page.fill("#job-filter", "<img")
    want = [j.job_id for j in expected.jobs if "<img" in j.hyperparameters[BOLD] or "<img" in j.results.get(NOTE, "")]
    assert len(want) == 3
    wait_page_info(tab, f"jobs 1–{len(want)} of {len(want)}")
    assert job_ids(tab) == want
    check_no_markup(tab)
    tab.page.fill("#job-filter", "")  # the table's filter stays from one experiment to the next
    n = len(expected.jobs)
    wait_page_info(tab, f"jobs 1–{n} of {n}")

    # The hostile PBT: its lineage table and schedule chart, whose legend and axes are hyperparameter names.
    pbt = Expected(scratch_db, HOSTILE_PBT, score=LOSS)
    chain = pbt.exp.lineage(pbt.best.job_id)
    assert len(chain) > 1
    tab.open(scratch.page(HOSTILE_PBT, pbt.best.job_id), "experiment")
    tab.wait_charts("chart-best", "chart-members", "chart-schedule")
    assert tab.page.inner_text("h1#title") == HOSTILE_PBT
    heads = tab.texts("#lineage-table thead th")
    assert heads == ["generation", "job", "member", "continued from", "status", LOSS, *sorted([BOLD, IMG, NOTE])]
    cells = [r.locator("td").all_inner_texts() for r in tab.page.locator("#lineage-table tbody tr").all()]
    assert [r[heads.index(NOTE)] for r in cells] == [j.hyperparameters[NOTE] for j in chain]
    assert [r[1] for r in cells] == [j.job_id for j in chain]
    assert sorted(svg_texts(tab, "#chart-schedule .legendtext")) == sorted([BOLD, IMG, LOSS])
    assert svg_texts(tab, "#chart-schedule .gtitle") == [
        f"Hyperparameter schedule of job {pbt.best.job_id}, and its {LOSS}"
    ]
    titles = "#chart-schedule .ytitle, #chart-schedule .y2title, #chart-schedule .y3title"
    assert sorted(svg_texts(tab, titles)) == sorted([BOLD, IMG, LOSS])
    assert svg_texts(tab, "#chart-members .gtitle") == [f"Every member's {LOSS} (× marks an exploit)"]
    check_no_markup(tab)
    tab.shot("hostile-pbt")

    # A name made of URL syntax, reached by its link in the list: the page of that experiment, not of another.
    tab.open(scratch.page(), "list")
    tab.page.locator(f"table#experiments tr[data-name={css(URLISH)}] td:first-child a").click()
    tab.ready("experiment")
    assert tab.page.inner_text("h1#title") == URLISH
    assert job_ids(tab) == ["1"]
    assert tab.page.locator("#lineage-table").count() == 0  # "?job=1" in the name is not a route to a lineage
    tab.assert_clean()


# -- 7. the report ----------------------------------------------------------------------------------------------


def write_report(db, name, path):
    env = dict(os.environ)
    env.pop("SCHEDY_DB", None)
    done = subprocess.run(
        [SCHEDY_EXE, "report", name, "--db", db, "-o", str(path)], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert path.stat().st_size > 1_000_000  # plotly.js is inside
    return path


@pytest.fixture(scope="module")
def pbt_report(main_db, tmp_path_factory):
    """``schedy report`` of the PBT experiment, written once for the module."""
    return write_report(main_db, PBT, tmp_path_factory.mktemp("report") / "report.html")


def open_offline(chromium, tmp_path, path, fragment="", view="experiment"):
    """A tab on the file ``path`` (+ ``fragment``) with every request but that file refused.

    Returns ``(tab, attempted, url)``: ``attempted`` collects the URL of every request the page tried,
    refused or not, so that a test can assert it was only the file itself.
    """
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, offline=True)
    context.set_default_timeout(TIMEOUT_MS)
    url = path.resolve().as_uri()
    attempted = []

    def refuse(route):
        attempted.append(route.request.url)
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    context.route("**/*", refuse)
    tab = Tab(context, tmp_path)
    tab.page.on("request", lambda r: attempted.append(r.url))
    try:
        tab.page.goto(url + fragment)
        tab.page.wait_for_selector('body[data-ready="1"]', state="attached")
        if view is not None:
            tab.ready(view)
    except BaseException:
        context.close()
        raise
    return tab, attempted, url


def report_route(name, job=None):
    return "#/experiment/" + quote(name, safe="") + (f"?job={quote(job, safe='')}" if job else "")


def test_report_offline(chromium, tmp_path, main_db, pbt_report):
    """``schedy report`` opened from a file with every request refused: the same numbers and charts."""
    expected = Expected(main_db, PBT)
    # Opened on the experiment's route: test_report_opens_on_its_experiment checks the bare file's own route.
    tab, attempted, url = open_offline(chromium, tmp_path, pbt_report, report_route(PBT))
    try:
        tab.wait_charts("chart-best", "chart-members")
        assert tab.page.get_attribute("body", "data-view") == "experiment"
        assert tab.page.inner_text("h1#title") == PBT
        assert tab.page.inner_text("header .mode").startswith("report: commit ")
        assert tab.version() == log_size(schedy.SchedyDB(main_db), PBT)
        assert tab.version() == int(tab.page.locator("tr#summary td").last.inner_text())
        check_summary(tab, expected)
        check_best_chart(tab, expected)
        check_pbt_charts(tab, expected)
        assert page_info(tab) == f"jobs 1–50 of {len(expected.jobs)}"
        assert tab.page.locator("a", has_text="all experiments").count() == 0  # no server to go back to
        tab.shot("report", "report.png")
        # The table and the lineage work from the file too (the route is in the fragment).
        tab.page.click("#next-page")
        wait_page_info(tab, f"jobs 51–{len(expected.jobs)} of {len(expected.jobs)}")
        tab.page.goto(url + report_route(PBT, expected.best.job_id))
        tab.page.wait_for_selector("#lineage-table")
        tab.wait_charts("chart-schedule")
        chain = expected.exp.lineage(expected.best.job_id)
        assert tab.page.locator("#lineage-table tbody tr").evaluate_all("rs => rs.map(r => r.dataset.job)") == [
            j.job_id for j in chain
        ]
        assert set(attempted) == {url}, f"the report tried to fetch {sorted(set(attempted) - {url})}"
        tab.assert_clean()
    finally:
        tab.context.close()


def test_hostile_report(chromium, tmp_path, scratch_db):
    """The report of the experiment named <script>: the same literal text as the live page, and no dialog.

    The report's policy allows inline scripts, so there a name taken for HTML would run (the dialog check).
    """
    expected = Expected(scratch_db, SCRIPT, score=LOSS)
    report = write_report(scratch_db, SCRIPT, tmp_path / "hostile.html")
    # The file as it opens (see test_report_opens_on_its_experiment for which view that is).
    tab, attempted, url = open_offline(chromium, tmp_path, report, view=None)
    try:
        if tab.page.get_attribute("body", "data-view") == "list":
            assert (
                tab.page.locator(f"table#experiments tr[data-name={css(SCRIPT)}] td:first-child a").inner_text()
                == SCRIPT
            )
        else:
            assert tab.page.inner_text("h1#title") == SCRIPT
        check_no_markup(tab)
        # Then on the experiment's route.
        tab.page.goto(url + report_route(SCRIPT))
        tab.ready("experiment")
        tab.wait_charts("chart-best", "chart-scatter")
        check_hostile_manual(tab, expected)
        check_no_markup(tab)
        tab.shot("hostile-report")
        assert set(attempted) == {url}, f"the report tried to fetch {sorted(set(attempted) - {url})}"
        tab.assert_clean()
    finally:
        tab.context.close()


# -- getting a browser (tests/browser.py), without a browser or apt-get ------------------------------------------


@pytest.fixture
def as_root_with_apt(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")


def test_a_missing_browser_is_installed_with_apt_get(tmp_path, as_root_with_apt):
    target = tmp_path / "bin" / "chromium"
    calls = []

    def fake_apt(cmd, **kwargs):
        calls.append((cmd, kwargs["env"].get("DEBIAN_FRONTEND"), kwargs["stdin"]))
        if cmd[:2] == ["apt-get", "install"]:
            target.parent.mkdir()
            target.write_text("#!/bin/sh\n")
            target.chmod(0o755)
        return subprocess.CompletedProcess(cmd, 0, "done\n")

    assert browser.ensure_chromium(str(target), run=fake_apt) == str(target)
    assert calls == [
        (["apt-get", "update"], "noninteractive", subprocess.DEVNULL),
        (
            ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600", "chromium"],
            "noninteractive",
            subprocess.DEVNULL,
        ),
    ]
    calls.clear()
    assert browser.ensure_chromium(str(target), run=fake_apt) == str(target)
    assert calls == []  # there now: nothing to install


def test_a_failed_install_says_why(tmp_path, as_root_with_apt):
    def failing_apt(cmd, **kwargs):
        if cmd[1] == "update":
            return subprocess.CompletedProcess(cmd, 100, "E: Failed to fetch http://deb.debian.org/...\n")
        return subprocess.CompletedProcess(cmd, 100, "E: Unable to locate package chromium\n")

    with pytest.raises(
        browser.Unavailable,
        match=r"(?s)exit status 100:\nE: Unable to locate package chromium"
        r".*apt-get update` also failed:\nE: Failed to fetch",
    ):
        browser.ensure_chromium(str(tmp_path / "chromium"), run=failing_apt)

    def no_file(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, "")

    with pytest.raises(browser.Unavailable, match="still no"):
        browser.ensure_chromium(str(tmp_path / "chromium"), run=no_file)


def test_only_root_installs(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(browser.Unavailable, match="only root"):
        browser.ensure_chromium(str(tmp_path / "chromium"), run=lambda *a, **k: pytest.fail("apt-get ran"))


@pytest.mark.parametrize(
    "ci, outcome",
    [
        ("true", pytest.fail.Exception),
        ("1", pytest.fail.Exception),
        ("", pytest.skip.Exception),
        ("false", pytest.skip.Exception),
        (None, pytest.skip.Exception),
    ],
)
def test_no_browser_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="no browser here"):
        browser.unavailable("no browser here")


# -- bugs found by these tests (they fail until app.js is fixed) -----------------------------------------------


def test_live_update_keeps_the_readers_zoom(tab, scratch, scratch_db):
    """A chart the reader zoomed into stays zoomed when a commit comes (a heartbeat commits every few seconds).

    Fails with app.js as of this writing: plot() calls Plotly.react with a new layout and no
    ``layout.uirevision``, so every new version of the log resets every chart to its full range.
    """
    db = schedy.SchedyDB(scratch_db, worker="browser-test")
    name = "live zoom"
    exp = db.add_experiment(schedy.ManualSearch(name))
    for i in range(8):
        exp.add_job({"lr": 0.1 * (i + 1)}, status="DONE", results={"loss": 1.0 / (i + 1)})
    tab.open(scratch.page(name), "experiment")
    tab.wait_charts("chart-best")
    # Zoom as a reader does: drag a box over the plot area.
    box = tab.page.locator("#chart-best .nsewdrag").first.bounding_box()
    x, y = box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25
    tab.page.mouse.move(x, y)
    tab.page.mouse.down()
    tab.page.mouse.move(x + box["width"] * 0.4, y + box["height"] * 0.4, steps=8)
    tab.page.mouse.up()
    axes = (
        "() => { const l = document.getElementById('chart-best').layout; "
        "return {x: l.xaxis.autorange, y: l.yaxis.autorange, xr: l.xaxis.range, yr: l.yaxis.range}; }"
    )
    tab.page.wait_for_function("() => document.getElementById('chart-best').layout.xaxis.autorange === false")
    zoomed = tab.page.evaluate(axes)
    assert zoomed["x"] is False and zoomed["y"] is False
    v = tab.version()
    exp.add_job({"lr": 2.0})  # a commit that changes nothing the chart shows
    tab.wait_version_after(v)
    assert tab.page.evaluate(axes) == zoomed, "the new commit reset the zoom of the chart"
    tab.assert_clean()


def test_schedule_of_two_hyperparameters_has_a_panel_for_each(tab, scratch, scratch_db):
    """The schedule of a lineage of two numeric hyperparameters: two panels, one above the other, the generation
    axis under the lower one.

    Fails with app.js as of this writing: drawSchedule() lays out a grid with pattern "independent" but gives
    every trace the same x axis "x", so Plotly stretches the second y axis over the whole height (domain [0, 1]),
    across the first panel, and draws the generation axis under the first panel, in the middle of the chart.
    """
    pbt = Expected(scratch_db, TWO_HP)
    chain = pbt.exp.lineage(pbt.best.job_id)
    assert len(chain) > 2
    tab.open(scratch.page(TWO_HP, pbt.best.job_id), "experiment")
    tab.wait_charts("chart-schedule")
    schedule = tab.traces("chart-schedule")
    assert [t["name"] for t in schedule] == ["lr", "momentum", "loss"]  # the score under the schedule
    for trace, h in zip(schedule, ["lr", "momentum"]):
        assert trace["x"] == [j.generation for j in chain]
        assert trace["y"] == [j.hyperparameters[h] for j in chain]
    tab.shot("schedule-of-two")
    layout = tab.page.evaluate("""() => {
        const gd = document.getElementById('chart-schedule'), fl = gd._fullLayout;
        const axis = (id) => fl[id.replace(/^([xy])/, '$1axis')];
        return {panels: gd._fullData.map(t => axis(t.yaxis).domain), x_under: axis(fl.xaxis.anchor).domain}; }""")
    panels = sorted(layout["panels"])
    assert len(panels) == 3
    assert all(a[1] <= b[0] for a, b in zip(panels, panels[1:])), f"the panels overlap: y domains {layout['panels']}"
    assert layout["x_under"] == panels[0], "the generation axis is not under the lower panel"
    tab.assert_clean()


def test_report_opens_on_its_experiment(chromium, tmp_path, pbt_report):
    """The report file opened as is (no fragment, as a reader double-clicks it) shows its experiment.

    Fails with app.js as of this writing: load() parses the route before it reads the embedded data, so
    parseRoute() sees no app.list and routes to the list (a table of one row) instead of the experiment.
    """
    tab, attempted, url = open_offline(chromium, tmp_path, pbt_report, view=None)
    try:
        tab.shot("report-as-opened")
        assert tab.page.get_attribute("body", "data-view") == "experiment", (
            "the report opened on the list of experiments, not on its experiment"
        )
        tab.wait_charts("chart-best", "chart-members")
        assert tab.page.inner_text("h1#title") == PBT
        assert set(attempted) == {url}
        tab.assert_clean()
    finally:
        tab.context.close()


def test_asha_rungs_chart_and_a_promoted_jobs_lineage(tab, scratch, scratch_db):
    """ASHA in a browser: the rung table's counts and promoted jobs, the chart of every configuration across
    its rungs, and the lineage of a job at the top rung in rungs and resources (no schedule: its
    hyperparameters never change)."""
    db = schedy.SchedyDB(scratch_db, worker="browser-test")
    name = "asha in a browser"
    exp = db.add_experiment(
        schedy.ASHA(name, {"x": Uniform(0.0, 1.0)}, "loss", min_resource=1, max_resource=9, reduction_factor=3, seed=3)
    )
    for _ in range(24):
        with exp.next_job() as job:
            job.results = {"loss": job.hyperparameters["x"] / job.resource}
    jobs = exp.all_jobs()
    parents = Counter(j.parent_id for j in jobs if j.parent_id is not None)
    top = min((j for j in jobs if j.rung == 2), key=lambda j: j.results["loss"])  # job 24 climbs past rung 1

    tab.open(scratch.page(name), "experiment")
    tab.wait_charts("chart-best", "chart-rungs")
    rows = tab.page.locator("#rungs-table tbody tr")
    assert rows.count() == 3
    for rung in range(3):
        row = tab.page.locator(f'#rungs-table tbody tr[data-rung="{rung}"]')
        at_rung = [j for j in jobs if j.rung == rung]
        assert row.locator('td[data-status="DONE"]').inner_text() == str(len(at_rung))
        assert row.locator('td[data-key="reached"]').inner_text() == str(len({j.member for j in at_rung}))
        promoted = sorted((j for j in at_rung if parents[j.job_id]), key=lambda j: j.results["loss"])
        assert row.locator('td[data-key="promoted-jobs"] a').all_inner_texts() == [j.job_id for j in promoted]
    traces = {t["name"]: t for t in tab.traces("chart-rungs")}
    assert sorted(x for x in traces["configurations"]["x"] if x is not None) == sorted(j.resource for j in jobs)
    assert len(traces["promoted to the next rung"]["x"]) == sum(1 for j in jobs if parents[j.job_id])

    tab.open(scratch.page(name, top.job_id), "experiment")
    tab.page.wait_for_selector("#lineage-table")
    chain = exp.lineage(top.job_id)
    assert [j.rung for j in chain] == [0, 1, 2]
    assert tab.texts("#lineage-table thead th") == ["rung", "resource", "job", "configuration", "status", "loss", "x"]
    cells = [r.locator("td").all_inner_texts() for r in tab.page.locator("#lineage-table tbody tr").all()]
    assert [c[:4] for c in cells] == [[str(j.rung), str(j.resource), j.job_id, str(j.member)] for j in chain]
    assert tab.page.locator("#chart-schedule").count() == 0
    tab.assert_clean()
