"""``schedy history``, ``schedy lineage`` and ``schedy export``, run as the installed executable.

The database is written in this process (with a clock the test sets, so
every commit's time is known) and read by the command in a subprocess. Each
run costs about 0.3 s, so each test checks many things per run.
"""

import csv
import io
import json
import math
import os
import re
import subprocess

import pandas as pd
import pytest
from conftest import SCHEDY_EXE, log_commits, log_size
from test_audit_api import FIXED, T0, Clock, small_pbt  # one clock, column list and PBT for both files

import schedy
from schedy import audit


def open_db(path, worker, clock=None):
    """A SchedyDB whose every experiment writes with ``clock`` (when given)."""
    db = schedy.SchedyDB(path, worker=worker)
    if clock is not None:
        make = db._view

        def view(name):
            v = make(name)
            v.clock = clock
            return v

        db._view = view
    return db


def json_lines(text):
    """JSON lines split as the format says, on "\n" only (a JSON string may hold U+2028 as it is)."""
    assert text.endswith("\n") or text == ""
    return [json.loads(line) for line in text.split("\n")[:-1]]


def commit_dicts(commits):
    return [{"version": c.version, "time": c.time, "worker": c.worker, "events": c.events} for c in commits]


@pytest.fixture
def story(cli):
    """Experiment "exp": commit v at T0 + 60 (v - 1); alice and a worker with a hostile name; hostile values."""
    clock = Clock(T0)
    alice = open_db(cli.db, "alice", clock)
    exp = alice.add_experiment(schedy.ManualSearch("exp", lease=600))  # 1
    clock.t += 60
    exp.add_job({"lr": 0.1, "note": "line1\nline2", "sep": "a\u2028b", "esc": "\x1b[2J"})  # 2
    clock.t += 60
    exp.add_job({"lr": 0.2, "we\nird": 1})  # 3
    clock.t += 60
    job = exp.next_job()  # 4
    clock.t += 60
    job.results = {"loss": 0.5}
    job.status = "DONE"
    job.put()  # 5
    clock.t += 60
    evil = open_db(cli.db, "evil\nworker", clock).get_experiment("exp")
    assert evil.next_job().job_id == "2"  # 6
    return exp


def test_history_in_words_and_in_json(cli, story):
    exp = story
    commits = exp.history()
    words = cli("history", "exp")
    as_json = cli("history", "exp", "--json")
    one_then = cli("history", "exp", "1", "--as-of", "4")
    two_then = cli("history", "exp", "2", "--json", "--as-of", "2026-11-29T19:04:30+01:00")  # T0 + 270 s
    for r in (words, as_json, one_then, two_then):
        assert r.returncode == 0 and r.stderr == "", r.stderr

    lines = words.stdout.splitlines()
    assert len(lines) == len(commits) + sum(len(c.events) for c in commits)  # one line per commit and per event
    assert all(line.isprintable() for line in lines)
    assert lines[0] == "#1  2026-11-29T18:00:00.000Z  alice"
    assert lines[1] == f"    experiment 'exp' created: manual, status RUNNING, seed {exp.seed}, lease 600 s"
    assert lines[2] == "#2  2026-11-29T18:01:00.000Z  alice"
    assert lines[3] == ('    job 1 added (QUEUED): lr=0.1, note="line1\\nline2", sep="a\\u2028b", esc="\\u001b[2J"')
    assert "    job 2 added (QUEUED): lr=0.2, 'we\\nird'=1" in lines
    assert "    job 1 claimed by alice until 2026-11-29T18:13:00.000Z" in lines
    assert "    job 1 updated: status DONE; results loss=0.5" in lines
    assert "#6  2026-11-29T18:05:00.000Z  'evil\\nworker'" in lines
    assert lines[-1] == "    job 2 claimed by 'evil\\nworker' until 2026-11-29T18:15:00.000Z"
    expected = "".join(
        f"#{c.version}  {audit.utc(c.time)}  {audit.label(c.worker)}\n"
        + "".join(f"    {audit.describe(e)}\n" for e in c.events)
        for c in commits
    )
    assert words.stdout == expected

    assert json_lines(as_json.stdout) == commit_dicts(commits)
    assert json_lines(as_json.stdout)[5]["worker"] == "evil\nworker"
    assert json_lines(as_json.stdout)[1]["events"][0]["hyperparameters"]["sep"] == "a\u2028b"

    assert one_then.stdout == (
        "#2  2026-11-29T18:01:00.000Z  alice\n"
        f"    {audit.describe(commits[1].events[0])}\n"
        "#4  2026-11-29T18:03:00.000Z  alice\n"
        "    job 1 claimed by alice until 2026-11-29T18:13:00.000Z\n"
    )
    assert json_lines(two_then.stdout) == commit_dicts(exp.history("2")[:1])
    assert log_size(exp._db, "exp") == 6


def test_unknown_names_and_bad_moments_fail_with_a_message(cli, story, tmp_path):
    before = log_commits(story._db, "exp")
    listing = sorted(os.listdir(tmp_path))
    out = tmp_path / "jobs.csv"
    runs = {
        "no experiment": (cli("history", "nope"), 1, "'nope'"),
        "no job": (cli("history", "exp", "99"), 1, "'99'"),
        "no job to trace": (cli("lineage", "exp", "99"), 1, "'99'"),
        "not yet a job": (cli("lineage", "exp", "2", "--as-of", "2"), 1, "'2'"),
        "no experiment to export": (cli("export", "nope", "-o", out), 1, "'nope'"),
        "no such commit": (cli("export", "exp", "--as-of", "999"), 1, "999"),
        "not a moment": (cli("history", "exp", "--as-of", "last tuesday"), 2, "'last tuesday'"),
        "no commit 0": (cli("lineage", "exp", "1", "--as-of", "0"), 2, "start at 1"),
        "parquet on a terminal": (cli("export", "exp", "--format", "parquet"), 2, "-o FILE"),
    }
    for what, (r, status, shown) in runs.items():
        assert r.returncode == status, (what, r.returncode, r.stderr)
        assert shown in r.stderr and r.stdout == "", (what, r.stderr)
        assert "Traceback" not in r.stderr, what
        assert r.stderr.count("\n") <= 4, (what, r.stderr)  # a message (and usage), not a dump
    assert "--as-of" in runs["not a moment"][0].stderr
    assert not out.exists() and sorted(os.listdir(tmp_path)) == listing
    assert log_commits(story._db, "exp") == before


def table_rows(text):
    """The lines of a rich table after its title, without rules: the header first, then one per row."""
    lines = [line.strip() for line in text.splitlines() if set(line.strip()) - {"─", "━", " "}]
    return lines[1:]


def row_pattern(*cells):
    """A regex matching a table line holding ``cells`` in order (an empty cell is only spaces)."""
    return r"\s*".join(re.escape(c) for c in cells)


def test_lineage_of_a_pbt_job(cli):
    db = open_db(cli.db, "trainer")
    exp = db.add_experiment(small_pbt())
    while True:
        try:
            job = exp.next_job()
        except schedy.errors.NoJobError:
            break
        with job:
            job.results["loss"] = abs(math.log10(job.hyperparameters["lr"]) + 2)
            job.results["step"] = int(job.job_id)
    last = exp.all_jobs()[-1]
    chain = exp.lineage(last.job_id)
    assert [j.generation for j in chain] == [0, 1, 2]
    added = exp.history(last.job_id)[0].version
    manual = db.add_experiment(schedy.ManualSearch("m[/b]:smile:"))
    manual.add_job({"[b]name": "[/bold] :smile: [red]x", "esc": "\x1b[2Jclear", "nl": "a\nb"}, results={"loss": 1.0})

    words = cli("lineage", "pbt", last.job_id)
    as_json = cli("lineage", "pbt", last.job_id, "--json")
    then = cli("lineage", "pbt", last.job_id, "--json", "--as-of", added)
    hostile = cli("lineage", "m[/b]:smile:", "1")
    for r in (words, as_json, then, hostile):
        assert r.returncode == 0 and r.stderr == "", r.stderr

    rows = table_rows(words.stdout)
    assert rows[0].split() == ["generation", "job", "parent", "member", "status", "lr", "layers", "loss"]  # the score
    assert len(rows) == 1 + len(chain)
    for row, j in zip(rows[1:], chain):
        assert re.fullmatch(
            row_pattern(
                str(j.generation),
                j.job_id,
                j.parent_id or "",
                str(j.member),
                "DONE",
                format(j.hyperparameters["lr"], ".7g"),
                str(j.hyperparameters["layers"]),
                format(j.results["loss"], ".7g"),
            ),
            row,
        ), row
    assert words.stdout.splitlines()[0].strip() == f"lineage of job {last.job_id} in pbt"

    expected = [
        {
            "job_id": j.job_id,
            "generation": j.generation,
            "parent_id": j.parent_id,
            "member": j.member,
            "status": j.status,
            "hyperparameters": j.hyperparameters,
            "results": j.results,
        }
        for j in chain
    ]
    assert json_lines(as_json.stdout) == expected
    assert expected[1]["parent_id"] == chain[0].job_id and expected[2]["parent_id"] == chain[1].job_id

    past = json_lines(then.stdout)
    assert [p["job_id"] for p in past] == [j.job_id for j in chain]
    assert past[:-1] == expected[:-1]
    assert past[-1]["status"] == "RUNNING" and "loss" not in past[-1]["results"]
    assert past[-1]["results"] == db.get_experiment("pbt", as_of=added).get_job(last.job_id).results

    # Names and values are shown as they are: no markup, no emoji, no terminal control, one line per row.
    assert "\x1b" not in hostile.stdout
    assert "[/bold] :smile: [red]x" in hostile.stdout and "[b]name" in hostile.stdout
    assert "m[/b]:smile:" in hostile.stdout and "\\x1b[2Jclear" in hostile.stdout and "'a\\nb'" in hostile.stdout
    assert len(table_rows(hostile.stdout)) == 2


@pytest.fixture
def export_story(cli):
    clock = Clock(T0)
    db = open_db(cli.db, "alice", clock)
    exp = db.add_experiment(schedy.ManualSearch("exp"))  # 1
    clock.t += 60
    exp.add_job(
        {
            "lr": 0.1,
            "text": 'comma, "quote"\nnewline',
            "layers": [64, 32],
            "flag": True,
            "none": None,
            "mixed": 1,
            "cfg": {"depth": 2},
            "wide": -(2**63),
        }
    )  # 2
    clock.t += 60
    exp.add_job({"lr": 1e-300, "big": 2**64 - 1, "mixed": "one", "text": "3", "wide": 2**64 - 1})  # 3
    clock.t += 60
    job = exp.next_job()  # 4
    clock.t += 60.25
    job.results = {"loss": 0.5, "bad": math.nan, "inf": math.inf}
    job.status = "DONE"
    job.put()  # 5
    return exp


def test_export_as_csv_jsonl_and_parquet(cli, export_story, tmp_path):
    exp = export_story
    plain = cli("export", "exp")
    lines = cli("export", "exp", "--format", "jsonl")
    parquet = cli("export", "exp", "--format", "parquet", "-o", tmp_path / "jobs.parquet")
    then = cli("export", "exp", "-o", tmp_path / "then.csv", "--as-of", "2026-11-29T18:02:00Z")
    for r in (plain, lines, parquet, then):
        assert r.returncode == 0, r.stderr
    assert plain.stderr == lines.stderr == ""
    assert parquet.stderr == f"wrote 2 jobs to {tmp_path / 'jobs.parquet'}\n"
    assert then.stderr == f"wrote 2 jobs to {tmp_path / 'then.csv'}\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["db", "jobs.parquet", "then.csv"])  # no temporary file left

    # CSV: strings as they are, every other value as JSON, times in UTC.
    rows = list(csv.DictReader(io.StringIO(plain.stdout)))
    hp = ["hp.lr", "hp.text", "hp.layers", "hp.flag", "hp.none", "hp.mixed", "hp.cfg", "hp.wide", "hp.big"]
    result = ["result.loss", "result.bad", "result.inf"]
    assert list(rows[0]) == FIXED + hp + result
    one, two = rows
    assert one["job_id"] == "1" and one["status"] == "DONE" and one["claimed_by"] == "alice"
    assert one["added_at"] == "2026-11-29T18:01:00.000Z" and one["claimed_at"] == "2026-11-29T18:03:00.000Z"
    assert one["finished_at"] == "2026-11-29T18:04:00.250Z"
    assert one["claims"] == "1" and one["lease_expiries"] == "0" and one["generation"] == one["parent_id"] == ""
    assert float(one["hp.lr"]) == 0.1 and float(two["hp.lr"]) == 1e-300
    assert one["hp.text"] == 'comma, "quote"\nnewline' and two["hp.text"] == "3"
    assert json.loads(one["hp.layers"]) == [64, 32] and json.loads(one["hp.cfg"]) == {"depth": 2}
    assert one["hp.flag"] == "true" and one["hp.none"] == "null" and two["hp.none"] == ""
    assert one["hp.mixed"] == "1" and two["hp.mixed"] == "one"
    assert int(two["hp.big"]) == 2**64 - 1 and one["hp.big"] == ""
    assert int(one["hp.wide"]) == -(2**63) and int(two["hp.wide"]) == 2**64 - 1
    assert one["result.loss"] == "0.5" and one["result.bad"] == "NaN" and one["result.inf"] == "Infinity"
    assert two["status"] == "QUEUED" and two["claimed_at"] == two["finished_at"] == two["result.loss"] == ""
    frame = pd.read_csv(io.StringIO(plain.stdout), parse_dates=["added_at"])
    assert frame["hp.lr"].tolist() == [0.1, 1e-300] and frame["result.inf"].iloc[0] == math.inf
    assert math.isnan(frame["result.bad"].iloc[0]) and frame["claims"].tolist() == [1, 0]
    assert frame["added_at"].tolist() == [
        pd.Timestamp(T0 + 60, unit="s", tz="UTC"),
        pd.Timestamp(T0 + 120, unit="s", tz="UTC"),
    ]

    # JSON lines: nested, NaN and infinities as null.
    objs = json_lines(lines.stdout)
    assert [list(o) for o in objs] == [FIXED + ["hyperparameters", "results"]] * 2
    assert objs[0]["hyperparameters"] == exp.get_job("1").hyperparameters
    assert objs[1]["hyperparameters"] == {
        "lr": 1e-300,
        "big": 2**64 - 1,
        "mixed": "one",
        "text": "3",
        "wide": 2**64 - 1,
    }
    assert objs[0]["results"] == {"loss": 0.5, "bad": None, "inf": None}
    assert objs[0]["finished_at"] == "2026-11-29T18:04:00.250Z" and objs[1]["finished_at"] is None
    assert objs[0]["claims"] == 1 and objs[0]["generation"] is None

    # Parquet: typed columns; lists, objects, mixed types and integers no 64-bit type holds as JSON text.
    back = pd.read_parquet(tmp_path / "jobs.parquet")
    assert list(back.columns) == FIXED + hp + result
    assert str(back["added_at"].dtype) == "datetime64[us, UTC]" and str(back["generation"].dtype) == "Int64"
    assert back["finished_at"].iloc[0] == pd.Timestamp("2026-11-29T18:04:00.25Z") and pd.isna(back["finished_at"][1])
    assert back["hp.lr"].tolist() == [0.1, 1e-300] and back["claims"].tolist() == [1, 0]
    assert json.loads(back["hp.layers"].iloc[0]) == [64, 32] and pd.isna(back["hp.layers"].iloc[1])
    assert json.loads(back["hp.cfg"].iloc[0]) == {"depth": 2}
    assert back["hp.mixed"].tolist() == ["1", "one"]
    assert back["hp.big"].iloc[1] == 2**64 - 1 and pd.isna(back["hp.big"].iloc[0])  # exactly, not a float
    assert back["hp.wide"].tolist() == [str(-(2**63)), str(2**64 - 1)]  # no 64-bit integer type holds both
    assert back["hp.flag"].iloc[0] == True and pd.isna(back["hp.flag"].iloc[1])  # noqa: E712 - a numpy bool
    assert back["hp.text"].tolist() == ['comma, "quote"\nnewline', "3"]
    assert math.isnan(back["result.bad"].iloc[0]) and back["result.inf"].iloc[0] == math.inf

    # As of 18:02 (commit 3), both jobs waited in the queue.
    past = list(csv.DictReader(open(tmp_path / "then.csv", encoding="utf-8", newline="")))
    assert [(r["job_id"], r["status"], r["claims"]) for r in past] == [("1", "QUEUED", "0"), ("2", "QUEUED", "0")]
    assert "result.loss" not in past[0]
    assert log_size(exp._db, "exp") == 5


def test_a_reader_that_stops_early_is_no_error_but_a_full_disk_is(cli):
    db = open_db(cli.db, "w")
    exp = db.add_experiment(schedy.ManualSearch("big"))
    exp.add_job({"blob": "x" * 300_000})  # far more than a pipe holds
    env = dict(os.environ, SCHEDY_DB=cli.db)
    for command, first_line in ((["history", "big"], b"#1  "), (["export", "big"], b"job_id,status,")):
        with subprocess.Popen([SCHEDY_EXE, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) as proc:
            first = proc.stdout.readline()
            proc.stdout.close()  # like `| head -n 1`
            err = proc.stderr.read().decode()
            status = proc.wait(timeout=60)
        assert first.startswith(first_line), command
        assert err == "", (command, err)  # neither a traceback nor "Error: [Errno 32] Broken pipe"
        # 1 when the closed pipe was met (click's quiet exit); on a loaded machine the run has once ended with 0
        # (not understood yet, left in the closing note): what matters here is that the reader sees no error.
        assert status in (0, 1), command
    # A write that fails for another reason (here a full disk) is an error, and says so.
    with open("/dev/full", "w") as full:
        r = subprocess.run(
            [SCHEDY_EXE, "export", "big", "--format", "jsonl"],
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            timeout=60,
        )
    assert r.returncode == 1 and r.stderr == "Error: cannot write the output: [Errno 28] No space left on device\n"


def test_parquet_without_pyarrow_is_a_message(cli, export_story, tmp_path):
    shim = tmp_path / "shim" / "pyarrow"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('No module named pyarrow (test)')\n")
    out = tmp_path / "jobs.parquet"
    r = cli("export", "exp", "--format", "parquet", "-o", out, env={"PYTHONPATH": str(tmp_path / "shim")})
    assert r.returncode == 1 and "pip install 'schedy[export]'" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
