"""schedy.BayesianSearch through the Python API: the definition, the worker loop, bad input, the end."""

import pytest
from conftest import log_size

pytest.importorskip("optuna")

import schedy  # noqa: E402
from schedy.errors import NoJobError  # noqa: E402
from schedy.random import Choice, Constant, LogUniform, Normal, Uniform  # noqa: E402

DISTS = {"x": Uniform(-5.0, 5.0), "lr": LogUniform(1e-4, 1.0), "act": Choice(["relu", "tanh"]), "k": Constant(3)}


@pytest.fixture
def db(tmp_path):
    return schedy.SchedyDB(str(tmp_path / "db"), worker="bayes-test")


def test_a_search_runs_to_max_jobs_and_ends_by_itself(db):
    exp = db.add_experiment(schedy.BayesianSearch("b", DISTS, "loss", max_jobs=16, seed=2))
    seen = []
    while True:
        try:
            with exp.next_job() as job:
                hp = job.hyperparameters
                assert set(hp) == set(DISTS) and hp["k"] == 3 and hp["act"] in ("relu", "tanh")
                assert -5.0 <= hp["x"] <= 5.0 and 1e-4 <= hp["lr"] <= 1.0
                job.results["loss"] = hp["x"] ** 2 + (hp["act"] == "tanh")
                seen.append(job.job_id)
        except NoJobError as e:
            assert e.finished is not None
            break
    assert seen == [str(i) for i in range(1, 17)]
    exp = db.get_experiment("b")
    assert exp.status == "DONE" and isinstance(exp, schedy.BayesianSearch)
    assert (exp.sampler, exp.result_name, exp.max_jobs) == ("tpe", "loss", 16)
    assert exp.sampler_options["constant_liar"] is True  # the defaults were written to the log


def test_the_same_log_gives_the_same_proposals(tmp_path):
    def run(path):
        exp = schedy.SchedyDB(str(path), worker="w").add_experiment(
            schedy.BayesianSearch("b", DISTS, "loss", seed=9, sampler_options={"n_startup_trials": 3})
        )
        out = []
        for _ in range(8):
            with exp.next_job() as job:
                job.results["loss"] = job.hyperparameters["x"] ** 2
                out.append(dict(job.hyperparameters))
        return out

    assert run(tmp_path / "a") == run(tmp_path / "b")


@pytest.mark.parametrize(
    ("dists", "kw", "message"),
    [
        ({"x": Normal(0.0, 1.0)}, {}, "'x' has a Normal distribution, which is unbounded"),
        ({"c": Choice([1, 2], [3.0, 1.0])}, {}, "'c' has a weighted Choice"),
        (DISTS, {"sampler": "cma"}, "sampler must be one of 'tpe', 'cmaes', 'qmc', 'random', got 'cma'"),
        (DISTS, {"sampler_options": {"gamma": 0.1}}, "unknown 'gamma'"),
    ],
)
def test_a_definition_a_sampler_cannot_search_is_refused_when_made(db, dists, kw, message):
    with pytest.raises(ValueError, match=None) as e:
        schedy.BayesianSearch("b", dists, "loss", **kw)
    assert message in str(e.value)


def test_a_job_must_have_the_searched_hyperparameters_and_a_done_one_its_score(db):
    exp = db.add_experiment(schedy.BayesianSearch("b", DISTS, "loss", seed=2))
    before = log_size(db, "b")
    with pytest.raises(ValueError, match="exactly the hyperparameters of its distributions"):
        exp.add_job({"x": 1.0})
    with pytest.raises(ValueError, match="finished without its result 'loss'"):
        exp.add_job({"x": 1.0, "lr": 0.1, "act": "relu", "k": 3}, status="DONE", results={"acc": 1.0})
    assert log_size(db, "b") == before  # refused: nothing written
    with pytest.raises(ValueError, match="finished without its result 'loss'"):
        with exp.next_job() as job:
            job.results["acc"] = 0.5
    assert exp.get_job(job.job_id).status == "CRASHED"  # the with block recorded why the job ended


def test_the_dashboard_ranks_a_bayesian_search_by_its_definition(db):
    """Its result and direction, not the guess from a result's name made for manual and random searches."""
    from test_dashboard_server import expected

    from schedy.dashboard import views

    exp = db.add_experiment(schedy.BayesianSearch("b", DISTS, "loss", objective=schedy.pbt.MAXIMIZE, seed=2))
    for _ in range(3):
        with exp.next_job() as job:
            job.results.update(error=1.0, loss=job.hyperparameters["x"])
    state, time_of = expected(db, "b")
    assert views.score(state) == {"name": "loss", "goal": "max"}
    best = max(exp.all_jobs(), key=lambda j: j.results["loss"])
    assert views.summary(state, time_of)["best"]["job"] == best.job_id


def test_the_sampler_answers_before_the_lock_and_again_under_it_only_if_the_log_moved(db, tmp_path, monkeypatch):
    """A sampler takes tens of milliseconds: it is asked on the state read without the store's lock, and the
    decision under the lock reuses that answer when its request is the same (the log did not move)."""
    from schedy.adapters import api
    from schedy.adapters.stream import StreamView
    from schedy.samplers import optuna as optuna_sampler

    exp = db.add_experiment(schedy.BayesianSearch("b", DISTS, "loss", seed=2))
    asked, locked = [], []  # the requests the sampler answered; whether the append loop was deciding
    real, transact = optuna_sampler.suggest, StreamView.transact

    def suggest(request):
        asked.append((request, bool(locked)))
        return real(request)

    def in_transaction(self, *args, **kw):
        locked.append(True)
        try:
            return transact(self, *args, **kw)
        finally:
            locked.pop()

    monkeypatch.setattr(optuna_sampler, "suggest", suggest)
    monkeypatch.setattr(StreamView, "transact", in_transaction)
    with exp.next_job() as job:
        job.results["loss"] = 1.0
    assert [under_lock for _, under_lock in asked] == [False]  # before the lock only: the answer was reused

    moved = api.Experiment._sampler_answering_first

    def then_the_log_moves(self, worker):
        sample = moved(self, worker)
        schedy.SchedyDB(str(tmp_path / "db"), worker="other").get_experiment("b").add_job(
            {"x": 0.0, "lr": 0.1, "act": "relu", "k": 3}, status="DONE", results={"loss": 2.0}
        )
        return sample

    monkeypatch.setattr(api.Experiment, "_sampler_answering_first", then_the_log_moves)
    asked.clear()
    job = exp.next_job()
    assert [under_lock for _, under_lock in asked] == [False, True]  # the log moved: asked again under the lock
    assert asked[0][0] != asked[1][0]
    assert job.hyperparameters == asked[1][0].hyperparameters(real(asked[1][0]))  # what replaying the log decides


@pytest.mark.parametrize(
    ("sampler", "library", "message"),
    [
        ("tpe", "optuna", "a Bayesian search needs Optuna: pip install 'schedy[optuna]'"),
        ("cmaes", "cmaes", "a Bayesian search with the cmaes sampler needs cmaes: pip install 'schedy[optuna]'"),
        ("qmc", "scipy", "a Bayesian search with the qmc sampler needs scipy: pip install 'schedy[optuna]'"),
    ],
)
def test_a_log_is_read_and_replayed_without_its_sampler_library(db, tmp_path, sampler, library, message):
    """Reading, listing, auditing and exporting a Bayesian search never calls the sampler: in a process where
    its library cannot be imported, every job is read back, and only asking for a new one says what is missing."""
    import subprocess
    import sys

    pytest.importorskip(library)
    exp = db.add_experiment(schedy.BayesianSearch("b", DISTS, "loss", sampler=sampler, seed=2))
    for _ in range(3):
        with exp.next_job() as job:
            job.results["loss"] = job.hyperparameters["x"] ** 2
    expected = [j.hyperparameters for j in exp.all_jobs()]
    script = """
import json, sys
sys.modules[sys.argv[2]] = None  # importing the library now fails
import schedy
exp = schedy.SchedyDB(sys.argv[1]).get_experiment("b")
jobs = [dict(j.hyperparameters) for j in exp.all_jobs()]
history = exp.history()
try:
    exp.next_job()
    print("no error")
except schedy.errors.SchedyError as e:
    print(json.dumps({"jobs": jobs, "commits": len(history), "error": str(e)}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "db"), library], capture_output=True, text=True, check=True
    ).stdout
    got = __import__("json").loads(out)
    assert got["jobs"] == expected and got["commits"] >= 7
    assert got["error"] == message
