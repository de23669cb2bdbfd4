#!/usr/bin/env python
"""Benchmark of the object-store log (S3 API): requests per claim, claim rate, opening cost.

    python benchmarks/objectstore.py [--quick] [--json out.json] [--endpoint URL [--bucket NAME]]

By default it starts its own S3-compatible server (moto, ``python -m
moto.server``) on loopback, so nothing leaves the machine, and measures in one
run:

1. HTTP requests per claim and per worker cycle when nobody else writes
   (``with exp.next_job() as job: ...``), counted both in the client (every
   obstore call Schedy's object store makes) and on the server (moto's request
   log, one line per request, which also shows the status codes).
2. Worker cycles per second with 1, 2 and 4 worker processes sharing one
   experiment (each process its own ``SchedyDB`` on the same ``s3://`` URL, a
   ``RandomSearch`` so jobs are sampled), with the races lost (conditional puts
   refused) and the requests each cycle took.
3. The time and the requests needed to open an experiment (a fresh
   ``SchedyDB``, ``get_experiment`` and ``all_jobs``) of N commits, with and
   without a snapshot near the end of the log; the local file store is measured
   the same way as a peer.

Every figure is measured in the same run on the same machine; nothing is
asserted. ``--endpoint`` uses an S3-compatible server that is already running
(credentials from the usual AWS_* variables); then only client-side request
counts are available, and buckets are created with an unsigned PUT unless
``--bucket`` names an existing one (the run then works under a fresh prefix).
"""

import argparse
import asyncio
import collections
import datetime
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmark the checkout this script lives in

import obstore  # noqa: E402
from machine import describe, start_moto, stop_process  # noqa: E402 - benchmarks/machine.py, beside this script
from obstore.store import from_url  # noqa: E402

import schedy  # noqa: E402
from schedy.adapters import objectstore as objectstore_module  # noqa: E402
from schedy.errors import ConflictError  # noqa: E402
from schedy.random import Choice, LogUniform  # noqa: E402

DISTRIBUTIONS = {"lr": LogUniform(1e-5, 1e-1), "layers": Choice([1, 2, 3, 4])}
WORK_MS = 10  # the second series of the full run: each job "trains" this long (a sleep)
SNAPSHOT_TAIL = 25  # the "with snapshot" logs end this many commits after their newest snapshot
NO_SNAPSHOTS = 10**9  # the snapshot_every of databases opened "without snapshot": none is due, none is expected


# ---------------------------------------------------------------------------------------------------------------
# Counting requests in the client: a stand-in for the obstore module inside schedy.adapters.objectstore.


class _Counts:
    def __init__(self):
        self.counts = collections.Counter()
        self.lock = threading.Lock()

    def add(self, kind):
        with self.lock:
            self.counts[kind] += 1

    def take(self):
        """Return the counts since the last take, and start again from zero."""
        with self.lock:
            out, self.counts = self.counts, collections.Counter()
        return out


CLIENT = _Counts()


class _CountingObstore:
    """Counts each call Schedy's object store makes (LIST, GET, PUT, refused PUT, DELETE), then makes it.

    One ``list`` call is one LIST request unless the listing holds more than
    one page (1000 objects on S3); the server-side count shows the pages.
    """

    def __getattr__(self, name):
        return getattr(obstore, name)

    def put(self, store, path, *args, **kwargs):
        try:
            result = obstore.put(store, path, *args, **kwargs)
        except Exception as e:
            CLIENT.add("PUT refused" if objectstore_module._conflict(e) else "PUT error")
            raise
        CLIENT.add("PUT")
        return result

    def get(self, store, path, *args, **kwargs):
        CLIENT.add("GET")
        return obstore.get(store, path, *args, **kwargs)

    def list(self, store, *args, **kwargs):
        CLIENT.add("LIST")
        return obstore.list(store, *args, **kwargs)

    def list_with_delimiter(self, store, *args, **kwargs):
        CLIENT.add("LIST")
        return obstore.list_with_delimiter(store, *args, **kwargs)

    def delete(self, store, *args, **kwargs):
        CLIENT.add("DELETE")
        return obstore.delete(store, *args, **kwargs)


def install_counting():
    objectstore_module.obstore = _CountingObstore()


KINDS = ("LIST", "GET", "PUT", "PUT refused", "DELETE")


def per(counts, n):
    """Counts divided by ``n``, for every kind of request (zeros included)."""
    return {k: round(counts.get(k, 0) / n, 3) for k in KINDS}


# ---------------------------------------------------------------------------------------------------------------
# The local S3 server and its request log.

_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours the lines of 4xx and 5xx answers, even in a pipe


def classify(method, path, status):
    """The kind of one request of the server log: LIST, GET, PUT, PUT refused, DELETE, or another."""
    target, _, query = path.partition("?")
    has_key = "/" in target.strip("/")
    if method == "GET":
        return "LIST" if "list-type" in query or not has_key else "GET"
    if method == "PUT":
        if not has_key:
            return "CREATE BUCKET"
        return "PUT refused" if status in (409, 412) else "PUT"
    if method == "DELETE" or (method == "POST" and "delete" in query):
        return "DELETE"
    return method


def _process_cpu(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


class Server:
    """A moto S3 server started here on loopback, whose request log is read line by line."""

    def __init__(self):
        self.entries = []  # (method, path, status), in the order the server logged them
        self.cond = threading.Condition()
        t0 = time.perf_counter()
        self.proc, self.endpoint = start_moto(stderr=subprocess.PIPE)
        threading.Thread(target=self._read, daemon=True).start()
        self.start_seconds = time.perf_counter() - t0

    def _read(self):
        for line in self.proc.stderr:
            m = _LINE.search(_COLOUR.sub("", line))
            if m:
                with self.cond:
                    self.entries.append((m["method"], m["path"], int(m["status"])))
                    self.cond.notify_all()

    def mark(self):
        """Send a marker request and wait until the log shows it; return its index (every earlier request is logged)."""
        token = f"schedy-bench-marker-{secrets.token_hex(6)}"
        try:
            urllib.request.urlopen(f"{self.endpoint}/{token}", timeout=10)
        except urllib.error.HTTPError:
            pass  # 404: the marker is not a bucket, and that is fine
        deadline = time.monotonic() + 10
        with self.cond:
            while True:
                for i in range(len(self.entries) - 1, -1, -1):
                    if token in self.entries[i][1]:
                        return i
                if time.monotonic() > deadline:
                    raise RuntimeError("the server log did not show the marker request")
                self.cond.wait(0.5)

    def counts(self, start, end):
        with self.cond:
            entries = self.entries[start + 1 : end]
        return collections.Counter(classify(*e) for e in entries)

    def cpu_seconds(self):
        """CPU time the server process has used so far (Linux; None elsewhere)."""
        return _process_cpu(self.proc.pid)

    def refused_log_puts(self, start, end):
        with self.cond:
            entries = self.entries[start + 1 : end]
        return sum(1 for m, p, s in entries if m == "PUT" and s in (409, 412) and "/log/" in p)

    def double_creates(self, start, end):
        """Log objects the server accepted more than one write for (a put-if-absent that did not hold)."""
        with self.cond:
            entries = self.entries[start + 1 : end]
        accepted = collections.Counter(p for m, p, s in entries if m == "PUT" and "/log/" in p and s < 300)
        return sorted(p for p, n in accepted.items() if n > 1)

    def stop(self):
        stop_process(self.proc)


class NoServer:
    """An endpoint given with --endpoint: no request log to read."""

    start_seconds = None

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def mark(self):
        return None

    def counts(self, start, end):
        return None

    def refused_log_puts(self, start, end):
        return None

    def cpu_seconds(self):
        return None

    def double_creates(self, start, end):
        return None

    def stop(self):
        pass


class Locations:
    """Fresh database locations: one new bucket per phase (or a new prefix in --bucket)."""

    def __init__(self, endpoint, bucket=None):
        self.endpoint, self.bucket = endpoint, bucket
        self.run = secrets.token_hex(4)
        self.used = 0

    def new(self, phase):
        self.used += 1
        phase = f"{phase}-{self.used}"
        if self.bucket:
            return f"s3://{self.bucket}/schedy-bench-{self.run}/{phase}"
        name = f"schedy-bench-{phase}-{self.run}".lower()
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/{name}", method="PUT"), timeout=10)
        return f"s3://{name}/db"


# ---------------------------------------------------------------------------------------------------------------
# Helpers.


def version(exp):
    return exp._view.state.version


def cycle(exp, work=0.0):
    """One worker cycle, as the docs write it: claim the next job, work (``work`` seconds), report DONE."""
    with exp.next_job() as job:
        if work:
            time.sleep(work)
        job.results["loss"] = job.hyperparameters["lr"] * job.hyperparameters["layers"]


def build(db, name, n):
    """Write an experiment of exactly ``n`` commits (worker cycles, then one add_job if one commit is left)."""
    exp = db.add_experiment(schedy.RandomSearch(name, DISTRIBUTIONS, seed=7))
    while version(exp) < n:
        if n - version(exp) >= 2:
            cycle(exp)
        else:
            exp.add_job({"lr": 0.01, "layers": 1})
    return exp


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def ms(seconds):
    return None if seconds is None else round(seconds * 1000, 2)


def machine():
    return describe(["obstore", "moto"])


# ---------------------------------------------------------------------------------------------------------------
# 0. What one request costs on this server (the floor under every other figure).


def measure_baseline(locations, n):
    url = locations.new("baseline")
    parsed = urlparse(url)
    store = from_url(f"{parsed.scheme}://{parsed.netloc}")
    prefix = parsed.path.strip("/")
    obstore.put(store, f"{prefix}/probe", b"x" * 300)
    for i in range(10):
        obstore.put(store, f"{prefix}/dir/{i:020d}.json", b"x" * 300)
    out = {}

    def timed(label, fn):
        t0 = time.perf_counter()
        for i in range(n):
            fn(i)
        out[label] = ms((time.perf_counter() - t0) / n)

    timed("GET", lambda i: obstore.get(store, f"{prefix}/probe").bytes())
    timed("PUT (create)", lambda i: obstore.put(store, f"{prefix}/new/{i}", b"x" * 300, mode="create"))
    timed("LIST (10 objects)", lambda i: list(obstore.list(store, f"{prefix}/dir/")))
    return out


# ---------------------------------------------------------------------------------------------------------------
# 1. Requests per claim and per cycle, one worker alone.


def measure_requests(locations, server, cycles):
    url = locations.new("claims")
    db = schedy.SchedyDB(url)
    exp = db.add_experiment(schedy.RandomSearch("claims", DISTRIBUTIONS, seed=1))
    for _ in range(5):
        cycle(exp)  # warm up: the first claims also create the stream's first objects
    CLIENT.take()

    # The documented cycle, `with exp.next_job() as job:`, taken apart into its three calls.
    steps = {
        "next_job (the claim)": collections.Counter(),
        "with-block entry (Job.__enter__)": collections.Counter(),
        "with-block exit (Job.put of DONE)": collections.Counter(),
    }
    names = list(steps)
    start = server.mark()
    t0 = time.perf_counter()
    for _ in range(cycles):
        job = exp.next_job()
        steps[names[0]] += CLIENT.take()
        job.__enter__()
        steps[names[1]] += CLIENT.take()
        job.results["loss"] = job.hyperparameters["lr"]
        job.__exit__(None, None, None)
        steps[names[2]] += CLIENT.take()
    seconds = time.perf_counter() - t0
    end = server.mark()
    server_counts = server.counts(start, end)
    total = sum(steps.values(), collections.Counter())

    # The same work without the with-block: next_job, then job.put() of DONE.
    start2 = server.mark()
    t1 = time.perf_counter()
    for _ in range(cycles):
        job = exp.next_job()
        job.results["loss"] = job.hyperparameters["lr"]
        job.status = schedy.Job.DONE
        job.put()
    seconds2 = time.perf_counter() - t1
    end2 = server.mark()
    explicit = CLIENT.take()
    server2 = server.counts(start2, end2)
    return {
        "cycles": cycles,
        "per_step_client": {name: per(c, cycles) for name, c in steps.items()},
        "per_cycle_client": per(total, cycles),
        "per_cycle_server": None if server_counts is None else per(server_counts, cycles),
        "server_other_requests": None
        if server_counts is None
        else {k: v for k, v in server_counts.items() if k not in KINDS},
        "cycle_ms": ms(seconds / cycles),
        "explicit_put_cycle": {
            "per_cycle_client": per(explicit, cycles),
            "per_cycle_server": None if server2 is None else per(server2, cycles),
            "cycle_ms": ms(seconds2 / cycles),
        },
    }


# ---------------------------------------------------------------------------------------------------------------
# 2. Cycles per second with several worker processes.


class _SleepCounter:
    """Stands in for the time module inside schedy.adapters.stream: adds up the backoff sleeps after lost races."""

    def __init__(self):
        self.slept = 0.0

    def __getattr__(self, name):
        return getattr(time, name)

    def sleep(self, seconds):
        self.slept += seconds
        time.sleep(seconds)


def worker_main(url, name, work_ms):
    """A worker process: open, say READY, wait for the start time, run cycles until the end time, print the figures."""
    from schedy.adapters import stream

    install_counting()
    backoff = stream.time = _SleepCounter()
    db = schedy.SchedyDB(url)
    exp = db.get_experiment(name)
    work = float(work_ms) / 1000
    print("READY", flush=True)
    start_at, end_at = map(float, sys.stdin.readline().split())
    time.sleep(max(0.0, start_at - time.time()))
    CLIENT.take()
    backoff.slept = 0.0
    latencies = []
    cpu0 = time.process_time()
    began = time.time()
    gave_up = []  # ConflictError: a call lost MAX_ATTEMPTS races in a row (the job is left RUNNING, not DONE)
    while time.time() < end_at:
        t0 = time.perf_counter()
        try:
            cycle(exp, work)
        except ConflictError:
            gave_up.append(round(time.time() - start_at, 2))
            continue
        latencies.append(time.perf_counter() - t0)
    finished = time.time()
    print(
        json.dumps(
            {
                "cycles": len(latencies),
                "began": began,
                "finished": finished,
                "cpu_seconds": time.process_time() - cpu0,
                "latencies": latencies,
                "backoff_seconds": backoff.slept,
                "gave_up_at": gave_up,
                "counts": dict(CLIENT.take()),
            }
        ),
        flush=True,
    )


def measure_throughput(locations, server, processes, window, work_ms=0):
    rows = []
    for n in processes:
        url = locations.new(f"rate{n}")
        db = schedy.SchedyDB(url)
        db.add_experiment(schedy.RandomSearch("claims", DISTRIBUTIONS, seed=2))
        start = server.mark()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "--worker", url, "claims", str(work_ms)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(n)
        ]
        try:
            for p in procs:
                line = p.stdout.readline()
                if line.strip() != "READY":
                    raise RuntimeError(f"a worker process failed to start (said {line!r})")
            start_at = time.time() + 0.3
            server_cpu0 = server.cpu_seconds()
            for p in procs:
                p.stdin.write(f"{start_at} {start_at + window}\n")
                p.stdin.flush()
            results = [json.loads(p.stdout.readline()) for p in procs]
            server_cpu1 = server.cpu_seconds()
            for p in procs:
                p.wait(timeout=60)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
        end = server.mark()
        cycles = sum(r["cycles"] for r in results)
        elapsed = max(r["finished"] for r in results) - start_at
        counts = sum((collections.Counter(r["counts"]) for r in results), collections.Counter())
        latencies = [x for r in results for x in r["latencies"]]
        commits = counts[
            "PUT"
        ]  # every accepted put of the window is a commit (no snapshot falls in a window this short)
        rows.append(
            {
                "processes": n,
                "work_ms": work_ms,
                "seconds": round(elapsed, 3),
                "cycles": cycles,
                "cycles_per_s": round(cycles / elapsed, 1),
                "cycles_per_s_per_process": [round(r["cycles"] / (r["finished"] - start_at), 1) for r in results],
                "commits": commits,
                "put_attempts": counts["PUT"] + counts["PUT refused"],
                "lost_races": counts["PUT refused"],
                "lost_races_per_commit": round(counts["PUT refused"] / max(commits, 1), 3),
                "lost_races_server": server.refused_log_puts(start, end),
                "log_objects_written_twice": server.double_creates(start, end),
                "requests_per_cycle_client": per(counts, max(cycles, 1)),
                "cycle_ms_p50": ms(percentile(latencies, 0.5)),
                "cycle_ms_p95": ms(percentile(latencies, 0.95)),
                "client_cpu_ms_per_cycle": ms(sum(r["cpu_seconds"] for r in results) / max(cycles, 1)),
                "server_cpu_ms_per_cycle": None
                if server_cpu0 is None or server_cpu1 is None
                else ms((server_cpu1 - server_cpu0) / max(cycles, 1)),
                "server_busy": None
                if server_cpu0 is None or server_cpu1 is None
                else round((server_cpu1 - server_cpu0) / elapsed, 2),  # share of one core (moto is one Python process)
                "backoff_ms_per_cycle": ms(sum(r["backoff_seconds"] for r in results) / max(cycles, 1)),
                "cycles_per_process": [r["cycles"] for r in results],
                "per_process": [
                    {
                        "cycles": r["cycles"],
                        "lost_races": r["counts"].get("PUT refused", 0),
                        "GET": r["counts"].get("GET", 0),
                        "LIST": r["counts"].get("LIST", 0),
                        "backoff_s": round(r["backoff_seconds"], 2),
                    }
                    for r in results
                ],
                "cycle_ms_max": ms(max(latencies, default=None)),
                "gave_up": sum(len(r["gave_up_at"]) for r in results),
                "gave_up_at_s": sorted(x for r in results for x in r["gave_up_at"]),
            }
        )
    base = rows[0]["cycles_per_s"]
    for row in rows:
        row["ratio_vs_1"] = round(row["cycles_per_s"] / base, 2) if base else None
    return rows


# ---------------------------------------------------------------------------------------------------------------
# 3. Opening an experiment of N commits, with and without a snapshot.


async def _copy(source, target, paths, mapping, concurrency=16):
    sem = asyncio.Semaphore(concurrency)

    async def one(path):
        async with sem:
            data = bytes((await obstore.get_async(source, path)).bytes())
            await obstore.put_async(target, mapping(path), data)

    await asyncio.gather(*(one(p) for p in paths))


def _open_once(url, name, server, **kwargs):
    """Time SchedyDB(url) (its probe of conditional writes), then get_experiment + all_jobs, each with its requests."""
    marks = [server.mark()] if server is not None else [None]
    CLIENT.take()
    t0 = time.perf_counter()
    db = schedy.SchedyDB(url, **kwargs)
    t1 = time.perf_counter()
    db_client = CLIENT.take()
    if server is not None:
        marks.append(server.mark())
    CLIENT.take()
    t2 = time.perf_counter()
    exp = db.get_experiment(name)
    jobs = exp.all_jobs()
    t3 = time.perf_counter()
    client = CLIENT.take()
    if server is not None:
        marks.append(server.mark())
    return {
        "db_seconds": t1 - t0,
        "open_seconds": t3 - t2,
        "jobs": len(jobs),
        "snapshot": exp._view.snapshot,
        "client": client,
        "db_client": db_client,
        "server": None if server is None else server.counts(marks[1], marks[2]),
        "db_server": None if server is None else server.counts(marks[0], marks[1]),
    }


def _open_figures(runs):
    best = min(runs, key=lambda r: r["open_seconds"])
    out = {
        "open_s": round(best["open_seconds"], 4),
        "repeats": len(runs),
        "schedy_db_s": round(min(r["db_seconds"] for r in runs), 4),
        "jobs": best["jobs"],
        "snapshot": best["snapshot"],
    }
    if best["server"] is not None or best["client"]:
        out["requests_client"] = {k: best["client"].get(k, 0) for k in KINDS if best["client"].get(k, 0)}
        out["schedy_db_requests_client"] = {
            k: best["db_client"].get(k, 0) for k in KINDS if best["db_client"].get(k, 0)
        }
        if best["server"] is not None:
            out["requests_server"] = dict(sorted(best["server"].items()))
            out["schedy_db_requests_server"] = dict(sorted(best["db_server"].items()))
    return out


def repeats_for(n):
    return max(1, min(3, 2000 // n))


def measure_opening_s3(locations, server, sizes):
    rows = []
    for n in sizes:
        every = n - SNAPSHOT_TAIL
        mem_name = f"bench-open-{n}-{secrets.token_hex(3)}"
        t0 = time.perf_counter()
        build(schedy.SchedyDB(f"memory://{mem_name}/db", snapshot_every=every), "big", n)
        source = objectstore_module.memory_store(mem_name)
        paths = [m["path"] for batch in obstore.list(source, "db/experiments/") for m in batch]
        url = locations.new(f"open{n}")
        parsed = urlparse(url)
        target = from_url(f"{parsed.scheme}://{parsed.netloc}")
        prefix = parsed.path.strip("/")

        def mapping(path, prefix=prefix):
            return prefix + path[len("db") :]

        log_paths = [p for p in paths if "/log/" in p]
        snapshot_paths = [p for p in paths if "/snapshots/" in p]
        asyncio.run(_copy(source, target, log_paths, mapping))
        metas = [m for batch in obstore.list(source, "db/experiments/") for m in batch]
        size = sum(m["size"] for m in metas if "/log/" in m["path"])
        snapshot_size = max((m["size"] for m in metas if m["path"] == max(snapshot_paths, default=None)), default=0)
        build_s = time.perf_counter() - t0
        without = [_open_once(url, "big", server, snapshot_every=NO_SNAPSHOTS) for _ in range(repeats_for(n))]
        asyncio.run(_copy(source, target, snapshot_paths, mapping))
        with_ = [_open_once(url, "big", server, snapshot_every=every) for _ in range(3)]
        objectstore_module._MEMORY.pop(mem_name, None)
        last = mapping(max(log_paths))
        t1 = time.perf_counter()
        for _ in range(10):
            list(obstore.list(target, last.rsplit("/", 1)[0] + "/", offset=last))
        tail_list_ms = ms((time.perf_counter() - t1) / 10)
        a, b = _open_figures(without), _open_figures(with_)
        rows.append(
            {
                "commits": n,
                "log_bytes": size,
                "snapshot_every": every,
                "snapshots": len(snapshot_paths),
                "snapshot_bytes": snapshot_size,
                "tail_after_snapshot": n - every * (n // every),
                "empty_list_after_last_commit_ms": tail_list_ms,
                "without_snapshot": a,
                "with_snapshot": b,
                "ratio_without_over_with": round(a["open_s"] / b["open_s"], 1),
                "ms_per_commit_without_snapshot": round(1000 * a["open_s"] / n, 3),
                "build_and_upload_s": round(build_s, 1),
            }
        )
    return rows


def measure_opening_file(sizes, tmp):
    rows = []
    for n in sizes:
        every = n - SNAPSHOT_TAIL
        path = Path(tmp) / f"open{n}"
        build(schedy.SchedyDB(path, durable=False, snapshot_every=every), "big", n)
        with_ = [_open_once(path, "big", None, snapshot_every=every) for _ in range(5)]
        snapshots = list(path.glob("experiments/*/snapshot.json"))
        snapshot_size = sum(s.stat().st_size for s in snapshots)
        for s in snapshots:
            s.unlink()
        without = [_open_once(path, "big", None, snapshot_every=NO_SNAPSHOTS) for _ in range(5)]
        size = sum(p.stat().st_size for p in path.glob("experiments/*/log.jsonl"))
        a, b = _open_figures(without), _open_figures(with_)
        for d in (a, b):
            d.pop("requests_client", None)
            d.pop("schedy_db_requests_client", None)
        rows.append(
            {
                "commits": n,
                "log_bytes": size,
                "snapshot_every": every,
                "snapshots": len(snapshots),
                "snapshot_bytes": snapshot_size,
                "tail_after_snapshot": n - every * (n // every),
                "without_snapshot": a,
                "with_snapshot": b,
                "ratio_without_over_with": round(a["open_s"] / b["open_s"], 1),
                "ms_per_commit_without_snapshot": round(1000 * a["open_s"] / n, 4),
            }
        )
        shutil.rmtree(path, ignore_errors=True)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Output.


def table(headers, rows):
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + line for line in lines)


def fmt_counts(d):
    return " ".join(f"{k}={v:g}" for k, v in d.items() if v) or "none"


def report(result):
    m = result["machine"]
    print()
    print(
        f"Schedy object-store benchmark, {result['date']} ({'quick' if result['quick'] else 'full'} run, "
        f"{result['run_seconds']} s)"
    )
    print(
        f"  machine: {m['usable_cpus']} usable CPUs of {m['cpu_count']} ({m['cpu']}), {m['memory_gib']} GiB, "
        f"{m['implementation']} {m['python']}, {m['platform']}"
    )
    print(f"  server: {result['server']}; schedy {m['schedy_commit']}, obstore {m['obstore']}, moto {m['moto']}")
    print(f"  command: {result['command']}")

    print("\nOne request on this server (ms, sequential, from this process):")
    print("  " + ", ".join(f"{k} {v}" for k, v in result["baseline_ms"].items()))

    r = result["requests_per_claim"]
    print(f"\n1. Requests per claim, one worker alone ({r['cycles']} cycles of `with exp.next_job() as job:`)")
    rows = [[name] + [c[k] for k in KINDS] for name, c in r["per_step_client"].items()]
    rows.append(["whole cycle (client count)"] + [r["per_cycle_client"][k] for k in KINDS])
    if r["per_cycle_server"] is not None:
        rows.append(["whole cycle (server log)"] + [r["per_cycle_server"][k] for k in KINDS])
    print(table(["call"] + list(KINDS), rows))
    e = r["explicit_put_cycle"]
    print(
        f"  cycle time {r['cycle_ms']} ms. Without the with-block (next_job, then job.put()): "
        f"{fmt_counts(e['per_cycle_client'])} per cycle, {e['cycle_ms']} ms"
    )

    for key in ("throughput", "throughput_with_work"):
        if not result.get(key):
            continue
        work = result[key][0]["work_ms"]
        print(
            f"\n2. Worker cycles per second on one experiment (cycle = claim, "
            f"{'no work' if not work else f'{work:g} ms of work (sleep)'}, report DONE)"
        )
        rows = [
            [
                t["processes"],
                t["cycles"],
                t["seconds"],
                t["cycles_per_s"],
                t["ratio_vs_1"],
                t["commits"],
                t["lost_races"],
                t["lost_races_server"],
                t["cycle_ms_p50"],
                t["cycle_ms_p95"],
                t["backoff_ms_per_cycle"],
                t["client_cpu_ms_per_cycle"],
                t["server_cpu_ms_per_cycle"],
                t["server_busy"],
            ]
            for t in result[key]
        ]
        print(
            table(
                [
                    "procs",
                    "cycles",
                    "s",
                    "cycles/s",
                    "x 1 proc",
                    "commits",
                    "lost races",
                    "(server log)",
                    "p50 ms",
                    "p95 ms",
                    "backoff ms",
                    "client CPU ms",
                    "server CPU ms",
                    "server busy",
                ],
                rows,
            )
        )
        print("  (backoff sleep and CPU time per cycle; server busy = the server's CPU time / wall time, of one core)")
        for t in result[key]:
            each = ", ".join(f"{q['cycles']}/{q['lost_races']}/{q['backoff_s']}" for q in t["per_process"])
            twice = t.get("log_objects_written_twice")
            print(
                f"  {t['processes']} process(es): per process (cycles/lost races/backoff s) {each}; longest cycle "
                f"{t['cycle_ms_max']} ms; calls that gave up (ConflictError) {t['gave_up']}"
                + ("" if twice is None else f"; log objects the server accepted twice {len(twice)}")
                + f"; requests per cycle: {fmt_counts(t['requests_per_cycle_client'])}"
            )

    for label, key in (("object store (S3 API)", "opening_s3"), ("local file store", "opening_file")):
        print(
            f"\n3. Opening an experiment, {label}: fresh SchedyDB, then get_experiment + all_jobs timed "
            f"(best of the repeats; 'snap' = newest snapshot {SNAPSHOT_TAIL} commits before the end)"
        )
        rows = []
        for o in result[key]:
            a, b = o["without_snapshot"], o["with_snapshot"]
            row = [
                o["commits"],
                o["log_bytes"],
                o["snapshot_bytes"],
                a["open_s"],
                b["open_s"],
                o["ratio_without_over_with"],
                o["ms_per_commit_without_snapshot"],
                b["snapshot"],
            ]
            if key == "opening_s3":
                row += [
                    fmt_counts(a.get("requests_server") or a.get("requests_client") or {}),
                    fmt_counts(b.get("requests_server") or b.get("requests_client") or {}),
                    o["empty_list_after_last_commit_ms"],
                ]
            rows.append(row + [a["schedy_db_s"]])
        headers = ["commits", "log bytes", "snap bytes", "no snap s", "snap s", "ratio", "ms/commit", "snapshot"]
        if key == "opening_s3":
            headers += ["requests, no snap", "requests, snap", "empty LIST ms"]
        print(table(headers + ["SchedyDB() s"], rows))
        if key == "opening_s3" and result[key]:
            o = result[key][-1]["with_snapshot"]
            print(
                f"  SchedyDB() itself (probe of conditional writes): "
                f"{fmt_counts(o.get('schedy_db_requests_server') or o.get('schedy_db_requests_client') or {})}"
            )


# ---------------------------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller logs and shorter windows (about 20 s on 2 CPUs)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    parser.add_argument("--endpoint", help="use this running S3-compatible server instead of starting moto")
    parser.add_argument("--bucket", help="with --endpoint: an existing bucket to work in (under a fresh prefix)")
    parser.add_argument("--worker", nargs=3, metavar=("URL", "NAME", "WORK_MS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)

    t_run = time.perf_counter()
    quick = args.quick
    sizes = (100, 1000) if quick else (100, 1000, 3000)
    window = 2.0 if quick else 3.0
    claim_cycles = 30 if quick else 100
    baseline_n = 30 if quick else 100

    if args.endpoint:
        server = NoServer(args.endpoint)
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint
        if args.endpoint.startswith("http://"):
            os.environ["AWS_ALLOW_HTTP"] = "true"
        os.environ.setdefault("AWS_REGION", "us-east-1")
        if not os.environ.get("AWS_ACCESS_KEY_ID"):  # a local emulator takes any key; a real store needs yours
            os.environ.update({"AWS_ACCESS_KEY_ID": "schedy-bench", "AWS_SECRET_ACCESS_KEY": "schedy-bench"})
        described = f"{args.endpoint} (given with --endpoint; server-side counts unavailable)"
    else:
        server = Server()
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": server.endpoint,
                "AWS_ACCESS_KEY_ID": "schedy-bench",
                "AWS_SECRET_ACCESS_KEY": "schedy-bench",
                "AWS_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true",
            }
        )
        described = (
            f"moto S3 server over HTTP on loopback, started by this script in {server.start_seconds:.1f} s "
            f"(its own process)"
        )
    install_counting()
    tmp = tempfile.mkdtemp(prefix="schedy-bench-")
    try:
        locations = Locations(server.endpoint, args.bucket)
        phases = {}

        def phase(name, fn, *a):
            t0 = time.perf_counter()
            print(f"... {name}", file=sys.stderr, flush=True)
            out = fn(*a)
            phases[name] = round(time.perf_counter() - t0, 1)
            return out

        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": quick,
            "command": "python benchmarks/objectstore.py"
            + (" --quick" if quick else "")
            + (f" --endpoint {args.endpoint}" if args.endpoint else "")
            + (f" --bucket {args.bucket}" if args.bucket else ""),
            "machine": machine(),
            "server": described,
            "snapshot_tail": SNAPSHOT_TAIL,
        }
        result["baseline_ms"] = phase("baseline", measure_baseline, locations, baseline_n)
        result["requests_per_claim"] = phase("requests per claim", measure_requests, locations, server, claim_cycles)
        result["throughput"] = phase("cycles per second", measure_throughput, locations, server, (1, 2, 4), window)
        if not quick:
            result["throughput_with_work"] = phase(
                "cycles per second, with work", measure_throughput, locations, server, (1, 2, 4), window, WORK_MS
            )
        result["opening_s3"] = phase("opening (object store)", measure_opening_s3, locations, server, sizes)
        result["opening_file"] = phase("opening (file store)", measure_opening_file, sizes, tmp)
        result["phase_seconds"] = phases
        result["run_seconds"] = round(time.perf_counter() - t_run, 1)
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
