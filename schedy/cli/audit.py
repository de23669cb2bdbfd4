"""``schedy history``, ``schedy lineage`` and ``schedy export``: read an experiment's log, at any moment."""

import csv
import errno
import os
import sys
from contextlib import contextmanager
from functools import partial

import click
import orjson

from .. import audit
from ..adapters.api import ASHA, PopulationBasedTraining
from ..adapters.export import TIME_COLUMNS, _columns, fixed_columns, flat_row, job_frame
from ..core import values
from . import db_option, failures, main, open_db
from .jobs import print_rows


def _check_moment(ctx, param, value):
    """Refuse a MOMENT that is neither a version nor a time as a usage error (exit status 2), before any reading."""
    if value is not None:
        try:
            audit.as_of_point(value)
        except (TypeError, ValueError) as e:
            raise click.BadParameter(str(e)) from None
    return value


def as_of_option(f):
    return click.option(
        "--as-of",
        "as_of",
        metavar="MOMENT",
        callback=_check_moment,
        help="Show the experiment as it was at MOMENT: a commit version (e.g. 120) or a UTC time in ISO 8601 "
        "(e.g. 2026-11-29T18:05:00Z; a time without zone is UTC).",
    )(f)


def _experiment(db, name, as_of):
    return open_db(db).get_experiment(name, as_of=as_of)


def _json_line(obj):
    # NaN and infinities have no JSON spelling; orjson writes them as null.
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


@contextmanager
def _writing():
    """Report a failure to write standard output (a full disk) as a message, exit status 1.

    A reader that stops early (``| head``) is left to click, which ends quietly.
    """
    try:
        yield
    except OSError as e:
        if e.errno == errno.EPIPE:
            raise
        raise click.ClickException(f"cannot write the output: {e}") from None


@main.command(short_help="Every commit of an experiment: when, by whom, what.")
@click.argument("experiment")
@click.argument("job", required=False)
@db_option
@as_of_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per commit and line: version, time, worker, events (as in the log).",
)
def history(experiment, job, db, as_of, as_json):
    """Print the history of EXPERIMENT: every commit with its time (UTC), worker and events.

    With JOB, only the commits about that job, each with only its events
    about that job. Events are described in words; --json prints them
    exactly as the log holds them (docs/log-format.md), for machines.
    """
    with failures():
        commits = _experiment(db, experiment, as_of).history(job)
    out = sys.stdout
    with _writing():
        for c in commits:
            if as_json:
                out.write(
                    _json_line({"version": c.version, "time": c.time, "worker": c.worker, "events": list(c.events)})
                    + "\n"
                )
            else:
                out.write(f"#{c.version}  {audit.utc(c.time)}  {audit.label(c.worker)}\n")
                for e in c.events:
                    out.write(f"    {audit.describe(e)}\n")
        out.flush()  # here, not when click's stream is collected (which would swallow an error such as a full disk)


def _text(value):
    if value is None:
        return ""
    return value if isinstance(value, str) else audit.show(values.encode(value))


def _is_number(value):
    return value is None or isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value):
    """A value for a table on a terminal: like :func:`_text`, but a string that is not printable is escaped."""
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return format(value, ".7g")  # a table is for reading: --json has every digit
    return _full(value)


def _full(value):
    """A value with every digit, for the paragraphs a table becomes on a narrow terminal."""
    return audit.label(value) if isinstance(value, str) else _text(value)


_ABSENT = object()


@main.command(short_help="The chain of jobs that led to a job: its hyperparameter schedule.")
@click.argument("experiment")
@click.argument("job")
@db_option
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job and line, generation 0 first.")
def lineage(experiment, job, db, as_of, as_json):
    """Print the lineage of JOB in EXPERIMENT: from generation 0 to JOB, each job continuing from the one before.

    With Population Based Training this is the hyperparameter schedule that
    produced the model of JOB: one row per segment with its hyperparameters
    and its score (the result the experiment ranks by). With ASHA and
    Hyperband it is the rungs the configuration of JOB climbed (the
    generation is the rung), with its score at each. Other experiments have
    no parents, so the lineage of a job is the job itself.
    """
    with failures():
        exp = _experiment(db, experiment, as_of)
        chain = exp.lineage(job)
    score = exp.result_name if isinstance(exp, (PopulationBasedTraining, ASHA)) else None
    if as_json:
        with _writing():
            for j in chain:
                click.echo(
                    _json_line(
                        {
                            "job_id": j.job_id,
                            "generation": j.generation,
                            "parent_id": j.parent_id,
                            "member": j.member,
                            "status": j.status,
                            "hyperparameters": j.hyperparameters,
                            "results": j.results,
                        }
                    )
                )
        return
    hps = list(dict.fromkeys(k for j in chain for k in j.hyperparameters))
    results = [score] if score else list(dict.fromkeys(k for j in chain for k in j.results))
    # A job field of None (no parent, no member) is no value; a hyperparameter or result set to None is null.
    values = [
        [
            j.generation,
            j.job_id,
            j.parent_id,
            j.member,
            j.status,
            *(j.hyperparameters.get(h, _ABSENT) for h in hps),
            *(j.results.get(r, _ABSENT) for r in results),
        ]
        for j in chain
    ]
    headers = ["generation", "job", "parent", "member", "status", *map(audit.label, (*hps, *results))]
    numeric = (
        [True] * 4 + [False] + [all(v is _ABSENT or _is_number(v) for v in column) for column in list(zip(*values))[5:]]
    )
    shown = [[None if v is _ABSENT else _cell(v) for v in row] for row in values]
    full = [
        [
            None if v is _ABSENT or (v is None and i < 5) else "null" if v is None else _full(v)
            for i, v in enumerate(row)
        ]
        for row in values
    ]
    with _writing():
        # Numbers, ids and statuses stay whole; too narrow a terminal gets a paragraph per job.
        print_rows(
            headers,
            shown,
            [n or i == 4 for i, n in enumerate(numeric)],
            numeric,
            full_rows=full,
            title=f"lineage of job {job} in {audit.label(experiment)}",
        )


def _csv_cell(row, column):
    if column not in row:
        return ""  # a job without this hyperparameter or result
    value = row[column]
    if value is None:
        # A hyperparameter or result set to None is JSON null, like every other value that is not a string.
        return "null" if column.startswith(("hp.", "result.")) else ""
    if column in TIME_COLUMNS:
        return audit.utc(value)
    return value if isinstance(value, str) else _text(value)


def _write_csv(rows, out, halving):
    flat = [flat_row(r) for r in rows]
    columns = _columns(flat, fixed_columns(flat, halving))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for r in flat:
        writer.writerow([_csv_cell(r, c) for c in columns])


def _write_jsonl(rows, out):
    for r in rows:
        r = {k: audit.utc(v) if k in TIME_COLUMNS and v is not None else v for k, v in r.items()}
        out.write(_json_line(r) + "\n")


@main.command(short_help="Write an experiment's jobs as CSV, JSON lines or Parquet.")
@click.argument("experiment")
@db_option
@as_of_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default="csv",
    show_default=True,
    help="csv and parquet: one column per field, hyperparameter (hp.NAME) and result (result.NAME); "
    "jsonl: one object per job with hyperparameters and results as objects.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    metavar="FILE",
    help="Write to FILE (replaced only once complete) instead of standard output; required for parquet.",
)
def export(experiment, db, as_of, fmt, output):
    """Write one row per job of EXPERIMENT, in the order jobs were added.

    Fields: job_id, status, generation, parent_id, member, for asha and
    hyperband rung (the generation) and resource (what the job trains to),
    added_at, claimed_at (the last claim), claimed_by, finished_at (when it
    last became DONE, CRASHED or PRUNED), claims, lease_expiries, then the
    hyperparameters and results. Times are UTC, in ISO 8601. In CSV, values other than
    strings are written as JSON (lists, true, NaN); in JSON lines, NaN and
    infinities become null. Parquet needs pandas and pyarrow (pip install
    'schedy[export]').
    """
    if fmt == "parquet" and output is None:
        raise click.UsageError("parquet is binary: give a file with -o FILE")
    with failures():
        exp = _experiment(db, experiment, as_of)
        rows = exp._job_rows()
        # ASHA and Hyperband have rung and resource columns, even without jobs (the rows alone would not tell).
        halving = isinstance(exp, ASHA)
        write = partial(_write_csv, halving=halving) if fmt == "csv" else _write_jsonl
        if fmt == "parquet":
            try:
                _check_parquet()
                frame = _parquet(job_frame(rows, halving), [flat_row(r) for r in rows])
            except ImportError as e:
                raise click.ClickException(str(e)) from None
        if output is not None:
            tmp = f"{output}.{os.getpid()}.tmp"
            try:
                if fmt == "parquet":
                    frame.to_parquet(tmp, index=False)
                else:
                    with open(tmp, "w", encoding="utf-8", newline="") as f:
                        write(rows, f)
                os.replace(tmp, output)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    if output is None:
        # Outside failures(): a reader that stops early (`| head`) is not an error to report; click ends quietly.
        out = sys.stdout
        with _writing():
            write(rows, out)
            out.flush()
        return
    click.echo(f"wrote {len(rows)} jobs to {output}", err=True)


def _check_parquet():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("parquet export needs pyarrow: pip install 'schedy[export]'") from None


INT64 = range(-(2**63), 2**63)


def _parquet(frame, flat):
    """``frame`` with every column Parquet cannot type (lists, mixed types, integers beyond int64) turned into text.

    ``flat`` are the rows of the frame (:func:`flat_row`): the frame cannot tell a job without the
    hyperparameter (null) from one whose value is NaN ("NaN").
    """
    for col in frame.columns:
        if frame[col].dtype == object:
            present = [r[col] for r in flat if r.get(col) is not None]
            kinds = {type(v) for v in present}
            if len(kinds) > 1 or kinds & {list, dict} or kinds == {int} and any(v not in INT64 for v in present):
                frame[col] = [None if r.get(col) is None else _text(r[col]) for r in flat]
    return frame
