"""``schedy simulate`` as a real process: the table, the plots, and logs that the other commands read."""

import json


def test_simulate_prints_the_table_writes_plots_and_ordinary_logs(cli, tmp_path):
    plots = tmp_path / "plots"
    db = tmp_path / "simulated"
    done = cli("simulate", "toy", "--seeds", "3", "--segments", "6", "--plots", plots, "--db", db)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "toy problem of the PBT paper" in out and "3 seeds (0..2)" in out and "1 worker(s)" in out
    for strategy in ("pbt", "explore-only", "exploit-only", "grid"):
        assert f"\n  {strategy} " in out
    assert "permutation test" in out and "12 runs, 144 simulated segments" in out
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
    done = cli("simulate", "lr-schedule", "-s", "pbt", "-s", "random", "--seeds", "2", "--population", "4",
               "--segments", "5", "--workers", "2", "--failure-rate", "0.2", "--restart", "30", "--processes", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failure rate 0.2 per segment, restart after 30 s" in done.stdout
    assert "budget 20 segments" in done.stdout and "\n  pbt " in done.stdout and "\n  random " in done.stdout


def test_simulate_usage_errors(cli):
    bad = cli("simulate", "toy", "-s", "nope")
    assert bad.returncode == 2 and "unknown strategy 'nope'" in bad.stderr and "explore-only" in bad.stderr
    assert cli("simulate", "toy", "--population", "4").returncode == 2
    assert cli("simulate", "mnist").returncode == 2
    assert cli("simulate", "toy", "--failure-rate", "1").returncode == 2
    helped = cli("simulate", "--help")
    assert helped.returncode == 0 and "--plots DIR" in helped.stdout and "lr-schedule" in helped.stdout
