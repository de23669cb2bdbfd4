"""Leases judged by what the deciding worker has seen, on its own clock (schedy.core.leases), and the check
that finds commit times running backwards (schedy.core.check.find_backwards_times)."""

from schedy.core import decide, leases
from schedy.core import events as ev
from schedy.core.check import find_backwards_times
from schedy.core.codec import Commit
from schedy.core.state import fold

LEASE = 10.0


def log_with_claim(claim_time, stamp_skew=0.0):
    """A manual search with two jobs; job "1" claimed by "w" whose clock is ``stamp_skew`` s off."""
    commits = [
        Commit(
            1,
            0.0,
            "op",
            decide.create_experiment(
                None,
                name="e",
                kind="manual",
                params={"scheduler": {"Manual": {}}},
                status=ev.RUNNING,
                seed=1,
                lease=LEASE,
            ).events,
        )
    ]
    state = fold(commits)
    for i in range(2):
        state = fold(
            [
                Commit(
                    state.version + 1,
                    0.0,
                    "op",
                    decide.add_job(state, name="e", hyperparameters={"i": i}, status=ev.QUEUED, results={}).events,
                )
            ],
            state,
        )
    t = claim_time + stamp_skew
    d = decide.next_job(state, name="e", worker="w", version=state.version + 1, now=t, lapsed=())
    return fold([Commit(state.version + 1, t, "w", d.events)], state)


def test_a_claim_lapses_after_a_lease_of_watching_it_unrenewed_not_before():
    state = log_with_claim(100.0)
    sightings, lapsed = leases.observe({}, state, 5000.0)  # first seen now, whatever its stamps say
    assert lapsed == ()
    sightings, lapsed = leases.observe(sightings, state, 5000.0 + LEASE - 0.001)
    assert lapsed == ()
    _, lapsed = leases.observe(sightings, state, 5000.0 + LEASE)
    assert lapsed == ("1",)


def test_the_writers_clock_does_not_matter_ahead_or_behind():
    for skew in (-300.0, 0.0, 300.0):
        state = log_with_claim(100.0, stamp_skew=skew)
        sightings, lapsed = leases.observe({}, state, 7.0)
        assert lapsed == ()
        assert leases.observe(sightings, state, 7.0 + LEASE)[1] == ("1",)
    # The rule for one shared clock compares stamps: 300 s ahead, the claim would hold 300 s too long.
    ahead = log_with_claim(100.0, stamp_skew=300.0)
    assert leases.lapsed_at(ahead, 100.0 + LEASE + 1) == ()
    assert leases.lapsed_at(ahead, 400.0 + LEASE + 1) == ("1",)


def test_a_renewal_restarts_the_watch():
    state = log_with_claim(100.0)
    sightings, _ = leases.observe({}, state, 0.0)
    beat = decide.heartbeat(state, name="e", job_id="1", worker="w", now=108.0, lapsed=())
    renewed = fold([Commit(state.version + 1, 108.0, "w", beat.events)], state)
    sightings, lapsed = leases.observe(sightings, renewed, 8.0)
    assert lapsed == ()
    assert leases.observe(sightings, renewed, 8.0 + LEASE - 1)[1] == ()  # 17 s after the claim was first seen
    assert leases.observe(sightings, renewed, 8.0 + LEASE)[1] == ("1",)


def test_released_jobs_are_forgotten_and_a_new_claim_is_a_new_sighting():
    state = log_with_claim(100.0)
    sightings, _ = leases.observe({}, state, 0.0)
    done = decide.update_job(
        state,
        name="e",
        job_id="1",
        worker="w",
        status=ev.DONE,
        hyperparameters={"i": 0},
        results={"loss": 1.0},
        now=101.0,
        lapsed=(),
    )
    state = fold([Commit(state.version + 1, 101.0, "w", done.events)], state)
    sightings, lapsed = leases.observe(sightings, state, 50.0)
    assert sightings == {} and lapsed == ()
    d = decide.next_job(state, name="e", worker="v", version=state.version + 1, now=102.0, lapsed=())
    state = fold([Commit(state.version + 1, 102.0, "v", d.events)], state)
    sightings, _ = leases.observe(sightings, state, 60.0)
    assert sightings["2"].since == 60.0


def test_a_renewal_is_timed_by_the_lease_in_force_when_it_was_first_seen():
    state = log_with_claim(100.0)
    sightings, _ = leases.observe({}, state, 0.0)
    longer = fold(
        [Commit(state.version + 1, 101.0, "op", decide.update_experiment(state, name="e", lease=100.0).events)], state
    )
    assert leases.observe(sightings, longer, LEASE)[1] == ("1",)  # claimed under 10 s, and not renewed since
    shorter = fold(
        [Commit(longer.version + 1, 102.0, "op", decide.update_experiment(longer, name="e", lease=2.0).events)], longer
    )
    assert leases.observe({}, shorter, 0.0)[0]["1"].lease == 2.0  # a worker that opens now knows only 2 s
    # One that saw the lease at 10 s and first sees a renewal with the lease at 2 s times it by 10 s: the
    # renewal may have been written before the change, and the holder's next beat comes a quarter of 10 s later.
    seen, _ = leases.observe({}, shorter, 0.0, previous_lease=LEASE)
    assert leases.observe(seen, shorter, 5.0, previous_lease=2.0)[1] == ()
    assert leases.observe(seen, shorter, LEASE, previous_lease=2.0)[1] == ("1",)


def test_a_decision_expires_exactly_the_claims_it_is_told_have_lapsed():
    state = log_with_claim(100.0)
    # With lapsed given, the stamps are not compared: a time far past the lease_until expires nothing ...
    d = decide.next_job(state, name="e", worker="v", version=state.version + 1, now=1e9, lapsed=())
    assert [e["type"] for e in d.events] == [ev.JOB_CLAIMED] and d.value == "2"
    # ... and a claim seen lapsing is expired even if its stamp says it has time left.
    d = decide.next_job(
        state, name="e", worker="v", version=state.version + 1, now=0.0, lapsed=("1", "7")
    )  # "7" is not claimed
    assert [(e["type"], e["job"]) for e in d.events] == [(ev.JOB_LEASE_EXPIRED, "1"), (ev.JOB_CLAIMED, "2")]
    # Without it, the shared-clock rule applies (the simulation; logs written before).
    d = decide.next_job(state, name="e", worker="v", version=state.version + 1, now=100.0 + LEASE + 1)
    assert [e["type"] for e in d.events] == [ev.JOB_LEASE_EXPIRED, ev.JOB_CLAIMED]


def test_backwards_commit_times_beyond_the_tolerance_are_found_worst_first():
    commits = [
        Commit(1, 1000.0, "a", []),
        Commit(2, 1001.0, "b", []),
        Commit(3, 995.0, "c", []),
        Commit(4, 700.0, "d", []),
        Commit(5, 1300.0, "a", []),
        Commit(6, 1299.0, "b", []),
    ]
    found = find_backwards_times(commits, tolerance=10.0)
    assert [(b.version, b.worker, b.after, b.after_worker, b.seconds) for b in found] == [(4, "d", 2, "b", 301.0)]
    assert len(find_backwards_times(commits, tolerance=5.0)) == 2
    assert find_backwards_times(commits, tolerance=400.0) == []


def test_a_note_from_another_worker_is_not_a_renewal():
    state = log_with_claim(100.0)
    sightings, _ = leases.observe({}, state, 0.0)
    job = state.jobs["1"]
    note = decide.update_job(
        state,
        name="e",
        job_id="1",
        worker="op",
        status=ev.RUNNING,
        hyperparameters=job.hyperparameters,
        results={"note": "stuck?"},
        now=105.0,
        lapsed=(),
    )
    noted = fold([Commit(state.version + 1, 105.0, "op", note.events)], state)
    assert noted.jobs["1"].version != job.version  # the job changed...
    assert leases.observe(sightings, noted, LEASE)[1] == ("1",)  # ...but its dead holder's claim still lapses
