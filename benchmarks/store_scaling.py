#!/usr/bin/env python
"""How far one log on object storage scales: a model of the store, checked against real processes, then swept.

    python benchmarks/store_scaling.py [--quick] [--skip-real] [--seed N] [--json out.json]

No machine of ours can run 1,024 workers against S3, so this measures a model
(``schedy.simulation.storemodel``: a discrete-event simulation of the store and
of the append loop, request for request, driving the real retry policy
``schedy.adapters.stream.Backoff`` on its clock), after checking the model
against the real loop. In one run:

1. **Sizes.** Commit objects of each kind (a claim of a random search of two
   hyperparameters, a lease renewal, a DONE report) written by the real code
   on a ``memory://`` database, and the CPU time of folding one commit
   (``schedy.core.state.fold`` over 2,000 of them). The validation uses them;
   the sweep uses the model's constants (``SIZES``, ``FOLD``), taken from such
   a run, so that it gives the same figures on every machine.
2. **The model against real processes** (skipped with ``--skip-real``): worker
   processes on a moto S3 server, through ``measure_throughput`` of
   ``benchmarks/objectstore.py`` (1, 4 and 8 processes, each its own
   ``SchedyDB``, cycles of ``with exp.next_job() as job:`` for 3 seconds, 2
   with ``--quick``; with no work between jobs, and in the full run with 200 ms
   of work too). The model runs the same cycles in the same window, configured
   two ways: *predicted*, moto as one server answering one request at a time,
   its service time the server's CPU time per request and the rest of the round
   trip the client's, both measured in the 1-process run of the same series;
   *given the latency*, the mean time each request of that real run took (the
   processes' wall time less backoff sleeps and work, over their requests), as
   independent lognormal latencies answered one at a time per worker (moto
   serves GETs in flight one after another). Compared: cycles (claims) per
   second, requests and lost races per claim, cycle p50 and p95, backoff.
   Each model figure is the mean of 5 seeds.
3. **The sweep.** 16, 64, 256 and 1,024 workers, jobs of 10 s, 60 s and 600 s
   (each drawn uniformly between half and 1.5 times that), Schedy's default
   lease (renewed every 30 s), a cloud store whose every request takes a
   lognormal time of median 25 ms and 99th percentile 100 ms, the reader of
   ``ObjectLogStore.read`` (GET the next versions, windows of up to 64, 16
   threads). All workers start at once; figures are counted from the moment
   every worker has finished a job, until they have claimed two jobs each on
   average and at least one job length has passed. Cost is at S3 Standard's
   request prices. ``--quick``: 16, 64 and 256 workers, jobs of 10 s and 60 s.
4. **Beyond one log**: the same model with a longer lease, with report and next
   claim in one commit (a protocol Schedy does not have), with the workers
   split over several logs, and with the listing reader of before.

The simulations run in two processes. Printed: tables of each part, and the
saturation point (the highest commit rate one log sustained, and the number
of workers that demands it for each job length). ``--json`` writes every
figure (default for a full run: benchmarks/results/store_scaling-<date>.json).
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))  # benchmark the checkout this script lives in; benchmarks/objectstore.py

import obstore
from machine import describe

import schedy
from schedy.adapters import objectstore as objectstore_module
from schedy.core.codec import decode_commit
from schedy.core.events import DEFAULT_LEASE
from schedy.core.state import fold
from schedy.random import Choice, LogUniform
from schedy.simulation.storemodel import (
    BEAT,
    BOTH,
    CLAIM,
    CREATED,
    FOLD,
    REPORT,
    S3_STANDARD,
    SIZES,
    Fifo,
    Lognormal,
    StoreModel,
)

WORKERS = (16, 64, 256, 1024)
JOBS = (10, 60, 600)
CLOUD = Lognormal(0.025, 0.100)
SEEDS = 5  # model runs per real run of the validation
PRICES_SOURCE = "https://aws.amazon.com/s3/pricing/ (S3 Standard, US East (N. Virginia))"


# ---------------------------------------------------------------------------------------------------------------
# 1. What the real code writes.


def measure_sizes():
    """Bytes of each kind of commit object, and CPU seconds to fold one commit, from real worker cycles."""
    name = f"sizes-{uuid.uuid4().hex[:8]}"
    db = schedy.SchedyDB(f"memory://{name}/db", worker=f"ip-10-0-1-23:12345:{uuid.uuid4().hex[:8]}")
    exp = db.add_experiment(schedy.RandomSearch("e", {"lr": LogUniform(1e-5, 1e-1), "layers": Choice([1, 2, 3, 4])}))
    for i in range(1000):
        with exp.next_job() as job:
            if i == 0:
                job._renew()  # one lease renewal, as the lease keeper writes it
            job.results["loss"] = job.hyperparameters["lr"] * job.hyperparameters["layers"]
    store = objectstore_module.memory_store(name)
    records = [
        bytes(obstore.get(store, meta["path"]).bytes())
        for batch in obstore.list(store, "db/experiments/e/log/")
        for meta in batch
    ]
    objectstore_module._MEMORY.pop(name, None)
    pairs = sorted(((decode_commit(r.rstrip(b"\n")), len(r)) for r in records), key=lambda p: p[0].version)
    commits = [c for c, _ in pairs]
    by_kind = {}
    for c, size in pairs:
        types = {e["type"] for e in c.events}
        kind = (
            CREATED
            if "ExperimentCreated" in types
            else CLAIM
            if "JobClaimed" in types
            else BEAT
            if "JobHeartbeat" in types
            else REPORT
        )
        by_kind.setdefault(kind, []).append(size)
    sizes = {k: round(sum(v) / len(v)) for k, v in by_kind.items()}
    sizes[BOTH] = sizes[CLAIM] + sizes[REPORT] - 150  # one commit's envelope (version, time, worker, token, CRC) less
    t0 = time.process_time()
    for _ in range(3):
        fold(commits, None, "e")
    fold_s = (time.process_time() - t0) / (3 * len(commits))
    return sizes, fold_s


# ---------------------------------------------------------------------------------------------------------------
# 2. The model against real processes on moto.


def real_runs(processes, window, works):
    """benchmarks/objectstore.py's measure_throughput on a moto server of its own: one row per (work, processes)."""
    import objectstore as bench  # benchmarks/objectstore.py

    server = bench.Server()
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": server.endpoint,
            "AWS_ACCESS_KEY_ID": "schedy-bench",
            "AWS_SECRET_ACCESS_KEY": "schedy-bench",
            "AWS_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }
    )
    try:
        locations = bench.Locations(server.endpoint)
        return {work: bench.measure_throughput(locations, server, processes, window, work) for work in works}
    finally:
        server.stop()


def requests_per_cycle(row):
    r = row["requests_per_cycle_client"]
    return r["LIST"] + r["GET"] + r["PUT"] + r["PUT refused"]


def calibrate(one):
    """moto as one FIFO server, from a 1-process run: (service s per request, the rest of a round trip)."""
    n = requests_per_cycle(one)
    round_trip = (one["seconds"] / one["cycles"] - one["work_ms"] / 1000) / n
    service = one["server_cpu_ms_per_cycle"] / 1000 / n
    return Fifo(service, max(0.0, round_trip - service), jitter=0.3)


def loaded_latency(row):
    """The mean time one request took in a real run: wall time of the processes less sleeps and work."""
    busy = (
        row["processes"] * row["seconds"]
        - sum(p["backoff_s"] for p in row["per_process"])
        - row["cycles"] * row["work_ms"] / 1000
    )
    return busy / (row["cycles"] * requests_per_cycle(row))


def model_window(processes, work, latency, window, lanes, seeds, sizes, fold_s):
    runs = [
        StoreModel(
            processes, work, latency=latency, lanes=lanes, sizes=sizes, fold=fold_s, lease=0, seed=seed
        ).run_window(window)
        for seed in range(seeds)
    ]
    mean = lambda f: sum(f(r) for r in runs) / len(runs)
    return {
        "claims_per_s": mean(lambda r: r["claims_per_s"]),
        "requests_per_claim": {
            k: mean(lambda r, k=k: r["requests_per_claim"][k]) for k in ("LIST", "GET", "GET 404", "PUT", "PUT refused")
        },
        "lost_per_claim": mean(lambda r: r["lost_per_claim"]),
        "cycle_ms_p50": 1000 * mean(lambda r: r["cycle"]["p50"] or 0),
        "cycle_ms_p95": 1000 * mean(lambda r: r["cycle"]["p95"] or 0),
        "backoff_ms_per_claim": 1000 * mean(lambda r: r["slept_per_claim"]),
        "latency": repr(latency),
    }


def validation(processes, window, works, sizes, fold_s):
    real = real_runs(processes, window, works)
    predicted = calibrate(real[works[0]][0])  # the 1-process run of the first series (no work)
    rows = []
    for work, series in real.items():
        for row in series:
            p = row["processes"]
            lost = row["lost_races"] / max(row["cycles"], 1)
            rc = row["requests_per_cycle_client"]
            rows.append(
                {
                    "processes": p,
                    "work_ms": work,
                    "source": "real",
                    "claims_per_s": row["cycles_per_s"],
                    "requests_per_claim": {
                        "LIST": rc["LIST"],
                        "GET": rc["GET"],
                        "PUT": rc["PUT"],
                        "PUT refused": rc["PUT refused"],
                    },
                    "lost_per_claim": lost,
                    "cycle_ms_p50": row["cycle_ms_p50"],
                    "cycle_ms_p95": row["cycle_ms_p95"],
                    "backoff_ms_per_claim": row["backoff_ms_per_cycle"],
                    "latency": f"{1000 * loaded_latency(row):.2f} ms per request (wall time less sleeps and "
                    f"work, over requests)",
                    "raw": row,
                }
            )
            for source, latency, lanes in (
                ("model, predicted", predicted, 16),
                ("model, given the latency", Lognormal.with_mean(loaded_latency(row)), 1),
            ):
                m = model_window(p, work / 1000, latency, window, lanes, SEEDS, sizes, fold_s)
                rows.append({"processes": p, "work_ms": work, "source": source, **m})
    return rows


# ---------------------------------------------------------------------------------------------------------------
# 3 and 4. The sweep and the variants.


def beats_per_job(job, lease, latency=0.06):
    """Lease renewals in a job drawn uniformly in [job/2, 3 job/2] (every lease/4, after the last is written)."""
    if not lease:
        return 0.0
    beat = lease / 4 + latency
    grid = [job * (0.5 + (i + 0.5) / 1000) for i in range(1000)]
    return sum(int(d // beat) for d in grid) / len(grid)


def simulate(config):
    """One configuration of the sweep (run in a pool of processes)."""
    t0 = time.perf_counter()
    cfg = dict(config)
    label, job, sizes, fold_s, seed = (
        cfg.pop("label"),
        cfg.pop("job"),
        cfg.pop("sizes"),
        cfg.pop("fold"),
        cfg.pop("seed"),
    )
    logs = cfg.pop("logs", 1)
    model = StoreModel(
        cfg.pop("workers"), (job / 2, 3 * job / 2), latency=CLOUD, sizes=sizes, fold=fold_s, seed=seed, **cfg
    )
    s = model.run_steady(min_window=job, claims_per_worker=2.0, max_time=4000.0)
    lease = model.lease
    per_job = (1 if model.combined else 2) + beats_per_job(job, lease)
    s.update(
        label=label,
        job=job,
        lease=lease,
        combined=model.combined,
        reader=model.reader,
        logs=logs,
        demand_commits_per_s=model.n * per_job / job,
        commits_per_job_ideal=per_job,
        sim_seconds=round(time.perf_counter() - t0, 1),
    )
    return s


def run_all(configs, jobs=2):
    order = sorted(range(len(configs)), key=lambda i: -configs[i]["workers"] * (1 + 60 / configs[i]["job"]))
    out = [None] * len(configs)
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(simulate, configs[i]): i for i in order}
        for f in concurrent.futures.as_completed(futures):
            out[futures[f]] = f.result()
    return out


# ---------------------------------------------------------------------------------------------------------------
# Output.


def table(headers, rows):
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + line for line in lines)


def g(x, digits=3):
    if x is None:
        return None
    if isinstance(x, int) or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def validation_table(rows):
    body = []
    for r in rows:
        q = r["requests_per_claim"]
        body.append(
            [
                r["processes"],
                g(r["work_ms"]),
                r["source"],
                g(r["claims_per_s"]),
                g(q["LIST"], 2),
                g(q["GET"], 3),
                g(q["PUT"] + q["PUT refused"], 3),
                g(r["lost_per_claim"], 2),
                g(r["cycle_ms_p50"]),
                g(r["cycle_ms_p95"]),
                g(r["backoff_ms_per_claim"]),
            ]
        )
    return table(
        [
            "procs",
            "work ms",
            "",
            "claims/s",
            "LIST/claim",
            "GET/claim",
            "PUT/claim",
            "lost/claim",
            "cycle p50 ms",
            "cycle p95 ms",
            "backoff ms/claim",
        ],
        body,
    )


def sweep_tables(rows):
    first = []
    second = []
    for r in rows:
        q = r["requests_per_claim"]
        first.append(
            [
                r["label"],
                r["workers"],
                g(r["job"]),
                g(r["demand_commits_per_s"]),
                g(r["commits_per_s"]),
                g(r["claims_per_s"]),
                g(r["commits"] / max(r["claims"], 1)),
                g(q["GET"]),
                g(q["PUT"] + q["PUT refused"]),
                g(r["lost_per_claim"]),
                g(r["bytes_per_claim"] / 1000),
                f"{r['cost_per_1000_jobs']:.3f}",
            ]
        )
        c, b = r["claim_wait"], r["between_jobs"]
        second.append(
            [
                r["label"],
                r["workers"],
                g(r["job"]),
                g(c["p50"]),
                g(c["p99"]),
                g(c["max"]),
                g(b["p50"]),
                g(b["p99"]),
                g(b["max"]),
                f"{100 * r['busy']:.1f}",
                g(r["launch"]),
                r["lapsed"],
                r["gave_up"],
                g(r["seconds"]),
                r["sim_seconds"],
            ]
        )
    return (
        table(
            [
                "",
                "workers",
                "job s",
                "demand commits/s",
                "commits/s",
                "claims/s",
                "commits/claim",
                "GET/claim",
                "PUT/claim",
                "lost/claim",
                "KB/claim",
                "$/1000 jobs",
            ],
            first,
        ),
        table(
            [
                "",
                "workers",
                "job s",
                "claim wait p50 s",
                "p99",
                "max",
                "between jobs p50 s",
                "p99",
                "max",
                "training %",
                "launch s",
                "lapsed",
                "gave up",
                "window s",
                "sim s",
            ],
            second,
        ),
    )


def saturation(rows):
    saturated = [r for r in rows if r["busy"] < 0.9 and r["reader"] == "probe" and not r["combined"]]
    ceiling = max((r["commits_per_s"] for r in saturated), default=None)
    out = {
        "ceiling_commits_per_s": ceiling,
        "mean_latency_s": CLOUD.mean(),
        "bound_commits_per_s": 1 / CLOUD.mean(),
        "workers_at_ceiling": {},
    }
    if ceiling:
        for job in sorted({r["job"] for r in rows}):
            per_job = 2 + beats_per_job(job, DEFAULT_LEASE)
            out["workers_at_ceiling"][job] = round(ceiling * job / per_job)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller sweep and shorter real runs")
    parser.add_argument("--skip-real", action="store_true", help="no real processes: the model only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    t_run = time.perf_counter()
    quick = args.quick
    machine = describe(["obstore", "moto"])
    print(
        f"machine: {machine['usable_cpus']} CPUs ({machine['cpu']}), {machine['memory_gib']} GiB, "
        f"{machine['implementation']} {machine['python']}, schedy {machine['schedy_commit']}"
    )
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": quick,
        "command": "python benchmarks/store_scaling.py" + " --quick" * quick + " --skip-real" * args.skip_real,
        "machine": machine,
        "seed": args.seed,
        "prices": S3_STANDARD,
        "prices_source": PRICES_SOURCE,
        "cloud_latency": repr(CLOUD),
    }

    sizes, fold_s = measure_sizes()
    result.update(sizes=sizes, fold_seconds_per_commit=fold_s)
    print(
        f"\n1. Commit objects written by the real code (bytes): {sizes}; folding one commit: "
        f"{fold_s * 1e6:.1f} us of CPU. The sweep uses the model's constants (the same on every machine): "
        f"{SIZES}, {FOLD * 1e6:g} us"
    )

    if not args.skip_real:
        window = 2.0 if quick else 3.0
        works = (0,) if quick else (0, 200)
        print(
            f"\n2. The model against real processes on moto ({window:g} s windows; model: mean of {SEEDS} seeds) ...",
            flush=True,
        )
        t0 = time.perf_counter()
        rows = validation((1, 4, 8), window, works, sizes, fold_s)
        result["validation"] = rows
        result["validation_seconds"] = round(time.perf_counter() - t0, 1)
        print(validation_table(rows))
        for r in rows:
            if r["source"] != "real":
                continue
            print(f"  {r['processes']} process(es), {r['work_ms']:g} ms of work: {r['latency']}")
        fifo = next(r for r in rows if r["source"] == "model, predicted")["latency"]
        print(f"  predicted from the 1-process run: {fifo}")

    workers = WORKERS[:3] if quick else WORKERS
    jobs = JOBS[:2] if quick else JOBS
    common = {"sizes": SIZES, "fold": FOLD, "seed": args.seed}  # the model's constants: the same sweep everywhere
    configs = [{"label": "one log", "workers": n, "job": job, **common} for n in workers for job in jobs]
    if quick:
        variants = [
            {"label": "lease 1 h", "workers": 256, "job": 60, "lease": 3600.0, **common},
            {"label": "listing reader", "workers": 64, "job": 60, "reader": "list", **common},
        ]
    else:
        variants = [
            {"label": "lease 1 h", "workers": 1024, "job": 600, "lease": 3600.0, **common},
            {"label": "lease 1 h", "workers": 1024, "job": 60, "lease": 3600.0, **common},
            {
                "label": "lease 1 h, report+claim",
                "workers": 1024,
                "job": 60,
                "lease": 3600.0,
                "combined": True,
                **common,
            },
            {"label": "1 of 8 logs", "workers": 128, "job": 10, "logs": 8, **common},
            {"label": "listing reader", "workers": 256, "job": 60, "reader": "list", **common},
        ]
    print(
        f"\n3. One log, {len(configs)} configurations, and 4. {len(variants)} variants beyond it (two processes) ...",
        flush=True,
    )
    t0 = time.perf_counter()
    out = run_all(configs + variants)
    result["sweep_seconds"] = round(time.perf_counter() - t0, 1)
    result["sweep"], result["variants"] = out[: len(configs)], out[len(configs) :]
    a, b = sweep_tables(out)
    print(
        f"Cloud latency {CLOUD!r} per request; default lease {DEFAULT_LEASE:g} s; costs at S3 Standard request prices"
    )
    print(a)
    print()
    print(b)
    sat = saturation(result["sweep"])
    result["saturation"] = sat
    if sat["ceiling_commits_per_s"]:
        print(
            f"\nSaturation: one log sustained at most {sat['ceiling_commits_per_s']:.1f} commits/s (1 / mean latency "
            f"= {sat['bound_commits_per_s']:.1f}/s); workers that demand that many: "
            + ", ".join(f"{n:,} with {job:g}-s jobs" for job, n in sat["workers_at_ceiling"].items())
        )
    result["run_seconds"] = round(time.perf_counter() - t_run, 1)
    print(f"\nrun: {result['run_seconds']} s")
    path = args.json or (
        None
        if quick
        else str(ROOT / "benchmarks" / "results" / f"store_scaling-{datetime.date.today().isoformat()}.json")
    )
    if path:
        Path(path).write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
