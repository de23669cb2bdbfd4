#!/usr/bin/env python
"""Schedy's local file store against Optuna's JournalStorage (JournalFileBackend), and against the disk.

    python benchmarks/optuna_journal.py [--quick] [--json out.json] [--dir DIR] [--profile]

Both systems coordinate workers through one append-only file and no server.
Everything below is measured in one run, on one machine, in one directory
(a fresh temporary directory under the repository, or under ``--dir``; /tmp
is often a tmpfs, where fsync costs nothing):

0. The disk's limit: raw ``O_APPEND`` writes of a 200-byte line, each followed
   by ``os.fdatasync`` (what Schedy's file store calls) and, separately, by
   ``os.fsync`` (what Optuna's JournalFileBackend calls), in a fixed time
   window, at the start and again at the end of the run. A worker cycle needs
   two durable commits, so the cycle limit is half the fdatasync rate.
1. Claim throughput: full worker cycles per second with 1, 2 and 4 worker
   processes on one shared experiment, durable commits in both systems, the
   same number of cycles for each. Schedy: a ``RandomSearch`` with one
   distribution, the documented cycle ``with exp.next_job() as job:
   job.results["loss"] = f(job.hyperparameters)`` and the same cycle without
   the ``with`` block (``next_job``; set results and DONE; ``put``). Optuna:
   ``trial = study.ask(); x = trial.suggest_float("x", -5, 5);
   study.tell(trial, x * x)`` with ``RandomSampler``, storage
   ``JournalStorage(JournalFileBackend(path))`` with its default lock. Also
   Schedy with relaxed durability (``SchedyDB(path, durable=False)``, no
   fsync). Each worker is its own process (``subprocess``) that opens the
   experiment, then waits for a common start time; cycles/s = all cycles /
   the wall time from that start to the last worker's finish. After each
   Schedy run, every job must be DONE, claimed exactly once, with no double
   claim (``schedy.core.check.find_double_claims``) and a clean
   ``schedy.maintenance.verify``; after each Optuna run every trial must be
   COMPLETE. Durable commits per second are reported as a fraction of the
   raw fdatasync rate.
2. Growth: the durable cycle rate (``with`` form, one process) when the
   experiment already holds N finished jobs (the sizes measured in turn in
   each repeat). Each size's Schedy experiment is grown by
   real worker cycles (``durable=False``, rare snapshots, then the last N/8
   cycles, at least 1000, with the default ``snapshot_every``, so that the log
   and its snapshot end as a live run leaves them); Optuna's journal is written directly as the op lines ``ask``,
   ``suggest_float`` and ``tell`` write (3 per trial, copied from a journal
   Optuna itself wrote, then checked by loading it: ask/tell in-process gets
   slower as the study grows and could not build 100k trials in the time).
   Each point is measured on a copy, in a fresh worker process: the time to
   open is reported apart, and the rate counts the cycles only (snapshots
   written during the window included; their number is reported).
3. Open: a fresh process opens the experiment of N finished jobs and lists
   its jobs (``SchedyDB(path).get_experiment(name).all_jobs()``), with its
   newest snapshot and with the snapshot moved aside (a full replay of the
   log), against ``optuna.load_study(...).trials`` on a journal of the same N
   trials. Timed inside the child, with and without the import of the
   library; best of a few runs.
4. Memory: peak resident memory (VmHWM on Linux) of the worker process of the
   largest growth point, and of each opening process.

With ``--profile``, one more fresh worker process runs the cycles of the
largest growth point under cProfile and the hot spots are printed. Every
ratio compares figures of this run; nothing about timings is asserted.
"""

import argparse
import collections
import datetime
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # noqa: E402 - benchmarks/machine.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmark the checkout this script lives in

# Nothing heavy is imported at module level: the opening processes time ``import schedy`` and ``import optuna``.

NAME = "bench"  # the experiment / study name
LINE = b"x" * 199 + b"\n"  # a raw append: about one Schedy commit line
SNAPSHOT_EVERY = 1000  # Schedy's default snapshot_every (the interval grows with large experiments)
BUILD_SNAPSHOT_EVERY = 20_000  # while growing an experiment fast (a snapshot costs time in proportion to the jobs)
BUILD_TAIL = 1000  # at least this many last cycles of a build run with the default snapshot_every (and N/8)

FULL = {
    "limit_seconds": 1.5,
    "cycles": 2000,
    "relaxed_cycles": 10_000,
    "relaxed_processes": (1, 2, 4),
    "repeats": 5,
    "growth": (1000, 10_000, 100_000),
    "optuna_growth": (1000, 10_000, 20_000, 100_000),
    "growth_cycles": 4000,
    "optuna_growth_cycles": 500,
    "growth_repeats": 3,
    "open_repeats": 3,
}
QUICK = {
    "limit_seconds": 0.75,
    "cycles": 400,
    "relaxed_cycles": 2000,
    "relaxed_processes": (1,),
    "repeats": 1,
    "growth": (1000, 5000, 10_000),
    "optuna_growth": (1000, 5000, 10_000),
    "growth_cycles": 1000,
    "optuna_growth_cycles": 200,
    "growth_repeats": 1,
    "open_repeats": 2,
}


# ---------------------------------------------------------------------------------------------------------------
# Child processes: python optuna_journal.py --child '<json spec>'. They print one JSON line (after "READY" for
# workers, which then wait for the start time on stdin).


def peak_rss():
    """Peak resident memory of this process, in bytes.

    Linux: VmHWM of /proc/self/status, which starts afresh at exec (ru_maxrss does not: a child would report
    the parent's memory at the time it was forked). Elsewhere ru_maxrss (bytes on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def current_rss():
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        return None


def open_schedy(path, durable=True):
    import schedy

    return schedy.SchedyDB(path, durable=durable).get_experiment(NAME)


def count_snapshot_writes(exp):
    """Count the snapshots this process writes (a wrapper on the store's write_snapshot); None if it has none.

    A measuring aid that reaches into a private attribute: if the store moves, the count is simply not reported.
    """
    store = getattr(getattr(exp, "_db", None), "_store", None)
    write = getattr(store, "write_snapshot", None)
    if write is None:
        return None
    versions = []

    def counted(key, version, data):
        versions.append(version)
        return write(key, version, data)

    store.write_snapshot = counted
    return versions


def open_optuna(path, seed):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(
        study_name=NAME,
        storage=JournalStorage(JournalFileBackend(path)),
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )


def schedy_cycle_with(exp):
    with exp.next_job() as job:
        job.results["loss"] = job.hyperparameters["x"] ** 2


def schedy_cycle_bare(exp):
    job = exp.next_job()
    job.results["loss"] = job.hyperparameters["x"] ** 2
    job.status = "DONE"
    job.put()


def optuna_cycle(study):
    trial = study.ask()
    x = trial.suggest_float("x", -5.0, 5.0)
    study.tell(trial, x * x)


CYCLES = {"with": schedy_cycle_with, "bare": schedy_cycle_bare, "asktell": optuna_cycle}


def child_worker(spec):
    """Open, say READY, wait for the start time, run ``cycles`` cycles, report."""
    t0 = time.perf_counter()
    rss_start = current_rss()
    schedy_worker = spec["system"] == "schedy"
    library = __import__("schedy" if schedy_worker else "optuna")  # timed apart from opening
    t1 = time.perf_counter()
    if schedy_worker:
        target = open_schedy(spec["path"], spec["durable"])
        snapshots = count_snapshot_writes(target)
    else:
        target = open_optuna(spec["path"], spec["seed"])
    t2 = time.perf_counter()
    rss_open = current_rss()
    cycle = CYCLES[spec["form"]]
    print("READY", flush=True)
    start_at = float(sys.stdin.readline())
    time.sleep(max(0.0, start_at - time.time()))
    profiler = None
    if spec.get("profile"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    latencies = []
    cpu0 = time.process_time()
    for _ in range(spec["cycles"]):
        c0 = time.perf_counter()
        cycle(target)
        latencies.append(time.perf_counter() - c0)
    finished = time.time()
    cpu = time.process_time() - cpu0
    if profiler is not None:
        profiler.disable()
    out = {
        "cycles": len(latencies),
        "finished": finished,
        "cpu_seconds": cpu,
        "latencies": latencies,
        "import_s": t1 - t0,
        "open_s": t2 - t1,
        "rss_before_import": rss_start,
        "rss_after_open": rss_open,
        "peak_rss": peak_rss(),
    }
    if schedy_worker:
        out["snapshot_versions"] = snapshots
    else:  # checked after the figures above, so that it costs them nothing
        out["trials"] = len(target.get_trials(deepcopy=False))
        out["complete"] = len(target.get_trials(deepcopy=False, states=(library.trial.TrialState.COMPLETE,)))
    if profiler is not None:
        out["profile"] = profile_text(profiler)
    print(json.dumps(out), flush=True)


def profile_text(profiler, lines=22):
    import io
    import pstats

    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(lines)
    stats.sort_stats("tottime").print_stats(lines)
    keep = [ln for ln in text.getvalue().splitlines() if ln.strip() and not ln.startswith("   List reduced")]
    return "\n".join(keep).replace(str(ROOT) + "/", "")


def child_open(spec):
    """Open the experiment (or study) and list every job (trial); time it with and without the import."""
    t0 = time.perf_counter()
    if spec["system"] == "schedy":
        import schedy

        t1 = time.perf_counter()
        exp = schedy.SchedyDB(spec["path"]).get_experiment(NAME)
        t2 = time.perf_counter()
        jobs = exp.all_jobs()
        t3 = time.perf_counter()
        done = sum(j.status == "DONE" for j in jobs)
        snapshot = getattr(getattr(exp, "_view", None), "snapshot", None)  # how opening went, if it says
    else:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        t1 = time.perf_counter()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.load_study(study_name=NAME, storage=JournalStorage(JournalFileBackend(spec["path"])))
        t2 = time.perf_counter()
        jobs = study.trials
        t3 = time.perf_counter()
        done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in jobs)
        snapshot = None
    print(
        json.dumps(
            {
                "import_s": t1 - t0,
                "open_s": t3 - t1,
                "total_s": t3 - t0,
                "get_s": t2 - t1,
                "list_s": t3 - t2,
                "jobs": len(jobs),
                "done": done,
                "snapshot": snapshot,
                "peak_rss": peak_rss(),
            }
        ),
        flush=True,
    )


def child_build_schedy(spec):
    """Grow the experiment at ``path`` to ``jobs`` finished jobs by worker cycles (no fsync, no cyclic GC)."""
    import gc

    gc.disable()  # a builder only: the collector's passes over a big state would slow a long run
    import schedy
    from schedy.random import Uniform

    path, target = spec["path"], spec["jobs"]
    db = schedy.SchedyDB(path, durable=False, snapshot_every=BUILD_SNAPSHOT_EVERY)
    if spec["create"]:
        exp = db.add_experiment(schedy.RandomSearch(NAME, {"x": Uniform(-5.0, 5.0)}, seed=1))
    else:
        exp = db.get_experiment(NAME)
    have = len(exp.all_jobs())
    fast = max(0, target - have - max(BUILD_TAIL, target // 8))
    for _ in range(fast):
        schedy_cycle_bare(exp)
    # The last cycles with the default snapshot_every: the log ends as a live run leaves it, its newest
    # snapshot where a live run would have written it (the interval grows to about jobs/16 commits).
    exp = schedy.SchedyDB(path, durable=False, snapshot_every=SNAPSHOT_EVERY).get_experiment(NAME)
    for _ in range(target - have - fast):
        schedy_cycle_bare(exp)
    print(json.dumps({"jobs": len(exp.all_jobs())}), flush=True)


def child_main(spec):
    {"worker": child_worker, "open": child_open, "build-schedy": child_build_schedy}[spec["role"]](spec)
    return 0


# ---------------------------------------------------------------------------------------------------------------
# Running children from the parent.


class Child:
    def __init__(self, spec, scratch):
        self.err_path = Path(scratch) / f"child-{os.getpid()}-{time.monotonic_ns()}.err"
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", json.dumps(spec)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
            text=True,
        )

    def line(self):
        out = self.proc.stdout.readline()
        if not out:
            self.proc.wait(timeout=30)
            self.err.close()
            raise RuntimeError(
                f"a child process failed (exit {self.proc.returncode}):\n" + self.err_path.read_text()[-3000:]
            )
        return out

    def send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # a worker still waiting for its start time reads EOF and exits
            except OSError:
                pass
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.err.close()
        self.err_path.unlink(missing_ok=True)


def run_once(spec, scratch):
    """Run a child that prints one JSON line; return it, with the wall time of the whole process."""
    t0 = time.perf_counter()
    child = Child(spec, scratch)
    try:
        out = json.loads(child.line())
    finally:
        child.close()
    out["process_s"] = time.perf_counter() - t0
    return out


def run_workers(specs, scratch):
    """Start one worker per spec, wait until all are READY, start them together; return (results, wall seconds)."""
    children = [Child(spec, scratch) for spec in specs]
    try:
        for c in children:
            said = c.line().strip()
            if said != "READY":
                raise RuntimeError(f"a worker process failed to start (said {said!r})")
        start_at = time.time() + 0.2
        for c in children:
            c.send(repr(start_at))
        results = [json.loads(c.line()) for c in children]
    finally:
        for c in children:
            c.close()
    return results, max(r["finished"] for r in results) - start_at


def split(total, n):
    return [total // n + (i < total % n) for i in range(n)]


def log_lines(db_path):
    """Commits in the experiment's log (one line each): its version."""
    logs = list(Path(db_path).glob("experiments/*/log.jsonl"))
    return sum(p.read_bytes().count(b"\n") for p in logs)


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else None


def settle():
    """Write back dirty pages (a build, a copy) so they do not slow the fsyncs measured next."""
    if hasattr(os, "sync"):
        os.sync()


# ---------------------------------------------------------------------------------------------------------------
# 0. The disk's limit.


def raw_append_rate(directory, seconds, sync):
    """Appends per second of a 200-byte line with ``sync`` (os.fdatasync or os.fsync) after each, for ``seconds``."""
    path = Path(directory) / f"raw-{sync.__name__}-{time.monotonic_ns()}.log"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, LINE)
        sync(fd)  # the file's creation is not part of the rate
        n, t0 = 0, time.perf_counter()
        deadline = t0 + seconds
        while True:
            os.write(fd, LINE)
            sync(fd)
            n += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        return n / (now - t0)
    finally:
        os.close(fd)
        path.unlink()


def measure_limit(directory, seconds):
    fdatasync = getattr(os, "fdatasync", os.fsync)
    return {
        "fdatasync_per_s": raw_append_rate(directory, seconds, fdatasync),
        "fsync_per_s": raw_append_rate(directory, seconds, os.fsync),
    }


# ---------------------------------------------------------------------------------------------------------------
# 1. Claim throughput.


def new_schedy(path, durable=True):
    import schedy
    from schedy.random import Uniform

    db = schedy.SchedyDB(path, durable=durable)
    db.add_experiment(schedy.RandomSearch(NAME, {"x": Uniform(-5.0, 5.0)}, seed=1))


def new_optuna(path):
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(
        study_name=NAME,
        storage=JournalStorage(JournalFileBackend(str(path))),
        direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=1),
    )


def check_schedy(path, expected):
    """Every job DONE, each claimed exactly once, no double claim, ``verify`` clean: a dict of what was found."""
    import schedy
    from schedy.core.check import find_double_claims
    from schedy.maintenance import verify

    exp = schedy.SchedyDB(path).get_experiment(NAME)
    jobs = exp.all_jobs()
    commits = exp.history()
    claims = collections.Counter(e["job"] for c in commits for e in c.events if e["type"] == "JobClaimed")
    double = find_double_claims(commits)
    verified = verify(schedy.SchedyDB(path), NAME).ok
    done = sum(j.status == "DONE" for j in jobs)
    reclaimed = sum(1 for n in claims.values() if n != 1)
    return {
        "jobs": len(jobs),
        "done": done,
        "claimed_not_once": reclaimed,
        "double_claims": len(double),
        "verify_ok": verified,
        "ok": len(jobs) == expected == done and reclaimed == 0 and not double and verified,
    }


def check_optuna(path, expected):
    study = open_optuna(str(path), 0)
    import optuna

    trials = study.get_trials(deepcopy=False)
    complete = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    numbers = len({t.number for t in trials})
    return {"trials": len(trials), "complete": complete, "ok": len(trials) == expected == complete == numbers}


def throughput_run(kind, processes, cycles, scratch, run_id):
    """One run: a fresh experiment (study), ``processes`` workers sharing ``cycles`` cycles."""
    system, form, durable = {
        "schedy-with": ("schedy", "with", True),
        "schedy-bare": ("schedy", "bare", True),
        "optuna": ("optuna", "asktell", True),
        "schedy-relaxed": ("schedy", "with", False),
    }[kind]
    path = Path(scratch) / f"{kind}-{processes}-{run_id}"
    if system == "schedy":
        new_schedy(path, durable)
        commits0 = log_lines(path)
    else:
        path = path.with_suffix(".log")
        new_optuna(path)
    settle()
    specs = [
        {
            "role": "worker",
            "system": system,
            "form": form,
            "path": str(path),
            "durable": durable,
            "cycles": n,
            "seed": i + 1,
        }
        for i, n in enumerate(split(cycles, processes))
    ]
    results, wall = run_workers(specs, scratch)
    done = sum(r["cycles"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    row = {
        "system": kind,
        "processes": processes,
        "cycles": done,
        "seconds": wall,
        "cycles_per_s": done / wall,
        "cycle_ms_p50": 1000 * percentile(latencies, 0.5),
        "cycle_ms_p95": 1000 * percentile(latencies, 0.95),
        "cycle_ms_max": 1000 * max(latencies),
        "cpu_ms_per_cycle": 1000 * sum(r["cpu_seconds"] for r in results) / done,
        "cycles_per_process": [r["cycles"] for r in results],
    }
    if system == "schedy":
        row["commits"] = log_lines(path) - commits0
        row["commits_per_s"] = row["commits"] / wall
        row["check"] = check_schedy(path, cycles)
        shutil.rmtree(path)
    else:
        row["commits"] = 3 * done  # journal ops: create trial, set param, set state and value (each fsynced)
        row["commits_per_s"] = row["commits"] / wall
        row["check"] = check_optuna(path, cycles)
        path.unlink()
        Path(str(path) + ".lock").unlink(missing_ok=True)
    return row


def best_of(rows):
    best = dict(max(rows, key=lambda r: r["cycles_per_s"]))
    best["runs_cycles_per_s"] = [r["cycles_per_s"] for r in rows]
    best["all_checks_ok"] = all(r["check"]["ok"] for r in rows)
    return best


def measure_throughput(cfg, scratch):
    """Rows of cycles/s per (system, processes).

    Each repeat runs every system at every number of processes in turn, so that the machine's drift during the
    run moves them all alike (the ratios compare systems and numbers of processes).
    """
    kinds = ("schedy-with", "schedy-bare", "optuna")
    runs = collections.defaultdict(list)
    for repeat in range(cfg["repeats"]):
        for processes in (1, 2, 4):
            for kind in kinds:
                runs[kind, processes].append(throughput_run(kind, processes, cfg["cycles"], scratch, repeat))
    for repeat in range(cfg["repeats"]):
        for processes in cfg["relaxed_processes"]:
            runs["schedy-relaxed", processes].append(
                throughput_run("schedy-relaxed", processes, cfg["relaxed_cycles"], scratch, repeat)
            )
    return [best_of(runs[kind, processes]) for processes in (1, 2, 4) for kind in kinds] + [
        best_of(runs["schedy-relaxed", processes]) for processes in cfg["relaxed_processes"]
    ]


# ---------------------------------------------------------------------------------------------------------------
# 2. Growth.


def build_schedy(path, jobs, scratch):
    create = not Path(path).exists()
    t0 = time.perf_counter()
    out = run_once({"role": "build-schedy", "path": str(path), "jobs": jobs, "create": create}, scratch)
    if out["jobs"] != jobs:
        raise RuntimeError(f"building the Schedy experiment gave {out['jobs']} jobs, not {jobs}")
    settle()
    return time.perf_counter() - t0


class OptunaJournal:
    """Writes journals of N finished trials as ask/suggest_float/tell write them, from ops Optuna itself wrote."""

    def __init__(self, scratch):
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        path = Path(scratch) / "optuna-template.log"
        study = optuna.create_study(
            study_name=NAME,
            storage=JournalStorage(JournalFileBackend(str(path))),
            direction="minimize",
            sampler=optuna.samplers.RandomSampler(seed=0),
        )
        optuna_cycle(study)
        ops = [json.loads(line) for line in path.read_text().splitlines()]
        path.unlink()
        Path(str(path) + ".lock").unlink(missing_ok=True)
        self.header, self.trial_ops = ops[0], ops[1:]  # the study's creation, then the ops of one trial
        if "study_name" not in self.header or "values" not in self.trial_ops[-1]:
            raise RuntimeError(f"unexpected journal ops from this Optuna version: {ops}")

    def write(self, path, n, seed=0):
        rng = random.Random(seed)
        dumps = json.JSONEncoder(separators=(",", ":")).encode
        lines = [dumps(self.header)]
        for i in range(n):
            x = rng.uniform(-5.0, 5.0)
            for op in self.trial_ops:
                op = dict(op)
                if "trial_id" in op:
                    op["trial_id"] = i
                if "param_value_internal" in op:
                    op["param_value_internal"] = x
                if "values" in op:
                    op["values"] = [x * x]
                lines.append(dumps(op))
        Path(path).write_text("\n".join(lines) + "\n")
        settle()


def copy_fresh(source, target):
    target = Path(target)
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    if Path(source).is_dir():
        shutil.copytree(source, target)
    else:
        shutil.copyfile(source, target)
    settle()


def growth_point(system, source, n, cycles, scratch, profile=False):
    """Measure the durable `with` cycle (ask/tell) in a fresh process on a copy of ``source`` (n finished jobs)."""
    work = Path(scratch) / ("growth-work" if system == "schedy" else "growth-work.log")
    copy_fresh(source, work)
    commits0 = log_lines(work) if system == "schedy" else None
    spec = {
        "role": "worker",
        "system": system,
        "form": "with" if system == "schedy" else "asktell",
        "path": str(work),
        "durable": True,
        "cycles": cycles,
        "seed": 1,
        "profile": profile,
    }
    (r,), wall = run_workers([spec], scratch)
    row = {
        "jobs": n,
        "cycles": r["cycles"],
        "seconds": wall,
        "cycles_per_s": r["cycles"] / wall,
        "cycle_ms_p50": 1000 * percentile(r["latencies"], 0.5),
        "cycle_ms_p95": 1000 * percentile(r["latencies"], 0.95),
        "cycle_ms_max": 1000 * max(r["latencies"]),
        "rate_at_p50": 1 / percentile(r["latencies"], 0.5),
        "cpu_ms_per_cycle": 1000 * r["cpu_seconds"] / cycles,
        "open_s": r["open_s"],
        "import_s": r["import_s"],
        "peak_rss": r["peak_rss"],
        "rss_before_import": r["rss_before_import"],
        "rss_after_open": r["rss_after_open"],
    }
    if system == "schedy":
        commits1 = log_lines(work)
        row["commits"] = commits1 - commits0
        row["snapshots_written"] = None if r["snapshot_versions"] is None else len(r["snapshot_versions"])
        row["snapshot_versions"] = r["snapshot_versions"]
        import schedy

        jobs = schedy.SchedyDB(work).get_experiment(NAME).all_jobs()
        row["check"] = {
            "jobs": len(jobs),
            "done": sum(j.status == "DONE" for j in jobs),
            "ok": len(jobs) == n + cycles == sum(j.status == "DONE" for j in jobs) and row["commits"] == 2 * cycles,
        }
    else:
        row["check"] = {
            "trials": r["trials"],
            "complete": r["complete"],
            "ok": r["trials"] == r["complete"] == n + cycles,
        }
    if profile:
        row["profile"] = r["profile"]
    return row


def measure_growth(cfg, scratch, keep, profile):
    """Schedy and Optuna cycle rates at each size; ``keep`` is where the largest experiments are left for opening."""
    out = {"schedy": [], "optuna": [], "build_s": {}}
    sizes = cfg["growth"]
    # One experiment per size (the largest is kept for opening), measured in turn in each repeat, so that the
    # machine's drift during the run moves every size alike instead of the last size measured.
    sources = {n: keep["schedy"] if n == sizes[-1] else Path(scratch) / f"schedy-{n}" for n in sizes}
    for n in sizes:
        out["build_s"][f"schedy {n}"] = build_schedy(sources[n], n, scratch)
    runs = collections.defaultdict(list)
    for _ in range(cfg["growth_repeats"]):
        for n in sizes:
            runs[n].append(growth_point("schedy", sources[n], n, cfg["growth_cycles"], scratch))
    out["schedy"] = [best_of(runs[n]) for n in sizes]
    for n in sizes[:-1]:
        shutil.rmtree(sources[n])
    if profile:
        out["profile"] = growth_point(
            "schedy", sources[sizes[-1]], sizes[-1], cfg["growth_cycles"], scratch, profile=True
        )["profile"]
    journal = OptunaJournal(scratch)
    for n in cfg["optuna_growth"]:
        source = Path(scratch) / f"optuna-{n}.log"
        t0 = time.perf_counter()
        journal.write(source, n)
        out["build_s"][f"optuna {n}"] = time.perf_counter() - t0
        out["optuna"].append(
            best_of(
                [
                    growth_point("optuna", source, n, cfg["optuna_growth_cycles"], scratch)
                    for _ in range(cfg["growth_repeats"])
                ]
            )
        )
        source.unlink()
    # The journal of the opening measurement: as many trials as the largest Schedy experiment has jobs.
    t0 = time.perf_counter()
    journal.write(keep["optuna"], cfg["growth"][-1])
    out["build_s"][f"optuna {cfg['growth'][-1]} (for opening)"] = time.perf_counter() - t0
    for p in Path(scratch).glob("growth-work*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return out


# ---------------------------------------------------------------------------------------------------------------
# 3. Opening, and 4. memory.


def measure_open(cfg, scratch, keep):
    n = cfg["growth"][-1]
    snapshots = list(Path(keep["schedy"]).glob("experiments/*/snapshot.json"))
    if len(snapshots) != 1:
        raise RuntimeError(f"expected one snapshot file, found {snapshots}")
    snapshot, aside = snapshots[0], snapshots[0].with_name("snapshot.json.aside")
    log_path = snapshot.with_name("log.jsonl")
    runs = collections.defaultdict(list)
    for _ in range(cfg["open_repeats"]):  # interleaved, so that drift affects every variant alike
        runs["schedy, snapshot"].append(
            run_once({"role": "open", "system": "schedy", "path": str(keep["schedy"])}, scratch)
        )
        snapshot.rename(aside)
        try:
            runs["schedy, full replay"].append(
                run_once({"role": "open", "system": "schedy", "path": str(keep["schedy"])}, scratch)
            )
        finally:
            aside.rename(snapshot)
        runs["optuna"].append(run_once({"role": "open", "system": "optuna", "path": str(keep["optuna"])}, scratch))
    rows = {}
    for variant, rs in runs.items():
        best = dict(min(rs, key=lambda r: r["open_s"]))
        best["runs_open_s"] = [r["open_s"] for r in rs]
        best["ok"] = all(r["jobs"] == r["done"] == n for r in rs)
        rows[variant] = best
    return {
        "jobs": n,
        "log_bytes": log_path.stat().st_size,
        "snapshot_bytes": snapshot.stat().st_size,
        "commits_after_snapshot": log_lines(keep["schedy"]) - snapshot_version(snapshot),
        "journal_bytes": Path(keep["optuna"]).stat().st_size,
        "variants": rows,
    }


def snapshot_version(path):
    """The commit a snapshot file was taken at (its ``version`` field, docs/log-format.md)."""
    return json.loads(Path(path).read_bytes())["version"]


# ---------------------------------------------------------------------------------------------------------------
# The machine.


def filesystem_of(directory):
    """(type, device, mount point, options) of the file system holding ``directory``, from /proc/mounts or df."""
    real = os.path.realpath(directory)
    best = None
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype, opts = line.split()[:4]
            mnt = mnt.replace("\\040", " ")
            if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and (best is None or len(mnt) > len(best[2])):
                best = (fstype, dev, mnt, opts)
    except OSError:
        pass
    if best is None:
        try:
            lines = subprocess.run(["df", "-T", real], capture_output=True, text=True, timeout=5).stdout.splitlines()
            dev, fstype = lines[1].split()[:2]
            best = (fstype, dev, lines[1].split()[-1], None)
        except (OSError, subprocess.SubprocessError, IndexError, ValueError):
            best = (None, None, None, None)
    return dict(zip(("type", "device", "mount", "options"), best))


def machine(directory):
    return {
        **describe(["optuna", "orjson", "pyrsistent"]),
        "filesystem": filesystem_of(directory),
        "directory": str(directory),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


# ---------------------------------------------------------------------------------------------------------------
# Targets and output.


def targets(result):
    """Each target of the issue: what is required, what was measured, met or not."""
    rows = {(r["system"], r["processes"]): r for r in result["throughput"]}
    limit = result["limit"]["fdatasync_per_s"]
    out = []

    def add(name, value, threshold, unit, note="", smaller_is_better=False):
        met = value <= threshold if smaller_is_better else value >= threshold
        out.append(
            {
                "target": name,
                "measured": value,
                "required": threshold,
                "unit": unit,
                "met": met,
                "at_most": smaller_is_better,
                "note": note,
            }
        )

    w1, w4, o1, o4 = (rows[("schedy-with", 1)], rows[("schedy-with", 4)], rows[("optuna", 1)], rows[("optuna", 4)])
    add(
        "durable cycle, 1 process, / fsync limit (raw fdatasync rate / 2)",
        w1["cycles_per_s"] / (limit / 2),
        0.70,
        "x",
        f"{w1['cycles_per_s']:,.0f} cycles/s, limit {limit / 2:,.0f}",
    )
    add(
        "durable cycle, 1 process, / Optuna",
        w1["cycles_per_s"] / o1["cycles_per_s"],
        2.0,
        "x",
        f"{w1['cycles_per_s']:,.0f} vs {o1['cycles_per_s']:,.0f} cycles/s",
    )
    add(
        "durable cycle, 4 processes, / Optuna",
        w4["cycles_per_s"] / o4["cycles_per_s"],
        3.0,
        "x",
        f"{w4['cycles_per_s']:,.0f} vs {o4['cycles_per_s']:,.0f} cycles/s",
    )
    add(
        "durable cycle, 4 processes / 1 process (must not slow)",
        w4["cycles_per_s"] / w1["cycles_per_s"],
        1.0,
        "x",
        f"Optuna: {o4['cycles_per_s'] / o1['cycles_per_s']:.2f}x",
    )
    relaxed = rows[("schedy-relaxed", 1)]
    add("relaxed durability (durable=False), 1 process", relaxed["cycles_per_s"], 10_000, "cycles/s")
    g = result["growth"]["schedy"]
    size_note = "" if g[-1]["jobs"] >= 100_000 else f" (--quick: at {g[-1]['jobs']:,} jobs, not 100,000)"
    add(
        f"growth: rate at {g[-1]['jobs']:,} jobs / at {g[0]['jobs']:,}",
        g[-1]["cycles_per_s"] / g[0]["cycles_per_s"],
        0.90,
        "x",
        f"{g[0]['cycles_per_s']:,.0f} -> {g[-1]['cycles_per_s']:,.0f} cycles/s{size_note}",
    )
    o = result["open"]
    v = o["variants"]
    size_note = "" if o["jobs"] >= 100_000 else f" (--quick: {o['jobs']:,} jobs, not 100,000)"
    add(
        f"open {o['jobs']:,} jobs from a snapshot: Optuna time / Schedy time",
        v["optuna"]["open_s"] / v["schedy, snapshot"]["open_s"],
        20.0,
        "x",
        f"import excluded; {v['schedy, snapshot']['open_s']:.3f} s vs {v['optuna']['open_s']:.3f} s{size_note}",
    )
    add(
        f"open {o['jobs']:,} jobs by full replay: Optuna time / Schedy time",
        v["optuna"]["open_s"] / v["schedy, full replay"]["open_s"],
        20.0,
        "x",
        f"import excluded; {v['schedy, full replay']['open_s']:.3f} s{size_note}",
    )
    add(
        f"open {o['jobs']:,} jobs from a snapshot",
        v["schedy, snapshot"]["open_s"],
        0.5,
        "s",
        f"import excluded; {v['schedy, snapshot']['total_s']:.3f} s with `import schedy`{size_note}",
        smaller_is_better=True,
    )
    return out


def table(headers, rows, left=(0,)):
    """Rows under headers, columns padded; the columns in ``left`` are aligned left, the others right."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(("  " + line).rstrip() for line in lines)


def n0(x):
    return f"{x:,.0f}"


def mib(x):
    return None if x is None else f"{x / 2**20:,.0f}"


def report(result):
    m = result["machine"]
    fs = m["filesystem"]
    print(
        f"\nSchedy vs Optuna JournalStorage, {result['date']} ({'quick' if result['quick'] else 'full'} run, "
        f"{result['run_seconds']} s)"
    )
    print(
        f"  machine: {m['usable_cpus']} usable CPUs of {m['cpu_count']} ({m['cpu']}), {m['memory_gib']} GiB, "
        f"Python {m['python']}, {m['platform']}, load average at start {m['load_average_at_start']}"
    )
    print(
        f"  disk: {fs['type']} on {fs['device']} mounted at {fs['mount']} ({fs['options']}); directory {m['directory']}"
    )
    print(f"  schedy {m['schedy_commit']}, optuna {m['optuna']}, orjson {m['orjson']}, pyrsistent {m['pyrsistent']}")

    lim = result["limits"]
    limit = result["limit"]
    print("\n0. The disk's limit: raw O_APPEND writes of a 200-byte line, one sync each (appends/s)")
    print(
        table(
            ["sync", "start of run", "end of run", "mean", "cycle limit (2 commits)"],
            [
                [
                    k,
                    n0(lim[0][f"{k}_per_s"]),
                    n0(lim[1][f"{k}_per_s"]),
                    n0(limit[f"{k}_per_s"]),
                    n0(limit[f"{k}_per_s"] / 2),
                ]
                for k in ("fdatasync", "fsync")
            ],
        )
    )
    print("  Schedy's file store calls os.fdatasync after each commit; Optuna's JournalFileBackend calls os.fsync.")

    print(
        f"\n1. Claim throughput: full worker cycles per second on one experiment, durable commits "
        f"({result['config']['cycles']:,} cycles per run shared by the processes; "
        f"best of {result['config']['repeats']})"
    )
    rows = {(r["system"], r["processes"]): r for r in result["throughput"]}
    body = []
    for p in (1, 2, 4):
        o = rows[("optuna", p)]["cycles_per_s"]
        for kind in ("schedy-with", "schedy-bare", "optuna", "schedy-relaxed"):
            r = rows.get((kind, p))
            if r is None:
                continue
            durable = kind != "schedy-relaxed"
            body.append(
                [
                    kind,
                    p,
                    n0(r["cycles_per_s"]),
                    f"{r['cycles_per_s'] / o:.2f}" if durable else "-",
                    n0(r["commits_per_s"]),
                    f"{r['commits_per_s'] / limit['fdatasync_per_s']:.2f}" if durable else "-",
                    f"{r['cycles_per_s'] / (limit['fdatasync_per_s'] / 2):.2f}" if durable else "-",
                    f"{r['cycle_ms_p50']:.2f}",
                    f"{r['cycle_ms_p95']:.2f}",
                    f"{r['cpu_ms_per_cycle']:.2f}",
                    "/".join(n0(x) for x in r["runs_cycles_per_s"]),
                    "yes" if r["all_checks_ok"] else "NO",
                ]
            )
    print(
        table(
            [
                "system",
                "procs",
                "cycles/s",
                "/ Optuna",
                "commits/s",
                "commits / fdatasync limit",
                "cycles / cycle limit",
                "p50 ms",
                "p95 ms",
                "CPU ms/cycle",
                "each run",
                "checks",
            ],
            body,
        )
    )
    print(
        "  schedy-with: `with exp.next_job() as job:`; schedy-bare: next_job, DONE, put; optuna: ask, "
        "suggest_float, tell\n  (3 fsynced journal appends); schedy-relaxed: the `with` cycle on SchedyDB(path, "
        "durable=False). Checks: Schedy every job DONE, claimed once,\n  no double claim, verify clean; Optuna "
        "every trial COMPLETE."
    )

    g = result["growth"]
    print(
        f"\n2. Growth: durable cycles/s in a fresh worker process on an experiment of N finished jobs "
        f"({result['config']['growth_cycles']:,} Schedy cycles, {result['config']['optuna_growth_cycles']:,} "
        f"Optuna cycles; best of {result['config']['growth_repeats']})"
    )
    optuna_by_n = {r["jobs"]: r for r in g["optuna"]}
    body = []
    for r in g["schedy"]:
        o = optuna_by_n.get(r["jobs"])
        body.append(
            [
                "schedy",
                n0(r["jobs"]),
                n0(r["cycles_per_s"]),
                f"{r['cycles_per_s'] / g['schedy'][0]['cycles_per_s']:.2f}",
                f"{r['cycles_per_s'] / o['cycles_per_s']:.2f}" if o else "-",
                f"{r['cycle_ms_p50']:.2f}",
                f"{r['cycle_ms_p95']:.2f}",
                f"{r['cycle_ms_max']:.1f}",
                r["snapshots_written"],
                f"{r['open_s']:.3f}",
                mib(r["peak_rss"]),
                "yes" if r["all_checks_ok"] else "NO",
            ]
        )
    for r in g["optuna"]:
        body.append(
            [
                "optuna",
                n0(r["jobs"]),
                n0(r["cycles_per_s"]),
                f"{r['cycles_per_s'] / g['optuna'][0]['cycles_per_s']:.2f}",
                "",
                f"{r['cycle_ms_p50']:.2f}",
                f"{r['cycle_ms_p95']:.2f}",
                f"{r['cycle_ms_max']:.1f}",
                "-",
                f"{r['open_s']:.3f}",
                mib(r["peak_rss"]),
                "yes" if r["all_checks_ok"] else "NO",
            ]
        )
    print(
        table(
            [
                "system",
                "jobs",
                "cycles/s",
                "/ first size",
                "Schedy / Optuna",
                "p50 ms",
                "p95 ms",
                "max ms",
                "snapshots written",
                "open s",
                "peak RSS MiB",
                "checks",
            ],
            body,
        )
    )
    capped = [n for n in result["config"]["growth"] if n not in optuna_by_n]
    if capped:
        print(
            f"  Optuna is measured up to {max(optuna_by_n):,} trials only (not {', '.join(n0(n) for n in capped)}): "
            f"its cycle cost grows with the study."
        )
    print(
        "  Schedy's rate includes the snapshots its worker wrote during the window (counted; the interval is "
        "1000 commits,\n  doubled until it reaches a sixteenth of the jobs, so a window of 8000 commits holds one "
        "at 100,000 jobs)."
    )

    o = result["open"]
    v = o["variants"]
    print(
        f"\n3. Open an experiment of {o['jobs']:,} finished jobs in a fresh process and list them "
        f"(best of {result['config']['open_repeats']};\n  log {mib(o['log_bytes'])} MiB, newest snapshot "
        f"{mib(o['snapshot_bytes'])} MiB at {o['commits_after_snapshot']} commit(s) before the end; Optuna journal "
        f"{mib(o['journal_bytes'])} MiB)"
    )
    opt = v["optuna"]["open_s"]
    print(
        table(
            [
                "variant",
                "open + list s",
                "Optuna / this",
                "open s",
                "list s",
                "with import s",
                "import s",
                "process s",
                "peak RSS MiB",
                "each run s",
                "jobs ok",
            ],
            [
                [
                    k,
                    f"{r['open_s']:.3f}",
                    f"{opt / r['open_s']:.1f}",
                    f"{r['get_s']:.3f}",
                    f"{r['list_s']:.3f}",
                    f"{r['total_s']:.3f}",
                    f"{r['import_s']:.3f}",
                    f"{r['process_s']:.3f}",
                    mib(r["peak_rss"]),
                    "/".join(f"{x:.3f}" for x in r["runs_open_s"]),
                    "yes" if r["ok"] else "NO",
                ]
                for k, r in v.items()
            ],
        )
    )
    print(
        "  open: SchedyDB(path).get_experiment(name) | optuna.load_study(study_name, storage=JournalStorage("
        "JournalFileBackend(path)));\n  list: .all_jobs() | .trials. 'process s' is the wall time of the whole "
        "child process, interpreter start-up included."
    )

    s, og = g["schedy"][-1], g["optuna"][-1]
    print("\n4. Memory: resident memory (MiB)")
    print(
        table(
            ["process", "after start", "after open", "peak"],
            [
                [
                    f"Schedy worker, {s['jobs']:,} jobs ({s['cycles']:,} cycles)",
                    mib(s["rss_before_import"]),
                    mib(s["rss_after_open"]),
                    mib(s["peak_rss"]),
                ],
                [
                    f"Optuna worker, {og['jobs']:,} trials ({og['cycles']:,} cycles)",
                    mib(og["rss_before_import"]),
                    mib(og["rss_after_open"]),
                    mib(og["peak_rss"]),
                ],
                [
                    f"Schedy open + list, {o['jobs']:,} jobs, snapshot",
                    None,
                    None,
                    mib(v["schedy, snapshot"]["peak_rss"]),
                ],
                [
                    f"Schedy open + list, {o['jobs']:,} jobs, full replay",
                    None,
                    None,
                    mib(v["schedy, full replay"]["peak_rss"]),
                ],
                [f"Optuna load_study().trials, {o['jobs']:,} trials", None, None, mib(v["optuna"]["peak_rss"])],
            ],
        )
    )

    print("\nTargets")
    print(
        table(
            ["target", "measured", "required", "", "detail"],
            [
                [
                    t["target"],
                    (
                        f"{t['measured']:,.3f} s"
                        if t["unit"] == "s"
                        else f"{t['measured']:,.2f}" + ("" if t["unit"] == "x" else f" {t['unit']}")
                    ),
                    ("<= " if t["at_most"] else ">= ")
                    + f"{t['required']:,g}"
                    + ("" if t["unit"] == "x" else f" {t['unit']}"),
                    "met" if t["met"] else "MISSED",
                    t["note"],
                ]
                for t in result["targets"]
            ],
            left=(0, 3, 4),
        )
    )
    if "profile" in g:
        print(
            f"\nProfile of {result['config']['growth_cycles']:,} durable `with` cycles in a fresh worker at "
            f"{g['schedy'][-1]['jobs']:,} jobs (cProfile; cumulative, then own time):"
        )
        print(g["profile"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller experiments, fewer cycles (under a minute)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    parser.add_argument(
        "--dir",
        help="work in a fresh directory under DIR (default: under the repository; not /tmp, which is often a tmpfs)",
    )
    parser.add_argument("--profile", action="store_true", help="also profile a worker at the largest growth size")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))

    t_run = time.perf_counter()
    cfg = QUICK if args.quick else FULL
    scratch = Path(tempfile.mkdtemp(prefix=".bench-optuna-journal-", dir=args.dir or ROOT))
    phases = {}

    def phase(name, fn, *a):
        print(f"... {name}", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        out = fn(*a)
        phases[name] = round(time.perf_counter() - t0, 1)
        return out

    try:
        result = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "quick": args.quick,
            "command": "python benchmarks/optuna_journal.py"
            + (" --quick" if args.quick else "")
            + (f" --dir {args.dir}" if args.dir else "")
            + (" --profile" if args.profile else ""),
            "machine": machine(scratch),
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
        }
        keep = {"schedy": scratch / "big-schedy", "optuna": scratch / "big-optuna.log"}
        limits = [phase("disk limit", measure_limit, scratch, cfg["limit_seconds"])]
        result["throughput"] = phase("claim throughput", measure_throughput, cfg, scratch)
        result["growth"] = phase("growth", measure_growth, cfg, scratch, keep, args.profile)
        result["open"] = phase("open", measure_open, cfg, scratch, keep)
        limits.append(phase("disk limit (again)", measure_limit, scratch, cfg["limit_seconds"]))
        result["limits"] = limits
        result["limit"] = {k: (limits[0][k] + limits[1][k]) / 2 for k in limits[0]}
        result["targets"] = targets(result)
        result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        result["phase_seconds"] = phases
        result["run_seconds"] = round(time.perf_counter() - t_run, 1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
