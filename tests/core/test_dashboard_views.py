"""The dashboard's views (schedy.dashboard.views), on states folded in memory from commits.

Every state here is built the way the imperative shell builds it: the pure
decisions of :mod:`schedy.core.decide` (or a hand-written event where a test
needs one) give events, each batch is one commit stamped with a known time,
and :func:`schedy.core.state.apply` folds it. No disk, no store.
"""

import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedy.core import decide, values
from schedy.core import events as ev
from schedy.core.codec import Commit
from schedy.core.pbt import Config, Truncate
from schedy.core.state import apply
from schedy.dashboard import views
from schedy.errors import SchedyError

NAME = "exp"
MANUAL = {"scheduler": {"Manual": {}}}
RANDOM = {"scheduler": {"RandomSearch": {"distributions": {"lr": {"loguniform": {"low": 1e-5, "high": 1}}}}}}
T0 = 1_800_000_000.0
FIXED_COLUMNS = ["id", "status", "generation", "member", "parent", "added_at", "finished_at", "worker"]


def t_of(v):
    """The time stamped on commit ``v`` of every log built here."""
    return T0 + 7.5 * v


class Log:
    """An experiment's log in memory: every state it went through, one per commit."""

    def __init__(self, kind="manual", params=MANUAL, name=NAME, lease=600.0):
        self.name = name
        self.states = [None]
        self.decide(decide.create_experiment, kind=kind, params=params, status=ev.RUNNING, seed=7, lease=lease)

    @property
    def state(self):
        return self.states[-1]

    @property
    def version(self):
        return len(self.states) - 1

    def next_time(self):
        return t_of(self.version + 1)

    def write(self, events, worker="w"):
        v = self.version + 1
        self.states.append(apply(self.state, Commit(v, t_of(v), worker, events)))
        return v

    def decide(self, fn, **kwargs):
        """Run a pure decision on the current state, append its events as one commit, return its value."""
        d = fn(self.state, name=self.name, **kwargs)
        if d.events:
            self.write(d.events)
        if d.error is not None:
            raise d.error
        return d.value

    def time_of(self, v):
        return t_of(v) if 1 <= v <= self.version else None

    # -- the operations the tests use ------------------------------------------------------------
    def add(self, hp=None, status=ev.QUEUED, results=None):
        return self.decide(
            decide.add_job,
            hyperparameters=values.encode_mapping(hp, "hp"),
            status=status,
            results=values.encode_mapping(results, "results"),
        )

    def claim(self, worker="w1"):
        return self.decide(decide.next_job, worker=worker, version=self.version + 1, now=self.next_time())

    def put(self, job_id, status, results=None, hp=None, worker="w1"):
        job = self.state.jobs[job_id]
        return self.decide(
            decide.update_job,
            job_id=job_id,
            worker=worker,
            status=status,
            hyperparameters=job.hyperparameters if hp is None else values.encode_mapping(hp, "hp"),
            results=job.results if results is None else values.encode_mapping(results, "results"),
            now=self.next_time(),
        )

    def heartbeat(self, job_id, worker="w1"):
        return self.decide(decide.heartbeat, job_id=job_id, worker=worker, now=self.next_time())

    def delete(self, job_id):
        return self.decide(decide.delete_job, job_id=job_id)


def columns(state, time_of, since=0):
    doc = views.job_columns(state, time_of, since=since)
    orjson.dumps(doc)  # every view must be JSON as it stands (the server sends it with orjson)
    return doc


def rows(doc):
    """``{id: row}`` of a job_columns document, a row holding every column (None dropped from hp and results)."""
    out = {}
    for i, job_id in enumerate(doc["columns"]["id"]):
        row = {c: doc["columns"][c][i] for c in FIXED_COLUMNS}
        row["hp"] = {h: col[i] for h, col in doc["hp"].items() if col[i] is not None}
        row["results"] = {h: col[i] for h, col in doc["results"].items() if col[i] is not None}
        out[job_id] = row
    return out


def assert_aligned(doc):
    n = len(doc["columns"]["id"])
    assert set(doc["columns"]) == set(FIXED_COLUMNS)
    for name, col in [*doc["columns"].items(), *doc["hp"].items(), *doc["results"].items()]:
        assert len(col) == n, f"column {name!r} has {len(col)} values for {n} jobs"


def pbt_params(objective, result_name):
    return Config(objective, result_name, Truncate(0.25), {}, {}, None, None).to_log()


# ---------------------------------------------------------------- score


@pytest.mark.parametrize("objective", ["min", "max"])
def test_pbt_score_is_its_objective_and_result_name(objective):
    log = Log("pbt", pbt_params(objective, "quality"))
    assert views.score(log.state) == {"name": "quality", "goal": objective}
    # A first job with another numeric result changes nothing: PBT says what it ranks by.
    log.add({"lr": 0.1}, ev.DONE, {"loss": 0.5, "quality": 3})
    assert views.score(log.state) == {"name": "quality", "goal": objective}


@pytest.mark.parametrize("kind,params", [("manual", MANUAL), ("random", RANDOM)])
def test_score_of_a_search_is_the_first_numeric_result_of_the_first_job_that_has_one(kind, params):
    log = Log(kind, params)
    hp = {"lr": 0.01}
    assert views.score(log.state) is None  # no job
    log.add(hp, ev.DONE, {"note": "no number", "ok": True, "nan": math.nan, "inf": -math.inf, "nested": [1.0]})
    assert views.score(log.state) is None  # strings, bools, non-finite floats and lists are not numbers
    log.add(hp, ev.QUEUED, {})
    log.add(hp, ev.CRASHED, {"name": "x", "flag": False, "accuracy": 0.9, "val_loss": 0.2})
    assert views.score(log.state) == {"name": "accuracy", "goal": "max"}
    log.add(hp, ev.DONE, {"val_loss": 0.1})  # a later job does not change it
    assert views.score(log.state) == {"name": "accuracy", "goal": "max"}
    log.delete("3")  # the first job with a number is now job 4
    assert views.score(log.state) == {"name": "val_loss", "goal": "min"}


@pytest.mark.parametrize(
    "name",
    [
        "loss",
        "val_loss",
        "Loss",
        "error",
        "test_error",
        "err",
        "mse",
        "RMSE",
        "mae",
        "cost",
        "regret",
        "perplexity",
        "ppl",
        "wer",
        "cer",
    ],
)
def test_a_loss_or_error_is_minimised(name):
    log = Log()
    log.add({}, ev.DONE, {name: 1.5})
    assert views.score(log.state) == {"name": name, "goal": "min"}


@pytest.mark.parametrize("name", ["accuracy", "acc", "f1", "reward", "auc", "bleu", "score", "int_metric"])
def test_other_results_are_maximised(name):
    log = Log()
    log.add({}, ev.DONE, {name: 2})  # an int is a number
    assert views.score(log.state) == {"name": name, "goal": "max"}


@pytest.mark.parametrize("name", ["answer_accuracy", "power", "cancer_auc", "supply_rate"])
def test_a_name_merely_containing_loss_like_letters_is_maximised(name):
    """Fixed bug (minor): the loss/error pattern matches anywhere inside a name.

    views._LOWER_IS_BETTER is searched as a substring, so "answer_accuracy"
    ("wer"), "power" ("wer"), "cancer_auc" ("cer") and "supply_rate" ("ppl")
    are taken for losses and ranked the wrong way. Matching whole words of
    the name (split on _, -, ., digits and case changes) would fix it.
    """
    log = Log()
    log.add({}, ev.DONE, {name: 0.9})
    assert views.score(log.state) == {"name": name, "goal": "max"}


def test_score_without_any_numeric_result_is_none():
    log = Log()
    log.add({}, ev.DONE, {"ok": True, "why": "fine"})
    log.add({}, ev.DONE, {"loss": math.nan})
    log.add({}, ev.QUEUED, {})
    assert views.score(log.state) is None
    s = views.summary(log.state, log.time_of)
    assert s["score"] is None and s["best"] is None


# ---------------------------------------------------------------- summary


def test_summary_counts_jobs_by_status_and_times_its_commits():
    log = Log()
    for status, n in [(ev.QUEUED, 3), (ev.DONE, 2), (ev.CRASHED, 1), (ev.PRUNED, 4)]:
        for _ in range(n):
            log.add({"lr": 0.1}, status)
    log.claim()  # one of the queued jobs becomes RUNNING
    s = views.summary(log.state, log.time_of)
    assert s["counts"] == {"QUEUED": 2, "RUNNING": 1, "CRASHED": 1, "PRUNED": 4, "DONE": 2}
    assert s["jobs"] == 10
    assert (s["name"], s["kind"], s["status"]) == (NAME, "manual", ev.RUNNING)
    assert (s["version"], s["created"]) == (log.version, 1)
    assert s["created_at"] == t_of(1)
    assert s["updated_at"] == t_of(log.version)
    orjson.dumps(s)


def test_summary_times_are_none_when_unknown():
    log = Log()
    log.add({})
    s = views.summary(log.state, lambda v: None)
    assert s["created_at"] is None and s["updated_at"] is None


def test_summary_of_a_recreated_experiment_is_of_the_new_incarnation():
    log = Log()
    log.add({}, ev.DONE, {"loss": 0.1})
    log.decide(decide.delete_experiment)
    log.decide(decide.create_experiment, kind="manual", params=MANUAL, status=ev.RUNNING, seed=8)
    created = log.version
    log.add({}, ev.QUEUED)
    s = views.summary(log.state, log.time_of)
    assert s["created"] == created and s["created_at"] == t_of(created)
    assert s["jobs"] == 1 and s["counts"]["QUEUED"] == 1 and s["counts"]["DONE"] == 0
    assert s["best"] is None


def test_best_is_among_done_jobs_with_a_finite_number_only_minimised():
    log = Log()
    log.add({}, ev.DONE, {"loss": 0.5})  # 1: the first numeric result names the score
    log.add({}, ev.CRASHED, {"loss": 0.01})  # 2: better, but not DONE
    log.add({}, ev.PRUNED, {"loss": 0.02})  # 3
    log.add({}, ev.QUEUED, {"loss": 0.03})  # 4
    log.add({}, ev.DONE, {"loss": math.nan})  # 5: NaN
    log.add({}, ev.DONE, {"loss": -math.inf})  # 6: -inf would win a naive min
    log.add({}, ev.DONE, {"loss": "0.001"})  # 7: a string
    log.add({}, ev.DONE, {"loss": False})  # 8: a bool (False == 0 would win)
    log.add({}, ev.DONE, {"other": 0.0})  # 9: no such result
    log.add({}, ev.DONE, {"loss": 0.25})  # 10: the best
    log.add({}, ev.DONE, {"loss": 1})  # 11: an int counts
    job = log.claim()  # claims job 4, which keeps its results
    assert job == "4"
    s = views.summary(log.state, log.time_of)
    assert s["score"] == {"name": "loss", "goal": "min"}
    assert s["best"] == {"job": "10", "value": 0.25}
    log.put("4", ev.DONE, {"loss": 0.2})  # finished: now it counts
    assert views.summary(log.state, log.time_of)["best"] == {"job": "4", "value": 0.2}


def test_best_is_among_done_jobs_with_a_finite_number_only_maximised():
    log = Log()
    log.add({}, ev.DONE, {"accuracy": 0.5})
    log.add({}, ev.RUNNING, {"accuracy": 0.99})
    log.add({}, ev.DONE, {"accuracy": math.inf})
    log.add({}, ev.DONE, {"accuracy": True})  # True == 1 would win a naive max
    log.add({}, ev.DONE, {"accuracy": [0.98]})
    log.add({}, ev.DONE, {"accuracy": 0.75})
    log.add({}, ev.DONE, {"accuracy": 0.6})
    s = views.summary(log.state, log.time_of)
    assert s["score"] == {"name": "accuracy", "goal": "max"}
    assert s["best"] == {"job": "6", "value": 0.75}
    orjson.dumps(s)


@pytest.mark.parametrize("objective,best", [("min", ("3", 0.1)), ("max", ("2", 0.9))])
def test_best_of_pbt_follows_its_objective(objective, best):
    log = Log("pbt", pbt_params(objective, "q"))
    log.add({"lr": 0.1}, ev.DONE, {"q": 0.5, "loss": 100.0})
    log.add({"lr": 0.2}, ev.DONE, {"q": 0.9, "loss": 0.0})
    log.add({"lr": 0.3}, ev.DONE, {"q": 0.1})
    log.add({"lr": 0.4}, ev.QUEUED, {"q": -5.0})
    s = views.summary(log.state, log.time_of)
    assert s["best"] == {"job": best[0], "value": best[1]}
    assert s["kind"] == "pbt" and s["score"] == {"name": "q", "goal": objective}


# ---------------------------------------------------------------- job_columns


def test_columns_keep_the_order_jobs_were_added_and_stay_aligned():
    log = Log()
    log.add({"lr": 0.1, "opt": "adam"})
    log.add({"lr": 0.2, "layers": [64, 32]})
    log.add({"opt": "sgd"}, ev.DONE, {"loss": 0.3})
    log.add({})
    log.add({"lr": 0.5}, ev.DONE, {"acc": 0.9, "loss": 0.1})
    log.put("2", ev.DONE, {"loss": 0.7})  # changed last: order is still by number
    log.put("1", ev.PRUNED, {"acc": 0.1})
    doc = columns(log.state, log.time_of)
    assert_aligned(doc)
    c = doc["columns"]
    assert c["id"] == ["1", "2", "3", "4", "5"]
    assert c["status"] == [ev.PRUNED, ev.DONE, ev.DONE, ev.QUEUED, ev.DONE]
    assert doc["hp"] == {
        "lr": [0.1, 0.2, None, None, 0.5],
        "opt": ["adam", None, "sgd", None, None],
        "layers": [None, [64, 32], None, None, None],
    }
    assert doc["results"] == {"loss": [None, 0.7, 0.3, None, 0.1], "acc": [0.1, None, None, None, 0.9]}
    assert c["generation"] == c["member"] == c["parent"] == [None] * 5
    assert c["added_at"] == [t_of(2), t_of(3), t_of(4), t_of(5), t_of(6)]
    assert (doc["name"], doc["kind"], doc["version"], doc["created"], doc["since"], doc["count"]) == (
        NAME,
        "manual",
        log.version,
        1,
        0,
        5,
    )


def test_columns_with_no_job():
    log = Log()
    doc = columns(log.state, log.time_of)
    assert_aligned(doc)
    assert doc["columns"]["id"] == [] and doc["hp"] == {} and doc["results"] == {} and doc["count"] == 0


def test_non_finite_floats_are_spelled_as_strings_even_nested():
    log = Log()
    log.add(
        {
            "a": math.nan,
            "b": [1.0, math.inf, {"c": -math.inf}],
            "d": {"x": math.nan, "y": [[-math.inf]]},
            "e": {"$f": "NaN"},
            "f": {"$d": 1},
        },
        ev.DONE,
        {"loss": math.inf, "curve": [0.5, math.nan], "ok": True, "none": None, "big": 2**64 - 1},
    )
    doc = columns(log.state, log.time_of)
    assert_aligned(doc)
    hp, res = doc["hp"], doc["results"]
    assert hp["a"] == ["NaN"]
    assert hp["b"] == [[1.0, "Infinity", {"c": "-Infinity"}]]
    assert hp["d"] == [{"x": "NaN", "y": [["-Infinity"]]}]
    assert hp["e"] == [{"$f": "NaN"}]  # a user dict that looks like an escape is shown as the user wrote it
    assert hp["f"] == [{"$d": 1}]
    assert res["loss"] == ["Infinity"] and res["curve"] == [[0.5, "NaN"]]
    assert res["ok"] == [True] and res["none"] == [None] and res["big"] == [2**64 - 1]
    assert type(res["ok"][0]) is bool
    data = orjson.dumps(doc)
    assert b"NaN" in data and b"Infinity" in data  # as strings: orjson would write null for a float NaN
    assert orjson.loads(data)["hp"]["a"] == ["NaN"]


def test_finished_at_only_for_finished_jobs_and_is_the_time_of_their_last_change():
    log = Log()
    for _ in range(5):
        log.add({"lr": 0.1})
    log.claim("w1")  # 1 RUNNING
    log.put("1", ev.DONE, {"loss": 0.1})
    done_at = log.version
    log.claim("w2")  # 2 RUNNING
    log.put("2", ev.CRASHED, worker="w2")
    crashed_at = log.version
    log.claim("w3")  # 3 RUNNING, stays
    log.put("4", ev.PRUNED)
    pruned_at = log.version
    log.put("1", ev.DONE, {"loss": 0.05})  # a finished job changed again: finished_at follows it
    done_at = log.version
    doc = columns(log.state, log.time_of)
    c = doc["columns"]
    assert c["status"] == [ev.DONE, ev.CRASHED, ev.RUNNING, ev.PRUNED, ev.QUEUED]
    assert c["finished_at"] == [t_of(done_at), t_of(crashed_at), None, t_of(pruned_at), None]
    assert c["worker"] == [None, None, "w3", None, None]
    assert c["added_at"] == [t_of(v) for v in range(2, 7)]


def test_worker_column_is_the_claimant_while_running():
    log = Log()
    log.add({})
    log.claim("wörker-7")
    assert columns(log.state, log.time_of)["columns"]["worker"] == ["wörker-7"]
    log.put("1", ev.QUEUED, worker="wörker-7")
    assert columns(log.state, log.time_of)["columns"]["worker"] == [None]


def test_pbt_columns_hold_generation_member_and_parent():
    log = Log("pbt", pbt_params("max", "q"))
    log.add({"lr": 0.1}, ev.DONE, {"q": 1.0})
    log.add({"lr": 0.2}, ev.QUEUED)
    log.write([ev.job_added("3", {"lr": 0.15}, ev.QUEUED, {}, generation=1, parent="1", member=0)])
    c = columns(log.state, log.time_of)["columns"]
    assert c["generation"] == [0, 0, 1]
    assert c["member"] == [0, 1, 0]
    assert c["parent"] == [None, None, "1"]


def test_since_returns_exactly_the_jobs_changed_after_that_commit():
    log = Log()
    for i in range(6):
        log.add({"lr": i / 10})
    v0 = log.version
    delta = columns(log.state, log.time_of, since=v0)
    assert delta["columns"]["id"] == [] and delta["count"] == 6 and delta["since"] == v0
    assert_aligned(delta)

    log.claim("w1")  # claims 1: its status and worker change
    v1 = log.version
    assert columns(log.state, log.time_of, since=v0)["columns"]["id"] == ["1"]

    log.heartbeat("1", "w1")  # a renewal changes nothing the dashboard shows, and not the job's version
    assert log.version == v1 + 1
    assert columns(log.state, log.time_of, since=v1)["columns"]["id"] == []

    log.put("3", ev.DONE, {"loss": 0.3})
    log.put("5", ev.QUEUED, hp={"lr": 9.0})  # hyperparameters only
    log.decide(decide.update_experiment, status=ev.DONE)  # no job changes
    log.decide(decide.update_experiment, status=ev.RUNNING)
    delta = columns(log.state, log.time_of, since=v1)
    assert_aligned(delta)
    assert delta["columns"]["id"] == ["3", "5"]
    assert delta["hp"] == {"lr": [0.2, 9.0]} and delta["results"] == {"loss": [0.3, None]}
    assert delta["count"] == 6 and delta["version"] == log.version and delta["since"] == v1

    # The claim of job 1 lapses: the next decision records it, and the job (QUEUED again, no holder) is in the delta.
    v2 = log.version
    later = log.state.jobs["1"].lease_until + 1
    log.decide(decide.add_job, hyperparameters={}, status=ev.QUEUED, results={})  # job 7 (add_job expires nothing)
    state, events = decide.expire_leases(log.state, later)
    assert [e["type"] for e in events] == [ev.JOB_LEASE_EXPIRED]
    log.write(events)
    delta = columns(log.state, log.time_of, since=v2)
    assert delta["columns"]["id"] == ["1", "7"]
    assert delta["columns"]["status"] == [ev.QUEUED, ev.QUEUED] and delta["columns"]["worker"] == [None, None]
    assert delta["count"] == 7

    # since the current version: nothing, whatever the number of jobs
    assert columns(log.state, log.time_of, since=log.version)["columns"]["id"] == []


def test_since_0_is_everything():
    log = Log()
    log.add({"a": 1})
    log.add({"a": 2})
    assert columns(log.state, log.time_of, since=0) == columns(log.state, log.time_of)
    assert columns(log.state, log.time_of)["columns"]["id"] == ["1", "2"]


def test_count_is_the_total_after_deletions():
    log = Log()
    for _ in range(4):
        log.add({})
    v = log.version
    log.delete("2")
    delta = columns(log.state, log.time_of, since=v)
    assert delta["columns"]["id"] == [] and delta["count"] == 3
    assert columns(log.state, log.time_of)["columns"]["id"] == ["1", "3", "4"]


# ---------------------------------------------------------------- the page's merge of deltas, as a property


def merge(base_rows, delta):
    """What the page does with a delta (app.js merge): overwrite rows by id.

    Returns the rows and whether they are complete: when the delta's count
    differs from the number of rows, the page reads everything again.
    """
    merged = dict(base_rows)
    merged.update(rows(delta))
    return merged, delta["count"] == len(merged)


hp_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=2),
    st.lists(st.floats(), max_size=2),
)
mappings = st.dictionaries(st.sampled_from(["lr", "opt", "loss", "acc"]), hp_values, max_size=3)
ops = st.one_of(
    st.tuples(st.just("add"), mappings, st.sampled_from(ev.JOB_STATUSES), mappings),
    st.tuples(st.just("claim"), st.sampled_from(["w1", "w2"])),
    st.tuples(st.just("put"), st.integers(1, 12), st.sampled_from(ev.JOB_STATUSES), mappings),
    st.tuples(st.just("heartbeat"), st.integers(1, 12)),
    st.tuples(st.just("expire"), st.floats(0, 200)),
    st.tuples(st.just("delete"), st.integers(1, 12)),
    st.tuples(st.just("experiment"), st.sampled_from(ev.EXPERIMENT_STATUSES)),
)


def run(log, op):
    kind = op[0]
    try:
        if kind == "add":
            log.add(op[1], op[2], op[3])
        elif kind == "claim":
            log.claim(op[1])
        elif kind == "put":
            job = log.state.jobs.get(str(op[1]))
            if job is not None:
                log.put(job.job_id, op[2], op[3], worker=job.worker or "w9")
        elif kind == "heartbeat":
            job = log.state.jobs.get(str(op[1]))
            if job is not None and job.worker is not None:
                log.heartbeat(job.job_id, job.worker)
        elif kind == "expire":
            _, events = decide.expire_leases(log.state, log.next_time() + op[1])
            if events:
                log.write(events)
        elif kind == "delete":
            if str(op[1]) in log.state.jobs:
                log.delete(str(op[1]))
        elif kind == "experiment":
            log.decide(decide.update_experiment, status=op[1])
    except SchedyError:
        pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=25), st.data())
def test_a_delta_merged_over_an_earlier_full_read_is_the_full_read_now(program, data):
    log = Log(lease=60.0)
    for op in program:
        run(log, op)
    v = data.draw(st.integers(1, log.version), label="since")
    then, now = log.states[v], log.state
    base = columns(then, log.time_of)
    delta = columns(now, log.time_of, since=v)
    full = columns(now, log.time_of)
    for doc in (base, delta, full):
        assert_aligned(doc)
    merged, complete = merge(rows(base), delta)
    full_rows = rows(full)
    # Every job that exists now is shown as a full read shows it: nothing stale survives a delta.
    assert {j: merged[j] for j in full_rows} == full_rows
    # A job deleted meanwhile is left over in the merge, and the page must see it to read everything again.
    deleted = set(base["columns"]["id"]) - set(full_rows)
    assert complete == (not deleted)
    if complete:
        assert merged == full_rows
    assert delta["count"] == full["count"] == len(full_rows)
    assert delta["version"] == full["version"] == log.version
    # The delta holds exactly the jobs whose version is after v, in the order they were added.
    assert delta["columns"]["id"] == [
        j.job_id for j in sorted(now.jobs.values(), key=lambda j: j.number) if j.version > v
    ]
