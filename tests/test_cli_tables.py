"""The tables of ``schedy list -t`` and ``schedy lineage`` never drop a column nor cut a value.

At 80 and 100 columns (``COLUMNS``, as a terminal sets it), with long
hyperparameter names and values such as 3.923273e-06, every header, id,
status and every digit of every number must be in the output: in a table
whose cells fold (numbers, ids and statuses stay whole on one line) or, when
even that does not fit, one paragraph of "field: value" lines per row.
Piped, with no terminal and no ``COLUMNS``, a table is as wide as it needs.
The output is parsed back into headers and cells and compared with the log.
"""

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios

import pytest
from click.testing import CliRunner
from conftest import SCHEDY_EXE

import schedy
from schedy.cli import main
from schedy.cli.jobs import show_value
from schedy.pbt import MINIMIZE, Perturb, Truncate
from schedy.random import LogUniform

LR, WD = "learning_rate_initial", "weight_decay_coefficient"
FIELDS = ["id", "status", "generation", "parent", "member", LR, WD, "validation_loss", "model_path"]
LOSSES = [
    3.923273e-06,
    1.5e-05,
    0.000123456,
    2.5e-07,
    7.777777e-06,
    1e-05,
    4.2e-06,
    9.999999e-05,
    3.141593e-06,
    2.718282e-06,
    1.234567e-06,
    6.02214e-06,
]


@pytest.fixture
def db(tmp_path):
    """A PBT experiment of 12 segments with long hyperparameter names, results like 3.923273e-06 and long paths."""
    database = schedy.SchedyDB(str(tmp_path / "db"))
    exp = database.add_experiment(
        schedy.PopulationBasedTraining(
            "regularisation-sweep",
            MINIMIZE,
            "validation_loss",
            Truncate(0.5),
            {LR: Perturb(), WD: Perturb()},
            {LR: LogUniform(1e-7, 1e-5), WD: LogUniform(1e-7, 1e-5)},
            population_size=4,
            seed=3,
        )
    )
    for loss in LOSSES:
        with exp.next_job() as job:
            job.results["validation_loss"] = loss
            job.results["model_path"] = f"/data/checkpoints/regularisation-sweep/segment-{job.job_id}.pt"
    return database


def invoke(db, columns, *args):
    """``schedy ARGS`` in-process, its output a pipe and ``COLUMNS`` set to ``columns`` (None: unset)."""
    result = CliRunner().invoke(main, [*args, "--db", str(db.path)], env={"COLUMNS": columns and str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def piped(db, *args):
    """``schedy ARGS`` in a subprocess with no terminal at all and no COLUMNS."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [SCHEDY_EXE, *args, "--db", str(db.path)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def squeeze(text):
    return "".join(text.split())


def parse_table(lines):
    """Headers and rows of a rich table: columns are the runs of positions not blank on every line.

    A header broken over several lines, and a cell folded over several lines (a row goes on while its first
    column is empty), are joined back; whitespace is dropped, since a fold may fall on a space.
    """
    rule = next(i for i, line in enumerate(lines) if line.strip() and set(line.strip()) == {"─"})
    head, body = [x for x in lines[:rule] if x.strip()], [x for x in lines[rule + 1 :] if x.strip()]
    width = max(map(len, head + body))
    grid = [x.ljust(width) for x in head + body]
    used = [any(x[i] != " " for x in grid) for i in range(width)]
    spans, start = [], None
    for i, u in enumerate([*used, False]):
        if u and start is None:
            start = i
        elif not u and start is not None:
            spans.append((start, i))
            start = None

    def cells(line):
        return [squeeze(line.ljust(width)[a:b]) for a, b in spans]

    headers = ["".join(parts) for parts in zip(*map(cells, head))]
    rows = []
    for line in body:
        c = cells(line)
        if c[0] or not rows:
            rows.append(c)
        else:
            rows[-1] = [a + b for a, b in zip(rows[-1], c)]
    return headers, rows


def parse_paragraphs(text):
    """One dict per paragraph of "field: value" lines."""
    return [dict(line.split(": ", 1) for line in block.splitlines()) for block in text.strip("\n").split("\n\n")]


def expected_jobs(exp):
    """Each job of ``exp`` as {field: (value shown in a table, value shown in a paragraph)}, in list's order."""
    out = []
    for j in exp.all_jobs():
        row = {
            "id": j.job_id,
            "status": j.status,
            "generation": j.generation,
            "parent": j.parent_id,
            "member": j.member,
            **j.hyperparameters,
            **j.results,
        }
        out.append(
            {
                k: (format(v, ".7g") if isinstance(v, float) else show_value(v), show_value(v))
                for k, v in row.items()
                if v is not None
            }
        )
    return out


def check_layout(text, columns):
    """Nothing cut: no ellipsis, no line wider than the terminal."""
    assert "…" not in text and "..." not in text
    if columns:
        assert max(map(len, text.splitlines())) <= columns, text


def check_listing(text, fields, expected, columns):
    """``text`` (list -t) shows exactly ``fields`` of ``expected`` (expected_jobs), as a table or as paragraphs."""
    check_layout(text, columns)
    expected = [{f: row[f] for f in fields if f in row} for row in expected]
    if "─" in text:
        headers, rows = parse_table(text.splitlines())
        assert headers == fields
        assert rows == [[squeeze(row[f][0]) if f in row else "" for f in fields] for row in expected]
        return "table"
    assert parse_paragraphs(text) == [{k: v[1] for k, v in row.items()} for row in expected]
    return "paragraphs"


@pytest.mark.parametrize("columns", [80, 100, None])
def test_list_table_keeps_every_column_header_and_digit(db, columns):
    exp = db.get_experiment("regularisation-sweep")
    expected = expected_jobs(exp)
    assert any("3.923273e-06" in v for row in expected for v in row["validation_loss"])
    text = invoke(db, columns, "list", "regularisation-sweep", "-t")
    # 9 columns: too many for 80 or 100 columns without cutting; piped, a table as wide as it needs.
    assert check_listing(text, FIELDS, expected, columns) == ("table" if columns is None else "paragraphs")


@pytest.mark.parametrize(
    "columns, fields",
    [
        (80, ["id", "status", "generation", LR, WD, "validation_loss"]),
        (100, ["id", "status", "generation", "parent", LR, WD, "validation_loss"]),
    ],
)
def test_a_table_that_fits_once_its_headers_are_broken_stays_a_table(db, columns, fields):
    exp = db.get_experiment("regularisation-sweep")
    text = invoke(db, columns, "list", "regularisation-sweep", "-t", *(a for f in fields for a in ("-f", f)))
    assert check_listing(text, fields, expected_jobs(exp), columns) == "table"
    # Too wide for the terminal at their natural width: the long names are broken after an underscore, never cut,
    # and the numbers stay whole.
    lines = text.splitlines()
    assert lines[0].split() == ["learning_rate_", "weight_decay_"] + (["validation_"] if columns == 80 else [])
    assert lines[1].split() == [*fields[:-3], "initial", "coefficient", "loss" if columns == 80 else "validation_loss"]
    for loss in LOSSES:
        assert re.search(rf"(?<!\S){re.escape(format(loss, '.7g'))}(?!\S)", text), loss


def test_list_piped_is_never_folded(db):
    exp = db.get_experiment("regularisation-sweep")
    text = piped(db, "list", "regularisation-sweep", "-t")
    lines = text.splitlines()
    assert len(lines) == 2 + len(LOSSES)  # a header, the rule, one line per job: nothing folded
    assert check_listing(text, FIELDS, expected_jobs(exp), None) == "table"


def test_list_on_a_terminal_of_80_columns(db):
    """A real terminal (a pty of 80 columns, no COLUMNS): the same guarantees."""
    exp = db.get_experiment("regularisation-sweep")
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 80, 0, 0))
    proc = subprocess.Popen(
        [
            SCHEDY_EXE,
            "list",
            "regularisation-sweep",
            "-t",
            "-f",
            "id",
            "-f",
            "status",
            "-f",
            LR,
            "-f",
            "validation_loss",
            "--db",
            str(db.path),
        ],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", screen.decode("utf-8")).replace("\r\n", "\n")
    assert check_listing(text, ["id", "status", LR, "validation_loss"], expected_jobs(exp), 80) == "table"


@pytest.mark.parametrize("columns", [80, 100, None])
def test_list_of_experiments_wraps_long_distributions(db, columns):
    text = invoke(db, columns, "list", "-t")
    check_layout(text, columns)
    dist = 'loguniform {"low":1e-07,"high":1e-05}'
    if columns == 80:  # a word of text (here a JSON object) is not folded: too narrow for two of them
        assert parse_paragraphs(text) == [
            {"name": "regularisation-sweep", "status": "RUNNING", "kind": "pbt", LR: dist, WD: dist}
        ]
        return
    headers, rows = parse_table(text.splitlines())
    assert headers == ["name", "status", "kind", LR, WD]
    assert rows == [["regularisation-sweep", "RUNNING", "pbt", squeeze(dist), squeeze(dist)]]
    assert len(text.splitlines()) == (4 if columns == 100 else 3)  # at 100 columns, wrapped at the space


def lineage_expected(exp, job_id):
    out = []
    for j in exp.lineage(job_id):
        row = {
            "generation": j.generation,
            "job": j.job_id,
            "parent": j.parent_id,
            "member": j.member,
            "status": j.status,
            **j.hyperparameters,
            "validation_loss": j.results["validation_loss"],
        }
        out.append(
            {
                k: (format(v, ".7g") if isinstance(v, float) else str(v), show_value(v))
                for k, v in row.items()
                if v is not None
            }
        )
    return out


@pytest.mark.parametrize("columns", [80, 100, None])
def test_lineage_keeps_every_column_header_and_digit(db, columns):
    exp = db.get_experiment("regularisation-sweep")
    last = exp.all_jobs()[-1].job_id
    expected = lineage_expected(exp, last)
    assert len(expected) == 3
    text = invoke(db, columns, "lineage", "regularisation-sweep", last)
    check_layout(text, columns)
    lines = text.splitlines()
    assert lines[:2] == [f"lineage of job {last} in regularisation-sweep", ""]
    fields = ["generation", "job", "parent", "member", "status", LR, WD, "validation_loss"]
    if "─" in text:
        headers, rows = parse_table(lines[2:])
        assert headers == fields
        assert rows == [[squeeze(row[f][0]) if f in row else "" for f in fields] for row in expected]
        assert columns != 80  # too narrow for 8 columns and these names: paragraphs
    else:
        assert columns == 80
        assert parse_paragraphs("\n".join(lines[2:])) == [{k: v[1] for k, v in row.items()} for row in expected]


def test_lineage_piped_shows_ids_whole(db):
    exp = db.get_experiment("regularisation-sweep")
    last = exp.all_jobs()[-1].job_id
    text = piped(db, "lineage", "regularisation-sweep", last)
    check_layout(text, None)
    headers, rows = parse_table(text.splitlines()[2:])
    assert len(text.splitlines()) == 2 + 2 + 3
    expected = lineage_expected(exp, last)
    assert rows == [[squeeze(row[f][0]) if f in row else "" for f in headers] for row in expected]
