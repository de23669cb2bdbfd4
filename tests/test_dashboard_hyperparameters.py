"""The views of hyperparameters against the score in a real browser: parallel coordinates, a slice plot per
hyperparameter and fANOVA importance, for a random search of 500 jobs and across the segments of a PBT of 16
members and 20 generations, live and in the report (chromium through Playwright).

Every number on screen is compared with the Python API's: the lines and points are the scored jobs, the
importance is what :func:`schedy.dashboard.importance.importance` computes from the same log.
"""

import math

import pytest
from test_dashboard_browser import Dashboard, Expected, open_offline, tab, write_report  # noqa: F401 - tab: a fixture
from test_dashboard_population import GENERATIONS, MEMBERS, POP, chart, pop, pop_db  # noqa: F401 - fixtures

import schedy
from schedy.dashboard import views
from schedy.random import Choice, LogUniform, Uniform

SEARCH = "random-500"


def loss(hp):
    """Falls with lr towards 0.01 and with the optimizer "adam"; "width" does not matter."""
    return (math.log10(hp["lr"]) + 2) ** 2 + (0.0 if hp["opt"] == "adam" else 0.5) + 0.001 * hp["width"] / 100


@pytest.fixture(scope="module")
def search_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("hp") / "db")
    db = schedy.SchedyDB(path, durable=False)
    dists = {"lr": LogUniform(1e-4, 1.0), "opt": Choice(["adam", "sgd"]), "width": Uniform(10.0, 100.0)}
    exp = db.add_experiment(schedy.RandomSearch(SEARCH, dists, seed=4))
    for _ in range(500):
        with exp.next_job() as job:
            job.results["loss"] = loss(job.hyperparameters)
    return path


@pytest.fixture(scope="module")
def search(search_db, tmp_path_factory):
    server = Dashboard(search_db, tmp_path_factory.mktemp("hp-log") / "stderr.txt")
    yield server
    server.stop()


def state_of(path, name):
    return schedy.SchedyDB(path).get_experiment(name)._refresh()


def wait_importance(tab):
    tab.page.wait_for_function(
        "() => { const m = (document.getElementById('chart-importance').layout || {}).meta;"
        " return m && (m.importances.length > 0 || (m.reason && m.reason !== 'computing…')); }"
    )
    return tab.page.evaluate("() => document.getElementById('chart-importance').layout.meta")


def parcoords(tab):
    """The parallel coordinates' axes (label, lo, hi, values in job order, ticks), the jobs and the drawn lines."""
    return tab.page.evaluate(
        """() => { const d = document.getElementById('chart-parcoords');
                   return {jobs: d.layout.meta.jobs, axes: d.layout.meta.axes,
                           lines: d.data.map(t => ({x: Array.from(t.x), y: Array.from(t.y)}))}; }"""
    )


def polylines(got):
    """Every job's drawn line, as the tuple of its heights on the axes, whichever colour trace holds it."""
    out = []
    for t in got["lines"]:
        line = []
        for y in t["y"]:
            if y is None:
                out.append(tuple(round(v, 9) for v in line))
                line = []
            else:
                line.append(y)
    return sorted(out)


def check_views(tab, expected, hps, state):
    """Parallel coordinates, slices and importance of ``expected`` (scored jobs in the order they finished)."""
    tab.wait_charts("chart-parcoords", "chart-slices", "chart-importance")
    ids = tab.page.evaluate("() => document.getElementById('chart-parcoords').layout.meta.jobs")
    assert sorted(ids, key=int) == [j.job_id for j in expected.scored]
    by_id = expected.by_id
    got = parcoords(tab)
    assert got["jobs"] == ids
    assert [a["label"] for a in got["axes"]] == [label for label, _ in hps] + ["log10 loss"]
    for (label, value), axis in zip(hps, got["axes"]):
        assert axis["values"] == pytest.approx([value(by_id[i]) for i in ids]), label
    assert got["axes"][-1]["values"] == pytest.approx([math.log10(by_id[i].results["loss"]) for i in ids])
    # Each job is one drawn line, at its values scaled between each axis's least and greatest.
    scaled = [
        tuple(round((a["values"][n] - a["lo"]) / (a["hi"] - a["lo"]), 9) for a in got["axes"]) for n in range(len(ids))
    ]
    drawn = polylines(got)
    assert len(drawn) == len(scaled)
    assert all(a == pytest.approx(b, abs=1e-8) for a, b in zip(drawn, sorted(scaled)))
    slices = chart(tab, "chart-slices")
    assert [t["name"] for t in slices["traces"]] == [label.removeprefix("log10 ") for label, _ in hps]
    for t in slices["traces"]:
        assert t["ids"] == ids and t["y"] == [by_id[i].results["loss"] for i in ids]
    meta = wait_importance(tab)
    want = views.importance(state)["importances"]
    assert [d["name"] for d in meta["importances"]] == [d["name"] for d in want]
    assert [d["importance"] for d in meta["importances"]] == pytest.approx([d["importance"] for d in want])
    return meta["importances"]


def test_a_random_search_of_500_jobs(tab, search, search_db):
    expected = Expected(search_db, SEARCH)
    assert len(expected.scored) == 500
    tab.open(search.page(SEARCH), "experiment")
    hps = [
        ("log10 lr", lambda j: math.log10(j.hyperparameters["lr"])),
        ("opt", lambda j: ["adam", "sgd"].index(j.hyperparameters["opt"])),  # categories by position
        ("width", lambda j: j.hyperparameters["width"]),
    ]
    importances = check_views(tab, expected, hps, state_of(search_db, SEARCH))
    assert importances[0]["name"] == "lr" and importances[-1]["name"] == "width"  # as the loss is made
    assert parcoords(tab)["axes"][1]["ticks"] == ["adam", "sgd"]
    tab.shot("hyperparameters", "dashboard-hyperparameters.png")
    tab.assert_clean()


def test_a_pbt_across_its_segments(tab, pop, pop_db):
    expected = Expected(pop_db, POP)
    assert (
        len({j.member for j in expected.jobs}) == MEMBERS
        and max(j.generation for j in expected.jobs) == GENERATIONS - 1
    )
    tab.open(pop.page(POP), "experiment")
    importances = check_views(
        tab, expected, [("log10 lr", lambda j: math.log10(j.hyperparameters["lr"]))], state_of(pop_db, POP)
    )
    assert [d["name"] for d in importances] == ["lr"]
    tab.assert_clean()


def test_the_report_carries_the_same_views(chromium, tmp_path, search_db):
    path = tmp_path / "report.html"
    write_report(search_db, SEARCH, path)
    tab, _, _ = open_offline(chromium, tmp_path, path)
    try:
        expected = Expected(search_db, SEARCH)
        importances = check_views(
            tab,
            expected,
            [
                ("log10 lr", lambda j: math.log10(j.hyperparameters["lr"])),
                ("opt", lambda j: ["adam", "sgd"].index(j.hyperparameters["opt"])),
                ("width", lambda j: j.hyperparameters["width"]),
            ],
            state_of(search_db, SEARCH),
        )
        assert importances[0]["name"] == "lr"
        tab.assert_clean()
    finally:
        tab.context.close()
