"""Tests of the fold (schedy.core.state) driven by the pure decisions (schedy.core.decide).

A random command sequence is run against a live state, one commit per decision
that produced events; folding the commits any way (all at once, from bytes, from
any prefix) must give that same state.
"""

import copy
import math

import orjson
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from schedy.core import decide, values
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.core.state import apply, fold, live, oldest_queued
from schedy.errors import (
    CorruptLogError,
    ExperimentNotFoundError,
    JobNotFoundError,
    NoJobError,
    ResourceExistsError,
    SchedyError,
    UnsafeUpdateError,
    UnsupportedFormatError,
)

NAME = "exp"
MANUAL = {"scheduler": {"Manual": {}}}
RANDOM = {
    "scheduler": {
        "RandomSearch": {
            "distributions": {
                "lr": {"loguniform": {"low": 1e-5, "high": 1}},
                "opt": {"choice": {"values": ["sgd", "adam", {"$f": "NaN"}], "weights": [1, 2, 1]}},
                "layers": {"uniform": {"low": 1, "high": 5}},
            }
        }
    }
}
RANDOM_2 = {
    "scheduler": {
        "RandomSearch": {
            "distributions": {
                "lr": {"const": 0.1},
                "opt": {"choice": {"values": ["sgd"]}},
                "layers": {"normal": {"mean": 3, "std": 1}},
            }
        }
    }
}
BAD_PARAMS = [
    {"scheduler": {"RandomSearch": {}}},
    {"scheduler": {"Manual": {"x": 1}}},
    {"scheduler": {"RandomSearch": {"distributions": {"lr": {"gauss": {"mean": 0}}}}}},
    {"scheduler": {"RandomSearch": {"distributions": {"lr": {"uniform": {"low": 1, "high": 0}}}}}},
    {},
]
HP_NAMES = ["lr", "opt", "layers"]

# ---------------------------------------------------------------- strategies

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text(max_size=3))
user_values = st.one_of(
    scalars,
    st.lists(scalars, max_size=2),
    st.builds(lambda k, v: {k: v}, st.sampled_from(["$f", "$d", "a"]), scalars),  # escape look-alikes
)
mappings = st.dictionaries(st.sampled_from(["loss", "acc", "$f", "model", "lr"]), user_values, max_size=3)
hp_sets = st.one_of(
    st.fixed_dictionaries({n: user_values for n in HP_NAMES}),  # right names for random search
    mappings,  # usually wrong names for random search; anything goes for a manual one
)
workers = st.sampled_from(["w1", "w2", "wörker-3"])
job_statuses = st.sampled_from(ev.JOB_STATUSES * 4 + (ev.QUEUED, ev.QUEUED, ev.DONE, "WAITING"))
exp_statuses = st.sampled_from(ev.EXPERIMENT_STATUSES * 4 + (ev.RUNNING, ev.RUNNING, "PAUSED"))
job_pick = st.integers(0, 30)
expectations = st.sampled_from(["none", "current", "stale"])

create_cmd = st.tuples(
    st.just("create"), st.sampled_from(["manual", "random"]), exp_statuses, st.integers(0, 2**32 - 1)
)
add_job_cmd = st.tuples(st.just("add_job"), hp_sets, job_statuses, mappings)
next_job_cmd = st.tuples(st.just("next_job"), workers)
update_job_cmd = st.tuples(
    st.just("update_job"),
    job_pick,
    workers,
    job_statuses,
    st.sampled_from(["same", "new"]),
    hp_sets,
    st.one_of(st.none(), mappings),
    expectations,
)
claim_job_cmd = st.tuples(st.just("claim_job"), job_pick, workers, expectations)
COMMANDS = {
    "add_job": add_job_cmd,
    "next_job": next_job_cmd,
    "update_job": update_job_cmd,
    "claim_job": claim_job_cmd,
    "create": create_cmd,
    "create_bad": st.tuples(
        st.just("create_bad"), st.sampled_from(["manual", "random", "pbt"]), st.integers(0, len(BAD_PARAMS) - 1)
    ),
    "delete_job": st.tuples(st.just("delete_job"), job_pick, st.booleans()),
    "update_experiment": st.tuples(
        st.just("update_experiment"),
        st.one_of(st.none(), exp_statuses),
        st.sampled_from([None, "same", "other", "bad"]),
    ),
    "delete_experiment": st.tuples(st.just("delete_experiment"), st.booleans()),
}
# Weighted by repetition: mostly job traffic, now and then a change of the experiment itself.
WEIGHTS = {
    "add_job": 6,
    "next_job": 6,
    "update_job": 5,
    "claim_job": 3,
    "create": 1,
    "create_bad": 1,
    "delete_job": 2,
    "update_experiment": 2,
    "delete_experiment": 1,
}
commands = st.sampled_from([op for op, n in WEIGHTS.items() for _ in range(n)]).flatmap(COMMANDS.__getitem__)
histories = st.tuples(create_cmd, st.lists(commands, min_size=20, max_size=60)).map(lambda t: [t[0], *t[1]])

# ---------------------------------------------------------------- running commands


def pick_job(state, i):
    """An existing job most of the time, else one that does not exist."""
    ids = sorted(state.jobs, key=int) if live(state) else []
    return ids[i % len(ids)] if ids and i % 8 != 7 else "404"


def expected_version(state, job_id, how):
    job = state.jobs.get(job_id) if state is not None else None
    if how == "none" or job is None:
        return None
    return job.version if how == "current" else job.version - 1


def run(cmd, state, version):
    """Run one command; return (decision, exception type the command must raise or None)."""
    op = cmd[0]
    must = None if live(state) else ExperimentNotFoundError
    if op == "create":
        _, kind, status, seed = cmd
        must = ResourceExistsError if live(state) else None
        return decide.create_experiment(
            state, name=NAME, kind=kind, params=MANUAL if kind == "manual" else RANDOM, status=status, seed=seed
        ), must
    if op == "create_bad":
        _, kind, i = cmd
        return decide.create_experiment(
            state, name=NAME, kind=kind, params=BAD_PARAMS[i], status=ev.RUNNING, seed=1
        ), ResourceExistsError if live(state) else ValueError
    if op == "add_job":
        _, hps, status, results = cmd
        return decide.add_job(
            state,
            name=NAME,
            hyperparameters=values.encode_mapping(hps, "hyperparameters"),
            status=status,
            results=values.encode_mapping(results, "results"),
        ), must
    if op == "next_job":
        return decide.next_job(state, name=NAME, worker=cmd[1], version=version, now=version * 1.5), must
    if op == "update_job":
        _, i, worker, status, hp_how, hps, results, how = cmd
        job_id = pick_job(state, i)
        job = state.jobs.get(job_id) if live(state) else None
        if job is not None:
            hps = job.hyperparameters if hp_how == "same" else values.encode_mapping(hps, "hyperparameters")
            results = job.results if results is None else values.encode_mapping(results, "results")
            if how == "stale":
                must = UnsafeUpdateError
        else:
            hps, results = values.encode_mapping(hps, "h"), values.encode_mapping(results, "r")
            must = must or JobNotFoundError
        return decide.update_job(
            state,
            name=NAME,
            job_id=job_id,
            worker=worker,
            status=status,
            hyperparameters=hps,
            results=results,
            expected_version=expected_version(state, job_id, how),
        ), must
    if op == "claim_job":
        _, i, worker, how = cmd
        job_id = pick_job(state, i)
        job = state.jobs.get(job_id) if live(state) else None
        if job is None:
            must = must or JobNotFoundError
        elif how == "stale" or job.worker is not None:
            must = UnsafeUpdateError
        return decide.claim_job(
            state, name=NAME, job_id=job_id, worker=worker, expected_version=expected_version(state, job_id, how)
        ), must
    if op == "delete_job":
        _, i, ensure = cmd
        job_id = pick_job(state, i)
        if live(state) and job_id not in state.jobs and ensure:
            must = JobNotFoundError
        if not live(state) and not ensure:
            must = ExperimentNotFoundError  # delete_job requires the experiment even without ensure
        return decide.delete_job(state, name=NAME, job_id=job_id, ensure=ensure), must
    if op == "update_experiment":
        _, status, params = cmd
        if params == "same":
            params = state.params if state is not None else None
        elif params == "other":
            params = (MANUAL if state is not None and state.kind == "manual" else RANDOM_2) if state else None
        elif params == "bad":
            params = BAD_PARAMS[0]
        return decide.update_experiment(state, name=NAME, status=status, params=params), must
    if op == "delete_experiment":
        _, ensure = cmd
        return decide.delete_experiment(state, name=NAME, ensure=ensure), (must if ensure else None)
    raise AssertionError(op)


class QueueModel:
    """An independent model of the FIFO queue, driven by the events alone."""

    def __init__(self):
        self.queue = []

    def _drop(self, job_id):
        if job_id in self.queue:
            self.queue.remove(job_id)

    def feed(self, events):
        for e in events:
            kind = e["type"]
            if kind == ev.EXPERIMENT_CREATED:
                self.queue = []
            elif kind == ev.JOB_ADDED and e["status"] == ev.QUEUED:
                self.queue.append(e["job"])
            elif kind in (ev.JOB_CLAIMED, ev.JOB_DELETED):
                self._drop(e["job"])
            elif kind == ev.JOB_UPDATED and "status" in e:
                if e["status"] != ev.QUEUED:
                    self._drop(e["job"])
                elif e["job"] not in self.queue:
                    self.queue.append(e["job"])


def check_state(state, model):
    assert oldest_queued(state) == (model.queue[0] if model.queue else None)
    assert sorted(model.queue, key=int) == sorted((j for j, s in state.jobs.items() if s.status == ev.QUEUED), key=int)
    for job_id, job in state.jobs.items():
        assert job.job_id == job_id == str(job.number)
        assert job.number < state.next_number
        assert job.worker is None or job.status == ev.RUNNING
        assert (job.queue_seq is not None) == (job.status == ev.QUEUED)
        assert job.added <= job.version <= state.version


def mutable_parts(state):
    """The only mutable things a state holds are the log-form dicts; everything else is immutable."""
    if state is None:
        return None
    return orjson.dumps([state.params, [(j.hyperparameters, j.results) for j in state.jobs.values()]])


def play(history):
    """Run the commands; return (commits, live state)."""
    state, commits, model = None, [], QueueModel()
    added_ids = set()
    for cmd in history:
        version = (state.version if state else 0) + 1
        before, before_parts = state, mutable_parts(state)
        must = None
        try:
            decision, must = run(cmd, state, version)
        except (SchedyError, ValueError) as e:
            # A refused command appends nothing and changes nothing.
            assert state is before and mutable_parts(state) == before_parts
            if must is not None and must is not ValueError:
                assert isinstance(e, must), (cmd, e)
            continue
        assert state is before and mutable_parts(state) == before_parts  # deciding never mutates the state
        error = decision.error  # a decision may record events and still refuse
        if error is None:
            assert must is None, (cmd, decision, must)
        else:
            assert isinstance(error, (SchedyError, ValueError)), error
            assert must is None or must is ValueError or isinstance(error, must), (cmd, error)
        if not decision.events:
            continue
        worker = {"next_job": 1, "update_job": 2, "claim_job": 2}.get(cmd[0])
        c = Commit(version, version * 1.5, "op" if worker is None else cmd[worker], decision.events)
        state = apply(state, c)
        commits.append(c)
        model.feed(c.events)
        check_state(state, model)
        for e in c.events:
            if e["type"] == ev.JOB_ADDED:
                assert e["job"] not in added_ids  # ids are never reused, even across re-creation
                added_ids.add(e["job"])
        if cmd[0] == "next_job" and error is None:
            assert before.status == ev.RUNNING  # a DONE experiment hands out nothing
            job = state.jobs[decision.value]
            assert job.status == ev.RUNNING and job.worker == cmd[1] and job.version == version
    return commits, state


@settings(max_examples=150, deadline=None)
@given(histories)
def test_fold_is_deterministic_and_incremental(history):
    commits, state = play(history)
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))
    assert fold(commits) == state
    assert fold(commits) == fold(commits)
    # Through bytes, as a reader on another machine would see it.
    decoded = [decode_commit(encode_commit(c)[:-1]) for c in commits]
    assert decoded == commits
    assert fold(decoded) == state
    # From a snapshot (prefix state) plus the rest; a spread of cut points keeps the test fast.
    n = len(commits)
    for k in sorted({0, 1, n // 4, n // 2, 3 * n // 4, n - 1, n} - {-1}):
        assert fold(commits[k:], fold(commits[:k])) == state
        assert fold(decoded[k:], fold(commits[:k])) == state
    assert find_double_claims(commits) == []
    assert find_double_claims(decoded) == []


def test_a_scripted_history():
    """A readable history with known outcomes, so the property test's machinery is itself checked."""
    cmds = [
        ("create", "manual", "RUNNING", 1),
        ("add_job", {"lr": 0.1}, "QUEUED", {}),
        ("add_job", {"lr": 0.2}, "QUEUED", {}),
        ("next_job", "w1"),
        ("next_job", "w2"),
        ("update_job", 0, "w1", "DONE", "same", {}, {"loss": math.nan}, "current"),
        ("update_job", 1, "w2", "QUEUED", "same", {}, None, "current"),
        ("next_job", "w1"),
        ("delete_experiment", True),
        ("create", "random", "RUNNING", 5),
        ("next_job", "w2"),
    ]
    commits, state = play(cmds)
    assert len(commits) == len(cmds)
    assert state.kind == "random" and state.created == 10 and not state.deleted
    assert list(state.jobs) == ["3"]  # numbering continues across re-creation
    job = state.jobs["3"]
    assert job.worker == "w2" and set(job.hyperparameters) == set(HP_NAMES)
    first = fold(commits[:8])
    assert first.jobs["1"].status == ev.DONE and first.jobs["1"].results == {"loss": {"$f": "NaN"}}
    assert first.jobs["2"].worker == "w1"  # requeued, then handed out again
    assert fold(commits) == state


# ---------------------------------------------------------------- determinism of random search


def random_state(seed, extra_jobs=0):
    state = apply(
        None,
        Commit(
            1,
            0.0,
            "op",
            decide.create_experiment(None, name=NAME, kind="random", params=RANDOM, status="RUNNING", seed=seed).events,
        ),
    )
    for _ in range(extra_jobs):
        d = decide.next_job(state, name=NAME, worker="w", version=state.version + 1, now=1.0)
        state = apply(state, Commit(state.version + 1, 0.0, "w", d.events))
    return state


STATE_OF_7_JOBS = random_state(3, extra_jobs=7)


def sampled(state, version):
    d = decide.next_job(state, name=NAME, worker="w", version=version, now=1.0)
    assert [e["type"] for e in d.events] == [ev.JOB_ADDED, ev.JOB_CLAIMED]
    return d.events[0]["hyperparameters"]


def test_same_seed_same_version_same_job():
    a, b = random_state(7), random_state(7)
    assert sampled(a, 2) == sampled(b, 2)
    assert sampled(a, 2) == sampled(a, 2)
    # The sample depends on the seed and the version only, not on how the state got there.
    c = random_state(7, extra_jobs=3)
    assert sampled(c, 9) == sampled(a, 9)
    # The clock sets the claim's lease, never the sampled job.
    assert (
        decide.next_job(a, name=NAME, worker="w", version=2, now=1.0).events[0]
        == decide.next_job(b, name=NAME, worker="w", version=2, now=99.0).events[0]
    )


def test_different_version_or_seed_different_job():
    a = random_state(7)
    samples = [sampled(a, v) for v in range(2, 12)]
    assert len({repr(s) for s in samples}) == len(samples)
    assert sampled(random_state(8), 2) != sampled(a, 2)


def test_sampled_values_follow_the_distributions():
    a = random_state(3)
    for v in range(2, 50):
        hp = values.decode_mapping(sampled(a, v))
        assert 1e-5 <= hp["lr"] < 1 and 1 <= hp["layers"] < 5
        assert hp["opt"] in ("sgd", "adam") or math.isnan(hp["opt"])


def test_rng_for_is_independent_of_global_state():
    import random

    import numpy as np

    a = random_state(11)
    first = sampled(a, 2)
    np.random.seed(0)
    random.seed(0)
    np.random.random(10)
    assert sampled(a, 2) == first


def test_the_generator_of_a_decision_is_pcg64_seeded_as_the_log_format_says():
    import hashlib
    import struct

    import numpy as np

    from schedy.core.decide import CommitSeed, rng_for

    words = CommitSeed(2**63 - 1, 12).generate_state(4, np.uint64)
    assert words.dtype == np.uint64
    assert words.tolist() == list(
        struct.unpack("<4Q", hashlib.blake2b(b"9223372036854775807:12", digest_size=32).digest())
    )
    assert CommitSeed(5, 1).generate_state(3).tolist() == list(
        struct.unpack("<3I", hashlib.blake2b(b"5:1", digest_size=12).digest())
    )
    # rng_for is PCG64 on that seed (the words above are what docs/log-format.md specifies).
    state = type("S", (), {"seed": 5})()
    by_hand = np.random.Generator(np.random.PCG64(CommitSeed(5, 9)))
    assert rng_for(state, 9).random(4).tolist() == by_hand.random(4).tolist()
    assert rng_for(state, 9).random() != rng_for(state, 10).random()
    for bad in ((4, np.float64), (9, np.uint64), (0, np.uint32), (17, np.uint32)):
        with pytest.raises(ValueError, match="commit seed"):
            CommitSeed(5, 9).generate_state(*bad)


def test_replace_on_states_keeps_the_namedtuple_contract():
    from schedy.core.state import ExperimentState, JobState

    job = JobState("1", 1, "QUEUED", {"x": 1}, {}, None, None, None, 2, 2, None, 0)
    done = job._replace(status="DONE", queue_seq=None)
    assert type(done) is JobState and done.status == "DONE" and done.queue_seq is None and done.version == 2
    assert (
        job.status == "QUEUED" and job.queue_seq == 0 and done == job[:2] + ("DONE",) + job[3:11] + (None,) + job[12:]
    )
    with pytest.raises(ValueError, match="colour"):
        job._replace(colour="red")
    state = random_state(3)
    later = state._replace(version=state.version + 1)
    assert type(later) is ExperimentState and later[:-5] == state[:-5] and later.version == state.version + 1


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from(["1", "01", "0", "x", "²", "1" * 31, "9", "DONE", "w"]),
    st.floats(allow_nan=True),
    st.just({}),
    st.just([]),
    st.just(["DONE"]),
)
ABSENT = object()
good_fields = {
    "job": st.sampled_from(["1", "4", "7", "8", "12"]),
    "worker": st.just("w"),
    "lease_until": st.none() | st.integers(0, 9) | st.floats(0, 9),
    "status": st.sampled_from(ev.JOB_STATUSES),
    "hyperparameters": st.just({"x": 1.0}),
    "results": st.just({}),
    "generation": st.none() | st.integers(0, 3),
    "parent": st.none() | st.just("1"),
    "member": st.none() | st.integers(0, 3),
}
event_fields = st.fixed_dictionaries(
    {  # mostly well formed, so that the quick check accepts a fair share
        k: st.tuples(st.integers(0, 9), good, odd_values).map(
            lambda t: ABSENT if t[0] == 0 else t[2] if t[0] > 7 else t[1]
        )
        for k, good in good_fields.items()
    }
)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(["JobAdded", "JobClaimed", "JobUpdated"]), event_fields)
def test_the_quick_check_of_an_event_accepts_only_what_the_full_check_accepts(kind, fields):
    from schedy.core.state import _WELL_FORMED, _check_event_fully

    e = {"type": kind, **{k: v for k, v in fields.items() if v is not ABSENT}}
    if _WELL_FORMED[kind](STATE_OF_7_JOBS, e):
        event("accepted by the quick check")
        _check_event_fully(STATE_OF_7_JOBS, e)  # must not raise


# ---------------------------------------------------------------- corrupt logs


def created(version=1, **overrides):
    e = ev.experiment_created(NAME, "manual", MANUAL, "RUNNING", 1)
    e.update(overrides)
    return Commit(version, 1.0, "op", [e])


def base():
    s = apply(None, created())
    return apply(s, Commit(2, 2.0, "op", [ev.job_added("1", {}, "QUEUED", {})]))


@pytest.mark.parametrize("version", [0, 1, 2, 4, 100, -1])
def test_wrong_version_raises(version):
    state = base()
    with pytest.raises(CorruptLogError, match=f"expected commit 3, found commit {version}"):
        apply(state, Commit(version, 3.0, "w", [ev.job_claimed("1", "w")]))


def test_first_commit_must_be_version_1():
    with pytest.raises(CorruptLogError, match="expected commit 1"):
        apply(None, created(version=2))
    with pytest.raises(CorruptLogError):
        fold([created(1), created(1)])


def test_unknown_event_type_raises():
    with pytest.raises(CorruptLogError, match="unknown event type 'JobExploded'"):
        apply(base(), Commit(3, 3.0, "w", [{"type": "JobExploded", "job": "1"}]))


@pytest.mark.parametrize(
    "event",
    [
        ev.job_claimed("99", "w"),
        ev.job_updated("99", status="DONE"),
        ev.job_deleted("99"),
        ev.job_added("1", {}, "QUEUED", {}),  # added twice
        {"type": ev.JOB_CLAIMED, "worker": "w"},  # no job
        {"type": ev.JOB_ADDED, "job": "x", "hyperparameters": {}, "status": "QUEUED", "results": {}},  # not a number
    ],
)
def test_malformed_job_events_raise(event):
    with pytest.raises(CorruptLogError, match="commit 3"):
        apply(base(), Commit(3, 3.0, "w", [event]))


def test_claim_of_nonexistent_job_raises_naming_the_stream():
    with pytest.raises(CorruptLogError, match=r"^experiment 'x': commit 3 has a malformed JobClaimed"):
        apply(base(), Commit(3, 3.0, "w", [ev.job_claimed("2", "w")]), "experiment 'x'")


def test_event_before_creation_raises():
    with pytest.raises(CorruptLogError, match="before the experiment exists"):
        apply(None, Commit(1, 1.0, "w", [ev.job_added("1", {}, "QUEUED", {})]))


@pytest.mark.parametrize("fmt", [999, 2])
def test_unsupported_format_raises(fmt):
    with pytest.raises(UnsupportedFormatError, match=f"format {fmt!r}"):
        apply(None, created(format=fmt))
    with pytest.raises(UnsupportedFormatError):
        apply(base(), created(version=3, format=fmt))


@pytest.mark.parametrize("fmt", ["1", None, 1.0, 0])
def test_a_format_that_is_not_a_version_number_is_corruption_not_a_newer_format(fmt):
    with pytest.raises(CorruptLogError, match="format") as caught:
        apply(None, created(format=fmt))
    assert not isinstance(caught.value, UnsupportedFormatError)


def test_supported_format():
    assert apply(None, created(format=ev.FORMAT)).version == 1
    assert apply(None, created()).version == 1
    assert issubclass(UnsupportedFormatError, CorruptLogError)


def test_failed_apply_leaves_the_state_untouched():
    state = base()
    snapshot = copy.deepcopy(state)
    with pytest.raises(CorruptLogError):
        apply(state, Commit(3, 3.0, "w", [ev.job_claimed("1", "w"), ev.job_claimed("2", "w")]))
    assert state == snapshot
    assert state.jobs["1"].status == ev.QUEUED


def test_commits_are_atomic_in_the_fold():
    # All events of one commit share its version and time.
    state = base()
    state = apply(state, Commit(3, 7.5, "w", [ev.job_added("2", {}, "QUEUED", {}), ev.job_claimed("2", "w")]))
    job = state.jobs["2"]
    assert job.added == job.version == 3 and job.claimed_at == 7.5 and job.worker == "w"
    assert oldest_queued(state) == "1"


def test_next_job_refusals():
    state = base()
    assert decide.next_job(state, name=NAME, worker="w", version=3, now=3.0).value == "1"
    state = apply(state, Commit(3, 3.0, "w", decide.next_job(state, name=NAME, worker="w", version=3, now=3.0).events))
    with pytest.raises(NoJobError):
        decide.next_job(state, name=NAME, worker="w", version=4, now=4.0)  # manual: nothing queued
    done = apply(base(), Commit(3, 3.0, "op", decide.update_experiment(base(), name=NAME, status="DONE").events))
    with pytest.raises(NoJobError, match="DONE"):
        decide.next_job(done, name=NAME, worker="w", version=4, now=4.0)
