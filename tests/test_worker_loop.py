"""The worker loop never loses a training run: get-or-create, values checked when set, a final report that
survives other writers' notes, waiting for a job, and file modes as documented."""

import os
import pathlib
import stat
import subprocess
import sys
import textwrap
import threading

import pytest
from conftest import log_commits

import schedy
from schedy.adapters import waiting
from schedy.errors import NoJobError, ResourceExistsError, UnsafeUpdateError
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import Choice, LogUniform, Uniform


def search(name="mnist", high=1e-1):
    return schedy.RandomSearch(name, {"lr": LogUniform(1e-5, high), "batch_size": Choice([32, 64])})


# -- get or create ----------------------------------------------------------------------------------------------


def test_exist_ok_uses_the_stored_experiment_when_the_definition_matches(db):
    first = db.add_experiment(search(), exist_ok=True)
    with first.next_job() as job:
        job.results["loss"] = 1.0
    first.status = schedy.Experiment.DONE
    first.push_updates()
    again = db.add_experiment(search(), exist_ok=True)  # no seed given: any stored seed matches
    assert again.seed == first.seed and again.status == "DONE"  # a finished experiment stays finished
    assert [j.results for j in again.all_jobs()] == [{"loss": 1.0}]
    assert len(log_commits(db, "mnist")) == 4  # created, proposed+claimed, reported, updated: nothing more


@pytest.mark.parametrize(
    "other, words",
    [
        (lambda: search(high=0.5), "distributions.lr.loguniform.high: 0.1 stored, 0.5 given"),
        (lambda: schedy.ManualSearch("mnist"), "kind 'random' stored, 'manual' given"),
        (
            lambda: schedy.RandomSearch(
                "mnist", {"lr": LogUniform(1e-5, 1e-1), "batch_size": Choice([32, 64])}, lease=9
            ),
            "lease: 120 s stored, 9 s given",
        ),
        (
            lambda: schedy.RandomSearch(
                "mnist", {"lr": LogUniform(1e-5, 1e-1), "batch_size": Choice([32, 64])}, seed=5
            ),
            "seed: ",
        ),
    ],
)
def test_exist_ok_names_what_differs_and_writes_nothing(db, other, words):
    db.add_experiment(search(), exist_ok=True)
    before = len(log_commits(db, "mnist"))
    with pytest.raises(ResourceExistsError, match="another definition") as e:
        db.add_experiment(other(), exist_ok=True)
    assert words in str(e.value)
    assert len(log_commits(db, "mnist")) == before


def test_without_exist_ok_a_taken_name_is_refused_and_says_how_to_reuse_it(db):
    db.add_experiment(search())
    with pytest.raises(ResourceExistsError, match="exist_ok=True"):
        db.add_experiment(search())


# -- values checked when set ------------------------------------------------------------------------------------


def test_a_value_the_log_cannot_store_is_refused_when_it_is_set(db):
    exp = db.add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"i": 0})
    job = exp.next_job()
    with pytest.raises(TypeError, match=r"results\['model_path'\].*PosixPath.*str\(path\)"):
        job.results["model_path"] = pathlib.Path("/tmp/model")
    with pytest.raises(TypeError, match=r"results\['b'\]"):
        job.results.update(a=1, b=object())
    with pytest.raises(TypeError, match=r"hyperparameters\['s'\].*set"):
        job.hyperparameters.setdefault("s", {1})
    with pytest.raises(TypeError, match="names are strings"):
        job.results[3] = 1.0
    with pytest.raises(TypeError, match=r"results\['p'\]"):
        job.results = {"p": pathlib.Path("/")}
    assert job.results == {} and job.hyperparameters == {"i": 0}  # nothing half-set
    job.results["model_path"] = "/tmp/model"
    job.results |= {"loss": 0.5}
    job.status = schedy.Job.DONE
    job.put()
    assert exp.get_job(job.job_id).results == {"model_path": "/tmp/model", "loss": 0.5}


def test_a_with_block_whose_report_cannot_be_written_records_the_job_crashed_with_what_it_could_keep(db):
    exp = db.add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"i": 0})
    with pytest.raises(TypeError, match="recorded CRASHED with the results loss; not written: 'paths'"):
        with exp.next_job() as job:
            job.results["loss"] = 0.25
            job.results["paths"] = []
            job.results["paths"].append(pathlib.Path("/x"))  # changed in place: seen only at the report
    stored = exp.get_job(job.job_id)
    assert stored.status == "CRASHED" and stored.results["loss"] == 0.25 and "paths" not in stored.results
    assert "PosixPath" in stored.results["schedy_error"]
    with pytest.raises(NoJobError):
        exp.next_job()  # not RUNNING, not handed out again


# -- the holder's report merges with other writers' changes -----------------------------------------------------


def test_a_note_from_another_process_does_not_cost_the_holder_its_report(shared_db_path):
    db = schedy.SchedyDB(shared_db_path, worker="trainer")
    exp = db.add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"i": 0})
    note = textwrap.dedent("""
        import sys, schedy
        job = schedy.SchedyDB(sys.argv[1], worker="operator").get_experiment("m").get_job("1")
        job.results["note"] = "looks diverged"
        job.put()
    """)
    with exp.next_job() as job:
        subprocess.run([sys.executable, "-c", note, shared_db_path], check=True, timeout=120)
        job.results["loss"] = 0.5
    stored = exp.get_job("1")
    assert stored.status == "DONE" and stored.results == {"note": "looks diverged", "loss": 0.5}
    assert job.results == stored.results  # the holder's copy shows the merged results


def test_a_real_conflict_is_refused_by_name_and_the_job_recorded_crashed_with_the_logs_values(db_path):
    exp = schedy.SchedyDB(db_path, worker="trainer").add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"i": 0})
    other = schedy.SchedyDB(db_path, worker="op")
    with pytest.raises(UnsafeUpdateError, match=r"changes too: results\['loss'\].*recorded CRASHED"):
        with exp.next_job() as job:
            theirs = other.get_experiment("m").get_job("1")
            theirs.results["loss"] = 9.0
            theirs.put(safe=False)
            job.results["loss"] = 0.5
    stored = exp.get_job("1")
    assert stored.status == "CRASHED" and stored.results["loss"] == 9.0


def test_a_holder_whose_claim_was_taken_is_still_refused(db):
    exp = db.add_experiment(schedy.ManualSearch("m", lease=10))
    exp.add_job({"i": 0})
    now = [1000.0]
    exp._view.clock = exp._view.monotonic = lambda: now[0]
    job = exp.next_job()
    now[0] += 11
    again = exp.next_job()  # this process watched the claim lapse, and takes the job back
    assert again.job_id == job.job_id
    job.results["loss"] = 1.0
    job.status = schedy.Job.DONE
    with pytest.raises(UnsafeUpdateError):
        job.put()  # the old claim's report: the merge is for a claim still held


# -- waiting for a job ------------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self):
        self.t, self.slept = 0.0, []

    def monotonic(self):
        return self.t

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.t += seconds


def test_wait_asks_again_with_growing_pauses_until_the_time_is_up(db):
    exp = db.add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"i": 0})
    held = exp.next_job()
    fake, reasons = FakeTime(), []
    with pytest.raises(NoJobError):
        waiting.next_job(exp, 10.0, sleep=fake.sleep, monotonic=fake.monotonic, on_wait=reasons.append)
    assert fake.t == pytest.approx(10.0)
    assert all(0 < s <= waiting.LONGEST_PAUSE for s in fake.slept) and len(fake.slept) >= 6
    assert fake.slept[1] > fake.slept[0] / 2  # grows
    assert len(reasons) == 1 and reasons[0].jobs == (held.job_id,)


def test_wait_returns_at_once_when_nothing_could_come(db):
    exp = db.add_experiment(schedy.ManualSearch("m"))
    fake = FakeTime()
    with pytest.raises(NoJobError):
        waiting.next_job(exp, True, sleep=fake.sleep, monotonic=fake.monotonic)
    assert fake.slept == []
    exp.status = schedy.Experiment.DONE
    exp.push_updates()
    with pytest.raises(NoJobError) as e:
        exp.next_job(wait=True)
    assert e.value.finished


@pytest.mark.parametrize("wait", [-1, "5", None])
def test_a_bad_wait_is_refused(db, wait):
    exp = db.add_experiment(schedy.ManualSearch("m"))
    with pytest.raises(ValueError, match="wait must be True"):
        waiting.next_job(exp, wait)


def test_a_pbt_worker_waits_for_the_member_another_worker_trains_and_gets_the_next_segment(shared_db_path):
    db = schedy.SchedyDB(shared_db_path, worker="a")
    exp = db.add_experiment(
        schedy.PopulationBasedTraining(
            "pbt",
            MINIMIZE,
            "loss",
            Truncate(0.5),
            {"lr": Perturb()},
            {"lr": Uniform(0.1, 1.0)},
            population_size=1,
            max_generations=2,
        )
    )
    first = exp.next_job()  # the only member's first segment, held here
    worker = textwrap.dedent("""
        import sys, schedy
        from schedy.adapters import waiting
        exp = schedy.SchedyDB(sys.argv[1], worker="b").get_experiment("pbt")
        # exp.next_job(wait=120), saying when it starts waiting
        with waiting.next_job(exp, 120, on_wait=lambda why: print("waiting", flush=True)) as job:
            job.results["loss"] = 0.5
        print(job.generation, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", worker, shared_db_path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "waiting"  # the only member is held here
    with first:
        first.results["loss"] = 1.0
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and out.strip() == "1"
    with pytest.raises(NoJobError) as e:
        exp.next_job(wait=True)
    assert e.value.finished


def test_wait_gets_a_job_added_while_it_waits(db):
    exp = db.add_experiment(schedy.ManualSearch("m"))
    exp.add_job({"i": 0})
    held = exp.next_job()
    asked = threading.Event()

    def add_when_asked():
        asked.wait(60)
        exp.add_job({"i": 1})

    threading.Thread(target=add_when_asked, daemon=True).start()
    job = waiting.next_job(exp, 60, on_wait=lambda why: asked.set())
    assert job.hyperparameters == {"i": 1} and held.status == "RUNNING"


# -- file modes -------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fchmod"), reason="POSIX permission bits")
def test_file_mode_is_applied_exactly_whatever_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        db = schedy.SchedyDB(str(tmp_path / "shared"), file_mode=0o660)
        exp = db.add_experiment(schedy.ManualSearch("m"))
        exp.add_job({"i": 0})
    finally:
        os.umask(old)
    modes = {
        p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "shared").rglob("*")
    }
    modes["shared"] = stat.S_IMODE((tmp_path / "shared").stat().st_mode)
    assert modes and all(m == (0o770 if (tmp_path / p).is_dir() else 0o660) for p, m in modes.items()), modes


# -- statuses ---------------------------------------------------------------------------------------------------


def test_a_lower_case_status_in_python_is_refused_with_the_spelling_to_use(db):
    with pytest.raises(ValueError, match="in Python, statuses are upper case: 'DONE'; the command line accepts"):
        schedy.ManualSearch("m", status="done")
    exp = db.add_experiment(schedy.ManualSearch("m", status="DONE"))
    with pytest.raises(ValueError, match="upper case: 'QUEUED'"):
        exp.add_job({}, status="queued")


# -- regressions ------------------------------------------------------------------------------------------------


def test_changing_one_pbt_experiments_explore_does_not_change_the_next_ones_default():
    first = schedy.PopulationBasedTraining("a", MINIMIZE, "loss", Truncate())
    first.explore["lr"] = Perturb()
    first.initial_distributions["lr"] = Uniform(0, 1)
    second = schedy.PopulationBasedTraining("b", MINIMIZE, "loss", Truncate())  # raised before: shared defaults
    assert second.explore == {} and second.initial_distributions == {}


def test_a_holder_whose_lease_was_lost_in_its_block_is_told_why(db_path):
    from schedy.adapters import leases

    t = [1000.0]
    exp = schedy.SchedyDB(db_path, worker="slow").add_experiment(schedy.ManualSearch("m", lease=60))
    exp.add_job({"i": 0})
    other = schedy.SchedyDB(db_path, worker="fast", clock=lambda: t[0], monotonic=lambda: t[0]).get_experiment("m")
    with pytest.raises(UnsafeUpdateError, match="lost the job while the block ran: its lease renewal was refused"):
        with exp.next_job() as job:
            other.get_job(job.job_id)  # "fast" sees the claim, then watches it for a lease
            t[0] += 61
            assert other.next_job().job_id == job.job_id
            leases.keeper._renew(job)  # the heartbeat thread's next beat, now
            job.results["loss"] = 1.0
    assert other.get_job(job.job_id).status == "RUNNING" and other.get_job(job.job_id).results == {}
