"""``schedy simulate`` as a real process: the table, the plots, and logs that the other commands read."""

import json
import re

LABEL = re.compile(r"[a-z-]+ @ \d+ workers?")


def test_simulate_prints_the_table_writes_plots_and_ordinary_logs(cli, tmp_path):
    plots = tmp_path / "plots"
    db = tmp_path / "simulated"
    done = cli("simulate", "toy", "--seeds", "3", "--segments", "6", "--plots", plots, "--db", db)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "toy problem of the PBT paper" in out and "3 seeds (0..2)" in out and "1 worker(s)" in out
    for strategy in ("pbt", "explore-only", "exploit-only", "grid", "pbt-sync", "pb2"):
        assert f"\n  {strategy} " in out
    assert "permutation test" in out and "18 runs, 216 simulated segments" in out
    assert "simulating" not in out and "\r" not in out and "\x1b[" not in out  # no progress bar when piped
    names = ["toy-best.png", "toy-population.png", "toy-schedule.png", "toy-theta.png"]
    assert sorted(p.name for p in plots.iterdir()) == sorted(names)
    assert all((plots / n).read_bytes()[:4] == b"\x89PNG" for n in names)

    verify = cli("verify", "--db", db)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for strategy in ("pbt", "explore-only", "exploit-only", "grid"):
        assert f"toy-{strategy}-seed0: " in verify.stdout
    history = cli("history", "toy-pbt-seed0", "--json", "--db", db)
    assert history.returncode == 0, history.stderr
    commits = [json.loads(line) for line in history.stdout.splitlines()]
    assert commits[0]["worker"] == "simulation" and commits[0]["time"] == 1735689600.0
    last_job = max(int(e["job"]) for c in commits for e in c["events"] if e["type"] == "JobAdded")
    lineage = cli("lineage", "toy-pbt-seed0", str(last_job), "--json", "--db", db)
    assert lineage.returncode == 0, lineage.stderr
    chain = [json.loads(line) for line in lineage.stdout.splitlines()]
    assert chain[0]["generation"] == 0 and chain[-1]["job_id"] == str(last_job)
    assert all("Q" in j["results"] for j in chain)

    again = cli("simulate", "toy", "--seeds", "1", "--segments", "2", "--db", db)
    assert again.returncode == 1 and "already holds a log" in again.stderr


def test_simulate_the_learning_rate_problem_with_failures(cli):
    done = cli(
        "simulate",
        "lr-schedule",
        "-s",
        "pbt",
        "-s",
        "random",
        "--seeds",
        "2",
        "--population",
        "4",
        "--segments",
        "5",
        "--workers",
        "2",
        "--failure-rate",
        "0.2",
        "--restart",
        "30",
        "--processes",
        "1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failure rate 0.2 per segment, restart after 30 s" in done.stdout
    assert "budget 20 segments" in done.stdout and "\n  pbt " in done.stdout and "\n  random " in done.stdout


def test_simulate_compares_worker_counts_in_one_table(cli, tmp_path):
    args = (
        "simulate",
        "lr-schedule",
        "--seeds",
        "2",
        "--population",
        "4",
        "--segments",
        "4",
        "--failure-rate",
        "0.1",
        "--restart",
        "30",
        "--processes",
        "1",
        "-s",
        "pbt",
        "-s",
        "random",
    )
    repeated = cli(*args, "--workers", "1", "--workers", "2", "--workers", "4")
    listed = cli(*args, "--workers", "1,2", "--workers", "4", "--db", tmp_path / "sim")
    for done in (repeated, listed):
        assert done.returncode == 0, done.stdout + done.stderr
    out = repeated.stdout
    assert "2 strategies x 3 worker counts (1, 2, 4) x 2 seeds (0..1); budget 16 segments" in out
    assert "worker(s)" not in out and "12 runs, " in out
    head = next(line for line in out.splitlines() if line.strip().startswith("strategy"))
    assert head.split() == [
        "strategy",
        "workers",
        "runs",
        "by",
        "1/4",
        "by",
        "1/2",
        "final",
        "std",
        "median",
        "segments",
        "hours",
    ]
    rows = [line.split() for line in out.splitlines() if line.startswith(("  pbt  ", "  random  "))]
    assert [(r[0], r[1], r[2]) for r in rows] == [(s, n, "2") for s in ("pbt", "random") for n in ("1", "2", "4")]
    for r in rows:  # the whole budget, in every run despite the failures (PBT may finish first: max_generations)
        assert float(r[-2]) == 16.0 if r[0] == "random" else float(r[-2]) <= 16.0
    pairs = [LABEL.findall(line)[:2] for line in out.splitlines() if " @ " in line]
    assert pairs == [
        ["pbt @ 1 worker", "random @ 1 worker"],
        ["pbt @ 2 workers", "random @ 2 workers"],
        ["pbt @ 4 workers", "random @ 4 workers"],
        ["pbt @ 2 workers", "pbt @ 1 worker"],
        ["pbt @ 4 workers", "pbt @ 1 worker"],
        ["random @ 2 workers", "random @ 1 worker"],
        ["random @ 4 workers", "random @ 1 worker"],
    ]

    def table(text):
        return [
            line
            for line in text.splitlines()
            if "wall time" not in line and "Logs of seed" not in line and "schedy verify" not in line
        ]

    assert table(listed.stdout) == table(out)  # a comma-separated list is the same as repeating the option
    verify = cli("verify", "--db", tmp_path / "sim")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for name in ("lr-schedule-pbt-w1-seed0", "lr-schedule-pbt-w4-seed0", "lr-schedule-random-w2-seed0"):
        assert f"{name}: " in verify.stdout


def test_simulate_one_strategy_at_several_worker_counts(cli):
    done = cli("simulate", "toy", "-s", "grid", "--seeds", "2", "--segments", "3", "--workers", "2,1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 strategy x 2 worker counts (2, 1)" in done.stdout
    pairs = [LABEL.findall(line)[:2] for line in done.stdout.splitlines() if " @ " in line]
    assert pairs == [["grid @ 1 worker", "grid @ 2 workers"]]  # against itself at the first count given


def test_simulate_usage_errors(cli):
    bad = cli("simulate", "toy", "-s", "nope")
    assert bad.returncode == 2 and "unknown strategy 'nope'" in bad.stderr and "explore-only" in bad.stderr
    assert cli("simulate", "toy", "--population", "4").returncode == 2
    assert cli("simulate", "mnist").returncode == 2
    assert cli("simulate", "toy", "--failure-rate", "1").returncode == 2
    for workers in ("0", "2,x", "1,,2", "-1"):
        bad = cli("simulate", "toy", "--workers", workers)
        assert bad.returncode == 2 and "--workers" in bad.stderr, (workers, bad.stderr)
    twice = cli("simulate", "toy", "--workers", "1,2", "--workers", "2")
    assert twice.returncode == 2 and "--workers 2 is given twice" in twice.stderr
    helped = cli("simulate", "--help")
    assert helped.returncode == 0 and "--plots DIR" in helped.stdout and "lr-schedule" in helped.stdout
    assert "--workers 1,2,4" in helped.stdout
