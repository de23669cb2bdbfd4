#!/usr/bin/env python
"""Contention on object storage: fairness and waits when workers race for every commit.

    python benchmarks/contention.py [--quick] [--processes 1,2,4,8] [--policies old,new] [--jobs 160]
                                    [--work-ms 0] [--repeats 1] [--json out.json]

It starts its own S3-compatible server (moto, ``python -m moto.server``) on
loopback, and for each number of processes and each retry policy (in turns,
so that drift of this shared machine hits every policy alike) it:

1. creates a fresh bucket and a ``ManualSearch`` of ``--jobs`` queued jobs;
2. starts that many worker processes, each with its own ``SchedyDB`` on the
   same ``s3://`` URL, which open the experiment, say READY and wait for one
   common start line on stdin;
3. lets them drain the queue with no work between jobs (``next_job()``, then
   the ``with`` block that reports DONE; ``--work-ms`` adds work), the harshest case for optimistic
   concurrency: a worker that has just won is up to date and goes straight
   back to the race;
4. checks the log afterwards: every job DONE, claimed exactly once, no
   double claim (``schedy.core.check.find_double_claims``).

Printed per run: claims/s (jobs / wall time from the start line to the last
worker's exit), jobs per process (min, max, and min / fair share, where the
fair share is jobs / processes), races lost per job (conditional puts
refused, counted in each worker, claims and reports together), the wait of
each ``next_job()`` call that returned a job (p50, p95, max), the longest
report, the longest call of any kind (including each worker's last
``next_job()``, which found the queue empty: a starved worker spends the
whole run in it), the time the workers slept in the retry policy (backoff and
courtesy), and the calls that gave up with ``ConflictError``. With
``--repeats``, a summary per number of processes and policy follows: median
claims/s, the worst min / fair share, the worst wait.

Policies (``--policies``, run in turns): ``old`` is the retry loop before
``schedy.adapters.stream.Backoff`` (retry at once, then a jittered exponential
backoff up to 1 s, and ``ConflictError`` after 50 lost races), reproduced
here; ``new`` is the default ``Backoff``; ``full-jitter`` is ``old`` without
the limit of 50; the others are ``Backoff`` with one parameter changed (see
``POLICIES``). ``--work-ms`` makes each job "train" (a sleep inside the
``with`` block). Nothing is asserted: it prints what it measured.
"""

import argparse
import collections
import datetime
import json
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmark the checkout this script lives in

from machine import describe, start_moto, stop_process  # noqa: E402 - benchmarks/machine.py, beside this script

import schedy  # noqa: E402
from schedy.adapters import stream  # noqa: E402
from schedy.adapters.naming import stream_key  # noqa: E402
from schedy.core import events as ev  # noqa: E402
from schedy.core.check import find_double_claims  # noqa: E402
from schedy.core.codec import decode_commit  # noqa: E402
from schedy.errors import ConflictError, NoJobError  # noqa: E402


class OldBackoff:
    """The retry loop before this policy: at once, then U(0, min(1 s, 2 ms * 2**k)); ConflictError at 50 lost races."""

    attempts = 50

    def __init__(self, sleep=time.sleep):
        self._sleep = sleep

    monotonic = staticmethod(time.monotonic)

    def before_call(self):
        pass

    def read(self, commits, me):
        pass

    def won(self, began):
        pass

    def lost(self, lost, began, started, label):
        if lost > 1:
            self._sleep(random.uniform(0, min(1.0, 0.002 * 2 ** (lost - 1))))
        if lost >= self.attempts:
            raise ConflictError(
                f"experiment {label!r}: gave up after {self.attempts} attempts lost to concurrent "
                "writers; nothing was written"
            )


class FullJitter(OldBackoff):
    """The same backoff with no limit on attempts (what removing MAX_ATTEMPTS alone would give)."""

    attempts = float("inf")


POLICIES = {
    "old": OldBackoff,
    "new": lambda sleep: stream.Backoff(sleep=sleep),
    # Variants measured while choosing "new": one change each.
    "full-jitter": FullJitter,
    "no-courtesy": lambda sleep: stream.Backoff(sleep=sleep, courtesy=0),  # losers' waits only
    "no-probe": lambda sleep: stream.Backoff(sleep=sleep, probe=False),
    "courtesy1": lambda sleep: stream.Backoff(sleep=sleep, courtesy=1.0),
    "courtesy4": lambda sleep: stream.Backoff(sleep=sleep, courtesy=4.0),
    "loser1": lambda sleep: stream.Backoff(sleep=sleep, loser=1.0),
}


# ---------------------------------------------------------------------------------------------------------------
# The worker process.


def worker_main(url, name, worker, policy, work_ms="0"):
    slept = [0.0]

    def sleep(seconds):
        slept[0] += seconds
        time.sleep(seconds)

    stream.make_backoff = lambda: POLICIES[policy](sleep)
    db = schedy.SchedyDB(url, worker=worker)
    lost = [0]
    real_append = db._store.append

    def append(*args, **kwargs):
        out = real_append(*args, **kwargs)
        if out is None:
            lost[0] += 1
        return out

    db._store.append = append
    exp = db.get_experiment(name)
    work = float(work_ms) / 1000
    print("READY", flush=True)
    sys.stdin.readline()
    began = time.time()
    claims, reports, gave_up, last = [], [], 0, None
    while True:
        t0 = time.perf_counter()
        try:
            job = exp.next_job()
        except NoJobError:
            last = time.perf_counter() - t0  # a starved worker spends the whole run in this call
            break
        except ConflictError:
            gave_up += 1
            continue
        t1 = time.perf_counter()
        try:
            with job:
                job.results["worker"] = worker
                if work:
                    time.sleep(work)  # "training"
        except ConflictError:
            gave_up += 1
        claims.append(t1 - t0)
        reports.append(time.perf_counter() - t1)
    print(
        json.dumps(
            {
                "worker": worker,
                "began": began,
                "finished": time.time(),
                "claims": claims,
                "reports": reports,
                "last_call": last,
                "lost": lost[0],
                "slept": slept[0],
                "gave_up": gave_up,
            }
        ),
        flush=True,
    )


# ---------------------------------------------------------------------------------------------------------------
# The harness.


class Moto:
    """A moto S3 server on loopback, started and stopped here."""

    def __init__(self):
        self.proc, self.endpoint = start_moto()

    def bucket(self):
        name = f"contention-{uuid.uuid4().hex[:12]}"
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{name}", method="PUT"), timeout=10)
        return f"s3://{name}/db"

    def stop(self):
        stop_process(self.proc)


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


def check_log(db, name, jobs):
    """Every job DONE and claimed exactly once, no double claim; return the claims per worker."""
    store = db._store
    records, _ = store.read(stream_key(name), store.initial_cursor())
    commits = [decode_commit(r) for r in records]
    problems = []
    if find_double_claims(commits):
        problems.append("double claim")
    claims = collections.Counter(e["job"] for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    if len(claims) != jobs or set(claims.values()) != {1}:
        problems.append(f"{len(claims)} jobs claimed, counts {sorted(set(claims.values()))}")
    all_jobs = db.get_experiment(name).all_jobs()
    done = sum(1 for j in all_jobs if j.status == schedy.Job.DONE)
    if done != jobs:
        problems.append(f"{done} of {jobs} jobs DONE")
        for j in all_jobs:
            if j.status != schedy.Job.DONE:
                history = [
                    (c.version, c.worker, [e for e in c.events if e.get("job") == j.job_id])
                    for c in commits
                    if any(e.get("job") == j.job_id for e in c.events)
                ]
                print(f"job {j.job_id} is {j.status}: {history}", file=sys.stderr)
    by_worker = collections.Counter(c.worker for c in commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
    return problems, by_worker


def run(server, processes, policy, jobs, work_ms=0):
    url = server.bucket()
    db = schedy.SchedyDB(url)
    exp = db.add_experiment(schedy.ManualSearch("drain"))
    for i in range(jobs):
        exp.add_job({"i": i})
    workers = [f"w{n}" for n in range(processes)]
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, "drain", w, policy, str(work_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in workers
    ]
    try:
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "READY":
                raise RuntimeError(f"a worker process failed to start (said {line!r})")
        start = time.time()
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [json.loads(p.stdout.readline()) for p in procs]
        for p in procs:
            p.wait(timeout=60)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    elapsed = max(r["finished"] for r in results) - start
    problems, by_worker = check_log(db, "drain", jobs)
    per_process = [by_worker.get(w, 0) for w in workers]
    claims = [x for r in results for x in r["claims"]]
    reports = [x for r in results for x in r["reports"]]
    fair = jobs / processes
    return {
        "processes": processes,
        "policy": policy,
        "jobs": jobs,
        "work_ms": work_ms,
        "seconds": round(elapsed, 2),
        "claims_per_s": round(jobs / elapsed, 1),
        "jobs_per_process": per_process,
        "min_jobs": min(per_process),
        "max_jobs": max(per_process),
        "min_share": round(min(per_process) / fair, 2),
        "max_share": round(max(per_process) / fair, 2),
        "lost_races": sum(r["lost"] for r in results),
        "lost_per_job": round(sum(r["lost"] for r in results) / jobs, 2),
        "claim_ms_p50": ms(percentile(claims, 0.5)),
        "claim_ms_p95": ms(percentile(claims, 0.95)),
        "claim_ms_max": ms(max(claims, default=None)),
        "report_ms_max": ms(max(reports, default=None)),
        "call_ms_max": ms(max([*claims, *reports, *(r["last_call"] for r in results if r["last_call"] is not None)])),
        "slept_s": round(sum(r["slept"] for r in results), 2),
        "gave_up": sum(r["gave_up"] for r in results),
        "problems": problems,
    }


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def report(rows):
    headers = [
        "procs",
        "policy",
        "claims/s",
        "jobs/process min-max",
        "min/fair",
        "lost/job",
        "claim p50 ms",
        "p95 ms",
        "max ms",
        "report max ms",
        "any call max ms",
        "slept s",
        "gave up",
        "checks",
    ]
    body = [
        [
            r["processes"],
            r["policy"],
            r["claims_per_s"],
            f"{r['min_jobs']}-{r['max_jobs']}",
            r["min_share"],
            r["lost_per_job"],
            r["claim_ms_p50"],
            r["claim_ms_p95"],
            r["claim_ms_max"],
            r["report_ms_max"],
            r["call_ms_max"],
            r["slept_s"],
            r["gave_up"],
            "; ".join(r["problems"]) or "ok",
        ]
        for r in rows
    ]
    return table(headers, body)


def summary(rows, policies):
    groups = collections.defaultdict(list)
    for r in rows:
        groups[r["processes"], r["policy"]].append(r)
    headers = [
        "procs",
        "policy",
        "runs",
        "claims/s median",
        "worst min/fair",
        "lost/job mean",
        "worst claim max ms",
        "worst report max ms",
        "worst call max ms",
        "gave up",
        "checks",
    ]
    body = []
    for (n, policy), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], policies.index(kv[0][1]))):
        rates = sorted(r["claims_per_s"] for r in rs)
        body.append(
            [
                n,
                policy,
                len(rs),
                rates[len(rates) // 2],
                min(r["min_share"] for r in rs),
                round(sum(r["lost_per_job"] for r in rs) / len(rs), 2),
                max(r["claim_ms_max"] for r in rs),
                max(r["report_ms_max"] for r in rs),
                max(r["call_ms_max"] for r in rs),
                sum(r["gave_up"] for r in rs),
                "ok" if not any(r["problems"] for r in rs) else "PROBLEMS",
            ]
        )
    return table(headers, body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default="1,2,4,8")
    parser.add_argument("--policies", default="old,new")
    parser.add_argument("--jobs", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work-ms", type=float, default=0, help="time each job 'trains' (a sleep); default none")
    parser.add_argument("--quick", action="store_true", help="2, 8 processes, 80 jobs")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    processes = [2, 8] if args.quick else [int(n) for n in args.processes.split(",")]
    jobs = 80 if args.quick else args.jobs
    policies = args.policies.split(",")
    for p in policies:
        if p not in POLICIES:
            parser.error(f"unknown policy {p!r}; known: {', '.join(POLICIES)}")
    machine = describe(["obstore", "moto"])
    print(machine)
    server = Moto()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": "schedy-bench",
            "AWS_SECRET_ACCESS_KEY": "schedy-bench",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
    )
    rows = []
    try:
        for repeat in range(args.repeats):
            for n in processes:
                for policy in policies:
                    row = run(server, n, policy, jobs, args.work_ms)
                    row["repeat"] = repeat
                    rows.append(row)
                    print(report([row]).splitlines()[-1] if len(rows) > 1 else report([row]), flush=True)
    finally:
        server.stop()
    print()
    work = f"{args.work_ms:g} ms of work per job" if args.work_ms else "no work between jobs"
    print(f"{jobs} jobs, {work}, moto S3 on loopback; {args.repeats} repeat(s), policies in turns")
    print(report(sorted(rows, key=lambda r: (r["processes"], policies.index(r["policy"]), r["repeat"]))))
    if args.repeats > 1:
        print()
        print(summary(rows, policies))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"date": datetime.date.today().isoformat(), "machine": machine, "work_ms": args.work_ms, "rows": rows},
                indent=1,
            )
        )
        print(f"wrote {args.json}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(*sys.argv[2:7])
    else:
        main()
