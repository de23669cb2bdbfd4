"""The pure audit views (schedy.core.audit): moments, prefixes, incarnations, job times and descriptions.

Logs are built by the pure decisions of schedy.core.decide, one commit per
decision, with times chosen by the test; no disk, no clock.
"""

import ast
import json
import math
import pathlib
from datetime import datetime, timedelta, timezone

import pytest

import schedy.core
from schedy import audit  # the pure views of schedy.core.audit, and the parsing and wording around them
from schedy.core import decide
from schedy.core import events as ev
from schedy.core.codec import Commit
from schedy.core.state import _APPLY, apply, fold

NAME = "exp"
MANUAL = {"scheduler": {"Manual": {}}}
T0 = datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc).timestamp()


class Log:
    """A log grown by pure decisions: ``do(decision, t, worker)`` appends its events as the next commit."""

    def __init__(self):
        self.commits, self.state = [], None

    def do(self, decision, t, worker="alice"):
        version = len(self.commits) + 1
        d = decision(self.state, version, t)
        if d.events:
            c = Commit(version, t, worker, d.events)
            self.state = apply(self.state, c)
            self.commits.append(c)
        if d.error is not None:
            raise d.error
        return d.value

    def create(self, t, lease=10.0, status=ev.RUNNING):
        return self.do(
            lambda s, v, now: decide.create_experiment(
                s, name=NAME, kind="manual", params=MANUAL, status=status, seed=7, lease=lease
            ),
            t,
        )

    def add(self, t, hps=None, status=ev.QUEUED, results=None, worker="alice"):
        return self.do(
            lambda s, v, now: decide.add_job(
                s, name=NAME, hyperparameters=hps or {}, status=status, results=results or {}
            ),
            t,
            worker,
        )

    def next(self, t, worker):
        return self.do(lambda s, v, now: decide.next_job(s, name=NAME, worker=worker, version=v, now=now), t, worker)

    def put(self, t, job_id, worker, status, results=None):
        def decision(s, v, now):
            job = s.jobs[job_id]
            return decide.update_job(
                s,
                name=NAME,
                job_id=job_id,
                worker=worker,
                status=status,
                hyperparameters=job.hyperparameters,
                results=job.results if results is None else results,
                expected_version=None,
                incarnation=None,
                now=now,
            )

        return self.do(decision, t, worker)


def story():
    """Two workers, a lapsed lease, a requeue, a deletion: the log and the time of each commit."""
    log = Log()
    log.create(T0)  # 1
    log.add(T0 + 1, {"lr": 0.1})  # 2  job 1
    log.add(T0 + 2, {"lr": 0.2})  # 3  job 2
    assert log.next(T0 + 3, "alice") == "1"  # 4  alice claims 1 until T0 + 13
    log.put(T0 + 4, "1", "alice", ev.DONE, {"loss": 1.5})  # 5  1 DONE
    assert log.next(T0 + 5, "bob") == "2"  # 6  bob claims 2 until T0 + 15
    assert log.next(T0 + 30, "alice") == "2"  # 7  bob's lease lapsed: expired, requeued, alice claims
    log.put(T0 + 31, "1", "carol", ev.QUEUED)  # 8  1 requeued
    log.add(T0 + 32, {"lr": 0.3})  # 9  job 3
    log.do(lambda s, v, now: decide.delete_job(s, name=NAME, job_id="3"), T0 + 33)  # 10
    return log


# -- moments -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (1, audit.AsOf(version=1)),
        (120, audit.AsOf(version=120)),
        ("12", audit.AsOf(version=12)),
        (" 7\n", audit.AsOf(version=7)),
        (T0 + 0.25, audit.AsOf(time=T0 + 0.25)),
        (-5.0, audit.AsOf(time=-5.0)),  # a time before 1970 is a time (before every log): not an error
        (datetime(2026, 11, 29, 18, 0, tzinfo=timezone.utc), audit.AsOf(time=T0)),
        (datetime(2026, 11, 29, 19, 30, tzinfo=timezone(timedelta(hours=1, minutes=30))), audit.AsOf(time=T0)),
        (datetime(2026, 11, 29, 18, 0), audit.AsOf(time=T0)),  # naive: UTC, whatever the machine's zone
        ("2026-11-29T18:00:00Z", audit.AsOf(time=T0)),
        ("2026-11-29T18:00:00z", audit.AsOf(time=T0)),
        ("2026-11-29T18:00:00.500Z", audit.AsOf(time=T0 + 0.5)),
        ("2026-11-29T20:00:00+02:00", audit.AsOf(time=T0)),
        ("2026-11-29T13:00:00-05:00", audit.AsOf(time=T0)),
        ("2026-11-29T18:00:00", audit.AsOf(time=T0)),
        ("2026-11-29 18:00", audit.AsOf(time=T0)),
    ],
)
def test_a_moment_is_a_version_or_a_time(value, expected):
    assert audit.as_of_point(value) == expected


@pytest.mark.parametrize(
    "value, error, shown",
    [
        (0, ValueError, "0"),
        (-1, ValueError, "-1"),
        ("0", ValueError, "0"),
        ("-3", ValueError, "'-3'"),
        (True, TypeError, "True"),
        (False, TypeError, "False"),
        (math.nan, ValueError, "nan"),
        (math.inf, ValueError, "inf"),
        (-math.inf, ValueError, "-inf"),
        ("yesterday", ValueError, "'yesterday'"),
        ("", ValueError, "''"),
        ("Z", ValueError, "'Z'"),
        ("2026-13-01T00:00:00Z", ValueError, "'2026-13-01T00:00:00Z'"),
        ("1795968000.5", ValueError, "'1795968000.5'"),
        ("\u0663", ValueError, "'\u0663'"),  # an Arabic-Indic digit is not a commit version
        ("\u00b2", ValueError, "'\u00b2'"),  # nor is a superscript two (int() would crash on it)
        (None, TypeError, "None"),
        ([3], TypeError, "[3]"),
        (b"3", TypeError, "b'3'"),
        (timedelta(1), TypeError, "timedelta"),
    ],
)
def test_a_bad_moment_is_refused_naming_it(value, error, shown):
    with pytest.raises(error) as info:
        audit.as_of_point(value)
    assert shown in str(info.value) and "as_of" in str(info.value)


def test_a_moment_prints_as_a_commit_or_a_utc_time():
    assert str(audit.AsOf(version=4)) == "commit 4"
    assert str(audit.AsOf(time=T0 + 0.5)) == "2026-11-29T18:00:00.500Z"
    assert "1e+20" in str(audit.AsOf(time=1e20))  # no calendar holds it; printing must not fail


# -- prefixes ------------------------------------------------------------------------------------


def test_a_version_names_the_prefix_up_to_that_commit():
    log = story()
    for v in range(1, len(log.commits) + 1):
        prefix = audit.commits_until(log.commits, audit.AsOf(version=v))
        assert prefix == log.commits[:v]
        assert fold(prefix).version == v
    with pytest.raises(ValueError, match="10 commits.*no commit 11"):
        audit.commits_until(log.commits, audit.AsOf(version=11))


def test_a_time_names_the_longest_prefix_stamped_at_or_before_it():
    log = story()
    times = [c.time for c in log.commits]
    for v, t in enumerate(times, 1):
        assert audit.commits_until(log.commits, audit.AsOf(time=t)) == log.commits[:v]  # at: included
        assert audit.commits_until(log.commits, audit.AsOf(time=t - 1e-6)) == log.commits[: v - 1]
    assert audit.commits_until(log.commits, audit.AsOf(time=T0 - 1)) == []
    assert audit.commits_until(log.commits, audit.AsOf(time=T0 + 10**6)) == log.commits
    assert audit.commits_until(iter(log.commits), audit.AsOf(time=T0 + 3.5)) == log.commits[:4]


def test_by_time_a_clock_that_went_back_ends_the_prefix():
    # Commit 3 was written by a machine whose clock was behind: at T0 + 3.5 the log had only commits 1 and 2,
    # even though commit 3 says T0 + 3; "every commit stamped before t" would be a state that never existed.
    commits = [
        Commit(1, T0 + 1, "a", []),
        Commit(2, T0 + 5, "b", []),
        Commit(3, T0 + 3, "a", []),
        Commit(4, T0 + 6, "b", []),
    ]
    assert [c.version for c in audit.commits_until(commits, audit.AsOf(time=T0 + 3.5))] == [1]
    assert [c.version for c in audit.commits_until(commits, audit.AsOf(time=T0 + 5))] == [1, 2, 3]
    assert [c.version for c in audit.commits_until(commits, audit.AsOf(time=T0 + 6))] == [1, 2, 3, 4]


def test_an_incarnation_runs_from_its_creation_to_the_next():
    log = Log()
    log.create(T0)  # 1
    log.add(T0 + 1, {"a": 1})  # 2
    log.do(lambda s, v, now: decide.delete_experiment(s, name=NAME), T0 + 2)  # 3
    log.create(T0 + 3)  # 4
    log.add(T0 + 4, {"a": 2})  # 5
    log.do(lambda s, v, now: decide.delete_experiment(s, name=NAME), T0 + 5)  # 6
    log.create(T0 + 6)  # 7
    versions = lambda created: [c.version for c in audit.incarnation(log.commits, created)]  # noqa: E731
    assert versions(1) == [1, 2, 3]
    assert versions(4) == [4, 5, 6]
    assert versions(7) == [7]
    assert versions(8) == []
    assert log.state.next_number == 3  # job numbers go on across incarnations: job 2 is in the second one


def test_about_job_keeps_only_that_jobs_events():
    log = story()
    c = log.commits[6]  # bob's lapsed lease on job 2, then alice's claim of job 2
    assert [e["type"] for e in c.events] == [ev.JOB_LEASE_EXPIRED, ev.JOB_CLAIMED]
    mine = audit.about_job(c, "2")
    assert mine == c and type(mine.events) is list
    assert audit.about_job(c, "1") is None
    add = log.commits[1]
    assert audit.about_job(add, "1") == add
    assert audit.about_job(log.commits[0], "1") is None
    mixed = Commit(
        9,
        T0,
        "w",
        [
            ev.job_updated("1", status=ev.DONE),
            ev.job_claimed("2", "w"),
            ev.job_deleted("1"),
            ev.experiment_updated(status=ev.DONE),
        ],
    )
    only = audit.about_job(mixed, "1")
    assert only == Commit(9, T0, "w", [ev.job_updated("1", status=ev.DONE), ev.job_deleted("1")])
    assert len(mixed.events) == 4  # the commit itself is left as it was
    assert audit.about_job(mixed, "10") is None  # an id is a whole string, not a prefix


# -- job times -----------------------------------------------------------------------------------


def test_job_times_count_claims_and_lapsed_leases_and_forget_a_requeued_finish():
    log = story()
    times = audit.job_times(log.commits)
    assert set(times) == {"1", "2"}  # job 3 was deleted
    assert times["1"] == audit.JobTimes(
        added_at=T0 + 1, claimed_at=T0 + 3, claimed_by="alice", finished_at=None, claims=1, lease_expiries=0
    )  # DONE at T0 + 4, requeued
    assert times["2"] == audit.JobTimes(
        added_at=T0 + 2, claimed_at=T0 + 30, claimed_by="alice", finished_at=None, claims=2, lease_expiries=1
    )
    at_5 = audit.job_times(log.commits[:5])
    assert at_5["1"].finished_at == T0 + 4 and at_5["2"] == audit.JobTimes(T0 + 2)
    at_6 = audit.job_times(log.commits[:6])
    assert at_6["2"].claimed_by == "bob" and at_6["2"].claims == 1


def test_job_times_of_jobs_finished_many_ways():
    log = Log()
    log.create(T0)
    log.add(T0 + 1, {"x": 1}, status=ev.DONE, results={"r": 1})  # 1: added finished
    log.add(T0 + 2, {"x": 2}, status=ev.RUNNING)  # 2: added running, never claimed
    log.add(T0 + 3, {"x": 3})  # 3
    log.next(T0 + 4, "w")  # claims 3
    log.put(T0 + 5, "3", "w", ev.PRUNED)
    log.put(T0 + 6, "3", "w", ev.DONE)  # a later finish replaces the earlier one
    log.put(T0 + 7, "2", "w", ev.CRASHED)
    log.put(T0 + 8, "1", "w", ev.DONE, {"r": 2})  # results only: still finished when it was
    assert [e.get("status") for e in log.commits[-1].events] == [None]
    times = audit.job_times(log.commits)
    assert times["1"] == audit.JobTimes(T0 + 1, finished_at=T0 + 1)
    assert times["2"] == audit.JobTimes(T0 + 2, finished_at=T0 + 7)
    assert times["3"] == audit.JobTimes(T0 + 3, T0 + 4, "w", T0 + 6, 1, 0)


def test_a_lease_lapsing_to_crashed_finishes_the_job():
    commits = [
        Commit(1, T0, "a", [ev.experiment_created(NAME, "manual", MANUAL, ev.RUNNING, 1)]),
        Commit(2, T0 + 1, "a", [ev.job_added("1", {}, ev.QUEUED, {}), ev.job_claimed("1", "a", T0 + 2)]),
        Commit(3, T0 + 9, "b", [ev.job_lease_expired("1", "a", ev.CRASHED)]),
    ]
    fold(commits)  # a valid log
    assert audit.job_times(commits)["1"] == audit.JobTimes(T0 + 1, T0 + 1, "a", T0 + 9, 1, 1)


def test_job_times_start_again_with_each_incarnation():
    log = Log()
    log.create(T0)
    log.add(T0 + 1)
    log.next(T0 + 2, "w")
    log.do(lambda s, v, now: decide.delete_experiment(s, name=NAME), T0 + 3)
    log.create(T0 + 4)
    log.add(T0 + 5)
    assert audit.job_times(log.commits) == {"2": audit.JobTimes(T0 + 5)}


def test_job_rows_in_the_order_jobs_were_added_with_user_values():
    log = Log()
    log.create(T0)
    log.add(T0 + 1, {"lr": 0.1, "opt": "adam"})
    log.add(T0 + 2, {"lr": {"$f": "NaN"}, "cfg": {"$d": {"$ref": [1, 2]}}}, results={"loss": {"$f": "-Infinity"}})
    log.add(T0 + 3, {"lr": 0.3})
    log.do(lambda s, v, now: decide.delete_job(s, name=NAME, job_id="1"), T0 + 4)
    log.next(T0 + 5, "w")
    rows = audit.job_rows(log.state, log.commits)
    assert [r["job_id"] for r in rows] == ["2", "3"]
    two, three = rows
    assert list(two) == [
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
        "hyperparameters",
        "results",
    ]
    assert math.isnan(two["hyperparameters"]["lr"]) and two["hyperparameters"]["cfg"] == {"$ref": [1, 2]}
    assert two["results"] == {"loss": -math.inf}
    assert two["status"] == ev.RUNNING and two["claimed_by"] == "w" and two["claims"] == 1
    assert two["added_at"] == T0 + 2 and two["claimed_at"] == T0 + 5
    assert three == {
        "job_id": "3",
        "status": ev.QUEUED,
        "generation": None,
        "parent_id": None,
        "member": None,
        "added_at": T0 + 3,
        "claimed_at": None,
        "claimed_by": None,
        "finished_at": None,
        "claims": 0,
        "lease_expiries": 0,
        "hyperparameters": {"lr": 0.3},
        "results": {},
    }
    two["hyperparameters"]["lr"] = 1.0  # the rows are copies: the state keeps its log form
    assert log.state.jobs["2"].hyperparameters["lr"] == {"$f": "NaN"}


# -- words ---------------------------------------------------------------------------------------


def test_utc_times_have_milliseconds_and_a_z():
    assert audit.utc(0) == "1970-01-01T00:00:00.000Z"
    assert audit.utc(T0 + 0.1234) == "2026-11-29T18:00:00.123Z"
    assert audit.utc(-1.5) == "1969-12-31T23:59:58.500Z"
    for absurd in (1e20, -1e20, 1e15, 2**70):  # a hand-written log may hold any number
        assert repr(absurd) in audit.utc(absurd)


def test_show_is_json_for_people():
    assert audit.show(0.1) == "0.1"
    assert audit.show({"$f": "NaN"}) == "NaN"
    assert audit.show([{"$f": "Infinity"}, {"$f": "-Infinity"}]) == "[Infinity, -Infinity]"
    assert audit.show({"a": [1, "x"], "b": None, "c": True}) == '{"a": [1, "x"], "b": null, "c": true}'
    assert audit.show({"$d": {"$f": "NaN"}}) == '{"$f": "NaN"}'  # a user dict, not an escape
    assert audit.show("héllo ✓ 日本") == '"héllo ✓ 日本"'
    for hostile in [
        "a\nb",
        "a\rb",
        "tab\there",
        "\x1b[31mred",
        "nel\x85",
        "ls\u2028ps\u2029",
        "bidi\u202e",
        "tag\U000e0041",
        "nul\x00",
        "del\x7f",
        "c1\x9b2J",
    ]:
        text = audit.show(hostile)
        assert text.isprintable(), text
        assert json.loads(text) == hostile  # still JSON, still the same string


def _every_event():
    """One event of every type (hostile names where the log allows any text)."""
    params = MANUAL
    return [
        ev.experiment_created("ex\nperiment", "manual", params, ev.RUNNING, 12, 0.5),
        ev.experiment_updated(status=ev.DONE, lease=30.0, params=params),
        ev.experiment_updated(),
        ev.experiment_deleted(),
        ev.job_added(
            "4",
            {"lr": 0.1, "na\nme": "va\nlue", "ls": "x\u2028y", "nan": {"$f": "NaN"}},
            ev.QUEUED,
            {"loss": {"$f": "Infinity"}},
        ),
        ev.job_added("5", {}, ev.RUNNING, {}, generation=2, parent="3", member=1),
        ev.job_claimed("4", "node\n7:12:ab", T0 + 0.5),
        ev.job_claimed("4", "node7"),
        ev.job_heartbeat("4", "node\x1b[2J7", T0 + 60),
        ev.job_lease_expired("4", "node\u20287", ev.QUEUED),
        ev.job_released("4", "node\n7", {"ckpt": "a\nb"}),
        ev.job_updated("4", status=ev.PRUNED, hyperparameters={"lr": 0.2}, results={"r\n": [1, {"$f": "NaN"}]}),
        ev.job_updated("4", results={}),
        ev.job_updated("4"),
        ev.job_deleted("4"),
    ]


def test_every_event_type_is_described():
    described = {e["type"] for e in _every_event()}
    assert described == set(_APPLY)  # every type the fold knows
    for e in _every_event():
        assert not audit.describe(e).endswith(f"{e['type']} event")


def test_each_description_is_one_printable_line_even_for_hostile_names():
    for e in _every_event():
        text = audit.describe(e)
        assert text.isprintable() and len(text.splitlines()) == 1, text


@pytest.mark.parametrize(
    "event, expected",
    [
        (
            ev.experiment_created("ex\nperiment", "manual", MANUAL, ev.RUNNING, 12, 0.5),
            "experiment 'ex\\nperiment' created: manual, status RUNNING, seed 12, lease 0.5 s",
        ),
        (
            {k: v for k, v in ev.experiment_created("e", "random", {}, ev.DONE, 3).items() if k != "lease"},
            "experiment 'e' created: random, status DONE, seed 3, lease 120 s",
        ),
        (
            ev.experiment_updated(status=ev.DONE, lease=30.0, params=MANUAL),
            "experiment updated: status DONE, lease 30 s, scheduler parameters changed",
        ),
        (ev.experiment_updated(), "experiment updated: nothing"),
        (ev.experiment_deleted(), "experiment deleted"),
        (
            ev.job_added(
                "4", {"lr": 0.1, "na\nme": "va\nlue", "nan": {"$f": "NaN"}}, ev.QUEUED, {"loss": {"$f": "Infinity"}}
            ),
            "job 4 added (QUEUED): lr=0.1, 'na\\nme'=\"va\\nlue\", nan=NaN; results loss=Infinity",
        ),
        (
            ev.job_added("5", {}, ev.RUNNING, {}, generation=2, parent="3", member=1),
            "job 5 added (RUNNING, generation 2 from job 3, member 1): none",
        ),
        (
            ev.job_added("6", {"a": [1, 2]}, ev.DONE, {}, generation=0, member=0),
            "job 6 added (DONE, generation 0, member 0): a=[1, 2]",
        ),
        (ev.job_claimed("4", "node\n7", T0 + 0.5), "job 4 claimed by 'node\\n7' until 2026-11-29T18:00:00.500Z"),
        (ev.job_claimed("4", "node7:12:ab"), "job 4 claimed by node7:12:ab"),
        (ev.job_heartbeat("4", "node7", T0 + 60), "job 4 lease renewed by node7 until 2026-11-29T18:01:00.000Z"),
        (ev.job_lease_expired("4", "node7", ev.QUEUED), "job 4: lease of node7 expired; job QUEUED"),
        (ev.job_lease_expired("4", "node7", ev.CRASHED), "job 4: lease of node7 expired; job CRASHED"),
        (
            ev.job_updated("4", status=ev.PRUNED, hyperparameters={"lr": 0.2}, results={"r": [1, {"$f": "NaN"}]}),
            "job 4 updated: status PRUNED; hyperparameters lr=0.2; results r=[1, NaN]",
        ),
        (ev.job_updated("4", results={}), "job 4 updated: results none"),
        (ev.job_updated("4"), "job 4 updated: nothing"),
        (ev.job_deleted("4"), "job 4 deleted"),
    ],
)
def test_description_of(event, expected):
    assert audit.describe(event) == expected


def test_label_leaves_printable_names_alone():
    assert audit.label("alice") == "alice"
    assert audit.label("host:12:ab cd") == "host:12:ab cd"
    assert audit.label("日本") == "日本"
    assert audit.label("a\nb") == "'a\\nb'"
    assert audit.label(None) == "None"


# -- the core stays pure -------------------------------------------------------------------------

FORBIDDEN_MODULES = {"os", "io", "time", "random", "socket", "pathlib", "subprocess", "threading", "sys"}
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
}


def _impurities(source, name):
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found += [f"{name}: import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_MODULES:
                found.append(f"{name}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (owner, node.func.attr) in FORBIDDEN_CALLS:
                found.append(f"{name}: line {node.lineno} calls {owner}.{node.func.attr}()")
    return found


def test_the_core_does_no_io_reads_no_clock_and_uses_no_global_random_state():
    folder = pathlib.Path(schedy.core.__file__).parent
    modules = sorted(folder.glob("*.py"))
    assert {"audit.py", "decide.py", "state.py"} <= {m.name for m in modules}
    found = [x for m in modules for x in _impurities(m.read_text(encoding="utf-8"), m.name)]
    assert found == []


def test_the_purity_check_sees_what_it_forbids():
    assert _impurities("import os.path\nimport numpy as np", "m") == ["m: import os.path"]
    assert _impurities("from time import monotonic", "m") == ["m: from time import ..."]
    assert _impurities("from . import time", "m") == []  # a sibling module, not the standard one
    assert _impurities("import datetime\nx = datetime.datetime.now()", "m") == ["m: line 2 calls datetime.now()"]
    assert _impurities("from datetime import datetime\nx = datetime.utcnow()", "m") == [
        "m: line 2 calls datetime.utcnow()"
    ]
    assert _impurities("import time as t\nt.time()", "m") == ["m: import time"]
    assert _impurities("x = date.today()", "m") == ["m: line 1 calls date.today()"]
