"""Five bugs of the dashboard's page, each shown in a real browser (see tests/browser.py), live and in the report.

Each test failed with app.js (and, for the list, server.py) as they were before the fix its docstring names.
The browser, the Tab helper, the dashboard subprocess and the report writer are those of
tests/test_dashboard_browser.py. Every wait is on a condition of the page, never a sleep.
"""

import json
import math
import os

import pytest
from test_dashboard_browser import (
    STATUSES,
    Dashboard,
    Expected,
    check_best_chart,
    check_best_text,
    css,
    job_ids,
    kind_of,
    open_offline,
    report_route,
    simulate_two_hyperparameters,
    tab,  # noqa: F401 - a fixture
    write_report,
)
from test_dashboard_server import corrupt_crc

import schedy
from schedy.adapters.naming import stream_key

PROPERTIES = "object property names"  # hyperparameters and results named as JavaScript objects' properties
NAMES = ["__proto__", "constructor", "toString"]
LOGS = "scores over decades"  # scores and a hyperparameter spanning about three decades: log axes
SCHEDULE = "pbt schedule"
MALFORMED = "#/experiment/100%"  # a % that starts no escape: decodeURIComponent throws on it
DAMAGED = "Beta run"  # the damaged log's experiment


@pytest.fixture(scope="module")
def bugs_db(tmp_path_factory):
    """The experiments of these tests (the damaged log has a database of its own)."""
    path = str(tmp_path_factory.mktemp("dashboard-bugs") / "db")
    db = schedy.SchedyDB(path, worker="browser-test")
    exp = db.add_experiment(schedy.ManualSearch(PROPERTIES))
    # Each name is present on some jobs and absent on others, as a hyperparameter and as a result. The first
    # job's first result is "__proto__": the charts rank by it.
    exp.add_job(
        {"__proto__": {"a": 1}, "constructor": "adam", "lr": 0.1},
        status="DONE",
        results={"__proto__": 0.25, "toString": "ok"},
    )
    exp.add_job({"lr": 0.2, "toString": 3}, status="DONE", results={"constructor": 2.5, "__proto__": 0.5})
    exp.add_job({"__proto__": 2.0, "lr": 0.3}, status="DONE", results={"__proto__": 0.125, "toString": 1.5})
    exp.add_job({"lr": 0.4, "constructor": 7})  # stays QUEUED, without results
    exp.add_job({"lr": 0.5}, status="DONE", results={"constructor": "x", "toString": "y"})
    logs = db.add_experiment(schedy.ManualSearch(LOGS))
    for i in range(12):
        logs.add_job({"lr": 10 ** (-i / 3)}, status="DONE", results={"loss": 0.5 * 10 ** (-i / 4)})
    simulate_two_hyperparameters(db, SCHEDULE)
    return path


@pytest.fixture(scope="module")
def bugs(bugs_db, tmp_path_factory):
    server = Dashboard(bugs_db, tmp_path_factory.mktemp("dashboard-bugs-log") / "stderr.txt")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def reports(bugs_db, tmp_path_factory):
    """``reports(name)``: the path of ``schedy report NAME``, written once for the module."""
    folder, written = tmp_path_factory.mktemp("dashboard-bugs-reports"), {}

    def report(name):
        if name not in written:
            written[name] = write_report(bugs_db, name, folder / f"report-{len(written)}.html")
        return written[name]

    return report


@pytest.fixture(params=["live", "report"])
def opened(request, tab, chromium, tmp_path, bugs, reports):
    """``opened(name, job=None)``: a Tab on experiment ``name``'s page, served live or opened from its report."""
    tabs = []

    def open_page(name, job=None):
        if request.param == "live":
            return tab.open(bugs.page(name, job), "experiment")
        t, _, _ = open_offline(chromium, tmp_path, reports(name), report_route(name, job))
        tabs.append(t)
        return t

    yield open_page
    for t in tabs:
        t.context.close()


def shown(v):
    """What the page's show() writes for a value: numbers to 6 significant digits, objects as JSON, None as ""."""
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(int(v)) if float(v).is_integer() else repr(float(f"{v:.6g}"))
    return json.dumps(v, separators=(",", ":"))


# -- 1. names that are properties of every JavaScript object ------------------------------------------------------


def test_names_that_are_object_properties_are_shown_as_written(opened, bugs_db):
    """Hyperparameters and results named __proto__, constructor and toString: every cell as the Python API says.

    Failed before the fix: merge() put each job's values into plain objects ({}), where ``hp["__proto__"] = v``
    does not store v (it replaces the object's prototype when v is an object, else does nothing), so the column
    "__proto__" read the prototype, "{}", for numbers; a job without a "constructor" or "toString" showed the
    prototype's function ("function Object() { [native code] }"); and the charts, ranking by the result
    "__proto__", found no score at all. Rows now hold Maps.
    """
    expected = Expected(bugs_db, PROPERTIES, score="__proto__", goal="max")
    hp_names = sorted({h for j in expected.jobs for h in j.hyperparameters})
    result_names = sorted({r for j in expected.jobs for r in j.results})
    assert set(NAMES) <= set(hp_names) and set(NAMES) <= set(result_names)
    for name in NAMES:  # present on some jobs, absent on others
        assert 0 < sum(name in j.hyperparameters for j in expected.jobs) < len(expected.jobs), name
        assert 0 < sum(name in j.results for j in expected.jobs) < len(expected.jobs), name
    tab = opened(PROPERTIES)
    tab.wait_charts("chart-best")

    keys = tab.page.locator("#jobs-table thead th").evaluate_all("hs => hs.map(h => h.dataset.key)")
    assert [k for k in keys if k.startswith(("hp.", "result."))] == [f"hp.{h}" for h in hp_names] + [
        f"result.{r}" for r in result_names
    ]
    assert job_ids(tab) == [j.job_id for j in expected.jobs]
    # Every cell of those columns, job by job, compared at once: a failure lists every wrong one.
    want, got = {}, {}
    for job in expected.jobs:
        row = tab.page.locator(f"#jobs-table tbody tr[data-job={css(job.job_id)}]")
        for group, values, names in (("hp", job.hyperparameters, hp_names), ("result", job.results, result_names)):
            for name in names:
                key = f"{group}.{name}"
                want[job.job_id, key] = shown(values.get(name))
                got[job.job_id, key] = row.locator(f"td[data-key={css(key)}]").inner_text()
    assert got == want

    # The score the charts rank by is the result "__proto__".
    check_best_text(tab.page.locator("tr#summary td.best").inner_text(), expected)
    assert tab.page.eval_on_selector("select#score-name", "s => s.value") == "__proto__"
    check_best_chart(tab, expected)

    # The lineage of a job (here the job alone: a manual search) shows its own names and values.
    job = expected.jobs[0]
    tab.page.evaluate("h => { location.hash = h; }", report_route(PROPERTIES, job.job_id))
    tab.page.wait_for_selector(f"#lineage-table tr[data-job={css(job.job_id)}]")
    heads = tab.texts("#lineage-table thead th")
    assert heads == [
        "generation",
        "job",
        "member",
        "continued from",
        "status",
        "__proto__",
        *sorted(job.hyperparameters),
    ]
    cells = tab.page.locator("#lineage-table tbody td").all_inner_texts()
    assert cells[3] == "start"
    assert cells[5:] == [shown(job.results["__proto__"])] + [shown(job.hyperparameters[h]) for h in heads[6:]]
    tab.assert_clean()


# -- 2. a malformed address -----------------------------------------------------------------------------------------


def test_a_malformed_address_says_so_and_the_page_stays_live(tab, bugs, bugs_db):
    """#/experiment/100% (a % that starts no escape) says it is a bad address; the page stays live.

    Failed before the fix: parseRoute() called decodeURIComponent unguarded, so load() threw before drawing
    anything (the page said "Loading…" for good), and, the first load having failed, live updates never started.
    """
    tab.open(bugs.url + MALFORMED, "missing")
    assert tab.page.inner_text("#error") == (
        f"no such page: {MALFORMED} is a malformed address (a % in a name is written %25)"
    )
    assert "Loading" not in tab.page.inner_text("#main")
    tab.shot("malformed-address")
    # The way back works, and the list that opens follows the log by itself.
    tab.page.locator("#main a", has_text="all experiments").click()
    tab.ready("list")
    assert tab.page.locator("#error").is_hidden()
    db = schedy.SchedyDB(bugs_db, worker="browser-test")
    added = db.add_experiment(schedy.ManualSearch("added after a malformed address"))
    tab.page.locator(f"table#experiments tr[data-name={css(added.name)}]").wait_for()

    # From an experiment's page to a malformed address and back again: the experiment's page is live again.
    tab.open(bugs.page(added.name), "experiment")
    tab.page.evaluate("h => { location.hash = h; }", MALFORMED)
    tab.ready("missing")
    assert MALFORMED in tab.page.inner_text("#error")
    tab.page.evaluate("h => { location.hash = h; }", report_route(added.name))
    tab.ready("experiment")
    assert tab.page.locator("#error").is_hidden()
    job = added.add_job({"lr": 0.1})
    tab.page.wait_for_selector(f"#jobs-table tr[data-job={css(job.job_id)}]")
    tab.assert_clean()


def test_a_malformed_address_in_the_report(chromium, tmp_path, reports):
    """The report opened on a malformed address says so, and its link leads to the report's experiment."""
    report = reports(LOGS)
    tab, attempted, url = open_offline(chromium, tmp_path, report, MALFORMED, view="missing")
    try:
        assert MALFORMED in tab.page.inner_text("#error")
        tab.page.locator("#main a", has_text=LOGS).click()
        tab.ready("experiment")
        assert tab.page.evaluate("location.hash") == report_route(LOGS)
        assert tab.page.inner_text("h1#title") == LOGS
        assert tab.page.locator("#error").is_hidden()
        assert set(attempted) == {url}
        tab.assert_clean()
    finally:
        tab.context.close()


# -- 3. a damaged log in the list -----------------------------------------------------------------------------------


def test_a_damaged_log_is_one_row_of_the_list(tab, tmp_path):
    """Two intact experiments and a damaged one: the list shows the two with their numbers and the third with its
    error, on one line; the damaged one's page has the whole error; the list stays live.

    Failed before the fix: /api/experiments answered 500 when any log was damaged, so the page showed only the
    error banner and no experiment at all.
    """
    path = str(tmp_path / "db")
    db = schedy.SchedyDB(path, worker="browser-test")
    alpha = db.add_experiment(schedy.ManualSearch("alpha"))
    for i in range(3):
        alpha.add_job({"lr": 0.1 * (i + 1)}, status="DONE", results={"loss": 1.0 / (i + 2)})
    alpha.add_job({"lr": 0.5})
    gamma = db.add_experiment(schedy.ManualSearch("gamma"))
    gamma.add_job({"x": 1}, status="DONE", results={"accuracy": 0.75})
    gamma.add_job({"x": 2}, status="CRASHED")
    # A name that its store key spells otherwise ("%42eta%20run"): the page names the experiment, not its key.
    beta = db.add_experiment(schedy.ManualSearch(DAMAGED))
    for i in range(3):
        beta.add_job({"lr": i})
    corrupt_crc(os.path.join(path, "experiments", stream_key(DAMAGED), "log.jsonl"), 3)
    with pytest.raises(schedy.errors.CorruptLogError):
        schedy.SchedyDB(path).get_experiment(DAMAGED)
    server = Dashboard(path, tmp_path / "stderr.txt")
    try:
        tab.open(server.page(), "list")
        rows = tab.page.locator("table#experiments tbody tr")
        rows.nth(2).wait_for()
        assert rows.evaluate_all("rs => rs.map(r => r.dataset.name)") == sorted(["alpha", DAMAGED, "gamma"])
        assert tab.page.locator("#error").is_hidden()
        for name, score, goal in (("alpha", "loss", "min"), ("gamma", "accuracy", "max")):
            expected = Expected(path, name, score=score, goal=goal)
            row = tab.page.locator(f"table#experiments tr[data-name={css(name)}]")
            cells = row.locator("td").all_inner_texts()
            assert cells[:4] == [name, kind_of(expected.exp), expected.exp.status, str(len(expected.jobs))]
            for s in STATUSES:
                assert row.locator(f'td[data-status="{s}"]').inner_text() == str(expected.counts.get(s, 0)), (name, s)
            check_best_text(row.locator("td.best").inner_text(), expected)

        damaged = tab.page.locator(f"table#experiments tr[data-name={css(DAMAGED)}]")
        assert damaged.locator("a").inner_text() == DAMAGED
        assert damaged.locator("a").get_attribute("href") == report_route(DAMAGED)
        error = damaged.locator("td.error").inner_text()
        assert f"experiment {DAMAGED!r}: commit 3 is damaged" in error, error
        assert "\n" not in error
        # One line: as tall as an intact experiment's row.
        height = rows.evaluate_all("rs => rs.map(r => r.getBoundingClientRect().height)")
        assert max(height) - min(height) < 1, height
        tab.shot("damaged-list")

        # The list stays live: a new experiment appears below the damaged one.
        db.add_experiment(schedy.ManualSearch("zeta"))
        tab.page.locator('table#experiments tr[data-name="zeta"]').wait_for()

        # Its link opens its page, which has the whole error.
        damaged.locator("a").click()
        tab.ready("missing")
        assert tab.page.inner_text("#error") == error
        # The 500 of the damaged experiment's page is the only error the browser reports.
        assert tab.errors and all("500" in e for e in tab.errors), tab.errors
        assert tab.dialogs == []
    finally:
        server.stop()


# -- 4. log axes ----------------------------------------------------------------------------------------------------


def axis_labels(tab, chart, axis):
    """``(type, [low, high], [label values])`` of the x or y axis of a drawn chart: its tick labels as shown (the
    unlabelled ticks between decades have an empty text)."""
    got = tab.page.evaluate(
        """([id, axis]) => { const gd = document.getElementById(id), a = gd._fullLayout[axis + "axis"];
                             return {type: a.type, range: a.range,
                                     labels: Array.from(gd.querySelectorAll("." + axis + "tick text"),
                                                        (t) => t.textContent)}; }""",
        [chart, axis],
    )
    values = [float(t.replace("\u2212", "-")) for t in got["labels"] if t]  # plotly writes minus signs as U+2212
    return got["type"], got["range"], values


def check_log_labels(tab, chart, axis):
    kind, (low, high), values = axis_labels(tab, chart, axis)
    assert kind == "log"
    assert len(values) >= 3, values  # the decades 0.001, 0.01 and 0.1 at least
    # Every label is the value at its tick: within the axis's range, and increasing as the ticks go.
    assert all(10**low <= v <= 10**high for v in values), (chart, axis, 10**low, 10**high, values)
    assert values == sorted(set(values)), (chart, axis, values)


def test_log_axes_label_ticks_with_their_values(opened, bugs_db):
    """Log axes (the scores and the hyperparameter, each spanning about three decades) label ticks with their
    values only: no tick between decades reads "2" or "5" for 0.02 or 0.05.

    Failed before the fix: plotly labels the ticks between decades of a log axis by their first digit alone, so
    the loss axis read "0.001, 2, 5, 0.01, 2, 5, 0.1, 2, 5": a "5" above 0.01 for 0.05. Now only decades are
    labelled (plotly.js 3.1 and later; test_log_axes_of_an_older_plotly_label_ticks_in_full has the others).
    """
    expected = Expected(bugs_db, LOGS)
    scores = [j.results["loss"] for j in expected.scored]
    assert 100 < max(scores) / min(scores) < 10_000  # the page's log axis, with ticks between decades
    tab = opened(LOGS)
    tab.wait_charts("chart-best", "chart-scatter")
    assert tab.page.is_checked("#score-log")
    check_log_labels(tab, "chart-best", "y")
    check_log_labels(tab, "chart-scatter", "y")
    check_log_labels(tab, "chart-scatter", "x")
    tab.shot("log-axes")
    tab.assert_clean()


# An older plotly.js, as the page sees it: the version the bundle declares is set before app.js reads it.
PLOTLY_3_0 = """(() => {
    let plotly;
    Object.defineProperty(window, "Plotly", {configurable: true, get: () => plotly,
                                              set: (v) => { plotly = v; if (v) v.version = "3.0.1"; }});
})();"""


def test_log_axes_of_an_older_plotly_label_ticks_in_full(tab, bugs):
    """With a plotly.js older than 3.1 (no minorloglabels), the page gives log axes a tick format instead: every
    tick, between decades too, is labelled with its value."""
    tab.page.add_init_script(PLOTLY_3_0)
    tab.open(bugs.page(LOGS), "experiment")
    tab.wait_charts("chart-best", "chart-scatter")
    assert tab.page.evaluate("Plotly.version") == "3.0.1"
    for chart, axis in (("chart-best", "y"), ("chart-scatter", "y"), ("chart-scatter", "x")):
        check_log_labels(tab, chart, axis)
        labels = axis_labels(tab, chart, axis)[2]
        assert any(not math.log10(v).is_integer() for v in labels), (chart, axis, labels)  # 0.02, 0.05...
    tab.shot("log-axes-plotly-3.0")
    tab.assert_clean()


# -- 5. the PBT schedule chart --------------------------------------------------------------------------------------


def test_the_schedule_has_no_line_at_generation_0(opened, bugs_db):
    """The hyperparameter schedule of a PBT lineage draws its steps and nothing at generation 0 besides them.

    Failed before the fix: the generation axis kept plotly's zero line, a dark vertical line across every panel
    at generation 0 (the axis range starts a little before it), which read as a change of every hyperparameter.
    """
    expected = Expected(bugs_db, SCHEDULE)
    chain = expected.exp.lineage(expected.best.job_id)
    assert len(chain) > 2 and chain[0].generation == 0
    tab = opened(SCHEDULE, expected.best.job_id)
    tab.wait_charts("chart-schedule")
    traces = tab.traces("chart-schedule")
    assert [t["name"] for t in traces] == ["lr", "momentum", "loss"]  # the score under the schedule
    for t in traces[:2]:  # one point per generation of the lineage: no extra point, no gap
        assert t["x"] == [j.generation for j in chain]
        assert t["y"] == [j.hyperparameters[t["name"]] for j in chain]
        assert all(math.isfinite(y) for y in t["y"])
    drawn = tab.page.evaluate(
        """() => { const gd = document.getElementById("chart-schedule");
                   return {shapes: (gd._fullLayout.shapes || []).length,
                           zerolines: gd.querySelectorAll(".zerolinelayer path.xzl").length,
                           xrange: gd._fullLayout.xaxis.range}; }"""
    )
    assert drawn["xrange"][0] < 0 < drawn["xrange"][1]  # generation 0 is inside the axis, not on its edge
    assert drawn["shapes"] == 0
    assert drawn["zerolines"] == 0, "a vertical zero line is drawn at generation 0"
    tab.shot("schedule")
    tab.assert_clean()
