"""``schedy simulate`` with ASHA and Hyperband, as a real process: noisy-curves, the rungs, and bad combinations."""

import csv
import io
import json
import re

import pytest

PAIR = re.compile(r"^\s+(random|asha|hyperband)\s+(random|asha|hyperband)\s+[+-]\d")


def rows_of(out, strategies):
    """The rows of the table of strategies (not of the pairs), split on spaces."""
    row = re.compile(rf"^\s+({'|'.join(strategies)})\s+\d")
    return [line.split() for line in out.splitlines() if row.match(line)]


def test_noisy_curves_compares_random_search_asha_and_hyperband_at_equal_compute(cli, tmp_path):
    plots, db = tmp_path / "plots", tmp_path / "simulated"
    args = ("simulate", "noisy-curves", "--seeds", "2", "--segments", "9", "--processes", "1")
    done = cli(*args, "--plots", plots, "--db", db)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Simulating noisy-curves: learning curves" in out and "3 strategies x 2 seeds (0..1); 8 worker(s)" in out
    assert "budget 144 segments" in out  # 16 full trainings of 9 segments
    assert "asha and hyperband: rungs of 1, 3, 9 segments (reduction factor 3)" in out
    rows = rows_of(out, ("random", "asha", "hyperband"))
    assert [r[0] for r in rows] == ["random", "asha", "hyperband"]
    assert all(r[1] == "2" and float(r[-1]) == 144.0 for r in rows)  # every strategy reports the whole budget
    assert "permutation test" in out and "6 runs, 864 simulated segments" in out
    pairs = [PAIR.match(line).groups() for line in out.splitlines() if PAIR.match(line)]
    assert pairs == [("random", "asha"), ("random", "hyperband"), ("asha", "hyperband")]
    names = ["noisy-curves-best.png", "noisy-curves-population.png", "noisy-curves-schedule.png"]
    assert sorted(p.name for p in plots.iterdir()) == sorted(names)
    assert all((plots / n).read_bytes()[:4] == b"\x89PNG" for n in names)

    verify = cli("verify", "--db", db)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    for strategy in ("random", "asha", "hyperband"):
        assert f"noisy-curves-{strategy}-seed0: " in verify.stdout
    exported = cli("export", "noisy-curves-asha-seed0", "--db", db)
    assert exported.returncode == 0, exported.stderr
    jobs = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert {j["resource"] for j in jobs} <= {"1", "3", "9"} and any(j["parent_id"] for j in jobs)
    promoted = max((j for j in jobs if j["parent_id"]), key=lambda j: int(j["rung"]))
    lineage = cli("lineage", "noisy-curves-asha-seed0", promoted["job_id"], "--json", "--db", db)
    assert lineage.returncode == 0, lineage.stderr
    chain = [json.loads(line) for line in lineage.stdout.splitlines()]
    assert [j["generation"] for j in chain] == list(range(int(promoted["rung"]) + 1))
    assert len({j["member"] for j in chain}) == 1 and all("loss" in j["results"] for j in chain)

    again = cli(*args, "-s", "asha", "--seeds", "1", "--db", db)
    assert again.returncode == 1 and "already holds a log" in again.stderr


def test_the_rungs_come_from_the_command_line(cli, tmp_path):
    db = tmp_path / "simulated"
    done = cli(
        "simulate",
        "noisy-curves",
        "-s",
        "asha",
        "-s",
        "hyperband",
        "-s",
        "random",
        "--seeds",
        "2",
        "--segments",
        "8",
        "--min-resource",
        "2",
        "--reduction-factor",
        "2",
        "--budget",
        "100",
        "--workers",
        "2,4",
        "--failure-rate",
        "0.1",
        "--restart",
        "30",
        "--processes",
        "1",
        "--db",
        db,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "3 strategies x 2 worker counts (2, 4) x 2 seeds (0..1); budget 100 segments" in out
    assert "asha and hyperband: rungs of 2, 4, 8 segments (reduction factor 2)" in out
    rows = rows_of(out, ("asha", "hyperband", "random"))
    assert [(r[0], r[1]) for r in rows] == [(s, n) for s in ("asha", "hyperband", "random") for n in ("2", "4")]
    assert all(float(r[-2]) == 100.0 for r in rows)  # the same budget for each, despite the failures

    for strategy, brackets in (("asha", None), ("hyperband", "3, starting at 2, 4, 8")):
        shown = cli("show", f"noisy-curves-{strategy}-w2-seed0", "--db", db)
        assert shown.returncode == 0, shown.stderr
        assert "min resource      2\n" in shown.stdout and "max resource      8\n" in shown.stdout
        assert "reduction factor  2\n" in shown.stdout and "rung resources    2, 4, 8\n" in shown.stdout
        assert ("brackets" in shown.stdout) == (brackets is not None)
        if brackets:
            assert f"brackets          {brackets}\n" in shown.stdout
    verify = cli("verify", "--db", db)
    assert verify.returncode == 0 and "6 experiments checked" in verify.stdout, verify.stdout + verify.stderr


def test_max_resource_and_a_single_strategy(cli):
    done = cli("simulate", "noisy-curves", "-s", "hyperband", "--seeds", "1", "--max-resource", "9", "--budget", "60")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "hyperband: rungs of 1, 3, 9 segments (reduction factor 3)" in done.stdout
    assert "pairs" not in done.stdout and "1 runs, 60 simulated segments" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("lr-schedule", "-s", "asha"), "unknown strategy 'asha' for lr-schedule (it is a strategy of noisy-curves)"),
        (("toy", "-s", "hyperband"), "choose among pbt, explore-only"),
        (("noisy-curves", "-s", "pbt"), "unknown strategy 'pbt' for noisy-curves (it is a strategy of toy and"),
        (("toy", "--min-resource", "2"), "--min-resource applies to ASHA and Hyperband, which toy does not offer"),
        (("lr-schedule", "--max-resource", "9"), "noisy-curves does"),
        (
            ("noisy-curves", "-s", "random", "--reduction-factor", "2", "--max-resource", "9"),
            "--max-resource and --reduction-factor apply to asha and hyperband, and none of the chosen strategies "
            "(random) is one",
        ),
        (("noisy-curves", "--min-resource", "30"), "--min-resource 30 is more than the maximum resource, 27"),
        (("noisy-curves", "--segments", "4", "--min-resource", "5"), "--segments 4"),
        (
            ("noisy-curves", "--min-resource", "9", "--max-resource", "3"),
            "--min-resource 9 is more than --max-resource 3",
        ),
        (("noisy-curves", "--reduction-factor", "1"), "--reduction-factor"),
        (("noisy-curves", "--min-resource", "0"), "--min-resource"),
        (("noisy-curves", "--population", "4"), "--population applies to lr-schedule only: noisy-curves has no"),
        (("toy", "--population", "4"), "--population applies to lr-schedule only: toy has no population"),
        (("curves",), "'curves' is not one of 'toy', 'lr-schedule', 'noisy-curves'"),
    ],
)
def test_bad_combinations_are_usage_errors_that_say_what_is_wrong(cli, args, message):
    bad = cli("simulate", *args, "--seeds", "1")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert message in " ".join(bad.stderr.split()), bad.stderr
    assert bad.stdout == ""  # nothing ran


def test_help_lists_the_problems_strategies_and_rung_options(cli):
    helped = cli("simulate", "--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    assert "{toy|lr-schedule|noisy-curves}" in text
    assert "noisy- curves: random, asha, hyperband" in text or "noisy-curves: random, asha, hyperband" in text
    for option in ("--min-resource SEGMENTS", "--max-resource SEGMENTS", "--reduction-factor ETA"):
        assert option in text
