"""The object store under network faults: a real S3 API (moto over HTTP on loopback) behind a fault-injecting
proxy (tests/faultproxy.py) that loses replies after the write landed, answers 503, refuses connections, or
strips the put-if-absent condition.

The outcome rule under test (schedy/adapters/objectstore.py, ``ObjectLogStore._create``): a write whose outcome
is unknown is read back; our bytes there, it is ours; another writer's, a lost race; nothing there, it is sent
again, a bounded number of times. What still fails is one line, a StoreError, with obstore's error as cause.
"""

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import log_commits, new_bucket
from faultproxy import (
    CLOSE,
    DELAY,
    LOST_REPLIES,
    REFUSE,
    RESET,
    UNAVAILABLE,
)
from obstore.exceptions import GenericError

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.errors import DatabaseError, SchedyError, StoreError

LOG_PUT = r"/experiments/[^/]+/log/\d{20}\.json$"  # the PUT of a commit object
PROBE_PUT = r"/\.schedy-probe/"
TIMEOUT = "1s"  # the client's timeout through the proxy; DELAY holds a reply longer than that
WORKER = Path(__file__).with_name("_fault_worker.py")


def retry_config(max_retries):
    """obstore's own retries: 0 sends every fault to Schedy; 1 or more lets obstore re-send what it may."""
    return {
        "max_retries": max_retries,
        "backoff": {"init_backoff": timedelta(milliseconds=10), "max_backoff": timedelta(milliseconds=100)},
        "retry_timeout": timedelta(seconds=20),
    }


@pytest.fixture
def bucket(s3_endpoint):
    return new_bucket(s3_endpoint)


def through(proxy, bucket, obstore_retries=2, **kw):
    """A SchedyDB on ``bucket`` whose every request goes through the proxy, with a short client timeout."""
    return schedy.SchedyDB(
        f"s3://{bucket}/team/db",
        endpoint=proxy.url,
        client_options={"timeout": TIMEOUT},
        retry_config=retry_config(obstore_retries),
        **kw,
    )


def direct(bucket):
    """The same database straight on the server (no proxy): what really is in the bucket."""
    return schedy.SchedyDB(f"s3://{bucket}/team/db")


def manual_with_jobs(db, name, n):
    exp = schedy.ManualSearch(name)
    db.add_experiment(exp)
    for i in range(n):
        exp.add_job({"i": i})
    return exp


def events_of(commits, kind):
    return [e for c in commits for e in c.events if e["type"] == kind]


def lost(action):
    """A rule's keywords for losing one reply: DELAY holds it past the client's timeout."""
    return {"delay": 1.5} if action == DELAY else {}


# -- a write that landed, whose reply was lost ---------------------------------------------------------------------


@pytest.mark.parametrize("action", LOST_REPLIES)
def test_a_claim_whose_reply_was_lost_after_it_landed_succeeds_and_is_in_the_log_once(fault_proxy, bucket, action):
    db = through(fault_proxy, bucket)
    exp = manual_with_jobs(db, "e", 3)  # commits 1..4
    rule = fault_proxy.add(action, method="PUT", path=LOG_PUT, times=1, **lost(action))
    job = exp.next_job()  # commit 5 lands; its reply is reset, cut off or held past the timeout
    assert rule.fired == 1
    assert job.job_id == "1" and job.status == schedy.Job.RUNNING
    commits = log_commits(direct(bucket), "e")
    assert [c.version for c in commits] == [1, 2, 3, 4, 5]
    assert [e["job"] for e in events_of(commits, ev.JOB_CLAIMED)] == ["1"]
    assert db._store.stats["resolved as ours"] == 1
    # RESET and DELAY reach Schedy as an unknown outcome; CLOSE is re-sent by obstore, which hears "exists".
    assert db._store.stats["unknown write outcomes" if action != CLOSE else "already exists"] == 1
    assert db._store.stats["write retries"] == 0  # it was read back, never written twice
    assert exp.next_job().job_id == "2"  # and the worker goes on from the right state


@pytest.mark.parametrize("action", [DELAY, RESET])
def test_an_add_job_whose_reply_timed_out_after_it_landed_is_added_once(fault_proxy, bucket, action):
    db = through(fault_proxy, bucket)
    exp = manual_with_jobs(db, "e", 2)  # commits 1..3
    rule = fault_proxy.add(action, method="PUT", path=LOG_PUT, times=1, **lost(action))
    job = exp.add_job({"i": 99})
    assert rule.fired == 1
    assert job.job_id == "3"
    commits = log_commits(direct(bucket), "e")
    assert len(commits) == 4
    assert [e["hyperparameters"] for e in events_of(commits, ev.JOB_ADDED)] == [{"i": 0}, {"i": 1}, {"i": 99}]
    assert [j.hyperparameters["i"] for j in direct(bucket).get_experiment("e").all_jobs()] == [0, 1, 99]


@pytest.mark.parametrize("action", LOST_REPLIES)
def test_a_done_report_whose_reply_was_lost_is_a_success_and_the_job_is_done(fault_proxy, bucket, action):
    db = through(fault_proxy, bucket)
    exp = manual_with_jobs(db, "e", 2)
    with exp.next_job() as job:
        job.results["loss"] = 0.5
        rule = fault_proxy.add(action, method="PUT", path=LOG_PUT, times=1, **lost(action))
    # Leaving the block wrote DONE; its reply was lost, and no error came out of the with statement.
    assert rule.fired == 1
    stored = direct(bucket).get_experiment("e").get_job(job.job_id)
    assert stored.status == schedy.Job.DONE and stored.results == {"loss": 0.5}
    commits = log_commits(direct(bucket), "e")
    done = [e for e in events_of(commits, ev.JOB_UPDATED) if e.get("status") == schedy.Job.DONE]
    assert [e["job"] for e in done] == [job.job_id]
    assert find_double_claims(commits) == []


def test_a_snapshot_and_the_marker_whose_replies_were_lost_are_kept(fault_proxy, bucket):
    db = through(fault_proxy, bucket, snapshot_every=4)
    exp = manual_with_jobs(db, "e", 2)  # commits 1..3
    rule = fault_proxy.add(RESET, method="PUT", path=r"/snapshots/", times=1)
    exp.add_job({"i": 2})  # commit 4, then its snapshot, whose reply is lost
    assert rule.fired == 1
    assert db._store.stats["resolved as ours"] == 1
    reopened = direct(bucket).get_experiment("e")
    assert reopened._view.snapshot == "used"  # it was stored, and it checks out
    marker = fault_proxy.add(RESET, method="PUT", path=r"/SCHEDY$", times=1)
    through(fault_proxy, bucket)  # the marker exists: its create is refused, the reply lost, the marker read
    assert marker.fired == 1


# -- a write that did not land ----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [UNAVAILABLE, REFUSE])
def test_a_write_that_did_not_land_is_sent_again_and_succeeds(fault_proxy, bucket, action):
    db = through(fault_proxy, bucket, obstore_retries=0)  # every 503 reaches Schedy
    exp = manual_with_jobs(db, "e", 1)  # commits 1..2
    rule = fault_proxy.add(action, method="PUT", path=LOG_PUT, times=2)
    job = exp.add_job({"i": 7})
    assert rule.fired == 2 and job.job_id == "2"
    assert db._store.stats["write retries"] == 2 and db._store.stats["unknown write outcomes"] == 2
    commits = log_commits(direct(bucket), "e")
    assert len(commits) == 3 and events_of(commits, ev.JOB_ADDED)[-1]["hyperparameters"] == {"i": 7}


def test_obstore_resends_a_503_itself_when_it_may(fault_proxy, bucket):
    db = through(fault_proxy, bucket, obstore_retries=2)
    exp = manual_with_jobs(db, "e", 1)
    rule = fault_proxy.add(UNAVAILABLE, method="PUT", path=LOG_PUT, times=2)
    exp.add_job({"i": 7})
    assert rule.fired == 2 and db._store.stats["write retries"] == 0 and len(log_commits(direct(bucket), "e")) == 3


def test_a_write_refused_too_many_times_is_one_line_schedy_error_with_the_cause_chained(fault_proxy, bucket):
    db = through(fault_proxy, bucket, obstore_retries=0)
    exp = manual_with_jobs(db, "e", 1)  # commits 1..2
    db._store.attempts = 3
    rule = fault_proxy.add(UNAVAILABLE, method="PUT", path=LOG_PUT)  # every time
    with pytest.raises(StoreError) as info:
        exp.add_job({"i": 7})
    assert rule.fired == 3  # three attempts, each read back and found absent
    err = info.value
    msg = str(err)
    assert isinstance(err, SchedyError) and "\n" not in msg and len(msg) < 800
    assert msg.startswith(f"s3://{bucket}/team/db: could not write commit 3 of 'e' ")
    assert f"team/db/experiments/e/log/{3:020d}.json" in msg and "after 3 attempts" in msg and "503" in msg
    assert isinstance(err.__cause__, GenericError) and "Debug source" in str(err.__cause__)
    assert "Debug source" not in msg
    fault_proxy.clear()
    assert len(log_commits(direct(bucket), "e")) == 2  # nothing was written
    assert exp.add_job({"i": 8}).job_id == "2"  # the next call works once the store does


def test_a_read_that_fails_transiently_is_retried_and_then_a_one_line_error(fault_proxy, bucket):
    db = through(fault_proxy, bucket, obstore_retries=0)
    manual_with_jobs(direct(bucket), "e", 3)
    rule = fault_proxy.add((UNAVAILABLE, RESET), method="GET", times=3)  # listings and reads alike
    assert [j.hyperparameters["i"] for j in db.get_experiment("e").all_jobs()] == [0, 1, 2]
    assert rule.fired == 3 and db._store.stats["read retries"] == 3
    db._store.attempts = 2
    fault_proxy.add(UNAVAILABLE, method="GET")
    with pytest.raises(StoreError) as info:
        db.get_experiment("e")
    msg = str(info.value)
    # The listing of the snapshots fails first (a snapshot is only an optimisation: opening goes on without it), then
    # the read of commit 1, which readers GET instead of listing the log.
    assert "\n" not in msg and "could not read commit 1 of 'e'" in msg and "after 2 attempts" in msg
    assert isinstance(info.value.__cause__, GenericError)


def test_a_write_whose_outcome_cannot_be_read_back_says_so(fault_proxy, bucket):
    db = through(fault_proxy, bucket, obstore_retries=0)
    exp = manual_with_jobs(db, "e", 1)
    db._store.attempts = 2
    fault_proxy.add(RESET, method="PUT", path=LOG_PUT, times=1)  # lands, reply lost...
    fault_proxy.add("forward", method="GET", path=LOG_PUT, times=1)  # (the read before it: commit 3 is not there)
    fault_proxy.add(UNAVAILABLE, method="GET", path=LOG_PUT)  # ...and it cannot be read back
    with pytest.raises(StoreError, match="outcome is unknown") as info:
        exp.add_job({"i": 1})
    assert "\n" not in str(info.value) and isinstance(info.value.__cause__, GenericError)


# -- the conditional-write check at open -------------------------------------------------------------------------


@pytest.mark.parametrize("action", LOST_REPLIES)
@pytest.mark.parametrize("which", ["first", "second"])
def test_the_open_check_survives_a_lost_reply_on_either_probe_create(fault_proxy, bucket, action, which):
    if which == "second":
        fault_proxy.add("forward", method="PUT", path=PROBE_PUT, times=1)  # let the first through
    rule = fault_proxy.add(action, method="PUT", path=PROBE_PUT, times=1, **lost(action))
    db = through(fault_proxy, bucket)
    assert rule.fired == 1
    manual_with_jobs(db, "e", 1)
    assert [j.job_id for j in direct(bucket).get_experiment("e").all_jobs()] == ["1"]


def test_the_open_check_survives_a_refused_probe_create(fault_proxy, bucket):
    rule = fault_proxy.add((UNAVAILABLE, REFUSE), method="PUT", path=PROBE_PUT, times=3)
    through(fault_proxy, bucket, obstore_retries=0)
    assert rule.fired == 3


@pytest.mark.parametrize("action", [None, RESET, CLOSE])
def test_a_store_that_ignores_put_if_absent_is_refused_at_open(fault_proxy, bucket, action):
    fault_proxy.ignore_conditions = True  # If-None-Match is stripped from every request
    if action is not None:  # and the reply to the second create of the probe is lost as well
        fault_proxy.add("forward", method="PUT", path=PROBE_PUT, times=1)
        fault_proxy.add(action, method="PUT", path=PROBE_PUT, times=1)
    with pytest.raises(DatabaseError, match="does not support conditional writes"):
        through(fault_proxy, bucket)
    fault_proxy.ignore_conditions = False
    through(fault_proxy, bucket)  # the same bucket behind an honest store opens


def test_the_check_happens_once_at_open(fault_proxy, bucket):
    db = through(fault_proxy, bucket)
    opening = [
        (m, t.rsplit("/", 2)[-2] if ".schedy-probe" in t else t.rsplit("/", 1)[-1]) for m, t, _ in fault_proxy.requests
    ]
    # Create the probe, create it again (refused), read it back (refused, not our retried create), create the
    # marker, delete the probe (S3's multi-object delete).
    assert opening == [
        ("PUT", ".schedy-probe"),
        ("PUT", ".schedy-probe"),
        ("GET", ".schedy-probe"),
        ("PUT", "SCHEDY"),
        ("POST", f"{bucket}?delete"),
    ]
    exp = manual_with_jobs(db, "e", 2)
    with exp.next_job():
        pass
    later = fault_proxy.requests[len(opening) :]
    assert later and not [t for _, t, _ in later if "probe" in t or "SCHEDY" in t or "delete" in t]
    through(fault_proxy, bucket)
    assert len(fault_proxy.requests) - len(opening) - len(later) == 6  # once it exists, the marker is read too


# -- configuration errors -------------------------------------------------------------------------------------------


def test_a_missing_bucket_is_named(s3_endpoint):
    name = f"no-such-bucket-{os.urandom(4).hex()}"
    with pytest.raises(DatabaseError) as info:
        schedy.SchedyDB(f"s3://{name}/team/db")
    msg = str(info.value)
    assert f"bucket {name!r} does not exist" in msg and "\n" not in msg and ".schedy-probe" not in msg
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_client_options_in_code_keep_allow_http_from_the_environment(fault_proxy, bucket, monkeypatch):
    # conftest exports AWS_ENDPOINT_URL (plain HTTP) and AWS_ALLOW_HTTP=true; point the endpoint at the proxy.
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.url)
    db = schedy.SchedyDB(f"s3://{bucket}/team/db", client_options={"timeout": TIMEOUT}, retry_config=retry_config(0))
    manual_with_jobs(db, "e", 1)
    # The short timeout given in code is in force too: a reply held longer is a lost reply, resolved.
    rule = fault_proxy.add(DELAY, method="PUT", path=LOG_PUT, times=1, delay=1.5)
    began = time.monotonic()
    assert db.get_experiment("e").next_job().job_id == "1"
    assert rule.fired == 1 and time.monotonic() - began < 1.5 + 5
    # Without AWS_ALLOW_HTTP, plain HTTP is refused, as obstore does: a clear error at open, not a crash.
    monkeypatch.delenv("AWS_ALLOW_HTTP")
    with pytest.raises(DatabaseError) as info:
        schedy.SchedyDB(f"s3://{bucket}/team/db", client_options={"timeout": TIMEOUT}, retry_config=retry_config(0))
    assert "\n" not in str(info.value) and f"s3://{bucket}/team/db" in str(info.value)


def test_allow_http_given_in_code_wins_over_the_environment(bucket, monkeypatch):
    monkeypatch.setenv("AWS_ALLOW_HTTP", "false")
    db = schedy.SchedyDB(f"s3://{bucket}/team/db", client_options={"allow_http": True, "timeout": "5s"})
    manual_with_jobs(db, "e", 1)


def test_the_environment_client_options_are_merged_per_store(monkeypatch):
    from schedy.adapters.opening import _client_options

    monkeypatch.setenv("AWS_ALLOW_HTTP", "true")
    monkeypatch.setenv("AZURE_ALLOW_HTTP", "yes")
    monkeypatch.setenv("AZURE_CONNECT_TIMEOUT", "3s")
    monkeypatch.delenv("GOOGLE_ALLOW_HTTP", raising=False)
    assert _client_options("s3", None, {}) == {}  # nothing given: obstore reads the environment itself
    assert _client_options("s3", {"timeout": "2s"}, {}) == {"timeout": "2s", "allow_http": "true"}
    assert _client_options("az", {"timeout": "2s"}, {}) == {
        "timeout": "2s",
        "allow_http": "yes",
        "connect_timeout": "3s",
    }
    assert _client_options("gs", {"timeout": "2s"}, {}) == {"timeout": "2s", "allow_http": True}
    assert _client_options("s3", {"allow_http": False}, {"endpoint": "http://x"}) == {"allow_http": False}
    assert _client_options("gs", None, {"base_url": "http://localhost:4443"}) == {"allow_http": True}


# -- many workers, many faults ----------------------------------------------------------------------------------------


def test_four_processes_drain_100_jobs_through_lost_replies_and_503s(fault_proxy, bucket):
    manual_with_jobs(direct(bucket), "drain", 100)
    # 5% of writes land and lose their reply (reset, cut off, or held past the 2 s timeout); 5% are answered
    # 503 or refused without reaching the server; 2% of reads are answered 503 or reset.
    lost_rule = fault_proxy.add(LOST_REPLIES, method="PUT", probability=0.05, delay=2.5)
    failed_rule = fault_proxy.add((UNAVAILABLE, REFUSE), method="PUT", probability=0.05 / 0.95)
    read_rule = fault_proxy.add((UNAVAILABLE, RESET), method="GET", probability=0.02)
    began = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), f"s3://{bucket}/team/db", fault_proxy.url, "drain", f"w{n}", "2s", "0.01"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    elapsed = time.monotonic() - began
    reports = []
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, f"worker crashed or saw errors (exit {p.returncode}):\n{out}\n{err[-3000:]}"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    assert all(r["errors"] == [] for r in reports)

    commits = log_commits(direct(bucket), "drain")
    assert find_double_claims(commits) == []
    claims = Counter(e["job"] for e in events_of(commits, ev.JOB_CLAIMED))
    done = Counter(e["job"] for e in events_of(commits, ev.JOB_UPDATED) if e.get("status") == schedy.Job.DONE)
    ids = {str(i) for i in range(1, 101)}
    assert set(claims) == ids and set(claims.values()) == {1}, "a job was claimed twice or never"
    assert set(done) == ids and set(done.values()) == {1}, "a job was reported DONE twice or never"
    assert sorted((j for r in reports for j in r["done"]), key=int) == sorted(ids, key=int)
    assert {j.status for j in direct(bucket).get_experiment("drain").all_jobs()} == {schedy.Job.DONE}
    assert [c.version for c in commits] == list(range(1, len(commits) + 1))

    stats = sum((Counter(r["stats"]) for r in reports), Counter())
    assert lost_rule.fired > 0 and failed_rule.fired > 0  # faults were injected...
    assert stats["resolved as ours"] > 0 and stats["write retries"] > 0  # ...and resolved, not reported
    summary = {
        "jobs": 100,
        "commits": len(commits),
        "seconds": round(elapsed, 1),
        "faults": {
            "lost replies": lost_rule.fired,
            "503 or refused writes": failed_rule.fired,
            "failed reads": read_rule.fired,
        },
        "proxy": dict(fault_proxy.counts),
        "stats": dict(stats),
        "per worker": {r["worker"]: len(r["done"]) for r in reports},
    }
    print("\ndrain through the fault proxy:", json.dumps(summary))
