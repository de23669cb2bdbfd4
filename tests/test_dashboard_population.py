"""The PBT population views of the dashboard in a real browser: the genealogy, the members chart's axes, focus
and colours, the best job one click away, and the lineage's exploits (chromium through Playwright).

A PBT of 16 members and 20 generations of the lr-schedule problem (simulated: real decisions, simulated clock),
served by ``schedy dashboard``; every number on screen is compared with the Python API's.
"""

import math
from urllib.parse import quote

import pytest
from test_dashboard_browser import (  # noqa: F401 - tab is a fixture
    Dashboard,
    Expected,
    css,
    is_num,
    open_offline,
    tab,
    write_report,
)

import schedy
from schedy.simulation import lr_schedule, simulate

POP = "population"
MEMBERS, GENERATIONS = 16, 20
VIRIDIS = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]


@pytest.fixture(scope="module")
def pop_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("population") / "db")
    problem = lr_schedule(population=MEMBERS, segments=GENERATIONS, steps=100)
    simulate(problem.strategies()["pbt"], problem, seed=3, db=schedy.SchedyDB(path), name=POP)
    return path


@pytest.fixture(scope="module")
def pop(pop_db, tmp_path_factory):
    server = Dashboard(pop_db, tmp_path_factory.mktemp("population-log") / "stderr.txt")
    yield server
    server.stop()


def chart(tab, chart_id):
    """Every trace of a chart (name, x, y, customdata, marker colours and opacity, line colour) and its meta."""
    return tab.page.evaluate(
        """id => { const d = document.getElementById(id);
                   return {meta: d.layout.meta || null, traces: d.data.map(t => ({name: t.name,
                     x: Array.from(t.x || []), y: Array.from(t.y || []), ids: Array.from(t.customdata || []),
                     color: t.marker && Array.isArray(t.marker.color) ? Array.from(t.marker.color) : null,
                     z: t.z ? t.z.map(r => Array.from(r)) : null, opacity: t.opacity,
                     line: t.line ? t.line.color : null}))}; }""",
        chart_id,
    )


def click_cell(tab, generation, member):
    """Click the genealogy's cell of ``member`` at ``generation`` where the reader would: its centre on screen."""
    x, y = tab.page.evaluate(
        """([g, m]) => { const gd = document.getElementById('chart-genealogy'), fl = gd._fullLayout;
                         const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
                         return [box.left + fl.xaxis.l2p(g), box.top + fl.yaxis.l2p(m)]; }""",
        [generation, member],
    )
    tab.page.mouse.click(x, y)


def edges(trace):
    """The (x0, y0) -> (x1, y1) segments of a line trace drawn as pairs separated by nulls."""
    xs, ys = trace["x"], trace["y"]
    return sorted(((xs[i], ys[i]), (xs[i + 1], ys[i + 1])) for i in range(0, len(xs), 3))


def latest_scored(expected):
    """member -> its latest scored segment (highest generation), from the Python API."""
    out = {}
    for j in expected.scored:
        if j.member not in out or (j.generation, int(j.job_id)) > (out[j.member].generation, int(out[j.member].job_id)):
            out[j.member] = j
    return out


def test_the_genealogy_has_every_segment_and_every_edge_and_a_click_shows_a_lineage(tab, pop, pop_db):
    expected = Expected(pop_db, POP)
    jobs = [j for j in expected.jobs if j.member is not None]
    assert len({j.member for j in jobs}) == MEMBERS and max(j.generation for j in jobs) == GENERATIONS - 1
    tab.open(pop.page(POP), "experiment")
    tab.wait_charts("chart-genealogy")
    got = chart(tab, "chart-genealogy")
    traces = {t["name"]: t for t in got["traces"]}
    cells = traces["segment (colour: loss)"]
    assert cells["x"] == list(range(GENERATIONS)) and cells["y"] == list(range(MEMBERS))
    # One cell per member and generation holding its segment, coloured by its score (its log: the score axis is
    # on a log scale, the losses spanning decades); blank where a segment has no score.
    assert tab.page.is_checked("#score-log")
    grid = {j.job_id: j for j in jobs}
    held = [(i, g, job_id) for i, row in enumerate(cells["ids"]) for g, job_id in enumerate(row) if job_id is not None]
    assert sorted(job_id for _, _, job_id in held) == sorted(j.job_id for j in jobs)  # one segment per cell here
    for member, generation, job_id in held:
        job = grid[job_id]
        assert (job.member, job.generation) == (member, generation)
        value = cells["z"][member][generation]
        if job in expected.scored:
            assert value == pytest.approx(math.log10(job.results["loss"]), abs=1e-12)
        else:
            assert value is None
    # An edge from each segment's parent: along the member's row, or across rows where it copied another member.
    parent_of = {j.job_id: expected.by_id[j.parent_id] for j in jobs if j.parent_id is not None}
    along = [(p, j) for j in jobs if (p := parent_of.get(j.job_id)) is not None and p.member == j.member]
    across = [(p, j) for j in jobs if (p := parent_of.get(j.job_id)) is not None and p.member != j.member]
    assert across, "a PBT of 16 members should have exploited"
    as_edges = lambda pairs: sorted(((p.generation, p.member), (j.generation, j.member)) for p, j in pairs)  # noqa: E731
    assert edges(traces["continued its own training"]) == as_edges(along)
    assert edges(traces["exploit: continued from another member"]) == as_edges(across)
    assert got["meta"] == {"segments": len(jobs), "exploits": len(across), "lineage": [], "from": 0}
    tab.shot("genealogy", "dashboard-genealogy.png")

    # A click on the best job's cell opens its lineage: the chain drawn in black over the faded others.
    best = expected.best
    click_cell(tab, best.generation, best.member)
    tab.page.wait_for_function("j => location.hash.endsWith('?job=' + j)", arg=best.job_id)
    tab.page.wait_for_selector(f"#lineage-table tr[data-job={css(best.job_id)}]")
    tab.page.wait_for_function(
        "() => (document.getElementById('chart-genealogy').layout.meta.lineage || []).length > 0"
    )
    got = chart(tab, "chart-genealogy")
    chain = expected.exp.lineage(best.job_id)
    assert got["meta"]["lineage"] == [j.job_id for j in chain]
    line = next(t for t in got["traces"] if t["name"] == f"lineage of job {best.job_id}")
    assert list(zip(line["x"], line["y"])) == [(j.generation, j.member) for j in chain]
    cells = next(t for t in got["traces"] if t["name"] == "segment (colour: loss)")
    assert cells["opacity"] < 1
    tab.shot("genealogy-lineage")
    tab.assert_clean()


def test_the_best_job_is_one_click_from_the_summary_and_its_exploits_are_labelled(tab, pop, pop_db):
    expected = Expected(pop_db, POP)
    tab.open(pop.page(POP), "experiment")
    link = tab.page.locator("tr#summary td.best a.best-job")
    assert link.inner_text() == expected.best.job_id
    link.click()
    tab.page.wait_for_selector(f"#lineage-table tr[data-job={css(expected.best.job_id)}]")
    chain = expected.exp.lineage(expected.best.job_id)
    rows = tab.page.locator("#lineage-table tbody tr")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.job)") == [j.job_id for j in chain]
    cells = rows.locator('td[data-key="continued from"]').all_inner_texts()
    for i, (text, job) in enumerate(zip(cells, chain)):
        if i == 0:
            assert text == "start"
        elif chain[i - 1].member != job.member:
            assert text.startswith(f"member {chain[i - 1].member} (job {chain[i - 1].job_id})"), text
        else:
            assert text.startswith(f"its own segment (job {chain[i - 1].job_id})"), text
    assert any(c.startswith("member ") for c in cells[1:]), "the best job's lineage should hold an exploit"
    tab.wait_charts("chart-schedule")
    schedule = {t["name"]: t for t in chart(tab, "chart-schedule")["traces"]}
    assert schedule["loss"]["y"] == [j.results["loss"] for j in chain]
    tab.assert_clean()


def test_the_members_chart_by_generation_its_focus_and_its_colours(tab, pop, pop_db):
    expected = Expected(pop_db, POP)
    tab.open(pop.page(POP), "experiment")
    tab.wait_charts("chart-members")
    members = {
        m: sorted((j for j in expected.scored if j.member == m), key=lambda j: j.generation) for m in range(MEMBERS)
    }

    def lines():
        return [t for t in chart(tab, "chart-members")["traces"] if t["name"].startswith("member ")]

    # By default the x axis is the generation: each member's line runs over its scored segments' generations.
    got = {t["name"]: t for t in lines()}
    assert set(got) == {f"member {m}" for m in range(MEMBERS)}
    for m, segs in members.items():
        assert got[f"member {m}"]["x"] == [j.generation for j in segs]
        assert got[f"member {m}"]["y"] == [j.results["loss"] for j in segs]

    # The top 5 by their latest score.
    latest = latest_scored(expected)
    top = sorted(latest, key=lambda m: (latest[m].results["loss"], m))[:5]
    tab.page.select_option("#members-focus", "top")
    tab.page.wait_for_function("() => document.getElementById('chart-members').layout.meta.members.length === 5")
    assert [t["name"] for t in lines()] == [f"member {m}" for m in top]

    # One member.
    tab.page.select_option("#members-focus", "m:7")
    tab.page.wait_for_function("() => document.getElementById('chart-members').layout.meta.members.join() === '7'")
    (line,) = lines()
    assert line["name"] == "member 7" and line["x"] == [j.generation for j in members[7]]

    # Every member coloured by its current lr, on the Viridis scale between the smallest and the largest.
    tab.page.select_option("#members-focus", "")
    tab.page.select_option("#members-color", "lr")
    tab.page.wait_for_function("() => document.getElementById('chart-members').layout.showlegend === false")
    current = {m: latest[m].hyperparameters["lr"] for m in latest}
    lo, hi = min(current.values()), max(current.values())
    assert hi / lo <= 100, "a linear colour scale is what this test computes"
    for t in lines():
        m = int(t["name"].split()[-1])
        assert t["line"] == viridis((current[m] - lo) / (hi - lo)), m

    # The wall clock instead of generations.
    tab.page.select_option("#members-x", "time")
    tab.page.wait_for_function("() => document.getElementById('chart-members').layout.xaxis.type === 'date'")
    for t in lines():  # the commit times the segments finished at, in ms: later generations finish later
        assert all(x > 1e12 for x in t["x"]) and t["x"] == sorted(t["x"]), t["name"]
        assert len(t["x"]) == len(members[int(t["name"].split()[-1])])
    tab.shot("members-by-lr")
    tab.assert_clean()


def viridis(t):
    x = min(1.0, max(0.0, t)) * (len(VIRIDIS) - 1)
    i = min(len(VIRIDIS) - 2, int(x))
    f = x - i
    c = [round(v + f * (VIRIDIS[i + 1][k] - v)) for k, v in enumerate(VIRIDIS[i])]
    return "rgb(" + ",".join(map(str, c)) + ")"


def test_a_link_to_the_best_job_in_the_list(tab, pop, pop_db):
    expected = Expected(pop_db, POP)
    tab.open(pop.page(), "list")
    link = tab.page.locator(f"table#experiments tr[data-name={css(POP)}] a.best-job")
    assert link.get_attribute("href") == "#/experiment/" + quote(POP, safe="") + "?job=" + expected.best.job_id
    link.click()
    tab.ready("experiment")
    tab.page.wait_for_selector(f"#lineage-table tr[data-job={css(expected.best.job_id)}]")
    assert is_num(expected.best_value)
    tab.assert_clean()


def test_the_report_carries_the_genealogy_and_the_members_controls(chromium, tmp_path, pop_db):
    expected = Expected(pop_db, POP)
    path = write_report(pop_db, POP, tmp_path / "report.html")
    tab, attempted, url = open_offline(chromium, tmp_path, path)
    try:
        tab.wait_charts("chart-genealogy", "chart-members")
        got = chart(tab, "chart-genealogy")
        exploits = [j for j in expected.jobs if j.parent_id and expected.by_id[j.parent_id].member != j.member]
        assert got["meta"] == {"segments": len(expected.jobs), "exploits": len(exploits), "lineage": [], "from": 0}
        click_cell(tab, expected.best.generation, expected.best.member)
        tab.page.wait_for_selector(f"#lineage-table tr[data-job={css(expected.best.job_id)}]")
        tab.page.select_option("#members-focus", "top")
        tab.page.wait_for_function("() => document.getElementById('chart-members').layout.meta.members.length === 5")
        assert set(attempted) == {url}  # nothing fetched: the report holds it all
        tab.assert_clean()
    finally:
        tab.context.close()


def test_a_long_run_shows_its_last_200_generations(tab, tmp_path):
    path = str(tmp_path / "db")
    problem = lr_schedule(population=2, segments=210, steps=10)
    simulate(problem.strategies()["pbt"], problem, seed=1, db=schedy.SchedyDB(path), name="long")
    expected = Expected(path, "long")
    server = Dashboard(path, tmp_path / "stderr.txt")
    try:
        tab.open(server.page("long"), "experiment")
        tab.wait_charts("chart-genealogy")
        got = chart(tab, "chart-genealogy")
        shown = [j for j in expected.jobs if j.generation >= 10]
        assert got["meta"]["from"] == 10 and got["meta"]["segments"] == len(shown) == 400
        cells = next(t for t in got["traces"] if t["name"] == "segment (colour: loss)")
        assert cells["x"] == list(range(10, 210))
        title = tab.page.locator("#chart-genealogy .gtitle").text_content()
        assert "(the last 200 of 210 generations)" in title
        tab.assert_clean()
    finally:
        server.stop()
