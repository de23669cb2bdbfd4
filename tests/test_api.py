"""The documented Experiment / Job API, on every store."""

import math
import os
import threading

import numpy as np
import pytest
from conftest import log_commits, log_size

import schedy
from schedy.core.check import find_double_claims
from schedy.errors import (
    ExperimentNotFoundError,
    JobNotFoundError,
    NoJobError,
    ResourceExistsError,
    SchedyError,
    UnsafeUpdateError,
)
from schedy.random import Choice, Constant, LogUniform, Normal, Uniform


def random_exp(name="rs", seed=None):
    return schedy.RandomSearch(name, {"lr": LogUniform(1e-4, 1e-1), "layers": Choice(range(1, 5))}, seed=seed)


# -- experiments --------------------------------------------------------------------------------


def test_add_get_and_list_experiments(db, db_path):
    db.add_experiment(schedy.ManualSearch("manual"))
    db.add_experiment(random_exp())
    other = schedy.SchedyDB(db_path)
    m, r = other.get_experiment("manual"), other.get_experiment("rs")
    assert type(m) is schedy.ManualSearch and type(r) is schedy.RandomSearch
    assert r.distributions == {"lr": LogUniform(1e-4, 1e-1), "layers": Choice([1, 2, 3, 4])}
    assert sorted(e.name for e in other.get_experiments()) == ["manual", "rs"]
    assert r == db.get_experiment("rs")


def test_second_experiment_of_same_name_is_refused(db):
    db.add_experiment(schedy.ManualSearch("x"))
    with pytest.raises(ResourceExistsError, match="'x'"):
        db.add_experiment(random_exp("x"))
    assert type(db.get_experiment("x")) is schedy.ManualSearch
    assert log_size(db, "x") == 1


def test_unknown_experiment_and_job(db):
    with pytest.raises(ExperimentNotFoundError, match="nope"):
        db.get_experiment("nope")
    assert list(db.get_experiments()) == []
    exp = db.add_experiment(schedy.ManualSearch("x"))
    with pytest.raises(JobNotFoundError, match="'42'"):
        exp.get_job("42")
    assert isinstance(JobNotFoundError("x"), LookupError)


def test_experiment_must_be_added_before_use():
    exp = schedy.ManualSearch("floating")
    with pytest.raises(SchedyError, match="add_experiment"):
        exp.next_job()


def test_base_experiment_cannot_be_added(db):
    with pytest.raises(TypeError, match="ManualSearch"):
        db.add_experiment(schedy.Experiment("plain"))


def test_delete_experiment_ensure(db, db_path):
    exp = db.add_experiment(schedy.ManualSearch("gone"))
    exp.add_job({"a": 1})
    exp.delete()
    with pytest.raises(ExperimentNotFoundError):
        schedy.SchedyDB(db_path).get_experiment("gone")
    assert list(db.get_experiments()) == []
    with pytest.raises(ExperimentNotFoundError):
        exp.delete()
    n = log_size(db, "gone")
    exp.delete(ensure=False)
    assert log_size(db, "gone") == n
    # The history stays for audit, and the name can be used again with fresh jobs.
    again = db.add_experiment(schedy.ManualSearch("gone"))
    assert again.all_jobs() == []
    assert again.add_job({}).job_id == "2", "job ids are never reused, even across a re-creation"


def test_done_experiment_stops_every_worker(db, db_path):
    exp = db.add_experiment(random_exp())
    exp.add_job({"lr": 0.01, "layers": 2})
    worker = schedy.SchedyDB(db_path).get_experiment("rs")
    exp.status = schedy.Experiment.DONE
    exp.push_updates()
    with pytest.raises(NoJobError, match="DONE"):
        worker.next_job()
    assert worker.status == schedy.Experiment.DONE, "the attribute follows the log"
    assert schedy.SchedyDB(db_path).get_experiment("rs").status == "DONE"


def test_pushed_distributions_apply_to_the_next_sampled_jobs(db, db_path):
    exp = db.add_experiment(random_exp())
    worker = schedy.SchedyDB(db_path).get_experiment("rs")
    exp.distributions = {"lr": Constant(0.5), "layers": Constant(7)}
    exp.push_updates()
    with worker.next_job() as job:
        assert job.hyperparameters == {"lr": 0.5, "layers": 7}
    assert worker.distributions == exp.distributions


def test_push_updates_keeps_other_writers_changes(db, db_path):
    a = db.add_experiment(random_exp())
    b = schedy.SchedyDB(db_path).get_experiment("rs")
    b.distributions = {"lr": Constant(0.1), "layers": Constant(1)}
    b.push_updates()
    a.status = "DONE"
    a.push_updates()  # a changed only the status: it must not write back its stale distributions
    c = schedy.SchedyDB(db_path).get_experiment("rs")
    assert c.status == "DONE" and c.distributions == b.distributions


# -- manual search ------------------------------------------------------------------------------


def test_manual_search_hands_out_queued_jobs_oldest_first(db):
    exp = db.add_experiment(schedy.ManualSearch("m"))
    ids = [exp.add_job({"i": i}).job_id for i in range(3)]
    exp.add_job({"i": 99}, status=schedy.Job.DONE, results={"loss": 1.0})
    got = [exp.next_job() for _ in range(3)]
    assert [j.job_id for j in got] == ids
    assert all(j.status == schedy.Job.RUNNING for j in got)
    with pytest.raises(NoJobError):
        exp.next_job()
    # A job put back in the queue is handed out again.
    got[1].status = schedy.Job.QUEUED
    got[1].put()
    assert exp.next_job().job_id == ids[1]


def test_job_context_manager_marks_done_or_crashed(db, db_path):
    exp = db.add_experiment(schedy.ManualSearch("ctx"))
    exp.add_job({"i": 1})
    exp.add_job({"i": 2})
    with exp.next_job() as job:
        job.results["loss"] = 0.25
    with pytest.raises(ZeroDivisionError), exp.next_job() as job:
        job.results["partial"] = 3
        1 / 0
    jobs = schedy.SchedyDB(db_path).get_experiment("ctx").all_jobs()
    assert [(j.status, j.results) for j in jobs] == [("DONE", {"loss": 0.25}), ("CRASHED", {"partial": 3})]


def test_with_block_on_a_queued_job_claims_it(db):
    exp = db.add_experiment(schedy.ManualSearch("claim"))
    job = exp.add_job({"i": 1})
    with job:
        assert job.status == "RUNNING"
        with pytest.raises(NoJobError):
            exp.next_job()
    assert exp.get_job(job.job_id).status == "DONE"


# -- random search ------------------------------------------------------------------------------


def test_random_search_queued_first_then_sampled(db):
    exp = db.add_experiment(random_exp(seed=3))
    exp.add_job({"lr": 0.05, "layers": 3})
    first = exp.next_job()
    assert first.hyperparameters == {"lr": 0.05, "layers": 3}
    sampled = [exp.next_job() for _ in range(20)]
    for j in sampled:
        assert 1e-4 <= j.hyperparameters["lr"] < 1e-1 and j.hyperparameters["layers"] in (1, 2, 3, 4)
    assert len({j.job_id for j in sampled}) == 20


@pytest.mark.parametrize(
    "hps, problem",
    [
        ({"lr": 0.1}, "missing 'layers'"),
        ({"lr": 0.1, "layers": 2, "momentum": 0.9}, "unexpected 'momentum'"),
        ({}, "missing"),
    ],
)
def test_random_search_job_needs_exactly_the_distribution_names(db, hps, problem):
    exp = db.add_experiment(random_exp())
    with pytest.raises(ValueError, match=problem):
        exp.add_job(hps)
    assert log_size(db, "rs") == 1


def test_sampling_is_reproducible_from_the_seed(tmp_path):
    def run(path):
        db = schedy.SchedyDB(path)
        exp = db.add_experiment(random_exp(seed=1234))
        return [exp.next_job().hyperparameters for _ in range(5)]

    a, b = run(tmp_path / "a"), run(tmp_path / "b")
    assert a == b
    assert len({j["lr"] for j in a}) == 5


def test_seed_is_recorded_and_sampled_values_are_never_resampled(db, db_path):
    exp = db.add_experiment(random_exp())
    assert isinstance(exp.seed, int)
    drawn = [exp.next_job().hyperparameters for _ in range(3)]
    again = schedy.SchedyDB(db_path).get_experiment("rs")
    assert again.seed == exp.seed
    assert [j.hyperparameters for j in again.all_jobs()] == drawn


# -- jobs: put, safe, delete --------------------------------------------------------------------


def test_unsafe_put_is_refused_and_writes_nothing(db, db_path):
    exp = db.add_experiment(schedy.ManualSearch("safe"))
    exp.add_job({"i": 1})
    mine = exp.next_job()
    stale = schedy.SchedyDB(db_path).get_experiment("safe").get_job(mine.job_id)
    mine.results["loss"] = 1.0
    mine.put()
    stale.results["loss"] = 2.0
    n = log_size(db, "safe")
    with pytest.raises(UnsafeUpdateError, match="changed"):
        stale.put()
    assert log_size(db, "safe") == n
    assert exp.get_job(mine.job_id).results == {"loss": 1.0}
    stale.put(safe=False)
    assert exp.get_job(mine.job_id).results == {"loss": 2.0}


def test_try_run_refuses_a_claimed_job(db, db_path):
    exp = db.add_experiment(schedy.ManualSearch("tr"))
    job = exp.add_job({"i": 1})
    other = schedy.SchedyDB(db_path).get_experiment("tr").get_job(job.job_id)
    job.try_run()
    assert job.status == "RUNNING"
    with pytest.raises(UnsafeUpdateError):
        other.try_run()
    fresh = schedy.SchedyDB(db_path).get_experiment("tr").get_job(job.job_id)
    with pytest.raises(UnsafeUpdateError, match="claimed"):
        fresh.try_run()


def test_delete_job_and_put_after_delete(db):
    exp = db.add_experiment(schedy.ManualSearch("dj"))
    job = exp.add_job({"i": 1})
    copy = exp.get_job(job.job_id)
    job.delete()
    with pytest.raises(JobNotFoundError):
        exp.get_job(job.job_id)
    with pytest.raises(JobNotFoundError):
        job.delete()
    job.delete(ensure=False)
    n = log_size(db, "dj")
    copy.results["x"] = 1
    with pytest.raises(JobNotFoundError, match="deleted"):
        copy.put()
    with pytest.raises(JobNotFoundError):
        copy.put(safe=False)
    assert log_size(db, "dj") == n
    with pytest.raises(NoJobError):
        exp.next_job()


def test_job_objects_are_independent_copies(db):
    exp = db.add_experiment(schedy.ManualSearch("copies"))
    job = exp.add_job({"layers": [1, 2]})
    job.hyperparameters["layers"].append(3)
    assert exp.get_job(job.job_id).hyperparameters == {"layers": [1, 2]}


# -- values -------------------------------------------------------------------------------------


def test_numpy_nan_and_infinity_round_trip(db, db_path):
    exp = db.add_experiment(schedy.ManualSearch("vals"))
    job = exp.add_job({"lr": np.float32(0.5), "n": np.int64(3), "flag": np.bool_(True), "w": np.arange(3)})
    job.results = {
        "loss": float("nan"),
        "best": float("inf"),
        "worst": -math.inf,
        "curve": np.array([[1.5, 2]]),
        "$f": "not an escape",
        "nested": {"$d": 1},
    }
    job.put()
    back = schedy.SchedyDB(db_path).get_experiment("vals").get_job(job.job_id)
    assert back.hyperparameters == {"lr": 0.5, "n": 3, "flag": True, "w": [0, 1, 2]}
    assert type(back.hyperparameters["n"]) is int and type(back.hyperparameters["flag"]) is bool
    r = back.results
    assert math.isnan(r["loss"]) and r["best"] == math.inf and r["worst"] == -math.inf
    assert r["curve"] == [[1.5, 2.0]] and r["$f"] == "not an escape" and r["nested"] == {"$d": 1}


class Model:
    pass


def test_unstorable_value_is_a_type_error_before_anything_is_written(db):
    exp = db.add_experiment(schedy.ManualSearch("bad"))
    with pytest.raises(TypeError, match=r"hyperparameters\['model'\].*Model"):
        exp.add_job({"model": Model()})
    job = exp.add_job({"i": 1})
    n = log_size(db, "bad")
    with pytest.raises(TypeError, match=r"results\['weights'\].*set"):
        job.results["weights"] = {1, 2}  # refused when set (docs/workers.md)
    job.results["weights"] = []
    job.results["weights"].append({1, 2})  # changed in place: caught by the write
    with pytest.raises(TypeError, match=r"results\['weights'\]\[0\].*set"):
        job.put()
    assert log_size(db, "bad") == n  # the failed put wrote nothing
    with pytest.raises(TypeError), exp.next_job() as running:
        running.results["model"] = Model()  # raises in the block: the job is reported CRASHED
    assert log_size(db, "bad") == n + 2  # the claim, and the block's report
    assert exp.get_job(running.job_id).status == "CRASHED"


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Uniform(1, 0),
        lambda: LogUniform(0, 1),
        lambda: LogUniform(-2, -1),
        lambda: Normal(0, -1),
        lambda: Choice([]),
        lambda: Choice([1, 2], weights=[1]),
        lambda: Choice([1, 2], weights=[-1, 2]),
        lambda: Choice([1, 2], weights=[0, 0]),
    ],
)
def test_bad_distributions(make):
    with pytest.raises(ValueError):
        make()


def test_unknown_status_strings(db):
    with pytest.raises(ValueError, match="'PAUSED'"):
        schedy.ManualSearch("s", status="PAUSED")
    exp = db.add_experiment(schedy.ManualSearch("s"))
    with pytest.raises(ValueError, match="'FINISHED'"):
        exp.add_job({}, status="FINISHED")
    job = exp.add_job({})
    n = log_size(db, "s")
    job.status = "done"
    with pytest.raises(ValueError, match="'done'"):
        job.put()
    exp.status = "STOPPED"
    with pytest.raises(ValueError, match="'STOPPED'"):
        exp.push_updates()
    assert log_size(db, "s") == n


def test_empty_and_non_string_names():
    with pytest.raises(ValueError, match="empty"):
        schedy.ManualSearch("")
    with pytest.raises(TypeError):
        schedy.ManualSearch(None)


def test_database_path_that_is_a_regular_file(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("hello")
    with pytest.raises(schedy.errors.DatabaseError, match="regular file"):
        schedy.SchedyDB(str(f))
    assert f.read_text() == "hello"


# -- names and locations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "..",
        "../../escape",
        "/etc/passwd",
        "a/b",
        "Ünïcødé ☃ 実験",
        "with\nnewline",
        "nul\x00byte",
        "CaSe",
        "case",
        "." * 300,
        "x" * 1000,
    ],
)
def test_any_name_stays_inside_the_database(tmp_path, name):
    root = tmp_path / "db"
    db = schedy.SchedyDB(str(root))
    db.add_experiment(schedy.ManualSearch(name)).add_job({"i": 1})
    assert db.get_experiment(name).all_jobs()[0].hyperparameters == {"i": 1}
    assert [e.name for e in db.get_experiments()] == [name]
    inside = {p.resolve() for p in root.rglob("*")}
    assert all(str(p).startswith(str(root.resolve()) + os.sep) for p in inside)
    assert sorted(os.listdir(tmp_path)) == ["db"]
    assert len(os.listdir(root / "experiments")) == 1


def test_names_differing_only_in_case_are_different_experiments(tmp_path):
    db = schedy.SchedyDB(str(tmp_path))
    db.add_experiment(schedy.ManualSearch("Exp"))
    db.add_experiment(schedy.ManualSearch("exp"))
    assert sorted(e.name for e in db.get_experiments()) == ["Exp", "exp"]


def test_file_url_and_environment_default(tmp_path, monkeypatch):
    schedy.SchedyDB(f"file://{tmp_path}/viaurl").add_experiment(schedy.ManualSearch("u"))
    assert schedy.SchedyDB(str(tmp_path / "viaurl")).get_experiment("u").name == "u"
    monkeypatch.setenv("SCHEDY_DB", str(tmp_path / "fromenv"))
    schedy.SchedyDB().add_experiment(schedy.ManualSearch("e"))
    assert (tmp_path / "fromenv" / "SCHEDY").exists()
    monkeypatch.delenv("SCHEDY_DB")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert schedy.SchedyDB().path == tmp_path / "xdg" / "schedy"


def test_unsupported_url_scheme(tmp_path):
    with pytest.raises(ValueError, match="'ftp'"):
        schedy.SchedyDB("ftp://host/x")


# -- replay and concurrency within a process ----------------------------------------------------


def test_a_new_reader_sees_exactly_the_writers_state(db, db_path):
    exp = db.add_experiment(random_exp(seed=9))
    for i in range(5):
        with exp.next_job() as job:
            job.results["loss"] = i
    exp.add_job({"lr": 0.01, "layers": 1})
    exp.all_jobs()[0].delete()
    exp.status = "DONE"
    exp.push_updates()
    reader = schedy.SchedyDB(db_path).get_experiment("rs")
    assert reader._view.state == exp._view.state


def test_threads_with_separate_and_shared_databases_never_share_a_job(db, db_path):
    exp = db.add_experiment(schedy.ManualSearch("threads"))
    for i in range(120):
        exp.add_job({"i": i})
    shared = schedy.SchedyDB(db_path).get_experiment("threads")
    done, errors = [], []

    def work(e):
        try:
            while True:
                try:
                    with e.next_job() as job:
                        done.append(job.job_id)
                except NoJobError:
                    return
        except Exception as x:  # pragma: no cover - reported below
            errors.append(x)

    targets = [shared, shared, shared] + [schedy.SchedyDB(db_path).get_experiment("threads") for _ in range(3)]
    threads = [threading.Thread(target=work, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(done, key=int) == [str(i) for i in range(1, 121)]
    assert find_double_claims(log_commits(db, "threads")) == []


# -- objects that must not write where they do not belong ---------------------------------------


def test_worker_names_must_be_non_empty_text(db_path):
    for bad in (123, "", None.__class__):
        with pytest.raises(TypeError, match="worker"):
            schedy.SchedyDB(db_path, worker=bad)
    schedy.SchedyDB(db_path, worker="gpu-node-7")  # a good name opens


def test_a_with_block_on_a_job_another_worker_holds_is_refused(db, db_path):
    exp = db.add_experiment(schedy.ManualSearch("held"))
    exp.add_job({"i": 1})
    mine = exp.next_job()
    theirs = schedy.SchedyDB(db_path).get_experiment("held").get_job(mine.job_id)
    assert theirs.status == "RUNNING"
    with pytest.raises(UnsafeUpdateError, match="already claimed"), theirs:
        pytest.fail("the block must not run")
    with mine:
        mine.results["loss"] = 1.0
    assert exp.get_job(mine.job_id).results == {"loss": 1.0}
    assert find_double_claims(log_commits(db, "held")) == []


def test_an_object_from_before_a_deletion_cannot_write_into_the_new_experiment(db):
    old = db.add_experiment(random_exp("again"))
    old_job = old.add_job({"lr": 0.01, "layers": 1})
    old.delete()
    new = db.add_experiment(schedy.ManualSearch("again"))
    n = log_size(db, "again")
    with pytest.raises(ExperimentNotFoundError, match="deleted"):
        old.add_job({"lr": 0.5, "layers": 2})
    with pytest.raises(ExperimentNotFoundError):
        old.all_jobs()
    with pytest.raises(ExperimentNotFoundError):
        old_job.put(safe=False)
    old.delete(ensure=False)
    assert log_size(db, "again") == n
    assert new.all_jobs() == [] and type(db.get_experiment("again")) is schedy.ManualSearch


def test_a_safe_put_of_a_job_built_by_hand_is_refused(db):
    exp = db.add_experiment(schedy.ManualSearch("byhand"))
    held = exp.next_job() if False else exp.add_job({"x": 1})
    n = log_size(db, "byhand")
    with pytest.raises(UnsafeUpdateError, match="not read from the log"):
        schedy.Job(held.job_id, exp, {"x": 999}, status="DONE").put()
    assert log_size(db, "byhand") == n
    schedy.Job(held.job_id, exp, {"x": 999}, status="DONE").put(safe=False)
    assert exp.get_job(held.job_id).hyperparameters == {"x": 999}


def test_an_experiment_object_belongs_to_one_database(tmp_path):
    a, b = schedy.SchedyDB(str(tmp_path / "a")), schedy.SchedyDB(str(tmp_path / "b"))
    exp = a.add_experiment(schedy.ManualSearch("e"))
    with pytest.raises(ValueError, match="already in"):
        b.add_experiment(exp)
    assert list(b.get_experiments()) == []


def test_job_ids_are_strings(db):
    exp = db.add_experiment(schedy.ManualSearch("ids"))
    exp.add_job({})
    with pytest.raises(TypeError, match="string"):
        exp.get_job(1)


def test_values_nested_too_deep_or_cyclic_are_refused_before_writing(db):
    exp = db.add_experiment(schedy.ManualSearch("deep"))
    cyclic = []
    cyclic.append(cyclic)
    deep = {}
    for _ in range(500):
        deep = {"x": deep}
    for bad in (cyclic, deep):
        with pytest.raises(ValueError, match="nested deeper"):
            exp.add_job({"v": bad})
    assert log_size(db, "deep") == 1


def test_a_job_read_from_the_log_has_the_attributes_of_a_new_job(db):
    """A job read back from the log is the job that was added, with the attributes a new Job has."""
    exp = db.add_experiment(schedy.ManualSearch("attrs"))
    added = exp.add_job({"lr": 0.1, "layers": [1, 2]}, status=schedy.Job.DONE, results={"loss": 0.5})
    read = exp.get_job(added.job_id)
    fresh = schedy.Job("1", exp, {})
    assert set(vars(read)) == set(vars(fresh))
    assert (
        read.job_id,
        read.status,
        read.hyperparameters,
        read.results,
        read.generation,
        read.parent_id,
        read.member,
    ) == (added.job_id, "DONE", {"lr": 0.1, "layers": [1, 2]}, {"loss": 0.5}, None, None, None)
    read.hyperparameters["layers"].append(3)  # the user's copy: the log's values do not change
    assert exp.get_job(added.job_id).hyperparameters == {"lr": 0.1, "layers": [1, 2]}
