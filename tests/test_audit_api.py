"""Audit through the documented API, on every store: get_experiment(as_of=...), history, to_dataframe.

Most tests give the database a clock the test sets (every commit's time is
known); the lease test uses the real clock and a lease that really lapses.
"""

import math
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from conftest import log_commits, log_size

import schedy
from schedy import audit
from schedy.adapters import leases
from schedy.core import events as ev
from schedy.core import values
from schedy.core.codec import Commit
from schedy.core.state import fold
from schedy.errors import ExperimentNotFoundError, JobNotFoundError, ReadOnlyError, SchedyError
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import Choice, LogUniform

T0 = datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc).timestamp()
FIXED = [
    "job_id",
    "status",
    "generation",
    "parent_id",
    "member",
    "added_at",
    "claimed_at",
    "claimed_by",
    "finished_at",
    "claims",
    "lease_expiries",
]


class Clock:
    """The time every write of a database reads: set ``t`` before writing."""

    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def clock(db, monkeypatch):
    """``db`` with a clock the test sets; every experiment it opens writes with it."""
    tick = Clock(T0)
    make = db._view

    def view(name):
        v = make(name)
        v.clock = tick
        return v

    monkeypatch.setattr(db, "_view", view)
    return tick


def build(db, clock, name="audit"):
    """A manual search whose commit v is stamped T0 + 60 * (v - 1); returns it and the log's commits."""

    def at(v):
        clock.t = T0 + 60 * (v - 1)

    at(1)
    exp = db.add_experiment(schedy.ManualSearch(name, lease=600))  # 1
    at(2)
    exp.add_job({"lr": 0.1, "opt": "adam"})  # 2: job 1
    at(3)
    exp.add_job({"lr": 0.2, "layers": [64, 32]})  # 3: job 2
    at(4)
    job = exp.next_job()  # 4: claims 1
    at(5)
    job.results = {"loss": 0.5}
    job.status = "DONE"
    job.put()  # 5
    at(6)
    two = exp.next_job()  # 6: claims 2
    at(7)
    two.results = {"loss": math.nan}
    two.status = "CRASHED"
    two.put()  # 7
    at(8)
    exp.add_job({"lr": 0.3})  # 8: job 3
    at(9)
    exp.get_job("3").delete()  # 9
    at(10)
    exp.status = "DONE"
    exp.push_updates()  # 10
    commits = log_commits(db, name)
    assert [c.version for c in commits] == list(range(1, 11))
    assert [c.time for c in commits] == [T0 + 60 * k for k in range(10)]
    return exp, commits


def snapshot_of(exp):
    """What an experiment object shows: its attributes and every job's fields, in user values."""
    return (
        exp.status,
        exp.lease,
        [(j.job_id, j.status, j.hyperparameters, j.results, j.generation, j.parent_id) for j in exp.all_jobs()],
    )


def snapshot_of_state(state):
    jobs = sorted(state.jobs.values(), key=lambda j: j.number)
    return (
        state.status,
        state.lease,
        [
            (
                j.job_id,
                j.status,
                values.decode_mapping(j.hyperparameters),
                values.decode_mapping(j.results),
                j.generation,
                j.parent,
            )
            for j in jobs
        ],
    )


def same(a, b):
    """Equality where NaN equals NaN (results hold one)."""
    return repr(a) == repr(b)


# -- as_of ---------------------------------------------------------------------------------------


def test_every_version_reproduces_the_fold_of_its_prefix(db, clock):
    exp, commits = build(db, clock)
    shown = set()
    for v in range(1, len(commits) + 1):
        past = db.get_experiment("audit", as_of=v)
        assert type(past) is schedy.ManualSearch and past.as_of == v
        expected = fold(commits[:v])
        assert same(snapshot_of(past), snapshot_of_state(expected)), v
        assert past.history() == commits[:v]
        shown.add(repr(snapshot_of(past)))
    # Every commit changed what is shown (the comparison is not vacuous), except that deleting job 3 (commit 9)
    # returns to the jobs of commit 7.
    assert len(shown) == len(commits) - 1
    assert exp.as_of is None and db.get_experiment("audit").as_of is None
    assert same(snapshot_of(db.get_experiment("audit", as_of=len(commits))), snapshot_of(exp))


def test_as_of_a_time_in_every_form(db, clock):
    _, commits = build(db, clock)
    utc = timezone.utc
    plus2 = timezone(timedelta(hours=2))
    for v in (1, 4, 7, 10):
        t = T0 + 60 * (v - 1) + 30  # half way to the next commit
        moments = [
            t,
            datetime.fromtimestamp(t, utc),
            datetime.fromtimestamp(t, plus2),
            datetime.fromtimestamp(t, utc).replace(tzinfo=None),  # naive: UTC
            datetime.fromtimestamp(t, utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            datetime.fromtimestamp(t, plus2).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
            datetime.fromtimestamp(t, timezone(timedelta(hours=-5))).isoformat(),
            datetime.fromtimestamp(t, utc).strftime("%Y-%m-%d %H:%M:%S"),  # naive text: UTC
            pd.Timestamp(t, unit="s", tz="UTC").to_pydatetime(),
        ]
        for moment in moments:
            assert db.get_experiment("audit", as_of=moment).as_of == v, (v, moment)
    # At the very time of a commit, the commit is included.
    assert db.get_experiment("audit", as_of=T0 + 60 * 4).as_of == 5
    assert db.get_experiment("audit", as_of="2026-11-29T18:04:00Z").as_of == 5
    assert db.get_experiment("audit", as_of=T0 + 60 * 4 - 0.001).as_of == 4
    assert db.get_experiment("audit", as_of=T0 + 10**9).as_of == 10
    assert [j.status for j in db.get_experiment("audit", as_of=T0 + 200).all_jobs()] == ["RUNNING", "QUEUED"]


def test_bad_as_of_is_refused_naming_it_and_writes_nothing(db, clock):
    build(db, clock)
    before = log_commits(db, "audit")
    cases = [
        (0, ValueError, "0"),
        (-3, ValueError, "-3"),
        (True, TypeError, "True"),
        (False, TypeError, "False"),
        (11, ValueError, "11"),
        (10**30, ValueError, str(10**30)),
        ("garbage", ValueError, "'garbage'"),
        ("", ValueError, "''"),
        ("2026-02-30", ValueError, "'2026-02-30'"),
        (math.nan, ValueError, "nan"),
        (math.inf, ValueError, "inf"),
        ([1], TypeError, "[1]"),
        (b"1", TypeError, "b'1'"),
    ]
    for value, error, shown in cases:
        with pytest.raises(error) as info:
            db.get_experiment("audit", as_of=value)
        assert shown in str(info.value) and "as_of" in str(info.value), (value, str(info.value))
    with pytest.raises(ValueError, match="'audit'.*10 commits.*no commit 11"):
        db.get_experiment("audit", as_of=11)
    assert log_commits(db, "audit") == before


def test_as_of_before_creation_or_after_deletion_is_not_found(db, clock):
    exp = db.add_experiment(schedy.ManualSearch("gone"))  # 1 at T0
    clock.t = T0 + 10
    exp.add_job({"a": 1})  # 2
    clock.t = T0 + 20
    exp.delete()  # 3
    clock.t = T0 + 30
    new = db.add_experiment(schedy.ManualSearch("gone", seed=5))  # 4
    clock.t = T0 + 40
    new.add_job({"a": 2})  # 5
    for moment in (
        T0 - 1,
        T0 - 0.5,
        "2026-11-29T17:59:59Z",
        datetime(1999, 1, 1),
        -1.0,
        3,
        T0 + 20,
        T0 + 25,
        "2026-11-29T18:00:29",
    ):
        with pytest.raises(ExperimentNotFoundError, match="'gone'"):
            db.get_experiment("gone", as_of=moment)
    old = db.get_experiment("gone", as_of=T0 + 15)
    assert old.as_of == 2 and [j.hyperparameters for j in old.all_jobs()] == [{"a": 1}]
    assert [c.version for c in old.history()] == [1, 2]
    again = db.get_experiment("gone", as_of=4)
    assert again.seed == 5 and again.all_jobs() == [] and [c.version for c in again.history()] == [4]
    with pytest.raises(JobNotFoundError, match="'1'"):
        again.history("1")  # a job of the older experiment
    with pytest.raises(JobNotFoundError, match="'1'"):
        again.get_job("1")
    for moment in (1, T0):
        with pytest.raises(ExperimentNotFoundError, match="'never'"):
            db.get_experiment("never", as_of=moment)
    assert log_size(db, "gone") == 5 and log_size(db, "never") == 0


def test_every_write_on_a_read_only_experiment_raises(db, clock):
    exp, commits = build(db, clock)
    clock.t = T0 + 3600
    exp.status = "RUNNING"
    exp.push_updates()  # 11: running again, so next_job would hand out a job if it could
    exp.add_job({"lr": 0.4})  # 12: job 4, queued
    past = db.get_experiment("audit", as_of=12)
    job = past.get_job("4")
    done = past.get_job("1")
    before = log_commits(db, "audit")
    past.status = "DONE"

    def with_block():
        with job:
            raise AssertionError("entered a job of a read-only experiment")

    writes = {
        "add_job": lambda: past.add_job({"lr": 0.5}),
        "next_job": past.next_job,
        "push_updates": past.push_updates,
        "delete": past.delete,
        "delete(ensure=False)": lambda: past.delete(ensure=False),
        "job.put": job.put,
        "job.put(safe=False)": lambda: job.put(safe=False),
        "finished job.put": done.put,
        "job.try_run": job.try_run,
        "job.delete": job.delete,
        "with job": with_block,
    }
    for what, write in writes.items():
        with pytest.raises(ReadOnlyError, match=r"'audit' as of commit 12") as info:
            write()
        assert isinstance(info.value, SchedyError), what
    assert not leases.keeper._due  # no lease is being renewed
    assert log_commits(db, "audit") == before
    # The past does not move when the log does.
    clock.t += 60
    exp.get_job("4").delete()
    assert [j.job_id for j in past.all_jobs()] == ["1", "2", "4"] and past.as_of == 12
    assert past.get_job("4").status == "QUEUED"
    by_time = db.get_experiment("audit", as_of=T0 + 3600)
    with pytest.raises(ReadOnlyError, match="2026-11-29T19:00:00.000Z"):
        by_time.next_job()
    assert log_size(db, "audit") == 13


def test_what_history_returns_cannot_change_the_past(db, clock):
    build(db, clock)
    past = db.get_experiment("audit", as_of=3)
    commits = past.history()
    commits[1].events[0]["hyperparameters"]["lr"] = 99.0
    commits[0].events[0]["params"]["scheduler"] = {"RandomSearch": {}}
    assert past.get_job("1").hyperparameters == {"lr": 0.1, "opt": "adam"}
    assert past.history() == log_commits(db, "audit")[:3]
    past.history("2")[0].events[0]["hyperparameters"].clear()
    assert [c.events[0]["hyperparameters"] for c in past.history("2")] == [{"lr": 0.2, "layers": [64, 32]}]
    assert past.lineage("1")[0].hyperparameters["lr"] == 0.1


# -- history -------------------------------------------------------------------------------------


def test_history_is_the_log_of_this_incarnation(db, clock):
    exp, commits = build(db, clock)
    assert exp.history() == commits == db.get_experiment("audit").history()
    assert all(type(c) is Commit and type(c.events) is list for c in exp.history())
    clock.t = T0 + 1000
    exp.delete(ensure=False)  # 11: the experiment was DONE; deleting is still allowed
    clock.t = T0 + 2000
    new = db.add_experiment(schedy.ManualSearch("audit"))  # 12
    clock.t = T0 + 2060
    new.add_job({"b": 1})  # 13: job 4 (numbers go on)
    history = new.history()
    assert [c.version for c in history] == [12, 13]
    assert history[0].events[0]["type"] == ev.EXPERIMENT_CREATED and history[1].events[0]["job"] == "4"
    assert db.get_experiment("audit").history() == history
    # The older object still tells its own story, up to its deletion.
    assert [c.version for c in exp.history()] == list(range(1, 12))
    assert exp.history()[-1].events == [ev.experiment_deleted()]
    assert [c.version for c in exp.history("1")] == [2, 4, 5]
    for job_id in ("1", "3"):
        with pytest.raises(JobNotFoundError, match=f"'{job_id}'"):
            new.history(job_id)
    assert [c.version for c in new.history("4")] == [13]
    # Rows and frames of the new incarnation (folding it must not start at its own first commit).
    assert [r["job_id"] for r in new._job_rows()] == ["4"]
    assert list(new.to_dataframe()["job_id"]) == ["4"]
    assert db.get_experiment("audit", as_of=13).to_dataframe()["hp.b"].tolist() == [1]
    with pytest.raises(ExperimentNotFoundError, match="'audit'.*deleted"):
        exp.to_dataframe()


def test_history_of_one_job(db, clock):
    exp, commits = build(db, clock)
    one = exp.history("1")
    assert [c.version for c in one] == [2, 4, 5]
    assert [[e["type"] for e in c.events] for c in one] == [["JobAdded"], ["JobClaimed"], ["JobUpdated"]]
    assert one[2].events == [ev.job_updated("1", status="DONE", results={"loss": 0.5})]
    assert [c.time for c in one] == [commits[1].time, commits[3].time, commits[4].time]
    assert [c.version for c in exp.history("3")] == [8, 9]
    with pytest.raises(JobNotFoundError, match="'audit'.*'99'"):
        exp.history("99")
    with pytest.raises(TypeError, match="string"):
        exp.history(1)
    assert [c.version for c in db.get_experiment("audit", as_of=4).history("1")] == [2, 4]
    with pytest.raises(JobNotFoundError, match="'3'"):
        db.get_experiment("audit", as_of=7).history("3")
    unbound = schedy.ManualSearch("floating")
    with pytest.raises(SchedyError, match="add_experiment"):
        unbound.history()


def test_history_of_a_job_whose_lease_lapsed(db, db_path):
    alice = schedy.SchedyDB(db_path, worker="alice")
    bob = schedy.SchedyDB(db_path, worker="bob")
    exp_a = alice.add_experiment(schedy.ManualSearch("lapse", lease=0.1))  # 1
    exp_a.add_job({"n": 1})  # 2
    exp_a.add_job({"n": 2})  # 3
    held = exp_a.next_job()  # 4: alice claims job 1 for 0.1 s
    assert held.job_id == "1"
    time.sleep(0.25)
    exp_b = bob.get_experiment("lapse")
    exp_b.lease = 600
    exp_b.push_updates()  # 5: bob's claims will not lapse during the test (an update records no expiry)
    assert exp_b.next_job().job_id == "2"  # 6: records alice's lapsed claim (1 goes to the end of the queue)
    again = exp_b.next_job()  # 7
    assert again.job_id == "1"
    again.results = {"n2": 4}
    again.status = "DONE"
    again.put()  # 8
    six = log_commits(db, "lapse")[5]
    assert [e["type"] for e in six.events] == ["JobLeaseExpired", "JobClaimed"]
    one = exp_b.history("1")
    assert [(c.version, c.worker) for c in one] == [(2, "alice"), (4, "alice"), (6, "bob"), (7, "bob"), (8, "bob")]
    assert [[e["type"] for e in c.events] for c in one] == [
        ["JobAdded"],
        ["JobClaimed"],
        ["JobLeaseExpired"],
        ["JobClaimed"],
        ["JobUpdated"],
    ]
    assert one[2].events == [ev.job_lease_expired("1", "alice", "QUEUED")]
    assert all(e["job"] == "1" for c in one for e in c.events)
    assert [c.version for c in exp_b.history("2")] == [3, 6]
    assert exp_b.history("2")[1].events[0]["type"] == "JobClaimed"
    frame = exp_b.to_dataframe().set_index("job_id")
    assert frame.loc["1", "claims"] == 2 and frame.loc["1", "lease_expiries"] == 1
    assert frame.loc["1", "claimed_by"] == "bob" and frame.loc["1", "status"] == "DONE"
    assert frame.loc["1", "finished_at"] >= frame.loc["1", "claimed_at"] > frame.loc["1", "added_at"]
    assert frame.loc["2", "claims"] == 1 and frame.loc["2", "lease_expiries"] == 0
    assert frame.loc["2", "claimed_by"] == "bob" and pd.isna(frame.loc["2", "finished_at"])
    when = pd.Timestamp(log_commits(db, "lapse")[6].time, unit="s", tz="UTC")
    assert abs(frame.loc["1", "claimed_at"] - when) <= pd.Timedelta(microseconds=1)
    at_six = bob.get_experiment("lapse", as_of=6)
    assert at_six.get_job("1").status == "QUEUED" and at_six.get_job("2").status == "RUNNING"


# -- tables --------------------------------------------------------------------------------------


def test_to_dataframe_columns_dtypes_and_values(db, clock):
    exp, commits = build(db, clock)
    clock.t = T0 + 3600
    exp.status = "RUNNING"
    exp.push_updates()  # 11
    clock.t = T0 + 3660
    requeued = exp.get_job("1")
    requeued.status = "QUEUED"
    requeued.put()  # 12: job 1 waits again; its finish no longer stands
    frame = exp.to_dataframe()
    assert list(frame.columns) == FIXED + ["hp.lr", "hp.opt", "hp.layers", "result.loss"]
    dtypes = {c: str(t) for c, t in frame.dtypes.items()}
    for col in ("added_at", "claimed_at", "finished_at"):
        assert dtypes[col] == "datetime64[us, UTC]"
    assert dtypes["generation"] == dtypes["member"] == "Int64"
    assert dtypes["claims"] == dtypes["lease_expiries"] == "int64"
    assert dtypes["hp.lr"] == dtypes["result.loss"] == "float64"
    ts = lambda v: pd.Timestamp(T0 + 60 * (v - 1), unit="s", tz="UTC")  # noqa: E731
    one, two = frame.to_dict("records")
    assert one["job_id"] == "1" and one["status"] == "QUEUED" and one["claims"] == 1
    assert one["added_at"] == ts(2) and one["claimed_at"] == ts(4) and pd.isna(one["finished_at"])
    assert one["claimed_by"] == db.worker and one["hp.opt"] == "adam" and one["result.loss"] == 0.5
    assert pd.isna(one["hp.layers"]) and pd.isna(one["generation"]) and pd.isna(one["member"])
    assert pd.isna(one["parent_id"])
    assert two["status"] == "CRASHED" and two["finished_at"] == ts(7) and two["hp.layers"] == [64, 32]
    assert math.isnan(two["result.loss"]) and pd.isna(two["hp.opt"])
    # As of a moment, the frame is the one of that moment.
    past = db.get_experiment("audit", as_of=5).to_dataframe()
    assert list(past.columns) == FIXED + ["hp.lr", "hp.opt", "hp.layers", "result.loss"]
    assert past["status"].tolist() == ["DONE", "QUEUED"] and past["finished_at"].iloc[0] == ts(5)
    assert past["claims"].tolist() == [1, 0]
    # Microseconds survive; integers stay exact where other jobs lack them; so do booleans.
    clock.t = T0 + 7200.123456
    exp.add_job({"lr": 0.7, "seed": 2**53 + 1, "flag": False})
    frame = exp.to_dataframe()
    assert frame["added_at"].iloc[-1] == pd.Timestamp("2026-11-29T20:00:00.123456Z")
    assert str(frame["hp.seed"].dtype) == "Int64" and frame["hp.seed"].iloc[-1] == 2**53 + 1
    assert pd.isna(frame["hp.seed"].iloc[0])
    assert str(frame["hp.flag"].dtype) == "boolean" and frame["hp.flag"].iloc[-1] == False  # noqa: E712


def test_to_dataframe_of_an_experiment_without_jobs_has_the_same_columns_and_dtypes(db):
    exp = db.add_experiment(schedy.ManualSearch("empty"))
    frame = exp.to_dataframe()
    assert len(frame) == 0 and list(frame.columns) == FIXED
    exp.add_job({"x": 1})
    full = exp.to_dataframe()
    assert {c: str(full.dtypes[c]) for c in FIXED if c not in ("job_id", "status", "claimed_by", "parent_id")} == {
        c: str(frame.dtypes[c]) for c in FIXED if c not in ("job_id", "status", "claimed_by", "parent_id")
    }
    assert pd.concat([frame, full])["added_at"].dtype == full["added_at"].dtype


def small_pbt():
    return schedy.PopulationBasedTraining(
        "pbt",
        MINIMIZE,
        "loss",
        Truncate(0.5),
        explore={"lr": Perturb(0.8, 1.2, low=1e-5, high=1.0)},
        initial_distributions={"lr": LogUniform(1e-4, 1e-1), "layers": Choice([1, 2])},
        population_size=2,
        max_generations=3,
        seed=3,
    )


def run_pbt(exp):
    n = 0
    while True:
        try:
            job = exp.next_job()
        except schedy.errors.NoJobError:
            return n
        with job:
            job.results["loss"] = abs(math.log10(job.hyperparameters["lr"]) + 2) + 0.01 * int(job.job_id)
        n += 1


def test_pbt_rows_carry_generation_parent_and_member(db):
    exp = db.add_experiment(small_pbt())
    n = run_pbt(exp)
    frame = exp.to_dataframe()
    jobs = exp.all_jobs()
    assert len(jobs) == len(frame) == n >= 4
    assert frame["job_id"].tolist() == [j.job_id for j in jobs]
    assert frame["generation"].tolist() == [j.generation for j in jobs]
    # A member that continues from another's segment takes that segment's generation + 1 (it may skip one).
    by_id = {j.job_id: j for j in jobs}
    assert all(j.generation == (0 if j.parent_id is None else by_id[j.parent_id].generation + 1) for j in jobs)
    assert {m: frame[frame["member"] == m]["generation"].max() for m in (0, 1)} == {0: 2, 1: 2}
    assert [None if pd.isna(p) else p for p in frame["parent_id"]] == [j.parent_id for j in jobs]
    assert frame["member"].tolist() == [j.member for j in jobs] and set(frame["member"]) == {0, 1}
    assert str(frame["generation"].dtype) == str(frame["member"].dtype) == "Int64"
    assert frame["status"].eq("DONE").all() and frame["claims"].eq(1).all()
    assert frame["result.loss"].tolist() == [j.results["loss"] for j in jobs]
    assert frame["hp.lr"].tolist() == [j.hyperparameters["lr"] for j in jobs]
    last = jobs[-1]
    chain = exp.lineage(last.job_id)
    assert [j.generation for j in chain] == [0, 1, 2]
    assert all(b.parent_id == a.job_id for a, b in zip(chain, chain[1:]))
    added = [c for c in exp.history(last.job_id) if c.events[0]["type"] == "JobAdded"][0]
    assert f"generation 2 from job {last.parent_id}, member {last.member}" in audit.describe(added.events[0])
    # The lineage as of the commit that added the last job: that job was just handed out.
    past = db.get_experiment("pbt", as_of=added.version)
    assert type(past) is schedy.PopulationBasedTraining and past.result_name == "loss"
    assert [j.job_id for j in past.lineage(last.job_id)] == [j.job_id for j in chain]
    assert past.get_job(last.job_id).status == "RUNNING" and past.get_job(last.job_id).results == {}
    assert past.to_dataframe()["job_id"].tolist() == [j.job_id for j in jobs]
