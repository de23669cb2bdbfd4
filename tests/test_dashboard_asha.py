"""The dashboard's rung view of ASHA and Hyperband experiments, through the server's JSON API (no browser).

Experiments are run through the public API with scores known in advance
(a configuration's loss is its ``x`` over its resource, or the other way
for a maximised result), with crashed, running and queued jobs. What the
server answers is compared with what this file restates from the jobs as
``exp.all_jobs()`` reads them (``job.rung``, ``job.resource``,
``job.member``, ``job.parent_id``): the ladder of each bracket, the counts of
each rung, which jobs were promoted, the best job at the highest rung, and
one chart line per configuration. Other kinds must answer exactly as before.
"""

import math
import re
from collections import Counter, defaultdict

import pytest
from test_dashboard_server import as_json, embedded, expected, parse, serving, tree

import schedy
from schedy.dashboard import report_html, views
from schedy.errors import NoJobError
from schedy.pbt import MAXIMIZE, MINIMIZE
from schedy.random import Uniform

STATUSES = ["QUEUED", "RUNNING", "DONE", "CRASHED", "PRUNED"]


@pytest.fixture
def file_db(tmp_path):
    return schedy.SchedyDB(str(tmp_path / "db"), worker="asha-test")


def drive(exp, jobs, crash=(), result="loss", objective=MINIMIZE):
    """Hand out ``jobs`` jobs and finish them (loss x / resource; CRASHED for the job ids in ``crash``)."""
    for _ in range(jobs):
        job = exp.next_job()
        if job.job_id in crash:
            job.status = "CRASHED"
            job.put()
            continue
        with job:
            x = job.hyperparameters["x"]
            job.results[result] = x / job.resource if objective == MINIMIZE else x * job.resource


def asha(db, name="asha", **kw):
    kw = dict(dict(min_resource=1, max_resource=9, reduction_factor=3, max_jobs=40, seed=1), **kw)
    return db.add_experiment(schedy.ASHA(name, {"x": Uniform(0.0, 1.0)}, "loss", **kw))


@pytest.fixture
def running_asha(file_db):
    """ASHA (resources 1, 3, 9): 22 jobs finished or crashed, one RUNNING, one QUEUED (added by hand)."""
    exp = asha(file_db)
    drive(exp, 22, crash={"5", "9", "14"})
    exp.next_job()  # claimed and never finished: RUNNING
    exp.add_job({"x": 0.5})  # a new configuration, QUEUED
    return exp


# ---------------------------------------------------------------- what the jobs say (restated here)


def ladder(exp):
    """The resources of the rungs of bracket 0: min * eta ** k while it stays under max, then max."""
    out, r = [], exp.min_resource
    while r * exp.reduction_factor <= exp.max_resource * (1 + 1e-12):
        out.append(r)
        r *= exp.reduction_factor
    return out + [exp.max_resource]


def brackets_of(exp, jobs):
    """member -> bracket, read from the resource of the member's first job (bracket b starts at ladder[b])."""
    resources = ladder(exp)
    return {j.member: resources.index(j.resource) for j in jobs if j.rung == 0}


def loss(job, name="loss"):
    v = job.results.get(name)
    return v if job.status == "DONE" and isinstance(v, (int, float)) and math.isfinite(v) else None


def restated(exp, result="loss", objective=MINIMIZE):
    """The rung view as this file reads it from ``exp.all_jobs()``: {(bracket, rung): facts}, lines, best."""
    jobs = sorted(exp.all_jobs(), key=lambda j: int(j.job_id))
    bracket = brackets_of(exp, jobs)
    sign = 1 if objective == MAXIMIZE else -1
    child = {}
    for j in jobs:
        if j.parent_id is not None:
            child.setdefault(j.parent_id, j.job_id)
    cells = defaultdict(list)
    for j in jobs:
        cells[(bracket[j.member], j.rung)].append(j)
    rungs = {}
    for key, js in cells.items():
        scored = sorted((j for j in js if loss(j, result) is not None), key=lambda j: -sign * loss(j, result))
        promoted = [j for j in js if j.job_id in child]
        promoted.sort(key=lambda j: (loss(j, result) is None, -sign * (loss(j, result) or 0), int(j.job_id)))
        rungs[key] = {
            "reached": len({j.member for j in js}),
            "counts": {s: sum(j.status == s for j in js) for s in STATUSES},
            "scored": len(scored),
            "promoted": [(j.job_id, j.member, loss(j, result), child[j.job_id]) for j in promoted],
            "best": None if not scored else {"job": scored[0].job_id, "value": loss(scored[0], result)},
            "resource": js[0].resource,
        }
    lines = defaultdict(list)
    for j in jobs:
        if loss(j, result) is not None:
            lines[j.member].append((j.rung, j.job_id, j.resource, loss(j, result), j.job_id in child))
    done = [j for j in jobs if loss(j, result) is not None]
    top = max(j.resource for j in done)
    best = max((j for j in done if j.resource == top), key=lambda j: (sign * loss(j, result), -int(j.job_id)))
    return {"jobs": jobs, "bracket": bracket, "rungs": rungs, "lines": lines, "best": best, "child": child}


def check_rungs(exp, got, result="loss", objective=MINIMIZE):
    """``got`` (the API's rungs) says what the jobs say: ladders, counts, promotions, the best, the lines."""
    want = restated(exp, result, objective)
    resources = ladder(exp)
    brackets = got["brackets"]
    assert got["result"] == result and got["objective"] == objective and got["unplaced"] == 0
    assert [b["bracket"] for b in brackets] == list(range(len(brackets)))
    assert len(brackets) == (len(resources) if isinstance(exp, schedy.Hyperband) else 1)
    for b in brackets:
        # Bracket b climbs the ladder from its rung b.
        assert [r["resource"] for r in b["rungs"]] == resources[b["bracket"] :]
        assert [r["rung"] for r in b["rungs"]] == list(range(len(resources) - b["bracket"]))
        assert b["configurations"] == sum(1 for m, k in want["bracket"].items() if k == b["bracket"])
        for r in b["rungs"]:
            cell = want["rungs"].get((b["bracket"], r["rung"]))
            last = r["rung"] == len(b["rungs"]) - 1
            if cell is None:  # nobody reached it yet
                assert r["reached"] == r["scored"] == r["promoted"] == 0 and r["best"] is None
                assert r["counts"] == dict.fromkeys(STATUSES, 0) and r["promoted_jobs"] == []
                continue
            assert r["resource"] == cell["resource"]
            assert r["reached"] == cell["reached"]
            assert r["counts"] == cell["counts"]
            assert r["scored"] == cell["scored"]
            assert r["promotable"] == (None if last else math.floor(cell["scored"] / exp.reduction_factor))
            assert r["promoted"] == len(cell["promoted"])
            assert [(p["job"], p["member"], p["value"], p["to"]) for p in r["promoted_jobs"]] == cell["promoted"]
            assert r["best"] == cell["best"]
            if last:
                assert r["promoted"] == 0
    # One line per configuration with a score, its DONE jobs rung by rung.
    lines = got["lines"]
    assert lines["total"] == lines["shown"] == len(want["lines"])
    assert [c["member"] for c in lines["configurations"]] == sorted(want["lines"])
    for c in lines["configurations"]:
        points = sorted(want["lines"][c["member"]])
        assert c["bracket"] == want["bracket"][c["member"]]
        assert c["rungs"] == [p[0] for p in points]
        assert c["jobs"] == [p[1] for p in points]
        assert c["resources"] == [p[2] for p in points]
        assert c["values"] == [p[3] for p in points]
        assert c["promoted"] == [p[4] for p in points]
    return want


# ---------------------------------------------------------------- the API


def test_asha_rung_view_through_the_api(file_db, running_asha):
    exp = running_asha
    before = tree(file_db)
    with serving(file_db._store) as c:
        doc = c.api("asha")
        listing = {s["name"]: s for s in c.get("/api/experiments").json}
    assert tree(file_db) == before  # read only, as ever
    assert set(doc) == {"summary", "jobs", "rungs"}
    state, time_of = expected(file_db, "asha")
    assert doc == as_json(
        {
            "summary": views.summary(state, time_of),
            "jobs": views.job_columns(state, time_of),
            "rungs": views.rungs(state, time_of),
        }
    )
    assert listing["asha"] == doc["summary"]

    want = check_rungs(exp, doc["rungs"])
    ((rung0, rung1, rung2),) = [b["rungs"] for b in doc["rungs"]["brackets"]]
    # The fixture has something in every column: crashes, a running and a queued job, promotions, the last rung.
    assert rung0["counts"]["CRASHED"] and rung0["counts"]["QUEUED"] == 1 and rung0["promoted"] >= 3
    assert sum(r["counts"]["RUNNING"] for r in (rung0, rung1, rung2)) == 1
    assert rung1["promoted"] >= 1 and rung2["counts"]["DONE"] >= 1
    assert sum(r["reached"] for r in (rung0, rung1, rung2)) == len(want["jobs"])  # one job per rung and config
    # A crashed promotion stops its configuration: its parent is promoted all the same.
    crashed = [j for j in want["jobs"] if j.status == "CRASHED" and j.parent_id is not None]
    assert crashed and all(want["child"][j.parent_id] == j.job_id for j in crashed)

    # The summary: ranked by the experiment's result, and its facts.
    s = doc["summary"]
    assert s["score"] == {"name": "loss", "goal": "min"}
    best = want["best"]
    assert best.resource == 9 and best.rung == 2
    assert s["best"] == {"job": best.job_id, "value": best.results["loss"]}
    # Not the lowest loss of any job: a job at a lower rung may score better on a shorter training.
    assert s["halving"] == {
        "result": "loss",
        "objective": "min",
        "min_resource": 1,
        "max_resource": 9,
        "reduction_factor": 3,
        "max_jobs": 40,
        "brackets": 1,
        "resources": [1, 3, 9],
        "best": {
            "job": best.job_id,
            "value": best.results["loss"],
            "member": best.member,
            "bracket": 0,
            "rung": 2,
            "resource": 9,
        },
    }
    assert s["jobs"] == len(want["jobs"]) == 24

    # The jobs table's columns: the rung is the generation, the resource and bracket are there too.
    cols = doc["jobs"]["columns"]
    assert cols["id"] == [j.job_id for j in want["jobs"]]
    assert cols["generation"] == [j.rung for j in want["jobs"]]
    assert cols["resource"] == [j.resource for j in want["jobs"]]
    assert cols["bracket"] == [0] * len(want["jobs"])
    assert cols["parent"] == [j.parent_id for j in want["jobs"]]
    assert cols["member"] == [j.member for j in want["jobs"]]


def test_the_best_is_the_best_at_the_highest_resource_reached(file_db):
    """Before any job reaches the last rung, the best is the best at the highest rung reached so far."""
    exp = asha(file_db, max_resource=27)
    drive(exp, 4)  # configurations 0-3 at rung 0, then configuration with the lowest x promoted to rung 1
    jobs = sorted(exp.all_jobs(), key=lambda j: int(j.job_id))
    assert [j.rung for j in jobs] == [0, 0, 0, 1]
    with serving(file_db._store) as c:
        s = c.api("asha")["summary"]
    top = jobs[3]
    assert s["halving"]["best"]["job"] == top.job_id and s["halving"]["best"]["resource"] == 3
    assert s["best"] == {"job": top.job_id, "value": top.results["loss"]}
    assert s["halving"]["resources"] == [1, 3, 9, 27]

    # An experiment with no DONE job yet has no best.
    fresh = asha(file_db, name="fresh")
    fresh.next_job()
    with serving(file_db._store) as c:
        doc = c.api("fresh")
    assert doc["summary"]["best"] is None and doc["summary"]["halving"]["best"] is None
    assert doc["rungs"]["lines"] == {"total": 0, "shown": 0, "configurations": []}
    assert doc["rungs"]["brackets"][0]["rungs"][0]["counts"]["RUNNING"] == 1


def test_hyperband_has_a_ladder_per_bracket(file_db):
    exp = file_db.add_experiment(
        schedy.Hyperband(
            "hb",
            {"x": Uniform(0.0, 1.0)},
            "accuracy",
            MAXIMIZE,
            min_resource=1,
            max_resource=9,
            reduction_factor=3,
            max_jobs=30,
            seed=2,
        )
    )
    drive(exp, 26, crash={"7"}, result="accuracy", objective=MAXIMIZE)
    with serving(file_db._store) as c:
        doc = c.api("hb")
    state, time_of = expected(file_db, "hb")
    assert doc["rungs"] == as_json(views.rungs(state, time_of))
    want = check_rungs(exp, doc["rungs"], result="accuracy", objective=MAXIMIZE)
    brackets = doc["rungs"]["brackets"]
    assert [len(b["rungs"]) for b in brackets] == [3, 2, 1]
    assert all(b["configurations"] > 0 for b in brackets), "every bracket should have started"
    assert sum(b["configurations"] for b in brackets) == len(want["bracket"])
    # The last bracket trains to the maximum at once: nothing to promote there.
    assert brackets[2]["rungs"][0]["resource"] == 9 and brackets[2]["rungs"][0]["promotable"] is None
    assert any(r["promoted"] for b in brackets[:2] for r in b["rungs"])
    # Best first means highest first when the result is maximised.
    for b in brackets:
        for r in b["rungs"]:
            values = [p["value"] for p in r["promoted_jobs"]]
            assert values == sorted(values, reverse=True)

    s = doc["summary"]
    assert s["score"] == {"name": "accuracy", "goal": "max"}
    assert s["halving"]["brackets"] == 3 and s["halving"]["objective"] == "max"
    best = want["best"]
    assert s["best"] == {"job": best.job_id, "value": best.results["accuracy"]} and best.resource == 9
    assert s["halving"]["best"]["bracket"] == want["bracket"][best.member]
    cols = doc["jobs"]["columns"]
    assert cols["bracket"] == [want["bracket"][j.member] for j in want["jobs"]]
    assert cols["resource"] == [j.resource for j in want["jobs"]]
    assert Counter(cols["bracket"]).keys() == {0, 1, 2}


def test_a_delta_sends_the_changed_jobs_and_the_whole_rung_view(file_db):
    exp = asha(file_db)
    drive(exp, 6)
    with serving(file_db._store) as c:
        full = c.api("asha")
        v, created = full["jobs"]["version"], full["jobs"]["created"]
        drive(exp, 2)
        delta = c.api("asha", since=v, created=created)
        state, time_of = expected(file_db, "asha")
        assert delta["jobs"] == as_json(views.job_columns(state, time_of, since=v))
        assert delta["jobs"]["columns"]["id"] == ["7", "8"]
        assert delta["jobs"]["columns"]["resource"] == [exp.get_job("7").resource, exp.get_job("8").resource]
        assert delta["rungs"] == as_json(views.rungs(state, time_of))
        check_rungs(exp, delta["rungs"])
        # Nothing changed: no job, and no rung view (the page keeps the one it has).
        again = c.api("asha", since=delta["jobs"]["version"], created=created)
        assert again["jobs"]["columns"]["id"] == [] and "rungs" not in again
        # Another incarnation, or a version beyond the log: everything again, the rung view with it.
        assert c.api("asha", since=delta["jobs"]["version"], created=created + 1)["rungs"] == delta["rungs"]
        assert c.api("asha", since=delta["jobs"]["version"] + 5, created=created)["rungs"] == delta["rungs"]


def test_other_kinds_answer_as_before(file_db):
    """No rung view, no halving facts and no rung columns for manual, random and PBT experiments."""
    manual = file_db.add_experiment(schedy.ManualSearch("manual"))
    manual.add_job({"lr": 0.1}, status="DONE", results={"loss": 0.5})
    rnd = file_db.add_experiment(schedy.RandomSearch("random", {"x": Uniform(0, 1)}, seed=1))
    with rnd.next_job() as j:
        j.results["loss"] = j.hyperparameters["x"]
    pbt = file_db.add_experiment(
        schedy.PopulationBasedTraining(
            "pbt",
            MINIMIZE,
            "loss",
            schedy.pbt.Truncate(0.25),
            {"lr": schedy.pbt.Perturb(0.8, 1.2)},
            {"lr": Uniform(0.1, 1.0)},
            population_size=2,
            max_generations=2,
        )
    )
    with pbt.next_job() as j:
        j.results["loss"] = 1.0
    with serving(file_db._store) as c:
        for name in ("manual", "random", "pbt"):
            doc = c.api(name)
            assert set(doc) == {"summary", "jobs"}, name
            assert "halving" not in doc["summary"]
            assert set(doc["jobs"]["columns"]) == {
                "id",
                "status",
                "generation",
                "member",
                "parent",
                "added_at",
                "finished_at",
                "worker",
            }
            state, time_of = expected(file_db, name)
            assert views.rungs(state, time_of) is None
    data = report_html(file_db._store, "manual")
    assert set(embedded(data)["experiment"]) == {"summary", "jobs", "importance"}  # no rungs


# ---------------------------------------------------------------- bounds


def test_the_chart_keeps_the_configurations_that_climbed_first(file_db, monkeypatch):
    exp = asha(file_db, max_jobs=None)
    drive(exp, 30)
    state, time_of = expected(file_db, "asha")
    whole = views.rungs(state, time_of)["lines"]
    climbed = [c for c in whole["configurations"] if c["rungs"][-1] > 0]
    stayed = [c for c in whole["configurations"] if c["rungs"][-1] == 0]
    assert climbed and len(stayed) > 5
    climbed_points = sum(len(c["jobs"]) for c in climbed)

    # Room for the climbers and three more: every climber, then three of the others spread evenly.
    monkeypatch.setattr(views, "LINE_POINTS", climbed_points + 3)
    lines = views.rungs(state, time_of)["lines"]
    assert lines["total"] == whole["total"] and lines["shown"] == len(climbed) + 3
    assert sum(len(c["jobs"]) for c in lines["configurations"]) == climbed_points + 3
    members = [c["member"] for c in lines["configurations"]]
    assert members == sorted(members)
    assert {c["member"] for c in climbed} <= set(members)
    kept = [m for m in members if m not in {c["member"] for c in climbed}]
    assert kept[0] == stayed[0]["member"] and kept[-1] < stayed[-1]["member"]  # a stride, not the first three

    # Room for fewer points than the climbers have: the ones that climbed highest, then scored best, go first.
    top = max(c["resources"][-1] for c in climbed)
    highest = sorted((c for c in climbed if c["resources"][-1] == top), key=lambda c: c["values"][-1])
    monkeypatch.setattr(views, "LINE_POINTS", len(highest[0]["jobs"]))
    lines = views.rungs(state, time_of)["lines"]
    assert [c["member"] for c in lines["configurations"]] == [highest[0]["member"]]
    assert lines["shown"] == 1 and lines["total"] == whole["total"]


def test_promoted_jobs_are_listed_up_to_a_limit(file_db, monkeypatch):
    exp = asha(file_db, max_jobs=None)
    drive(exp, 30)
    state, time_of = expected(file_db, "asha")
    rung0 = views.rungs(state, time_of)["brackets"][0]["rungs"][0]
    assert rung0["promoted"] > 2
    monkeypatch.setattr(views, "PROMOTED_LISTED", 2)
    capped = views.rungs(state, time_of)["brackets"][0]["rungs"][0]
    assert capped["promoted"] == rung0["promoted"]  # the count stays whole
    assert capped["promoted_jobs"] == rung0["promoted_jobs"][:2]  # the best two
    assert exp.get_job(capped["promoted_jobs"][0]["to"]).parent_id == capped["promoted_jobs"][0]["job"]


# ---------------------------------------------------------------- the report and hostile text


HOSTILE = '</script><script>alert(1)</script><img src=x onerror=alert(2)> & "q"'


def test_the_report_carries_the_rung_view_and_hostile_names_stay_text(file_db):
    exp = file_db.add_experiment(
        schedy.ASHA(HOSTILE, {HOSTILE: Uniform(0.0, 1.0)}, HOSTILE, max_resource=9, max_jobs=12, seed=3)
    )
    while True:
        try:
            job = exp.next_job()
        except NoJobError:
            break
        with job:
            job.results[HOSTILE] = job.hyperparameters[HOSTILE] / job.resource
            job.results["<b>note</b>"] = "<!--<script>"
    data = report_html(file_db._store, HOSTILE)
    parsed = parse(data)
    assert data.lower().count(b"</script") == len(parsed.scripts)  # no value ends an element early
    assert b"<script>alert(" not in data and b"<img src=x" not in data
    got = embedded(data)
    state, time_of = expected(file_db, HOSTILE)
    assert got["experiment"]["rungs"] == as_json(views.rungs(state, time_of))
    assert got["experiment"]["rungs"]["result"] == HOSTILE
    assert got["experiment"]["summary"]["halving"]["result"] == HOSTILE
    assert got["experiment"]["summary"]["score"] == {"name": HOSTILE, "goal": "min"}
    check_rungs(exp, got["experiment"]["rungs"], result=HOSTILE)
    with serving(file_db._store) as c:
        assert c.api(HOSTILE)["rungs"] == got["experiment"]["rungs"]


def test_the_page_builds_no_html_from_values():
    """The script adds log values as text nodes and attributes only: no HTML parser is ever handed a string."""
    from schedy.dashboard import page

    code = page.static_file("app.js")[0].decode("utf-8")
    code = re.sub(r"^\s*//.*$", "", code, flags=re.M)  # the comments may name what the code must not use
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "DOMParser",
        "createContextualFragment",
    ):
        assert sink not in code, sink
    # Chart labels go through plotText, which escapes the tags plotly.js reads.
    assert "plotText(title)" in code and "plotText(view.result)" in code
